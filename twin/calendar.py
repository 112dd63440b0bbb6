"""The working calendar of a week: shifts minus breaks minus holidays, repeated every week so that
overtime continues into the next working time.

The twin simulates on a *working-time axis*: second `w` is the instant after which `w` working
seconds of the week have elapsed. Everything stops outside working time, so breaks, nights and
holidays cost no events at all. This class maps between that axis and calendar time.

Rules (docs/contract.md, "Calendar rules"):
- A shift belongs to the day it starts on; a holiday removes the shifts that start on it. A week
  whose holidays leave no working time is an error (a shutdown week has nothing to plan).
- A break belongs to the shift it starts in: its `days` name the day that shift starts, so the break
  `Mon-Fri 02:00-02:30` of the night shift `Mon-Fri 22:00-06:00` falls on Tuesday to Saturday
  morning. A break that lies in no shift on one of its days is an error.
- Shifts must not overlap.
- A local time is the first instant the wall clock shows it (or a later time): a time the clocks skip
  in spring is the instant of the switch, so it has no length; a time they show twice in autumn is its
  first occurrence (`twin.localtime.first_instant`, used for every naive local time of a week).
  Working intervals are therefore disjoint and ordered, and a window lasts the
  real time that elapses between its ends (a 22:00-06:00 shift lasts 7 h or 9 h on those nights).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from typing import NamedTuple
from zoneinfo import ZoneInfo

from twin.config import WEEKDAYS, CalendarConfig, TimeWindow, WeekConfig
from twin.errors import EntryError
from twin.localtime import first_instant

DAY_S = 86_400
WEEK_S = 7 * DAY_S
OVERTIME_WEEKS = 1
"""How far past its end a week may run over: work, events and plans beyond that are out of bounds."""


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(base: list[tuple[int, int]], cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the `base` intervals that no interval of `cuts` covers (seconds)."""
    out: list[tuple[int, int]] = []
    for start, end in base:
        pieces = [(start, end)]
        for c0, c1 in cuts:
            pieces = [p for s, e in pieces for p in ((s, min(e, c0)), (max(s, c1), e)) if p[0] < p[1]]
        out.extend(pieces)
    return out


def _show(window: TimeWindow) -> str:
    return f"{window.days} {window.start}-{window.end}"


class _Window(NamedTuple):
    """A window's numbers: weekdays (Mon = 0), start and end in seconds after its day's midnight."""

    days: frozenset[int]
    start: int
    end: int


def _numbers(windows: Sequence[TimeWindow]) -> list[_Window]:
    return [_Window(w.weekdays, w.start_s, w.end_s) for w in windows]


def _start_in(pause: _Window, shift: _Window) -> int | None:
    """Where `pause` starts in `shift` (seconds after the midnight of the shift's start day): the
    first time after the shift's start that the clock shows the break's start; None if not in it."""
    start = pause.start if pause.start >= shift.start else pause.start + DAY_S
    return start if start < shift.end else None


