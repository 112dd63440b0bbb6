"""Admission of inbound messages: which may change the mirror, judged by their `seq` and `ts`.

Rules, per publisher topic (one topic = one station's or the plan's publisher):
- `seq` must be higher than the last *accepted* one (equal: a duplicate; lower: out of order); a
  jump is accepted and reported as a gap.
- A `seq` of 0 or 1 well below the last one, on a message stamped no earlier than the last one, is a
  sender that restarted and counts anew: accepted and reported.
- `ts` must not lie before the week starts (line events; a plan may be published before its week),
  nor more than `ClockRules.after_week_s` after the week ends, nor more than `ClockRules.tolerance_s`
  before the time the topic's previous message was applied at (a station's events happen in order;
  within the tolerance, the message is applied at that time: clock jitter, or the event that follows
  one applied at its receipt time).
- When the receipt time is a trusted clock (`ClockRules.trust_receipt`), a `ts` more than
  `ClockRules.tolerance_s` after the message's receipt comes from a clock running ahead (a device
  not yet synchronised after a boot): the event happened, but not then. It is applied at its receipt
  time and reported, so it neither moves the mirror's clock ahead nor loses the event (dropping a
  unit's start would put the mirror out of step with the station for the rest of the week).

Bookkeeping happens only for accepted messages: `check` judges a message and changes nothing;
`accept` records one the mirror has applied. So a rejected message, whatever its `seq` or `ts`,
never moves a topic's sequence or the mirror's clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

WEEK_S = 7 * 86_400
FIRST_SEQ = 1
"""A `seq` this low, well below the last one (not the copy of the one before it) and stamped no earlier
than the last one, comes from a sender that restarted counting."""


@dataclass(frozen=True, slots=True)
class ClockRules:
    """How far inbound timestamps are trusted."""

    trust_receipt: bool = True
    """The receipt time is a trusted clock (a plant whose devices run in real time). False for an
    emulated or replayed line that runs faster than real time: its timestamps are the only clock."""
    tolerance_s: float = 60.0
    """How far a timestamp may lie after its receipt time (clock skew and latency)."""
    after_week_s: float = WEEK_S
    """How far after the week's end a timestamp may lie (overtime; one week)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one message: apply it at `at` (None: reject it); `reason` says why it is
    rejected, or what was corrected when it is applied at another time than its `ts`."""

    at: dt.datetime | None
    reason: str | None = None
    restamped: bool = False
    """Applied at its receipt time: its `ts` lay too far ahead of it."""


@dataclass(slots=True)
class _TopicState:
    seq: int | None = None
    ts: dt.datetime | None = None


@dataclass(slots=True)
class Admission:
    """The sequence and clock bookkeeping of one mirrored week."""

    week_start: dt.datetime
    """The week's first instant (aware)."""
    rules: ClockRules = field(default_factory=ClockRules)
    _topics: dict[str, _TopicState] = field(default_factory=dict)

    @property
    def week_end(self) -> dt.datetime:
        return self.week_start + dt.timedelta(seconds=WEEK_S)

    def check(
        self, topic: str, seq: int | None, ts: dt.datetime, received_at: float, line_event: bool = True
    ) -> Verdict:
        """Judge one message. `received_at`: epoch seconds of its arrival; `line_event`: False for a
        plan (which may precede its week)."""
        last = self._topics.get(topic) or _TopicState()
        restarted = False
        if seq is not None and last.seq is not None and seq <= last.seq:
            restarted = seq <= FIRST_SEQ < last.seq - 1 and last.ts is not None and ts >= last.ts
            if not restarted:  # a copy (QoS 1 redelivers), or late
                kind = "duplicate" if seq == last.seq else "out-of-order"
                return Verdict(None, f"{kind} seq {seq} (last accepted {last.seq})")
        out_of_bounds = self._out_of_bounds(ts, line_event)
        if out_of_bounds is not None:  # a date no clock error excuses: the message is not to be trusted
            return Verdict(None, out_of_bounds)
        at, reason = ts, None
        ahead_s = ts.timestamp() - received_at
        if self.rules.trust_receipt and ahead_s > self.rules.tolerance_s:
            at = dt.datetime.fromtimestamp(received_at, ts.tzinfo)
            reason = (
                f"ts {ts.isoformat()} lies {ahead_s:.0f} s after the message was received (tolerance "
                f"{self.rules.tolerance_s:g} s; is the sender's clock ahead?): applied at its receipt "
                f"time {at.isoformat()}"
            )
            if self._out_of_bounds(at, line_event) is not None:  # an emulated week ahead of time?
                return Verdict(
                    None,
                    f"received at {at.isoformat()}, before the week: ts {ts.isoformat()} lies "
                    f"{ahead_s:.0f} s ahead of the receipt (a week emulated faster than real time "
                    "needs --clock line)",
                )
        if last.ts is not None and at < last.ts:
            behind_s = (last.ts - at).total_seconds()
            if behind_s > self.rules.tolerance_s:
                previous = last.ts.isoformat()
                return Verdict(
                    None,
                    f"ts {at.isoformat()} lies {behind_s:.0f} s before the previous event on this topic "
                    f"({previous}; tolerance {self.rules.tolerance_s:g} s)",
                )
            at = last.ts  # jitter, or the event after one applied at its receipt time: not back in time
        restamped = reason is not None
        if restarted:
            reason = f"seq restarted at {seq} after {last.seq} (the sender restarted?): accepted"
        return Verdict(at, reason, restamped)

    def _out_of_bounds(self, ts: dt.datetime, line_event: bool) -> str | None:
        if line_event and ts < self.week_start:
            return f"ts {ts.isoformat()} lies before the week (it starts {self.week_start.isoformat()})"
        latest = self.week_end + dt.timedelta(seconds=self.rules.after_week_s)
        if ts > latest:
            return f"ts {ts.isoformat()} lies after {latest.isoformat()}, a week after the week's end"
        return None

    def accept(self, topic: str, seq: int | None, ts: dt.datetime) -> str | None:
        """Record a message applied at `ts`; return a notice if `seq` skipped numbers."""
        state = self._topics.setdefault(topic, _TopicState())
        notice = None
        if seq is not None:
            if state.seq is not None and seq > state.seq + 1:
                notice = f"gap: seq {state.seq + 1}..{seq - 1} missing"
            state.seq = seq
        state.ts = ts if state.ts is None else max(state.ts, ts)
        return notice

    def last_seq(self, topic: str) -> int | None:
        state = self._topics.get(topic)
        return state.seq if state is not None else None


__all__ = ["Admission", "ClockRules", "Verdict"]
