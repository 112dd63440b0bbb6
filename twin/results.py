"""What a run leaves behind: its trace (batches, consumption runs, waits, PAS states) and the KPIs
of `problem.md` computed from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from twin.config import SequenceEntry
from twin.scenario import Interval, Scenario
from twin.stock import Segment


@dataclass(slots=True)
class BatchRecord:
    """One PAS batch, from decision to buffer entry (times in working seconds)."""

    type: int
    quantity: int
    decided_s: int
    setup_effort: float
    changeover: bool
    finished_s: int | None = None
    entered_s: int | None = None


@dataclass(slots=True)
class Trace:
    """Everything that happened in a run, at the granularity the model works in."""

    batches: list[BatchRecord] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    waits: list[tuple[int, int, int, int]] = field(default_factory=list)  # (fas, type, start, end)
    pas_work: list[Interval] = field(default_factory=list)
    pas_blocked: list[Interval] = field(default_factory=list)
    max_fill: int = 0
    max_fill_by_type: list[int] = field(default_factory=list)

    def record_fill(self, stock: list[int]) -> None:
        """Fold one state of the buffer (units per type) into the maximum fills."""
        self.max_fill = max(self.max_fill, sum(stock))
        self.max_fill_by_type = [max(a, b) for a, b in zip(self.max_fill_by_type, stock, strict=True)]

    def sequence(self, types: list[str]) -> list[SequenceEntry]:
        """The PAS batch sequence of the run, as `sequence.csv` writes it (replays to the same KPIs)."""
        return [SequenceEntry(type=types[b.type], quantity=b.quantity) for b in self.batches]


def down_s(intervals: tuple[Interval, ...], end: int) -> int:
    """Seconds of `intervals` (working seconds, start-sorted or not) before `end`."""
    return sum(max(0, min(b, end) - a) for a, b in intervals if a < end)


RankKey = tuple[bool, float, int, float]
"""(deadlock, -completion, idle seconds, setup effort): smaller is better."""


def completion(consumed: int, planned: int) -> float:
    """Share of the planned units the FAS consumed (1.0 for a week without plans)."""
    return consumed / planned if planned else 1.0


@dataclass(frozen=True)
class Kpis:
    """The KPIs of a week so far, under the names of `problem.md` (times in working seconds): what
    the live mirror knows of the real week, and the first of a run's `Results`."""

    idle_s: int
    idle_s_by_station: dict[str, int]
    setup_effort: float
    setups: int
    batches: int
    completion: float
    units_planned: int
    units_consumed: int


@dataclass(frozen=True)
class Results(Kpis):
    """KPIs of one run: its `Kpis`, then what a run to its end knows."""

    units_produced: int
    shortfall_s: int
    """FAS working time of the planned units never built (0 unless the run deadlocked)."""
    deadlock: bool
    makespan_s: int
    makespan_at: str
    overtime_s: int
    utilisation: dict[str, float]
    pas_busy_s: int
    pas_blocked_s: int
    buffer_mean_fill: float
    buffer_max_fill: int
    buffer_mean_fill_by_type: dict[str, float]
    buffer_max_fill_by_type: dict[str, int]
    final_stock: dict[str, int]
    batch_size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rank_key(self) -> RankKey:
        """Lexicographic ranking of `problem.md`: smaller is better (see `rank_key`)."""
        return rank_key(self)


HEADLINE = {
    "deadlock": "deadlock",
    "completion": "completion",
    "idle_s": "idle (s)",
    "setup_effort": "setup effort",
    "setups": "setups",
}
"""The headline KPIs of a run: the ranking's, in its order (`rank_key`), and the number of setups;
with their column heads for readers. Every table, summary and printout of KPIs shows these."""


def headline(results: Results, *more: str) -> dict[str, Any]:
    """The headline KPIs of a run by name, then the fields `more` of its `Results`."""
    return {name: getattr(results, name) for name in (*HEADLINE, *more)}


