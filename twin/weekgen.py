"""Random weeks like the reference ones, for any line: every FAS plan fills a share of the working
week with orders of random type and size (no two consecutive orders of one type), and the buffer
starts with what the first hours need. The calendar (week start, time zone, holidays, downtime)
comes from a template week: its calendar only (`twin.config.load_calendar`), so a week of one
line is the template of any line. Same seed, same week."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.calendar import WorkCalendar
from twin.config import LineConfig, Order, WeekConfig


class SpecError(ValueError):
    """A spec this line and week cannot honour (it would plan nothing or ignore a setting): the
    field, its value and why."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field} {value}: {reason}")
        self.field, self.value, self.reason = field, value, reason


class WeekSpec(BaseModel):
    """How generated weeks look (defaults match the reference weeks)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    fill: Annotated[float, Field(gt=0, le=1.5)] = 0.97
    """Share of each FAS's working time its plan fills."""
    order_min: Annotated[int, Field(gt=0)] = 20
    """Smallest order quantity in units (the last order of a plan may be smaller to hit the fill)."""
    order_max: Annotated[int, Field(gt=0)] = 150
    """Largest order quantity in units."""
    shares: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    """Demand share per type (normalised); None draws new shares per week."""
    share_concentration: Annotated[float, Field(gt=0)] = 3.0
    """Dirichlet concentration of drawn shares: large = even shares, small = a few dominant types."""
    initial_stock: Annotated[int, Field(ge=0)] | None = None
    """Units in the buffer at week start: the types the first planned takes need. None: half the
    buffer's capacity (the reference line's 250)."""

    @model_validator(mode="after")
    def _orders_ordered(self) -> WeekSpec:
        if self.order_min > self.order_max:
            raise ValueError(f"order_min {self.order_min} exceeds order_max {self.order_max}")
        return self


class WeekGenerator:
    """Draws weeks for one line from a spec and a template week."""

    def __init__(self, line: LineConfig, template: WeekConfig, spec: WeekSpec | None = None) -> None:
        self.line = line
        self.template = template
        self.spec = spec or WeekSpec()
        n = len(line.types)
        if self.spec.shares is not None:
            unknown = sorted(set(self.spec.shares) - set(line.types))
            if unknown:
                raise ValueError(f"shares name unknown types {unknown} (line has {line.types})")
            total = sum(self.spec.shares.values())
            if total <= 0:
                raise ValueError("shares must not all be zero")
        given = self.spec.initial_stock
        self.initial_stock = line.buffer.capacity // 2 if given is None else given
        """Units in the buffer at week start (the spec's, or half the buffer's capacity)."""
        if self.initial_stock > line.buffer.capacity:
            raise ValueError(
                f"initial_stock {self.initial_stock} exceeds the buffer capacity {line.buffer.capacity}"
            )
        self.n_types = n
        self.week_s = WorkCalendar(line.calendar, template).week_work_s
        self.targets = [int(self.week_s * self.spec.fill // f.unit_time_s) for f in line.fas]
        self._check_targets()

    def _check_targets(self) -> None:
        """Every FAS plan gets a unit, an order of at least `order_min` and `initial_stock` is
        what the plans take; otherwise a setting would be ignored without a word."""
        spec, fas = self.spec, self.line.fas
        small = min(range(len(fas)), key=lambda f: self.targets[f])
        name, units = fas[small].id, self.targets[small]
        if units < 1:
            least = math.ceil(max(f.unit_time_s for f in fas) / self.week_s * 1e6) / 1e6
            raise SpecError(
                "fill",
                spec.fill,
                f"{name} gets no whole unit ({fas[small].unit_time_s} s) of the week's "
                f"{self.week_s / 3600:g} working hours: give at least {least:g}",
            )
        if spec.order_min > units:
            raise SpecError(
                "order_min",
                spec.order_min,
                f"larger than the whole plan of {name} ({units} units at fill {spec.fill:g})",
            )
        total = sum(self.targets)
        if self.initial_stock > total:
            raise SpecError(
                "initial_stock",
                self.initial_stock,
                f"more than the {total} units the plans take at fill {spec.fill:g} (give at most {total})",
            )

    def generate(self, seed: int) -> WeekConfig:
        rng = np.random.default_rng(seed)
        spec, line = self.spec, self.line
        if spec.shares is None:
            shares = rng.dirichlet(np.full(self.n_types, spec.share_concentration))
        else:
            raw = np.array([spec.shares.get(t, 0.0) for t in line.types])
            shares = raw / raw.sum()
        plans: dict[str, list[Order]] = {}
        for fas, target in zip(line.fas, self.targets, strict=True):
            high = min(spec.order_max, target)  # a larger order_max means no cap (and no int64 overflow)
            orders: list[Order] = []
            left, previous = target, -1
            while left > 0:
                weights = shares.copy()
                if previous >= 0 and weights.sum() > weights[previous]:
                    weights[previous] = 0.0
                k = int(rng.choice(self.n_types, p=weights / weights.sum()))
                quantity = min(left, int(rng.integers(spec.order_min, high + 1)))
                orders.append(Order(type=line.types[k], quantity=quantity))
                left -= quantity
                previous = k
            plans[fas.id] = orders
        stock = self._initial_stock(plans)
        return self.template.model_copy(update={"plans": plans, "initial_stock": stock, "initial_setup": ""})

    def _initial_stock(self, plans: dict[str, list[Order]]) -> dict[str, int]:
        """The first `initial_stock` units the FAS take at nominal pace, counted per type: the
        buffer starts with what the first hours need, as in the reference weeks."""
        takes: list[tuple[int, int, str]] = []
        for f, fas in enumerate(self.line.fas):
            n = 0
            for order in plans[fas.id]:
                for _ in range(min(order.quantity, self.initial_stock - n)):
                    takes.append((n * fas.unit_time_s, f, order.type))
                    n += 1
        stock = dict.fromkeys(self.line.types, 0)
        for _, _, name in sorted(takes)[: self.initial_stock]:
            stock[name] += 1
        return stock
