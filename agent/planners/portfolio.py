"""The planning portfolio (`best`): every planner that can help, in the order that pays, anytime.

1. **Fast plans**: the rules, the hints (plans made at other batch sizes, converted: coarse to
   fine) and plans of the same week at coarser sizes made here by the programme.
2. **The bound**: the exact programme (`agent.planners.dp`) where its states fit; it is then the
   optimum and the search ends (the reference weeks at b = 50 in under a second).
3. **Beam**: the programme with a cap on the states per position, the incumbent's path kept.
4. **CP-SAT** from the incumbent (a share of the time; the main tool when zero idle is impossible,
   with rollouts over the rules, least idle first, beside it).
5. **Large-neighbourhood search** until the time limit: a seeded window of positions is re-ordered
   exactly by the programme (the rest kept), accepted when better.

Every plan is re-simulated in the twin and ranked by `twin.results.rank_key`; each improvement
prints one line (time, idle, effort, bound, gap, who). Ctrl-C stops the search with the best plan
so far. With `windows` set the search does a fixed amount of work: same seed, same plan.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from agent.errors import ModelError, UsageError
from agent.planners.bound import IMPOSSIBLE, lower_bound
from agent.planners.conversion import Hint, convert
from agent.planners.cpsat import CpSatPlanner, CpSatSettings, bound_gap, gap_text
from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import SequenceDp
from agent.planners.policies import (
    EarliestRunoutPolicy,
    FollowPolicy,
    Policy,
    SequencePolicy,
    SetupAwarePolicy,
    SlackGreedyPolicy,
)
from agent.planners.registry import BEST
from agent.planners.run import PlannedRun, run_planner
from twin import Scenario
from twin.results import rank_key
from twin.snapshot import LineSnapshot

Progress = Callable[[str], None]

_PER_STATE_S = 2.5e-6
"""Seconds the programme spends per state and position (measured: w1, b = 20, 20,000 states, 23 s)."""
_BEAM_SHARE = 0.25
_CPSAT_SHARE = 0.1
_COARSE_SHARE = 0.1
_AGENT_SHARE = 0.25


@dataclass(frozen=True)
class BestSettings:
    """What the portfolio may spend."""

    time_limit_s: float = 60.0
    """Wall seconds in all (the search stops earlier when the bound proves the plan optimal)."""
    workers: int = 1
    """CP-SAT's search workers; with one, CP-SAT is deterministic for a given amount of work."""
    seed: int = 0
    """Seeds the windows of the neighbourhood search and CP-SAT."""
    windows: int | None = None
    """Neighbourhood windows at most (None: until the time limit): a fixed amount of work, so the
    same seed gives the same plan on any machine that finishes it in time."""
    beam_states: int | None = None
    """States per position of the beam (None: what a quarter of the time allows; 5,000 when
    `windows` fixes the work)."""
    model: Path | None = None
    """A trained agent among the fast planners (None: the shipped one, and only where zero idle
    is impossible: where it is possible the programme finds far better plans)."""
    agent_plans: int = 4
    """The agent's stochastic plans beside its deterministic one."""
    exact_states: int = 60_000
    """Count vectors one position may hold for the exact programme (more: it gives up, and the
    beam and the windows search instead); memory grows with it."""
    window_states: int = 20_000
    """States per position of the programme that re-orders a window."""
    cpsat_s: float | None = None
    """CP-SAT's seconds (None: a tenth of the time left, most of it where zero idle is impossible);
    with `windows` set, CP-SAT's deterministic time."""

    @property
    def fixed_work(self) -> bool:
        """`windows` is set: every stage does a fixed amount of work, the clock only stops it."""
        return self.windows is not None

    def __post_init__(self) -> None:
        if self.time_limit_s <= 0:
            raise UsageError("must be positive", "time_limit", f"{self.time_limit_s:g}")
        if self.workers < 1:
            raise UsageError("must be at least 1", "workers", self.workers)
        if self.windows is not None and self.windows < 0:
            raise UsageError("must not be negative", "windows", self.windows)


@dataclass(frozen=True)
class Improvement:
    """One better plan: when, its twin KPIs, the bound then, and who found it."""

    time_s: float
    idle_s: float
    setup_effort: float
    bound: float | None
    source: str


