"""The MQTT side of the bus: paho-mqtt 2.x, MQTT v5, QoS 1, a persistent session, a last will,
automatic reconnects and subscriptions renewed on every connect.

Order across reconnects: paho sends a new PUBLISH as soon as the new socket exists, but resends the
messages that were in flight only when the CONNACK arrives, so a message published during a reconnect
can overtake older ones (the receiver then sees a seq gap and rejects the late ones). The bus keeps
QoS 1 messages in its own outbox while it is not connected and releases them only after every older
message is acknowledged by the broker."""

from __future__ import annotations

import hashlib
import logging
import queue
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.bus import Received
from bridge.errors import BridgeError
from bridge.settings import BusSettings

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 5
RELEASE_POLL_S = 0.005
START_POLL_S = 0.05


SERVICE_ROLE = "serve"
"""The role whose client id `LINETWIN_MQTT_CLIENT_ID` sets as it is."""
SESSION_TAKEN_OVER = 142
"""MQTT v5 DISCONNECT reason: another client connected with this client id."""
SHORT_CONNECTION_S = 10.0
TAKEN_OVER_AFTER = 5
"""A broker that closes the connection without a DISCONNECT (Mosquitto 2.0.11 does so when another
client takes the client id) is taken to have given the session away when it closed this many
connections in a row, each after the first within `SHORT_CONNECTION_S` of its start, and every
reconnect in between succeeded at once (a restarting broker refuses one, mostly)."""


def client_id_for(role: str, settings: BusSettings, persistent: bool = True) -> str:
    """The client id of one command.

    A persistent session needs a stable id: `LINETWIN_MQTT_CLIENT_ID` for the service (`serve`),
    `<that id>-<role>` for other persistent roles, else `linetwin-<role>-<root hash>`. A one-shot
    command (clean session) gets a random id, so it can never take over a service's session."""
    if not persistent:
        return f"linetwin-{role}-{secrets.token_hex(4)}"
    if settings.client_id:
        return settings.client_id if role == SERVICE_ROLE else f"{settings.client_id}-{role}"
    digest = hashlib.sha1(settings.root.encode()).hexdigest()[:8]
    return f"linetwin-{role}-{digest}"


def read_retained(settings: BusSettings, role: str, topic: str, timeout_s: float) -> bytes | None:
    """The retained message of `topic`, read on a clean one-shot connection (so no queued message of
    a session comes first), or None if none arrives within `timeout_s`."""
    bus = MqttBus(settings, role, subscriptions=[topic], persistent=False)
    bus.start()
    try:
        return bus.inbox.get(timeout=timeout_s).payload
    except queue.Empty:
        return None
    finally:
        bus.stop()


def read_retained_many(
    settings: BusSettings, role: str, topics: list[str], timeout_s: float
) -> dict[str, bytes]:
    """The retained messages of `topics` (those that have one), read on one clean one-shot
    connection: waits until each has arrived or `timeout_s` passed, once for all of them."""
    bus = MqttBus(settings, role, subscriptions=topics, persistent=False)
    bus.start()
    found: dict[str, bytes] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < len(set(topics)) and (left := deadline - time.monotonic()) > 0:
            try:
                message = bus.inbox.get(timeout=left)
            except queue.Empty:
                break
            bus.ack(message)  # a broker sends a client only so many unacknowledged messages at once
            found[message.topic] = message.payload
    finally:
        bus.stop()
    return found


