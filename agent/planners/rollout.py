"""Rollout and beam search over a base policy, with the twin as the model (Bertsekas' rollout).

Rollout (`rollout:<base>`): at each decision, every valid type (or the `width` the base prefers
most, where it says what it prefers) is tried and the week finished with the base policy; the plan
followed is the best completed week found so far (the incumbent, first the base's own week), so the
result is never worse than the base alone ("fortified" rollout). Beam search (`beam:<base>`):
`width` partial sequences, each extended by every valid type and scored by the best week that
`depth` decisions of lookahead and then the base complete.

Each trial resumes the line from a checkpoint of the decision point (`twin.line.Line.checkpoint`)
on one reused engine: a decision costs the rest of the week, not all of it. Anytime: when the time
limit is reached the search stops and the incumbent is the plan. Deterministic with a deterministic
base (the same seed and no time limit reached give the same plan).

Search at decision time (`rl+rollout`: the trained agent as base): a rollout with a budget per
decision (`decision_time_s`): the types the agent prefers most are tried first, and no further
trial starts that would end after the decision's budget; then the incumbent's decision is taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.errors import UsageError
from agent.planners.policies import Policy, SequencePolicy
from agent.planners.registry import BEAM, ROLLOUT, SEARCHES
from agent.planners.run import PlannedRun, run_planner
from twin import Decision, DecisionRequest, Scenario
from twin.config import SequenceEntry
from twin.errors import SimulationError
from twin.line import Checkpoint, Engine, Line
from twin.results import RankKey, Results, rank_key
from twin.snapshot import LineSnapshot

__all__ = ["BEAM", "ROLLOUT", "SearchSettings", "SearchStats", "preference", "search_plan"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SearchSettings:
    """What a rollout or beam search may spend."""

    width: int | None = None
    """Rollout: types tried per decision, the base's most preferred first (None: every valid
    type). Beam: partial sequences kept (None: 3)."""
    depth: int = 1
    """Beam: decisions tried before the base completes the week (1: none beyond the new one)."""
    time_limit_s: float | None = None
    """Seconds of search (None: to the end); then the incumbent is the plan."""
    decision_time_s: float | None = None
    """Rollout: seconds of trials per decision (None: every type is tried); a trial that would end
    after it does not start (its length estimated by the longest trial of this decision, else of the
    last decision that tried any, else by the base's own week, scaled to the share of the week left)."""

    def __post_init__(self) -> None:
        if self.width is not None and self.width < 1:
            raise UsageError("must be at least 1", "width", self.width)
        if self.depth < 1:
            raise UsageError("must be at least 1", "depth", self.depth)
        if self.time_limit_s is not None and self.time_limit_s < 0:
            raise UsageError("must not be negative", "time_limit", self.time_limit_s)
        if self.decision_time_s is not None and self.decision_time_s <= 0:
            raise UsageError("must be positive", "decision_time", self.decision_time_s)


BEAM_WIDTH = 3
"""Partial sequences a beam search keeps unless told."""


@dataclass
class SearchStats:
    """What a search spent: simulations from a checkpoint (a rollout gives one up as soon as it
    cannot beat the incumbent), the decisions and working seconds they covered (a decision costs
    at most the rest of the week), improvements, wall time."""

    simulations: int = 0
    decisions: int = 0
    simulated_s: int = 0
    improvements: int = 0
    stopped_early: bool = False
    """The time limit ended the search: the plan is the incumbent at that moment."""
    wall_s: float = 0.0
    base_week_s: float = 0.0
    """Rollout: seconds of the base policy's own week (before the first decision's trials)."""
    decision_s: list[float] = field(default_factory=list)
    """Rollout: seconds of trials of each decision planned."""

    def summary(self) -> dict[str, object]:
        return {
            "simulations": self.simulations,
            "simulated_decisions": self.decisions,
            "simulated_s": self.simulated_s,
            "improvements": self.improvements,
            "stopped_early": self.stopped_early,
            "wall_s": round(self.wall_s, 3),
        }


def preference(policy: Policy, request: DecisionRequest) -> tuple[int, ...]:
    """The valid types best first, as the policy prefers them where it says (`preference`), else
    its own choice first and the others in type order."""
    prefers = getattr(policy, "preference", None)
    if prefers is not None:
        order = tuple(prefers(request))
        return order + tuple(k for k in request.valid if k not in order)
    first = policy(request).type
    return (first, *(k for k in request.valid if k != first))


@dataclass(frozen=True)
class _Week:
    """A completed week: its decisions from the week start and its KPIs."""

    decisions: tuple[Decision, ...]
    results: Results

    @property
    def key(self) -> tuple[RankKey, tuple[tuple[int, int], ...]]:
        """Rank, then the decisions: a total order (ties go to the earlier types)."""
        return rank_key(self.results), _order(self.decisions)


def _order(decisions: Sequence[Decision]) -> tuple[tuple[int, int], ...]:
    return tuple((d.type, d.quantity or 0) for d in decisions)


def _earlier(prefix: Sequence[Decision], decisions: Sequence[Decision]) -> bool:
    """Whether every week that begins with `prefix` comes before `decisions` in type order (the
    prefix differs from them in its last decision at the latest)."""
    return _order(prefix) < _order(decisions[: len(prefix)])


class _Search:
    """The engine, the base policy, the incumbent and the clock of one search."""

    def __init__(
        self,
        scenario: Scenario,
        base: Policy,
        name: str,
        settings: SearchSettings,
        progress: Progress | None,
        snapshot: LineSnapshot | None = None,
    ) -> None:
        self.scenario = scenario
        self.snapshot = snapshot
        self.first = snapshot.decisions if snapshot is not None else 0
        """The index of the first decision planned (the snapshot's)."""
        self.base = base
        self.name = name
        self.settings = settings
        self.progress = progress
        self.engine = Engine()
        self.stats = SearchStats()
        self.incumbent: _Week | None = None
        self._start = time.perf_counter()

    def out_of_time(self) -> bool:
        limit = self.settings.time_limit_s
        if limit is not None and time.perf_counter() - self._start >= limit:
            self.stats.stopped_early = True
            return True
        return False

    def complete(self, line: Line, prefix: Sequence[Decision]) -> _Week:
        """Finish `line` (at a decision point or ended) with the base policy; offer the week."""
        week = self._complete(line, prefix, prune=False)
        assert week is not None
        return week

    def _complete(self, line: Line, prefix: Sequence[Decision], prune: bool) -> _Week | None:
        """`complete`; with `prune`, None as soon as the week cannot beat a complete incumbent
        without deadlock any more (idle time and setup effort only grow as a week goes on)."""
        decisions = list(prefix)
        request = line.pending
        since = request.time_s if request is not None else line.end_s
        bar = self.incumbent.results if prune and self.incumbent is not None else None
        if bar is not None and (bar.deadlock or bar.completion < 1.0):
            bar = None
        ties_win = (
            bar is not None and self.incumbent is not None and _earlier(decisions, self.incumbent.decisions)
        )
        effort = sum(b.setup_effort for b in line.trace.batches)
        while request is not None:
            if bar is not None:
                idle = line.idle_so_far(request.time_s)
                if (idle, effort) > (bar.idle_s, bar.setup_effort) or (
                    (idle, effort) == (bar.idle_s, bar.setup_effort) and not ties_win
                ):
                    self.stats.simulations += 1
                    self.stats.simulated_s += request.time_s - since
                    return None
            decision = self.base(request)
            decisions.append(decision)
            request = line.decide(decision)
            effort += line.trace.batches[-1].setup_effort
            self.stats.decisions += 1
        self.stats.simulations += 1
        self.stats.simulated_s += line.end_s - since
        week = _Week(tuple(decisions), line.results())
        self.offer(week)
        return week

    def offer(self, week: _Week) -> None:
        """Make `week` the incumbent if it ranks better, or as well with an earlier sequence of
        types (a total order: the plan does not depend on the order weeks are found in)."""
        incumbent = self.incumbent
        if incumbent is not None and week.key >= incumbent.key:
            return
        self.incumbent = week
        if incumbent is None or rank_key(week.results) == rank_key(incumbent.results):
            return
        self.stats.improvements += 1
        if self.progress is not None:
            k = week.results
            self.progress(
                f"{time.perf_counter() - self._start:7.1f} s  {self.name}: setup effort "
                f"{k.setup_effort:g}, idle {k.idle_s} s, completion {k.completion:.3f}"
            )

    def trial(self, checkpoint: Checkpoint, prefix: Sequence[Decision], decision: Decision) -> None:
        """The week that takes `decision` at the checkpoint and then follows the base, offered;
        given up as soon as it cannot beat the incumbent."""
        line = Line.restore(checkpoint, self.engine)
        line.decide(decision)
        self._complete(line, [*prefix, decision], prune=True)


def _base_week(search: _Search) -> Checkpoint | None:
    """The base policy's own week (the first incumbent); the checkpoint of the first decision."""
    line = Line(search.scenario, search.engine, search.snapshot)
    if line.start() is None:
        search.complete(line, [])
        return None
    checkpoint = line.checkpoint()
    search.complete(line, [])
    return checkpoint


def _rollout(search: _Search) -> None:
    start = time.perf_counter()
    checkpoint = _base_week(search)
    search.stats.base_week_s = time.perf_counter() - start
    width = search.settings.width
    budget = search.settings.decision_time_s
    assert search.incumbent is not None
    week = max(1, len(search.incumbent.decisions))
    trial_s, trial_left = search.stats.base_week_s, week  # the last trial measured, at decisions left
    chosen: list[Decision] = []
    while checkpoint is not None:
        assert search.incumbent is not None
        request = checkpoint.request
        position = request.index - search.first  # the incumbent's decisions begin at the first one
        follow = search.incumbent.decisions[position]
        start, longest = time.perf_counter(), 0.0
        left = week - position  # a trial simulates the rest of the week: shorter as the week goes on
        estimate = trial_s * left / max(1, trial_left)
        tried = preference(search.base, request)[:width]
        for k in tried:
            if search.out_of_time():
                search.stats.decision_s.append(time.perf_counter() - start)
                return
            if k == follow.type:  # the incumbent's own choice: its week is known
                continue
            began = time.perf_counter()
            if budget is not None and began - start + max(longest, estimate) > budget:
                break
            search.trial(checkpoint, chosen, Decision(k))
            longest = max(longest, time.perf_counter() - began)
        if longest > 0:
            trial_s, trial_left = longest, left
        search.stats.decision_s.append(time.perf_counter() - start)
        follow = search.incumbent.decisions[position]
        chosen.append(follow)
        line = Line.restore(checkpoint, search.engine)
        checkpoint = line.checkpoint() if line.decide(follow) is not None else None


def _lookahead(search: _Search, checkpoint: Checkpoint, prefix: list[Decision], depth: int) -> _Week | None:
    """The best week from the checkpoint over every sequence of up to `depth` decisions tried
    before the base completes it (None: the time ran out first)."""
    best: _Week | None = None
    for k in checkpoint.request.valid:
        if search.out_of_time():
            return best
        line = Line.restore(checkpoint, search.engine)
        decided = [*prefix, Decision(k)]
        request = line.decide(Decision(k))
        week = None
        if request is not None and depth > 1:
            week = _lookahead(search, line.checkpoint(), decided, depth - 1)
        if week is None:
            week = search.complete(line, decided)
        if best is None or week.key < best.key:
            best = week
    return best


def _beam(search: _Search) -> None:
    first = _base_week(search)
    width = search.settings.width or BEAM_WIDTH
    beam: list[tuple[Checkpoint, list[Decision]]] = [] if first is None else [(first, [])]
    while beam:
        children: list[tuple[tuple[RankKey, tuple[tuple[int, int], ...]], Checkpoint, list[Decision]]] = []
        for checkpoint, prefix in beam:
            for k in checkpoint.request.valid:
                if search.out_of_time():
                    return
                line = Line.restore(checkpoint, search.engine)
                decided = [*prefix, Decision(k)]
                request = line.decide(Decision(k))
                if request is None:
                    search.complete(line, decided)
                    continue
                child = line.checkpoint()
                week = (
                    _lookahead(search, child, decided, search.settings.depth - 1)
                    if search.settings.depth > 1
                    else None
                ) or search.complete(line, decided)
                children.append((week.key, child, decided))
        children.sort(key=lambda c: c[0])
        beam = [(child, decided) for _, child, decided in children[:width]]


def search_plan(
    scenario: Scenario,
    kind: str,
    base: Policy,
    settings: SearchSettings | None = None,
    progress: Progress | None = None,
    label: str | None = None,
    snapshot: LineSnapshot | None = None,
) -> tuple[PlannedRun, SearchStats]:
    """Plan the week by `kind` (`rollout` or `beam`) over the deterministic `base` policy; the
    plan is replayed in the twin from the week start (its KPIs are the twin's), labelled `label`
    (default `<kind>:<base name>`). From `snapshot` (a decision point) on when given: the rest of
    the week."""
    if kind not in SEARCHES:
        raise UsageError(f"unknown search {kind!r}; choose {' or '.join(SEARCHES)}", "planner", kind)
    settings = settings or SearchSettings()
    name = label or f"{kind}:{base.name}"
    search = _Search(scenario, base, name, settings, progress, snapshot)
    (_rollout if kind == ROLLOUT else _beam)(search)
    assert search.incumbent is not None
    types = scenario.types
    entries = [SequenceEntry(type=types[d.type], quantity=d.quantity) for d in search.incumbent.decisions]
    run = run_planner(scenario, SequencePolicy(entries, types, name), snapshot)
    if run.results.to_dict() != search.incumbent.results.to_dict():  # a checkpoint that was not exact
        raise SimulationError(f"{name}: the plan replayed from the week start differs from its search")
    search.stats.wall_s = time.perf_counter() - search._start
    run.planner, run.wall_s = name, search.stats.wall_s
    return run, search.stats
