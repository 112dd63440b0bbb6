"""The deployment files: compose.yaml against the compose specification, and the shipped
mosquitto.conf, password script and ACL running a real Mosquitto that enforces the ACL."""

from __future__ import annotations

import getpass
import os
import queue
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from broker import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

DOCKER = Path(__file__).resolve().parent.parent / "docker"
ROOT = "linetwin/demo/line1"  # the root the shipped ACL is written for
PASSWORDS = {user: f"secret-{user}" for user in ("agent", "gateway", "controller", "viewer")}


def test_compose_file_follows_the_compose_specification() -> None:
    done = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(DOCKER / "compose.yaml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_takes_secrets_from_the_env_file_only() -> None:
    compose = (DOCKER / "compose.yaml").read_text()
    example = (DOCKER / ".env.example").read_text()
    for variable in re.findall(r"\$\{(\w+)", compose):
        assert re.search(rf"^{variable}=", example, re.M), f"{variable} is missing in .env.example"
    assert not re.search(r"(PASSWORD|TOKEN)\w*: [^$\s]", compose), "a secret is written into compose.yaml"


class ShippedBroker(Mosquitto):
    """Mosquitto with docker/mosquitto's configuration, password script and ACL (paths moved here)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        passwd = folder / "passwd"
        env = {**os.environ, **{f"MQTT_{u.upper()}_PASSWORD": p for u, p in PASSWORDS.items()}}
        subprocess.run(
            ["sh", str(DOCKER / "mosquitto" / "init-passwords.sh"), str(passwd)], env=env, check=True
        )
        shipped = (DOCKER / "mosquitto" / "mosquitto.conf").read_text()
        conf = (
            shipped.replace("listener 1883", f"listener {self.port} 127.0.0.1")
            .replace("/mosquitto/config/passwd", str(passwd))
            .replace("/mosquitto/config/acl", str(DOCKER / "mosquitto" / "acl"))
            .replace("/mosquitto/data/", f"{folder}/")
            .replace("log_dest stdout", f"log_dest file {folder}/mosquitto.log")
        )
        self.config.write_text(conf + f"user {getpass.getuser()}\n")  # as in the tests' broker


@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[ShippedBroker]:
    broker = ShippedBroker(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _client(broker: Mosquitto, user: str, password: str | None = None) -> tuple[paho.Client, paho.ReasonCode]:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.username_pw_set(user, PASSWORDS[user] if password is None else password)
    reasons: queue.Queue[paho.ReasonCode] = queue.Queue()
    client.on_connect = lambda _c, _u, _f, reason, _p: reasons.put(reason)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client, reasons.get(timeout=5)


@pytest.mark.mqtt
def test_the_shipped_acl_lets_only_the_agent_publish_dispatches(shipped_broker: ShippedBroker) -> None:
    viewer, reason = _client(shipped_broker, "viewer")
    assert not reason.is_failure
    seen: queue.Queue[str] = queue.Queue()
    viewer.on_message = lambda _c, _u, m: seen.put(f"{m.topic} {m.payload.decode()}")
    viewer.subscribe(f"{ROOT}/#", qos=1)
    time.sleep(0.3)
    attempts = [
        ("controller", "dispatch/pas", "forged"),  # no right
        ("gateway", "dispatch/pas", "forged"),  # no right
        ("controller", "fas/FAS1/events", "forged"),  # no right
        ("gateway", "fas/FAS1/events", "event"),
        ("agent", "dispatch/pas", "dispatch"),
    ]
    for user, topic, payload in attempts:
        client, reason = _client(shipped_broker, user)
        assert not reason.is_failure, user
        client.publish(f"{ROOT}/{topic}", payload, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
    received = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(received) < 2:
        try:
            received.add(seen.get(timeout=0.2))
        except queue.Empty:
            continue
    time.sleep(0.5)
    while not seen.empty():
        received.add(seen.get())
    viewer.disconnect()
    assert received == {f"{ROOT}/fas/FAS1/events event", f"{ROOT}/dispatch/pas dispatch"}


@pytest.mark.mqtt
def test_the_shipped_broker_refuses_a_wrong_password(shipped_broker: ShippedBroker) -> None:
    client, reason = _client(shipped_broker, "controller", password="guess")
    assert reason.is_failure
    client.loop_stop()


@pytest.mark.mqtt
def test_the_agent_reads_its_own_status_for_the_healthcheck(shipped_broker: ShippedBroker) -> None:
    agent, _ = _client(shipped_broker, "agent")
    agent.publish(f"{ROOT}/twin/status", "online", qos=1, retain=True).wait_for_publish(5)
    seen: queue.Queue[bytes] = queue.Queue()
    agent.on_message = lambda _c, _u, m: seen.put(m.payload)
    agent.subscribe(f"{ROOT}/twin/status", qos=1)
    assert seen.get(timeout=5) == b"online"
    agent.disconnect()
    agent.loop_stop()
