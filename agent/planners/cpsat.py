"""The exact planner: a CP-SAT model of the week's PAS sequence (OR-Tools).

A complete run builds a fixed multiset of batches (the action mask of `problem.md` allows a type
while its remaining requirement is positive), so a plan is an order of that multiset. Without
idle time the FAS take at nominal pace and the PAS enters the batch at position `i` at a time that
does not depend on the order (`twin.timeline`), so "zero idle" becomes: the `j`-th batch of type
`k` sits at a position that enters before the take that needs it. The model:

- `x[i, k]`: position `i` builds type `k`; `c[i, k]`: batches of `k` among positions `0..i`
  (`c[-1, k] = 0`, `c[N-1, k] = n_k`); a deadline is the bound `c[P, k] >= j`;
- `y[i, a, b]`: the changeover from position `i-1` to `i` as a flow (`sum_b y = x[i-1, a]`,
  `sum_a y = x[i, b]`), which gives the LP relaxation, hence the lower bound, some strength;
- objective: the setup effort `S[initial, x_0] + sum S[a, b] y[i, a, b]`.

When no order meets every deadline, the minimal-idle stage estimates each FAS's idle time as the
largest lateness of the batches it waits for (a FAS that waited is late for the rest of its plan,
so the largest lateness is its delay), minimises the sum, then the setup effort at that estimate.
It is an estimate: the twin's KPIs of the sequence are what `linetwin plan` reports.

With a setup time the entry times assume a changeover before every batch: the zero-idle plans
found are zero-idle in the twin too, but the bound then holds for that stricter model only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from ortools.sat.python import cp_model

from agent.errors import UsageError
from agent.planners.bound import window_bound
from agent.planners.deadlines import Deadline, ZeroIdleModel
from agent.planners.policies import EarliestRunoutPolicy, SequencePolicy, SetupAwarePolicy, SlackGreedyPolicy
from agent.planners.registry import CPSAT
from agent.planners.run import PlannedRun, run_planner
from twin import Scenario
from twin.snapshot import LineSnapshot

ZERO_IDLE = "zero-idle"
MIN_IDLE = "min-idle"
STAGE_ZERO_IDLE = "zero idle"
STAGE_LEAST_IDLE = "least idle"
STAGE_EFFORT = "setup effort"
_EFFORT_SCALE_MAX = 10**6
_FIRST_WINDOW = 32  # positions a batch may slip past its deadline in the minimal-idle stage


@dataclass(frozen=True)
class CpSatSettings:
    """How long and how wide CP-SAT searches."""

    time_limit_s: float = 60.0
    """Wall-time limit of the whole plan (both stages when zero idle is impossible)."""
    workers: int = 2
    """Parallel search workers (the machine's cores). With more than one and a time limit, the
    incumbent can differ between runs: CP-SAT's parallel search is not deterministic."""
    seed: int = 0
    """CP-SAT's random seed."""
    deterministic: bool = False
    """Also stop at `time_limit_s` of CP-SAT's deterministic time (its measure of work), so that
    with one worker the same model gives the same plan on a machine fast enough to get there."""


@dataclass(frozen=True)
class CpSatPlan:
    """The solver's answer: a PAS sequence and what the model knows about it."""

    sequence: list[int]
    """Type index per position."""
    mode: str
    """`zero-idle` (every deadline met) or `min-idle` (zero idle is impossible or was not found)."""
    status: str
    """CP-SAT status of the stage that produced the sequence: OPTIMAL, FEASIBLE, ... (every
    stage's own status is in `stages`)."""
    setup_effort: float
    """The model's setup effort of the sequence (the incumbent): a model figure, which the twin's
    run of the kept sequence may not share (`kept_incumbent`)."""
    bound: float | None
    """Lower bound on the setup effort of every zero-idle plan (None in `min-idle` mode, or when a
    setup time makes the model stricter than the line)."""
    zero_idle: str
    """`feasible`, `infeasible` (proved by the model) or `unknown` (time ran out)."""
    idle_estimate_s: int | None
    """The model's idle estimate (0 in zero-idle mode; None for the starting rule plan)."""
    wall_s: float
    batches: int
    from_hint: bool = False
    """True when the plan is the starting (rule) plan because CP-SAT returned nothing better
    within the limit, or nothing the twin ranks better; said in every summary, never silent."""
    candidates: tuple[tuple[int, ...], ...] = ()
    """Min-idle mode: every improving solution, since the idle estimate may rank them otherwise
    than the twin does (`plan_with_cpsat` simulates them all and keeps the twin's best)."""
    stages: tuple[tuple[str, str], ...] = ()
    """Every solve as it ended: (stage, CP-SAT status), e.g. (`zero idle`, `UNKNOWN`),
    (`least idle`, `OPTIMAL`), (`setup effort`, `FEASIBLE`). A zero-idle stage the deadlines
    prove infeasible before any solve is not among them (`zero_idle` says so)."""
    simulated: int = 1
    """Sequences the twin ran (the incumbent and, in min-idle mode, every other solution)."""
    kept_incumbent: bool = True
    """Whether the twin kept the model's incumbent (else another solution the twin ranks better)."""

    def summary(self) -> dict[str, object]:
        """Everything but the sequences, for results files; the model's own figures are named
        `model_*` (the twin's KPIs of the kept sequence are beside them, in `kpis`)."""
        data = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("sequence", "candidates", "stages", "setup_effort", "idle_estimate_s")
        }
        return {
            **data,
            "stages": dict(self.stages),
            "model_setup_effort": self.setup_effort,
            "model_idle_estimate_s": self.idle_estimate_s,
            "gap": self.gap,
        }

    @property
    def gap(self) -> float | None:
        """Relative gap between the model's incumbent and its bound (0 = proved optimal)."""
        return bound_gap(self.setup_effort, self.bound)


