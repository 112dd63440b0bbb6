"""A virtual line: the twin runs the week in accelerated real time, publishes the contract's events
and builds the batches the dispatch topic commands, so the whole loop runs without a plant.

At each decision point it waits for a dispatch that answers exactly that point (its `based_on` is
the last `batch_stored` seq and its `ts` the decision instant) with a higher `decision_seq` than any
it applied. Only when told to (`fallback_after_s`) does it decide with its own rule instead. Every
wait says what it waits for and ends after a timeout with `EmulatorTimeout`; nothing read while it
waits for the twin is lost (the retained dispatch may answer the first decision).
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Iterator

from pydantic import ValidationError

from agent.errors import AgentError
from bridge.bus import Bus, Received
from bridge.codec import encode, event_topic
from bridge.messages import DispatchMsg, StatusMsg
from bridge.topics import Topics
from twin import Decider, Decision, DecisionRequest, Line, Results, Scenario
from twin.emission import EventTap
from twin.events import BatchStored, LineEvent

log = logging.getLogger(__name__)

WAIT_NOTICE_S = 10.0
"""How often a wait for the twin or a dispatch is reported."""
TWIN_TIMEOUT_S = 60.0
"""Default wait for the twin to come online."""
DISPATCH_TIMEOUT_S = 120.0
"""Default wait for the dispatch that answers a decision point."""


NOTICES = 5
"""How many ignored dispatches are logged one by one."""
PROGRESS_EVERY_S = 10.0
"""Default wall seconds between two progress lines of a paced week (`--progress-every`)."""


class EmulatorTimeout(AgentError):
    """The twin or a dispatch did not come in time."""


class LineEmulator:
    """A virtual line on the bus: `wait_for_twin`, then `run` plays the scenario's week in the twin,
    publishes its events at `speed` and builds the batch each dispatch commands (or its own rule's
    choice); the counters say how each decision was made."""

    def __init__(
        self,
        scenario: Scenario,
        topics: Topics,
        bus: Bus,
        speed: float = 0.0,
        own_policy: Decider | None = None,
        fallback_after_s: float | None = None,
        on_event: Callable[[LineEvent], None] | None = None,
        dispatch_timeout_s: float = DISPATCH_TIMEOUT_S,
        progress: Callable[[str], None] | None = None,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> None:
        """`speed`: working seconds of the week per wall second (0: as fast as possible).
        `own_policy` decides when `fallback_after_s` is None and no dispatch is expected (shadow
        trials), or after waiting that long for a dispatch. Without a fallback, a decision point
        not answered within `dispatch_timeout_s` raises `EmulatorTimeout`. `progress` gets a line
        saying where the week is (local time, share of its working time) every `progress_every_s`
        wall seconds, also while a paced week sleeps until its next event."""
        self.scenario = scenario
        self.topics = topics
        self.bus = bus
        self.speed = speed
        self.own_policy = own_policy
        self.fallback_after_s = fallback_after_s
        self.on_event = on_event
        self.seqs: dict[str, int] = {}
        self.applied_seq = 0
        self.stored_seq: int | None = None
        self.dispatched = 0
        self.fallbacks = 0
        self.own_decisions = 0
        """Decisions of the own rule: every one with `--decide own`, else those by fallback."""
        self.published = 0
        self.dispatch_waits_s: list[float] = []
        """Wall time from the decision point's last event to the dispatch that answered it."""
        self.dispatch_timeout_s = dispatch_timeout_s
        self.stale = 0
        """Dispatches ignored because their decision_seq was not above the last one applied."""
        self.elsewhere = 0
        """Dispatches ignored because they answer another decision point."""
        self._anchor: tuple[float, int] | None = None
        self.progress = progress
        self.progress_every_s = progress_every_s
        self._progress_due = time.monotonic() + progress_every_s
        self._held: deque[Received] = deque()  # read while waiting for the twin, not yet looked at

    def _next(self, timeout_s: float) -> Received | None:
        """The next message (held ones first), acknowledged; None if none came within `timeout_s`."""
        if self._held:
            return self._held.popleft()
        try:
            message = self.bus.inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None
        self.bus.ack(message)
        return message

    def _waiting(self, what: str, timeout_s: float) -> Iterator[Received]:
        """The messages that come within `timeout_s` while waiting for `what`, with a notice
        every WAIT_NOTICE_S ("waiting for <what> (12 s)")."""
        started = time.monotonic()
        notice = started + WAIT_NOTICE_S
        while (now := time.monotonic()) < started + timeout_s:
            if now >= notice:
                log.warning("waiting for %s (%.0f s)", what, now - started)
                notice = now + WAIT_NOTICE_S
            message = self._next(0.05)
            if message is not None:
                yield message

    @property
    def follows_dispatch(self) -> bool:
        return self.own_policy is None or self.fallback_after_s is not None

    def wait_for_twin(self, timeout_s: float = TWIN_TIMEOUT_S) -> None:
        """Wait until the twin reports `online` on its status topic (retained); other messages are
        kept for `run`. Raises `EmulatorTimeout` after `timeout_s`."""
        seen: list[Received] = []
        try:
            for message in self._waiting(f"the twin to come online on {self.topics.status}", timeout_s):
                if message.topic != self.topics.status:
                    seen.append(message)
                    continue
                try:
                    if StatusMsg.model_validate_json(message.payload).status == "online":
                        return
                except ValidationError:
                    continue
        finally:
            self._held.extend(seen)
        raise EmulatorTimeout(
            f"the twin did not come online on {self.topics.status} within {timeout_s:g} s "
            "(is `linetwin serve` running on this root?)"
        )

    def run(self) -> Results:
        line = Line(self.scenario)
        tap = EventTap(line)
        request = line.start()
        while True:
            for event in tap.collect():
                self._publish(event)
            if request is None:
                return line.results()
            request = line.decide(self._decision(request))
            self._anchor = None  # waiting is not line time

    def _publish(self, event: LineEvent) -> None:
        if self.speed > 0:
            self._pace(event.at_s)
        if self.progress is not None:
            self._report(time.monotonic(), event.at_s)
        topic = event_topic(self.topics, event)
        seq = self.seqs.get(topic, 0) + 1
        self.seqs[topic] = seq
        self.bus.publish(topic, encode(event, seq, self.scenario.calendar), qos=1)
        self.published += 1
        if isinstance(event, BatchStored):
            self.stored_seq = seq
        if self.on_event is not None:
            self.on_event(event)

    def _pace(self, at_s: int) -> None:
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, at_s)
            return
        anchor_wall, anchor_s = self._anchor
        due = anchor_wall + (at_s - anchor_s) / self.speed
        while due > now:  # in slices, to say where the week is while it sleeps
            time.sleep(min(due - now, max(0.0, self._progress_due - now)) if self.progress else due - now)
            now = time.monotonic()
            self._report(now, min(at_s, anchor_s + int((now - anchor_wall) * self.speed)))

    def _report(self, now: float, line_s: int) -> None:
        """One progress line when it is due: simulated local time, share of the week's working time."""
        if self.progress is None or now < self._progress_due:
            return
        self._progress_due = now + self.progress_every_s
        cal = self.scenario.calendar
        share = line_s / cal.week_work_s
        where = f"{share:.1%} of the week's working time" if share <= 1 else "overtime after the week"
        at = cal.datetime_of(line_s).strftime("%a %d.%m. %H:%M:%S %z")
        self.progress(
            f"emulate: line time {at}, {where}; {self.published} events, {self.dispatched} dispatches"
        )

    def _decision(self, request: DecisionRequest) -> Decision:
        if not self.follows_dispatch:
            assert self.own_policy is not None
            self.own_decisions += 1
            return self.own_policy(request)
        waited_from = time.monotonic()
        what = f"a dispatch for decision point {request.index} on {self.topics.dispatch}"
        fallback = self.fallback_after_s is not None
        limit_s = self.fallback_after_s if self.fallback_after_s is not None else self.dispatch_timeout_s
        for message in self._waiting(what, limit_s):
            if message.topic not in (self.topics.dispatch, self.topics.dispatch_current):
                continue
            decision = self._read_dispatch(message.payload, request)
            if decision is not None:
                self.dispatched += 1
                self.dispatch_waits_s.append(time.monotonic() - waited_from)
                return decision
        if fallback:
            assert self.own_policy is not None
            self.fallbacks += 1
            self.own_decisions += 1
            log.warning(
                "no dispatch for decision point %d within %.1f s: own rule decides",
                request.index,
                self.fallback_after_s,
            )
            return self.own_policy(request)
        ignored = ""
        if self.stale or self.elsewhere:
            ignored = (
                f"; ignored {self.elsewhere} dispatches for other decision points and {self.stale} "
                f"not above decision_seq {self.applied_seq}: does serve mirror this week (and run "
                "with --clock line for a week emulated faster than real time)?"
            )
        raise EmulatorTimeout(
            f"no dispatch for decision point {request.index} on {self.topics.dispatch} within "
            f"{self.dispatch_timeout_s:g} s (is `linetwin serve` running and deciding?{ignored})"
        )

    def _read_dispatch(self, payload: bytes, request: DecisionRequest) -> Decision | None:
        """The dispatch's decision if it answers this decision point and is valid, else None."""
        try:
            dispatch = DispatchMsg.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("unreadable dispatch ignored: %s", exc.errors()[0]["msg"])
            return None
        if dispatch.decision_seq <= self.applied_seq:
            self.stale += 1
            return None  # redelivered or older
        based_on = self.stored_seq if request.index > 0 else None
        at_s = self.scenario.calendar.work_at(dispatch.ts.timestamp())
        if dispatch.based_on != based_on or at_s != request.time_s:  # e.g. a retained one from before
            self.elsewhere += 1
            if self.elsewhere <= NOTICES:
                log.warning(
                    "dispatch %d answers another decision point (at %s, based on seq %s), not point %d "
                    "(at %s, based on seq %s): ignored",
                    dispatch.decision_seq,
                    dispatch.ts.isoformat(),
                    dispatch.based_on,
                    request.index,
                    self.scenario.calendar.datetime_of(request.time_s).isoformat(),
                    based_on,
                )
            return None
        capacity = self.scenario.line.buffer.capacity
        if not 1 <= dispatch.quantity <= capacity:
            log.error(
                "dispatch %d: quantity %d is not between 1 and the buffer capacity %d; waiting",
                dispatch.decision_seq,
                dispatch.quantity,
                capacity,
            )
            return None
        types = self.scenario.types
        if dispatch.type not in types or types.index(dispatch.type) not in request.valid:
            valid = [types[k] for k in request.valid]
            log.error(
                "dispatch %d: type %s is not valid now (valid: %s); waiting",
                dispatch.decision_seq,
                dispatch.type,
                valid,
            )
            return None
        self.applied_seq = dispatch.decision_seq
        return Decision(types.index(dispatch.type), dispatch.quantity)
