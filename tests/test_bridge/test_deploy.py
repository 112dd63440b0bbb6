"""The deployment files: compose.yaml against the compose specification, the shipped mosquitto.conf,
password script and ACL running a real Mosquitto that enforces the ACL, and compose.yaml's
healthchecks run as written (with the values of .env.example) against that broker."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import queue
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from broker import Mosquitto
from dotenv import dotenv_values
from paho.mqtt.enums import CallbackAPIVersion
from paths import REPO

from bridge.messages import StatusMsg

DOCKER = REPO / "docker"
ROOT = "linetwin/demo/line1"  # the root the shipped ACL is written for
ENV = {k: v or "" for k, v in dotenv_values(DOCKER / ".env.example").items()}  # the stack's docker/.env
PASSWORDS = {
    user: ENV[f"MQTT_{user.upper()}_PASSWORD"] for user in ("agent", "gateway", "controller", "viewer")
}


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


# -- compose.yaml's healthchecks, as Docker runs them ---------------------------------------------
HEALTHCHECKS_RUN_HERE = {"mosquitto", "linetwin"}
HEALTHCHECKS_NOT_RUN_HERE = {  # why not
    "influxdb": "`influx ping` needs InfluxDB 2.x, which cannot be installed here",
    "grafana": "`wget .../api/health` needs Grafana, which is not installed here",
}


def _interpolate(value: str) -> str:
    """Compose's interpolation with docker/.env = .env.example: `$$` is a dollar sign; `${NAME}`,
    `${NAME:-default}` and `${NAME:?message}` take the value of NAME."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = ENV.get(name, "")
        assert value or op != ":?", f"{name} is missing in .env.example"
        return value or (arg if op == ":-" else "")

    return re.sub(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\}", one, value)


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    return services


def _healthcheck(service: str, **environment: str) -> tuple[int | None, str]:
    """Run `service`'s healthcheck as Docker does: `CMD-SHELL` through `/bin/sh -c`, `CMD` as is, with
    the service's environment (`environment` on top), ended after its timeout. The exit code (None:
    timed out) and the output."""
    spec = _services()[service]
    kind, *args = (_interpolate(part) for part in spec["healthcheck"]["test"])
    command = ["/bin/sh", "-c", *args] if kind == "CMD-SHELL" else args
    assert kind in ("CMD", "CMD-SHELL"), kind
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINETWIN_", "MQTT_"))}
    env |= {k: _interpolate(str(v)) for k, v in spec.get("environment", {}).items()} | environment
    timeout = spec["healthcheck"]["timeout"]
    assert re.fullmatch(r"\d+s", timeout), timeout
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=int(timeout[:-1]))
    except subprocess.TimeoutExpired:
        return None, f"{command} did not end within {timeout}"
    return done.returncode, done.stdout + done.stderr


def test_every_healthcheck_is_run_here_or_says_why_not() -> None:
    with_healthcheck = {name for name, spec in _services().items() if "healthcheck" in spec}
    assert with_healthcheck == HEALTHCHECKS_RUN_HERE | HEALTHCHECKS_NOT_RUN_HERE.keys()


@pytest.mark.mqtt
def test_the_broker_healthcheck_passes_on_the_shipped_broker(
    shipped_broker: ShippedBroker, tmp_path: Path
) -> None:
    # mosquitto_sub's defaults file: the container's broker is on port 1883, this one on a free port
    (tmp_path / "mosquitto_sub").write_text(f"-p {shipped_broker.port}\n")
    here = {"XDG_CONFIG_HOME": str(tmp_path)}
    code, output = _healthcheck("mosquitto", **here)
    assert code == 0 and re.fullmatch(r"\d+ seconds\n", output), output  # the broker's uptime
    shipped_broker.stop()
    code, output = _healthcheck("mosquitto", **here)
    assert code == 1, output  # `|| exit 1`


@pytest.mark.mqtt
def test_the_linetwin_healthcheck_follows_the_twin_status(shipped_broker: ShippedBroker) -> None:
    # the container's broker is mosquitto:1883, this one 127.0.0.1 on a free port
    here = {"LINETWIN_MQTT_HOST": "127.0.0.1", "LINETWIN_MQTT_PORT": str(shipped_broker.port)}
    agent, _ = _client(shipped_broker, "agent")
    for status, code in (("online", 0), ("offline", 1)):
        payload = StatusMsg(ts=dt.datetime.now(dt.UTC), status=status).dump()
        agent.publish(f"{ROOT}/twin/status", payload, qos=1, retain=True).wait_for_publish(5)
        assert _healthcheck("linetwin", **here) == (code, f"{ROOT}/twin/status: {status}\n")
    agent.disconnect()
    agent.loop_stop()
