"""The agent service: the live mirror of the line plus the policy that dispatches the next PAS batch.

It ingests the line's messages from a `Bus` into a `Mirror`, answers every decision point (the week
start, then each `batch_stored`) through the line's `Outlook`, and publishes dispatches, the
retained twin state, shortage alerts and an error for every message it rejects. Its journal and
metrics points are listeners (`agent.live.listeners`). All of its state lives in this thread; the
journal lets a restart resume where it stopped.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.live.journal import DecisionEntry, JournalError
from agent.live.listeners import Listeners, ServiceListener
from agent.live.planning import LivePlanning
from agent.live.replanner import PlanDecider, Replanner
from bridge.admission import Admission, ClockRules
from bridge.bus import Bus, Received
from bridge.codec import decode, excerpt
from bridge.errors import BadMessage
from bridge.messages import DispatchMsg, PlanMsg, ShadowMsg, StateMsg
from bridge.outbound import alert_message, dispatch_message, error_message, state_message
from bridge.topics import Topics
from twin import Decider, Scenario, WorkCalendar
from twin.events import BatchStarted, BatchStored
from twin.mirror import EventRejected, Mirror
from twin.outlook import Outlook

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
    """Whether the line follows the agent's dispatches or only hears them as recommendations."""

    ACTIVE = "active"  # dispatches on `dispatch/pas`; the line follows them
    SHADOW = "shadow"  # recommends on `shadow/dispatch/pas`; the line keeps its own decisions


@dataclass
class ShadowScore:
    """How far the line agrees with the agent: its decisions, the batches the line started at a
    decision point the agent answered (`compared`) and those of the recommended type (`agreed`)."""

    decisions: int = 0
    compared: int = 0
    agreed: int = 0
    recommended: dict[int, str] = field(default_factory=dict)
    """The type recommended at each decision point answered."""

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def recommend(self, index: int, type_name: str) -> None:
        self.recommended[index] = type_name
        self.decisions += 1

    def compare(self, index: int, started: str) -> bool:
        """Count the batch the line started at decision point `index`; False if it was not answered."""
        if index not in self.recommended:
            return False
        self.compared += 1
        self.agreed += self.recommended[index] == started
        return True

    def message(self) -> ShadowMsg:
        return ShadowMsg(
            decisions=self.decisions, compared=self.compared, agreed=self.agreed, agreement=self.agreement
        )


@dataclass
class Dispatches:
    """What the service decided so far."""

    seq: int = 0
    """`decision_seq` of the last decision (never below the retained last dispatch's)."""
    answered: int = -1
    """The highest decision point answered."""
    own: set[bytes] = field(default_factory=set)
    """Dispatches as published (or journaled): they may come back on the dispatch topic."""
    last: bytes | None = None
    """The last dispatch in active mode: said again at every connect (it may not have left)."""
    foreign: int = 0
    """Dispatches on this line's dispatch topic that another client published."""
    failed: tuple[int, int] | None = None
    """(decision point, events accepted) at the last decision that failed: not tried again before
    another event was applied."""

    def note(self, entry: DecisionEntry, active: bool) -> None:
        if entry.dispatch is not None:
            self.own.add(entry.dispatch)
            if active:
                self.last = entry.dispatch
        self.seq = max(self.seq, entry.decision_seq)
        self.answered = max(self.answered, entry.index)


class GroupCommit:
    """Write, sync, acknowledge: processed messages wait for the sync that makes their journal
    entries durable; one sync for a group (see COMMIT_ENTRIES)."""

    def __init__(self, bus: Bus, listeners: Listeners) -> None:
        self.bus = bus
        self.listeners = listeners
        self.waiting: list[Received] = []
        """Processed, acknowledged after the next sync, in the order they arrived."""
        self.last: Received | None = None
        """The message processed last."""
        self._since = 0.0

    def processed(self, message: Received) -> None:
        """Queue `message`'s acknowledgement; commit when the inbox is momentarily empty or the group
        is full or old."""
        self.last = message
        if not self.waiting:
            self._since = time.monotonic()
        self.waiting.append(message)
        if (
            self.bus.inbox.empty()
            or len(self.waiting) >= COMMIT_ENTRIES
            or time.monotonic() - self._since >= COMMIT_S
        ):
            self.commit()

    def commit(self) -> None:
        """Sync (the journal), then acknowledge every message waiting."""
        self.listeners.sync()
        for message in self.waiting:
            self.bus.ack(message)
        self.waiting.clear()


