"""The live mirror: the line's state rebuilt from its events, and the KPIs of the real week.

`Mirror.apply` takes one `twin.events` event; an event that does not fit the mirrored state raises
`EventRejected` and changes nothing. KPIs follow the definitions of the offline twin exactly: idle
time is the working time a FAS that is up and not done spends without a unit in hand; setup effort
sums `S` over the started batches. `snapshot()` is the state the line model resumes from for
forecasts and decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.config import PAS_STATION, Order
from twin.errors import TwinError
from twin.events import (
    BatchStarted,
    BatchStored,
    LineEvent,
    PlanRevised,
    StationDown,
    StationUp,
    StockCounted,
    UnitFinished,
    UnitStarted,
)
from twin.results import Kpis, completion
from twin.scenario import Scenario
from twin.snapshot import BatchInProgress, FasProgress, LineSnapshot


class EventRejected(TwinError):
    """An event that contradicts the mirrored state; the state is unchanged."""


@dataclass(slots=True)
class _Work:
    """Work of `total_s` seconds that pauses while its station is down."""

    total_s: int
    since: int | None
    done_s: int = 0

    def remaining(self, now: int) -> int:
        running = now - self.since if self.since is not None else 0
        return max(0, self.total_s - self.done_s - running)

    def pause(self, now: int) -> None:
        if self.since is not None:
            self.done_s += now - self.since
            self.since = None

    def resume(self, now: int) -> None:
        self.since = now


@dataclass(slots=True)
class _Batch:
    type: int
    quantity: int
    work: _Work


@dataclass(slots=True)
class _Unit:
    type: int
    work: _Work


@dataclass(slots=True)
class _FasMirror:
    consumed: int = 0
    unit: _Unit | None = None
    down: bool = False
    ready_since: int | None = 0
    idle_s: int = 0


@dataclass(slots=True)
class _PasMirror:
    last_type: int | None
    batch: _Batch | None = None
    down: bool = False
    started: int = 0
    stored: int = 0
    setup_effort: float = 0.0
    setups: int = 0


class Mirror:
    """The state of one line in one week, following its events."""

    def __init__(self, scenario: Scenario, plan_known: bool = True) -> None:
        self.scenario = scenario
        self.plan_known = plan_known
        self.revision = 0
        self.now_s = 0
        self.stock = list(scenario.initial_stock)
        self.pas = _PasMirror(scenario.initial_setup)
        self.fas = [_FasMirror(ready_since=0 if plan else None) for plan in scenario.plans]
        self._station = {name: i for i, name in enumerate(scenario.stations)}
        self._type = {name: i for i, name in enumerate(scenario.types)}

    # -- queries -----------------------------------------------------------------------------
    def position(self, f: int) -> tuple[int, int]:
        """(order index, units of it taken) of FAS `f`; the index is len(plan) when it is done."""
        return self.scenario.position_after(f, self.fas[f].consumed)

    def next_type(self, f: int) -> int | None:
        """Type of the next unit FAS `f` takes (None when its plan is done)."""
        order, _ = self.position(f)
        plan = self.scenario.plans[f]
        return plan[order][0] if order < len(plan) else None

    def planned_units(self, f: int) -> int:
        return sum(q for _, q in self.scenario.plans[f])

    def done(self, f: int) -> bool:
        fas = self.fas[f]
        return fas.unit is None and fas.consumed >= self.planned_units(f)

    def remaining(self) -> list[int]:
        """Per type: units the FAS still have to take, minus buffer stock and the PAS batch."""
        need = [-s for s in self.stock]
        if self.pas.batch is not None:
            need[self.pas.batch.type] -= self.pas.batch.quantity
        for f, plan in enumerate(self.scenario.plans):
            order, taken = self.position(f)
            if order < len(plan):
                need = [a + b for a, b in zip(need, self.scenario.demand_from[f][order], strict=True)]
                need[plan[order][0]] -= taken
        return need

    def kpis(self) -> Kpis:
        """The KPIs of the real week so far, as the offline twin's `Results` begin."""
        by_station = {}
        for f, fas in enumerate(self.fas):
            open_wait = self.now_s - fas.ready_since if fas.ready_since is not None else 0
            by_station[self.scenario.stations[f]] = fas.idle_s + open_wait
        consumed, planned = sum(f.consumed for f in self.fas), self.scenario.planned_units
        return Kpis(
            idle_s=sum(by_station.values()),
            idle_s_by_station=by_station,
            setup_effort=self.pas.setup_effort,
            setups=self.pas.setups,
            batches=self.pas.started,
            completion=completion(consumed, planned),
            units_planned=planned,
            units_consumed=consumed,
        )

    def snapshot(self) -> LineSnapshot:
        now = self.now_s
        batch = self.pas.batch
        return LineSnapshot(
            time_s=now,
            stock=tuple(self.stock),
            last_type=self.pas.last_type,
            batch=BatchInProgress(batch.type, batch.quantity, batch.work.remaining(now)) if batch else None,
            fas=tuple(FasProgress(f.consumed, f.unit.work.remaining(now) if f.unit else 0) for f in self.fas),
            decisions=self.pas.started,
        )

    @property
    def any_down(self) -> bool:
        """Whether the PAS or a FAS is down (a snapshot does not carry it)."""
        return self.pas.down or any(f.down for f in self.fas)

    def fas_state(self, f: int) -> str:
        fas = self.fas[f]
        if fas.down:
            return "down"
        if self.done(f):
            return "done"
        return "working" if fas.unit is not None else "waiting"

    def pas_state(self) -> str:
        pas = self.pas
        if pas.down:
            return "down"
        if pas.batch is None:
            return "idle" if any(r > 0 for r in self.remaining()) else "stopped"
        return "producing" if pas.batch.work.remaining(self.now_s) > 0 else "blocked"

    # -- events ------------------------------------------------------------------------------
    def apply(self, event: LineEvent) -> None:
        """Apply one event; raise `EventRejected` (nothing changed) if it does not fit."""
        if isinstance(event, PlanRevised):
            self._revise(event)
        else:
            if not self.plan_known:
                raise EventRejected("no plan yet: events are accepted once the week's plan is known")
            at = max(event.at_s, self.now_s)
            if isinstance(event, UnitStarted):
                self._unit_started(at, event)
            elif isinstance(event, UnitFinished):
                self._unit_finished(at, event)
            elif isinstance(event, StationDown | StationUp):
                self._down_up(at, event)
            elif isinstance(event, BatchStarted):
                self._batch_started(at, event)
            elif isinstance(event, BatchStored):
                self._batch_stored(at, event)
            else:
                self._stock_counted(event)
        self.now_s = max(self.now_s, event.at_s)

    def _fas_index(self, station: str) -> int:
        if station not in self._station:
            raise EventRejected(f"unknown station {station!r} (stations: {', '.join(self._station)})")
        return self._station[station]

    def _type_index(self, name: str) -> int:
        if name not in self._type:
            raise EventRejected(f"unknown type {name!r} (types: {', '.join(self._type)})")
        return self._type[name]

    def _unit_started(self, at: int, event: UnitStarted) -> None:
        f, k = self._fas_index(event.station), self._type_index(event.type)
        fas = self.fas[f]
        expected = self.next_type(f)
        if fas.unit is not None:
            raise EventRejected(f"{event.station} already has a unit in progress")
        if fas.down:
            raise EventRejected(f"{event.station} is down")
        if expected is None:
            raise EventRejected(f"{event.station} has finished its plan")
        if expected != k:
            raise EventRejected(
                f"{event.station} takes {event.type} but its plan calls for {self.scenario.types[expected]}"
            )
        if self.stock[k] == 0:
            raise EventRejected(f"{event.type} is out of stock in the buffer")
        if fas.ready_since is not None:
            fas.idle_s += at - fas.ready_since
            fas.ready_since = None
        self.stock[k] -= 1
        fas.consumed += 1
        fas.unit = _Unit(k, _Work(self.scenario.fas_unit_s[f], since=at))

    def _unit_finished(self, at: int, event: UnitFinished) -> None:
        f, k = self._fas_index(event.station), self._type_index(event.type)
        fas = self.fas[f]
        if fas.unit is None:
            raise EventRejected(f"{event.station} has no unit in progress")
        if fas.unit.type != k:
            raise EventRejected(
                f"{event.station} is building {self.scenario.types[fas.unit.type]}, not {event.type}"
            )
        fas.unit = None
        if not fas.down and not self.done(f):
            fas.ready_since = at

    def _down_up(self, at: int, event: StationDown | StationUp) -> None:
        going_down = isinstance(event, StationDown)
        if event.station == PAS_STATION:
            pas = self.pas
            if pas.down == going_down:
                raise EventRejected(f"PAS is already {'down' if going_down else 'up'}")
            pas.down = going_down
            if pas.batch is not None:
                pas.batch.work.pause(at) if going_down else pas.batch.work.resume(at)
            return
        f = self._fas_index(event.station)
        fas = self.fas[f]
        if fas.down == going_down:
            raise EventRejected(f"{event.station} is already {'down' if going_down else 'up'}")
        fas.down = going_down
        if going_down:
            if fas.ready_since is not None:
                fas.idle_s += at - fas.ready_since
                fas.ready_since = None
            if fas.unit is not None:
                fas.unit.work.pause(at)
        elif fas.unit is not None:
            fas.unit.work.resume(at)
        elif not self.done(f):
            fas.ready_since = at

    def _batch_started(self, at: int, event: BatchStarted) -> None:
        k = self._type_index(event.type)
        pas = self.pas
        if pas.batch is not None:
            current = self.scenario.types[pas.batch.type]
            raise EventRejected(f"the PAS batch of {current} has not entered the buffer yet")
        capacity = self.scenario.line.buffer.capacity
        if event.quantity > capacity:
            raise EventRejected(
                f"a batch of {event.quantity} units cannot fit the buffer (capacity {capacity})"
            )
        changeover = pas.last_type is not None and pas.last_type != k
        if changeover and pas.last_type is not None:
            pas.setup_effort += self.scenario.setup_effort[pas.last_type][k]
            pas.setups += 1
        pas_cfg = self.scenario.line.pas
        work_s = event.quantity * pas_cfg.unit_time_s + (pas_cfg.setup_time_s if changeover else 0)
        pas.batch = _Batch(k, event.quantity, _Work(work_s, since=None if pas.down else at))
        pas.last_type = k
        pas.started += 1

    def _batch_stored(self, at: int, event: BatchStored) -> None:
        k = self._type_index(event.type)
        batch = self.pas.batch
        if batch is None:
            raise EventRejected("no PAS batch is in progress")
        if (batch.type, batch.quantity) != (k, event.quantity):
            current = f"{batch.quantity} x {self.scenario.types[batch.type]}"
            raise EventRejected(f"the batch in progress is {current}, not {event.quantity} x {event.type}")
        capacity = self.scenario.line.buffer.capacity
        if sum(self.stock) + batch.quantity > capacity:
            raise EventRejected(
                f"the buffer would hold {sum(self.stock) + batch.quantity} > capacity {capacity}"
            )
        self.stock[k] += batch.quantity
        self.pas.batch = None
        self.pas.stored += 1

    def _stock_counted(self, event: StockCounted) -> None:
        stock = list(self.stock)
        for name, units in event.stock.items():
            stock[self._type_index(name)] = units
        capacity = self.scenario.line.buffer.capacity
        if sum(stock) > capacity:
            raise EventRejected(f"the count totals {sum(stock)} units, more than the capacity {capacity}")
        self.stock = stock

    def _revise(self, event: PlanRevised) -> None:
        week = self.scenario.week
        if event.week_start != week.week_start.isoformat():
            raise EventRejected(f"plan for week {event.week_start}, the mirror follows {week.week_start}")
        if event.revision <= self.revision and self.plan_known:
            raise EventRejected(f"plan revision {event.revision} is not newer than {self.revision}")
        plans: dict[str, dict[int, Order]] = {s: {} for s in self.scenario.stations}
        buildable = self.scenario.buildable_units
        total = 0
        for o in event.orders:
            self._type_index(o.type)
            self._fas_index(o.station)
            if o.position in plans[o.station]:
                raise EventRejected(f"{o.station} has two orders at position {o.position}")
            total += o.quantity
            if total > buildable:
                raise EventRejected(
                    f"{o.station} position {o.position}: quantity {o.quantity} takes the plan to {total} "
                    f"units, more than the PAS can build by a week after the week's end ({buildable})"
                )
            plans[o.station][o.position] = Order(type=o.type, quantity=o.quantity)
        ordered: dict[str, list[Order]] = {}
        for f, (station, orders) in enumerate(plans.items()):
            if sorted(orders) != list(range(1, len(orders) + 1)):
                raise EventRejected(f"{station}'s positions must be 1..{len(orders)}, got {sorted(orders)}")
            ordered[station] = [orders[p] for p in sorted(orders)]
            total = sum(o.quantity for o in ordered[station])
            horizon_s = self.scenario.calendar.horizon_work_s
            if total * self.scenario.fas_unit_s[f] > horizon_s:
                raise EventRejected(
                    f"{station}'s orders total {total} units, {total * self.scenario.fas_unit_s[f]:,} s of "
                    f"work, more than it can do by a week after the week's end ({horizon_s:,} s)"
                )
            if self.fas[f].consumed > total:
                raise EventRejected(f"{station} has taken {self.fas[f].consumed} units, the plan has {total}")
        sc = self.scenario
        self.scenario = Scenario(sc.line, week.model_copy(update={"plans": ordered}), sc.batch_size)
        self.revision = event.revision
        self.plan_known = True
        for f, fas in enumerate(self.fas):
            if self.done(f):
                fas.ready_since = None
            elif fas.unit is None and not fas.down and fas.ready_since is None:
                fas.ready_since = self.now_s


__all__ = ["EventRejected", "Mirror"]
