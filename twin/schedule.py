"""The timed PAS schedule of a run, for the shop floor: each batch with its type, quantity, start
and end in local calendar time of the week (ISO 8601 with the UTC offset in force then).

`start` is when the PAS begins the batch (its changeover included; begun as a shift ends, it
begins when work resumes), `end` when its last unit is
built, `buffer_entry` when it enters the buffer (later than `end` while the PAS is blocked). A batch
never finished (the run deadlocked) has empty `end` and `buffer_entry`. Written as `schedule.csv`
next to `sequence.csv`, and as `schedule.xlsx` (local times; the offset in its own column)."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from twin.results import Trace
from twin.scenario import Scenario

COLUMNS = ("position", "type", "quantity", "start", "end", "buffer_entry", "changeover")


@dataclass(frozen=True)
class ScheduledBatch:
    """One PAS batch in calendar time."""

    position: int
    """1-based, as in `sequence.csv`."""
    type: str
    quantity: int
    start: dt.datetime
    end: dt.datetime | None
    buffer_entry: dt.datetime | None
    changeover: bool


def pas_schedule(scenario: Scenario, trace: Trace) -> list[ScheduledBatch]:
    """The run's PAS batches in order, their working seconds mapped to local calendar times."""
    cal = scenario.calendar

    def at(work_s: int | None) -> dt.datetime | None:
        return None if work_s is None else cal.datetime_of(work_s)

    def starting(work_s: int) -> dt.datetime:
        """The instant work resumes: a batch begun as a shift ends begins in the next shift."""
        epoch = cal.pieces(work_s, work_s + 1)[0][0]
        return dt.datetime.fromtimestamp(epoch, cal.tz)

    return [
        ScheduledBatch(
            position=i,
            type=scenario.types[b.type],
            quantity=b.quantity,
            start=starting(b.decided_s),
            end=at(b.finished_s),
            buffer_entry=at(b.entered_s),
            changeover=b.changeover,
        )
        for i, b in enumerate(trace.batches, 1)
    ]


def schedule_path(sequence_path: Path, suffix: str = ".csv") -> Path:
    """Where the schedule of a sequence file goes: `sequence.csv` -> `schedule.csv`,
    `sequences/ppo.csv` -> `sequences/ppo.schedule.csv`."""
    if sequence_path.stem == "sequence":
        return sequence_path.with_name("schedule" + suffix)
    return sequence_path.with_name(f"{sequence_path.stem}.schedule{suffix}")


def _iso(moment: dt.datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def write_schedule_csv(path: Path, batches: list[ScheduledBatch]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for b in batches:
            writer.writerow(
                [
                    b.position,
                    b.type,
                    b.quantity,
                    _iso(b.start),
                    _iso(b.end),
                    _iso(b.buffer_entry),
                    "yes" if b.changeover else "no",
                ]
            )
    return path


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.replace(tzinfo=None)


def write_schedule_xlsx(path: Path, batches: list[ScheduledBatch], title: str) -> Path:
    """The same table as a workbook: local times as Excel datetimes (Excel has no time zones),
    the UTC offset of each start beside them."""
    from openpyxl import Workbook  # only when writing

    book = Workbook()
    sheet = book.active
    sheet.title = "PAS schedule"
    sheet.append([*COLUMNS, "utc_offset"])
    for b in batches:
        offset = b.start.strftime("%z")
        sheet.append(
            [
                b.position,
                b.type,
                b.quantity,
                _local(b.start),
                _local(b.end),
                _local(b.buffer_entry),
                "yes" if b.changeover else "no",
                f"{offset[:3]}:{offset[3:]}",
            ]
        )
    for column in "DEF":
        sheet.column_dimensions[column].width = 20
        for cell in sheet[column][1:]:
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
    book.properties.title = title
    book.save(path)
    return path


def write_schedule(sequence_path: Path, scenario: Scenario, trace: Trace) -> list[Path]:
    """schedule.csv and schedule.xlsx next to `sequence_path`; return their paths."""
    batches = pas_schedule(scenario, trace)
    title = f"PAS schedule of {scenario.line.name}, week of {scenario.week.week_start.isoformat()}"
    return [
        write_schedule_csv(schedule_path(sequence_path), batches),
        write_schedule_xlsx(schedule_path(sequence_path, ".xlsx"), batches, title),
    ]
