"""A planned run: one planner plays a week on the twin; its KPIs, trace and wall time."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from agent.planners.policies import Policy
from twin import Line, Results, Scenario, Trace, simulate
from twin.config import SequenceOrigin
from twin.results import HEADLINE, headline, kpi_text
from twin.snapshot import LineSnapshot


@dataclass
class PlannedRun:
    """One planner's run of a week: its KPIs, trace and wall time."""

    planner: str
    results: Results
    trace: Trace
    wall_s: float


def run_planner(scenario: Scenario, policy: Policy, snapshot: LineSnapshot | None = None) -> PlannedRun:
    """`policy`'s week in the twin; from `snapshot` on when given (its trace and KPIs then begin
    there: the rest of the week)."""
    start = time.perf_counter()
    if snapshot is None:
        results, trace = simulate(scenario, policy)
    else:
        line = Line(scenario, None, snapshot)
        results, trace = line.run(policy), line.trace
    return PlannedRun(policy.name, results, trace, time.perf_counter() - start)


def kpi_table(runs: Sequence[PlannedRun]) -> str:
    """A plain-text table of the headline KPIs, one row per planner."""
    head = ("planner", *HEADLINE, "makespan", "max fill", "wall")
    rows = [head]
    for r in runs:
        kpis = headline(r.results, "makespan_at", "buffer_max_fill")
        cells = [kpi_text(name, value) for name, value in kpis.items()]
        rows.append((r.planner, *cells, f"{r.wall_s * 1000:.0f} ms"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def made_for(scenario: Scenario, week_folder: object) -> SequenceOrigin:
    """What a sequence planned for `scenario` is made for (its `sequence.meta.json`); the week
    folder as the user named it, else the week's first day."""
    week = scenario.week
    label = week.week_start.isoformat() if week_folder is None else str(week_folder)
    return SequenceOrigin.of(scenario.line.name, label, week, scenario.batch_size)
