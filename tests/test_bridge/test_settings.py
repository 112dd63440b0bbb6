"""Settings from the environment: every mistake ends the real CLI with exit 2 and one line naming the
variable, its value and the rule; TLS against a real Mosquitto with a throwaway CA: a working
connection, and failures that name the certificate problem and the broker."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from broker import Mosquitto
from paths import REPO

from bridge.errors import BridgeError
from bridge.influx import load_influx_settings
from bridge.messages import StatusMsg
from bridge.mqtt import MqttBus
from bridge.settings import load_bus_settings
from bridge.topics import Topics

ROOT = "linetwin/demo/line1"
PREFIXES = ("LINETWIN_MQTT_", "LINETWIN_INFLUX_")


def _env(**variables: str) -> dict[str, str]:
    """This process's environment without any linetwin setting, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)}
    return {**env, **variables}


def _linetwin(
    args: list[str], env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def _one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("linetwin: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def _no_settings_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process loaders see only what a test sets."""
    for name in os.environ:
        if name.upper().startswith(PREFIXES):
            monkeypatch.delenv(name)


# -- through the real CLI: `linetwin status` (the bus), `linetwin simulate --influx` (InfluxDB) ----------
STATUS = ["status"]
SIMULATE = ["simulate", "--policy", "first-fit", "--out", "{tmp}/run", "--influx"]
MISTAKES = [  # the issue's examples, then the checks across fields and names
    (STATUS, {"LINETWIN_MQTT_TLS": "true", "LINETWIN_MQTT_CA_FILE": "{tmp}/missing.pem"},
     ["LINETWIN_MQTT_CA_FILE='{tmp}/missing.pem': must be a readable PEM file", "No such file"]),
    (STATUS, {"LINETWIN_MQTT_TLS": "true", "LINETWIN_MQTT_CA_FILE": "{tmp}/notes.txt"},
     ["LINETWIN_MQTT_CA_FILE='{tmp}/notes.txt': must be a PEM file of CA certificates"]),
    (STATUS, {"LINETWIN_MQTT_TLS": "maybe"}, ["LINETWIN_MQTT_TLS='maybe': must be true or false"]),
    (STATUS, {"LINETWIN_MQTT_KEEPALIVE_S": "1"}, ["LINETWIN_MQTT_KEEPALIVE_S='1': must be at least 5"]),
    (STATUS, {"LINETWIN_MQTT_PORT": "abc"}, ["LINETWIN_MQTT_PORT='abc': must be a whole number"]),
    (SIMULATE, {"LINETWIN_INFLUX_BATCH_SIZE": "0"}, ["LINETWIN_INFLUX_BATCH_SIZE='0': must be at least 1"]),
    (STATUS, {"LINETWIN_MQTT_CA_FILE": "{tmp}/ca.pem"}, ["_CA_FILE is set", "LINETWIN_MQTT_TLS"]),
    (STATUS, {"LINETWIN_MQTT_PASSWORD": "s3cret"}, ["_PASSWORD is set without LINETWIN_MQTT_USERNAME"]),
    (STATUS, {"LINETWIN_MQTT_KEEPALIVE": "60"}, ["LINETWIN_MQTT_KEEPALIVE: not a setting", "_KEEPALIVE_S"]),
    (SIMULATE, {"LINETWIN_INFLUX_DATABASE": "line1"}, ["LINETWIN_INFLUX_DATABASE: not a setting", "_BUCKET"]),
]  # fmt: skip
# Every field with a rule, wrong at once: one line names them all. (Client id, user name, password,
# token, organisation and bucket take any text; an empty variable counts as unset.)
EVERY_BUS_FIELD = {
    "LINETWIN_MQTT_HOST": "mqtt://broker:1883",
    "LINETWIN_MQTT_PORT": "70000",
    "LINETWIN_MQTT_ROOT": "line1/#",
    "LINETWIN_MQTT_TLS": "maybe",
    "LINETWIN_MQTT_CA_FILE": "{tmp}",
    "LINETWIN_MQTT_KEEPALIVE_S": "1",
    "LINETWIN_MQTT_SESSION_EXPIRY_S": "a day",
}
EVERY_INFLUX_FIELD = {
    "LINETWIN_INFLUX_URL": "localhost:8086",
    "LINETWIN_INFLUX_BATCH_SIZE": "0",
    "LINETWIN_INFLUX_FLUSH_INTERVAL_S": "inf",
    "LINETWIN_INFLUX_QUEUE_POINTS": "1e6",
    "LINETWIN_INFLUX_TIMEOUT_S": "0",
}
MISTAKES += [
    (command, fields, [f"{name}={value!r}: " for name, value in fields.items()])
    for command, fields in ((STATUS, EVERY_BUS_FIELD), (SIMULATE, EVERY_INFLUX_FIELD))
]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder with a short path: an error shows a value of up to 80 characters whole, and
    tmp_path can be longer (pytest-xdist adds a `popen-gwN/` level)."""
    folder = Path(tempfile.mkdtemp(prefix="lt-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize(("command", "variables", "words"), MISTAKES, ids=lambda v: str(v))
def test_a_setting_mistake_is_one_line_and_exit_2(
    short_tmp: Path, command: list[str], variables: dict[str, str], words: list[str]
) -> None:
    tmp_path = short_tmp
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    env = _env(**{k: v.format(tmp=tmp_path) for k, v in variables.items()})
    args = [a.format(tmp=tmp_path) for a in command]
    line = _one_error_line(_linetwin(args, env), *(w.format(tmp=tmp_path) for w in words))
    assert "s3cret" not in line  # a password is never repeated


def test_a_command_line_override_is_named_as_its_flag() -> None:
    _one_error_line(_linetwin(["status", "--port", "0"], _env()), "--port=0: must be at least 1")


# -- every field's rule, in-process ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("LINETWIN_MQTT_HOST", "broker 1", "host name"),
        ("LINETWIN_MQTT_HOST", "broker:1883", "host name"),
        ("LINETWIN_MQTT_PORT", "0", "at least 1"),
        ("LINETWIN_MQTT_ROOT", "/line1", "outer '/'"),
        ("LINETWIN_MQTT_ROOT", "$SYS/line1", "leading '$'"),
        ("LINETWIN_MQTT_ROOT", "acme/line\t1", "control characters"),
        ("LINETWIN_MQTT_TLS", "2", "true or false"),
        ("LINETWIN_MQTT_KEEPALIVE_S", "65536", "at most 65535"),
        ("LINETWIN_MQTT_KEEPALIVE_S", "30.5", "whole number"),
        ("LINETWIN_MQTT_SESSION_EXPIRY_S", "-1", "at least 0"),
        ("LINETWIN_MQTT_SESSION_EXPIRY_S", str(2**32), "at most 4294967295"),
        ("LINETWIN_INFLUX_URL", "ftp://tsdb:8086", "http://"),
        ("LINETWIN_INFLUX_URL", "http://tsdb:port", "http://"),
        ("LINETWIN_INFLUX_BATCH_SIZE", "many", "whole number"),
        ("LINETWIN_INFLUX_FLUSH_INTERVAL_S", "0", "more than 0"),
        ("LINETWIN_INFLUX_FLUSH_INTERVAL_S", "nan", "finite"),
        ("LINETWIN_INFLUX_QUEUE_POINTS", "0", "at least 1"),
        ("LINETWIN_INFLUX_TIMEOUT_S", "inf", "finite"),
        ("LINETWIN_INFLUX_TIMEOUT_S", "ten", "a number"),
    ],
)
def test_every_field_states_its_rule(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, rule: str
) -> None:
    monkeypatch.setenv(name, value)
    load = load_bus_settings if name.startswith("LINETWIN_MQTT_") else load_influx_settings
    with pytest.raises(BridgeError) as caught:
        load()
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r}: ") and rule in message and "\n" not in message


def test_good_settings_load_and_an_empty_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    for name, value in {
        "LINETWIN_MQTT_HOST": "::1",
        "LINETWIN_MQTT_PORT": "8883",
        "LINETWIN_MQTT_ROOT": "acme/plant1/assembly/line1",
        "LINETWIN_MQTT_TLS": "yes",
        "LINETWIN_MQTT_CA_FILE": str(tmp_path / "ca.pem"),
        "LINETWIN_MQTT_USERNAME": "agent",
        "LINETWIN_MQTT_PASSWORD": "",
        "LINETWIN_INFLUX_URL": "https://tsdb.example:8086/",
        "LINETWIN_INFLUX_TIMEOUT_S": "2.5",
        "LINETWIN_INFLUX_BATCH_SIZE": "",
    }.items():
        monkeypatch.setenv(name, value)
    bus, influx = load_bus_settings(), load_influx_settings()
    assert (bus.host, bus.port, bus.tls, bus.ca_file, bus.password) == (
        "::1",
        8883,
        True,
        tmp_path / "ca.pem",
        None,
    )
    assert (influx.url, influx.timeout_s, influx.batch_size) == ("https://tsdb.example:8086/", 2.5, 5000)


# -- TLS against a real Mosquitto --------------------------------------------------------------------
class TlsBroker(Mosquitto):
    """The tests' broker with a TLS listener whose certificate a throwaway CA issued for 127.0.0.1."""

    def __init__(self, folder: Path, ca: trustme.CA) -> None:
        super().__init__(folder)
        server = ca.issue_cert("127.0.0.1")
        server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
        server.private_key_pem.write_to_path(str(folder / "server.key"))
        self.config.write_text(
            self.config.read_text() + f"certfile {folder}/server.pem\nkeyfile {folder}/server.key\n"
        )


@pytest.fixture
def tls_ca(tmp_path: Path) -> trustme.CA:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    return ca


@pytest.fixture
def tls_broker(tmp_path: Path, tls_ca: trustme.CA) -> Iterator[TlsBroker]:
    broker = TlsBroker(tmp_path / "mosquitto", tls_ca)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _tls(ca_file: Path) -> dict[str, str]:
    return _env(LINETWIN_MQTT_TLS="true", LINETWIN_MQTT_CA_FILE=str(ca_file))


@pytest.mark.mqtt
def test_tls_works_with_the_ca_that_signed_the_broker(tls_broker: TlsBroker, tmp_path: Path) -> None:
    settings = load_bus_settings(
        host="127.0.0.1", port=tls_broker.port, tls=True, ca_file=tmp_path / "ca.pem"
    )
    topics = Topics(ROOT)
    bus = MqttBus(settings, "serve", persistent=False)
    bus.start(timeout_s=5)
    bus.publish(topics.status, StatusMsg(ts=dt.datetime.now(dt.UTC), status="online").dump(), retain=True)
    assert bus.flush(timeout_s=5)
    bus.stop()
    done = _linetwin(
        ["status", "--host", "127.0.0.1", "--port", str(tls_broker.port)], _tls(tmp_path / "ca.pem")
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{topics.status}: online\n", "")


@pytest.mark.mqtt
def test_a_ca_that_did_not_sign_the_broker_certificate_is_named(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    done = _linetwin(  # at once, not after the 10 s the first connection may take
        ["status", "--host", "127.0.0.1", "--port", str(tls_broker.port)], _tls(tmp_path / "other-ca.pem"), 8
    )
    _one_error_line(
        done,
        f"the MQTT broker at 127.0.0.1:{tls_broker.port}",
        "certificate verify failed: unable to get local issuer certificate",
        f"CA file {tmp_path / 'other-ca.pem'}",
    )


@pytest.mark.mqtt
def test_a_certificate_for_another_host_is_named(tls_broker: TlsBroker, tmp_path: Path) -> None:
    done = _linetwin(
        ["status", "--host", "localhost", "--port", str(tls_broker.port)], _tls(tmp_path / "ca.pem"), 8
    )
    _one_error_line(
        done,
        f"the MQTT broker at localhost:{tls_broker.port}",
        "certificate verify failed: Hostname mismatch, certificate is not valid for 'localhost'",
    )


@pytest.mark.mqtt
def test_tls_to_a_plain_listener_says_so(mosquitto: Mosquitto, tls_ca: trustme.CA, tmp_path: Path) -> None:
    settings = load_bus_settings(host="127.0.0.1", port=mosquitto.port, tls=True, ca_file=tmp_path / "ca.pem")
    bus = MqttBus(settings, "status", persistent=False)
    with pytest.raises(BridgeError) as caught:
        bus.start(timeout_s=1)
    message = str(caught.value)  # the broker resets the connection, or closes it (EOF)
    assert message.startswith(
        f"no connection to the MQTT broker at 127.0.0.1:{mosquitto.port} within 1 s (TLS"
    )
    assert message.endswith("; does the broker take TLS on this port?)")
