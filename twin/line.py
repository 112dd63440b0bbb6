"""The line model: one PAS, a finite buffer and several FAS on a salabim event list.

Time is the working-time axis of the week (see `twin.calendar`). The model moves what the KPIs
need, not single units: a FAS that works through an order is one consumption run (`Segment`), so
events happen only at order boundaries, stock-outs, batch completions, buffer entries, decisions
and downtime. Same-instant order is the salabim priority `phase * 1000 + station`
(phases in `twin.stock`).

Driving it is the decision seam: `start()` runs to the first decision point and returns its
`DecisionRequest`; `decide()` applies an answer and runs to the next one; both return None when
the run has ended. `run(decider)` does the loop for an in-process policy.

At a decision point a run can be kept: `checkpoint()` copies it exactly (stations, the buffer's
active runs, the trace so far, the pending events), and `Line.restore` goes on from the copy as the
run would have, as often as wanted (rollouts and beam search try several decisions from one point).
`snapshot()` is the portable part of it, what the live mirror also knows (`twin.snapshot`).
"""

from __future__ import annotations

import copy
import enum
import threading
from dataclasses import dataclass
from math import inf
from typing import Self

import salabim as sim

from twin.decision import Decider, Decision, DecisionRequest, FasPosition
from twin.errors import InvalidDecision, SimulationError
from twin.results import BatchRecord, Results, Trace, compute_results
from twin.scenario import Scenario
from twin.snapshot import FasProgress, LineSnapshot
from twin.stock import (
    PHASE_DECIDE,
    PHASE_DOWNTIME,
    PHASE_ENTRY,
    PHASE_FAS,
    PHASE_RESTART,
    Buffer,
    Key,
    Segment,
)

_PHASE_WEIGHT = 1000
_BUILDING = threading.Lock()
"""salabim builds an Environment through its global default environment (set before the new one
is complete): two threads building one at once break each other's (`serve --plant` mirrors many
lines in one process). Built one at a time; running them concurrently is safe."""


class _Actor(sim.Component):  # type: ignore[misc]
    """A salabim component that runs its station's handler each time it becomes current."""

    def setup(self, station: _Station) -> None:
        self.station = station

    def process(self):  # type: ignore[no-untyped-def]
        while True:
            wake = self.station.wake()
            if wake is None:
                yield self.passivate()
            else:
                yield self.hold(till=wake[0], priority=wake[1])


class Engine:
    """A salabim environment and its actors, reused run after run: creating an Environment costs
    milliseconds (salabim inspects the call stack) and a Component about 250 us, far more than a
    decision. `Line(scenario, engine)` rewinds the clock to 0 and rebinds the actors."""

    def __init__(self) -> None:
        with _BUILDING:
            self.env = sim.Environment(
                trace=False, random_seed="", set_numpy_random_seed=False, yieldless=False
            )
        # The run is driven with env.step()/env.peek() (salabim's API for external event loops):
        # env.run() costs an inspect.stack() per call, far more than a decision. peek() reads the
        # flag that run() would set.
        self.env.end_on_empty_eventlist = False
        self._actors: list[_Actor] = []
        self._bound = 0

    def rewind(self, now: int = 0) -> None:
        """Stop every actor of the previous run and set the clock to `now` (0: the week start)."""
        for actor in self._actors[: self._bound]:
            actor.cancel()
        self._bound = 0
        self.env.reset_now(now)

    def bind(self, station: _Station) -> _Actor:
        """An idle actor that from now on runs `station` (created when the pool is exhausted)."""
        if self._bound == len(self._actors):
            actor = _Actor(env=self.env, station=station, process="")  # started by the first schedule()
            actor.status.monitor(False)  # salabim's per-component status history: unused, costs time
            self._actors.append(actor)
        actor = self._actors[self._bound]
        actor.station = station
        self._bound += 1
        return actor


