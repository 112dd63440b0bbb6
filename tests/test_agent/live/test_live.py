"""The live loop against a real Mosquitto: emulator + serve + a `mosquitto_sub` controller, record
and replay, bad input on the wire, broker and service restarts."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from agent.live.service import AgentService
from agent.planners.registry import DEFAULT_MODEL, make_policy
from bridge.mqtt import MqttBus
from bridge.settings import load_bus_settings
from bridge.topics import Topics
from twin import LineConfig, Scenario, WeekConfig, simulate

pytestmark = pytest.mark.mqtt

ROOT = "test/plant/assembly/line1"
WEEK_TIMEOUT_S = 120


def _cli(*args: str, out: Path | None = None) -> subprocess.Popen[str]:
    sink = out.open("w") if out else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args], stdout=sink, stderr=subprocess.STDOUT, text=True
    )


class Controller:
    """A line controller that is `mosquitto_sub`: it prints every dispatch it receives."""

    def __init__(self, broker: Mosquitto, topic: str, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            ["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-t", topic, "-i", "controller", "-c"],
            stdout=out.open("w"),
        )

    def dispatches(self) -> list[dict[str, object]]:
        self.process.terminate()
        self.process.wait(timeout=10)
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


def _final_state(path: Path) -> dict[str, object]:
    states = [json.loads(line) for line in path.read_text().splitlines()]
    state_topic = Topics(ROOT).state
    return next(s["payload"] for s in reversed(states) if s["topic"] == state_topic)


def _offline(ref_line: LineConfig, ref_week: WeekConfig, policy: str) -> tuple[float, int, int]:
    results, _ = simulate(Scenario.build(ref_line, ref_week), make_policy(policy, 0))
    return results.setup_effort, results.idle_s, results.batches


def _kpis(state: dict[str, object]) -> tuple[float, int, int]:
    kpis = state["kpis"]
    assert isinstance(kpis, dict)
    return kpis["setup_effort"], kpis["idle_s"], kpis["batches"]


def _serve(broker: Mosquitto, tmp_path: Path, policy: str, name: str = "serve") -> subprocess.Popen[str]:
    return _cli(
        "serve", "--port", str(broker.port), "--root", ROOT, "--policy", policy,
        "--journal", str(tmp_path / "journal.jsonl"), "--exit-after-idle", "4",
        out=tmp_path / f"{name}.log",
    )  # fmt: skip


class LiveWeek:
    """One emulated week on the broker: a controller, a recorder, `serve` and `emulate`."""

    def __init__(self, broker: Mosquitto, folder: Path, policy: str, *emulate_args: str) -> None:
        port = str(broker.port)
        self.broker, self.folder, self.policy = broker, folder, policy
        self.controller = Controller(broker, f"{ROOT}/dispatch/pas", folder / "controller.txt")
        self.recording = folder / "week.jsonl"
        self.recorder = _cli(
            "record", "--port", port, "--root", ROOT, "--out", str(self.recording), out=folder / "rec.log"
        )
        self.serve = _serve(broker, folder, policy)
        self.emulate = _cli(
            "emulate", "--port", port, "--root", ROOT, *emulate_args, out=folder / "emulate.log"
        )

    def restart_serve(self) -> None:
        log = self.folder / "serve.log"
        deadline = time.monotonic() + 60  # a loaded machine: serve may still be starting
        while "serve: " not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.serve.terminate()
        assert self.serve.wait(timeout=30) == 0
        self.serve = _serve(self.broker, self.folder, self.policy, name="serve2")

    def finish(self) -> str:
        """Wait for the week to end; return the emulator's output."""
        emulated = (self.folder / "emulate.log").read_text
        assert self.emulate.wait(timeout=WEEK_TIMEOUT_S) == 0, emulated()
        assert self.serve.wait(timeout=60) == 0, (self.folder / "serve.log").read_text()
        time.sleep(0.5)
        self.recorder.terminate()
        self.recorder.wait(timeout=10)
        return emulated()

    def kill(self) -> None:
        """Stop whatever still runs (after a failure)."""
        for process in (self.emulate, self.serve, self.recorder, self.controller.process):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def live_week(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Callable[..., LiveWeek]]:
    """Starts a `LiveWeek` on the test's broker; kills what is left of it at the end."""
    weeks: list[LiveWeek] = []

    def start(policy: str, *emulate_args: str) -> LiveWeek:
        weeks.append(LiveWeek(mosquitto, tmp_path, policy, *emulate_args))
        return weeks[-1]

    yield start
    for week in weeks:
        week.kill()


