"""The agent service: the live mirror of the line plus the policy that dispatches the next PAS batch.

It reads the line's messages from a `Bus`, applies them to a `Mirror`, answers every decision point
(the week start, then each `batch_stored`) with the configured policy, and publishes dispatches,
the retained twin state, shortage alerts and an error for every message it rejects. All of its
state lives in this thread; the journal lets a restart resume where it stopped.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from agent.live.journal import DecisionEntry, Journal, JournalError
from bridge.admission import Admission, ClockRules
from bridge.bus import Bus, Received
from bridge.codec import decode, excerpt
from bridge.errors import BadMessage
from bridge.messages import (
    AlertMsg,
    BatchMsg,
    DispatchMsg,
    ErrorMsg,
    FasStateMsg,
    ForecastMsg,
    KpiMsg,
    PasStateMsg,
    PlanMsg,
    ShadowMsg,
    StateMsg,
)
from bridge.points import LinePoints
from bridge.topics import Topics
from twin import Decider, Scenario, WorkCalendar
from twin.events import BatchStarted, BatchStored, LineEvent
from twin.line import Engine, Line
from twin.mirror import EventRejected, Mirror
from twin.outlook import Expected, Outlook

log = logging.getLogger(__name__)

STATE_INTERVAL_S = 1.0
"""At most one `twin/state` per second between decisions (each decision publishes one at once)."""
SETTLE_S = 0.3
"""After start, wait this long for retained messages before answering the week-start decision."""
LOGGED_ERRORS = 20
LOGGED_ERRORS_EVERY = 1000
"""The log shows the first answers on `twin/errors`, then one line for every so many (all go to the bus)."""
CLOCK_HINT_AFTER = 10
"""When this many events in a row from the start were stamped ahead of their receipt, say why."""
COMMIT_ENTRIES = 200
"""Group commit: one journal sync (then the acks) at the latest after this many processed messages,"""
COMMIT_S = 0.01
"""or this long after the first of them; and whenever the inbox is momentarily empty."""


class Mode(enum.StrEnum):
    ACTIVE = "active"  # dispatches on `dispatch/pas`; the line follows them
    SHADOW = "shadow"  # recommends on `shadow/dispatch/pas`; the line keeps its own decisions


@dataclass
class ShadowScore:
    decisions: int = 0
    compared: int = 0
    agreed: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


class AgentService:
    """Mirror + agent for one line and week."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Decider | None,
        policy_name: str,
        topics: Topics,
        bus: Bus,
        mode: Mode = Mode.ACTIVE,
        journal: Journal | None = None,
        plan_known: bool = True,
        metrics: Callable[[list[str]], None] | None = None,
        clock: ClockRules | None = None,
        keep_points: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Without a `policy` it only mirrors (replays of recorded weeks). `metrics` receives the
        line's points (InfluxDB line protocol) as they become final; `keep_points` (default
        `metrics`) those a journal replay cannot regenerate, to make them durable. `clock`: how far
        inbound timestamps are trusted (default: the receipt time is a trusted clock, 60 s tolerance)."""
        self.mirror = Mirror(scenario, plan_known)
        self.admission = Admission(scenario.calendar.start, clock or ClockRules())
        self.metrics = metrics
        self.keep_points = keep_points or metrics
        self.points = LinePoints(scenario.line.name, self.mirror) if metrics is not None else None
        self._handling_since = 0.0
        self.policy = policy
        self.policy_name = policy_name
        self.topics = topics
        self.bus = bus
        self.mode = mode
        self.journal = journal
        self.deciding = policy is not None
        self.engine = Engine()
        self.outlook: Outlook | None = None
        self.expected: Expected | None = None
        self._plan_in_force: tuple[object, ...] | None = None  # (week, revision, orders) accepted last
        self.decision_seq = 0
        self.answered = -1  # highest decision point answered
        self.recommended: dict[int, str] = {}  # shadow decisions by decision point
        self.shadow = ShadowScore()
        self.accepted = 0
        self.rejected = 0
        self.restamped = 0
        """Accepted events applied at their receipt time because their `ts` lay ahead of it."""
        self.foreign_dispatches = 0
        """Dispatches on this line's dispatch topic that another client published."""
        self._own_dispatches: set[bytes] = set()  # as published (or journaled): they may come back
        self._errors = 0  # messages published on twin/errors
        self.last_stored_seq: int | None = None
        self._alerted: dict[str, tuple[str, int]] = {}
        self._state_due = True
        self._state_at = 0.0
        self._replaying = False
        self._last_dispatch: bytes | None = None
        self._connects_seen = 0
        self._unacked: list[Received] = []  # processed, acknowledged after the next journal sync
        self._unacked_since = 0.0
        self._last_processed: Received | None = None
        self._failed_decision: tuple[int, int] | None = None  # (decision point, events accepted) at a failure
        self.skipped_entries = 0
        """Journal entries a resume could not apply (reported, then skipped)."""
        self.on_event: Callable[[LineEvent], None] | None = None
        """Called with each event the mirror applied (`replay --out` rebuilds the week's trace)."""

    @property
    def calendar(self) -> WorkCalendar:
        return self.mirror.scenario.calendar

    # -- restart -----------------------------------------------------------------------------
    def resume(self) -> int:
        """Replay the journal (publishing nothing); return the number of entries replayed."""
        if self.journal is None:
            return 0
        self._replaying = True
        count = 0
        try:
            for entry in self.journal.entries():
                count += 1
                rejected = self.rejected
                try:
                    if isinstance(entry, DecisionEntry):
                        self._note_decision(entry)
                        self._decision_points(entry.dispatch, latency_ms=None)
                    else:
                        self._ingest(entry)
                except Exception:  # a journal written by another version, or a bug: never a crash loop
                    log.exception("journal entry %d could not be applied: skipped", count)
                    self.skipped_entries += 1
                if self.rejected > rejected:
                    self.rejected = rejected
                    self.skipped_entries += 1
        finally:
            self._replaying = False
        self.outlook = None  # simulated anew at the next decision
        return count

    def _note_decision(self, entry: DecisionEntry) -> None:
        if entry.dispatch is not None:
            self._own_dispatches.add(entry.dispatch)
        if self.mode is Mode.ACTIVE and entry.dispatch is not None:
            self._last_dispatch = entry.dispatch  # said again at the next connect (it may not have left)
        self.decision_seq = max(self.decision_seq, entry.decision_seq)
        self.answered = max(self.answered, entry.index)
        self.recommended[entry.index] = entry.type
        self.shadow.decisions += 1

    # -- inbound -----------------------------------------------------------------------------
    def handle(self, message: Received) -> None:
        """Process one message; never raises for bad input (it is answered on `twin/errors`). It is
        acknowledged once its journal entry is synced."""
        topic = message.topic
        if topic == self.topics.dispatch_current:
            self.note_current(message.payload)
        elif topic == self.topics.dispatch:  # published by another client: a second agent on this line
            self._other_dispatcher(message)
        elif not self.topics.in_inbound_branch(topic) or (topic == self.topics.plan and not message.payload):
            pass  # the twin's own topics (a stale subscription of the session) or a retained plan cleared
        else:
            self._handling_since = time.perf_counter()
            self._ingest(message)
            if self.deciding:
                self.decide_if_due()
        self._processed(message)
        self.deliver_points()

    def _processed(self, message: Received) -> None:
        """Queue `message`'s acknowledgement; commit when the inbox is momentarily empty or the group
        is full or old (see COMMIT_ENTRIES)."""
        self._last_processed = message
        if not self._unacked:
            self._unacked_since = time.monotonic()
        self._unacked.append(message)
        if (
            self.bus.inbox.empty()
            or len(self._unacked) >= COMMIT_ENTRIES
            or time.monotonic() - self._unacked_since >= COMMIT_S
        ):
            self.commit()

    def commit(self) -> None:
        """Write, sync, acknowledge: make the journal durable, then acknowledge every processed message
        it covers, in the order they arrived."""
        if self.journal is not None:
            self.journal.sync()
        for message in self._unacked:
            self.bus.ack(message)
        self._unacked.clear()

    def deliver_points(self, final: bool = False, now: float | None = None) -> None:
        """Hand the points that are ready to `metrics`. `now` (the wall time while no message waits):
        with the current instant's state if the line has been quiet long enough by then
        (`bridge.points.QUIET_S`); `final`: with that state at once (the end of a replay).

        Only points of synced journal entries go out (none while an acknowledgement waits for the
        next sync): what a writer delivered, a restart regenerates the same."""
        if self.points is None or self.metrics is None or self._unacked:
            return
        if final:
            self.points.close()
        elif now is not None:
            self.points.quiet(now)
        ready = self.points.drain()
        if ready:
            self.metrics(ready)

    def finish_points(self) -> None:
        """At a stop: wait (at most `QUIET_S` and a little) until the current instant's state is due,
        then deliver. Written any earlier, a restart would not write it at the same place."""
        if self.points is not None:
            wait_s = self.points.quiet_in(time.time())
            if wait_s:
                time.sleep(wait_s)
        self.deliver_points(now=time.time())

    def _other_dispatcher(self, message: Received) -> None:
        """Two agents dispatching to one line contradict each other: say so on every such dispatch.
        (The service's own dispatches come back only through a subscription it did not make.)"""
        if message.payload in self._own_dispatches:
            return
        self.foreign_dispatches += 1
        log.error(
            "another client dispatches on %s (%d so far): two agents serve this line; stop one of them",
            message.topic,
            self.foreign_dispatches,
        )
        self._notice(message.topic, "a dispatch from another agent on this line", excerpt(message.payload))

    def note_current(self, payload: bytes) -> None:
        """The retained last dispatch: decision_seq never goes below it (a restart without journal)."""
        try:
            seq = int(DispatchMsg.model_validate_json(payload).decision_seq)
        except ValueError:
            return
        self.decision_seq = max(self.decision_seq, seq)

    def _ingest(self, message: Received) -> None:
        """Apply one inbound message if it is admitted and fits the mirror; otherwise answer it on
        `twin/errors`. Only an applied message is journaled and moves its topic's `seq` and clock."""
        try:
            inbound = decode(self.topics, message.topic, message.payload)
        except BadMessage as exc:
            self._reject(message, str(exc))
            return
        plan = inbound.message if isinstance(inbound.message, PlanMsg) else None
        if plan is not None and message.retain and self._plan_key(plan) == self._plan_in_force:
            return  # the broker's retained copy of the plan in force (at every connect): nothing new
        verdict = self.admission.check(
            message.topic, inbound.seq, inbound.message.ts, message.received_at, line_event=plan is None
        )
        if verdict.at is None:
            self._reject(message, verdict.reason or "")
            return
        event = inbound.event(self.calendar, verdict.at)
        index = self.mirror.pas.started
        if self.points is not None:
            self.points.before(event.at_s, message.received_at)
        try:
            self.mirror.apply(event)
        except EventRejected as exc:
            self._reject(message, str(exc))
            return
        if self.on_event is not None:
            self.on_event(event)
        if self.journal is not None and not self._replaying:
            self.journal.message(message)
        self.restamped += verdict.restamped
        if verdict.reason is not None:  # applied, with a notice (at its receipt time, a new seq count)
            self._error(message, verdict.reason, accepted=True)
        gap = self.admission.accept(message.topic, inbound.seq, verdict.at)
        if gap is not None:
            self._error(message, gap, accepted=True)
        if plan is not None:
            self._plan_in_force = self._plan_key(plan)
        self.accepted += 1
        self._state_due = True
        if self.points is not None:
            self.points.after_event(message.received_at)
        if isinstance(event, BatchStored):
            self.last_stored_seq = inbound.seq
        elif isinstance(event, BatchStarted) and index in self.recommended:
            self.shadow.compared += 1
            self.shadow.agreed += self.recommended[index] == event.type
            if self.points is not None:
                score = self.shadow
                self.points.shadow(self.mirror.now_s, score.agreement, score.compared, score.agreed)

    @staticmethod
    def _plan_key(plan: PlanMsg) -> tuple[object, ...]:
        return (plan.week_start, plan.revision, plan.orders)

    def _reject(self, message: Received, reason: str) -> None:
        self.rejected += 1
        self._state_due = True
        self._error(message, reason)

    def _error(self, message: Received, reason: str, accepted: bool = False) -> None:
        if self._replaying:
            return
        self._errors += 1
        if self._errors <= LOGGED_ERRORS:
            log.warning("%s: %s", message.topic, reason)
        elif self._errors % LOGGED_ERRORS_EVERY == 0:
            log.warning("%d messages answered on %s so far (the log shows every %dth)",
                        self._errors, self.topics.errors, LOGGED_ERRORS_EVERY)  # fmt: skip
        if self.restamped == CLOCK_HINT_AFTER == self.accepted + 1:
            log.warning(
                "every event so far was stamped ahead of its receipt: if the line runs faster than "
                "real time (an emulated or replayed week), run serve with --clock line"
            )
        self._notice(message.topic, reason, excerpt(message.payload), accepted)

    def _notice(self, topic: str, reason: str, payload: str = "", accepted: bool = False) -> None:
        """Publish one message on `twin/errors` about `topic`."""
        error = ErrorMsg(
            ts=dt.datetime.now(dt.UTC), topic=topic, reason=reason, payload=payload, accepted=accepted
        )
        self.bus.publish(self.topics.errors, error.dump())

    # -- decisions ---------------------------------------------------------------------------
    def decide_if_due(self) -> None:
        """Answer the current decision point once: the PAS is free and has not been dispatched.

        A decision that fails (a policy's bug, a state no model foresaw) never ends the service: it
        is logged, answered on `twin/errors`, and tried again once another event has been applied."""
        mirror = self.mirror
        index = mirror.pas.started
        if (
            self.policy is None
            or not mirror.plan_known
            or mirror.pas.batch is not None
            or index <= self.answered
            or self._failed_decision == (index, self.accepted)
        ):
            return
        try:
            self._decide(index, self.policy)
        except JournalError:
            raise
        except Exception as exc:
            log.exception("decision %d failed", index)
            self._failed_decision = (index, self.accepted)
            self._notice(self.topics.dispatch, f"decision {index} failed: {type(exc).__name__}: {exc}")

    def _decide(self, index: int, policy: Decider) -> None:
        mirror = self.mirror
        scenario = mirror.scenario
        snapshot = mirror.snapshot()
        request = Line(scenario, self.engine, snapshot).start()
        if request is None:
            return  # nothing valid is left: the PAS stops for the week
        decision = policy(request)
        expected = self.outlook.follow(scenario, request, decision) if self.outlook else None
        self.decision_seq += 1
        type_name = scenario.types[decision.type]
        dispatch = DispatchMsg(
            ts=self._line_time(request.time_s),
            decision_seq=self.decision_seq,
            decision_id=str(uuid.uuid4()),
            type=type_name,
            quantity=decision.quantity or request.batch_size,
            policy=self.policy_name,
            based_on=self.last_stored_seq if index > 0 else None,
            forecast=self._forecast(expected),
        )
        payload = dispatch.dump()
        entry = DecisionEntry(index, self.decision_seq, type_name, payload)
        if self.journal is not None:  # durable before it leaves: a restart never sends another decision
            self.journal.decision(entry)  # under this decision_seq
            self.commit()
        if self.mode is Mode.ACTIVE:
            self.bus.publish(self.topics.dispatch, payload, qos=1)
            self.bus.publish(self.topics.dispatch_current, payload, qos=1, retain=True)
        else:
            self.bus.publish(self.topics.shadow_dispatch, payload, qos=1)
        latency_ms = (time.perf_counter() - self._handling_since) * 1000 if self._handling_since else 0.0
        self._note_decision(entry)
        self._decision_points(payload, latency_ms)
        if expected is None:  # the line left the last outlook: simulate the rest of the week anew
            mark = self.points.mark() if self.points is not None else 0
            self.outlook = Outlook.simulate(scenario, snapshot, policy, self.engine)
            self.outlook.follow(scenario, request, decision)
            expected = self.outlook.expected_from(0) if self.outlook.steps else None
            self._alert()
            points, keep = self.points, self.keep_points
            if points is not None and keep is not None:  # not in the journal's entry: kept apart
                if expected is not None:
                    points.forecast(request.time_s, self.policy_name, expected.idle_s, expected.setup_effort)
                keep(points.take(mark))
        self.expected = expected
        self.publish_state()

    def _decision_points(self, dispatch: bytes | None, latency_ms: float | None) -> None:
        """A decision's point, and its forecast if the dispatch carries one: from the dispatch as
        published, so a journal replay regenerates them (without the latency, which it does not keep)."""
        if self.points is None or dispatch is None:
            return
        message = DispatchMsg.model_validate_json(dispatch)
        at_s = self.calendar.work_at_datetime(message.ts)
        self.points.decision(at_s, message.type, message.policy, self.mode.value, message.decision_seq,
                             message.quantity, latency_ms)  # fmt: skip
        if message.forecast is not None:
            forecast = message.forecast
            self.points.forecast(at_s, message.policy, forecast.idle_s, forecast.setup_effort)

    def _forecast(self, expected: Expected | None) -> ForecastMsg | None:
        if expected is None:
            return None
        return ForecastMsg(
            idle_s=expected.idle_s,
            setup_effort=expected.setup_effort,
            setups=expected.setups,
            deadlock=expected.deadlock,
            end_ts=self._line_time(expected.end_s),
        )

    def _line_time(self, work_s: int) -> dt.datetime:
        return self.calendar.datetime_of(work_s)

    def _alert(self) -> None:
        """Publish each FAS's next predicted shortage when it changed."""
        if self.outlook is None:
            return
        first: dict[str, tuple[str, int]] = {}
        for s in self.outlook.shortages_after(self.mirror.now_s):
            first.setdefault(s.station, (s.type, s.at_s))
        for station, (type_name, at_s) in first.items():
            if self._alerted.get(station) != (type_name, at_s):
                alert = AlertMsg(
                    ts=self._line_time(self.mirror.now_s),
                    type=type_name,
                    station=station,
                    at=self._line_time(at_s),
                )
                self.bus.publish(self.topics.alerts, alert.dump())
                if self.points is not None:
                    self.points.alert(self.mirror.now_s, station, type_name, at_s)
        self._alerted = first

    # -- state -------------------------------------------------------------------------------
    def state(self) -> StateMsg:
        m = self.mirror
        sc = m.scenario
        k = m.kpis()
        fill = sum(m.stock)
        capacity = sc.line.buffer.capacity
        fas = {}
        for f, station in enumerate(sc.stations):
            order, taken = m.position(f)
            fas[station] = FasStateMsg(position=order + 1, taken=taken, state=m.fas_state(f))
        batch = m.pas.batch
        return StateMsg(
            ts=self._line_time(m.now_s),
            stock=dict(zip(sc.types, m.stock, strict=True)),
            fill=fill,
            capacity=capacity,
            fill_ratio=fill / capacity,
            pas=PasStateMsg(
                status=m.pas_state(),
                batch=BatchMsg(type=sc.types[batch.type], quantity=batch.quantity) if batch else None,
                last_type=sc.types[m.pas.last_type] if m.pas.last_type is not None else None,
            ),
            fas=fas,
            kpis=KpiMsg.model_validate(k, from_attributes=True),
            forecast=self._forecast(self.expected),
            shadow=ShadowMsg(
                decisions=self.shadow.decisions,
                compared=self.shadow.compared,
                agreed=self.shadow.agreed,
                agreement=self.shadow.agreement,
            )
            if self.mode is Mode.SHADOW
            else None,
            plan_revision=m.revision,
            events_accepted=self.accepted,
            events_rejected=self.rejected,
            events_restamped=self.restamped,
        )

    def publish_state(self) -> None:
        self.bus.publish(self.topics.state, self.state().dump(), qos=1, retain=True)
        self._state_due = False
        self._state_at = time.monotonic()

    # -- the loop ----------------------------------------------------------------------------
    def _reconnected(self) -> None:
        """After a (re)connect, say the current dispatch and state again: what was published while
        the broker was away may not have reached it (controllers ignore a decision_seq they had)."""
        self._connects_seen = self.bus.connects
        if self._last_dispatch is not None:
            self.bus.publish(self.topics.dispatch_current, self._last_dispatch, qos=1, retain=True)
        self._state_due = True

    def run(self, stop: threading.Event, idle_timeout_s: float | None = None) -> None:
        """Process the bus's inbox until `stop` is set (or nothing arrived for `idle_timeout_s`, or
        another client took over the bus's session)."""
        started = time.monotonic()
        last_message = started
        while not stop.is_set() and not self.bus.taken_over.is_set():
            if self.bus.connects != self._connects_seen:
                self._reconnected()
            try:
                message = self.bus.inbox.get(timeout=0.05)
            except queue.Empty:
                self.commit()
                now = time.monotonic()
                try:
                    if self.deciding and now - started >= SETTLE_S:
                        self.decide_if_due()
                    if self._state_due:
                        self.publish_state()
                    self.deliver_points(now=time.time())  # the current instant once quiet long enough
                except JournalError:
                    raise  # acknowledging nothing more, or without durability, is no way to go on
                except Exception:  # a bug must not stop the line's twin: report it and go on
                    log.exception("unexpected error while the line is quiet")
                    self._state_due = False
                if idle_timeout_s is not None and now - last_message > idle_timeout_s:
                    return
                continue
            last_message = time.monotonic()
            try:
                self.handle(message)
            except JournalError:
                raise
            except Exception:  # a bug must not stop the line's twin: report it and go on
                log.exception("unexpected error on %s", message.topic)
                self._reject(message, "internal error (see the service log)")
                if self._last_processed is not message:  # acknowledged: not redelivered forever
                    self._processed(message)
            if self._state_due and last_message - self._state_at >= STATE_INTERVAL_S:
                self.publish_state()
        self.commit()