@dataclass
class BestPlan:
    """What the portfolio knows about its plan: the bound, the gap, the plan's provenance."""

    bound: float | None
    """Lower bound on the setup effort of every zero-idle plan (None: zero idle is impossible)."""
    bound_method: str
    source: str
    """Who found the plan (e.g. `dp (exact)`, `lns window 120-240`, `setup-aware`)."""
    improvements: list[Improvement] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage, in order."""
    stopped: str = ""
    """Why the search ended: `optimal`, `time limit`, `windows`, `interrupted`."""
    idle_s: float = 0.0
    setup_effort: float = 0.0
    wall_s: float = 0.0

    @property
    def gap(self) -> float | None:
        """(effort - bound) / effort of a zero-idle plan (0: proved optimal); else None."""
        return None if self.idle_s > 0 else bound_gap(self.setup_effort, self.bound)

    def summary(self) -> dict[str, object]:
        """The plan's provenance for results.json."""
        return {
            "source": self.source,
            "bound": self.bound,
            "bound_method": self.bound_method,
            "gap": self.gap,
            "stopped": self.stopped,
            "wall_s": round(self.wall_s, 3),
            "stages_s": {k: round(v, 3) for k, v in self.stages.items()},
            "improvements": [asdict(i) | {"time_s": round(i.time_s, 3)} for i in self.improvements],
        }


def progress_line(time_s: float, idle_s: float, effort: float, bound: float | None, source: str) -> str:
    """`   12.3 s  idle 0 s  effort 231  bound 231  gap 0.0%  dp (exact)`."""
    gap = bound_gap(effort, bound) if idle_s == 0 else None
    gap_said = gap_text(gap) if gap is not None else "-"
    bound_said = f"{bound:g}" if bound is not None else "-"
    return (
        f"  {time_s:7.1f} s  idle {idle_s:g} s  effort {effort:g}  bound {bound_said}  gap {gap_said}"
        f"  {source}"
    )


class _Search:
    """The incumbent, the clock and the log of improvements."""

    def __init__(
        self,
        scenario: Scenario,
        settings: BestSettings,
        progress: Progress | None,
        snapshot: LineSnapshot | None = None,
    ) -> None:
        self.scenario = scenario
        self.snapshot = snapshot
        self.settings = settings
        self.progress = progress
        self.start = time.perf_counter()
        self.best: PlannedRun | None = None
        self.sequence: list[int] = []
        self.plan = BestPlan(None, "", "")
        self.model = ZeroIdleModel(scenario, snapshot)
        self.impossible = False
        """Zero idle is proved impossible (the bound says so; set once the bound is known)."""

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def until(self) -> float:
        """The `time.perf_counter()` instant of the time limit."""
        return self.start + self.settings.time_limit_s

    def left(self) -> float:
        return self.settings.time_limit_s - self.elapsed()

    def offer_run(self, run: PlannedRun, source: str) -> bool:
        """Keep `run` if the twin ranks it better than the incumbent; say so."""
        if self.best is not None and rank_key(run.results) >= rank_key(self.best.results):
            return False
        self.best = run
        self.sequence = [b.type for b in run.trace.batches]
        k = run.results
        self.plan.source = source
        found = Improvement(self.elapsed(), k.idle_s, k.setup_effort, self.plan.bound, source)
        self.plan.improvements.append(found)
        if self.progress is not None:
            self.progress(progress_line(found.time_s, found.idle_s, found.setup_effort, found.bound, source))
        return True

    def offer(self, sequence: Sequence[int], source: str) -> bool:
        """Simulate `sequence` in the twin and keep it if better."""
        policy = SequencePolicy.of_types(list(sequence), self.scenario.types, BEST)
        return self.offer_run(self.run(policy), source)

    def run(self, policy: Policy) -> PlannedRun:
        """`policy`'s week (or rest of it, from the snapshot) in the twin."""
        return run_planner(self.scenario, policy, self.snapshot)

    def offer_hint(self, hint: Hint) -> None:
        """A plan made at another size, converted: moved to meet the deadlines, and as cut where
        that differs (with a setup time the deadlines are stricter than the line)."""
        repaired = convert(hint, self.scenario)
        self.offer(repaired, f"{hint.source} converted")
        cut = convert(hint, self.scenario, repair=False)
        if cut != repaired:
            self.offer(cut, f"{hint.source} cut")

    def optimal(self) -> bool:
        """The incumbent has zero idle and meets the bound."""
        bound = self.plan.bound
        return (
            self.best is not None
            and bound is not None
            and self.best.results.idle_s == 0
            and self.complete()
            and self.best.results.setup_effort <= bound + 1e-9
        )

    def complete(self) -> bool:
        """The incumbent builds the whole week (from the snapshot: the rest of it)."""
        if self.best is None or self.best.results.deadlock:
            return False
        if self.snapshot is None:
            return self.best.results.completion == 1.0
        return self.model.is_complete(self.sequence)

    def zero_idle(self) -> bool:
        return self.best is not None and self.best.results.idle_s == 0 and self.model.meets(self.sequence)


