"""Bus messages <-> the twin's events: JSON and schema checks at the edge, timestamps <-> working
seconds through the week's calendar."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from bridge.errors import BadMessage
from bridge.messages import (
    BatchStartedMsg,
    BatchStoredMsg,
    DownMsg,
    Event,
    FasEventMsg,
    OrderMsg,
    PasEventMsg,
    PlanMsg,
    StockMsg,
    UnitFinishedMsg,
    UnitStartedMsg,
    UpMsg,
)
from bridge.topics import Topics
from twin import WorkCalendar
from twin.config import PAS_STATION
from twin.events import (
    BatchStarted,
    BatchStored,
    LineEvent,
    PlannedOrder,
    PlanRevised,
    StationDown,
    StationUp,
    StockCounted,
    UnitFinished,
    UnitStarted,
)
from twin.names import NAME_RULE, name_problem

MAX_PAYLOAD_BYTES = 256 * 1024
"""Larger inbound payloads are rejected unread."""

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "pas": TypeAdapter(PasEventMsg),
    "fas": TypeAdapter(FasEventMsg),
    "buffer": TypeAdapter(StockMsg),
    "plan": TypeAdapter(PlanMsg),
}


@dataclass(frozen=True, slots=True)
class Inbound:
    """A readable inbound message: its topic, the station it speaks for (None: the PAS, the buffer
    or the plan), `seq` (None for a plan without one) and the validated payload."""

    topic: str
    station: str | None
    message: Event | PlanMsg

    @property
    def seq(self) -> int | None:
        return self.message.seq

    @property
    def is_plan(self) -> bool:
        return isinstance(self.message, PlanMsg)

    def event(self, calendar: WorkCalendar, at: dt.datetime | None = None) -> LineEvent:
        """The twin's event, at the working second of `at` (default its `ts`; admit it first: a
        far-off time costs the calendar time)."""
        moment = self.message.ts if at is None else at
        return _to_event(self.message, calendar.work_at(moment.timestamp()), self.station)


def _reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    shown = json.dumps(err.get("input"), default=str)[:80]
    return f"{where}: {err['msg']} (got {shown})"


def excerpt(payload: bytes, limit: int = 200) -> str:
    text = payload[:limit].decode("utf-8", errors="replace")
    return text + ("…" if len(payload) > limit else "")


def decode(topics: Topics, topic: str, payload: bytes) -> Inbound:
    """Read one inbound message with strict types (no string or float for an integer, no boolean
    for a number); raise `BadMessage` naming what is wrong."""
    where = topics.parse_inbound(topic)
    if where is None:
        raise BadMessage(f"not an inbound topic of {topics.root} (those are: {topics.inbound_names})")
    if where.station is not None:
        _check_station(where.station)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadMessage(f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")
    try:
        data: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage(f"not UTF-8 JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, nesting too deep
        raise BadMessage(f"JSON beyond what is read: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise BadMessage(f"the payload must be a JSON object, got {type(data).__name__}")
    try:
        message = _ADAPTERS[where.kind].validate_json(payload)
    except ValidationError as exc:
        raise BadMessage(_reason(exc)) from None
    return Inbound(topic, where.station, message)


STATION_EXCERPT = 80
"""A bad station level is named by at most this many characters in the answer."""


def _check_station(station: str) -> None:
    """The station level of a `fas/<station>/events` topic names a FAS: never the PAS (which
    reports on `pas/events`), never what no line can have (`twin.names`)."""
    if station == PAS_STATION:
        raise BadMessage(f"station {station!r} is the pre-assembly station: it reports on pas/events")
    problem = name_problem(station)
    if problem is not None:  # a long level is shown in part: the answer must fit a broker's packets
        shown = repr(station) if len(station) <= STATION_EXCERPT else f"{station[:STATION_EXCERPT]!r}…"
        raise BadMessage(f"station {shown} in the topic is not a station id: {problem}; {NAME_RULE}")


def _to_event(message: Event | PlanMsg, at: int, station: str | None) -> LineEvent:
    who = station or PAS_STATION
    match message:
        case BatchStartedMsg():
            return BatchStarted(at, message.type, message.quantity)
        case BatchStoredMsg():
            return BatchStored(at, message.type, message.quantity)
        case UnitStartedMsg():
            return UnitStarted(at, who, message.type)
        case UnitFinishedMsg():
            return UnitFinished(at, who, message.type)
        case DownMsg():
            return StationDown(at, who, message.reason)
        case UpMsg():
            return StationUp(at, who)
        case StockMsg():
            return StockCounted(at, dict(message.stock))
        case PlanMsg():
            orders = tuple(PlannedOrder(o.station, o.position, o.type, o.quantity) for o in message.orders)
            return PlanRevised(at, message.week_start.isoformat(), message.revision, orders)
    raise BadMessage(f"no event for {type(message).__name__}")  # pragma: no cover


def event_topic(topics: Topics, event: LineEvent) -> str:
    """The topic that reports `event`."""
    match event:
        case BatchStarted() | BatchStored():
            return topics.pas_events
        case UnitStarted() | UnitFinished():
            return topics.fas_events(event.station)
        case StationDown() | StationUp():
            return topics.pas_events if event.station == PAS_STATION else topics.fas_events(event.station)
        case StockCounted():
            return topics.buffer_events
        case PlanRevised():
            return topics.plan


def _body(event: LineEvent) -> dict[str, Any]:
    match event:
        case BatchStarted(type=k, quantity=q):
            return {"event": "batch_started", "type": k, "quantity": q}
        case BatchStored(type=k, quantity=q):
            return {"event": "batch_stored", "type": k, "quantity": q}
        case UnitStarted(type=k):
            return {"event": "unit_started", "type": k}
        case UnitFinished(type=k):
            return {"event": "unit_finished", "type": k}
        case StationDown(reason=r):
            return {"event": "down", "reason": r}
        case StationUp():
            return {"event": "up"}
        case StockCounted(stock=stock):
            return {"event": "stock", "stock": stock}
        case PlanRevised():
            return {
                "event": "plan",
                "week_start": event.week_start,
                "revision": event.revision,
                "orders": [
                    OrderMsg.model_validate(o, from_attributes=True).model_dump() for o in event.orders
                ],
            }


def encode(event: LineEvent, seq: int, calendar: WorkCalendar) -> bytes:
    """The payload that reports `event` (as the line emulator publishes it)."""
    payload = {"v": 1, "ts": calendar.datetime_of(event.at_s).isoformat(), "seq": seq, **_body(event)}
    return json.dumps(payload, separators=(",", ":")).encode()