def bound_gap(effort: float, bound: float | None) -> float | None:
    """The gap of a setup effort to a lower bound on it: 0 where it meets the bound (proved
    optimal, also at effort 0), else `relative_gap`; None without a bound."""
    if bound is None:
        return None
    return 0.0 if effort <= bound else relative_gap(effort, bound)


def relative_gap(value: float, reference: float | None) -> float | None:
    """The optimality gap of `value` against `reference`, as CP-SAT states its own:
    (value - reference) / value, the share of the effort `reference` would save (negative: `value`
    is the smaller), rounded once to the 0.1 % every table and summary shows (rounding twice made
    86.25 % read 86.2 % in a table and 86.3 % in a summary); None without a reference or for a
    value of 0."""
    if reference is None or value <= 0:
        return None
    return round((value - reference) / value, 3)


def gap_text(gap: float) -> str:
    """A gap as every table and summary shows it: `86.3%`."""
    return f"{gap:.1%}"


Progress = Callable[[str], None]


def check_cpsat(scenario: Scenario, settings: CpSatSettings) -> None:
    """What CP-SAT would refuse, said before anything runs: its settings and the line's efforts."""
    if settings.time_limit_s <= 0:
        raise UsageError("must be positive", "time_limit", f"{settings.time_limit_s:g}")
    if settings.workers < 1:
        raise UsageError("must be at least 1", "workers", settings.workers)
    _effort_scale(scenario.setup_effort)


