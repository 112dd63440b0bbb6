"""The working calendar: shifts minus breaks minus holidays, overtime into the next week, DST."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from builders import ALWAYS, MONDAY, make_line, make_scenario, make_week
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from streams import week_messages

from agent.cli import main
from twin import LineConfig, WeekConfig, WorkCalendar
from twin.calendar import DAY_S, WEEK_S
from twin.config import WEEKDAYS

H = 3600


def test_reference_week_has_75_working_hours(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    cal = WorkCalendar(ref_line.calendar, ref_week)
    assert cal.week_work_s == 75 * H


def test_mapping_both_ways(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    cal = WorkCalendar(ref_line.calendar, ref_week)
    berlin = ref_week.tz
    monday = dt.datetime(2026, 11, 23, tzinfo=berlin)
    assert cal.datetime_of(0) == monday.replace(hour=6)
    assert cal.datetime_of(4 * H) == monday.replace(hour=10)  # a unit that ends as the break starts
    assert cal.datetime_of(4 * H + 1) == monday.replace(hour=10, minute=30, second=1)
    assert cal.datetime_of(15 * H) == monday.replace(hour=22)
    assert cal.datetime_of(15 * H + 60) == monday.replace(day=24, hour=6, minute=1)
    assert cal.work_at_datetime(monday.replace(hour=10, minute=15)) == 4 * H
    assert cal.work_at_datetime(dt.datetime(2026, 11, 24, 7, 0)) == 16 * H  # naive = local time


def test_overtime_continues_next_monday(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    cal = WorkCalendar(ref_line.calendar, ref_week)
    assert cal.datetime_of(75 * H) == dt.datetime(2026, 11, 27, 22, tzinfo=ref_week.tz)
    assert cal.datetime_of(75 * H + 1800) == dt.datetime(2026, 11, 30, 6, 30, tzinfo=ref_week.tz)


def test_holiday_removes_its_shifts(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    week = ref_week.model_copy(update={"holidays": [dt.date(2026, 11, 24)]})
    cal = WorkCalendar(ref_line.calendar, week)
    assert cal.week_work_s == 60 * H
    assert cal.datetime_of(15 * H + 60) == dt.datetime(2026, 11, 25, 6, 1, tzinfo=week.tz)


def test_dst_change_counts_real_seconds() -> None:
    line = make_line(calendar=ALWAYS)
    week = make_week(line, [[]], timezone="Europe/Berlin").model_copy(
        update={"week_start": dt.date(2026, 10, 19)}
    )
    cal = WorkCalendar(line.calendar, week)
    assert cal.week_work_s == 7 * 24 * H + H  # clocks go back on Sunday 25 October: one hour more


def test_night_shift_across_midnight() -> None:
    line = make_line(calendar={"shifts": [{"days": "Mon", "start": "22:00", "end": "06:00"}], "breaks": []})
    cal = WorkCalendar(line.calendar, make_week(line, [[]]))
    assert cal.week_work_s == 8 * H
    assert cal.datetime_of(3 * H).isoformat() == "2026-11-24T01:00:00+00:00"


# -- issue 14: DST, night breaks, shutdown weeks, overlaps --------------------------------------
SAT_NIGHT = {"days": "Sat", "start": "22:00", "end": "06:00"}
SAT_NIGHT_BREAK = {"days": "Sat", "start": "02:30", "end": "03:00"}  # Sunday 02:30: the night of Saturday
SPRING = dt.date(2026, 3, 23)  # Berlin's clocks jump 02:00 -> 03:00 on Sunday 29 March
AUTUMN = dt.date(2026, 10, 19)  # ... and go back 03:00 -> 02:00 on Sunday 25 October


def _calendar(
    shifts: list[dict[str, str]],
    breaks: list[dict[str, str]],
    monday: dt.date = MONDAY,
    timezone: str = "Europe/Berlin",
    holidays: list[dt.date] = (),  # type: ignore[assignment]
) -> WorkCalendar:
    line = make_line(calendar={"shifts": shifts, "breaks": breaks})
    week = make_week(line, [[]], timezone=timezone).model_copy(
        update={"week_start": monday, "holidays": list(holidays)}
    )
    return WorkCalendar(line.calendar, week)


def _intervals(cal: WorkCalendar) -> list[tuple[float, float]]:
    return cal.pieces(0, cal.horizon_work_s)


def _assert_ordered(cal: WorkCalendar, step: int = 60) -> None:
    """Working intervals are disjoint and sorted; calendar time never runs backwards."""
    spans = _intervals(cal)
    assert all(a < b for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    assert sum(b - a for a, b in spans) == cal.horizon_work_s
    stamps = [cal.datetime_of(w).timestamp() for w in range(0, cal.horizon_work_s + 1, step)]
    assert stamps == sorted(stamps)


def test_a_break_in_the_skipped_hour_has_no_length() -> None:
    cal = _calendar([SAT_NIGHT], [SAT_NIGHT_BREAK], SPRING)
    berlin = cal.tz
    assert cal.week_work_s == 7 * H  # 22:00 CET to 06:00 CEST: 7 real hours, the break lies in none
    assert cal.week_work_s == _calendar([SAT_NIGHT], [], SPRING).week_work_s
    assert cal.horizon_work_s == 7 * H + 7 * H + 30 * 60  # the next Saturday night has its break
    _assert_ordered(cal)
    switch = dt.datetime(2026, 3, 29, 3, tzinfo=berlin)  # = 02:00 CET
    assert cal.datetime_of(4 * H) == switch
    assert cal.datetime_of(4 * H + 60) == switch + dt.timedelta(minutes=1)  # not 03:30 -> 03:01
    assert cal.datetime_of(7 * H) == dt.datetime(2026, 3, 29, 6, tzinfo=berlin)
    # 7.5 working hours no longer fit the week: 30 min of overtime, in the next Saturday night
    assert cal.datetime_of(7 * H + 30 * 60) == dt.datetime(2026, 4, 4, 22, 30, tzinfo=berlin)
    # local times the clocks skip (naive downtime ends, say) are the instant of the switch
    assert cal.work_at_datetime(dt.datetime(2026, 3, 29, 2, 30)) == 4 * H
    assert cal.work_at_datetime(dt.datetime(2026, 3, 29, 3, 0)) == 4 * H


def test_events_of_a_night_across_the_switch_never_go_back_in_time() -> None:
    line = make_line(
        types=1, calendar={"shifts": [SAT_NIGHT], "breaks": [SAT_NIGHT_BREAK]}, fas_units=(600,), pas_unit=60
    )
    week = make_week(line, [[(0, 40)]]).model_copy(update={"week_start": SPRING, "timezone": "Europe/Berlin"})
    messages = week_messages(make_scenario(line, week), "t")
    stamps = [dt.datetime.fromisoformat(json.loads(m.payload)["ts"]) for m in messages]
    assert stamps == sorted(stamps)
    assert any(s.hour == 3 for s in stamps)  # events right after the switch (03:00 CEST)
    # a first batch of 10 min, then 40 units of 10 min: 6 h 50 min of work from 22:00 CET (21:00 UTC)
    assert stamps[-1] == dt.datetime(2026, 3, 29, 3, 50, tzinfo=dt.UTC)


def test_a_shift_across_the_repeated_hour_lasts_its_real_time() -> None:
    cal = _calendar([SAT_NIGHT], [], AUTUMN)
    assert cal.week_work_s == 9 * H  # 22:00 CEST to 06:00 CET
    _assert_ordered(cal)
    first_0230 = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # 02:30 CEST
    assert cal.datetime_of(4.5 * H).timestamp() == first_0230.timestamp()
    assert cal.datetime_of(5.5 * H).timestamp() == first_0230.timestamp() + H  # 02:30 CET, an hour later
    # a time shown twice means its first occurrence: the break 02:30-03:00 lasts to 03:00 CET, 1.5 h
    with_break = _calendar([SAT_NIGHT], [SAT_NIGHT_BREAK], AUTUMN)
    assert with_break.week_work_s == 9 * H - 90 * 60
    _assert_ordered(with_break)


def test_breaks_of_night_shifts_belong_to_the_day_the_shift_starts() -> None:
    nights = {"days": "Mon-Fri", "start": "22:00", "end": "06:00"}
    cal = _calendar([nights], [{"days": "Mon-Fri", "start": "02:00", "end": "02:30"}])
    assert cal.week_work_s == 5 * 8 * H - 5 * 30 * 60  # Friday's night has its break too
    for morning in range(24, 29):  # Tuesday to Saturday, 02:00-02:30
        assert cal.work_at_datetime(dt.datetime(2026, 11, morning, 2, 0)) == cal.work_at_datetime(
            dt.datetime(2026, 11, morning, 2, 30)
        )
    # a holiday removes the shift that starts on it, with its break
    holiday = _calendar(
        [nights], [{"days": "Mon-Fri", "start": "02:00", "end": "02:30"}], holidays=[dt.date(2026, 11, 26)]
    )
    assert holiday.week_work_s == 4 * 8 * H - 4 * 30 * 60


CALENDAR_ERRORS = [
    (
        "break-in-no-shift",
        {"shifts": [SAT_NIGHT], "breaks": [{"days": "Sun", "start": "02:30", "end": "03:00"}]},
        ["at=(0,): lies in no shift that starts on Sun", "name Sat"],
    ),
    (
        "break-between-shifts",
        {
            "shifts": [{"days": "Mon-Fri", "start": "06:00", "end": "14:00"}],
            "breaks": [{"days": "Mon-Fri", "start": "02:00", "end": "02:30"}],
        },
        ["at=(0,): lies in no shift that starts on Mon"],
    ),
    (
        "break-on-a-day-without-shift",
        {
            "shifts": [{"days": "Mon-Fri", "start": "06:00", "end": "14:00"}],
            "breaks": [{"days": "Mon-Sat", "start": "10:00", "end": "10:30"}],
        },
        ["at=(0,): lies in no shift that starts on Sat"],
    ),
    (
        "breaks-cover-every-shift",
        {
            "shifts": [{"days": "Mon", "start": "06:00", "end": "14:00"}],
            "breaks": [{"days": "Mon", "start": "06:00", "end": "14:00"}],
        },
        ["no working time"],
    ),
    (
        "overlapping-shifts",
        {
            "shifts": [
                {"days": "Mon-Fri", "start": "06:00", "end": "14:00"},
                {"days": "Mon-Fri", "start": "13:00", "end": "22:00"},
            ]
        },
        ["at=(1,): starting Mon overlaps shifts[0] (Mon-Fri 06:00-14:00) starting Mon"],
    ),
    (
        "sunday-night-overlaps-monday",
        {
            "shifts": [
                {"days": "Sun", "start": "22:00", "end": "06:00"},
                {"days": "Mon", "start": "05:00", "end": "14:00"},
            ]
        },
        ["at=(0,): starting Sun overlaps shifts[1] (Mon 05:00-14:00) starting Mon"],
    ),
    ("shift-from-24", {"shifts": [{"days": "Mon", "start": "24:00", "end": "06:00"}]}, ["24:00"]),
]


@pytest.mark.parametrize(
    ("calendar", "expected"), [e[1:] for e in CALENDAR_ERRORS], ids=[e[0] for e in CALENDAR_ERRORS]
)
def test_calendar_mistakes_are_reported(calendar: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        make_line(calendar=calendar)
    error = info.value.errors()[0]
    at = getattr(error.get("ctx", {}).get("error"), "at", None)  # the entry at fault (EntryError)
    said = f"at={at}: {error['msg'].removeprefix('Value error, ')}"
    for part in expected:
        assert part in said


def test_touching_shifts_and_a_break_across_their_change_are_fine() -> None:
    cal = _calendar(
        [
            {"days": "Mon-Fri", "start": "06:00", "end": "14:00"},
            {"days": "Mon-Fri", "start": "14:00", "end": "06:00"},
        ],
        [{"days": "Mon-Fri", "start": "13:45", "end": "14:15"}],
    )
    assert cal.week_work_s == 5 * (24 * H - 30 * 60)


# -- the same mistakes in files, through the command line --------------------------------------
CUT = re.compile(r"shifts = \[.*?\]\nbreaks = \[.*?\]\n", re.S)
SHUTDOWN = '"2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"'
FILE_MISTAKES = [
    (
        "shutdown-week",
        "week.toml",
        f"holidays = [{SHUTDOWN}]",
        ["holidays", "has no working time: its holidays leave no shift", "2026-11-27"],
    ),
    (
        "holiday-outside-the-week",
        "week.toml",
        'holidays = ["2026-12-01"]',
        [
            "week.toml:3: holidays[0]: a holiday outside the week 2026-11-23 to 2026-11-29",
            "(value '2026-12-01')",
        ],
    ),
    (
        "holiday-twice",
        "week.toml",
        'holidays = ["2026-11-24", "2026-11-24"]',
        ["week.toml:3: holidays[1]: a holiday listed twice: also holidays[0] (value '2026-11-24')"],
    ),
    (
        "downtime-offset-on-one-end",  # was a TypeError traceback
        "week.toml",
        'holidays = []\ndowntime = [{ station = "FAS1", start = 2026-11-23T08:00:00+01:00, '
        "end = 2026-11-23T09:00:00 }]",
        ["downtime[0]", "2026-11-23T08:00:00+01:00", "give both with a UTC offset or neither"],
    ),
    (
        "night-break-in-no-shift",
        "line.toml",
        'shifts = [{ days = "Mon-Fri", start = "22:00", end = "06:00" }]\n'
        'breaks = [{ days = "Tue-Sat", start = "02:00", end = "02:30" }]\n',
        [
            "line.toml:13: calendar.breaks[0]: lies in no shift that starts on Sat",
            "(value {'days': 'Tue-Sat', 'start': '02:00', 'end': '02:30'})",
        ],
    ),
    (
        "overlapping-shifts",
        "line.toml",
        'shifts = [\n  { days = "Mon-Fri", start = "06:00", end = "14:30" },\n'
        '  { days = "Mon-Fri", start = "14:00", end = "22:00" },\n]\nbreaks = []\n',
        ["calendar.shifts", "overlap", "14:30"],
    ),
]


@pytest.mark.parametrize(
    ("file", "text", "expected"), [m[1:] for m in FILE_MISTAKES], ids=[m[0] for m in FILE_MISTAKES]
)
def test_calendar_mistakes_in_files_give_one_line_and_exit_2(
    tmp_path: Path,
    config_dir: Path,
    capsys: pytest.CaptureFixture[str],
    file: str,
    text: str,
    expected: list[str],
) -> None:
    line, week, out = tmp_path / "line.toml", tmp_path / "week", tmp_path / "out"
    shutil.copy(config_dir / "line.toml", line)
    shutil.copytree(config_dir / "weeks" / "w1", week)
    if file == "line.toml":
        line.write_text(CUT.sub(text, line.read_text(encoding="utf-8"), count=1), encoding="utf-8")
    else:
        toml = (week / file).read_text(encoding="utf-8")
        (week / file).write_text(toml.replace("holidays = []", text, 1), encoding="utf-8")
    argv = ["simulate", "--line", str(line), "--week", str(week), "--policy", "setup-aware"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("linetwin: error:")
    assert str(line if file == "line.toml" else week / file) in err
    for part in expected:
        assert part in err
    assert not out.exists()


# -- property: any calendar, any week around a switch of the clocks -----------------------------
SLOT = 900  # times on a quarter-hour grid; every zone below switches and is offset by whole quarters
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC")


def _switch_weeks(zone: str) -> list[dt.date]:
    """The Mondays of 2026 whose week has a switch of the clocks (all of them for UTC: none)."""
    tz = ZoneInfo(zone)
    mondays = [dt.date(2026, 1, 5) + dt.timedelta(weeks=i) for i in range(51)]

    def offset(day: dt.date) -> dt.timedelta | None:
        return dt.datetime.combine(day, dt.time(12), tz).utcoffset()

    switching = [m for m in mondays if len({offset(m + dt.timedelta(days=d)) for d in range(-1, 8)}) > 1]
    return switching or mondays[:2]


WEEKS = [(zone, monday) for zone in ZONES for monday in _switch_weeks(zone)]


def _clock(slot: int) -> str:
    return f"{slot % 96 // 4:02d}:{slot % 4 * 15:02d}"


@st.composite
def calendars(draw: st.DrawFn) -> tuple[dict[str, Any], str, dt.date, list[dt.date]]:
    """Shifts that never overlap (disjoint on the clock's circle), each with at most one break
    inside it on some of its days; a week around a switch of the clocks; some holidays."""
    cuts = sorted(draw(st.sets(st.integers(0, 95), min_size=2, max_size=6)))
    cuts = cuts[: len(cuts) // 2 * 2]
    turn = draw(st.integers(0, 95))
    days = st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
    shifts, breaks = [], []
    for start, end in zip(cuts[::2], cuts[1::2], strict=True):
        on = draw(days)
        shifts.append({"days": ",".join(on), "start": _clock(start + turn), "end": _clock(end + turn)})
        if end - start > 1 and draw(st.booleans()):
            a = draw(st.integers(start, end - 1))
            b = draw(st.integers(a + 1, end if a > start else end - 1))
            some = draw(st.lists(st.sampled_from(on), min_size=1, unique=True))
            breaks.append({"days": ",".join(some), "start": _clock(a + turn), "end": _clock(b + turn)})
    zone, monday = draw(st.sampled_from(WEEKS))
    holidays = draw(st.lists(st.integers(0, 6), unique=True, max_size=3))
    return (
        {"shifts": shifts, "breaks": breaks},
        zone,
        monday,
        [monday + dt.timedelta(days=d) for d in holidays],
    )


def _oracle(
    calendar: dict[str, Any], zone: str, monday: dt.date, holidays: list[dt.date]
) -> list[tuple[int, bool]]:
    """Every quarter hour of the two weeks the calendar serves, and whether it is worked: the
    wall clock's furthest reading so far must lie in a shift (a shift belongs to its start day,
    a break to the shift it starts in) and in none of its breaks."""
    tz, line = ZoneInfo(zone), make_line(calendar=calendar)
    midnight = dt.datetime.combine(monday, dt.time())
    work, cuts = [], []
    for d in range(-1, 14):
        day = midnight + dt.timedelta(days=d)
        if day.date() in holidays:
            continue
        for shift in line.calendar.shifts:
            if day.weekday() not in shift.weekdays:
                continue
            work.append((day + dt.timedelta(seconds=shift.start_s), day + dt.timedelta(seconds=shift.end_s)))
            for pause in line.calendar.breaks:
                start = pause.start_s + (0 if pause.start_s >= shift.start_s else DAY_S)
                if day.weekday() in pause.weekdays and start < shift.end_s:
                    length = pause.end_s - pause.start_s
                    cuts.append(
                        (day + dt.timedelta(seconds=start), day + dt.timedelta(seconds=start + length))
                    )
    t = int(midnight.replace(tzinfo=dt.UTC).timestamp()) - 2 * DAY_S
    furthest, out = dt.datetime.min, []
    while furthest < midnight + dt.timedelta(days=14):
        furthest = max(furthest, dt.datetime.fromtimestamp(t, tz).replace(tzinfo=None))
        if furthest >= midnight:
            worked = any(a <= furthest < b for a, b in work) and not any(a <= furthest < b for a, b in cuts)
            out.append((t, worked))
        t += SLOT
    return out[:-1]


@settings(max_examples=30, deadline=None)
@given(case=calendars())
def test_any_calendar_maps_time_both_ways_without_overlaps(
    case: tuple[dict[str, Any], str, dt.date, list[dt.date]],
) -> None:
    calendar, zone, monday, holidays = case
    quarters = _oracle(calendar, zone, monday, holidays)
    try:
        cal = _calendar(calendar["shifts"], calendar["breaks"], monday, zone, holidays)
    except ValueError:  # a shutdown week: the first of the two weeks has no working time
        assert not any(worked for t, worked in quarters if t < quarters[0][0] + WEEK_S - 2 * H)
        return
    assert [cal.work_at(t + SLOT) - cal.work_at(t) for t, _ in quarters] == [
        SLOT if worked else 0 for _, worked in quarters
    ]
    assert cal.horizon_work_s == SLOT * sum(worked for _, worked in quarters)
    _assert_ordered(cal, step=SLOT)
    for w in range(0, cal.horizon_work_s, SLOT):
        assert cal.work_at(cal.epoch_of(w)) == w