class _Station:
    """Common scheduling for the PAS, the FAS and the downtime clock."""

    def __init__(self, line: Line, index: int) -> None:
        self.line = line
        self.index = index
        self._phase = PHASE_FAS
        self._next: tuple[int, int] | None = None
        self._in_wake = False
        self._started = False
        self.actor = line.engine.bind(self)

    def schedule(self, at: int, phase: int) -> None:
        self._phase = phase
        self._next = (at, phase * _PHASE_WEIGHT + self.index)
        if self._in_wake:
            return
        if self._started:
            self.actor.activate(at=at, priority=self._next[1])
        else:
            self._started = True
            self.actor.activate(at=at, priority=self._next[1], process="process")

    def unschedule(self) -> None:
        self._next = None
        if not self._in_wake and self._started:
            self.actor.passivate()

    def wake(self) -> tuple[int, int] | None:
        self._in_wake = True
        self._next = None
        now = int(self.line.engine.env.now())
        self.line.key = (now, self._phase, self.index)
        try:
            self.on_wake(now, self._phase)
        finally:
            self._in_wake = False
        return self._next

    def on_wake(self, now: int, phase: int) -> None:
        raise NotImplementedError

    def copy_to(self, line: Line) -> Self:
        """This station's state, for `line` (a copy of its run); its actor is bound by `rebind`."""
        station = copy.copy(self)
        station.line = line
        return station

    def rebind(self, engine: Engine) -> None:
        """Take an actor of `engine` and put this station's pending event (if any) on its list."""
        self.actor = engine.bind(self)
        self._in_wake = False
        self._started = self._next is not None
        if self._next is not None:
            self.actor.activate(at=self._next[0], priority=self._next[1], process="process")


def _interval_at(intervals: tuple[tuple[int, int], ...], now: int) -> tuple[int, int] | None:
    """The interval that contains `now` (start included, end excluded), if any."""
    for interval in intervals:
        if interval[0] <= now < interval[1]:
            return interval
    return None


class FasState(enum.Enum):
    WORKING = "working"  # taking units of one type in a consumption run
    FINISHING = "finishing"  # one unit in progress outside a run (after downtime)
    WAITING = "waiting"  # starving: its type is out of stock (idle time)
    DOWN = "down"
    DONE = "done"