def kpi_text(name: str, value: object) -> str:
    """A KPI as a table cell shows it: a deadlock as yes or no, the completion to three decimals,
    the makespan's instant to the minute, other numbers in `%g`."""
    if name == "deadlock":
        return "yes" if value else "no"
    if name == "completion" and isinstance(value, float):
        return f"{value:.3f}"
    if name == "makespan_at" and isinstance(value, str):
        return value[:16].replace("T", " ")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def rank_key(kpis: Results | Mapping[str, Any]) -> RankKey:
    """The one ranking of plans, for every table, plot and summary (smaller is better): a plan
    without deadlock before one with a deadlock, then higher completion, then less idle time, then
    less setup effort. Takes `Results` or their dict (`to_dict`, a summary's plan, a table row)."""
    if isinstance(kpis, Results):
        return (kpis.deadlock, -kpis.completion, kpis.idle_s, kpis.setup_effort)
    return (
        bool(kpis["deadlock"]),
        -float(kpis["completion"]),
        int(kpis["idle_s"]),
        float(kpis["setup_effort"]),
    )


def failure(kpis: Results | Mapping[str, Any]) -> str | None:
    """How a plan failed, for the mark next to it: `deadlock at 1.8% done`, `incomplete: 95.0%
    done`, or None for a complete plan without deadlock (its idle time and effort are comparable)."""
    deadlock, done = (
        (kpis.deadlock, kpis.completion)
        if isinstance(kpis, Results)
        else (bool(kpis["deadlock"]), float(kpis["completion"]))
    )
    if deadlock:
        return f"deadlock at {done:.1%} done"
    if done < 1.0:
        return f"incomplete: {done:.1%} done"
    return None


def compute_results(
    scenario: Scenario,
    trace: Trace,
    end_s: int,
    deadlock: bool,
    consumed: list[int],
    idle: list[int],
    final_stock: list[int],
) -> Results:
    types, stations = scenario.types, scenario.stations
    n = len(types)
    take_sum = [0] * n
    for seg in trace.segments:
        take_sum[seg.type] += seg.take_sum()
    entry_sum = [0] * n
    produced = 0
    for b in trace.batches:
        if b.entered_s is not None:
            entry_sum[b.type] += b.entered_s * b.quantity
            produced += b.quantity
    area = [take_sum[k] + final_stock[k] * end_s - entry_sum[k] for k in range(n)]
    initial_total = sum(scenario.initial_stock)
    mean_by_type = [a / end_s if end_s else float(scenario.initial_stock[k]) for k, a in enumerate(area)]
    downtime = scenario.downtime
    utilisation: dict[str, float] = {}
    pas_busy = sum(min(b, end_s) - a for a, b in trace.pas_work if a < end_s)
    pas_available = end_s - down_s(downtime[-1], end_s)
    utilisation["PAS"] = pas_busy / pas_available if pas_available else 0.0
    for f, station in enumerate(stations):
        available = end_s - down_s(downtime[f], end_s)
        busy = consumed[f] * scenario.fas_unit_s[f]
        utilisation[station] = busy / available if available else 0.0
    planned = scenario.planned_units
    cal = scenario.calendar
    return Results(
        idle_s=sum(idle),
        idle_s_by_station=dict(zip(stations, idle, strict=True)),
        setup_effort=float(sum(b.setup_effort for b in trace.batches)),
        setups=sum(b.changeover for b in trace.batches),
        batches=len(trace.batches),
        completion=completion(sum(consumed), planned),
        units_planned=planned,
        units_consumed=sum(consumed),
        units_produced=produced,
        shortfall_s=sum(
            (sum(q for _, q in plan) - done) * unit
            for plan, done, unit in zip(scenario.plans, consumed, scenario.fas_unit_s, strict=True)
        ),
        deadlock=deadlock,
        makespan_s=end_s,
        makespan_at=cal.datetime_of(end_s).isoformat(),
        overtime_s=max(0, end_s - cal.week_work_s),
        utilisation=utilisation,
        pas_busy_s=pas_busy,
        pas_blocked_s=sum(min(b, end_s) - a for a, b in trace.pas_blocked if a < end_s),
        buffer_mean_fill=sum(mean_by_type) if end_s else float(initial_total),
        buffer_max_fill=trace.max_fill,
        buffer_mean_fill_by_type=dict(zip(types, mean_by_type, strict=True)),
        buffer_max_fill_by_type=dict(zip(types, trace.max_fill_by_type, strict=True)),
        final_stock=dict(zip(types, final_stock, strict=True)),
        batch_size=scenario.batch_size,
    )
