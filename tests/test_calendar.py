"""The working calendar: shifts minus breaks minus holidays, overtime into the next week, DST."""

from __future__ import annotations

import datetime as dt

from builders import ALWAYS, make_line, make_week

from twin import LineConfig, WeekConfig, WorkCalendar

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