@pytest.mark.slow
def test_emulated_week_through_mosquitto_matches_the_offline_twin(
    live_week: Callable[..., LiveWeek], tmp_path: Path, ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    week = live_week(f"rl:{DEFAULT_MODEL}")  # the agent named with its model ...
    week.finish()
    recording = week.recording

    offline = _offline(ref_line, ref_week, "rl")
    dispatches = week.controller.dispatches()
    assert len(dispatches) == offline[2]
    assert {d["policy"] for d in dispatches} == {"rl"}  # ... dispatches as `rl`, not as a file path
    seqs = [d["decision_seq"] for d in dispatches]
    assert seqs == sorted(set(seqs))
    assert _kpis(_final_state(recording)) == offline  # the mirror saw every event

    replayed = tmp_path / "replayed.json"
    replay = _cli("replay", str(recording), "--root", ROOT, "--json", str(replayed))
    assert replay.wait(timeout=120) == 0
    assert _kpis(json.loads(replayed.read_text())) == offline


# -- bad input --------------------------------------------------------------------------------
@pytest.fixture
def live_service(mosquitto: Mosquitto, ref_line: LineConfig, ref_week: WeekConfig) -> Iterator[AgentService]:
    """The service in this process (a rule decides), on the real broker."""
    settings = load_bus_settings(port=mosquitto.port, root=ROOT)
    topics = Topics(ROOT)
    bus = MqttBus(settings, "serve", subscriptions=topics.inbound_filters)
    service = AgentService(Scenario.build(ref_line, ref_week), None, "none", topics, bus)
    bus.start()
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    yield service
    stop.set()
    thread.join(timeout=10)
    bus.stop()


class Probe:
    """A client that publishes line messages and collects `twin/errors`."""

    def __init__(self, broker: Mosquitto) -> None:
        self.errors: list[dict[str, object]] = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.errors.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(Topics(ROOT).errors, qos=1)
        self.client.loop_start()
        time.sleep(0.2)

    def send(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(f"{ROOT}/{topic}", payload, qos=1).wait_for_publish(5)

    def wait_errors(self, count: int, timeout_s: float = 5.0) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout_s
        while len(self.errors) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.errors


def _event(seq: int, event: str, **fields: object) -> str:
    return json.dumps({"v": 1, "ts": "2026-11-23T06:00:00+01:00", "seq": seq, "event": event, **fields})


FIRST = "T5"  # FAS1's first order in the reference week w1
BAD_INPUT = {
    "malformed-json": [("fas/FAS1/events", "{oops", "not UTF-8 JSON")],
    "non-object-json": [("fas/FAS1/events", "[1, 2, 3]", "JSON object")],
    "unknown-event": [("fas/FAS1/events", _event(1, "exploded"), "event")],
    "unknown-type": [("fas/FAS1/events", _event(1, "unit_started", type="T99"), "unknown type")],
    "unknown-station": [("fas/FAS9/events", _event(1, "unit_started", type=FIRST), "unknown station")],
    "pas-on-a-fas-topic": [("fas/PAS/events", _event(1, "down", reason="x"), "pre-assembly station")],
    "slash-in-station": [("fas/FAS/1/events", _event(1, "unit_started", type=FIRST), "not an inbound topic")],
    "missing-field": [("pas/events", _event(1, "batch_started", type="T1"), "quantity")],
    "duplicate-seq": [
        ("fas/FAS1/events", _event(1, "unit_started", type=FIRST), ""),
        ("fas/FAS1/events", _event(1, "unit_started", type=FIRST), "duplicate seq"),
    ],
    "out-of-order-seq": [
        ("fas/FAS1/events", _event(3, "unit_started", type=FIRST), ""),
        ("fas/FAS1/events", _event(2, "unit_finished", type=FIRST), "out-of-order seq"),
    ],
    "oversized": [("fas/FAS1/events", '{"pad": "' + "x" * 300_000 + '"}', "exceeds the limit")],
    "out-of-stock": [
        ("buffer/events", _event(1, "stock", stock={FIRST: 0}), ""),
        ("fas/FAS1/events", _event(1, "unit_started", type=FIRST), "out of stock"),
    ],
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_answered_on_the_error_topic(
    mosquitto: Mosquitto, live_service: AgentService, case: str
) -> None:
    probe = Probe(mosquitto)
    steps = BAD_INPUT[case]
    *good, (topic, payload, reason) = steps
    for t, p, _ in good:
        probe.send(t, p)
    deadline = time.monotonic() + 5
    while live_service.accepted < len(good) and time.monotonic() < deadline:
        time.sleep(0.02)
    before = (live_service.mirror.snapshot(), live_service.mirror.kpis(), live_service.accepted)
    notices = len(probe.errors)
    probe.send(topic, payload)
    errors = probe.wait_errors(notices + 1)
    rejected = [e for e in errors if not e["accepted"]]
    assert rejected and reason in str(rejected[-1]["reason"]), errors
    assert rejected[-1]["topic"] == f"{ROOT}/{topic}"
    assert (live_service.mirror.snapshot(), live_service.mirror.kpis(), live_service.accepted) == before
    probe.send("fas/FAS2/events", _event(99, "down", reason="still listening"))  # the service goes on
    deadline = time.monotonic() + 5
    while live_service.accepted == before[2] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live_service.accepted == before[2] + 1


def test_events_before_a_plan_are_rejected(
    mosquitto: Mosquitto, ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    settings = load_bus_settings(port=mosquitto.port, root=ROOT)
    topics = Topics(ROOT)
    bus = MqttBus(settings, "serve-plan", subscriptions=topics.inbound_filters)
    service = AgentService(Scenario.build(ref_line, ref_week), None, "none", topics, bus, plan_known=False)
    bus.start()
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        probe = Probe(mosquitto)
        probe.send("fas/FAS1/events", _event(1, "unit_started", type=FIRST))
        errors = probe.wait_errors(1)
        assert errors and "no plan yet" in str(errors[0]["reason"])
        assert service.accepted == 0
        order = {"station": "FAS1", "position": 1, "type": FIRST, "quantity": 5}
        plan = {"v": 1, "ts": "2026-11-23T06:00:00+01:00", "event": "plan", "week_start": "2026-11-23",
                "revision": 1, "orders": [order]}  # fmt: skip
        probe.send("plan", json.dumps(plan))
        probe.send("fas/FAS1/events", _event(2, "unit_started", type=FIRST))
        deadline = time.monotonic() + 5
        while service.accepted < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.accepted == 2 and service.mirror.revision == 1
    finally:
        stop.set()
        thread.join(timeout=10)
        bus.stop()


# -- restarts ---------------------------------------------------------------------------------
def test_the_bus_keeps_order_and_loses_nothing_across_a_broker_restart(mosquitto: Mosquitto) -> None:
    """A steady stream (about 5,000 messages/s) while the broker is stopped and started: the
    subscriber (manual acks) sees every message, first copies in order; redeliveries are allowed."""
    settings = load_bus_settings(port=mosquitto.port, root=ROOT)
    subscriber = MqttBus(settings, "sub", subscriptions=[f"{ROOT}/stream"])
    publisher = MqttBus(settings, "pub")
    subscriber.start()
    publisher.start()
    count, received = 20_000, []
    restart = threading.Timer(1.0, mosquitto.restart)
    restart.start()
    started = time.monotonic()
    for i in range(count):
        publisher.publish(f"{ROOT}/stream", str(i).encode())
        if i % 50 == 0:
            time.sleep(max(0.0, started + i / 5000 - time.monotonic()))
    restart.join()
    assert publisher.flush(timeout_s=60)
    deadline = time.monotonic() + 60
    while len(set(received)) < count and time.monotonic() < deadline:
        try:
            message = subscriber.inbox.get(timeout=1)
        except queue.Empty:
            continue
        received.append(int(message.payload))
        subscriber.ack(message)
    publisher.stop()
    subscriber.stop()
    assert subscriber.connects == 2 and publisher.connects == 2, "the restart did not disconnect"
    assert list(dict.fromkeys(received)) == list(range(count))


SPEED = "60000"  # working seconds per wall second: a reference week in about 5 s


@pytest.mark.slow
@pytest.mark.parametrize("what", ["broker", "serve"])
def test_a_restart_mid_week_loses_and_repeats_no_decision(
    mosquitto: Mosquitto,
    live_week: Callable[..., LiveWeek],
    tmp_path: Path,
    ref_line: LineConfig,
    ref_week: WeekConfig,
    what: str,
) -> None:
    week = live_week("setup-aware", "--speed", SPEED)
    time.sleep(4)  # into the week
    assert week.emulate.poll() is None, "the week ended before the restart"
    if what == "broker":
        mosquitto.restart()
    else:
        week.restart_serve()
    emulated = week.finish()

    offline = _offline(ref_line, ref_week, "setup-aware")
    assert f"{offline[2]} dispatches applied" in emulated
    seqs = [d["decision_seq"] for d in week.controller.dispatches()]
    assert len(seqs) == len(set(seqs)), "a decision_seq was repeated"
    journal = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    decisions = [e["decision"] for e in journal if "decision" in e]
    assert decisions == list(range(offline[2]))  # every decision point answered once
    assert _kpis(_final_state(week.recording)) == offline  # no event lost


def test_serve_fresh_starts_the_week_over_and_keeps_the_old_journal(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text("")  # an empty journal of an earlier run
    serve = _cli(
        "serve", "--port", str(mosquitto.port), "--root", ROOT, "--policy", "setup-aware",
        "--journal", str(journal), "--fresh", "--exit-after-idle", "1",
    )  # fmt: skip
    output, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, output
    kept = list(tmp_path.glob("journal.*.jsonl"))
    assert len(kept) == 1 and f"kept as {kept[0]}" in output


@pytest.mark.parametrize(("retained", "code", "said"), [(None, 1, "unknown"), ("offline", 1, "offline"),
                                                        ("online", 0, "online")])  # fmt: skip
def test_status_exits_0_only_while_the_twin_is_online(
    mosquitto: Mosquitto, retained: str | None, code: int, said: str
) -> None:
    if retained is not None:
        payload = json.dumps({"v": 1, "ts": "2026-11-23T06:00:00+01:00", "status": retained})
        probe = Probe(mosquitto)
        probe.client.publish(f"{ROOT}/twin/status", payload, qos=1, retain=True).wait_for_publish(5)
    status = _cli("status", "--port", str(mosquitto.port), "--root", ROOT, "--timeout", "1")
    output, _ = status.communicate(timeout=60)
    assert status.returncode == code, output
    assert output.strip().endswith(f"twin/status: {said}")
