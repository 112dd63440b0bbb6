"""The events a simulated run would report, unit by unit, in the same-instant order of `problem.md`.

The line model moves consumption runs, not units; `EventTap` expands what the run has done so far
into the contract's events (one `UnitStarted`/`UnitFinished` per unit, batch starts and buffer
entries, down/up). The line emulator publishes them, and the tests feed them to the mirror.
"""

from __future__ import annotations

import heapq
from math import inf

from twin.events import (
    BatchStarted,
    BatchStored,
    LineEvent,
    StationDown,
    StationUp,
    UnitFinished,
    UnitStarted,
)
from twin.line import Line
from twin.scenario import Interval
from twin.stock import PHASE_DECIDE, PHASE_DOWNTIME, PHASE_ENTRY, PHASE_FAS, Segment

EventKey = tuple[float, int, int, int]
"""(time, phase, station, order within the station: a unit finishes before the next one starts)."""

PLANNED_DOWNTIME = "planned"
"""The `reason` of down events from the week's planned downtime."""


def finish_time(start_s: int, work_s: int, down: tuple[Interval, ...]) -> int:
    """When `work_s` seconds of work begun at `start_s` end, pausing during the station's downtime."""
    t, left = start_s, work_s
    for a, b in down:
        if b <= t:
            continue
        if a >= t + left:
            break
        left -= max(0, a - t)
        t = b
    return t + left


class EventTap:
    """Expands a `Line` run into events; `collect()` returns what happened since the last call,
    up to the pending decision point (before the PAS decides) or to the end of the run."""

    def __init__(self, line: Line) -> None:
        self.line = line
        sc = line.scenario
        self._types = sc.types
        self._names = [*sc.stations, "PAS"]
        self._down = sc.downtime
        self._transitions = sorted(
            (at, station, is_up)
            for station, intervals in enumerate(sc.downtime)
            for interval in intervals
            for is_up, at in enumerate(interval)
        )
        self._next_transition = 0
        self._closed_seen = 0
        self._taken: dict[int, tuple[Segment, int]] = {}  # id(segment) -> (segment, takes emitted)
        self._finishes: list[tuple[EventKey, str, str]] = []  # heap of pending unit ends
        self._started = 0  # batches whose start was emitted
        self._stored = 0

    def collect(self) -> list[LineEvent]:
        line = self.line
        pas = len(self._names) - 1
        bound: EventKey
        if line.finished:
            bound = (inf, 0, 0, 0)
        elif line.pending is not None:
            bound = (line.pending.time_s, PHASE_DECIDE, pas, 0)
        else:
            return []
        out: list[tuple[EventKey, LineEvent]] = []
        self._downtime(bound, out)
        self._units(bound, out)
        self._batches(bound, out)
        while self._finishes and self._finishes[0][0] <= bound:
            key, station, type_name = heapq.heappop(self._finishes)
            out.append((key, UnitFinished(int(key[0]), station, type_name)))
        out.sort(key=lambda item: item[0])
        return [event for _, event in out]

    def _downtime(self, bound: EventKey, out: list[tuple[EventKey, LineEvent]]) -> None:
        while self._next_transition < len(self._transitions):
            at, station, is_up = self._transitions[self._next_transition]
            key: EventKey = (at, PHASE_DOWNTIME, station, is_up)
            if key > bound or (self.line.finished and at > self.line.end_s):
                return
            name = self._names[station]
            out.append((key, StationUp(at, name) if is_up else StationDown(at, name, PLANNED_DOWNTIME)))
            self._next_transition += 1

    def _units(self, bound: EventKey, out: list[tuple[EventKey, LineEvent]]) -> None:
        line = self.line
        closed = line.trace.segments
        for seg in closed[self._closed_seen :]:
            self._taken.setdefault(id(seg), (seg, 0))
        self._closed_seen = len(closed)
        for fas in line.fas:
            if fas.seg is not None:
                self._taken.setdefault(id(fas.seg), (fas.seg, 0))
        for ident, (seg, done) in list(self._taken.items()):
            closed_now = seg is not line.fas[seg.fas].seg
            upto = seg.count if closed_now else seg.takes_before(int(bound[0]), bound[1], bound[2])
            station = self._names[seg.fas]
            type_name = self._types[seg.type]
            for i in range(done, upto):
                start = seg.start + i * seg.period
                phase = seg.first_phase if i == 0 else PHASE_FAS
                out.append(((start, phase, seg.fas, 1), UnitStarted(start, station, type_name)))
                end = finish_time(start, seg.period, self._down[seg.fas])
                heapq.heappush(self._finishes, ((end, PHASE_FAS, seg.fas, 0), station, type_name))
            if closed_now and upto == seg.count:
                del self._taken[ident]
            else:
                self._taken[ident] = (seg, upto)

    def _batches(self, bound: EventKey, out: list[tuple[EventKey, LineEvent]]) -> None:
        batches = self.line.trace.batches
        pas = len(self._names) - 1
        while self._started < len(batches):
            b = batches[self._started]
            key: EventKey = (b.decided_s, PHASE_DECIDE, pas, 1)
            if key > bound:
                break
            out.append((key, BatchStarted(b.decided_s, self._types[b.type], b.quantity)))
            self._started += 1
        while self._stored < len(batches):
            b = batches[self._stored]
            if b.entered_s is None or (b.entered_s, PHASE_ENTRY, pas, 0) > bound:
                break
            key = (b.entered_s, PHASE_ENTRY, pas, 0)
            out.append((key, BatchStored(b.entered_s, self._types[b.type], b.quantity)))
            self._stored += 1