class CpSatPlanner:
    """Builds and solves the CP-SAT model of one scenario."""

    def __init__(
        self, scenario: Scenario, settings: CpSatSettings | None = None, snapshot: LineSnapshot | None = None
    ) -> None:
        """The week from its start, or the rest of it from `snapshot` (a decision point)."""
        self.scenario = scenario
        self.settings = settings or CpSatSettings()
        check_cpsat(scenario, self.settings)
        self.model = ZeroIdleModel(scenario, snapshot)
        self.timeline = self.model.timeline
        self.counts = self.model.counts
        self.batches = self.model.batches
        self.exact = self.model.exact
        self.entries = self.model.entries
        self.scale = _effort_scale(scenario.setup_effort)

    # -- public --------------------------------------------------------------------------------
    def solve(self, hint: Sequence[int] | None = None, progress: Progress | None = None) -> CpSatPlan:
        """The best sequence CP-SAT finds within the time limit. `hint`: a known sequence (e.g. a
        rule's plan) to start from; CP-SAT then never returns anything worse under the model."""
        start = time.perf_counter()
        if self.batches == 0:
            return CpSatPlan([], ZERO_IDLE, "OPTIMAL", 0.0, 0.0, "feasible", 0, 0.0, 0)
        if hint is not None and sorted(hint) != sorted(
            k for k, n in enumerate(self.counts) for _ in range(n)
        ):
            hint = None  # not a complete plan of this week (e.g. a deadlocked run)
        deadlines = self._deadline_positions()
        possible = self.model.zero_idle_possible
        # with a setup time the model is stricter than the line: its "impossible" proves nothing
        zero_idle = "unknown" if possible or not self.exact else "infeasible"
        if possible:
            model = _SequenceModel(self, hint)
            for k, j, p, _ in deadlines:
                model.model.add(model.c[p][k] >= j)
            floor = window_bound(self.model)
            model.model.add(model.effort >= round(floor * self.scale))
            hint_ok = hint is not None and self.model.meets(hint)
            budget = self._left(start) if hint_ok else self._left(start) / 2
            status, solver = model.run(self.settings, budget, progress, STAGE_ZERO_IDLE)
            stages = [(STAGE_ZERO_IDLE, _status_name(model, solver, status))]
            solved = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
            if solved or hint_ok:
                sequence = model.sequence(solver) if solved else []
                effort = self._effort(solver.objective_value) if solved else math.inf
                hint_effort = self._sequence_effort(hint) if hint_ok and hint is not None else math.inf
                from_hint = hint_effort < effort
                if from_hint:  # a short run may end before CP-SAT has completed the hint
                    sequence, effort = list(hint or []), hint_effort
                bound = max(floor, self._effort(solver.best_objective_bound)) if solved else floor
                return CpSatPlan(
                    sequence,
                    ZERO_IDLE,
                    solver.status_name(status),
                    effort,
                    bound if self.exact else None,
                    "feasible",
                    0,
                    time.perf_counter() - start,
                    self.batches,
                    from_hint,
                    stages=tuple(stages),
                )
            if status == cp_model.INFEASIBLE and self.exact:
                zero_idle = "infeasible"
        else:
            stages = []
        return self._min_idle(deadlines, hint, start, zero_idle, progress, stages)

    # -- stages --------------------------------------------------------------------------------
    def _min_idle(
        self,
        deadlines: list[Deadline],
        hint: Sequence[int] | None,
        start: float,
        zero_idle: str,
        progress: Progress | None,
        stages: list[tuple[str, str]],
    ) -> CpSatPlan:
        window = _FIRST_WINDOW
        found: list[tuple[int, ...]] = []
        while True:
            model = _SequenceModel(self, hint)
            delay = model.lateness(deadlines, window)
            budget = self._left(start) / 2
            status, solver = model.run(self.settings, budget, progress, STAGE_LEAST_IDLE, delay, found)
            if status != cp_model.INFEASIBLE or window >= self.batches:
                break
            window *= 2  # some batch must slip further than the window allowed
        stage = _status_name(model, solver, status)
        stages.append((STAGE_LEAST_IDLE, stage))
        if status == cp_model.UNKNOWN and hint is not None:  # time ran out: the rule plan stands
            return CpSatPlan(
                list(hint),
                MIN_IDLE,
                stage,
                self._sequence_effort(hint),
                None,
                zero_idle,
                None,
                time.perf_counter() - start,
                self.batches,
                from_hint=True,
                stages=tuple(stages),
            )
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            hint_more = "; give it more time" if status == cp_model.UNKNOWN else ""
            raise UsageError(
                f"CP-SAT found no plan ({stages_text(stages)} after {time.perf_counter() - start:.1f} s)"
                + hint_more,
                "time_limit",
                f"{self.settings.time_limit_s:g}",
            )
        idle = round(solver.objective_value)
        model.model.add(delay <= idle)
        model.hint_solution(solver)
        status, solver2 = model.run(self.settings, self._left(start), progress, STAGE_EFFORT, None, found)
        stages.append((STAGE_EFFORT, _status_name(model, solver2, status)))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            solver = solver2
            stage = solver.status_name(status)
            effort = self._effort(solver.objective_value)
        else:  # the idle-stage solution stands
            effort = self._effort(model.effort_value(solver))
        return CpSatPlan(
            model.sequence(solver),
            MIN_IDLE,
            stage,
            effort,
            None,
            zero_idle,
            idle,
            time.perf_counter() - start,
            self.batches,
            candidates=tuple(dict.fromkeys(found)),
            stages=tuple(stages),
        )

    # -- helpers -------------------------------------------------------------------------------
    def _left(self, start: float) -> float:
        if self.settings.deterministic:  # a measure of work: each stage may spend all of it
            return self.settings.time_limit_s
        return max(0.5, self.settings.time_limit_s - (time.perf_counter() - start))

    def _sequence_effort(self, sequence: Sequence[int]) -> float:
        return self.model.effort(sequence)

    def _effort(self, scaled: float) -> float:
        return round(scaled) / self.scale

    def _deadline_positions(self) -> list[Deadline]:
        """Every batch's deadline as the last position that meets it."""
        return self.model.deadlines


