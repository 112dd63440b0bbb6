"""Running planners on a week and writing what they planned: KPIs, sequence and plots."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UsageError
from agent.policies import Policy
from twin import Results, Scenario, Trace, simulate, write_sequence


@dataclass
class PlannedRun:
    """One planner's run of a week: its KPIs, trace and wall time."""

    planner: str
    results: Results
    trace: Trace
    wall_s: float


def run_planner(scenario: Scenario, policy: Policy) -> PlannedRun:
    start = time.perf_counter()
    results, trace = simulate(scenario, policy)
    return PlannedRun(policy.name, results, trace, time.perf_counter() - start)


def kpi_table(runs: Sequence[PlannedRun]) -> str:
    """A plain-text table of the headline KPIs, one row per planner."""
    head = (
        "planner",
        "deadlock",
        "completion",
        "idle_s",
        "setup_effort",
        "setups",
        "makespan",
        "max fill",
        "wall",
    )
    rows = [head]
    for r in runs:
        k = r.results
        rows.append(
            (
                r.planner,
                "yes" if k.deadlock else "no",
                f"{k.completion:.3f}",
                str(k.idle_s),
                f"{k.setup_effort:g}",
                str(k.setups),
                k.makespan_at[:16].replace("T", " "),
                str(k.buffer_max_fill),
                f"{r.wall_s * 1000:.0f} ms",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_run(out: Path, scenario: Scenario, run: PlannedRun, meta: dict[str, object]) -> list[Path]:
    """results.json, sequence.csv, the timed schedule beside it and the plots of one run."""
    from twin.plots import plot_run  # matplotlib only when writing
    from twin.schedule import write_schedule

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder: {exc.strerror}") from None
    payload = {**meta, "planner": run.planner, "wall_s": round(run.wall_s, 4), "kpis": run.results.to_dict()}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_sequence(out / "sequence.csv", run.trace.sequence(scenario.types))
    schedule = write_schedule(out / "sequence.csv", scenario, run.trace)
    plots = plot_run(scenario, run.trace, run.results, out)
    return [out / "results.json", out / "sequence.csv", *schedule, *plots]
