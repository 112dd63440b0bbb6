"""A line and a week compiled for simulation: integer type indices, plans as tuples and downtime
as intervals on the working-time axis. Built once per (line, week); cheap to reuse."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from twin.calendar import WorkCalendar
from twin.config import PAS_STATION, LineConfig, WeekConfig

Interval = tuple[int, int]


def _merge(intervals: list[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs that does not change during the run."""

    line: LineConfig
    week: WeekConfig
    batch_size: int

    @classmethod
    def build(cls, line: LineConfig, week: WeekConfig, batch_size: int | None = None) -> Scenario:
        size = line.pas.batch_size if batch_size is None else batch_size
        if not 1 <= size <= line.buffer.capacity:
            raise ValueError(
                f"batch size {size} must be between 1 and the buffer capacity {line.buffer.capacity}"
            )
        return cls(line, week, size)

    @cached_property
    def calendar(self) -> WorkCalendar:
        return WorkCalendar(self.line.calendar, self.week)

    @cached_property
    def buildable_units(self) -> int:
        """Units the PAS can build from the week start to a week after its end: no plan needs more."""
        return self.calendar.buildable_units(self.line.pas.unit_time_s)

    @property
    def types(self) -> list[str]:
        return self.line.types

    @property
    def stations(self) -> list[str]:
        return self.line.station_ids

    @cached_property
    def plans(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per FAS, its orders as (type index, quantity)."""
        index = {t: i for i, t in enumerate(self.line.types)}
        return tuple(
            tuple((index[o.type], o.quantity) for o in self.week.plans.get(s, []))
            for s in self.line.station_ids
        )

    def position_after(self, f: int, consumed: int) -> tuple[int, int]:
        """(order index, units of that order taken) of FAS `f` after it took `consumed` units; the
        index is len(plan) when the plan is done (and the units beyond it are then the second value)."""
        plan = self.plans[f]
        order, left = 0, consumed
        while order < len(plan) and left >= plan[order][1]:
            left -= plan[order][1]
            order += 1
        return order, left

    @cached_property
    def demand_from(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """demand_from[f][j][k]: units of type k in orders j, j+1, ... of FAS f (j = 0 .. len)."""
        n = len(self.line.types)
        out = []
        for plan in self.plans:
            acc = [0] * n
            rows = [tuple(acc)]
            for k, q in reversed(plan):
                acc[k] += q
                rows.append(tuple(acc))
            out.append(tuple(reversed(rows)))
        return tuple(out)

    @cached_property
    def demand_table(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """`demand_from` stacked into one array, and the row of each FAS's first order: the rows
        of many FAS are one gather."""
        rows = [row for fas in self.demand_from for row in fas]
        table = np.array(rows, dtype=np.int64).reshape(len(rows), len(self.line.types))
        starts = np.cumsum([0, *(len(fas) for fas in self.demand_from[:-1])])
        return table, tuple(int(s) for s in starts)

    @cached_property
    def unit_index(self) -> PlanUnits:
        """The plans unit by unit, indexed for fast forecasts."""
        return PlanUnits(self.plans, len(self.line.types))

    @cached_property
    def planned_units(self) -> int:
        return sum(q for plan in self.plans for _, q in plan)

    @cached_property
    def initial_stock(self) -> tuple[int, ...]:
        return tuple(self.week.stock_of(t) for t in self.line.types)

    @cached_property
    def initial_setup(self) -> int | None:
        return self.line.type_index(self.week.initial_setup) if self.week.initial_setup else None

    @cached_property
    def setup_effort(self) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(row) for row in self.line.setup_effort.matrix)

    @cached_property
    def fas_unit_s(self) -> tuple[int, ...]:
        return tuple(f.unit_time_s for f in self.line.fas)

    @cached_property
    def downtime(self) -> tuple[tuple[Interval, ...], ...]:
        """Working-time down intervals per station: index 0..F-1 the FAS, index F the PAS."""
        names = [*self.line.station_ids, PAS_STATION]
        per: dict[str, list[Interval]] = {n: [] for n in names}
        cal = self.calendar
        for down in self.week.downtime:
            per[down.station].append((cal.work_at_datetime(down.start), cal.work_at_datetime(down.end)))
        return tuple(_merge(per[n]) for n in names)


class PlanUnits:
    """The FAS plans as unit sequences: per FAS `order_start[j]` (first unit of order j),
    `cumulative[u, k]` (units of type k among its first u units) and `positions[k]` (the unit
    indices of type k). Forecasts read these with a handful of array operations."""

    def __init__(self, plans: tuple[tuple[tuple[int, int], ...], ...], n_types: int) -> None:
        self.order_start: list[list[int]] = []
        self.cumulative: list[np.ndarray] = []
        self.positions: list[list[np.ndarray]] = []
        self.types: list[np.ndarray] = []
        """Per FAS the type of each unit of its plan, in order."""
        lengths = [sum(q for _, q in plan) for plan in plans]
        self.stacked = np.zeros((sum(lengths) + len(plans), n_types), dtype=np.int32)
        """The cumulative counts of all FAS one after the other (`cumulative` are views of it;
        int32: a plant-size week has some 200,000 units x the types)."""
        row = 0
        for plan, length in zip(plans, lengths, strict=True):
            starts = [0]
            for _, quantity in plan:
                starts.append(starts[-1] + quantity)
            types = np.repeat(np.array([k for k, _ in plan], dtype=np.int64), [q for _, q in plan]).astype(
                np.int64
            )
            counts = self.stacked[row : row + length + 1]
            counts[np.arange(1, length + 1), types] = 1
            np.cumsum(counts, axis=0, out=counts)
            row += length + 1
            self.order_start.append(starts)
            self.cumulative.append(counts)
            by_type = np.argsort(types, kind="stable")
            self.positions.append(np.split(by_type, np.cumsum(np.bincount(types, minlength=n_types))[:-1]))
            self.types.append(types)
