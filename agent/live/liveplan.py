"""A plan of the rest of the week made from the mirrored state, in the re-planner's worker process
(`agent.live.replanner`): the job it gets, the plan it returns, the plan's steps.

The worker runs the line model from the job's snapshot on to the first decision point after the
line time the job will take, deciding meanwhile as the service will (the steps in force, else the
fallback policy), and plans the rest of the week from there with the chosen planner of the
portfolio, never worse than keeping the plan in force. The plan is re-simulated in the twin step by
step, so that each predicted decision point is known with its state and what remains after it.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from agent.errors import UsageError
from agent.planners.policies import FollowPolicy, Policy, SequencePolicy, SetupAwarePolicy
from agent.planners.registry import BEST, CPSAT, RL, SEARCHES, PlannerSpec, make_policy, parse_planners
from agent.planners.run import PlannedRun, run_planner
from twin import Decision, DecisionRequest, Line, Scenario
from twin.outlook import Expected, Projection, StateKey
from twin.results import rank_key
from twin.schedule import ScheduledBatch, pas_schedule
from twin.snapshot import LineSnapshot

WORKER_NICE = 10
"""How much lower the worker's CPU priority is than the service's."""


def meets(step: PlanStep, last_type: int | None, time_s: int, tolerance_s: int) -> bool:
    """Whether a decision point (the PAS set up for `last_type`, at working second `time_s`) is the
    one `step` predicted: the same set-up type, the time within `tolerance_s`."""
    return step.last_type == last_type and abs(step.time_s - time_s) <= tolerance_s


def answer(steps: dict[int, PlanStep], request: DecisionRequest, tolerance_s: int) -> PlanStep | None:
    """The step of `steps` (by decision index) that answers `request`, valid there; else None."""
    step = steps.get(request.index)
    if step is None or not meets(step, request.last_type, request.time_s, tolerance_s):
        return None
    return step if step.type in request.valid else None


def planner_spec(planner: str, model: Path | None = None) -> PlannerSpec:
    """The one planner `planner` names (`best`, `cpsat`, `rollout:RULE`, `beam:RULE`, a rule, `rl`),
    checked: UsageError naming `planner`."""
    try:
        specs = parse_planners(planner) if model is None else parse_planners(planner, model)
    except UsageError as exc:
        raise UsageError(exc.reason, "planner", planner) from None
    if len(specs) != 1:
        raise UsageError("takes one planner (`rules` stands for every rule)", "planner", planner)
    return specs[0]


@dataclass(frozen=True)
class PlanStep:
    """One predicted decision point of a plan and the plan's answer there."""

    index: int
    """The decision's index in the week."""
    key: StateKey
    """Its state as the twin predicts it (`twin.outlook.state_key`: time, stock, set-up type, FAS)."""
    type: int
    quantity: int | None
    idle_s: int
    """Idle time from this decision point to the end of the week (the plan's forecast),"""
    setup_effort: float
    """setup effort and"""
    setups: int
    """changeovers likewise."""

    @property
    def time_s(self) -> int:
        return cast(int, self.key[0])

    @property
    def last_type(self) -> int | None:
        return cast(int | None, self.key[2])


@dataclass(frozen=True)
class PlanJob:
    """What the worker gets (pickled to it)."""

    token: int
    scenario: Scenario
    snapshot: LineSnapshot
    first: Decision | None
    """The decision dispatched at the snapshot's decision point, not started yet (None: none)."""
    incumbent: tuple[PlanStep, ...]
    """The current plan's steps: the warm start, and the service's decisions until the new plan
    is in (with `fallback` where they do not apply)."""
    fallback: str
    """The service's fallback policy (`make_policy` name)."""
    lead_s: int
    """Working seconds the job will take on the line: the plan starts at the first decision point
    after them (decided meanwhile as the service will)."""
    planner: str
    seed: int
    model: Path | None
    """The agent's model for `rl` (None: the shipped one)."""
    tolerance_s: int
    """How far off its time a decision point still is a step's (`meets`)."""
    budget_s: float
    reason: str
    revision: int
    """The week plan's revision the mirror had (a plan for another revision is never used)."""
    so_far: Expected
    """The mirror's KPIs at the snapshot (idle, setup effort, changeovers so far)."""


