"""The central buffer with lazy accounting of FAS consumption.

A FAS that works through units of one type without interruption takes one pre-product every
`period` seconds. Such a run is a `Segment`; the buffer subtracts its takes arithmetically when it is
asked for the stock, so the simulation needs no event per unit. What the run cannot know in
advance (its type running out) the buffer predicts: `stockout` names the first take that finds the
buffer empty, which the line turns into an event for that FAS.

Takes are ordered by the key `(time, phase, station)` of the same-instant order in `problem.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Key = tuple[int, int, int]
"""(time_s, phase, station index): the total order of everything that happens at one instant."""

PHASE_DOWNTIME = 0  # stations go down or come up
PHASE_FAS = 1  # FAS that finish a unit start the next one, in station order
PHASE_ENTRY = 2  # a finished or blocked PAS batch enters the buffer
PHASE_RESTART = 3  # FAS waiting for a type that just arrived start, in station order
PHASE_DECIDE = 4  # the PAS decides
_LAST = 10**9


@dataclass(slots=True)
class Segment:
    """Takes of one FAS at `start + i * period` for `i < count` (the first one in `first_phase`)."""

    fas: int
    type: int
    start: int
    period: int
    count: int
    first_phase: int = PHASE_FAS
    synced: int = 0  # takes already subtracted from the buffer's stock

    @property
    def end(self) -> int:
        """When the last unit of the run finishes."""
        return self.start + self.count * self.period

    def takes_before(self, time: int, phase: int, station: int) -> int:
        """Number of takes whose key is smaller than (time, phase, station)."""
        d = time - self.start
        if d <= 0:
            if d < 0 or self.count == 0:
                return 0
            return 1 if (self.first_phase, self.fas) < (phase, station) else 0
        n = -(-d // self.period)  # takes strictly before `time`
        if n >= self.count:
            return self.count
        if d % self.period == 0 and (PHASE_FAS, self.fas) < (phase, station):
            n += 1
        return n

    def takes_until(self, time: int) -> int:
        """Number of takes at or before `time`."""
        return self.takes_before(time, _LAST, _LAST)

    def take_sum(self) -> int:
        """Sum of the take times (for time-weighted stock)."""
        n = self.count
        return n * self.start + self.period * n * (n - 1) // 2


@dataclass(slots=True)
class Buffer:
    """Stock per type, with the active consumption segments of each type."""

    capacity: int
    stock: list[int]
    consumers: list[list[Segment]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumers = [[] for _ in self.stock]

    def sync(self, k: int, key: Key) -> int:
        """Subtract every take of type `k` before `key`; return the stock at `key`."""
        segs = self.consumers[k]
        if segs:
            time, phase, station = key
            finished = False
            for seg in segs:  # seg.takes_before(time, phase, station), inlined: the twin's hottest loop
                d = time - seg.start
                if d <= 0:
                    n = 1 if d == 0 and seg.count and (seg.first_phase, seg.fas) < (phase, station) else 0
                else:
                    n = -(-d // seg.period)
                    if n >= seg.count:
                        n = seg.count
                    elif d % seg.period == 0 and (PHASE_FAS, seg.fas) < (phase, station):
                        n += 1
                if n != seg.synced:
                    self.stock[k] -= n - seg.synced
                    seg.synced = n
                    finished = finished or n == seg.count
            if finished:
                self.consumers[k] = [seg for seg in segs if seg.synced < seg.count]
        return self.stock[k]

    def sync_all(self, key: Key) -> list[int]:
        """`sync` of every type: the stock per type at `key` (a copy)."""
        for k, segs in enumerate(self.consumers):
            if segs:
                self.sync(k, key)
        return list(self.stock)

    def total(self, key: Key) -> int:
        """The stock of all types at `key` (read only: what `sync` would subtract, not subtracted)."""
        time, phase, station = key
        unsynced = 0
        for segs in self.consumers:
            for seg in segs:  # seg.takes_before(time, phase, station) - seg.synced, inlined (hot)
                d = time - seg.start
                if d <= 0:
                    n = 1 if d == 0 and seg.count and (seg.first_phase, seg.fas) < (phase, station) else 0
                else:
                    n = -(-d // seg.period)
                    if n >= seg.count:
                        n = seg.count
                    elif d % seg.period == 0 and (PHASE_FAS, seg.fas) < (phase, station):
                        n += 1
                unsynced += n - seg.synced
        return sum(self.stock) - unsynced

    def add(self, seg: Segment) -> None:
        """Start a consumption run (its first take is at `seg.start`, not yet subtracted)."""
        self.consumers[seg.type].append(seg)

    def close(self, seg: Segment, key: Key) -> None:
        """Truncate a run to its takes before `key` (the FAS stops taking there)."""
        self.sync(seg.type, key)
        seg.count = seg.synced
        segs = self.consumers[seg.type]
        if seg in segs:
            segs.remove(seg)

    def stockout(self, k: int, key: Key) -> tuple[int, int] | None:
        """The first future take of type `k` that finds the buffer empty, as (time, fas index),
        assuming no further arrivals; None if the stock covers every take of the active runs."""
        s = self.sync(k, key)
        segs = self.consumers[k]
        target = s + 1
        if sum(seg.count - seg.synced for seg in segs) < target:
            return None
        if len(segs) == 1:
            seg = segs[0]
            return seg.start + (seg.synced + target - 1) * seg.period, seg.fas
        base = [seg.synced for seg in segs]
        when = nth_take_time(segs, base, target)
        at_when = []
        before = 0
        for seg, b in zip(segs, base, strict=True):
            upto = max(b, seg.takes_until(when - 1))
            before += upto - b
            if seg.takes_until(when) > upto:  # this run takes at `when`
                at_when.append((seg.first_phase if when == seg.start else PHASE_FAS, seg.fas))
        at_when.sort()
        return when, at_when[target - before - 1][1]

    def time_of_nth_take(self, n: int, key: Key) -> int | None:
        """When the `n`-th take from `key` on (any type) happens, if the active runs make it."""
        segs = [seg for group in self.consumers for seg in group]
        base = [seg.takes_before(*key) for seg in segs]
        if sum(seg.count - b for seg, b in zip(segs, base, strict=True)) < n:
            return None
        return nth_take_time(segs, base, n)


NTH_TAKES_SORTED = 4096
"""Most candidate takes (runs x n) `nth_take_time` selects from directly; beyond, it searches."""


def nth_take_time(segs: list[Segment], base: list[int], n: int) -> int:
    """Smallest time at which the segments have made at least `n` takes beyond `base`
    (the caller makes sure they make that many): the n-th smallest of each run's next n take
    times, or a binary search on time when those are many. Hot, so kept tight."""
    runs = [(seg.start, seg.period, seg.count, b) for seg, b in zip(segs, base, strict=True) if b < seg.count]
    if len(runs) * n <= NTH_TAKES_SORTED:
        first, every, many, done = (np.array(c, dtype=np.int64) for c in zip(*runs, strict=True))
        j = np.arange(n, dtype=np.int64)
        times = (first[:, None] + (done[:, None] + j) * every[:, None])[j < (many - done)[:, None]]
        return int(np.partition(times, n - 1)[n - 1])
    lo = min(start + b * period for start, period, _, b in runs)
    hi = max(start + (count - 1) * period for start, period, count, _ in runs)
    while lo < hi:
        mid = (lo + hi) // 2
        made = 0
        for start, period, count, b in runs:
            if mid >= start:
                c = (mid - start) // period + 1
                if c > count:
                    c = count
                if c > b:
                    made += c - b
        if made >= n:
            hi = mid
        else:
            lo = mid + 1
    return lo