class _Fas(_Station):
    def __init__(self, line: Line, index: int) -> None:
        super().__init__(line, index)
        sc = line.scenario
        self.plan = sc.plans[index]
        self.unit_s = sc.fas_unit_s[index]
        self.order = 0
        self.taken = 0  # units of the current order taken before the current run
        self.seg: Segment | None = None
        self.state = FasState.FINISHING if self.plan else FasState.DONE
        self.unit_end = 0
        self.remaining_work = 0
        self.wait_since = 0
        self.wait_type = -1
        self.idle_s = 0
        self.consumed = 0
        self.down_until = 0

    # -- helpers -----------------------------------------------------------------------------
    def _close_run(self, key: Key) -> int | None:
        seg = self.seg
        if seg is None:
            return None
        self.line.buffer.close(seg, key)
        self.taken += seg.count
        self.consumed += seg.count
        self.line.trace.segments.append(seg)
        self.seg = None
        return seg.type

    def _close_wait(self, now: int) -> None:
        self.idle_s += now - self.wait_since
        self.line.trace.waits.append((self.index, self.wait_type, self.wait_since, now))
        self.line.waiting[self.wait_type].discard(self.index)

    def _skip_finished_orders(self) -> None:
        while self.order < len(self.plan) and self.taken == self.plan[self.order][1]:
            self.order += 1
            self.taken = 0

    def next_type(self) -> int | None:
        self._skip_finished_orders()
        return self.plan[self.order][0] if self.order < len(self.plan) else None

    def taken_now(self) -> int:
        """Units of the current order taken so far (the run's takes synced by the buffer)."""
        return self.taken + (self.seg.synced if self.seg else 0)

    def reschedule(self) -> None:
        """Wake at the end of the run, or earlier where the buffer predicts a stock-out."""
        seg = self.seg
        if self.state is not FasState.WORKING or seg is None:
            return
        at = seg.end
        alarm = self.line.alarms[seg.type]
        if alarm is not None and alarm[1] == self.index and alarm[0] < at:
            at = alarm[0]
        self.schedule(at, PHASE_FAS)

    def can_take(self) -> bool:
        """False if this FAS cannot take anything unless material arrives (deadlock test)."""
        if self.state in (FasState.WORKING, FasState.FINISHING):
            return True
        if self.state is FasState.DOWN and self.remaining_work > 0:
            return True
        k = self.next_type()
        return k is not None and self.line.buffer.sync(k, self.line.key) > 0

    # -- events ------------------------------------------------------------------------------
    def on_wake(self, now: int, phase: int) -> None:
        """A unit boundary: start the next unit (step 1, or step 3 after an arrival)."""
        line = self.line
        key = (now, phase, self.index)
        touched = self._close_run(key)
        self._skip_finished_orders()
        if self.order == len(self.plan):
            if self.state is FasState.WAITING:
                self._close_wait(now)
            self.state = FasState.DONE
            line.fas_changed(touched)
            line.check_done(now)
            return
        k, quantity = self.plan[self.order]
        if line.buffer.sync(k, key) == 0:
            if self.state is not FasState.WAITING:
                self.state = FasState.WAITING
                self.wait_since = now
                self.wait_type = k
                line.waiting[k].add(self.index)
            line.fas_changed(touched)
            return
        if self.state is FasState.WAITING:
            self._close_wait(now)
        self.seg = Segment(self.index, k, now, self.unit_s, quantity - self.taken, first_phase=phase)
        line.buffer.add(self.seg)
        self.state = FasState.WORKING
        line.fas_changed(touched, k)
        self.reschedule()

    def resume(self, now: int, consumed: int, remaining_s: int) -> None:
        """Continue after `consumed` units, the last one with `remaining_s` of work left."""
        self.order, self.taken = self.line.scenario.position_after(self.index, consumed)
        self.consumed = 0
        if self.order == len(self.plan) and self.taken:
            raise SimulationError(f"FAS {self.line.scenario.stations[self.index]} took more than its plan")
        down = _interval_at(self.line.scenario.downtime[self.index], now)
        if self.order == len(self.plan) and remaining_s == 0:
            self.state = FasState.DONE
        elif down is not None:
            self.state = FasState.DOWN
            self.down_until = down[1]
            self.remaining_work = remaining_s
        else:
            self.state = FasState.FINISHING
            self.unit_end = now + remaining_s

    def progress(self, now: int) -> FasProgress:
        """Units of its plan taken so far and the work left on the unit in hand (`LineSnapshot`)."""
        consumed = sum(q for _, q in self.plan[: self.order]) + self.taken_now()
        remaining = 0
        seg = self.seg
        if self.state is FasState.WORKING and seg is not None:
            remaining = seg.start + seg.synced * seg.period - now
        elif self.state is FasState.FINISHING:
            remaining = self.unit_end - now
        elif self.state is FasState.DOWN:
            remaining = self.remaining_work
        return FasProgress(consumed, max(0, remaining))

    def go_down(self, now: int, until: int) -> None:
        self.down_until = until
        if self.state is FasState.DONE:
            return
        touched = None
        self.remaining_work = 0
        if self.state is FasState.WORKING and self.seg is not None:
            seg = self.seg
            touched = self._close_run((now, PHASE_DOWNTIME, self.index))
            self.remaining_work = seg.start + seg.count * seg.period - now if seg.count else 0
        elif self.state is FasState.FINISHING:
            self.remaining_work = self.unit_end - now
        elif self.state is FasState.WAITING:
            self._close_wait(now)
        self.state = FasState.DOWN
        self.unschedule()
        self.line.fas_changed(touched)

    def go_up(self, now: int) -> None:
        if self.state is not FasState.DOWN:
            return
        self.state = FasState.FINISHING
        self.unit_end = now + self.remaining_work
        self.remaining_work = 0
        self.schedule(self.unit_end, PHASE_FAS)

    def position(self, now: int) -> FasPosition:
        state, seg, plan, order = (
            self.state,
            self.seg,
            self.plan,
            self.order,
        )  # hot: 1 call per FAS and decision
        taken = self.taken + (seg.synced if seg else 0)  # taken_now()
        if order < len(plan) and taken == plan[order][1]:
            order, taken = order + 1, 0
        nxt: int | None
        if order >= len(plan) or state is FasState.DONE:
            nxt = None
        elif state is FasState.WORKING and seg is not None:
            nxt = seg.start + seg.synced * seg.period
        elif state is FasState.FINISHING:
            nxt = max(now, self.unit_end)
        elif state is FasState.DOWN:
            nxt = self.down_until + self.remaining_work
        else:
            nxt = now
        return FasPosition(order, taken, nxt, state is FasState.WAITING)


class PasState(enum.Enum):
    IDLE = "idle"  # between a buffer entry and the decision
    DECIDING = "deciding"
    PRODUCING = "producing"
    BLOCKED = "blocked"
    STOPPED = "stopped"  # no type is valid any more


