"""Planned consumption from a decision point on: every FAS works through its plan at nominal pace
from its next take, without starving and without downtime. Rules and observations read it."""

from __future__ import annotations

from twin.decision import DecisionRequest
from twin.stock import Segment, nth_take_time


class Forecast:
    """Per type, the runs of takes the FAS plans imply from `request.time_s` on."""

    def __init__(self, request: DecisionRequest) -> None:
        sc = request.scenario
        self.stock = request.stock
        self.runs: list[list[Segment]] = [[] for _ in request.stock]
        for f, pos in enumerate(request.fas):
            if pos.next_take_s is None:
                continue
            unit = sc.fas_unit_s[f]
            t = pos.next_take_s
            plan = sc.plans[f]
            for j in range(pos.order, len(plan)):
                k, quantity = plan[j]
                count = quantity - (pos.taken if j == pos.order else 0)
                if count > 0:
                    self.runs[k].append(Segment(f, k, t, unit, count))
                    t += count * unit

    def runout_s(self, k: int) -> int | None:
        """Working second at which type k runs out (the first planned take that finds none),
        or None if the stock covers all planned takes."""
        runs = self.runs[k]
        needed = self.stock[k] + 1
        if sum(r.count for r in runs) < needed:
            return None
        return nth_take_time(runs, [0] * len(runs), needed)

    def demand_between(self, k: int, start_s: int, end_s: int) -> int:
        """Planned takes of type k in [start_s, end_s)."""
        return sum(r.takes_until(end_s - 1) - r.takes_until(start_s - 1) for r in self.runs[k])
