"""Topics, message schemas and recordings, without a broker."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from bridge.bus import Received
from bridge.codec import decode, encode, event_topic
from bridge.errors import BadMessage, RecordingError
from bridge.messages import KpiMsg
from bridge.mqtt import MqttBus
from bridge.recording import Recorder, read_recording
from bridge.settings import load_bus_settings
from bridge.topics import InboundTopic, Topics
from twin import LineConfig, Scenario, WeekConfig
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
from twin.results import Kpis

ROOT = "acme/plant1/assembly/line1"


def test_topics_are_built_and_parsed_in_one_place() -> None:
    topics = Topics(ROOT)
    assert topics.parse_inbound(topics.fas_events("FAS2")) == InboundTopic("fas", "FAS2")
    assert topics.parse_inbound(topics.pas_events) == InboundTopic("pas")
    assert topics.parse_inbound(topics.plan) == InboundTopic("plan")
    assert topics.parse_inbound(topics.dispatch) is None
    assert topics.parse_inbound("other/root/pas/events") is None
    with pytest.raises(ValueError, match="topic root"):
        Topics("a/#")


EVENTS: list[LineEvent] = [
    BatchStarted(3600, "T1", 50),
    BatchStored(7200, "T1", 50),
    UnitStarted(90, "FAS1", "T2"),
    UnitFinished(180, "FAS1", "T2"),
    StationDown(200, "PAS", "maintenance"),
    StationUp(300, "FAS3"),
    StockCounted(400, {"T1": 12}),
    PlanRevised(500, "2026-11-23", 2, (PlannedOrder("FAS1", 1, "T3", 40),)),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_its_message(
    ref_line: LineConfig, ref_week: WeekConfig, event: LineEvent
) -> None:
    scenario = Scenario.build(ref_line, ref_week)
    topics = Topics(ROOT)
    week_start = ref_week.week_start.isoformat()
    if isinstance(event, PlanRevised):
        event = PlanRevised(event.at_s, week_start, event.revision, event.orders)
    payload = encode(event, 7, scenario.calendar)
    inbound = decode(topics, event_topic(topics, event), payload)
    assert inbound.event(scenario.calendar) == event
    assert json.loads(payload)["v"] == 1


def _raw(**fields: object) -> bytes:
    """A payload with these fields over a valid header (a field set to None is left out)."""
    data = {"v": 1, "ts": "2026-11-23T06:00:00+01:00", "seq": 1, **fields}
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"v":1,"ts":"2026-11-23T06:00:00+01:00","seq":1,"event":"exploded"}', "event"),
        (b'{"v":1,"ts":"2026-11-23T06:00:00+01:00","seq":1,"event":"unit_started"}', "type"),
        (b'{"v":2,"ts":"2026-11-23T06:00:00+01:00","seq":1,"event":"up"}', "v"),
        (b'{"v":1,"ts":"2026-11-23T06:00:00","seq":1,"event":"up"}', "ts"),
        (b'{"v":1,"ts":"2026-11-23T06:00:00+01:00","seq":-1,"event":"up"}', "seq"),
        # strict types: no coercion of strings, floats or booleans into integers
        (_raw(seq="7", event="up"), "seq: Input should be a valid integer"),
        (_raw(seq=7.0, event="up"), "seq: Input should be a valid integer"),
        (_raw(seq=True, event="up"), "seq: Input should be a valid integer"),
        (_raw(v=True, event="up"), "v: Value error, must be the integer 1"),
        (_raw(v=1.0, event="up"), "v: Value error, must be the integer 1"),
        (_raw(event="unit_started", type=3), "type: Input should be a valid string"),
        (_raw(event="up", v=None), "v: Field required"),
        (_raw(event="up")[:-1] + b',"x":' + b"[" * 3000 + b"]" * 3000 + b"}", "JSON beyond what is read"),
        (b'{"v":1,"ts":"2026-11-23T06:00:00+01:00","seq":' + b"9" * 5000 + b',"event":"up"}',
         "JSON beyond what is read"),
    ],
    ids=[
        "malformed", "array", "unknown-event", "missing-type", "version", "naive-ts", "negative-seq",
        "seq-string", "seq-float", "seq-bool", "v-bool", "v-float", "type-number", "no-v", "nested-3000",
        "int-5000-digits",
    ],
)  # fmt: skip
def test_bad_payloads_name_what_is_wrong(payload: bytes, reason: str) -> None:
    topics = Topics(ROOT)
    with pytest.raises(BadMessage, match=reason):
        decode(topics, topics.fas_events("FAS1"), payload)


def _plan(revision: object = 2, quantity: object = 5) -> bytes:
    order = {"station": "FAS1", "position": 1, "type": "T1", "quantity": quantity}
    return _raw(event="plan", week_start="2026-11-23", revision=revision, orders=[order], seq=None)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("buffer/events", _raw(event="stock", stock={"T1": "3"}), "stock.T1: Input should be a valid int"),
        ("buffer/events", _raw(event="stock", stock={"T1": 3.0}), "stock.T1: Input should be a valid int"),
        ("pas/events", _raw(event="batch_started", type="T1", quantity="50"), "quantity: Input should be"),
        ("plan", _plan(revision="2"), "revision: Input should be a valid integer"),
        ("plan", _plan(quantity=1.5), "orders.0.quantity: Input should be a valid integer"),
        ("pas/events/extra", b"{}", "not an inbound topic"),
        ("fas/FAS1/events/x", b"{}", "not an inbound topic"),
        ("fas//events", b"{}", "not an inbound topic"),
    ],
    ids=["stock-string", "stock-float", "quantity-string", "revision-string", "order-quantity-float",
         "pas-extra-level", "fas-extra-level", "fas-empty-station"],
)  # fmt: skip
def test_every_inbound_topic_is_strict(topic: str, payload: bytes, reason: str) -> None:
    topics = Topics(ROOT)
    with pytest.raises(BadMessage, match=reason):
        decode(topics, f"{ROOT}/{topic}", payload)


def test_the_contracts_kpis_are_the_twins_under_the_same_names_and_types() -> None:
    kpis = Kpis(
        idle_s=30,
        idle_s_by_station={"FAS1": 30, "FAS2": 0},
        setup_effort=2.5,
        setups=1,
        batches=3,
        completion=0.5,
        units_planned=20,
        units_consumed=10,
    )
    assert KpiMsg.of(kpis).model_dump_json() == (  # the contract's payload, byte for byte
        '{"idle_s":30,"idle_s_by_station":{"FAS1":30,"FAS2":0},"setup_effort":2.5,"setups":1,'
        '"batches":3,"units_consumed":10,"completion":0.5}'
    )
    twin_types = typing.get_type_hints(Kpis)
    assert {name: field.annotation for name, field in KpiMsg.model_fields.items()} == {
        name: twin_types[name] for name in KpiMsg.model_fields
    }


def test_recordings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "week.jsonl"
    sent = [
        Received("a/b", b'{"v":1,"x":[1,2]}', 1, False, 1_700_000_000.25),
        Received("a/c", b"not json", 0, True, 1_700_000_001.5),
    ]
    recorder = Recorder(path)
    for message in sent:
        recorder.write(message)
    recorder.close()
    back = [m.received() for m in read_recording(path)]
    assert [(m.topic, m.payload, m.qos, m.retain, m.received_at) for m in back] == [
        (m.topic, m.payload, m.qos, m.retain, m.received_at) for m in sent
    ]
    path.write_text(path.read_text() + '{"t": "yesterday"}\n')
    with pytest.raises(RecordingError, match=r"week.jsonl:3"):
        list(read_recording(path))


def test_a_message_handed_to_paho_as_the_connection_drops_is_still_awaited() -> None:
    """The race a broker restart hit once: the bus still counted itself open when paho had lost the
    socket, paho kept the message for the reconnect but marked it failed, and the check for its
    acknowledgement raised in the decision and in the bus's release thread, which died: nothing was
    published after the reconnect. Here the client was never connected, the same state for paho."""
    bus = MqttBus(load_bus_settings(port=1), "race")
    bus._open = True  # as between the socket's loss and on_disconnect
    bus.publish("a/b", b"x")
    assert bus.flush(timeout_s=0.2) is False  # awaited (paho sends it after the reconnect), no error