class MqttBus:
    """One MQTT connection. `inbox` receives every message of `subscriptions`.

    `will` is published by the broker when the connection is lost; `birth` (topic, payload maker) is
    published retained on every connect, so a status that the will set to offline is set back. If the
    broker closes the session because another client took over the client id, the bus does not
    reconnect (two clients would take the session from each other in turn): `taken_over` is set."""

    def __init__(
        self,
        settings: BusSettings,
        role: str,
        subscriptions: list[str] | None = None,
        will: tuple[str, bytes] | None = None,
        persistent: bool = True,
        birth: tuple[str, Callable[[], bytes]] | None = None,
        clean_first: bool = False,
        others_on: list[str] | None = None,
        retain_as_published: bool = False,
    ) -> None:
        """`retain_as_published` (MQTT v5): a message published retained arrives with its retain
        flag also while subscribed (a recorder keeps which messages were retained)."""
        self.settings = settings
        self.subscriptions = list(subscriptions or [])
        self._as_published = retain_as_published
        self.others_on = list(others_on or [])
        """Topics this client publishes to and also reads, without its own messages (MQTT v5 no-local):
        what arrives there was published by another client."""
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.connected = threading.Event()
        self.connects = 0
        self.taken_over = threading.Event()
        self.client_id = client_id_for(role, settings, persistent)
        self._birth = birth
        self._connected_at = 0.0
        self._closed_in_a_row = 0  # connections the broker closed, each after the first soon after it began
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
        self._tls_failure: OSError | None = None  # of the last TLS handshake, until one succeeds
        if settings.tls:  # the CA file, else the system's CAs; the certificate must name the host
            context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
            context.sslsocket_class = _watched_handshakes(self._handshake_done)
            client.tls_set_context(context)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        self._client = client
        self._persistent = persistent
        self._clean_first = clean_first  # a persistent session started anew: nothing queued from before
        self._lock = threading.Lock()
        self._unacked: deque[paho.MQTTMessageInfo] = deque()  # handed to paho, oldest first
        self._outbox: deque[tuple[str, bytes, bool]] = deque()  # held while not connected
        self._open = False  # QoS 1 messages go straight to paho
        self._stopping = threading.Event()
        self._connected_again = threading.Event()
        self._releaser = threading.Thread(target=self._release_loop, name="mqtt-release", daemon=True)

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
            clean_start=paho.MQTT_CLEAN_START_FIRST_ONLY if self._clean_first else not self._persistent,
            properties=props,
        )
        self._releaser.start()
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self.connected.wait(START_POLL_S):  # a certificate the CA does not sign ends it at once
            failure = self._tls_failure
            if isinstance(failure, ssl.SSLCertVerificationError) or time.monotonic() >= deadline:
                self._client.loop_stop()
                raise BridgeError(self._no_connection(timeout_s, failure))

    def _no_connection(self, timeout_s: float, failure: OSError | None) -> str:
        where = f"the MQTT broker at {self.settings.host}:{self.settings.port}"
        if isinstance(failure, ssl.SSLCertVerificationError):
            ca_file = self.settings.ca_file
            ca = f"CA file {ca_file}" if ca_file else "the system's CA certificates"
            problem = str(failure.verify_message).rstrip(".")
            return f"TLS with {where}: certificate verify failed: {problem} (checked with {ca})"
        hint = ""
        if failure is not None:
            hint = f" (TLS handshake: {_tls_reason(failure)}"
            not_tls = not isinstance(failure, ssl.SSLError) or isinstance(failure, ssl.SSLEOFError)
            hint += "; does the broker take TLS on this port?)" if not_tls else ")"
        elif not self.settings.tls and self.settings.port == 8883:
            hint = " (port 8883 is usually TLS, and LINETWIN_MQTT_TLS is off)"
        else:
            hint = self._tcp_failure()
        return f"no connection to {where} within {timeout_s:.0f} s{hint}"

    def _tcp_failure(self) -> str:
        """Why a plain TCP connection to the broker fails now (` (connection refused)`), or ''."""
        try:
            with socket.create_connection((self.settings.host, self.settings.port), timeout=2):
                return ""
        except socket.gaierror as exc:
            return f" (host name not resolved: {exc.strerror})"
        except OSError as exc:
            return f" ({(exc.strerror or str(exc)).lower()})"

    def _handshake_done(self, failure: OSError | None) -> None:
        """Called by every TLS handshake (paho's thread); a new failure after a connection is logged
        (the first connection's failure is `start`'s error)."""
        if failure is not None and self.connects and str(failure) != str(self._tls_failure):
            log.warning("TLS with the MQTT broker failed: %s", _tls_reason(failure))
        self._tls_failure = failure

    def stop(self, last: tuple[str, bytes] | None = None) -> None:
        """Publish `last` (retained, e.g. an offline status), flush and disconnect."""
        if last is not None and self.connected.is_set():
            self.publish(last[0], last[1], retain=True)
            self.flush(timeout_s=5)
        self._stopping.set()
        self._connected_again.set()
        self._client.disconnect()
        self._client.loop_stop()

    # -- traffic -----------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Send a message; QoS 1 messages published while disconnected go out in order on reconnect."""
        if not qos:
            self._client.publish(topic, payload, qos=0, retain=retain)
            return
        with self._lock:
            if self._open:
                self._hand_over(topic, payload, retain)
            else:
                self._outbox.append((topic, payload, retain))

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every QoS 1 message published so far is acknowledged by the broker; False if
        that did not happen within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self._outbox or not self._all_acknowledged():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _hand_over(self, topic: str, payload: bytes, retain: bool) -> None:
        """Give a message to paho (caller holds the lock)."""
        self._forget_acknowledged()
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            # The connection dropped before `on_disconnect` closed the bus: paho keeps the message and
            # sends it after the reconnect, in order, but its rc would make `is_published` raise for good.
            info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        self._unacked.append(info)

    def _all_acknowledged(self) -> bool:
        with self._lock:
            self._forget_acknowledged()
            return not self._unacked

    def _forget_acknowledged(self) -> None:
        """Drop the acknowledged messages from the front (caller holds the lock; they go out in order)."""
        while self._unacked and self._settled(self._unacked[0]):
            self._unacked.popleft()

    @staticmethod
    def _settled(info: paho.MQTTMessageInfo) -> bool:
        """Acknowledged by the broker, or never to be (paho refused it): either way no longer awaited."""
        try:
            return info.is_published()
        except (RuntimeError, ValueError) as exc:
            log.error("MQTT message %d was not sent: %s", info.mid, exc)
            return True

    def _release_loop(self) -> None:
        """After each connect: wait until paho's resent messages are acknowledged, then hand over the
        outbox in order and let new messages pass straight through."""
        while True:
            self._connected_again.wait()
            self._connected_again.clear()
            if self._stopping.is_set():
                return
            if not self._resends_acknowledged():
                continue  # disconnected again: the next connect starts over
            with self._lock:
                if self.connected.is_set():
                    while self._outbox:
                        self._hand_over(*self._outbox.popleft())
                    self._open = True

    def _resends_acknowledged(self) -> bool:
        """Wait while connected until no message handed to paho is unacknowledged."""
        while not self._all_acknowledged():
            if self._stopping.is_set() or not self.connected.is_set():
                return False
            time.sleep(RELEASE_POLL_S)
        return True

    # -- paho callbacks (network thread) -----------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        if self.connects and self._persistent and not flags.session_present:
            log.warning(
                "the broker did not keep this client's session (%s): what was published for it while "
                "it was away is lost; give the broker persistence",
                self.client_id,
            )
        sock = client.socket()
        if isinstance(sock, socket.socket):  # small messages must not wait for Nagle (40 ms per round trip)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for topic in self.subscriptions:
            client.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=self._as_published))
        for topic in self.others_on:
            client.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
        if self._birth is not None:
            self.publish(self._birth[0], self._birth[1](), retain=True)
        self.connects += 1
        self._connected_at = time.monotonic()
        self.connected.set()
        self._connected_again.set()

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        self._closed_in_a_row = 0  # the broker is away, not taken by another client

    def _on_disconnect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        with self._lock:
            was_connected = self.connected.is_set()
            self._open = False
            self.connected.clear()
        short = was_connected and time.monotonic() - self._connected_at < SHORT_CONNECTION_S
        if self._stopping.is_set() or flags.is_disconnect_packet_from_server:
            self._closed_in_a_row = 0
        else:  # the broker closed the socket: count it, and go on counting while connections stay short
            self._closed_in_a_row = self._closed_in_a_row + 1 if short else 1
        taken_over = getattr(reason, "value", None) == SESSION_TAKEN_OVER
        if taken_over or self._closed_in_a_row >= TAKEN_OVER_AFTER:
            log.error(
                "the broker closed this connection (%s): another client connected with client id %r and "
                "took over its session; not reconnecting",
                reason if taken_over else f"{TAKEN_OVER_AFTER} times in a row, each soon after connecting",
                self.client_id,
            )
            self.taken_over.set()
            self._stopping.set()
            self._connected_again.set()
            client.disconnect()  # ends paho's reconnect loop
            return
        log.info("MQTT disconnected (%s); reconnecting", reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self.inbox.put(
            Received(
                message.topic,
                bytes(message.payload),
                message.qos,
                bool(message.retain),
                mid=message.mid,
                connection=self.connects,
            )
        )

    def ack(self, message: Received) -> None:
        if message.qos and message.mid and message.connection == self.connects:
            self._client.ack(message.mid, message.qos)


def _watched_handshakes(report: Callable[[OSError | None], None]) -> type[ssl.SSLSocket]:
    """An SSLSocket class (`SSLContext.sslsocket_class`) that reports how each handshake ended:
    paho retries a failed connection without saying why."""

    class WatchedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except OSError as exc:
                report(exc)
                raise
            report(None)

    return WatchedSocket


def _tls_reason(failure: OSError) -> str:
    if isinstance(failure, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {failure.verify_message}"
    if isinstance(failure, ssl.SSLError) and failure.reason:
        return str(failure.reason)
    return failure.strerror or str(failure) or type(failure).__name__
