"""The zero-idle week as deadlines on positions: the model every exact planner of the PAS sequence
shares (CP-SAT, the dynamic programme, the lower bound).

A complete run builds a fixed multiset of batches (`problem.md`: the mask allows a type while its
remaining requirement is positive), and without idle time the FAS take at nominal pace, so the PAS
enters the batch at position `i` at a time that does not depend on the order (`twin.timeline`).
"Zero idle" is then exactly: batch `j` of type `k` sits at position `deadline(k, j)` or earlier.
With a setup time the entry times assume a changeover before every batch, which makes the model
stricter than the line (its plans are zero-idle in the twin; its optimum bounds nothing).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from functools import cached_property
from typing import NamedTuple

import numpy as np

from twin import Scenario
from twin.snapshot import LineSnapshot
from twin.timeline import Due, Timeline


class Deadline(NamedTuple):
    """Batch `number` (1-based) of `type` must sit at `position` or earlier (-1: nowhere in time)."""

    type: int
    number: int
    position: int
    due: Due


class ZeroIdleModel:
    """Counts, entry times and deadlines of one scenario's zero-idle plans."""

    def __init__(self, scenario: Scenario, snapshot: LineSnapshot | None = None) -> None:
        """The week from its start, or the rest of it from `snapshot` (a decision point of a run or
        of the live mirror): positions then count from that decision."""
        self.scenario = scenario
        self.timeline = Timeline(scenario, snapshot)
        self.previous = snapshot.last_type if snapshot is not None else scenario.initial_setup
        """The type the first position changes over from (None: no changeover cost)."""
        self.counts: tuple[int, ...] = self.timeline.batches_needed()
        """Batches of each type a complete run builds."""
        self.batches = sum(self.counts)
        setup_s = scenario.line.pas.setup_time_s
        self.exact = setup_s == 0
        """Whether the model is the line itself (no setup time): its optimum is then a bound."""
        self.entries = self.timeline.entry_times(self.batches, setup_s)
        self.effort_matrix = np.asarray(scenario.setup_effort, dtype=float)

    @cached_property
    def deadlines(self) -> list[Deadline]:
        """Every batch's deadline as the last position that meets it."""
        finite = [e for e in self.entries if e is not None]
        out = []
        for k, n in enumerate(self.counts):
            for j in range(1, n + 1):
                due = self.timeline.due(k, j)
                if due is None:
                    continue
                p = bisect_right(finite, due.time_s) - 1
                if p >= 0 and not self.timeline.entry_allows(p, finite[p], due):
                    p -= 1
                out.append(Deadline(k, j, p, due))
        return out

    @property
    def zero_idle_possible(self) -> bool:
        """False when some batch cannot meet its deadline at any position (proved, no search)."""
        return all(d.position >= 0 for d in self.deadlines)

    @property
    def positions_suffice(self) -> bool:
        """False when, by some position, the deadlines ask for more batches than positions: zero
        idle is then impossible too, although each deadline alone can be met."""
        return bool((self.required.sum(axis=1) <= np.arange(1, self.batches + 1)).all())

    @cached_property
    def required(self) -> np.ndarray:
        """`required[i, k]`: batches of type `k` that positions `0..i` must hold, shape
        (batches, types); non-decreasing down each column."""
        req = np.zeros((self.batches, len(self.counts)), dtype=np.int64)
        for k, j, p, _ in self.deadlines:
            if p >= 0:
                req[p, k] = max(req[p, k], j)
        out: np.ndarray = np.maximum.accumulate(req, axis=0) if self.batches else req
        return out

    def is_complete(self, sequence: Sequence[int]) -> bool:
        """Whether `sequence` builds exactly the week's batches."""
        return len(sequence) == self.batches and all(
            sequence.count(k) == n for k, n in enumerate(self.counts) if n or k in sequence
        )

    def meets(self, sequence: Sequence[int]) -> bool:
        """Whether the complete `sequence` meets every deadline (then it is a zero-idle plan)."""
        if not self.is_complete(sequence):
            return False
        position: dict[tuple[int, int], int] = {}
        seen: dict[int, int] = {}
        for i, k in enumerate(sequence):
            seen[k] = seen.get(k, 0) + 1
            position[k, seen[k]] = i
        return all(position[k, j] <= p for k, j, p, _ in self.deadlines)

    def effort(self, sequence: Sequence[int]) -> float:
        """The setup effort of `sequence`: the initial changeover (if any) and every switch."""
        previous = self.previous
        total = 0.0
        for k in sequence:
            total += 0.0 if previous is None else float(self.effort_matrix[previous, k])
            previous = k
        return total
