"""Planned consumption from a decision point on: every FAS works through its plan at nominal pace
from its next take, without starving and without downtime. Rules, observations and rewards read it.

The FAS are arrays (per FAS its next unit, the time of its take, its unit time), so demand is one
gather from the stacked cumulative counts of the plans, and the run-outs of all types are computed
together at the first call, in one of three ways (same values):

- a lookup, while every FAS keeps its nominal pace: its schedule (`anchor` = time of its next take
  - next unit x unit time) stays put, and the planned takes of type k over the whole week, merged
  over the FAS and sorted (`Schedule`), give the run-out of a supply S (stock + units the FAS have
  taken) as entry S: the takes so far lie at or before now, the planned ones at or after it. A
  scenario keeps the schedules of its last few anchor sets; a new one is made once the anchors held
  still for `HOLD` decision points (a FAS that starves shifts its anchor);
- off the schedule on a small line: the (stock + 1)-th smallest of each FAS's next stock + 1 takes
  of the type, all types in one sort (`SELECT_TAKES`);
- off the schedule on a large line: the least time where the count of planned takes exceeds the
  stock, a binary search on time over all FAS and types at once."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

from twin.decision import DecisionRequest
from twin.scenario import PlanUnits, Scenario

SELECT_TAKES = 20_000
"""Most upcoming takes a forecast off the schedule sorts to find run-outs; beyond, it searches."""
HOLD = 4
"""Decision points in a row the anchors must hold still before a schedule is made (a starving
line's anchors move at most decision points: a schedule would serve once)."""
SCHEDULES = 4
"""Schedules (anchor sets) a scenario keeps; searches that interleave runs may use a few."""


class Schedule:
    """Per type the planned takes of the whole week at fixed FAS anchors, sorted (built per type
    on first use). A FAS `gone` had finished its plan when the schedule was made: its takes count
    as past."""

    def __init__(self, anchor: np.ndarray, gone: np.ndarray, last_s: np.ndarray) -> None:
        self.anchor, self.gone = anchor, gone
        self.last_s = np.where(gone, -1, last_s)
        """Per FAS the time of its last planned take (-1 when gone)."""
        self.merged: dict[int, np.ndarray] = {}

    def fits(self, anchor: np.ndarray, active: np.ndarray, now: int) -> bool:
        """The FAS working now run on this schedule; those done took their last unit by now."""
        same = np.where(active, ~self.gone & (self.anchor == anchor), self.last_s <= now)
        return bool(same.all())

    def takes(self, k: int, tables: _Tables) -> np.ndarray:
        got = self.merged.get(k)
        if got is None:
            parts = [
                np.full(len(p), -1, np.int64) if g else a + p * u
                for p, a, g, u in zip(
                    tables.positions[k],
                    self.anchor.tolist(),
                    self.gone.tolist(),
                    tables.unit.tolist(),
                    strict=True,
                )
            ]
            got = self.merged[k] = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        return got


class _Tables:
    """Per scenario: the plans' cumulative counts stacked (row `base[f] + u`: units of each type
    among the first u units of FAS f), unit times, plan lengths and the kept schedules."""

    def __init__(self, scenario: Scenario, units: PlanUnits) -> None:
        self.cum = units.stacked
        self.length = np.array([len(c) - 1 for c in units.cumulative], dtype=np.int64)
        self.base = np.cumsum([0, *(self.length[:-1] + 1)]).astype(np.int64)
        self.unit = np.asarray(scenario.fas_unit_s, dtype=np.int64)
        self.positions = [list(by_type) for by_type in zip(*units.positions, strict=True)]
        """positions[k][f]: the unit indices of type k in the plan of FAS f."""
        blocks = [p for by_fas in self.positions for p in by_fas]
        self.flat_positions = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
        """Every `positions[k][f]` one after the other (k, then f)."""
        sizes = np.array([len(p) for p in blocks], dtype=np.int64).reshape(
            len(self.positions), len(self.unit)
        )
        self.position_start = (np.cumsum(sizes.ravel()) - sizes.ravel()).reshape(sizes.shape)
        """Where `positions[k][f]` starts in `flat_positions`."""
        self.schedules: list[Schedule] = []
        self.last_anchor: np.ndarray | None = None
        """The anchors at the latest decision point that kept the nominal pace."""
        self.last_moment: tuple[int, int] | None = None
        """That decision point: (decision index, time)."""
        self.held = 0
        """Decision points in a row at those anchors."""

    def schedule(
        self, anchor: np.ndarray, active: np.ndarray, now: int, moment: tuple[int, int]
    ) -> Schedule | None:
        """A kept schedule the FAS run on now; a new one when they ran on these anchors at the
        last `HOLD` decision points (they hold still); else None (select or search)."""
        for i, sched in enumerate(self.schedules):
            if sched.fits(anchor, active, now):
                if i:
                    self.schedules.insert(0, self.schedules.pop(i))
                return sched
        if moment == self.last_moment:  # another forecast of the same decision point
            return None
        previous, self.last_anchor = self.last_anchor, np.where(active, anchor, -1)
        self.last_moment = moment
        still = previous is not None and bool((previous == self.last_anchor).all())
        self.held = self.held + 1 if still else 1
        if self.held < HOLD:
            return None
        sched = Schedule(anchor, ~active, anchor + (self.length - 1) * self.unit)
        self.schedules = [sched, *self.schedules[: SCHEDULES - 1]]
        return sched


_TABLES: weakref.WeakKeyDictionary[PlanUnits, _Tables] = weakref.WeakKeyDictionary()


def _tables(scenario: Scenario) -> _Tables:
    units = scenario.unit_index
    tables = _TABLES.get(units)
    if tables is None:
        tables = _TABLES[units] = _Tables(scenario, units)
    return tables


class Forecast:
    """Per FAS, the unit it takes next and when; from these, run-outs and demand per type."""

    def __init__(self, request: DecisionRequest) -> None:
        sc = request.scenario
        units = sc.unit_index
        self.stock = request.stock
        self.n_types = len(request.stock)
        self._units = units
        self._tables = tables = _tables(sc)
        # (fas, first future unit, time of its take, unit time, units left) for FAS still working
        self._fas: list[tuple[int, int, int, int, int]] = []
        order_start, unit_s = units.order_start, sc.fas_unit_s
        for f, pos in enumerate(request.fas):
            if pos.next_take_s is None:
                continue
            starts = order_start[f]
            first = starts[pos.order] + pos.taken
            left = starts[-1] - first
            if left > 0:
                self._fas.append((f, first, pos.next_take_s, unit_s[f], left))
        self._now = request.time_s
        self._moment = (request.index, request.time_s)
        self._found: tuple[Schedule, np.ndarray] | bool | None = False  # not looked for yet
        self._runouts: list[int | None] | None = None
        f_, first_, start_, unit_, left_ = np.array(self._fas, dtype=np.int64).reshape(-1, 5).T
        self._f, self._first = f_, first_
        self._row = tables.base[f_] + first_  # row of each working FAS's next unit
        self._start, self._unit, self._left = start_, unit_, left_

    def _taken_by(self, time_s: np.ndarray) -> np.ndarray:
        """Per working FAS and column of `time_s` (shape (F, m)): its takes at or before that time."""
        d = time_s[None, :] - self._start[:, None]
        taken: np.ndarray = np.clip(d // self._unit[:, None] + 1, 0, self._left[:, None])
        return taken

    def _schedule(self) -> tuple[Schedule, np.ndarray] | None:
        """The schedule the FAS run on and the row of the cumulative counts each FAS is at (its
        next unit; a finished FAS: the end of its plan), when every working FAS keeps its pace."""
        if self._found is False:
            self._found = self._find_schedule()
        assert self._found is not True
        return self._found

    def _find_schedule(self) -> tuple[Schedule, np.ndarray] | None:
        tables = self._tables
        if (self._start - self._unit > self._now).any():  # a FAS down or in a long unit
            return None
        n_fas = len(tables.unit)
        active = np.zeros(n_fas, dtype=bool)
        active[self._f] = True
        anchor = np.zeros(n_fas, dtype=np.int64)
        anchor[self._f] = self._start - self._first * self._unit
        sched = tables.schedule(anchor, active, self._now, self._moment)
        if sched is None:
            return None
        rows = tables.base + tables.length
        rows[self._f] = self._row
        return sched, rows

    def runouts(self, types: Sequence[int]) -> list[int | None]:
        """`runout_s(k)` of each type in `types` (all types are computed at the first call)."""
        if self._runouts is None:
            self._runouts = self._all_runouts()
        return [self._runouts[k] for k in types]

    def _all_runouts(self) -> list[int | None]:
        n = self.n_types
        if not self._fas or not n:
            return [None] * n
        ks = np.arange(n, dtype=np.int64)
        cum = self._tables.cum
        stock = np.asarray(self.stock, dtype=np.int64)
        found = self._schedule()
        if found is not None:
            sched, rows = found
            supply = (stock + cum[rows].sum(axis=0)).tolist()  # stock + what the FAS took
            out: list[int | None] = []
            for k, s in enumerate(supply):
                takes = sched.takes(k, self._tables)
                out.append(int(takes[s]) if s < len(takes) else None)
            return out
        done = cum[self._row]  # per working FAS and type: its units of the type before its next one
        upcoming = np.minimum(cum[self._row + self._left] - done, stock + 1)
        if upcoming.sum() <= SELECT_TAKES:
            return self._select(done, upcoming, stock)
        return self._search(ks, stock)

    def _select(self, done: np.ndarray, upcoming: np.ndarray, stock: np.ndarray) -> list[int | None]:
        """Run-outs as the (stock + 1)-th smallest of each FAS's next stock + 1 takes of the type
        (`upcoming[f, k]` of them): few takes on small lines, all types in one sort."""
        tables = self._tables
        count = upcoming.ravel()  # (f, k) pairs, f major
        start = (tables.position_start[:, self._f].T + done).ravel()
        offset = np.cumsum(count) - count
        index = np.repeat(start - offset, count) + np.arange(int(count.sum()))
        pair = np.repeat(np.arange(count.size), count)
        fas, kind = pair // self.n_types, pair % self.n_types
        times = self._start[fas] + (tables.flat_positions[index] - self._first[fas]) * self._unit[fas]
        times = times[np.lexsort((times, kind))]
        per_type = upcoming.sum(axis=0)
        first = np.cumsum(per_type) - per_type
        return [
            int(times[first[k] + stock[k]]) if per_type[k] > stock[k] else None for k in range(self.n_types)
        ]

    def _search(self, ks: np.ndarray, stock: np.ndarray) -> list[int | None]:
        """Run-outs by a binary search on time over all FAS and the types `ks` at once."""
        cum, row = self._tables.cum, self._row
        needed = stock + 1
        base = cum[row][:, ks]
        ends = (cum[row + self._left][:, ks] - base).sum(axis=0)
        search = ends >= needed
        sub, want, base = ks[search], needed[search], base[:, search]
        lo = np.full(len(sub), self._now - 1, dtype=np.int64)  # no take before now
        hi = np.full(len(sub), int((self._start + (self._left - 1) * self._unit).max()), dtype=np.int64)
        rows, columns = row[:, None], sub[None, :]
        while len(lo) and (hi - lo > 1).any():
            mid = (lo + hi) // 2
            made = (cum[rows + self._taken_by(mid), columns] - base).sum(axis=0)
            enough = made >= want
            hi = np.where(enough, mid, hi)
            lo = np.where(enough, lo, mid)
        out: list[int | None] = [None] * len(ks)
        for i, t in zip(np.flatnonzero(search).tolist(), hi.tolist(), strict=True):
            out[i] = t
        return out

    def runout_s(self, k: int) -> int | None:
        """Working second at which type k runs out (the first planned take that finds none),
        or None if the stock covers all planned takes."""
        return self.runouts((k,))[0]

    def demand(self, start_s: int, end_s: int) -> np.ndarray:
        """Planned takes per type in [start_s, end_s)."""
        if not self._fas:
            return np.zeros(self.n_types, dtype=np.int64)
        taken = self._taken_by(np.array([start_s - 1, end_s - 1], dtype=np.int64))
        cum = self._tables.cum
        total: np.ndarray = (cum[self._row + taken[:, 1]] - cum[self._row + taken[:, 0]]).sum(axis=0)
        return total

    def demand_between(self, k: int, start_s: int, end_s: int) -> int:
        """Planned takes of type k in [start_s, end_s)."""
        return int(self.demand(start_s, end_s)[k])

    def takes_by_type(self, until_s: int | None = None) -> list[np.ndarray]:
        """`takes(k, until_s)` of every type k at once (one sort over all FAS)."""
        return self.all_takes(until_s)[1]

    def all_takes(self, until_s: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Every planned take from now on (before `until_s` when given), sorted, and those of
        each type (`takes_by_type`)."""
        times: list[np.ndarray] = []
        kinds: list[np.ndarray] = []
        for f, first, start, unit, left in self._fas:
            count = left if until_s is None else min(left, max(0, -(-(until_s - start) // unit)))
            times.append(start + np.arange(count, dtype=np.int64) * unit)
            kinds.append(self._units.types[f][first : first + count])
        if not times:
            return np.zeros(0, dtype=np.int64), [np.zeros(0, dtype=np.int64) for _ in range(self.n_types)]
        t, k = np.concatenate(times), np.concatenate(kinds)
        by_time = np.argsort(t, kind="stable")
        everything, kinds_by_time = t[by_time], k[by_time]
        bounds = np.cumsum(np.bincount(k, minlength=self.n_types))[:-1]
        return everything, np.split(everything[np.argsort(kinds_by_time, kind="stable")], bounds)

    def takes(self, k: int, until_s: int | None = None) -> np.ndarray:
        """Working seconds of every planned take of type k from now on (before `until_s` when
        given), sorted (shape (m,), int64)."""
        times = []
        for f, first, start, unit, left in self._fas:
            stop = first + (left if until_s is None else min(left, max(0, -(-(until_s - start) // unit))))
            upcoming = self._units.positions[f][k]
            lo = int(self._units.cumulative[f][first, k])
            hi = lo if stop <= first else int(self._units.cumulative[f][stop, k])
            times.append(start + (upcoming[lo:hi] - first) * unit)
        if not times:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(times)).astype(np.int64)
