"""The working calendar of a week: shifts minus breaks minus holidays, repeated every week so that
overtime continues into the next working time.

The twin simulates on a *working-time axis*: second `w` is the instant after which `w` working
seconds of the week have elapsed. Everything stops outside working time, so breaks, nights and
holidays cost no events at all. This class maps between that axis and calendar time.
"""

from __future__ import annotations

import bisect
import datetime as dt
from zoneinfo import ZoneInfo

from twin.config import CalendarConfig, WeekConfig

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


def _subtract(base: list[tuple[int, int]], cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in base:
        pieces = [(start, end)]
        for c0, c1 in cuts:
            pieces = [p for s, e in pieces for p in ((s, min(e, c0)), (max(s, c1), e)) if p[0] < p[1]]
        out.extend(pieces)
    return out


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
            raise ValueError("the calendar has no working time in the first week")

    # -- construction -----------------------------------------------------------------------
    def _epoch(self, day: dt.date, seconds: int) -> int:
        naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)
        return int(naive.replace(tzinfo=self.tz).timestamp())

    def _add_week(self) -> None:
        monday = self.week_start + dt.timedelta(days=7 * self._weeks)
        local: list[tuple[int, int]] = []
        pauses: list[tuple[int, int]] = []
        for offset in range(-1, 8):  # a window of the day before may reach into this week
            day = monday + dt.timedelta(days=offset)
            base = offset * DAY_S
            for shift in self._calendar.shifts:
                if day.weekday() in shift.weekdays and day not in self._holidays:
                    local.append((base + shift.start_s, base + shift.end_s))
            for pause in self._calendar.breaks:
                if day.weekday() in pause.weekdays:
                    pauses.append((base + pause.start_s, base + pause.end_s))
        week_local = [(max(s, 0), min(e, WEEK_S)) for s, e in _subtract(_union(local), _union(pauses))]
        for start, end in week_local:
            if start >= end:
                continue
            a, b = self._epoch(monday, start), self._epoch(monday, end)
            if self._ends and a == self._ends[-1]:  # continuous across the week boundary
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
        """Like `work_at` for a datetime; a naive one is local time of the week."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return self.work_at(moment.timestamp())

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