def plan_best(
    scenario: Scenario,
    settings: BestSettings | None = None,
    progress: Progress | None = None,
    hints: Sequence[Hint] = (),
    snapshot: LineSnapshot | None = None,
    incumbent: Sequence[int] = (),
) -> tuple[PlannedRun, BestPlan]:
    """The best plan the portfolio finds within the time limit, re-simulated in the twin, and its
    provenance. `hints`: plans made at other batch sizes (converted; the result is never worse
    than any of them in the twin's ranking). Raises UsageError for bad settings or hints.

    From `snapshot` (a decision point of the live mirror or of a run) it plans the rest of the
    week: the run's trace and KPIs begin there, and the coarse sizes and the agent are left out
    (they play whole weeks). `incumbent`: the current plan's types from there on (re-planning
    live: warm start), followed where the mask allows (`FollowPolicy`)."""
    settings = settings or BestSettings()
    search = _Search(scenario, settings, progress, snapshot)
    if snapshot is not None and hints:
        raise UsageError("whole-week hints cannot start from a snapshot", "hints", len(hints))
    for hint in hints:
        convert(hint, scenario)  # a bad hint is said before any work
    stage = "fast plans"
    stage_start = 0.0
    try:
        rules: dict[Policy, PlannedRun] = {
            rule: search.run(rule)
            for rule in (SetupAwarePolicy(), EarliestRunoutPolicy(), SlackGreedyPolicy())
        }
        if incumbent:
            search.offer_run(search.run(FollowPolicy(incumbent, SetupAwarePolicy())), "current plan")
        for rule, ran in rules.items():
            search.offer_run(ran, rule.name)
        for hint in hints:
            search.offer_hint(hint)
        stage, stage_start = _next(search, stage, stage_start, "bound")
        bound = lower_bound(search.model, settings.exact_states)
        search.plan.bound, search.plan.bound_method = bound.value, bound.method
        if bound.plan is not None:
            search.offer(bound.plan.sequence, "dp (exact)")
        search.impossible = bound.method == IMPOSSIBLE
        if (settings.model is not None or search.impossible) and snapshot is None:
            stage, stage_start = _next(search, stage, stage_start, "agent")
            _agent(search)
        if not search.optimal():
            if snapshot is None:
                stage, stage_start = _next(search, stage, stage_start, "coarse sizes")
                _coarse(search)
            if not search.impossible:
                stage, stage_start = _next(search, stage, stage_start, "beam")
                _beam(search)
            stage, stage_start = _next(search, stage, stage_start, "cpsat")
            _cpsat(search)
            if search.zero_idle():
                stage, stage_start = _next(search, stage, stage_start, "windows")
                _windows(search)
            elif search.left() > 1:
                stage, stage_start = _next(search, stage, stage_start, "rollout")
                _rollout(search, sorted(rules, key=lambda r: rank_key(rules[r].results)))
        search.plan.stopped = "optimal" if search.optimal() else _why_stopped(search)
    except KeyboardInterrupt:
        search.plan.stopped = "interrupted"
        if search.best is None:
            raise
    search.plan.stages[stage] = search.elapsed() - stage_start
    assert search.best is not None
    run = search.best
    run.planner = BEST
    run.wall_s = search.plan.wall_s = search.elapsed()
    search.plan.idle_s, search.plan.setup_effort = run.results.idle_s, run.results.setup_effort
    return run, search.plan


def _next(search: _Search, stage: str, since: float, name: str) -> tuple[str, float]:
    now = search.elapsed()
    search.plan.stages[stage] = now - since
    return name, now


def _why_stopped(search: _Search) -> str:
    """`time limit` when the clock ended the search; else `windows` (the fixed work is done) or
    `done` (every stage ended before the time limit, e.g. a rollout that finished)."""
    if search.left() <= 0:
        return "time limit"
    return "windows" if search.settings.fixed_work and search.zero_idle() else "done"


def _coarse(search: _Search) -> None:
    """Plans of the same week at coarser batch sizes, converted to this size: the multiples of b
    up to 100 (a batch splits into whole batches) and 50, largest first, each by the exact
    programme while it fits (w2 at b = 40: 182, below the optimum 207 at b = 50); a tenth of the
    time, or up to 15 s. The first multiple where it no longer fits is planned by the portfolio in
    a third of the time left (so b = 10 starts from a b = 20 plan as good as one found alone)."""
    b = search.scenario.batch_size
    capacity = search.scenario.line.buffer.capacity
    budget_end = search.elapsed() + max(_COARSE_SHARE * search.left(), min(15.0, search.left() / 3))
    first = [s for s in (search.scenario.line.pas.batch_size, 50) if s > b]  # the line's, the paper's
    multiples = sorted(set(range(2 * b, 101, b)) - set(first), reverse=True)
    for size in dict.fromkeys([*first, *multiples]):
        if size > capacity:
            continue
        if search.elapsed() > budget_end and not search.settings.fixed_work:
            break
        coarse = Scenario.build(search.scenario.line, search.scenario.week, size)
        dp = SequenceDp(ZeroIdleModel(coarse))
        plan = dp.solve(search.settings.exact_states, exact_only=True, until=search.until())
        if plan is not None:
            search.offer_hint(Hint.of(plan.sequence, coarse, "dp"))
        elif dp.cut and size in multiples:  # finer sizes hold more states: plan this one by the portfolio
            if search.left() > 3:
                found, how = plan_best(coarse, replace(search.settings, time_limit_s=search.left() / 3))
                built = [x.type for x in found.trace.batches]
                search.offer_hint(Hint.of(built, coarse, f"best ({how.source})"))
            break


