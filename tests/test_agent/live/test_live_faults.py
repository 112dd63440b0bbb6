"""Faults on a real Mosquitto: session identity and liveness, start order, retained plans, clocks that
cannot be trusted, and a fuzzer that sends every class of bad input during a live week."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paths import CONFIG
from test_live import ROOT, SPEED, WEEK_TIMEOUT_S, LiveWeek, _cli, _final_state, _kpis, _offline, live_week

from bridge.mqtt import client_id_for
from bridge.settings import load_bus_settings
from bridge.topics import Topics
from twin import LineConfig, WeekConfig

pytestmark = pytest.mark.mqtt
__all__ = ["live_week"]  # the fixture, used here too

POLICY = "setup-aware"
TOPICS = Topics(ROOT)


class Watcher:
    """A client that publishes and keeps what arrives on `topics` (twin/errors by default)."""

    def __init__(self, broker: Mosquitto, topics: tuple[str, ...] = (TOPICS.errors,)) -> None:
        self.received: list[tuple[str, dict[str, object]]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.2)

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = {"raw": message.payload.decode(errors="replace")}
        with self.lock:
            self.received.append((message.topic, payload))

    def on(self, topic: str) -> list[dict[str, object]]:
        with self.lock:
            return [p for t, p in self.received if t == topic]

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _status(broker: Mosquitto) -> tuple[int, str]:
    status = _cli("status", "--port", str(broker.port), "--root", ROOT, "--timeout", "1")
    output, _ = status.communicate(timeout=60)
    return status.returncode, output.strip()


def _wait_status(broker: Mosquitto, said: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (status := _status(broker))[1].endswith(said) is False:
        assert time.monotonic() < deadline, f"twin/status never became {said}: {status}"
        time.sleep(0.3)


def _serve(broker: Mosquitto, folder: Path, name: str, *extra: str) -> subprocess.Popen[str]:
    return _cli(
        "serve", "--port", str(broker.port), "--root", ROOT, "--policy", POLICY,
        "--journal", str(folder / f"{name}.jsonl"), *extra, out=folder / f"{name}.log",
    )  # fmt: skip


# -- 1. session identity and liveness ---------------------------------------------------------
@pytest.mark.slow
def test_one_shot_commands_never_take_over_the_services_session(
    monkeypatch: pytest.MonkeyPatch,
    mosquitto: Mosquitto,
    live_week: Callable[..., LiveWeek],
    ref_line: LineConfig,
    ref_week: WeekConfig,
) -> None:
    """`LINETWIN_MQTT_CLIENT_ID` set in the shell: `linetwin status` run again and again during the
    week (before, each took over serve's session and the week ended at completion 0.42)."""
    monkeypatch.setenv("LINETWIN_MQTT_CLIENT_ID", "plant-twin")
    week = live_week(POLICY, "--speed", "20000")
    _wait_status(mosquitto, "online")
    for _ in range(3):
        assert _status(mosquitto) == (0, f"{TOPICS.status}: online")
    week.finish()
    assert _kpis(_final_state(week.recording)) == _offline(ref_line, ref_week, POLICY)


def test_a_service_whose_session_is_taken_over_stops_loudly(
    monkeypatch: pytest.MonkeyPatch,
    mosquitto: Mosquitto,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
) -> None:
    monkeypatch.setenv("LINETWIN_MQTT_CLIENT_ID", "plant-twin")
    first = _serve(mosquitto, tmp_path, "first")
    processes.append(first)
    _wait_status(mosquitto, "online")
    second = _serve(mosquitto, tmp_path, "second")
    processes.append(second)
    assert first.wait(timeout=30) == 1  # it does not fight for the session
    said = (tmp_path / "first.log").read_text()
    assert "another client connected with this service's client id 'plant-twin'" in said
    time.sleep(2)
    assert second.poll() is None, (tmp_path / "second.log").read_text()
    second.terminate()
    assert second.wait(timeout=30) == 0


@pytest.mark.parametrize("how", ["broker-restart", "serve-paused"])
def test_the_status_is_online_again_after_every_reconnect(
    monkeypatch: pytest.MonkeyPatch,
    mosquitto: Mosquitto,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    how: str,
) -> None:
    monkeypatch.setenv("LINETWIN_MQTT_KEEPALIVE_S", "5")  # the broker gives up after 1.5 keep-alives
    serve = _serve(mosquitto, tmp_path, "serve")
    processes.append(serve)
    _wait_status(mosquitto, "online")
    if how == "broker-restart":
        mosquitto.restart()
    else:
        serve.send_signal(signal.SIGSTOP)
        try:
            _wait_status(mosquitto, "offline")  # the last will
        finally:
            serve.send_signal(signal.SIGCONT)
    _wait_status(mosquitto, "online")
    serve.terminate()
    assert serve.wait(timeout=30) == 0


@pytest.mark.slow
@pytest.mark.parametrize("first", ["serve", "emulate"])
def test_either_start_order_runs_the_week(
    mosquitto: Mosquitto,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    ref_line: LineConfig,
    ref_week: WeekConfig,
    first: str,
) -> None:
    """The README's order (serve, then emulate) hung: the emulator dropped the retained dispatch that
    answered the first decision while it waited for the twin."""
    emulate = ("emulate", "--port", str(mosquitto.port), "--root", ROOT, "--speed", SPEED)
    if first == "serve":
        processes.append(_serve(mosquitto, tmp_path, "serve", "--exit-after-idle", "30"))
        _wait_status(mosquitto, "online")
        time.sleep(1)  # the week-start dispatch is out (and retained) before the emulator starts
        processes.append(_cli(*emulate, out=tmp_path / "emulate.log"))
    else:
        processes.append(_cli(*emulate, out=tmp_path / "emulate.log"))
        time.sleep(2)
        processes.append(_serve(mosquitto, tmp_path, "serve", "--exit-after-idle", "30"))
    emulator = processes[0] if first == "emulate" else processes[1]
    assert emulator.wait(timeout=WEEK_TIMEOUT_S) == 0, (tmp_path / "emulate.log").read_text()
    batches = _offline(ref_line, ref_week, POLICY)[2]
    assert f"{batches} dispatches applied" in (tmp_path / "emulate.log").read_text()


def test_an_emulator_without_a_twin_says_what_it_waits_for_and_gives_up(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    emulate = _cli("emulate", "--port", str(mosquitto.port), "--root", ROOT, "--wait-twin", "2")
    output, _ = emulate.communicate(timeout=60)
    assert emulate.returncode == 1, output
    assert f"waiting up to 2 s for the twin on {TOPICS.status}" in output
    assert f"emulate: error: the twin did not come online on {TOPICS.status} within 2 s" in output


def _plan_message(week: WeekConfig, revision: int, quantity_of_last: int | None = None) -> str:
    orders = [
        {"station": station, "position": p, "type": o.type, "quantity": o.quantity}
        for station, plan in week.plans.items()
        for p, o in enumerate(plan, start=1)
    ]
    if quantity_of_last is not None:
        orders[max(i for i, o in enumerate(orders) if o["station"] == "FAS1")]["quantity"] = quantity_of_last
    start = week.week_start.isoformat()
    return json.dumps({"v": 1, "ts": "2026-11-23T05:00:00+01:00", "event": "plan", "week_start": start,
                       "revision": revision, "orders": orders})  # fmt: skip


def test_the_retained_plan_adds_no_error_at_restarts_and_reconnects(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]], ref_week: WeekConfig
) -> None:
    watcher = Watcher(mosquitto, (TOPICS.errors, TOPICS.state))
    watcher.send(TOPICS.plan, _plan_message(ref_week, 1), retain=True)
    serve = _serve(mosquitto, tmp_path, "serve", "--plan-from-bus")
    processes.append(serve)
    _wait_status(mosquitto, "online")
    serve.terminate()
    assert serve.wait(timeout=30) == 0
    serve = _serve(mosquitto, tmp_path, "serve", "--plan-from-bus")  # resumes its journal
    processes.append(serve)
    _wait_status(mosquitto, "online")
    mosquitto.restart()
    _wait_status(mosquitto, "online")
    time.sleep(1)
    serve.terminate()
    assert serve.wait(timeout=30) == 0
    assert watcher.on(TOPICS.errors) == []
    assert watcher.on(TOPICS.state)[-1]["plan_revision"] == 1
    watcher.close()