class AgentService:
    """Mirror + agent for one line and week: ingest, decide, publish."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Decider | None,
        policy_name: str,
        topics: Topics,
        bus: Bus,
        mode: Mode = Mode.ACTIVE,
        plan_known: bool = True,
        clock: ClockRules | None = None,
        listeners: Iterable[ServiceListener] = (),
        replanner: Replanner | None = None,
    ) -> None:
        """Without a `policy` it only mirrors (replays of recorded weeks). `clock`: how far inbound
        timestamps are trusted (default: the receipt time is a trusted clock, 60 s tolerance).
        `listeners` follow it: its journal, its metrics points (`agent.live.listeners`). With a
        `replanner` (`serve --planner`) it dispatches from the plan its worker keeps improving,
        `policy` answering where the plan does not cover the state."""
        self.mirror = Mirror(scenario, plan_known)
        self.admission = Admission(scenario.calendar.start, clock or ClockRules())
        decider = PlanDecider(replanner, self.mirror) if replanner is not None else policy
        self.outlook = Outlook(self.mirror, decider) if decider is not None else None
        self.planning = (
            LivePlanning(replanner, self.mirror, self.outlook) if replanner and self.outlook else None
        )
        self.policy_name = policy_name
        self.topics = topics
        self.bus = bus
        self.mode = mode
        self.listeners = Listeners(*listeners)
        self.listeners.bind(self.mirror, mode.value)
        self.dispatches = Dispatches()
        self.shadow = ShadowScore()
        self.accepted = 0
        self.rejected = 0
        self.restamped = 0
        """Accepted events applied at their receipt time because their `ts` lay ahead of it."""
        self.skipped_entries = 0
        """Journal entries a resume could not apply (reported, then skipped)."""
        self.last_stored_seq: int | None = None
        self._plan_in_force: tuple[object, ...] | None = None  # (week, revision, orders) accepted last
        self._handling_since = 0.0
        self._errors = 0  # messages published on twin/errors
        self._state_due = True
        self._state_at = 0.0
        self._replaying = False
        self._connects_seen = 0
        self.acks = GroupCommit(bus, self.listeners)

    @property
    def calendar(self) -> WorkCalendar:
        return self.mirror.scenario.calendar

    # -- restart -----------------------------------------------------------------------------
    def resume(self, entries: Iterable[Received | DecisionEntry]) -> int:
        """Replay a journal's entries (publishing and journaling nothing); return how many."""
        self._replaying = True
        count = 0
        try:
            for entry in entries:
                count += 1
                rejected = self.rejected
                try:
                    if isinstance(entry, DecisionEntry):
                        self._note_decision(entry)
                        if entry.dispatch is not None:
                            self.listeners.on_dispatched(
                                DispatchMsg.model_validate_json(entry.dispatch), None
                            )
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
        if count and self.planning is not None:
            self.planning.replanner.wanted = "restart"  # mid-week: the plan is made anew from here
        return count

    def _note_decision(self, entry: DecisionEntry) -> None:
        self.dispatches.note(entry, active=self.mode is Mode.ACTIVE)
        self.shadow.recommend(entry.index, entry.type)

    # -- inbound -----------------------------------------------------------------------------
    def handle(self, message: Received) -> None:
        """Process one message; never raises for bad input (it is answered on `twin/errors`). It is
        acknowledged once its journal entry is synced."""
        topic = message.topic
        topics = self.topics
        if topic == topics.dispatch_current:
            self.note_current(message.payload)
        elif topic == topics.dispatch:  # published by another client: a second agent on this line
            self._other_dispatcher(message)
        elif not topics.in_inbound_branch(topic) or (topic == topics.plan and not message.payload):
            pass  # the twin's own topics (a stale subscription of the session) or a retained plan cleared
        else:
            self._handling_since = time.perf_counter()
            self._ingest(message)
            if self.outlook is not None:
                self.decide_if_due()
        self.acks.processed(message)
        self.deliver_points()

    def deliver_points(self, final: bool = False, now: float | None = None) -> None:
        """Let the listeners pass on what is final (`PointsListener.deliver`): only once every entry
        is synced (not while an acknowledgement waits for the next sync), so that what a writer
        delivered, a restart regenerates the same."""
        if not self.acks.waiting:
            self.listeners.deliver(final, now)

    def finish_points(self) -> None:
        """At a stop: the listeners pass on what is left, once it is final."""
        if not self.acks.waiting:
            self.listeners.finish()

    def _other_dispatcher(self, message: Received) -> None:
        """Two agents dispatching to one line contradict each other: say so on every such dispatch.
        (The service's own dispatches come back only through a subscription it did not make.)"""
        dispatches = self.dispatches
        if message.payload in dispatches.own:
            return
        dispatches.foreign += 1
        log.error(
            "another client dispatches on %s (%d so far): two agents serve this line; stop one of them",
            message.topic,
            dispatches.foreign,
        )
        self._notice(message.topic, "a dispatch from another agent on this line", excerpt(message.payload))

    def note_current(self, payload: bytes) -> None:
        """The retained last dispatch: decision_seq never goes below it (a restart without journal)."""
        try:
            seq = int(DispatchMsg.model_validate_json(payload).decision_seq)
        except ValueError:
            return
        self.dispatches.seq = max(self.dispatches.seq, seq)

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
        listeners = self.listeners
        listeners.before_event(event, message.received_at)
        try:
            self.mirror.apply(event)
        except EventRejected as exc:
            self._reject(message, str(exc))
            return
        if not self._replaying:
            listeners.on_accepted(message)
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
        listeners.on_event(event, message.received_at)
        if self.planning is not None and not self._replaying:
            self.planning.observed(event, message.received_at)
        if isinstance(event, BatchStored):
            self.last_stored_seq = inbound.seq
        elif isinstance(event, BatchStarted) and self.shadow.compare(index, event.type):
            listeners.on_shadow(self.mirror.now_s, self.shadow.message())

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
        self.bus.publish(self.topics.errors, error_message(topic, reason, payload, accepted).dump())

    # -- decisions ---------------------------------------------------------------------------
    def decide_if_due(self) -> None:
        """Answer the current decision point once: the PAS is free and has not been dispatched.

        A decision that fails (a policy's bug, a state no model foresaw) never ends the service: it
        is logged, answered on `twin/errors`, and tried again once another event has been applied."""
        mirror = self.mirror
        index = mirror.pas.started
        dispatches = self.dispatches
        if (
            self.outlook is None
            or not mirror.plan_known
            or mirror.pas.batch is not None
            or index <= dispatches.answered
            or dispatches.failed == (index, self.accepted)
        ):
            return
        try:
            self._decide(index, self.outlook)
        except JournalError:
            raise
        except Exception as exc:
            log.exception("decision %d failed", index)
            dispatches.failed = (index, self.accepted)
            self._notice(self.topics.dispatch, f"decision {index} failed: {type(exc).__name__}: {exc}")

    def _decide(self, index: int, outlook: Outlook) -> None:
        """Ask the outlook, journal, publish; then let the outlook catch up (its simulation, if the
        line left it, comes after the dispatch left)."""
        call = outlook.decide()
        if call is None:
            return  # nothing valid is left: the PAS stops for the week
        seq = self.dispatches.seq = self.dispatches.seq + 1
        based_on = self.last_stored_seq if index > 0 else None
        policy = self.policy_name
        if self.planning is not None:
            call, policy = self.planning.read(call)
        dispatch = dispatch_message(self.mirror, call, seq, policy, based_on)
        payload = dispatch.dump()
        entry = DecisionEntry(index, seq, dispatch.type, payload)
        self.listeners.on_decision(entry)  # durable before it leaves: a restart never sends another
        self.acks.commit()  # decision under this decision_seq
        topics = self.topics
        if self.mode is Mode.ACTIVE:
            self.bus.publish(topics.dispatch, payload, qos=1)
            self.bus.publish(topics.dispatch_current, payload, qos=1, retain=True)
        else:
            self.bus.publish(topics.shadow_dispatch, payload, qos=1)
        latency_ms = (time.perf_counter() - self._handling_since) * 1000 if self._handling_since else 0.0
        self._note_decision(entry)
        self.listeners.on_dispatched(dispatch, latency_ms)
        if self.planning is not None:
            self.planning.dispatched_now(call)
            self.pump_plans()
        renewal = outlook.renew()
        if renewal is not None:  # the line had left the last outlook: simulated anew
            for shortage in renewal.alerts:
                alert = alert_message(self.calendar, renewal.now_s, shortage)
                self.bus.publish(topics.alerts, alert.dump())
            self.listeners.on_renewal(dispatch, renewal)
        self.publish_state()

    def pump_plans(self) -> None:
        """Poll the re-planner's worker and send it the wanted job (never waits); publish a plan it
        adopted (retained) and tell the listeners. A failure is logged: the fallback policy goes on."""
        if self.planning is None or self._replaying:
            return
        try:
            plan = self.planning.pump()
            if plan is None:
                return
            message = self.planning.plan_message(plan)
            self.bus.publish(self.topics.pas_plan, message.dump(), qos=1, retain=True)
            self.listeners.on_plan(message)
        except Exception:  # a planner's bug must not stop the line's twin
            log.exception("live planning failed; the fallback policy answers")
            return
        self._state_due = True

    # -- state -------------------------------------------------------------------------------
    def state(self) -> StateMsg:
        expected = self.outlook.expected if self.outlook is not None else None
        shadow = self.shadow.message() if self.mode is Mode.SHADOW else None
        counts = (self.accepted, self.rejected, self.restamped)
        ref = self.planning.ref(self.topics) if self.planning is not None else None
        return state_message(self.mirror, expected, shadow, counts, ref)

    def publish_state(self) -> None:
        self.bus.publish(self.topics.state, self.state().dump(), qos=1, retain=True)
        self._state_due = False
        self._state_at = time.monotonic()

    # -- the loop ----------------------------------------------------------------------------
    def _reconnected(self) -> None:
        """After a (re)connect, say the current dispatch and state again: what was published while
        the broker was away may not have reached it (controllers ignore a decision_seq they had)."""
        self._connects_seen = self.bus.connects
        if self.dispatches.last is not None:
            self.bus.publish(self.topics.dispatch_current, self.dispatches.last, qos=1, retain=True)
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
                self.acks.commit()
                now = time.monotonic()
                try:
                    self.pump_plans()
                    if self.outlook is not None and now - started >= SETTLE_S:
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
                if self.acks.last is not message:  # acknowledged: not redelivered forever
                    self.acks.processed(message)
            self.pump_plans()
            if self._state_due and last_message - self._state_at >= STATE_INTERVAL_S:
                self.publish_state()
        self.acks.commit()