@dataclass(frozen=True)
class LivePlan:
    """A plan of the rest of the week from decision `anchor` on, as the twin predicts it."""

    token: int
    reason: str
    planner: str
    source: str
    anchor: int
    steps: tuple[PlanStep, ...]
    expected: Expected
    """The rest of the week from the plan's first decision point (`anchor`) on."""
    week: Expected
    """The whole week if the plan is followed (the KPIs at the job's snapshot plus the forecast
    from it)."""
    kept: tuple[int, float, tuple[int, ...]] | None
    """The rest of the week from `anchor` if the service kept the plan in force (its steps where
    they apply, else the fallback): idle seconds, setup effort, types (None: no plan was in force)."""
    schedule: tuple[ScheduledBatch, ...]
    bound: float | None
    gap: float | None
    stopped: str
    planning_s: float
    cpu_s: float
    revision: int
    pid: int

    def types_from(self, index: int) -> tuple[int, ...]:
        return tuple(s.type for s in self.steps[max(0, index - self.anchor) :])


# -- the worker ------------------------------------------------------------------------------
def worker_started() -> None:
    """The worker's initializer: Ctrl-C is the service's (it stops the worker); a lower priority."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's: it stops the worker
    os.nice(WORKER_NICE)  # the bus loop's dispatches come first


def warm_up() -> int:
    """Import what planning needs (the first job then starts at once); the worker's pid."""
    import agent.planners.cpsat
    import agent.planners.portfolio
    import agent.planners.rollout  # noqa: F401

    return os.getpid()


def plan_rest(job: PlanJob) -> LivePlan | None:
    """Run in the worker: from the job's snapshot to the next decision point, plan the rest of the
    week there; None when no decision is left."""
    wall, cpu = time.perf_counter(), time.process_time()
    scenario = job.scenario
    line = Line(scenario, None, job.snapshot)
    request = line.start()
    if request is not None and job.first is not None and request.index == job.snapshot.decisions:
        request = line.decide(job.first)
    meanwhile: list[Decision] = []  # what the service will dispatch while the worker plans
    service = _ServiceDecider(job)
    while request is not None and request.time_s < job.snapshot.time_s + job.lead_s:
        meanwhile.append(service(request))
        request = line.decide(meanwhile[-1])
    if request is None:
        return None
    anchor = line.snapshot()
    before = line.idle_so_far(request.time_s), line.trace.batches  # from the job's snapshot to `anchor`
    incumbent = [s.type for s in job.incumbent if s.index >= request.index]
    run, provenance = _plan(job, anchor, incumbent)
    kept = None
    if job.incumbent:
        staying = Line(scenario, None, anchor)
        rest = staying.run(service)
        kept = (rest.idle_s, rest.setup_effort, tuple(b.type for b in staying.trace.batches))
    policy = SequencePolicy.of_types([b.type for b in run.trace.batches], scenario.types, job.planner)
    projection = Projection.simulate(scenario, anchor, policy)
    steps = [_step(projection, n, anchor.decisions + n) for n in range(len(projection.steps))]
    expected = projection.total
    idle, batches = before
    so_far = job.so_far
    week = Expected(
        so_far.idle_s + idle + expected.idle_s,
        so_far.setup_effort + sum(b.setup_effort for b in batches) + expected.setup_effort,
        so_far.setups + sum(b.changeover for b in batches) + expected.setups,
        expected.deadlock,
        expected.end_s,
    )
    schedule = [
        ScheduledBatch(
            b.position + request.index, b.type, b.quantity, b.start, b.end, b.buffer_entry, b.changeover
        )
        for b in pas_schedule(scenario, run.trace)
    ]
    source, bound, gap, stopped = provenance
    return LivePlan(
        token=job.token,
        reason=job.reason,
        planner=job.planner,
        source=source,
        anchor=request.index,
        steps=tuple(steps),
        expected=expected,
        week=week,
        kept=kept,
        schedule=tuple(schedule),
        bound=bound,
        gap=gap,
        stopped=stopped,
        planning_s=time.perf_counter() - wall,
        cpu_s=time.process_time() - cpu,
        revision=job.revision,
        pid=os.getpid(),
    )