# -- 3. clocks ---------------------------------------------------------------------------------
@pytest.fixture
def this_week(tmp_path: Path) -> tuple[Path, Path]:
    """The reference line working around the clock, and w1's plan in the week that runs now."""
    line = (CONFIG / "line.toml").read_text()
    line = re.sub(r"shifts = \[.*?\]\nbreaks = \[.*?\]\n", "", line, flags=re.S)
    line = line.replace(
        "[calendar]\n", '[calendar]\nshifts = [{ days = "Mon-Sun", start = "00:00", end = "24:00" }]\n'
    )
    (tmp_path / "line.toml").write_text(line)
    week = tmp_path / "week"
    week.mkdir()
    monday = dt.date.today() - dt.timedelta(days=dt.date.today().weekday())
    toml = (CONFIG / "weeks" / "w1" / "week.toml").read_text()
    (week / "week.toml").write_text(re.sub(r'week_start = "[0-9-]+"', f'week_start = "{monday}"', toml))
    (week / "plan.csv").write_text((CONFIG / "weeks" / "w1" / "plan.csv").read_text())
    return tmp_path / "line.toml", week


def test_a_clock_ahead_of_the_receipt_time_moves_no_clock(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]], this_week: tuple[Path, Path]
) -> None:
    """A FAS whose clock runs 3 h ahead (not yet synchronised after a boot): its event is applied at
    its receipt time and reported; the twin's clock stays at the real time. A stock count dated
    2027 is rejected."""
    line, week = this_week
    watcher = Watcher(mosquitto, (TOPICS.errors, TOPICS.state))
    serve = _serve(
        mosquitto, tmp_path, "serve", "--line", str(line), "--week", str(week), "--policy", "first-fit"
    )
    processes.append(serve)
    _wait_status(mosquitto, "online")
    now = dt.datetime.now(dt.UTC)
    stamp = {
        "v": 1,
        "ts": (now - dt.timedelta(seconds=1)).isoformat(),
        "seq": 1,
        "event": "down",
        "reason": "x",
    }
    watcher.send(TOPICS.fas_events("FAS2"), json.dumps(stamp))
    ahead = {**stamp, "ts": (now + dt.timedelta(hours=3)).isoformat(), "seq": 2, "event": "up"}
    watcher.send(TOPICS.fas_events("FAS2"), json.dumps(ahead))
    future = {"v": 1, "ts": "2027-03-01T10:00:00+01:00", "seq": 1, "event": "stock", "stock": {"T1": 0}}
    watcher.send(TOPICS.buffer_events, json.dumps(future))
    deadline = time.monotonic() + 10
    while len(watcher.on(TOPICS.errors)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the next state
    serve.terminate()
    assert serve.wait(timeout=30) == 0
    restamped, rejected = watcher.on(TOPICS.errors)
    assert restamped["accepted"] is True and "10800 s after the message was received" in str(
        restamped["reason"]
    )
    assert rejected["accepted"] is False and "a week after the week's end" in str(rejected["reason"])
    state = watcher.on(TOPICS.state)[-1]
    twin_now = dt.datetime.fromisoformat(str(state["ts"]))
    assert twin_now < now + dt.timedelta(seconds=60)  # not 3 h ahead
    assert state["fas"]["FAS2"]["state"] != "down"  # type: ignore[index]
    assert (state["events_accepted"], state["events_restamped"], state["events_rejected"]) == (2, 1, 1)
    watcher.close()


# -- the fuzzer --------------------------------------------------------------------------------
def _bad_inputs(week: WeekConfig, fas1_seq: int, genuine: bytes | None) -> list[tuple[str, str | bytes]]:
    """One message of every class of bad input (topic, payload); `fas1_seq`: the last FAS1 seq seen."""
    ts = "2026-11-25T10:00:00+01:00"

    def event(**fields: object) -> str:
        return json.dumps({"v": 1, "ts": ts, "seq": 1, **fields})

    fas1, pas, buffer = TOPICS.fas_events("FAS1"), TOPICS.pas_events, TOPICS.buffer_events
    bad: list[tuple[str, str | bytes]] = [
        (fas1, "{oops"),
        (fas1, "[1, 2, 3]"),
        (fas1, event(event="exploded")),
        (fas1, event(event="unit_started", type="T99", seq=1_000_000)),  # a seq far ahead
        (fas1, event(event="unit_started", type="T99", seq=fas1_seq + 1)),  # the next genuine seq
        (TOPICS.fas_events("FAS9"), event(event="unit_started", type="T1")),
        (pas, event(event="batch_started", type="T1")),  # no quantity
        (pas, event(event="batch_started", type="T1", quantity=2**70, seq=10**9)),  # poison quantity
        (fas1, event(event="down", seq="7")),
        (fas1, event(event="down", seq=7.0)),
        (fas1, event(event="down", seq=True)),
        (fas1, event(event="down", v=True, seq=10**9)),
        (buffer, event(event="stock", stock={"T1": "3"}, seq=10**9)),
        (f"{pas}/extra", event(event="up")),
        (f"{fas1}/x", event(event="up")),
        (f"{ROOT}/buffer/x", event(event="up")),
        (fas1, event(event="down", ts="2026-11-20T10:00:00+01:00", seq=10**9)),  # before the week
        (buffer, event(event="stock", stock={"T1": 0}, ts="2027-03-01T10:00:00+01:00", seq=10**9)),
        (fas1, event(event="down", ts="2026-11-23T00:00:01+01:00", seq=10**9)),  # before FAS1's last event
        (TOPICS.plan, _plan_message(week, 1, quantity_of_last=2**70)),
        (fas1, '{"pad": "' + "x" * 300_000 + '"}'),
    ]
    if genuine is not None:
        bad.append((fas1, genuine))  # a duplicate
    return bad


@pytest.mark.slow
def test_a_fuzzer_during_a_live_week_changes_nothing(
    mosquitto: Mosquitto, live_week: Callable[..., LiveWeek], ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    """Every class of bad input above, again and again at random moments (seeded) of a live week:
    each is answered once on twin/errors, and the week ends with the clean week's KPIs."""
    watcher = Watcher(mosquitto, (TOPICS.errors, TOPICS.fas_events("FAS1")))
    week = live_week(POLICY, "--speed", "20000")
    rng = random.Random(13)
    sent = 0
    while week.emulate.poll() is None and sent < 400:
        seen = watcher.on(TOPICS.fas_events("FAS1"))
        if not seen:
            time.sleep(0.05)
            continue
        last = json.dumps(seen[-1]).encode()
        for topic, payload in _bad_inputs(ref_week, int(str(seen[-1]["seq"])), last):
            watcher.send(topic, payload)
            sent += 1
        time.sleep(rng.uniform(0.05, 0.4))
    week.finish()
    assert sent >= 4 * len(_bad_inputs(ref_week, 0, None)), f"the week ended after {sent} bad messages"
    assert _kpis(_final_state(week.recording)) == _offline(ref_line, ref_week, POLICY)
    deadline = time.monotonic() + 10
    while len(watcher.on(TOPICS.errors)) < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    errors = watcher.on(TOPICS.errors)
    assert [e for e in errors if e["accepted"]] == []  # no gap: no rejected message moved a seq
    assert len(errors) == sent
    assert _final_state(week.recording)["events_rejected"] == sent
    watcher.close()


def _queue_for_serve(watcher: Watcher, count: int) -> None:
    """Events for serve's persistent session while it is down (FAS2 down/up, week w1)."""
    for seq in range(1, count + 1):
        event = "down" if seq % 2 else "up"
        ts = (dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC) + dt.timedelta(seconds=seq)).isoformat()
        payload = json.dumps({"v": 1, "ts": ts, "seq": seq, "event": event})
        watcher.client.publish(TOPICS.fas_events("FAS2"), payload, qos=1)
    time.sleep(1)


def test_decision_seq_starts_above_the_retained_dispatch_even_behind_a_full_queue(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """Without a journal, the retained `dispatch/pas/current` is the floor of decision_seq, also when
    the broker holds a full queue of events for serve's session (a user saw decision_seq restart at 1
    there; serve now reads the retained dispatch on a connection of its own before it connects)."""
    mosquitto = Mosquitto(tmp_path / "mosquitto", max_queued_messages=100)
    mosquitto.start()
    processes.append(mosquitto.process)  # type: ignore[arg-type]
    watcher = Watcher(mosquitto, (TOPICS.dispatch,))
    first = _serve(mosquitto, tmp_path, "first", "--exit-after-idle", "1")  # leaves its session behind
    assert first.wait(timeout=60) == 0
    current = {"v": 1, "ts": "2026-11-20T12:00:00+01:00", "decision_seq": 500, "decision_id": "x",
               "type": "T1", "quantity": 50, "policy": "rl", "based_on": 7, "forecast": None}  # fmt: skip
    watcher.send(TOPICS.dispatch_current, json.dumps(current), retain=True)
    _queue_for_serve(watcher, 500)
    second = _serve(mosquitto, tmp_path, "second", "--exit-after-idle", "2")  # a new journal
    processes.append(second)
    assert second.wait(timeout=60) == 0, (tmp_path / "second.log").read_text()
    seqs = [d["decision_seq"] for d in watcher.on(TOPICS.dispatch)]
    assert seqs[-1] == 501, seqs  # the first serve's week-start dispatch was 1


def test_serve_fresh_starts_with_nothing_the_broker_kept_for_the_old_run(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    watcher = Watcher(mosquitto, (TOPICS.state,))
    first = _serve(mosquitto, tmp_path, "serve", "--exit-after-idle", "1")
    assert first.wait(timeout=60) == 0
    _queue_for_serve(watcher, 10)
    fresh = _serve(mosquitto, tmp_path, "serve", "--fresh", "--exit-after-idle", "2")
    processes.append(fresh)
    assert fresh.wait(timeout=60) == 0
    state = watcher.on(TOPICS.state)[-1]
    assert (state["events_accepted"], state["events_rejected"]) == (0, 0)


# -- found by trying to break it -------------------------------------------------------------------
def test_serve_never_answers_its_own_messages(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """Another client once used serve's (predictable) client id with a persistent subscription to
    `{root}/#`: the session keeps it, so serve receives its own errors, state and dispatches. It used
    to answer each on twin/errors, and so its own answers, without end (41,786 messages in 10 s)."""
    impostor = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id_for("serve", load_bus_settings(root=ROOT)),
        protocol=paho.MQTTv5,
    )  # fmt: skip
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    impostor.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    impostor.subscribe(f"{ROOT}/#", qos=1)
    impostor.loop(1)
    impostor.disconnect()
    watcher = Watcher(mosquitto)
    serve = _serve(mosquitto, tmp_path, "serve", "--exit-after-idle", "3")
    processes.append(serve)
    assert serve.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()
    assert watcher.on(TOPICS.errors) == []


def test_a_second_agent_dispatching_on_the_line_is_reported(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    watcher = Watcher(mosquitto)
    serve = _serve(mosquitto, tmp_path, "serve")
    processes.append(serve)
    _wait_status(mosquitto, "online")
    other = {"v": 1, "ts": "2026-11-23T06:00:00+01:00", "decision_seq": 1, "decision_id": "y", "type": "T2",
             "quantity": 50, "policy": "other", "based_on": None, "forecast": None}  # fmt: skip
    watcher.send(TOPICS.dispatch, json.dumps(other))
    deadline = time.monotonic() + 10
    while not watcher.on(TOPICS.errors) and time.monotonic() < deadline:
        time.sleep(0.05)
    [error] = watcher.on(TOPICS.errors)
    assert error["topic"] == TOPICS.dispatch and "another agent" in str(error["reason"])
    serve.terminate()
    assert serve.wait(timeout=30) == 0


def test_quick_broker_restarts_are_no_session_takeover(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    serve = _serve(mosquitto, tmp_path, "serve")
    processes.append(serve)
    _wait_status(mosquitto, "online")
    for _ in range(3):
        time.sleep(3)
        mosquitto.restart()
    _wait_status(mosquitto, "online")
    assert serve.poll() is None, (tmp_path / "serve.log").read_text()
    serve.terminate()
    assert serve.wait(timeout=30) == 0


def test_an_answer_fits_a_broker_that_limits_packets(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """A message on a 12,000-character topic: the error repeated the topic whole, the broker closed
    the connection for the oversize packet, redelivered the message, and serve never got past it."""
    broker = Mosquitto(tmp_path / "mosquitto", extra="max_packet_size 20000\n")
    broker.start()
    try:
        watcher = Watcher(broker)
        serve = _serve(broker, tmp_path, "serve")
        processes.append(serve)
        _wait_status(broker, "online")
        topic = f"{ROOT}/fas/{'S' * 12_000}/events"
        watcher.send(topic, json.dumps({"v": 1, "ts": "2026-11-23T06:00:00+01:00", "seq": 1, "event": "up"}))
        deadline = time.monotonic() + 10
        while not watcher.on(TOPICS.errors) and time.monotonic() < deadline:
            time.sleep(0.05)
        [error] = watcher.on(TOPICS.errors)
        reason = str(error["reason"])  # a station level outside the name rule (twin/names.py)
        assert len(str(error["topic"])) == 257 and "a name is 1-64 characters" in reason
        assert len(reason) < 1_000  # the station is shortened in the reason too
        serve.terminate()
        assert serve.wait(timeout=30) == 0
    finally:
        broker.stop()


def test_two_services_never_share_a_journal(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    first = _serve(mosquitto, tmp_path, "serve")
    processes.append(first)
    _wait_status(mosquitto, "online")
    second = _cli(
        "serve", "--port", str(mosquitto.port), "--root", ROOT, "--journal", str(tmp_path / "serve.jsonl"),
        out=tmp_path / "second.log",
    )  # fmt: skip
    assert second.wait(timeout=60) == 2
    said = (tmp_path / "second.log").read_text()
    assert f"linetwin: error: {tmp_path / 'serve.jsonl'}: in use by another running serve" in said
    first.terminate()
    assert first.wait(timeout=30) == 0


def test_a_retained_poison_plan_never_stops_serve(
    mosquitto: Mosquitto, tmp_path: Path, processes: list[subprocess.Popen[str]], ref_week: WeekConfig
) -> None:
    """A retained plan whose last FAS1 order asks for 2**70 units: before, the next decision crashed
    serve, and every restart crashed again (the journal, and with --fresh the broker, replayed it)."""
    watcher = Watcher(mosquitto, (TOPICS.errors, TOPICS.dispatch))
    watcher.send(TOPICS.plan, _plan_message(ref_week, 1, quantity_of_last=2**70), retain=True)
    for name, extra in [("serve", ()), ("serve", ()), ("serve", ("--fresh",))]:
        serve = _serve(mosquitto, tmp_path, name, "--plan-from-bus", "--exit-after-idle", "2", *extra)
        processes.append(serve)
        assert serve.wait(timeout=60) == 0, (tmp_path / f"{name}.log").read_text()
    reasons = [str(e["reason"]) for e in watcher.on(TOPICS.errors)]
    assert len(reasons) == 3 and all("more than the PAS can build" in r for r in reasons)
    assert watcher.on(TOPICS.dispatch) == []  # no plan, no decision
