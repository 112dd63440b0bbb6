"""Local times around the DST switches: one conversion (twin.localtime.first_instant) for the
calendar, week files, the day zoom and the replay trace, so no time is read an hour off."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from builders import ALWAYS, make_line, make_scenario, make_week

from agent.cli.outputs import plot_window
from twin.events import StationDown, StationUp
from twin.localtime import first_instant
from twin.mirror import Mirror
from twin.scenario import Scenario
from twin.tape import Tape

BERLIN = ZoneInfo("Europe/Berlin")
SPRING = dt.date(2026, 3, 23)  # clocks jump 02:00 CET -> 03:00 CEST on Sunday 29 March
AUTUMN = dt.date(2026, 10, 19)  # clocks go back 03:00 CEST -> 02:00 CET on Sunday 25 October


def _utc(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()


def _at(moment: dt.datetime | None) -> float | None:
    """Instants compared as such (an aware time in a repeated hour never equals one of another zone)."""
    return None if moment is None else moment.timestamp()


def test_a_local_time_is_the_first_instant_the_clock_shows_it() -> None:
    skipped = first_instant(dt.datetime(2026, 3, 29, 2, 30), BERLIN)
    assert _at(skipped) == _utc(2026, 3, 29, 1, 0)  # the switch (03:00 CEST), not 02:30 CET = 01:30 UTC
    assert skipped.tzinfo is BERLIN and skipped.hour == 3
    assert _at(first_instant(dt.datetime(2026, 10, 25, 2, 30), BERLIN)) == _utc(2026, 10, 25, 0, 30)  # CEST
    assert _at(first_instant(dt.datetime(2026, 10, 25, 2, 30, fold=1), BERLIN)) == _utc(2026, 10, 25, 0, 30)
    assert _at(first_instant(dt.datetime(2026, 11, 24, 6, 0), BERLIN)) == _utc(2026, 11, 24, 5, 0)
    aware = dt.datetime.fromtimestamp(_utc(2026, 10, 25, 1, 30), dt.UTC)  # 02:30 CET, the second pass
    again = first_instant(aware, BERLIN)  # an instant stays what it is
    assert _at(again) == _at(aware) and again.tzinfo is BERLIN and again.fold == 1


def _berlin_scenario(monday: dt.date) -> Scenario:
    line = make_line(types=1, calendar=ALWAYS)
    week = make_week(line, [[(0, 10)]], timezone="Europe/Berlin").model_copy(update={"week_start": monday})
    return make_scenario(line, week)


def test_the_day_zoom_reads_local_times_as_the_calendar_does() -> None:
    spring = _berlin_scenario(SPRING)
    first, last = plot_window(spring, "2026-03-29T02:30", "2026-03-29T06:00") or (None, None)
    assert _at(first) == _utc(2026, 3, 29, 1, 0)  # the switch, not 01:30 UTC
    assert _at(last) == _utc(2026, 3, 29, 4, 0)
    # "a day after --from" lands in the skipped hour: the switch too
    first, last = plot_window(spring, "2026-03-28T02:30", None) or (None, None)
    assert _at(last) == _utc(2026, 3, 29, 1, 0)
    autumn = _berlin_scenario(AUTUMN)
    first, _ = plot_window(autumn, "2026-10-25T02:30", "2026-10-25T06:00") or (None, None)
    assert _at(first) == _utc(2026, 10, 25, 0, 30)


def test_replay_trace_keeps_a_downtime_in_the_second_pass_of_the_repeated_hour() -> None:
    scenario = _berlin_scenario(AUTUMN)
    cal = scenario.calendar
    start = cal.work_at(_utc(2026, 10, 25, 1, 15))  # 02:15 CET, the hour's second pass
    end = cal.work_at(_utc(2026, 10, 25, 1, 45))  # 02:45 CET
    mirror = Mirror(scenario)
    tape = Tape(mirror)
    for event in (StationDown(start, "F1"), StationUp(end, "F1")):
        mirror.apply(event)
        tape.record(event)
    replayed, _, _ = tape.finish()
    assert replayed.downtime[0] == ((start, end),)  # not an hour early, in the first pass
    (down,) = replayed.week.downtime
    assert (_at(down.start), _at(down.end)) == (_utc(2026, 10, 25, 1, 15), _utc(2026, 10, 25, 1, 45))
