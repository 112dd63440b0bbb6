"""The MQTT side of the bus: paho-mqtt 2.x, MQTT v5, QoS 1, a persistent session, a last will,
automatic reconnects and subscriptions renewed on every connect."""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.bus import Received
from bridge.errors import BridgeError
from bridge.settings import BusSettings

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 5


def client_id_for(role: str, settings: BusSettings) -> str:
    """A stable client id per role and topic root (a persistent session needs a stable id)."""
    if settings.client_id:
        return settings.client_id
    digest = hashlib.sha1(settings.root.encode()).hexdigest()[:8]
    return f"linetwin-{role}-{digest}"


class MqttBus:
    """One MQTT connection. `inbox` receives every message of `subscriptions`."""

    def __init__(
        self,
        settings: BusSettings,
        role: str,
        subscriptions: list[str] | None = None,
        will: tuple[str, bytes] | None = None,
        persistent: bool = True,
    ) -> None:
        self.settings = settings
        self.subscriptions = list(subscriptions or [])
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.connected = threading.Event()
        self.connects = 0
        self.client_id = client_id_for(role, settings)
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=True,
        )
        client.manual_ack_set(True)  # acknowledged by `ack` after processing: a crash loses nothing
        client.max_queued_messages_set(0)  # unlimited: nothing is dropped while disconnected
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        self._persistent = persistent
        self._last: paho.MQTTMessageInfo | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> None:
        """Connect (retrying in the background) and wait up to `timeout_s` for the first connection."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._persistent:
            props.SessionExpiryInterval = self.settings.session_expiry_s
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=not self._persistent,
            properties=props,
        )
        self._client.loop_start()
        if not self.connected.wait(timeout_s):
            self._client.loop_stop()
            raise BridgeError(
                f"no connection to the MQTT broker at {self.settings.host}:{self.settings.port} "
                f"within {timeout_s:.0f} s"
            )

    def stop(self, last: tuple[str, bytes] | None = None) -> None:
        """Publish `last` (retained, e.g. an offline status), flush and disconnect."""
        if last is not None and self.connected.is_set():
            info = self._client.publish(last[0], last[1], qos=1, retain=True)
            info.wait_for_publish(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()

    # -- traffic -----------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a message; QoS 1 messages published while disconnected go out on reconnect."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            self._last = info

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until the last QoS 1 message published so far is acknowledged by the broker (they go
        out in order); False if that did not happen within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self._last is not None and not self._last.is_published():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- paho callbacks (network thread) -----------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):  # small messages must not wait for Nagle (40 ms per round trip)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        self.connects += 1
        self.connected.set()

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        log.info("MQTT disconnected (%s); reconnecting", reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self.inbox.put(
            Received(
                message.topic, bytes(message.payload), message.qos, bool(message.retain), mid=message.mid
            )
        )

    def ack(self, message: Received) -> None:
        if message.qos and message.mid:
            self._client.ack(message.mid, message.qos)
