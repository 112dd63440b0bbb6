"""Anytime re-planning for the live service: a worker process plans the rest of the week from the
mirrored state while the bus loop dispatches from the current plan.

The next decision is known a whole batch ahead. Whenever the line leaves the plan (downtime, a stock
correction, a plan revision, a PAS that built another type, a FAS off the plan's pace) and after
every dispatch that a plan not proved optimal answered, a job goes to the worker: the mirror's
snapshot, the decision just dispatched, the current plan as warm start and a budget (a share of the
current batch's expected wall duration). The worker runs the line model to the next decision point
and plans from there with the chosen planner of the portfolio; the result is re-simulated in the
twin, step by step, so that each predicted decision point is known with its state.

A dispatch is read from the current plan when the decision point is one the plan predicted: the same
decision and set-up type (the line built the plan's batches), its time within a tolerance, the plan's
type valid. Otherwise the fast fallback policy answers. Where the state is not exactly the predicted
one (a FAS a little off its pace, a stock correction), the plan still answers and a re-plan from the
real state follows. A new plan replaces the current one when the current one no longer applies,
when it keeps the next `keep` dispatches, or when it is better by more than `margin` (a plan that
keeps changing is one nobody on the floor trusts).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.errors import ModelError, UsageError
from agent.planners.policies import FollowPolicy, Policy, SequencePolicy, SetupAwarePolicy
from agent.planners.registry import BEST, CPSAT, RL, SEARCHES, PlannerSpec, make_policy, parse_planners
from agent.planners.run import PlannedRun, run_planner
from bridge.messages import PasPlanMsg
from twin import Decision, DecisionRequest, Line, Scenario
from twin.mirror import Mirror
from twin.outlook import Expected
from twin.results import rank_key
from twin.schedule import ScheduledBatch, pas_schedule
from twin.snapshot import LineSnapshot

log = logging.getLogger(__name__)

REVISION_MAX = 2**31
"""A retained plan's revision above this is not this service's (plans are numbered from 1 then)."""
WORKER_NICE = 10
"""How much lower the worker's CPU priority is than the service's."""
IMPROVE = "improve"
"""The reason of a re-plan that no deviation asked for."""
LEAD = 1.5
"""A job plans from the first decision point after this many times the line time it is expected
to take (what the last jobs took, the budget for the first: the plan must be in before its first
decision)."""

Key = tuple[int, tuple[int, ...], int | None, tuple[tuple[int, int], ...]]
"""A decision point's state besides its time: (decision index, stock per type, set-up type, (order,
taken) per FAS)."""


def key_of(request: DecisionRequest) -> Key:
    return (request.index, request.stock, request.last_type, tuple((f.order, f.taken) for f in request.fas))


def meets(step: PlanStep, last_type: int | None, time_s: int, tolerance_s: int) -> bool:
    """Whether a decision point (the PAS set up for `last_type`, at working second `time_s`) is the
    one `step` predicted: the same set-up type, the time within `tolerance_s`."""
    return step.key[2] == last_type and abs(step.time_s - time_s) <= tolerance_s


def answer(steps: dict[int, PlanStep], request: DecisionRequest, tolerance_s: int) -> PlanStep | None:
    """The step of `steps` (by decision index) that answers `request`, valid there; else None."""
    step = steps.get(request.index)
    if step is None or not meets(step, request.last_type, request.time_s, tolerance_s):
        return None
    return step if step.type in request.valid else None


@dataclass(frozen=True)
class ReplanSettings:
    """How the service re-plans and how stable its plan is."""

    planner: str = BEST
    """A planner of the portfolio (`best`, `cpsat`, `rollout:RULE`, `beam:RULE`, a rule, `rl`)."""
    share: float = 0.5
    """Budget of a re-plan: this share of the current batch's expected wall duration,"""
    min_s: float = 1.0
    max_s: float = 120.0
    """bounded by these (wall seconds)."""
    keep: int = 3
    """The next `keep` dispatches of the current plan stay unless a new plan is better by more than"""
    margin: float = 0.02
    """this share of the current plan's setup effort to the end of the week (any less idle time is
    always taken)."""
    tolerance_s: int = 60
    """A decision point this many working seconds off the plan's still is the plan's (the plan is
    followed there, and re-planned from the real state)."""
    seed: int = 0
    model: Path | None = None
    """The trained agent for `rl` (None: the shipped one)."""

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise UsageError("must be above 0 and at most 1", "plan_share", f"{self.share:g}")
        if self.min_s <= 0 or self.max_s < self.min_s:
            raise UsageError(
                f"must be at least {self.min_s:g} (the least a re-plan gets)", "plan_max", f"{self.max_s:g}"
            )
        if self.keep < 0:
            raise UsageError("must not be negative", "plan_keep", self.keep)
        if self.margin < 0:
            raise UsageError("must not be negative", "plan_margin", f"{self.margin:g}")
        if self.tolerance_s < 0:
            raise UsageError("must not be negative", "plan_tolerance", self.tolerance_s)

    def spec(self) -> PlannerSpec:
        """The planner, checked (UsageError naming `planner`)."""
        try:
            specs = (
                parse_planners(self.planner)
                if self.model is None
                else parse_planners(self.planner, self.model)
            )
        except UsageError as exc:
            raise UsageError(exc.reason, "planner", self.planner) from None
        if len(specs) != 1:
            raise UsageError("takes one planner (`rules` stands for every rule)", "planner", self.planner)
        return specs[0]


