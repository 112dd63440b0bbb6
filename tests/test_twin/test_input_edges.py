"""Week, plan and sequence files at their edges (issue 14, tester's list): time zones that are no
zone, dates a calendar cannot reach, a week with nothing to build, downtime that eats the horizon,
a stray NUL byte, numbers that are not ASCII digits, a sloppy sequence sidecar and a batch larger
than the buffer. Each is one line naming file, line, key and value, before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from paths import CONFIG

from agent.cli import main
from twin import ConfigError, LineConfig, load_sequence, load_week
from twin.calendar import WorkCalendar
from twin.config import load_sequence_origin

W1 = CONFIG / "weeks" / "w1"


@pytest.fixture
def week(tmp_path: Path) -> Path:
    folder = tmp_path / "week"
    shutil.copytree(W1, folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _refused(folder: Path, line: LineConfig) -> str:
    with pytest.raises(ConfigError) as info:
        load_week(folder, line)
    message = str(info.value)
    assert "\n" not in message
    return message


def _downtime(station: str, start: str, end: str) -> str:
    return f'[[downtime]]\nstation = "{station}"\nstart = {start}\nend = {end}\n\n[initial_stock]'


@pytest.mark.parametrize("zone", ["Europe", "x" * 300, "Europe/", "../etc/passwd"])
def test_every_zone_that_is_no_zone_is_an_unknown_time_zone(
    week: Path, ref_line: LineConfig, zone: str
) -> None:
    _edit(week / "week.toml", '"Europe/Berlin"', f'"{zone}"')
    assert _refused(week, ref_line) == (
        f"{week / 'week.toml'}:2: timezone: unknown time zone: give an IANA name such as 'Europe/Berlin' "
        f"(value {zone!r})"
    )


@pytest.mark.parametrize("monday", ["9999-12-27", "9999-12-20", "0001-01-01", "1969-12-29"])
def test_a_week_start_outside_the_years_is_refused(week: Path, ref_line: LineConfig, monday: str) -> None:
    _edit(week / "week.toml", '"2026-11-23"', f'"{monday}"')
    assert _refused(week, ref_line) == (
        f"{week / 'week.toml'}:1: week_start: must lie in the years 1970 to 9000 (value '{monday}')"
    )


def test_the_last_monday_of_the_years_has_its_overtime(week: Path, ref_line: LineConfig) -> None:
    _edit(week / "week.toml", '"2026-11-23"', '"9000-12-29"')  # the last Monday of the years
    loaded = load_week(week, ref_line)
    calendar = WorkCalendar(ref_line.calendar, loaded)
    assert calendar.horizon_work_s == 2 * calendar.week_work_s
    assert calendar.datetime_of(calendar.horizon_work_s).year == 9001


def test_a_week_start_written_as_a_number_says_how_to_write_a_date(week: Path, ref_line: LineConfig) -> None:
    _edit(week / "week.toml", '"2026-11-23"', "20261123")
    assert _refused(week, ref_line) == (
        f"{week / 'week.toml'}:1: week_start: must be a date like 2026-11-23, not a whole number "
        "(value 20261123)"
    )


@pytest.mark.parametrize("key", ["start", "end"])
def test_a_naive_downtime_outside_the_years_is_refused(week: Path, ref_line: LineConfig, key: str) -> None:
    times = {"start": "2026-11-23T08:00:00", "end": "2026-11-23T09:00:00", key: "0001-01-01T00:00:00"}
    if key == "end":
        times["start"] = "0001-01-01T00:00:00"  # the start fails first: it is read first
    _edit(week / "week.toml", "[initial_stock]", _downtime("PAS", times["start"], times["end"]))
    assert _refused(week, ref_line) == (
        f"{week / 'week.toml'}:8: downtime[0].start: must lie in the years 1970 to 9000 "
        "(value '0001-01-01T00:00:00')"
    )


@pytest.mark.parametrize("command", ["validate", "simulate", "plan", "compare"])
def test_a_plan_without_orders_is_refused_by_every_command(
    week: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (week / "plan.csv").write_text("station,position,type,quantity\n", encoding="utf-8")
    argv = {
        "validate": ["validate", "--week", str(week)],
        "simulate": ["simulate", "--week", str(week), "--policy", "setup-aware"],
        "plan": ["plan", "--week", str(week), "--planner", "setup-aware"],
        "compare": ["compare", "--week", str(week), "--planners", "setup-aware"],
    }[command]
    out = tmp_path / "out"
    assert main(argv + (["--out", str(out)] if command != "validate" else [])) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"linetwin: error: {week / 'plan.csv'}:1: no orders: a week needs at least one row "
        "station,position,type,quantity"
    ]
    assert not out.exists()


def test_orders_the_initial_stock_covers_are_a_week_the_pas_has_nothing_for(
    week: Path, tmp_path: Path, ref_line: LineConfig
) -> None:
    """generate-week may write such a week (tiny fill): linetwin reads it and runs it."""
    (week / "plan.csv").write_text("station,position,type,quantity\nFAS1,1,T1,42\n", encoding="utf-8")
    assert load_week(week, ref_line).plans["FAS1"][0].quantity == 42
    out = tmp_path / "out"
    assert main(["simulate", "--week", str(week), "--policy", "setup-aware", "--out", str(out)]) == 0
    kpis = json.loads((out / "results.json").read_text())["kpis"]
    assert kpis["completion"] == 1.0 and not kpis["deadlock"] and kpis["batches"] == 0


def test_a_downtime_over_the_whole_horizon_is_refused(
    week: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(
        week / "week.toml", "[initial_stock]", _downtime("PAS", "2026-11-23T00:00:00", "2026-12-07T00:00:00")
    )
    out = tmp_path / "out"
    assert main(["simulate", "--week", str(week), "--policy", "setup-aware", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"linetwin: error: {week / 'week.toml'}:9: downtime[0].end: leaves PAS no working time in the week "
        "and its 1 week of overtime (to 2026-12-07T00:00:00+01:00) (value '2026-12-07T00:00:00')"
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    ("station", "end"), [("PAS", "2026-12-04T00:00:00"), ("FAS1", "2026-12-03T00:00:00")]
)
def test_downtime_is_taken_off_the_time_a_plan_may_use(
    week: Path, ref_line: LineConfig, station: str, end: str
) -> None:
    """The orders of w1 fit the horizon; with most of it down they do not, named at the plan row."""
    _edit(week / "week.toml", "[initial_stock]", _downtime(station, "2026-11-23T00:00:00", end))
    message = _refused(week, ref_line)
    assert message.startswith(f"{week / 'plan.csv'}:") and ": quantity: " in message
    assert "s of downtime" in message


def test_a_short_downtime_leaves_the_week_as_it_was(week: Path, ref_line: LineConfig) -> None:
    _edit(
        week / "week.toml", "[initial_stock]", _downtime("PAS", "2026-11-23T08:00:00", "2026-11-23T10:00:00")
    )
    assert load_week(week, ref_line).plans == load_week(W1, ref_line).plans


def test_a_nul_byte_in_a_utf8_plan_is_a_nul_not_utf16(week: Path, ref_line: LineConfig) -> None:
    lines = (week / "plan.csv").read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",", b",\x00", 1)
    (week / "plan.csv").write_bytes(b"\n".join(lines))
    assert _refused(week, ref_line) == f"{week / 'plan.csv'}:3: a NUL character: not a text file"


def test_a_plan_in_utf16_without_a_mark_is_still_read(week: Path, ref_line: LineConfig) -> None:
    text = (W1 / "plan.csv").read_text(encoding="utf-8")
    for encoding in ("utf-16-le", "utf-16-be"):
        (week / "plan.csv").write_bytes(text.encode(encoding))
        assert load_week(week, ref_line).plans == load_week(W1, ref_line).plans


@pytest.mark.parametrize("typed", ["1_0", "١٠", "+10", "１０"])
def test_plan_numbers_are_ascii_digits(week: Path, ref_line: LineConfig, typed: str) -> None:
    _edit(week / "plan.csv", "FAS1,1,T5,117", f"FAS1,1,T5,{typed}")
    assert _refused(week, ref_line) == (
        f"{week / 'plan.csv'}:2: quantity: must be a whole number (digits 0-9) (value {typed!r})"
    )
    _edit(week / "plan.csv", f"FAS1,1,T5,{typed}", f"FAS1,{typed},T5,117")
    assert ": position: must be a whole number (digits 0-9)" in _refused(week, ref_line)


@pytest.mark.parametrize(("column", "row"), [("quantity", "1,T1,5_0"), ("position", "١,T1,50")])
def test_sequence_numbers_are_ascii_digits(
    tmp_path: Path, ref_line: LineConfig, column: str, row: str
) -> None:
    path = tmp_path / "sequence.csv"
    path.write_text(f"position,type,quantity\n{row}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_sequence(path, ref_line)
    value = row.split(",")[0 if column == "position" else 2]
    assert str(info.value) == f"{path}:2: {column}: must be a whole number (digits 0-9) (value {value!r})"


@pytest.fixture(scope="module")
def sidecar_fields() -> dict[str, object]:
    return {
        "line": "appliance-reference",
        "week": str(W1),
        "week_start": "2026-11-23",
        "week_digest": "0123456789abcdef",
        "batch_size": 50,
    }


def test_a_strict_sidecar_is_read(tmp_path: Path, sidecar_fields: dict[str, object]) -> None:
    for encoding in ("utf-8", "utf-16"):
        (tmp_path / "s.meta.json").write_text(json.dumps(sidecar_fields, indent=2), encoding=encoding)
        origin = load_sequence_origin(tmp_path / "s.csv")
        assert origin is not None and origin.batch_size == 50 and str(origin.week_start) == "2026-11-23"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"batch_size": "50"}, ":6: batch_size: must be a whole number, not a string (value '50')"),
        ({"extra": 1}, ":7: extra: unknown key"),
    ],
    ids=["quoted-number", "extra-key"],
)
def test_a_sloppy_sidecar_is_refused_at_its_line(
    tmp_path: Path, sidecar_fields: dict[str, object], change: dict[str, object], expected: str
) -> None:
    meta = tmp_path / "s.meta.json"
    meta.write_text(json.dumps({**sidecar_fields, **change}, indent=2), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_sequence_origin(tmp_path / "s.csv")
    assert str(info.value).startswith(f"{meta}{expected}")


def test_a_sidecar_that_is_a_folder_is_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "s.meta.json").mkdir()
    with pytest.raises(ConfigError) as info:
        load_sequence_origin(tmp_path / "s.csv")
    assert str(info.value).startswith(f"{tmp_path / 's.meta.json'}: ")


def test_a_batch_larger_than_the_buffer_is_one_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bigq.csv"
    path.write_text("position,type,quantity\n1,T1,600\n2,T2,50\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["simulate", "--sequence", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"linetwin: error: {path}:2: quantity: batch 1 is larger than the buffer capacity 500: it can "
        "never enter it (value 600)"
    ]
    assert not out.exists()