class _Pas(_Station):
    def __init__(self, line: Line, index: int) -> None:
        super().__init__(line, index)
        sc = line.scenario
        self.unit_s = sc.line.pas.unit_time_s
        self.setup_s = sc.line.pas.setup_time_s
        self.state = PasState.IDLE
        self.down = False
        self.last_type = sc.initial_setup
        self.batch: BatchRecord | None = None
        self.end_s = 0
        self.remaining_s = 0
        self.work_since = 0
        self.blocked_since = 0
        self.decisions = 0

    def on_wake(self, now: int, phase: int) -> None:
        if phase == PHASE_DECIDE:
            self.line.decision_point(now)
            return
        if self.state is PasState.PRODUCING:
            self.line.trace.pas_work.append((self.work_since, now))
            assert self.batch is not None
            self.batch.finished_s = now
            self.state = PasState.BLOCKED
            self.blocked_since = now
        self.try_enter(now)

    def resume(self, now: int, snapshot: LineSnapshot) -> None:
        self.last_type = snapshot.last_type
        self.decisions = snapshot.decisions
        self.down = _interval_at(self.line.scenario.downtime[self.index], now) is not None
        batch = snapshot.batch
        if batch is None:
            return
        self.batch = BatchRecord(batch.type, batch.quantity, now, 0.0, False)
        self.state = PasState.PRODUCING
        self.remaining_s = batch.remaining_s
        self.work_since = now
        self.end_s = now + batch.remaining_s

    def start_batch(self, now: int, k: int, quantity: int) -> None:
        changeover = self.last_type is not None and self.last_type != k
        effort = (
            self.line.scenario.setup_effort[self.last_type][k]
            if changeover and self.last_type is not None
            else 0.0
        )
        self.batch = BatchRecord(k, quantity, now, effort, changeover)
        self.line.trace.batches.append(self.batch)
        self.last_type = k
        self.state = PasState.PRODUCING
        duration = quantity * self.unit_s + (self.setup_s if changeover else 0)
        if self.down:
            self.remaining_s = duration
        else:
            self.work_since = now
            self.end_s = now + duration
            self.schedule(self.end_s, PHASE_ENTRY)

    def try_enter(self, now: int) -> None:
        """Step 2: the finished batch enters the buffer if its space allows."""
        line = self.line
        batch = self.batch
        assert batch is not None
        free = line.buffer.capacity - line.buffer.total(line.key)
        if free < batch.quantity:
            self.recompute_unblock()
            line.check_deadlock(now)
            return
        if now > self.blocked_since:
            line.trace.pas_blocked.append((self.blocked_since, now))
        line.buffer.stock[batch.type] += batch.quantity
        batch.entered_s = now
        self.state = PasState.IDLE
        for f in sorted(line.waiting[batch.type]):  # step 3, in station order
            line.fas[f].schedule(now, PHASE_RESTART)
        line.refresh_alarm(batch.type)
        self.schedule(now, PHASE_DECIDE)

    def recompute_unblock(self) -> None:
        """While blocked: wake when FAS takes will have made room for the batch."""
        if self.state is not PasState.BLOCKED or self.down:
            return
        line = self.line
        assert self.batch is not None
        missing = self.batch.quantity - (line.buffer.capacity - line.buffer.total(line.key))
        if missing <= 0:
            self.schedule(line.key[0], PHASE_ENTRY)
            return
        at = line.buffer.time_of_nth_take(missing, line.key)
        if at is None:
            self.unschedule()
        else:
            self.schedule(at, PHASE_ENTRY)

    def go_down(self, now: int) -> None:
        """Production pauses and a blocked batch waits; a decision due at this instant still happens."""
        self.down = True
        if self.state is PasState.PRODUCING:
            if now > self.work_since:
                self.line.trace.pas_work.append((self.work_since, now))
            self.remaining_s = self.end_s - now
            self.unschedule()
        elif self.state is PasState.BLOCKED:
            if now > self.blocked_since:
                self.line.trace.pas_blocked.append((self.blocked_since, now))
            self.unschedule()

    def go_up(self, now: int) -> None:
        self.down = False
        if self.state is PasState.PRODUCING:
            self.work_since = now
            self.end_s = now + self.remaining_s
            self.schedule(self.end_s, PHASE_ENTRY)
        elif self.state is PasState.BLOCKED:
            self.blocked_since = now
            self.schedule(now, PHASE_ENTRY)


