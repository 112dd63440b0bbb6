"""Planned consumption from a decision point on: every FAS works through its plan at nominal pace
from its next take, without starving and without downtime. Rules, observations and rewards read it."""

from __future__ import annotations

import numpy as np

from twin.decision import DecisionRequest


class Forecast:
    """Per FAS, the unit it takes next and when; from these, run-outs and demand per type."""

    def __init__(self, request: DecisionRequest) -> None:
        sc = request.scenario
        units = sc.unit_index
        self.stock = request.stock
        self.n_types = len(request.stock)
        self._units = units
        # (fas, first future unit, time of its take, unit time, units left) for FAS still working
        self._fas: list[tuple[int, int, int, int, int]] = []
        for f, pos in enumerate(request.fas):
            if pos.next_take_s is None:
                continue
            first = units.order_start[f][pos.order] + pos.taken
            left = units.order_start[f][-1] - first
            if left > 0:
                self._fas.append((f, first, pos.next_take_s, sc.fas_unit_s[f], left))

    def runout_s(self, k: int) -> int | None:
        """Working second at which type k runs out (the first planned take that finds none),
        or None if the stock covers all planned takes."""
        needed = self.stock[k] + 1
        times = []
        for f, first, start, unit, _ in self._fas:
            done = int(self._units.cumulative[f][first, k])
            upcoming = self._units.positions[f][k][done : done + needed]
            if len(upcoming):
                times.append(start + (upcoming - first) * unit)
        if not times:
            return None
        merged = np.concatenate(times)
        if len(merged) < needed:
            return None
        return int(np.partition(merged, needed - 1)[needed - 1])

    def demand(self, start_s: int, end_s: int) -> np.ndarray:
        """Planned takes per type in [start_s, end_s)."""
        total = np.zeros(self.n_types, dtype=np.int64)
        for f, first, start, unit, left in self._fas:
            lo = min(left, max(0, -(-(start_s - start) // unit)))
            hi = min(left, max(0, -(-(end_s - start) // unit)))
            if hi > lo:
                cum = self._units.cumulative[f]
                total += cum[first + hi] - cum[first + lo]
        return total

    def demand_between(self, k: int, start_s: int, end_s: int) -> int:
        """Planned takes of type k in [start_s, end_s)."""
        return int(self.demand(start_s, end_s)[k])

    def takes(self, k: int) -> np.ndarray:
        """Working seconds of every planned take of type k from now on, sorted (shape (m,), int64)."""
        times = [
            start + (self._units.positions[f][k][int(self._units.cumulative[f][first, k]) :] - first) * unit
            for f, first, start, unit, _ in self._fas
        ]
        if not times:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(times)).astype(np.int64)