class _SequenceModel:
    """The variables every stage shares: the sequence, its prefix counts and its changeovers."""

    def __init__(self, planner: CpSatPlanner, hint: Sequence[int] | None) -> None:
        self.planner = planner
        sc = planner.scenario
        counts = planner.counts
        n_pos = planner.batches
        types = [k for k, n in enumerate(counts) if n > 0]
        self.types = types
        m = cp_model.CpModel()
        self.model = m
        self.x = [{k: m.new_bool_var(f"x{i}_{k}") for k in types} for i in range(n_pos)]
        self.c: list[dict[int, cp_model.IntVar]] = []
        for i in range(n_pos):
            m.add_exactly_one(self.x[i].values())
            row = {}
            for k in types:
                lo = max(0, counts[k] - (n_pos - 1 - i))
                hi = min(counts[k], i + 1)
                row[k] = m.new_int_var(lo, hi, f"c{i}_{k}")
                m.add(row[k] == (self.c[i - 1][k] if i else 0) + self.x[i][k])
            self.c.append(row)
        for k in types:
            m.add(self.c[-1][k] == counts[k])
        scale = planner.scale
        effort = sc.setup_effort
        terms: list[cp_model.LinearExprT] = []
        coefs: list[int] = []
        previous = planner.model.previous
        if previous is not None:
            for k in types:
                terms.append(self.x[0][k])
                coefs.append(round(effort[previous][k] * scale))
        for i in range(1, n_pos):
            y = {(a, b): m.new_bool_var(f"y{i}_{a}_{b}") for a in types for b in types}
            for a in types:
                m.add(sum(y[a, b] for b in types) == self.x[i - 1][a])
                m.add(sum(y[b, a] for b in types) == self.x[i][a])
            for (a, b), var in y.items():
                cost = round(effort[a][b] * scale)
                if a != b and cost:
                    terms.append(var)
                    coefs.append(cost)
        self.effort = cp_model.LinearExpr.weighted_sum(terms, coefs)
        if hint is not None:
            self._hint(hint)

    def _hint(self, sequence: Sequence[int]) -> None:
        seen = dict.fromkeys(self.types, 0)
        for i, t in enumerate(sequence):
            seen[t] += 1
            for k in self.types:
                self.model.add_hint(self.x[i][k], k == t)
                self.model.add_hint(self.c[i][k], seen[k])

    def hint_solution(self, solver: cp_model.CpSolver) -> None:
        self.model.clear_hints()  # type: ignore[no-untyped-call]
        self._hint(self.sequence(solver))

    def lateness(self, deadlines: list[Deadline], window: int) -> cp_model.LinearExprT:
        """Minimal-idle stage: each batch may enter up to `window` positions after its deadline;
        a FAS's delay is the largest lateness of the batches it waits for. Returns the sum of the
        delays, the first objective (the setup effort follows in a second solve)."""
        m = self.model
        planner = self.planner
        finite = [e for e in planner.entries if e is not None]
        horizon = (finite[-1] if finite else 0) + planner.batches * planner.scenario.batch_size * (
            planner.scenario.line.pas.unit_time_s
        )
        entry = [e if e is not None else horizon for e in planner.entries]
        n_pos = planner.batches
        delays: dict[int, cp_model.IntVar] = {}
        for k, j, p, due in deadlines:
            last = min(n_pos - 1, p + window)
            m.add(self.c[last][k] >= j)
            terms: list[cp_model.LinearExprT] = []
            coefs: list[int] = []
            const = entry[0] - due.time_s if p < 0 else 0  # late even at position 0
            for i in range(max(p, 0), last):  # batch j later than position i: enters at entry[i+1]
                step = entry[i + 1] - max(entry[i], due.time_s)
                late = m.new_bool_var(f"late{k}_{j}_{i}")
                m.add(self.c[i][k] <= j - 1).only_enforce_if(late)
                m.add(self.c[i][k] >= j).only_enforce_if(late.Not())
                terms.append(late)
                coefs.append(step)
            if due.fas not in delays:
                delays[due.fas] = m.new_int_var(0, horizon, f"delay{due.fas}")
            m.add(delays[due.fas] >= cp_model.LinearExpr.weighted_sum(terms, coefs) + const)
        return sum(delays.values())

    def run(
        self,
        settings: CpSatSettings,
        budget_s: float,
        progress: Progress | None,
        stage: str,
        objective: cp_model.LinearExprT | None = None,
        found: list[tuple[int, ...]] | None = None,
    ) -> tuple[cp_model.CpSolverStatus, cp_model.CpSolver]:
        """Solve for `objective` (default: the setup effort); `found` collects every solution."""
        self.model.minimize(self.effort if objective is None else objective)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = budget_s
        if settings.deterministic:
            solver.parameters.max_deterministic_time = budget_s
            solver.parameters.max_time_in_seconds = max(budget_s, 10 * settings.time_limit_s)
        solver.parameters.num_workers = settings.workers
        solver.parameters.random_seed = settings.seed
        callback = _Reporter(progress, stage, self.planner.scale if objective is None else 1)
        if found is not None:
            callback.collect(self.x, found)
        status = solver.solve(self.model, callback)
        return status, solver

    def sequence(self, solver: cp_model.CpSolver) -> list[int]:
        return _read_sequence(self.x, solver.boolean_value)

    def effort_value(self, solver: cp_model.CpSolver) -> float:
        return float(solver.value(self.effort))