def _agent(search: _Search) -> None:
    """The trained agent's best of its plans (the paper's evaluation); skipped, and said, when it
    was trained for another line."""
    from agent.planners.evaluate import evaluate
    from agent.planners.registry import DEFAULT_MODEL
    from agent.planners.rl import RLPolicy

    settings = search.settings
    try:
        policy = RLPolicy.from_file(settings.model or DEFAULT_MODEL)
        policy.check(search.scenario)
    except (UsageError, ModelError) as exc:
        if settings.model is not None:
            raise
        if search.progress is not None:
            search.progress(f"  the shipped agent is left out: {exc}")
        return
    until = search.start + _AGENT_SHARE * settings.time_limit_s  # plays cannot be cut short
    result = evaluate(policy.model, policy.card, search.scenario, settings.agent_plans, settings.seed, until)
    search.offer_run(result.best.run, f"rl (best of {len(result.stochastic) + 1})")


def _beam(search: _Search) -> None:
    """The programme with a cap on the states per position, the incumbent's path kept."""
    dp = SequenceDp(search.model)
    fixed = 5_000 if search.settings.fixed_work else None
    states = (
        search.settings.beam_states
        or fixed
        or int(_BEAM_SHARE * search.left() / (_PER_STATE_S * max(1, search.model.batches)))
    )
    states = max(500, states)
    keep = search.sequence if search.zero_idle() else None
    plan = dp.solve(max_states=states, keep=keep, until=search.until())
    if plan is not None and (keep is None or plan.effort < search.model.effort(keep)):
        search.offer(plan.sequence, f"beam ({states} states)")


def _cpsat(search: _Search) -> None:
    """CP-SAT from the incumbent: a share of the time with zero idle in reach, else most of it."""
    share = 0.6 if search.impossible else _CPSAT_SHARE
    fixed = search.settings.fixed_work  # CP-SAT's deterministic time
    budget = search.settings.cpsat_s or share * (search.settings.time_limit_s if fixed else search.left())
    if budget < 1 and search.settings.cpsat_s is None:
        return
    cpsat = CpSatSettings(budget, search.settings.workers, search.settings.seed, deterministic=fixed)
    try:
        plan = CpSatPlanner(search.scenario, cpsat, search.snapshot).solve(search.sequence)
    except UsageError as exc:  # no plan in its share: the portfolio goes on without it
        if search.progress is not None:
            search.progress(f"  CP-SAT found nothing in {budget:.1f} s: {exc.reason}")
        return
    if plan.from_hint or not plan.sequence:
        return
    for sequence in dict.fromkeys([tuple(plan.sequence), *plan.candidates]):
        search.offer(sequence, f"cpsat ({plan.mode})")


def _rollout(search: _Search, bases: Sequence[Policy]) -> None:
    """Zero idle is out of reach: rollouts over the rules, the one with the least idle first, for
    the time left."""
    from agent.planners.rollout import ROLLOUT, SearchSettings, search_plan

    for base in bases:
        if search.left() < 1:
            return
        limit = None if search.settings.fixed_work else search.left()
        settings = SearchSettings(time_limit_s=limit)
        run, _ = search_plan(search.scenario, ROLLOUT, base, settings, snapshot=search.snapshot)
        search.offer_run(run, f"{ROLLOUT}:{base.name}")


def _windows(search: _Search) -> None:
    """Large-neighbourhood search: re-order a seeded window of the incumbent exactly (the
    programme, capped at `window_states` states), keep the result when the twin confirms it."""
    dp = SequenceDp(search.model)
    if not dp.applies:  # the count vectors do not fit its codes (many types, tiny batches)
        return
    rng = random.Random(search.settings.seed)
    n = search.model.batches
    sizes = [max(8, n * share // 100) for share in (10, 15, 20, 25)]
    done = 0
    while search.left() > 0 and (search.settings.windows is None or done < search.settings.windows):
        size = min(n, sizes[done % len(sizes)])
        lo = rng.randrange(0, n - size + 1)
        done += 1
        current = search.model.effort(search.sequence)
        plan = dp.reoptimise(search.sequence, lo, lo + size, search.settings.window_states, search.until())
        if plan is not None and plan.effort < current - 1e-9:
            search.offer(plan.sequence, f"lns window {lo}-{lo + size - 1}")
