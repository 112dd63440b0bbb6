"""Running planners on a week and writing what they planned: KPIs, sequence and plots."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UsageError
from agent.policies import Policy
from twin import Results, Scenario, Trace, simulate, write_sequence
from twin.config import SequenceOrigin
from twin.localtime import first_instant

if TYPE_CHECKING:
    from twin.plots import Window


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


def made_for(scenario: Scenario, week_folder: object) -> SequenceOrigin:
    """What a sequence planned for `scenario` is made for (its `sequence.meta.json`); the week
    folder as the user named it, else the week's first day."""
    week = scenario.week
    label = week.week_start.isoformat() if week_folder is None else str(week_folder)
    return SequenceOrigin.of(scenario.line.name, label, week, scenario.batch_size)


def zoom_options(p: argparse.ArgumentParser) -> None:
    """`--from`/`--to`: the plots show only this span of the week (a day, a shift)."""
    p.add_argument(
        "--from",
        dest="plot_from",
        metavar="LOCAL_TIME",
        default=None,
        help="plots start at this local time, e.g. 2026-11-24T06:00 (default: the whole run)",
    )
    p.add_argument(
        "--to",
        dest="plot_to",
        metavar="LOCAL_TIME",
        default=None,
        help="plots end here (default: a day after --from)",
    )


def plot_window(scenario: Scenario, start: str | None, end: str | None) -> Window | None:
    """The span of `--from`/`--to` as aware datetimes of the week's time zone (a date alone is its
    00:00); only --from: one day; only --to: from the week's start. It must lie in the time a week's
    plan may use (the week and the overtime after it)."""
    if start is None and end is None:
        return None
    cal = scenario.calendar

    def parse(option: str, text: str) -> dt.datetime:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"{option} {text!r}: give a local time like 2026-11-24T06:00") from None
        return first_instant(moment, cal.tz)  # a naive time as the calendar reads its own

    first = parse("--from", start) if start is not None else cal.start
    a_day_later = first.replace(tzinfo=None) + dt.timedelta(days=1)  # wall clock, e.g. 06:00 to 06:00
    last = parse("--to", end) if end is not None else first_instant(a_day_later, cal.tz)
    if last <= first:
        raise UsageError(f"--to {last.isoformat()} is not after --from {first.isoformat()}")
    horizon = cal.datetime_of(cal.horizon_work_s)
    if last <= cal.start or first >= horizon:
        raise UsageError(
            f"--from {first.isoformat()} --to {last.isoformat()}: outside the week "
            f"({cal.start.isoformat()} to {horizon.isoformat()} with its overtime)"
        )
    return first, last


RUN_FILES = frozenset(
    {
        "results.json",
        "sequence.csv",
        "sequence.meta.json",
        "schedule.csv",
        "schedule.xlsx",
        "buffer.png",
        "pas_gantt.png",
        "fas_timeline.png",
        "compare.md",
        "compare.csv",
        "compare.json",
        "compare.png",
    }
)
"""The files a run writes into its --out folder (compare also writes a `sequences/` folder)."""
RUN_MARKS = ("results.json", "compare.json")
"""What marks an earlier run's folder, whose outputs a new run replaces."""


def force_option(p: argparse.ArgumentParser, what: str = "an --out folder that holds other files") -> None:
    """`--force`: write into `what` all the same."""
    p.add_argument("--force", action="store_true", help=f"write into {what} all the same")


CONFIG_FILES = ("line.toml", "week.toml", "plan.csv")
"""What marks a folder of inputs (a line, a week), which no run writes into."""


def check_out(out: Path, inputs: Sequence[Path | None] = (), force: bool = False) -> None:
    """An --out folder a run may write into, checked before the run: a new one, or one where it
    overwrites nothing a user wrote. Refused unless `force`: a folder of inputs (a week, a line),
    one where the run would overwrite a file it reads (`simulate --sequence D/sequence.csv --out
    D`), and one holding files of a run's names but no earlier run (its results.json or
    compare.json): a hand-written sequence.csv is not replaced. An earlier run's outputs are."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder")
    config = [name for name in CONFIG_FILES if (out / name).exists()]
    if config:
        raise UsageError(
            f"--out {out}: holds {' and '.join(config)}, the inputs of a run, not a place for its "
            "outputs: give another folder, or --force"
        )
    here = out.resolve()
    clobbered = sorted(
        {p.name for p in inputs if p is not None and p.resolve().parent == here and p.name in RUN_FILES}
    )
    if clobbered:
        raise UsageError(
            f"--out {out}: the run would overwrite its own input {', '.join(clobbered)}: "
            "give another folder, or --force"
        )
    if not any((out / mark).is_file() for mark in RUN_MARKS):
        taken = sorted(name for name in RUN_FILES if (out / name).exists())
        if taken:
            raise UsageError(
                f"--out {out}: the run would overwrite {', '.join(taken)}, not written by an earlier "
                "run (no results.json or compare.json): give another folder, or --force"
            )


def write_run(
    out: Path, scenario: Scenario, run: PlannedRun, meta: dict[str, object], window: Window | None = None
) -> list[Path]:
    """results.json, sequence.csv, the timed schedule beside it and the plots of one run (zoomed
    to `window`)."""
    from twin.plots import plot_run  # matplotlib only when writing
    from twin.schedule import write_schedule

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder: {exc.strerror}") from None
    payload = {**meta, "planner": run.planner, "wall_s": round(run.wall_s, 4), "kpis": run.results.to_dict()}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_sequence(
        out / "sequence.csv", run.trace.sequence(scenario.types), made_for(scenario, meta.get("week"))
    )
    schedule = write_schedule(out / "sequence.csv", scenario, run.trace)
    plots = plot_run(scenario, run.trace, run.results, out, window)
    return [out / "results.json", out / "sequence.csv", *schedule, *plots]