@dataclass(frozen=True)
class PlanStep:
    """One predicted decision point of a plan and the plan's answer there."""

    key: Key
    time_s: int
    type: int
    quantity: int | None
    idle_s: int
    """Idle time from this decision point to the end of the week (the plan's forecast),"""
    setup_effort: float
    """setup effort and"""
    setups: int
    """changeovers likewise."""


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
    settings: ReplanSettings
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

    def step(self, request: DecisionRequest, tolerance_s: int) -> PlanStep | None:
        """The plan's step for `request`'s decision point, or None if it did not predict it."""
        step = self.at(request.index, request.last_type, request.time_s, tolerance_s)
        return step if step is not None and step.type in request.valid else None

    def at(self, index: int, last_type: int | None, time_s: int, tolerance_s: int) -> PlanStep | None:
        """The plan's step for decision `index` if it `meets` that decision point; else None."""
        i = index - self.anchor
        if not 0 <= i < len(self.steps):
            return None
        step = self.steps[i]
        return step if meets(step, last_type, time_s, tolerance_s) else None

    def types_from(self, index: int) -> tuple[int, ...]:
        return tuple(s.type for s in self.steps[max(0, index - self.anchor) :])


# -- the worker ------------------------------------------------------------------------------
def _worker_started() -> None:
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
    incumbent = [s.type for s in job.incumbent if s.key[0] >= request.index]
    run, provenance = _plan(job, anchor, incumbent)
    kept = None
    if job.incumbent:
        staying = Line(scenario, None, anchor)
        rest = staying.run(service)
        kept = (rest.idle_s, rest.setup_effort, tuple(b.type for b in staying.trace.batches))
    sequence = [b.type for b in run.trace.batches]
    steps, expected = _steps(scenario, anchor, sequence)
    week = _week(job, meanwhile + [Decision(k) for k in sequence])
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
        planner=job.settings.planner,
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
    scenario, settings = job.scenario, job.settings
    spec = settings.spec()
    fallback = SetupAwarePolicy()
    current = run_planner(scenario, FollowPolicy(incumbent, fallback), anchor) if incumbent else None
    if spec.kind == BEST:
        from agent.planners.portfolio import BestSettings, plan_best

        best = BestSettings(time_limit_s=job.budget_s, seed=settings.seed)
        run, how = plan_best(scenario, best, snapshot=anchor, incumbent=incumbent)
        return run, (how.source, how.bound, how.gap, how.stopped)
    if spec.kind == CPSAT:
        from agent.planners.cpsat import CpSatPlanner, CpSatSettings

        hint = [b.type for b in (current or run_planner(scenario, fallback, anchor)).trace.batches]
        try:
            plan = CpSatPlanner(scenario, CpSatSettings(job.budget_s, 1, settings.seed), anchor).solve(hint)
        except UsageError:
            plan = None
        if plan is not None and plan.sequence:
            stopped = "optimal" if plan.status == "OPTIMAL" else "time limit"
            run = run_planner(scenario, SequencePolicy.of_types(plan.sequence, scenario.types, CPSAT), anchor)
            return _better(run, current, f"cpsat ({plan.mode})", (plan.bound, None, stopped))
    elif spec.kind in SEARCHES:
        from agent.planners.rollout import SearchSettings, search_plan

        base = make_policy(spec.policy_label, settings.seed, spec.model)
        run, stats = search_plan(
            scenario, spec.kind, base, SearchSettings(time_limit_s=job.budget_s), snapshot=anchor
        )
        stopped = "time limit" if stats.stopped_early else "done"
        return _better(run, current, spec.label, (None, None, stopped))
    else:
        policy: Policy = make_policy(
            spec.policy_label if spec.kind == RL else spec.kind, settings.seed, spec.model
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
        self.steps = {s.key[0]: s for s in job.incumbent}
        self.tolerance_s = job.settings.tolerance_s
        key = (job.fallback, job.settings.seed, job.settings.model)
        if key not in _POLICIES:
            _POLICIES[key] = make_policy(*key)
        self.fallback = _POLICIES[key]

    def __call__(self, request: DecisionRequest) -> Decision:
        step = answer(self.steps, request, self.tolerance_s)
        return Decision(step.type, step.quantity) if step is not None else self.fallback(request)


def _week(job: PlanJob, decisions: list[Decision]) -> Expected:
    """The job's KPIs so far plus the twin's forecast from its snapshot: the decision dispatched,
    then `decisions`."""
    line = Line(job.scenario, None, job.snapshot)
    decisions = ([job.first] if job.first is not None else []) + decisions
    request = line.start()
    for decision in decisions:
        if request is None:
            break
        request = line.decide(decision)
    so_far = job.so_far
    if request is not None or not line.finished:
        raise AssertionError("the plan does not finish the week it was made for (a planner bug)")
    results = line.results()
    return Expected(
        so_far.idle_s + results.idle_s,
        so_far.setup_effort + results.setup_effort,
        so_far.setups + results.setups,
        results.deadlock,
        line.end_s,
    )


def _steps(scenario: Scenario, anchor: LineSnapshot, sequence: list[int]) -> tuple[list[PlanStep], Expected]:
    """The plan re-simulated from `anchor`: each decision point's key and what remains from it on;
    what the rest of the week holds."""
    line = Line(scenario, None, anchor)
    request = line.start()
    seen: list[tuple[DecisionRequest, int, float, int]] = []
    effort, setups, i = 0.0, 0, 0
    while request is not None:
        seen.append((request, line.idle_so_far(request.time_s), effort, setups))
        request = line.decide(Decision(sequence[i]))
        batch = line.trace.batches[-1]
        effort += batch.setup_effort
        setups += batch.changeover
        i += 1
    idle = line.idle_so_far(line.end_s)
    steps = [
        PlanStep(
            key_of(r),
            r.time_s,
            sequence[n],
            None,
            idle - idle_before,
            effort - effort_before,
            setups - setups_before,
        )
        for n, (r, idle_before, effort_before, setups_before) in enumerate(seen)
    ]
    return steps, Expected(idle, effort, setups, line.deadlock, line.end_s)


# -- the service's side ----------------------------------------------------------------------
@dataclass
class ReplanCounts:
    """What the re-planner did so far."""

    jobs: int = 0
    adopted: int = 0
    kept: int = 0
    """New plans not taken: not better, or better by less than the margin where they changed the
    next dispatches."""
    stale: int = 0
    """Results for another week plan revision, dropped."""
    late: int = 0
    """Plans that came after their first decision point, which went another way: dropped."""
    failed: int = 0
    from_plan: int = 0
    fallback: int = 0
    """Dispatches read from the plan, and answered by the fallback policy."""
    cpu_s: float = 0.0
    planning_s: float = 0.0


@dataclass
class Pace:
    """Line working seconds per wall second, from the recent events (None until known)."""

    window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=1024))

    def observe(self, wall: float, line_s: int) -> None:
        self.window.append((wall, line_s))

    def per_wall_s(self) -> float | None:
        if len(self.window) < 2:
            return None
        (w0, l0), (w1, l1) = self.window[0], self.window[-1]
        if w1 - w0 < 0.05 or l1 <= l0:
            return None
        return (l1 - l0) / (w1 - w0)


