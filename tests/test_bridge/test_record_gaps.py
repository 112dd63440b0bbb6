"""`record` tells messages it never received (issue 14): the events' `seq` counts up by one per
publisher topic, so a jump is a message the broker dropped for the recorder. It keeps the twin's own
topics too: the timed PAS plan (issue 17) is recorded and `replay --to-broker --all-topics` publishes
it again."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from broker import Mosquitto
from paho.mqtt import publish, subscribe
from paho.mqtt.enums import CallbackAPIVersion

from agent.cli import main
from bridge.recording import SeqGaps, read_recording
from bridge.topics import Topics

TOPICS = Topics("test/record/line1")


def test_gaps_count_the_numbers_skipped_per_topic_not_repeats_or_a_restart() -> None:
    gaps = SeqGaps()
    a, b = TOPICS.pas_events, TOPICS.buffer_events
    seen = [gaps.see(t, {"seq": s}) for t, s in [(a, 4), (a, 5), (a, 9), (b, 1), (a, 9), (a, 7), (b, 3)]]
    assert seen == [0, 0, 3, 0, 0, 0, 1]  # 4 first seen: the recorder may have started late
    assert gaps.missing == 4 and gaps.topics == {a, b}
    assert gaps.see(a, {"seq": 1}) == 0 and gaps.see(a, {"seq": 2}) == 0  # a publisher started over
    assert (
        gaps.see(a, {"event": "plan"}) == 0 and gaps.see(a, "text") == 0 and gaps.see(a, {"seq": True}) == 0
    )
    assert gaps.missing == 4


@pytest.fixture
def small_queue(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto", max_queued_messages=5)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _record(broker: Mosquitto, out: Path, log: Path, *until: str) -> subprocess.Popen[str]:
    """`record` until `until` (default: idle for 1 s)."""
    argv = ["record", "--port", str(broker.port), "--root", TOPICS.root, "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *argv, *(until or ("--exit-after-idle", "1"))],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while "record: " not in log.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)
    time.sleep(0.2)  # the subscription reaches the broker
    return process


def _events(seqs: range | list[int]) -> list[tuple[str, str, int, bool]]:
    return [(TOPICS.pas_events, json.dumps({"v": 1, "seq": s, "event": "up"}), 1, False) for s in seqs]


def test_record_says_how_many_messages_a_publisher_skipped(mosquitto: Mosquitto, tmp_path: Path) -> None:
    out, log = tmp_path / "week.jsonl", tmp_path / "record.log"
    process = _record(mosquitto, out, log)
    publish.multiple(_events([1, 2, 3, 4, 8, 9, 10]), hostname="127.0.0.1", port=mosquitto.port)
    assert process.wait(timeout=30) == 0, log.read_text()
    said = log.read_text().splitlines()
    assert said[-1] == (
        "record: 7 messages, 3 missing (gaps in seq on 1 topic): the broker dropped messages queued "
        "for the recorder; raise the broker's max_queued_messages or emulate at a slower --speed"
    )
    assert said[1].startswith("record: warning: 3 missing") and "max_queued_messages" in said[1]


def test_record_counts_what_a_broker_with_a_small_queue_dropped(
    small_queue: Mosquitto, tmp_path: Path
) -> None:
    out, log = tmp_path / "week.jsonl", tmp_path / "record.log"
    process = _record(small_queue, out, log)
    published, port = 300, small_queue.port
    os.kill(process.pid, signal.SIGSTOP)  # a recorder that cannot keep up: its queue overflows
    try:
        publish.multiple(_events(range(1, published)), hostname="127.0.0.1", port=port)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    time.sleep(0.5)  # then the last one: a drop at the end shows as a gap before it
    publish.single(*_events([published])[0], hostname="127.0.0.1", port=port)
    assert process.wait(timeout=30) == 0, log.read_text()
    recorded = sum(1 for _ in read_recording(out))
    assert recorded < published  # the broker did drop some (else the case tests nothing)
    assert (
        log.read_text()
        .splitlines()[-1]
        .startswith(f"record: {recorded} messages, {published - recorded} missing (gaps in seq on 1 topic)")
    )


def _plan(revision: int) -> str:
    """A timed PAS plan as `serve --planner` publishes it (two batches left)."""
    batch = {"type": "T1", "quantity": 50, "start": "2026-11-27T18:00:00+01:00",
             "end": "2026-11-27T18:16:40+01:00", "changeover": False}  # fmt: skip
    return json.dumps({
        "v": 1, "ts": "2026-11-27T18:00:00+01:00", "revision": revision, "week_start": "2026-11-23",
        "plan_revision": 0, "gain": None, "forecast": None,
        "provenance": {"planner": "best", "source": "dp (exact)", "reason": "PAS down", "bound": 0.0,
                       "gap": 0.0, "stopped": "optimal", "planning_s": 0.1, "from_position": 231},
        "batches": [{**batch, "position": 231}, {**batch, "position": 232}],
    })  # fmt: skip


def _retained_now(port: int, topic: str) -> bytes:
    message = subscribe.simple(topic, qos=1, retained=True, hostname="127.0.0.1", port=port)
    assert message is not None and not isinstance(message, list)
    return bytes(message.payload)


def test_the_plan_on_the_bus_is_recorded_and_republished(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The retained plan there when `record` starts, and the next one, are recorded with their
    payloads; `replay --to-broker --all-topics` republishes both, in order."""
    port, topic = mosquitto.port, TOPICS.pas_plan
    assert topic == f"{TOPICS.root}/twin/plan/pas"
    publish.single(topic, _plan(1), qos=1, retain=True, hostname="127.0.0.1", port=port)
    out, log = tmp_path / "week.jsonl", tmp_path / "record.log"
    process = _record(mosquitto, out, log, "--count", "2")
    publish.single(topic, _plan(2), qos=1, retain=True, hostname="127.0.0.1", port=port)
    assert process.wait(timeout=30) == 0, log.read_text()
    recorded = list(read_recording(out))
    assert [(m.topic, m.payload) for m in recorded] == [(topic, json.loads(_plan(r))) for r in (1, 2)]
    assert recorded[0].retain and recorded[1].retain  # the one there at subscription, and as published

    heard: queue.Queue[bytes] = queue.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, m: heard.put(m.payload)
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert heard.get(timeout=10) == _plan(2).encode()  # the retained plan, as it stands
        argv = ["replay", str(out), "--to-broker", "--all-topics", "--port", str(port), "--root", TOPICS.root]
        assert main([*argv, "--speed", "0"]) == 0
        again = [heard.get(timeout=10), heard.get(timeout=10)]
    finally:
        client.loop_stop()
        client.disconnect()
    assert [json.loads(p) for p in again] == [json.loads(_plan(r)) for r in (1, 2)]
    assert json.loads(_retained_now(port, topic)) == json.loads(_plan(2))  # replayed retained: it stands
