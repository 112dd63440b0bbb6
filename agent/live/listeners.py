"""Who follows the agent service: the journal, the metrics points, a replay's tape. Each is a
`ServiceListener`; the service calls one `Listeners`, which forwards every hook to each in turn
(the idea of stable-baselines3's `BaseCallback` and `CallbackList`).

A live decision reaches them in this order: `on_decision` (the entry to make durable), `sync` (the
service publishes the dispatch only after it), then `on_dispatched` and, when the outlook was
simulated anew, `on_renewal`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.live.journal import DecisionEntry, Journal
from bridge.bus import Received
from bridge.messages import DispatchMsg, PasPlanMsg, ShadowMsg
from bridge.points import LinePoints
from twin.events import LineEvent
from twin.mirror import Mirror
from twin.outlook import Renewal
from twin.tape import Tape

Points = Callable[[list[str]], None]
"""Takes points in InfluxDB line protocol (a writer's `write` or `keep`)."""


class ServiceListener:
    """The service's hooks; each does nothing unless a listener overrides it."""

    def bind(self, mirror: Mirror, mode: str) -> None:
        """Called once by the service: its mirror (to read, never to change) and its mode."""

    def before_event(self, event: LineEvent, received_at: float | None) -> None:
        """The mirror is about to apply `event` (received at `received_at`, epoch seconds)."""

    def on_event(self, event: LineEvent, received_at: float | None) -> None:
        """The mirror applied `event` (live, or replayed from the journal)."""

    def on_accepted(self, message: Received) -> None:
        """An inbound message the mirror applied live (not one replayed from the journal)."""

    def on_shadow(self, at_s: int, shadow: ShadowMsg) -> None:
        """The line started a batch at a decision point the agent answered: the new agreement."""

    def on_decision(self, entry: DecisionEntry) -> None:
        """A decision about to be published: durable at the next `sync`, which comes first."""

    def on_dispatched(self, dispatch: DispatchMsg, latency_ms: float | None) -> None:
        """A decision published (or replayed from the journal: `latency_ms` None)."""

    def on_renewal(self, dispatch: DispatchMsg, renewal: Renewal) -> None:
        """The outlook was simulated anew after `dispatch` (after its `on_dispatched`)."""

    def on_plan(self, plan: PasPlanMsg) -> None:
        """The service adopted a new timed PAS plan (`serve --planner`), just published."""

    def sync(self) -> None:
        """Make durable what was handed over; the service acknowledges the messages after it."""

    def deliver(self, final: bool = False, now: float | None = None) -> None:
        """Every handed-over entry is synced: pass on what is final (see `PointsListener`)."""

    def finish(self) -> None:
        """The service stops: pass on what is left, once it is final."""


class Listeners(ServiceListener):
    """Forwards every hook to each listener, in the order they were added."""

    def __init__(self, *listeners: ServiceListener) -> None:
        self.listeners = list(listeners)

    def bind(self, mirror: Mirror, mode: str) -> None:
        for listener in self.listeners:
            listener.bind(mirror, mode)

    def before_event(self, event: LineEvent, received_at: float | None) -> None:
        for listener in self.listeners:
            listener.before_event(event, received_at)

    def on_event(self, event: LineEvent, received_at: float | None) -> None:
        for listener in self.listeners:
            listener.on_event(event, received_at)

    def on_accepted(self, message: Received) -> None:
        for listener in self.listeners:
            listener.on_accepted(message)

    def on_shadow(self, at_s: int, shadow: ShadowMsg) -> None:
        for listener in self.listeners:
            listener.on_shadow(at_s, shadow)

    def on_decision(self, entry: DecisionEntry) -> None:
        for listener in self.listeners:
            listener.on_decision(entry)

    def on_dispatched(self, dispatch: DispatchMsg, latency_ms: float | None) -> None:
        for listener in self.listeners:
            listener.on_dispatched(dispatch, latency_ms)

    def on_renewal(self, dispatch: DispatchMsg, renewal: Renewal) -> None:
        for listener in self.listeners:
            listener.on_renewal(dispatch, renewal)

    def on_plan(self, plan: PasPlanMsg) -> None:
        for listener in self.listeners:
            listener.on_plan(plan)

    def sync(self) -> None:
        for listener in self.listeners:
            listener.sync()

    def deliver(self, final: bool = False, now: float | None = None) -> None:
        for listener in self.listeners:
            listener.deliver(final, now)

    def finish(self) -> None:
        for listener in self.listeners:
            listener.finish()


class JournalListener(ServiceListener):
    """Writes the journal ahead: every message applied live and every decision before it leaves."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def on_accepted(self, message: Received) -> None:
        self.journal.message(message)

    def on_decision(self, entry: DecisionEntry) -> None:
        self.journal.decision(entry)

    def sync(self) -> None:
        self.journal.sync()


class PointsListener(ServiceListener):
    """The line's points (`bridge.points.LinePoints`) for a writer: `write` takes them as they become
    final; `keep` (default `write`) those a journal replay cannot regenerate (the forecast and
    alerts of an outlook simulated anew, an adopted plan's), to make them durable."""

    points: LinePoints
    mode: str
    """Both set by `bind`."""

    def __init__(
        self, write: Points, keep: Points | None = None, name: str | None = None, arm: bool = False
    ) -> None:
        """`name`: the points' `line` tag (default: the line file's name; a plant names each line);
        `arm`: the buffer and KPI points carry the service's mode as their `mode` tag (`serve`: the
        line's arm; a replay or a simulation has none)."""
        self.write = write
        self.keep = keep or write
        self.name = name
        self.arm = arm

    def bind(self, mirror: Mirror, mode: str) -> None:
        self.points = LinePoints(self.name or mirror.scenario.line.name, mirror, mode if self.arm else "")
        self._plan: PasPlanMsg | None = None
        self.mode = mode

    def before_event(self, event: LineEvent, received_at: float | None) -> None:
        self.points.before(event.at_s, received_at)

    def on_event(self, event: LineEvent, received_at: float | None) -> None:
        self.points.after_event(received_at)

    def on_shadow(self, at_s: int, shadow: ShadowMsg) -> None:
        self.points.shadow(at_s, shadow.agreement, shadow.compared, shadow.agreed)

    def on_dispatched(self, dispatch: DispatchMsg, latency_ms: float | None) -> None:
        """A decision's point, and its forecast if the dispatch carries one: from the dispatch as
        published, so a journal replay regenerates them (without the latency, which it does not keep)."""
        points = self.points
        at_s = points.mirror.scenario.calendar.work_at_datetime(dispatch.ts)
        points.decision(at_s, dispatch.type, dispatch.policy, self.mode, dispatch.decision_seq,
                        dispatch.quantity, latency_ms)  # fmt: skip
        if dispatch.forecast is not None:
            forecast = dispatch.forecast
            points.forecast(at_s, dispatch.policy, forecast.idle_s, forecast.setup_effort)
        plan = self._plan
        if plan is not None and latency_ms is not None and dispatch.position is not None:
            mark = points.mark()  # the next batches move on (live only: the plan is not journaled)
            points.plan_batches(plan, at_s, dispatch.position)
            self.keep(points.take(mark))

    def on_renewal(self, dispatch: DispatchMsg, renewal: Renewal) -> None:
        points = self.points
        mark = points.mark()
        for alert in renewal.alerts:
            points.alert(renewal.now_s, alert.station, alert.type, alert.at_s)
        if renewal.expected is not None:
            expected = renewal.expected
            points.forecast(renewal.at_s, dispatch.policy, expected.idle_s, expected.setup_effort)
        self.keep(points.take(mark))

    def on_plan(self, plan: PasPlanMsg) -> None:
        """The adopted plan's points (`LinePoints.plan`), kept: no journal replay regenerates them."""
        self._plan = plan
        points = self.points
        mark = points.mark()
        points.plan(plan)
        self.keep(points.take(mark))

    def deliver(self, final: bool = False, now: float | None = None) -> None:
        """With `now` (the wall time while no message waits): with the current instant's state if the
        line has been quiet long enough by then (`bridge.points.QUIET_S`); `final`: with that state
        at once (the end of a replay)."""
        if final:
            self.points.close()
        elif now is not None:
            self.points.quiet(now)
        ready = self.points.drain()
        if ready:
            self.write(ready)

    def finish(self) -> None:
        """Wait (at most `QUIET_S` and a little) until the current instant's state is due, then
        deliver. Written any earlier, a restart would not write it at the same place."""
        wait_s = self.points.quiet_in(time.time())
        if wait_s:
            time.sleep(wait_s)
        self.deliver(now=time.time())


class TapeListener(ServiceListener):
    """Records each applied event on a `Tape` of the mirror (`replay --out` rebuilds the week's
    trace from it)."""

    tape: Tape
    """Set by `bind`."""

    def bind(self, mirror: Mirror, mode: str) -> None:
        self.tape = Tape(mirror)

    def on_event(self, event: LineEvent, received_at: float | None) -> None:
        self.tape.record(event)