class _Reporter(cp_model.CpSolverSolutionCallback):
    """Reports improving solutions (at most one line per `every_s`): seconds, incumbent, bound."""

    every_s = 2.0

    def __init__(self, progress: Progress | None, stage: str, scale: int) -> None:
        super().__init__()
        self.progress = progress
        self.stage = stage
        self.scale = scale
        self.last_s = -self.every_s
        self.rows: list[dict[int, cp_model.IntVar]] = []
        self.found: list[tuple[int, ...]] | None = None

    def collect(self, rows: list[dict[int, cp_model.IntVar]], found: list[tuple[int, ...]]) -> None:
        """Also append the sequence of every solution to `found`."""
        self.rows, self.found = rows, found

    def on_solution_callback(self) -> None:
        if self.found is not None:
            self.found.append(tuple(_read_sequence(self.rows, self.boolean_value)))
        if self.progress is not None and self.wall_time >= self.last_s + self.every_s:
            self.last_s = self.wall_time
            self.progress(
                f"  {self.wall_time:7.1f} s  model, {self.stage} stage: incumbent "
                f"{self.objective_value / self.scale:g}, bound {self.best_objective_bound / self.scale:g}"
            )


def _status_name(model: _SequenceModel, solver: cp_model.CpSolver, status: cp_model.CpSolverStatus) -> str:
    """The stage's CP-SAT status as it is; MODEL_INVALID with CP-SAT's reason."""
    name = solver.status_name(status)
    if status == cp_model.MODEL_INVALID:
        reason = model.model.validate()
        return f"{name} ({reason})" if reason else name
    return name


def stages_text(stages: Sequence[tuple[str, str]]) -> str:
    """`zero idle UNKNOWN, least idle OPTIMAL, setup effort FEASIBLE`: each stage as it ended."""
    return ", ".join(f"{stage} {status}" for stage, status in stages)


def _read_sequence(
    rows: list[dict[int, cp_model.IntVar]], value: Callable[[cp_model.IntVar], bool]
) -> list[int]:
    """The type chosen at each position of a solution."""
    return [next(k for k, var in row.items() if value(var)) for row in rows]


def _effort_scale(matrix: tuple[tuple[float, ...], ...]) -> int:
    """The power of ten that makes every setup effort an integer (CP-SAT is integral)."""
    scale = 1
    values = [v for row in matrix for v in row]
    while scale <= _EFFORT_SCALE_MAX:
        if all(math.isclose(v * scale, round(v * scale), abs_tol=1e-9) for v in values):
            return scale
        scale *= 10
    raise UsageError("setup_effort: the exact planner needs efforts with at most 6 decimals")


def plan_with_cpsat(
    scenario: Scenario, settings: CpSatSettings | None = None, progress: Progress | None = None
) -> tuple[PlannedRun, CpSatPlan]:
    """Solve the week with CP-SAT (starting from the better rule plan) and simulate the sequence
    in the twin: the run's KPIs are the twin's, the plan carries what the solver knows."""
    start = time.perf_counter()
    hints = [
        run_planner(scenario, rule()) for rule in (SetupAwarePolicy, EarliestRunoutPolicy, SlackGreedyPolicy)
    ]
    hint = min(hints, key=lambda r: r.results.rank_key())
    plan = CpSatPlanner(scenario, settings).solve([b.type for b in hint.trace.batches], progress)
    runs = [
        run_planner(scenario, SequencePolicy.of_types(seq, scenario.types, CPSAT))
        for seq in dict.fromkeys([tuple(plan.sequence), *plan.candidates])
    ]
    run = min(runs, key=lambda r: r.results.rank_key())  # the first (the incumbent) on a tie
    kept_incumbent, from_hint = run is runs[0], plan.from_hint
    if hint.results.rank_key() < run.results.rank_key():  # the model's estimates misled it
        run, kept_incumbent, from_hint = replace(hint), False, True
    run.planner = CPSAT
    run.wall_s = time.perf_counter() - start
    return run, replace(plan, simulated=len(runs), kept_incumbent=kept_incumbent, from_hint=from_hint)