class Replanner:
    """The current plan, the worker process and the stability rule (see the module docstring)."""

    def __init__(self, settings: ReplanSettings, fallback: Policy | None = None) -> None:
        """Raises UsageError for a planner that cannot plan (e.g. an agent's model not found)."""
        spec = settings.spec()
        if RL in (spec.kind, spec.base):  # the worker would fail at every job: say so now
            try:
                make_policy(spec.policy_label, settings.seed, spec.model)
            except (UsageError, ModelError) as exc:
                raise UsageError(str(exc), "planner", settings.planner) from None
        self.settings = replace(settings, planner=settings.planner.strip())
        self.fallback = fallback or SetupAwarePolicy()
        self.plan: LivePlan | None = None
        self.steps: dict[int, PlanStep] = {}
        """The steps in force by decision index: the last plan's, and before its first decision the
        plan's it replaced (adopted before its first decision, it takes over from there)."""
        self.revision = 0
        """Revision of the last plan adopted (the plan topic's; continued from the retained one)."""
        self.counts = ReplanCounts()
        self.pace = Pace()
        self.wanted: str | None = None
        """Why a re-plan is due (None: none)."""
        self.gain: float | None = None
        """Setup effort the last adopted plan saves against the one it replaced."""
        self._executor: cf.ProcessPoolExecutor | None = None
        self._future: cf.Future[LivePlan | None] | None = None
        self._job: PlanJob | None = None
        self._pid: int | None = None
        self._tokens = 0
        self._took: deque[float] = deque(maxlen=3)  # wall seconds of the last jobs, submit to result
        self._submitted = 0.0

    # -- the decider -------------------------------------------------------------------------
    def step(self, request: DecisionRequest, revision: int) -> PlanStep | None:
        """The step in force for `request` under week plan `revision` (None: not covered)."""
        if self.plan is None or self.plan.revision != revision:
            return None
        return answer(self.steps, request, self.settings.tolerance_s)

    # -- jobs --------------------------------------------------------------------------------
    def continue_after(self, retained: bytes | None) -> None:
        """Number plans on from the retained plan of an earlier run (its revision; ignored if bad)."""
        if retained:
            try:
                revision = PasPlanMsg.model_validate_json(retained).revision
            except ValueError:
                log.warning("the retained plan on the plan topic is not one: plans are numbered from 1")
                return
            if not 0 <= revision < REVISION_MAX:
                log.warning(
                    "the retained plan's revision %d is out of range: plans are numbered from 1", revision
                )
                return
            self.revision = max(self.revision, revision)

    def want(self, reason: str) -> None:
        """A re-plan is due for `reason` (the first reason stands, but a deviation outranks
        `improve`)."""
        if self.wanted is None or self.wanted == IMPROVE:
            self.wanted = reason

    def start(self) -> None:
        """Start the worker process and import the planners in it (returns at once)."""
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = cf.ProcessPoolExecutor(
                max_workers=1, mp_context=ctx, initializer=_worker_started
            )
            pid = self._executor.submit(warm_up)
            pid.add_done_callback(self._note_pid)

    def _note_pid(self, future: cf.Future[int]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._pid = future.result()

    @property
    def busy(self) -> bool:
        return self._future is not None

    def submit(
        self,
        scenario: Scenario,
        snapshot: LineSnapshot,
        first: Decision | None,
        revision: int,
        batch_s: float,
        so_far: Expected,
    ) -> None:
        """Send the wanted re-plan to the worker (the caller checks `busy` and `wanted`)."""
        self.start()
        assert self._executor is not None
        reason = self.wanted or IMPROVE
        self.wanted = None
        pace = self.pace.per_wall_s()
        if pace is None:  # not known yet (week start, a restart): a short plan, improved later
            budget, pace = self.settings.min_s, 1.0
        else:
            budget = min(self.settings.max_s, max(self.settings.min_s, self.settings.share * batch_s / pace))
        in_force = self.plan is not None and self.plan.revision == revision
        incumbent = (
            tuple(s for i, s in sorted(self.steps.items()) if i >= snapshot.decisions) if in_force else ()
        )
        took = max(self._took, default=budget)  # early when the plan is proved optimal, else later
        lead_s = int((took + 0.1) * pace * LEAD)
        self._tokens += 1
        job = PlanJob(
            self._tokens,
            scenario,
            snapshot,
            first,
            incumbent,
            self.fallback.name,
            lead_s,
            self.settings,
            budget,
            reason,
            revision,
            so_far,
        )
        self._job = job
        self._future = self._executor.submit(plan_rest, job)
        self._submitted = time.perf_counter()
        self.counts.jobs += 1

    def poll(self, revision: int, next_decision: int, decided: Mapping[int, int]) -> LivePlan | None:
        """The finished job's plan if it is adopted now; None otherwise (never waits). A plan whose
        first decisions were made meanwhile (`decided`: type by decision index) is taken only if
        they are the plan's (its rest then still holds); else it is late: a re-plan follows."""
        future = self._future
        if future is None or not future.done():
            return None
        self._future = None
        self._took.append(time.perf_counter() - self._submitted)
        try:
            plan = future.result()
        except Exception as exc:  # a planner's bug, or the worker died: the fallback goes on
            cause = f"\n{exc.__cause__}" if exc.__cause__ is not None else ""  # the worker's traceback
            log.error("re-planning failed: %s: %s%s", type(exc).__name__, exc, cause)
            self.counts.failed += 1
            if isinstance(exc, cf.process.BrokenProcessPool):
                self._executor = None
            return None
        if plan is None:
            return None
        log.info(
            "plan of job %d (%s) from decision %d in %.2f s, the line at decision %d: %s, effort %g",
            plan.token, plan.reason, plan.anchor, self._took[-1], next_decision, plan.source,
            plan.expected.setup_effort,
        )  # fmt: skip
        self._pid = plan.pid
        self.counts.cpu_s += plan.cpu_s
        self.counts.planning_s += plan.planning_s
        if plan.revision != revision:
            self.counts.stale += 1
            self.want("plan revision")
            return None
        passed = plan.steps[: max(0, next_decision - plan.anchor)]
        if any(decided.get(s.key[0]) != s.type for s in passed):
            self.counts.late += 1
            self.want("left the plan")
            return None
        if not self._adopt(plan):
            self.counts.kept += 1
            return None
        self.take(plan)
        self.revision += 1
        self.counts.adopted += 1
        return plan

    def take(self, plan: LivePlan) -> None:
        """Put `plan` in force (its steps; before its first decision, those of the plan in force)."""
        same = self.plan is not None and self.plan.revision == plan.revision
        before = {i: s for i, s in self.steps.items() if i < plan.anchor} if same else {}
        self.steps = before | {s.key[0]: s for s in plan.steps}
        self.plan = plan

    def _adopt(self, new: LivePlan) -> bool:
        """The stability rule; sets `gain`. A plan made after a deviation replaces the current one
        (made before it: its forecast no longer holds); an improvement must be better."""
        current = self.plan
        self.gain = None
        if current is None or current.revision != new.revision or new.kept is None or new.reason != IMPROVE:
            return True
        idle, effort, types = new.kept  # the plan in force from the same state, simulated as the new one
        mine = new.expected
        self.gain = effort - mine.setup_effort
        if mine.idle_s < idle:
            return True
        if mine.idle_s > idle or mine.setup_effort >= effort - 1e-9:
            self.gain = None
            return False
        keep = self.settings.keep
        if types[:keep] == new.types_from(new.anchor)[:keep]:
            return True
        return mine.setup_effort < effort * (1 - self.settings.margin) - 1e-9

    def close(self) -> None:
        """Stop the worker (a job in progress is abandoned)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        if self._future is not None and self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
        self._future = None


class PlanDecider:
    """The service's decider: the plan's step where it predicted the decision point, else the
    fallback policy (pure: the outlook also simulates with it)."""

    def __init__(self, replanner: Replanner, mirror: Mirror) -> None:
        self.replanner = replanner
        self.mirror = mirror

    def __call__(self, request: DecisionRequest) -> Decision:
        step = self.replanner.step(request, self.mirror.revision)
        if step is not None:
            return Decision(step.type, step.quantity)
        return self.replanner.fallback(request)
