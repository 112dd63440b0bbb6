"""The week as it runs when no FAS ever starves: every take's time, the latest buffer entry of
each batch and the entry times of the PAS batches, all independent of which types the PAS builds.

With zero idle time the FAS follow their plans at nominal pace (downtime included), so their takes
are fixed. The PAS then enters batch `i` at `max(finish_i, release_i)`, where `finish_i` is its
production end after the previous entry and `release_i` the take that frees room for it (the buffer
holds the initial stock plus `i` batches minus what was taken). When the setup time is zero neither
depends on the types, which turns "zero idle" into deadlines on the positions of the batches: the
exact planner (`agent.planners.cpsat`) is built on this. The takes come from the twin itself (a run with
ample stock), so the timeline matches the simulation to the second.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace

import numpy as np

from twin.decision import Decision, DecisionRequest
from twin.errors import SimulationError
from twin.line import Line, simulate
from twin.scenario import Interval, Scenario
from twin.snapshot import LineSnapshot


@dataclass(frozen=True)
class Due:
    """The take that batch `j` of type `k` must precede (enter at or before `time_s`)."""

    time_s: int
    fas: int
    """The FAS whose take it is."""
    same_instant: int
    """Takes of type k at `time_s` that this batch is the first to cover (they wait for it within
    the instant when it enters exactly then; see `Timeline.entry_allows`)."""


class Timeline:
    """Takes of the zero-idle week and the PAS entry times derived from them."""

    def __init__(self, scenario: Scenario, snapshot: LineSnapshot | None = None) -> None:
        """The week from its start, or the rest of it from `snapshot` (a decision point: no PAS
        batch in progress), as a mirror or `Line.snapshot()` gives it."""
        self.scenario = scenario
        n = len(scenario.types)
        if snapshot is not None and snapshot.batch is not None:
            raise SimulationError("the rest of a week is planned from a decision point: the PAS has a batch")
        self.start_s = snapshot.time_s if snapshot else 0
        self.stock: tuple[int, ...] = snapshot.stock if snapshot else scenario.initial_stock
        """Buffer stock per type at the start."""
        ample = _ample(scenario)
        if snapshot is None:
            _, trace = simulate(ample, _never_called)
        else:
            rest = Line(ample, snapshot=replace(snapshot, stock=ample.initial_stock))
            rest.run(_never_called)
            trace = rest.trace
        times: list[list[int]] = [[] for _ in range(n)]
        stations: list[list[int]] = [[] for _ in range(n)]
        everything: list[int] = []
        for seg in trace.segments:
            at = [seg.start + i * seg.period for i in range(seg.count)]
            times[seg.type].extend(at)
            stations[seg.type].extend([seg.fas] * seg.count)
            everything.extend(at)
        self.take_s: list[np.ndarray] = []
        self.take_fas: list[np.ndarray] = []
        for k in range(n):
            order = np.lexsort((np.asarray(stations[k]), np.asarray(times[k])))
            self.take_s.append(np.asarray(times[k], dtype=np.int64)[order])
            self.take_fas.append(np.asarray(stations[k], dtype=np.int64)[order])
        self.all_take_s = np.sort(np.asarray(everything, dtype=np.int64))
        self.demand = tuple(len(t) for t in self.take_s)

    def batches_needed(self) -> tuple[int, ...]:
        """Batches of each type a complete run builds: the action mask allows a type while its
        remaining requirement is positive, so exactly ceil((demand - stock) / b)."""
        b = self.scenario.batch_size
        return tuple(max(0, -(-(d - s) // b)) for d, s in zip(self.demand, self.stock, strict=True))

    def due(self, k: int, j: int) -> Due | None:
        """When batch `j` (1-based) of type `k` must have entered; None if no take needs it."""
        first = self.stock[k] + (j - 1) * self.scenario.batch_size  # takes covered
        times = self.take_s[k]
        if first >= len(times):
            return None
        at = int(times[first])
        same = int(np.searchsorted(times, at, side="right")) - first
        return Due(at, int(self.take_fas[k][first]), same)

    def takes_until(self, time_s: int) -> int:
        """Takes at or before `time_s` (all FAS, all types)."""
        return int(np.searchsorted(self.all_take_s, time_s, side="right"))

    def entry_times(self, batches: int, changeover_s: int = 0) -> list[int | None]:
        """Entry time of the PAS batch at each position (None: the buffer never has room for it).

        `changeover_s` is added to every batch: with a setup time the times then bound the real
        ones from above (a plan that meets deadlines with them meets them in the twin too)."""
        sc = self.scenario
        work = sc.batch_size * sc.line.pas.unit_time_s + changeover_s
        down = sc.downtime[-1]
        out: list[int | None] = []
        entered = self.start_s
        for position in range(batches):
            if self.takes_for_room(position) > len(self.all_take_s):
                out.extend([None] * (batches - position))
                break
            finish = _advance(entered, work, down)
            entered = _up_at(max(finish, self.release_s(position)), down)
            out.append(entered)
        return out

    def takes_for_room(self, position: int) -> int:
        """Takes that must have happened before the batch at `position` (0-based) fits in the
        buffer, which then holds the initial stock and `position + 1` batches."""
        sc = self.scenario
        return sum(self.stock) - sc.line.buffer.capacity + (position + 1) * sc.batch_size

    def release_s(self, position: int) -> int:
        """The take that frees room for the batch at `position` (0-based), 0 if none is needed."""
        need = self.takes_for_room(position)
        return int(self.all_take_s[need - 1]) if need > 0 else 0

    def entry_allows(self, position: int, entry_s: int, due: Due) -> bool:
        """Whether the batch at `position` can enter at `entry_s` when it is the batch `due` names.

        Takes that wait for this very batch move behind its entry within the instant (`problem.md`:
        FAS restart after the PAS batch enters), so they do not free room for it. This matters
        only when the batch enters exactly at its due time and exactly at its room's release."""
        if due.time_s != entry_s or self.release_s(position) != entry_s:
            return True
        return self.takes_until(entry_s) - due.same_instant >= self.takes_for_room(position)


def _advance(start: int, work: int, down: tuple[Interval, ...]) -> int:
    """End of `work` PAS seconds started at `start`, pausing in downtime (a batch finishing as the
    PAS goes down finishes when it comes back up, as in the twin)."""
    t, left = start, work
    for a, b in down:
        if b <= t:
            continue
        if t + left < a:
            break
        left -= max(0, a - t)
        t = b
    return t + left


def _up_at(t: int, down: tuple[Interval, ...]) -> int:
    """`t`, or the end of the PAS downtime containing it (a blocked batch enters only when up)."""
    i = bisect_right([a for a, _ in down], t) - 1
    return down[i][1] if i >= 0 and t < down[i][1] else t


def _ample(scenario: Scenario) -> Scenario:
    """The scenario with every take in stock from the start, so no FAS waits and the PAS rests."""
    need = {t: sum(rows[0][k] for rows in scenario.demand_from) for k, t in enumerate(scenario.types)}
    week = scenario.week.model_copy(update={"initial_stock": need})
    capacity = max(sum(need.values()), scenario.batch_size)
    line = scenario.line.model_copy(
        update={"buffer": scenario.line.buffer.model_copy(update={"capacity": capacity})}
    )
    return Scenario(line, week, scenario.batch_size)


def _never_called(request: DecisionRequest) -> Decision:
    raise AssertionError("with ample stock no type is valid, so the PAS never decides")
