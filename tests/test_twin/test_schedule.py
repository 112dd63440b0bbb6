"""The timed PAS schedule beside every sequence.csv: the sequence's batches, in local calendar time
with the UTC offset in force, also across a DST switch; and the same table as .xlsx."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
from builders import make_line, make_scenario, make_week

from agent.cli import main
from agent.planners.policies import FirstFitPolicy
from twin import LineConfig, WeekConfig, simulate
from twin.schedule import pas_schedule, write_schedule


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _check_against_sequence(schedule: Path, sequence: Path, first_start: dt.datetime) -> None:
    rows, seq = _rows(schedule), _rows(sequence)
    assert rows and len(rows) == len(seq)
    for i, (row, entry) in enumerate(zip(rows, seq, strict=True), 1):
        assert int(row["position"]) == i
        assert (row["type"], row["quantity"]) == (entry["type"], entry["quantity"])
    starts = [dt.datetime.fromisoformat(r["start"]) for r in rows]
    ends = [dt.datetime.fromisoformat(r["end"]) for r in rows]
    entries = [dt.datetime.fromisoformat(r["buffer_entry"]) for r in rows]
    assert starts[0] == first_start and starts[0].utcoffset() == first_start.utcoffset()
    for start, end, entry in zip(starts, ends, entries, strict=True):
        assert start < end <= entry
    for entry, nxt in zip(entries, starts[1:], strict=False):
        assert entry <= nxt  # the PAS begins the next batch once this one is in the buffer


def test_simulate_plan_and_compare_write_the_schedule_beside_the_sequence(
    tmp_path: Path, ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    shift = ref_line.calendar.shifts[0]
    first = dt.datetime.combine(ref_week.week_start, dt.time(), tzinfo=ZoneInfo(ref_week.timezone))
    first += dt.timedelta(seconds=min(s.start_s for s in ref_line.calendar.shifts))
    assert first.isoformat() == "2026-11-23T06:00:00+01:00" and shift.start_s == 6 * 3600
    sim, plan, cmp = tmp_path / "sim", tmp_path / "plan", tmp_path / "cmp"
    assert main(["simulate", "--policy", "setup-aware", "--out", str(sim)]) == 0
    _check_against_sequence(sim / "schedule.csv", sim / "sequence.csv", first)
    assert main(["plan", "--planner", "earliest-runout", "--out", str(plan)]) == 0
    _check_against_sequence(plan / "schedule.csv", plan / "sequence.csv", first)
    assert main(["compare", "--planners", "first-fit,setup-aware", "--out", str(cmp)]) == 0
    for name in ("first-fit", "setup-aware"):
        seq = cmp / "sequences" / f"{name}.csv"
        schedule = cmp / "sequences" / f"{name}.schedule.csv"
        if name == "setup-aware":
            _check_against_sequence(schedule, seq, first)
        else:  # first-fit deadlocks: its last batch never ends, and says so with empty cells
            rows = _rows(schedule)
            assert len(rows) == len(_rows(seq)) and rows[-1]["buffer_entry"] == ""
        assert (cmp / "sequences" / f"{name}.schedule.xlsx").is_file()
    # the workbook holds the same batches, local times with the offset beside them
    book = openpyxl.load_workbook(sim / "schedule.xlsx")
    cells = list(book.active.iter_rows(values_only=True))
    rows = _rows(sim / "schedule.csv")
    assert len(cells) == len(rows) + 1
    for row, values in zip(rows, cells[1:], strict=True):
        start = dt.datetime.fromisoformat(row["start"])
        assert values[:4] == (
            int(row["position"]),
            row["type"],
            int(row["quantity"]),
            start.replace(tzinfo=None),
        )
        assert values[7] == start.isoformat()[-6:]


def test_schedule_across_the_spring_dst_switch_has_the_offset_in_force(tmp_path: Path) -> None:
    # always working: working second w is w real seconds after Monday 00:00 Berlin; the clocks jump
    # 02:00 -> 03:00 on Sunday 29 March 2026, so starts after it carry +02:00
    line = make_line(types=2, fas_units=(1000,), capacity=100, batch_size=100)
    week = make_week(line, [[(0, 400), (1, 400)]], timezone="Europe/Berlin")
    week = week.model_copy(update={"week_start": dt.date(2026, 3, 23)})
    scenario = make_scenario(line, week)
    _, trace = simulate(scenario, FirstFitPolicy())
    monday = dt.datetime(2026, 3, 23, tzinfo=ZoneInfo("Europe/Berlin"))
    switch = dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC)
    files = write_schedule(tmp_path / "sequence.csv", scenario, trace)
    assert [p.name for p in files] == ["schedule.csv", "schedule.xlsx"]
    rows = _rows(tmp_path / "schedule.csv")
    assert [(r["type"], int(r["quantity"])) for r in rows] == [
        (line.types[b.type], b.quantity) for b in trace.batches
    ]
    offsets = set()
    for row, batch in zip(rows, trace.batches, strict=True):
        start = dt.datetime.fromisoformat(row["start"])
        assert start.timestamp() == monday.timestamp() + batch.decided_s
        expected = dt.timedelta(hours=2 if start >= switch else 1)
        assert start.utcoffset() == expected
        offsets.add(row["start"][-6:])
    assert offsets == {"+01:00", "+02:00"}
    assert rows[0]["start"] == "2026-03-23T00:00:00+01:00"
    assert pas_schedule(scenario, trace)[0].start == monday