def local_windows(
    shifts: Sequence[TimeWindow], breaks: Sequence[TimeWindow], days: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Working windows (shifts minus their breaks), sorted and disjoint, in local clock seconds after
    the midnight of day 0, of the shifts that start on `days`: (day number, weekday) pairs. A shift's
    breaks are those whose days name the shift's start day and that start within it."""
    work: list[tuple[int, int]] = []
    pauses: list[tuple[int, int]] = []
    shift_numbers, break_numbers = _numbers(shifts), _numbers(breaks)
    for day, weekday in days:
        base = day * DAY_S
        for shift in shift_numbers:
            if weekday not in shift.days:
                continue
            work.append((base + shift.start, base + shift.end))
            for pause in break_numbers:
                start = _start_in(pause, shift) if weekday in pause.days else None
                if start is not None:
                    pauses.append((base + start, base + start + pause.end - pause.start))
    return subtract(_union(work), _union(pauses))


def check_shifts(shifts: Sequence[TimeWindow]) -> None:
    """Raise EntryError naming two shifts that overlap on some day (Sunday's night reaches Monday)."""
    spans = sorted(
        (day * DAY_S + s.start_s, day * DAY_S + s.end_s, i, day)
        for i, s in enumerate(shifts)
        for day in s.weekdays
    )
    for (a0, a1, i, d), (b0, b1, j, e) in itertools.combinations(spans, 2):
        if any(a0 < b1 + k and b0 + k < a1 for k in (-WEEK_S, 0, WEEK_S)):
            other = f"shifts[{i}] ({_show(shifts[i])}) starting {WEEKDAYS[d]}"
            raise EntryError((j,), f"starting {WEEKDAYS[e]} overlaps {other}")


def check_breaks(shifts: Sequence[TimeWindow], breaks: Sequence[TimeWindow]) -> None:
    """Raise EntryError naming a break that lies in no shift on one of its days, ValueError if the
    breaks leave no working time."""
    numbers = _numbers(shifts)
    for i, pause in enumerate(_numbers(breaks)):
        for weekday in sorted(pause.days):
            if any(weekday in s.days and _start_in(pause, s) is not None for s in numbers):
                continue
            day, before = WEEKDAYS[weekday], WEEKDAYS[(weekday - 1) % 7]
            night = any(
                (weekday - 1) % 7 in s.days and s.start <= pause.start + DAY_S < s.end for s in numbers
            )
            hint = f"; it falls in the night shift that starts on {before}: name {before}" if night else ""
            raise EntryError(
                (i,),
                f"lies in no shift that starts on {day} (a break belongs to the shift it starts in and its "
                f"days name the day that shift starts{hint})",
            )
    if not local_windows(shifts, breaks, [(d, d) for d in range(7)]):
        raise ValueError("the breaks cover every shift: the calendar has no working time")


class WorkCalendar:
    """Working intervals of a line's calendar for one week (and the weeks after it)."""

    def __init__(self, calendar: CalendarConfig, week: WeekConfig) -> None:
        self.tz: ZoneInfo = week.tz
        self.week_start = week.week_start
        self._holidays = set(week.holidays)
        self._calendar = calendar
        self._starts: list[int] = []  # absolute epoch seconds
        self._ends: list[int] = []
        self._cum: list[int] = []  # working seconds before each interval
        self._weeks = 0
        self._add_week()
        if not self._starts:
            cause = "its holidays leave no shift" if self._holidays else "its shifts fall in skipped time"
            raise ValueError(f"the week of {self.week_start} has no working time: {cause}")

    # -- construction -----------------------------------------------------------------------
    def _epoch(self, day: dt.date, seconds: int) -> int:
        local = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)
        return int(first_instant(local, self.tz).timestamp())

    def _add_week(self) -> None:
        monday = self.week_start + dt.timedelta(days=7 * self._weeks)
        days = [(o, monday + dt.timedelta(days=o)) for o in range(-1, 7)]  # Sunday's night reaches Monday
        starts = [(o, day.weekday()) for o, day in days if day not in self._holidays]
        for start, end in local_windows(self._calendar.shifts, self._calendar.breaks, starts):
            start, end = max(start, 0), min(end, WEEK_S)
            if start >= end:
                continue
            a, b = self._epoch(monday, start), self._epoch(monday, end)
            if a >= b:  # wholly in the hour the clocks skip
                continue
            if self._ends and a == self._ends[-1]:  # continuous (across the week boundary or a skip)
                self._ends[-1] = b
                continue
            self._cum.append(self._cum[-1] + self._ends[-1] - self._starts[-1] if self._starts else 0)
            self._starts.append(a)
            self._ends.append(b)
        self._weeks += 1

    def _cover_work(self, work_s: float) -> None:
        while self._cum[-1] + self._ends[-1] - self._starts[-1] < work_s:
            self._add_week()

    def _cover_epoch(self, epoch: float) -> None:
        while self._ends[-1] < epoch and self._weeks < 10_000:
            self._add_week()

    # -- queries ----------------------------------------------------------------------------
    @property
    def week_work_s(self) -> int:
        """Working seconds of the planned week itself (excluding overtime)."""
        return self.work_at(self._epoch(self.week_start + dt.timedelta(days=7), 0))

    @property
    def start(self) -> dt.datetime:
        """The week's first instant: Monday 00:00 local time (aware)."""
        return dt.datetime.fromtimestamp(self._epoch(self.week_start, 0), self.tz)

    @property
    def horizon_work_s(self) -> int:
        """Working seconds from the week start to `OVERTIME_WEEKS` after the week's end: all the time
        a week's plan may use."""
        return self.work_at(self._epoch(self.week_start + dt.timedelta(days=7 * (1 + OVERTIME_WEEKS)), 0))

    def buildable_units(self, unit_time_s: int) -> int:
        """Units a station of `unit_time_s` can build within `horizon_work_s` (a bound for plans)."""
        return self.horizon_work_s // unit_time_s

    def work_at(self, epoch: float) -> int:
        """Working seconds elapsed from the week start until the absolute time `epoch`."""
        self._cover_epoch(epoch)
        i = bisect.bisect_right(self._starts, epoch) - 1
        if i < 0:
            return 0
        return int(self._cum[i] + min(epoch, self._ends[i]) - self._starts[i])

    def work_at_datetime(self, moment: dt.datetime) -> int:
        """Like `work_at` for a datetime; a naive one is local time of the week (read as the first
        instant the clock shows it, like the calendar's own times)."""
        return self.work_at(first_instant(moment, self.tz).timestamp())

    def epoch_of(self, work_s: float) -> float:
        """Absolute time at which `work_s` working seconds have elapsed (the earliest such instant,
        but not before the first working instant): a unit finishing at a shift's end finishes then."""
        self._cover_work(work_s)
        i = max(0, bisect.bisect_left(self._cum, work_s) - 1)
        return self._starts[i] + (work_s - self._cum[i])

    def datetime_of(self, work_s: float) -> dt.datetime:
        """Local calendar time of working second `work_s`."""
        return dt.datetime.fromtimestamp(self.epoch_of(work_s), self.tz)

    def pieces(self, start_work_s: float, end_work_s: float) -> list[tuple[float, float]]:
        """The absolute-time pieces (epoch start, epoch end) of the working-time span
        [start_work_s, end_work_s]: one piece per working interval it touches."""
        self._cover_work(end_work_s)
        out = []
        i = max(0, bisect.bisect_right(self._cum, start_work_s) - 1)
        while i < len(self._cum) and self._cum[i] < end_work_s:
            lo = max(start_work_s, self._cum[i])
            hi = min(end_work_s, self._cum[i] + self._ends[i] - self._starts[i])
            if hi > lo:
                out.append((self._starts[i] + lo - self._cum[i], self._starts[i] + hi - self._cum[i]))
            i += 1
        return out