class _Downtime(_Station):
    """Walks through the planned down/up transitions of every station."""

    def __init__(self, line: Line, index: int) -> None:
        super().__init__(line, index)
        transitions = []
        for station, intervals in enumerate(line.scenario.downtime):
            for start, end in intervals:
                transitions.append((start, station, end))
                transitions.append((end, station, -1))
        self.transitions = sorted(transitions)
        self.position = 0
        if line.resumed:  # transitions at the snapshot's instant are already in force
            while (
                self.position < len(self.transitions) and self.transitions[self.position][0] <= line.start_s
            ):
                self.position += 1
        if self.position < len(self.transitions):
            self.schedule(self.transitions[self.position][0], PHASE_DOWNTIME)

    def on_wake(self, now: int, phase: int) -> None:
        line = self.line
        while (
            not line.finished
            and self.position < len(self.transitions)
            and self.transitions[self.position][0] == now
        ):
            _, station, until = self.transitions[self.position]
            self.position += 1
            if station == len(line.fas):
                line.pas.go_down(now) if until >= 0 else line.pas.go_up(now)
            elif until >= 0:
                line.fas[station].go_down(now, until)
            else:
                line.fas[station].go_up(now)
            if until >= 0:
                line.check_deadlock(now)
        if self.position < len(self.transitions):
            self.schedule(self.transitions[self.position][0], PHASE_DOWNTIME)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A run stopped at a decision point, kept exactly (`Line.checkpoint`): `Line.restore` goes on
    from it, as often as wanted, and the same decisions give the run's own trace and KPIs."""

    request: DecisionRequest
    """The pending decision point."""
    _line: Line

    @property
    def scenario(self) -> Scenario:
        return self._line.scenario

    def snapshot(self) -> LineSnapshot:
        """The portable part: what a line resumed with `Line(scenario, engine, snapshot)` needs."""
        return self._line.snapshot()


