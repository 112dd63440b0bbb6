"""A run's --out folder and plot span: options, checks before a run, and writing what it planned."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UsageError
from agent.folders import make_folder
from agent.planners.run import PlannedRun, made_for
from twin import Scenario, write_sequence
from twin.localtime import first_instant

if TYPE_CHECKING:
    from twin.plots import Window


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
        "sweep.md",
        "sweep.csv",
        "sweep.json",
        "sweep.png",
    }
)
"""The files a run writes into its --out folder (compare also writes a `sequences/` folder, sweep
`b<size>/` folders)."""
RUN_MARKS = ("results.json", "compare.json", "sweep.json")
"""What marks an earlier run's folder, whose outputs a new run replaces."""


def force_option(p: argparse.ArgumentParser, what: str = "an --out folder that holds other files") -> None:
    """`--force`: write into `what` all the same."""
    p.add_argument("--force", action="store_true", help=f"write into {what} all the same")


CONFIG_FILES = ("line.toml", "week.toml", "plan.csv")
"""What marks a folder of inputs (a line, a week), which no run writes into."""


def no_file_in_the_way(out: Path, folder: Path | None = None) -> None:
    """`folder` (default: the --out folder `out`; for an --out file, its folder) is a folder or can
    be made one: neither it nor a folder above it is a file. Raises UsageError naming --out."""
    folder = out if folder is None else folder
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                what = "a file, not a folder" if place == out else f"{place} is a file, not a folder"
                raise UsageError(f"--out {out}: {what}")
            return


def check_run_folder(out: Path, remedy: str = "give another folder") -> None:
    """An --out folder that is no file and no folder of inputs (a week, a line: its week.toml,
    plan.csv or line.toml), or not there yet. Raises UsageError naming --out and `remedy`."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder")
    config = [name for name in CONFIG_FILES if (out / name).exists()]
    if config:
        raise UsageError(
            f"--out {out}: holds {' and '.join(config)}, the inputs of a run, not a place for its "
            f"outputs: {remedy}"
        )


def check_out(out: Path, inputs: Sequence[Path | None] = (), force: bool = False) -> None:
    """An --out folder a run may write into, checked before the run: a new one, or one where it
    overwrites nothing a user wrote. Refused unless `force`: a folder of inputs (a week, a line),
    one where the run would overwrite a file it reads (`simulate --sequence D/sequence.csv --out
    D`), and one holding files of a run's names but no earlier run (its results.json, compare.json or
    sweep.json): a hand-written sequence.csv is not replaced. An earlier run's outputs are."""
    if force or not out.exists():
        return
    check_run_folder(out, "give another folder, or --force")
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
                "run (no results.json, compare.json or sweep.json): give another folder, or --force"
            )


def run_header(args: argparse.Namespace, scenario: Scenario, seeded: bool = True) -> dict[str, object]:
    """What results.json and compare.json say a run was of: the line and week as given (`--line`,
    `--week`), the week's start, the batch size and, for a run that drew on it, `--seed`."""
    header: dict[str, object] = {
        "line": scenario.line.name,
        "line_file": str(args.line),
        "week": str(args.week),
        "week_start": scenario.week.week_start.isoformat(),
        "batch_size": scenario.batch_size,
    }
    return {**header, "seed": args.seed} if seeded else header


def write_run(
    out: Path, scenario: Scenario, run: PlannedRun, meta: dict[str, object], window: Window | None = None
) -> list[Path]:
    """results.json, sequence.csv, the timed schedule beside it and the plots of one run (zoomed
    to `window`)."""
    from twin.plots import plot_run  # matplotlib only when writing
    from twin.schedule import write_schedule

    make_folder(out)
    payload = {**meta, "planner": run.planner, "wall_s": round(run.wall_s, 4), "kpis": run.results.to_dict()}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_sequence(
        out / "sequence.csv", run.trace.sequence(scenario.types), made_for(scenario, meta.get("week"))
    )
    schedule = write_schedule(out / "sequence.csv", scenario, run.trace)
    plots = plot_run(scenario, run.trace, run.results, out, window)
    return [out / "results.json", out / "sequence.csv", *schedule, *plots]
