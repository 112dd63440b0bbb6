"""The trace of a mirrored week: the offline twin's `Trace` and `Results` rebuilt from the events a
`Mirror` accepted, so a recorded week gets the same `results.json` and plots as a simulated one.

What the events do not say is taken as the mirror takes it: a PAS batch is finished once its nominal
work (paused while the PAS is down) is done, and the time from then to its buffer entry is blocked
time; a FAS is idle while the mirror counts it so. Downtime is the one the events report. A week
that ends where nothing can move any more (the PAS batch in progress cannot fit the buffer, no FAS
has a unit in progress) ends in deadlock when that batch is finished, as in the twin."""

from __future__ import annotations

from dataclasses import replace

from twin.calendar import subtract
from twin.config import PAS_STATION, Downtime
from twin.events import (
    BatchStarted,
    BatchStored,
    LineEvent,
    StationDown,
    StationUp,
    UnitFinished,
    UnitStarted,
)
from twin.mirror import Mirror
from twin.results import BatchRecord, Results, Trace, compute_results
from twin.scenario import Interval, Scenario
from twin.stock import Segment


class Tape:
    """Follows a mirror event by event (`record` after each accepted one); `finish` gives the
    scenario (with the downtime that happened), the trace and the KPIs of the week so far."""

    def __init__(self, mirror: Mirror) -> None:
        self.mirror = mirror
        self.trace = Trace(max_fill_by_type=[0] * len(mirror.scenario.types))
        self._instant = 0  # the fill maxima count the state after each instant, as the twin's
        self._state = list(mirror.scenario.initial_stock)
        self._units: dict[int, tuple[int, int]] = {}  # FAS -> (type, start) of the unit in progress
        self._ready = [f.ready_since for f in mirror.fas]
        self._down_since: dict[str, int] = {}
        self.downtime: list[tuple[str, int, int]] = []
        self._effort = mirror.pas.setup_effort
        self._stations = {name: f for f, name in enumerate(mirror.scenario.stations)}
        self._types = {name: k for k, name in enumerate(mirror.scenario.types)}
        self._setups = mirror.pas.setups

    def record(self, event: LineEvent) -> None:
        m = self.mirror
        at = m.now_s
        if at > self._instant:
            self.trace.record_fill(self._state)
            self._instant = at
        self._state = list(m.stock)
        stations, types = self._stations, self._types
        if isinstance(event, UnitStarted):
            self._units[stations[event.station]] = (types[event.type], at)
        elif isinstance(event, UnitFinished):
            f = stations[event.station]
            k, start = self._units.pop(f)
            self._add_unit(f, k, start, at)
        elif isinstance(event, StationDown):
            self._down_since[event.station] = at
        elif isinstance(event, StationUp):
            since = self._down_since.pop(event.station)
            if at > since:
                self.downtime.append((event.station, since, at))
        elif isinstance(event, BatchStarted):
            effort, self._effort = m.pas.setup_effort - self._effort, m.pas.setup_effort
            changeover, self._setups = m.pas.setups > self._setups, m.pas.setups
            self.trace.batches.append(BatchRecord(types[event.type], event.quantity, at, effort, changeover))
        elif isinstance(event, BatchStored):
            batch = self.trace.batches[-1]
            batch.finished_s = min(at, self._finished(batch, at))
            batch.entered_s = at
        for f, fas in enumerate(m.fas):
            ready = self._ready[f]
            if ready is not None and fas.ready_since != ready and at > ready:
                wanted = m.next_type(f) if not isinstance(event, UnitStarted) else types[event.type]
                self.trace.waits.append((f, wanted or 0, ready, at))
            self._ready[f] = fas.ready_since

    def _add_unit(self, f: int, k: int, start: int, end: int) -> None:
        period = max(1, end - start)
        for seg in reversed(self.trace.segments):
            if seg.fas != f:
                continue
            if seg.type == k and seg.period == period and seg.end == start:
                seg.count += 1
                return
            break
        self.trace.segments.append(Segment(f, k, start, period, 1))

    def _pas_down(self, end_s: int) -> list[Interval]:
        spans = [(a, b) for s, a, b in self.downtime if s == PAS_STATION]
        if PAS_STATION in self._down_since:
            spans.append((self._down_since[PAS_STATION], end_s))
        return sorted(spans)

    def _finished(self, batch: BatchRecord, end_s: int) -> int:
        """When the batch's nominal work is done, pausing while the PAS is down."""
        pas = self.mirror.scenario.line.pas
        left = batch.quantity * pas.unit_time_s + (pas.setup_time_s if batch.changeover else 0)
        t = batch.decided_s
        for a, b in self._pas_down(end_s):
            if b <= t:
                continue
            if t + left <= a:
                break
            left -= max(0, a - t)
            t = b
        return t + left

    def finish(self) -> tuple[Scenario, Trace, Results]:
        """The week up to the mirror's last event: scenario, trace and KPIs as the twin's."""
        m = self.mirror
        deadlock = self._deadlock_s()
        end = m.now_s if deadlock is None else deadlock
        sc = m.scenario
        cal = sc.calendar
        down = [*self.downtime, *((s, a, end) for s, a in self._down_since.items() if end > a)]

        at = cal.datetime_of  # aware instants: a naive local time of the repeated autumn hour is ambiguous
        week = sc.week.model_copy(
            update={"downtime": [Downtime(station=s, start=at(a), end=at(b)) for s, a, b in down]}
        )
        scenario = Scenario(sc.line, week, sc.batch_size)
        trace = Trace(
            batches=list(self.trace.batches),
            segments=list(self.trace.segments),
            waits=list(self.trace.waits),
            max_fill=self.trace.max_fill,
            max_fill_by_type=list(self.trace.max_fill_by_type),
        )
        trace.record_fill(self._state)
        for f, (k, start) in self._units.items():  # units in progress: taken, not finished
            trace.segments.append(Segment(f, k, start, max(1, end - start), 1))
        for f, fas in enumerate(m.fas):
            ready = fas.ready_since
            if ready is not None and end > ready:
                trace.waits.append((f, m.next_type(f) or 0, ready, end))
        pas_down = self._pas_down(end)
        trace.batches = [replace(b) for b in trace.batches]
        for b in trace.batches:
            if b.entered_s is None:  # the batch in progress at the end: finished (blocked) or not
                nominal = self._finished(b, end)
                b.finished_s = nominal if nominal <= end else None
            finished = end if b.finished_s is None else b.finished_s
            trace.pas_work += subtract([(b.decided_s, finished)], pas_down)
            trace.pas_blocked += subtract([(finished, end if b.entered_s is None else b.entered_s)], pas_down)
        idle = m.kpis().idle_s_by_station  # up to the last event; waits still open go on to `end`
        still = [end - m.now_s if f.ready_since is not None else 0 for f in m.fas]
        results = compute_results(
            scenario,
            trace,
            end,
            deadlock is not None,
            [f.consumed for f in m.fas],
            [idle[s] + more for s, more in zip(sc.stations, still, strict=True)],
            list(m.stock),
        )
        return scenario, trace, results

    def _deadlock_s(self) -> int | None:
        """The twin's deadlock, if the week ended in one: the PAS batch in progress cannot fit the
        buffer and no FAS has a unit in progress, so nothing moves any more. It happens when the
        batch is finished (its nominal work done), which may lie after the last event."""
        m = self.mirror
        batch = m.pas.batch
        if batch is None or m.pas.down or not self.trace.batches:
            return None
        if sum(m.stock) + batch.quantity <= m.scenario.line.buffer.capacity:
            return None
        if any(f.unit is not None for f in m.fas) or all(m.done(f) for f in range(len(m.fas))):
            return None
        return max(m.now_s, self._finished(self.trace.batches[-1], m.now_s))