def _plan(
    job: PlanJob, anchor: LineSnapshot, incumbent: list[int]
) -> tuple[PlannedRun, tuple[str, float | None, float | None, str]]:
    """The planner's rest of the week from `anchor`, never worse than the current plan followed."""
    scenario = job.scenario
    spec = planner_spec(job.planner, job.model)
    if spec.kind == BEST:  # it offers the incumbent itself
        from agent.planners.portfolio import BestSettings, plan_best

        best = BestSettings(time_limit_s=job.budget_s, seed=job.seed)
        run, how = plan_best(scenario, best, snapshot=anchor, incumbent=incumbent)
        return run, (how.source, how.bound, how.gap, how.stopped)
    fallback = SetupAwarePolicy()
    current = run_planner(scenario, FollowPolicy(incumbent, fallback), anchor) if incumbent else None
    if spec.kind == CPSAT:
        from agent.planners.cpsat import CpSatPlanner, CpSatSettings

        hint = [b.type for b in (current or run_planner(scenario, fallback, anchor)).trace.batches]
        try:
            plan = CpSatPlanner(scenario, CpSatSettings(job.budget_s, 1, job.seed), anchor).solve(hint)
        except UsageError:
            plan = None
        if plan is not None and plan.sequence:
            stopped = "optimal" if plan.status == "OPTIMAL" else "time limit"
            run = run_planner(scenario, SequencePolicy.of_types(plan.sequence, scenario.types, CPSAT), anchor)
            return _better(run, current, f"cpsat ({plan.mode})", (plan.bound, None, stopped))
    elif spec.kind in SEARCHES:
        from agent.planners.rollout import SearchSettings, search_plan

        base = make_policy(spec.policy_label, job.seed, spec.model)
        run, stats = search_plan(
            scenario,
            spec.kind,
            base,
            SearchSettings(time_limit_s=job.budget_s, decision_time_s=spec.decision_time_s),
            snapshot=anchor,
        )
        stopped = "time limit" if stats.stopped_early else "done"
        return _better(run, current, spec.label, (None, None, stopped))
    else:
        policy: Policy = make_policy(
            spec.policy_label if spec.kind == RL else spec.kind, job.seed, spec.model
        )
        name = RL if spec.kind == RL else spec.label  # the contract's name, not the model's path
        return _better(run_planner(scenario, policy, anchor), current, name, (None, None, "done"))
    return _better(run_planner(scenario, fallback, anchor), current, fallback.name, (None, None, "done"))


def _better(
    run: PlannedRun, current: PlannedRun | None, source: str, rest: tuple[float | None, float | None, str]
) -> tuple[PlannedRun, tuple[str, float | None, float | None, str]]:
    bound, gap, stopped = rest
    if current is not None and rank_key(current.results) <= rank_key(run.results):
        return current, ("current plan", bound, gap, stopped)
    return run, (source, bound, gap, stopped)


_POLICIES: dict[tuple[str, int, Path | None], Policy] = {}
"""The fallback policies the worker loaded (the agent's model once)."""


class _ServiceDecider:
    """The service's decider as the worker predicts it: the current plan's step where it applies
    (`LivePlan.at`), else the fallback policy."""

    def __init__(self, job: PlanJob) -> None:
        self.steps = {s.index: s for s in job.incumbent}
        self.tolerance_s = job.tolerance_s
        key = (job.fallback, job.seed, job.model)
        if key not in _POLICIES:
            _POLICIES[key] = make_policy(*key)
        self.fallback = _POLICIES[key]

    def __call__(self, request: DecisionRequest) -> Decision:
        step = answer(self.steps, request, self.tolerance_s)
        return Decision(step.type, step.quantity) if step is not None else self.fallback(request)


def _step(projection: Projection, n: int, index: int) -> PlanStep:
    """The projection's `n`th decision point (the week's decision `index`) and what remains from it."""
    rest = projection.expected_from(n)
    step = projection.steps[n]
    return PlanStep(index, step.key, step.decision.type, step.decision.quantity, rest.idle_s,
                    rest.setup_effort, rest.setups)  # fmt: skip