class Line:
    """One run of the line model over a scenario (line + week + batch size)."""

    def __init__(
        self, scenario: Scenario, engine: Engine | None = None, snapshot: LineSnapshot | None = None
    ) -> None:
        """A run from the week start, or from `snapshot` (a state mid-week) when given."""
        self.scenario = scenario
        n = len(scenario.types)
        if engine is None:
            engine = Engine()
        start_s = snapshot.time_s if snapshot else 0
        engine.rewind(start_s)
        self.engine = engine
        self.start_s = start_s
        self.resumed = snapshot is not None
        self.key: Key = (start_s, 0, 0)
        stock = snapshot.stock if snapshot else scenario.initial_stock
        self.buffer = Buffer(scenario.line.buffer.capacity, list(stock))
        self.trace = Trace(max_fill_by_type=[0] * n)
        self.waiting: list[set[int]] = [set() for _ in range(n)]
        self.alarms: list[tuple[int, int] | None] = [None] * n
        self.fas = [_Fas(self, f) for f in range(len(scenario.stations))]
        self.pas = _Pas(self, len(self.fas))
        self.downtime = _Downtime(self, 0)
        self.pending: DecisionRequest | None = None
        self.finished = False
        self.deadlock = False
        self.end_s = 0
        self._results: Results | None = None
        self._started = False
        if snapshot is not None:
            self._resume(snapshot)

    def _resume(self, snapshot: LineSnapshot) -> None:
        """Put the stations where the snapshot says (planned downtime from the scenario)."""
        now = snapshot.time_s
        if len(snapshot.fas) != len(self.fas) or len(snapshot.stock) != len(self.scenario.types):
            raise SimulationError("the snapshot does not match the line (stations or types)")
        for fas, progress in zip(self.fas, snapshot.fas, strict=True):
            fas.resume(now, progress.consumed, progress.remaining_s)
        self.pas.resume(now, snapshot)

    # -- keeping a run at a decision point ----------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """This run at its pending decision point, exactly; this run goes on unchanged."""
        if self.pending is None:
            raise SimulationError("a checkpoint is taken at a decision point: none is pending")
        return Checkpoint(self.pending, self._copy())

    @classmethod
    def restore(cls, checkpoint: Checkpoint, engine: Engine | None = None) -> Line:
        """The run of `checkpoint` at its decision point, on `engine` (rewound: a run still on it
        ends). `decide()` answers the pending request (`checkpoint.request`)."""
        line = checkpoint._line._copy()
        engine = engine or Engine()
        engine.rewind(checkpoint.request.time_s)
        line.engine = engine
        for station in (*line.fas, line.pas, line.downtime):
            station.rebind(engine)
        return line

    def snapshot(self) -> LineSnapshot:
        """The line's state at the pending decision point as the live mirror would give it: the
        rest of the week resumed from it (`Line(scenario, engine, snapshot)`) is this run's, but
        its trace and KPIs begin there (a checkpoint keeps the whole run)."""
        request = self.pending
        if request is None:
            raise SimulationError("a snapshot is taken at a decision point: none is pending")
        now = request.time_s
        return LineSnapshot(
            time_s=now,
            stock=request.stock,
            last_type=self.pas.last_type,
            batch=None,
            fas=tuple(f.progress(now) for f in self.fas),
            decisions=request.index,
        )

    def _copy(self) -> Line:
        """A copy of this run's state that shares nothing mutable with it. At a decision point the
        trace so far is final (every batch has entered the buffer, every closed run and wait is
        over): its records are shared, its lists copied; the active consumption runs are copied,
        each once (the buffer and its FAS hold the same one). The stations keep their actors
        until `rebind`."""
        line = copy.copy(self)
        segments: dict[int, Segment] = {}

        def own(seg: Segment) -> Segment:
            if id(seg) not in segments:
                segments[id(seg)] = copy.copy(seg)
            return segments[id(seg)]

        buffer = self.buffer
        line.buffer = Buffer(buffer.capacity, list(buffer.stock))
        line.buffer.consumers = [[own(seg) for seg in group] for group in buffer.consumers]
        t = self.trace
        line.trace = Trace(
            list(t.batches),
            list(t.segments),
            list(t.waits),
            list(t.pas_work),
            list(t.pas_blocked),
            t.max_fill,
            list(t.max_fill_by_type),
        )
        line.waiting = [set(w) for w in self.waiting]
        line.alarms = list(self.alarms)
        line.fas = []
        for fas in self.fas:
            copied = fas.copy_to(line)
            if copied.seg is not None:
                copied.seg = own(copied.seg)
            line.fas.append(copied)
        line.pas = self.pas.copy_to(line)
        line.downtime = self.downtime.copy_to(line)
        line._results = None
        return line

    # -- the decision seam -------------------------------------------------------------------
    def start(self) -> DecisionRequest | None:
        """Run to the first decision point (FAS start first at time 0, then the PAS decides)."""
        if self._started:
            raise SimulationError("this run has already started; build a new Line for another run")
        self._started = True
        now = self.start_s
        for fas in self.fas:
            if fas.state is FasState.FINISHING:
                fas.schedule(max(now, fas.unit_end), PHASE_FAS)
        pas = self.pas
        if pas.batch is None:
            pas.schedule(now, PHASE_DECIDE)
        elif not pas.down:
            pas.schedule(pas.end_s, PHASE_ENTRY)
        self.check_done(now)
        return self._advance()

    def decide(self, decision: Decision) -> DecisionRequest | None:
        """Apply the answer to the pending request and run to the next decision point."""
        request = self.pending
        if request is None:
            raise SimulationError("no decision is pending")
        if decision.type not in request.valid:
            names = [self.scenario.types[k] for k in request.valid]
            shown = (
                self.scenario.types[decision.type]
                if 0 <= decision.type < len(self.scenario.types)
                else decision.type
            )
            raise InvalidDecision(f"type {shown} is not valid at decision {request.index} (valid: {names})")
        quantity = request.batch_size if decision.quantity is None else decision.quantity
        if not 1 <= quantity <= self.buffer.capacity:
            raise InvalidDecision(f"batch quantity {quantity} must be between 1 and {self.buffer.capacity}")
        self.pending = None
        self.pas.start_batch(request.time_s, decision.type, quantity)
        return self._advance()

    def run(self, decider: Decider) -> Results:
        """Simulate the whole run, asking `decider` at every decision point."""
        request = self.start()
        while request is not None:
            request = self.decide(decider(request))
        return self.results()

    def results(self) -> Results:
        if not self.finished:
            raise SimulationError("the run has not ended yet")
        if self._results is None:
            end = self.end_s
            final = [self.buffer.sync(k, (end, PHASE_DECIDE + 1, 0)) for k in range(len(self.scenario.types))]
            self._record_fill(final)
            self._results = compute_results(
                self.scenario,
                self.trace,
                end,
                self.deadlock,
                [f.consumed for f in self.fas],
                [f.idle_s for f in self.fas],
                final,
            )
        return self._results

    def idle_so_far(self, now: int) -> int:
        """FAS idle time of this run up to `now`, open waits included."""
        return sum(f.idle_s + (now - f.wait_since if f.state is FasState.WAITING else 0) for f in self.fas)

    def _advance(self) -> DecisionRequest | None:
        env = self.engine.env
        while self.pending is None and not self.finished:
            if env.peek() == inf:
                raise SimulationError("the simulation has no events left before the run ended (a model bug)")
            env.step()
        return self.pending

    # -- called by the stations --------------------------------------------------------------
    def refresh_alarm(self, k: int) -> None:
        """Re-predict the first stock-out of type k; move the FAS it concerns."""
        old = self.alarms[k]
        new = self.buffer.stockout(k, self.key)
        if new == old:
            return
        self.alarms[k] = new
        for alarm in (old, new):
            if alarm is not None:
                self.fas[alarm[1]].reschedule()

    def fas_changed(self, *types: int | None) -> None:
        for k in set(types):
            if k is not None:
                self.refresh_alarm(k)
        if self.pas.state is PasState.BLOCKED:
            self.pas.recompute_unblock()
            self.check_deadlock(self.key[0])

    def check_done(self, now: int) -> None:
        if all(f.state is FasState.DONE for f in self.fas):
            self._finish(now)

    def check_deadlock(self, now: int) -> None:
        """Deadlock: the PAS holds a batch that does not fit and no FAS can take anything."""
        pas = self.pas
        if self.finished or pas.state is not PasState.BLOCKED or pas.batch is None:
            return
        if self.buffer.capacity - self.buffer.total(self.key) >= pas.batch.quantity:
            return
        if not any(f.can_take() for f in self.fas) and not all(f.state is FasState.DONE for f in self.fas):
            self.deadlock = True
            self._finish(now)

    def _finish(self, now: int) -> None:
        self.finished = True
        self.end_s = now
        key = (now, PHASE_DECIDE + 1, 0)
        for f in self.fas:
            if f.state is FasState.WAITING:
                f._close_wait(now)
            f._close_run(key)
        pas = self.pas
        if pas.state is PasState.PRODUCING and not pas.down and now > pas.work_since:
            self.trace.pas_work.append((pas.work_since, now))
        elif pas.state is PasState.BLOCKED and not pas.down and now > pas.blocked_since:
            self.trace.pas_blocked.append((pas.blocked_since, now))

    def _record_fill(self, stock: list[int]) -> None:
        """Maximum fill over the states after each instant: stock rises only with an arrival, and
        every arrival is followed by a decision point at its instant, so those and the end suffice."""
        self.trace.record_fill(stock)

    def decision_point(self, now: int) -> None:
        """Step 4: build the request; with no valid type the PAS stops for the rest of the run."""
        sc = self.scenario
        n = len(sc.types)
        stock = self.buffer.sync_all(self.key)
        self._record_fill(stock)
        positions = [f.position(now) for f in self.fas]
        table, first_row = sc.demand_table
        need = table[[row + pos.order for row, pos in zip(first_row, positions, strict=True)]].sum(axis=0)
        need -= stock
        for f, pos in zip(self.fas, positions, strict=True):
            if pos.taken and pos.order < len(f.plan):
                need[f.plan[pos.order][0]] -= pos.taken
        remaining = tuple(need.tolist())
        valid = tuple(k for k in range(n) if remaining[k] > 0)
        if not valid:
            self.pas.state = PasState.STOPPED
            return
        self.pas.state = PasState.DECIDING
        self.pending = DecisionRequest(
            index=self.pas.decisions,
            time_s=now,
            valid=valid,
            stock=tuple(stock),
            remaining=remaining,
            last_type=self.pas.last_type,
            batch_size=sc.batch_size,
            fas=tuple(positions),
            scenario=sc,
        )
        self.pas.decisions += 1


def simulate(scenario: Scenario, decider: Decider) -> tuple[Results, Trace]:
    """Run one week with an in-process policy; return its KPIs and its trace."""
    line = Line(scenario)
    results = line.run(decider)
    return results, line.trace
