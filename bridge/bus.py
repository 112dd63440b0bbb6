"""The narrow interface between services and the message bus, and its in-memory stand-in.

A service publishes through `Bus.publish` and reads what arrives from `Bus.inbox` (a queue filled by
the network thread), so its own state is only ever touched by its own thread.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from paho.mqtt.client import topic_matches_sub


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it arrived."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    received_at: float = field(default_factory=time.time)
    """Wall-clock time of arrival (epoch seconds)."""
    mid: int = 0
    """Broker message id, for the acknowledgement after the message is safely processed."""
    connection: int = 0
    """Which connection delivered it. After a reconnect the broker redelivers what was not acknowledged,
    and an old message id may name another message by then, so only the delivering connection acks."""


class Bus(Protocol):
    inbox: queue.Queue[Received]
    connects: int
    """Successful connections so far (a service republishes its retained state after a reconnect)."""
    taken_over: threading.Event
    """Set when another client took over the session (the bus does not reconnect then)."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...

    def ack(self, message: Received) -> None:
        """Acknowledge a QoS 1 message once it is processed (the broker redelivers it otherwise)."""


class MemoryBus:
    """An in-process bus for unit tests: what is published to a subscribed filter lands in `inbox`;
    everything published is kept in `published`, retained messages in `retained`."""

    def __init__(self, subscriptions: list[str] | None = None) -> None:
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.subscriptions = list(subscriptions or [])
        self.published: list[Received] = []
        self.retained: dict[str, bytes] = {}
        self.connects = 1
        self.taken_over = threading.Event()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        message = Received(topic, payload, qos, retain)
        self.published.append(message)
        if retain:
            self.retained[topic] = payload
        if any(topic_matches_sub(s, topic) for s in self.subscriptions):
            self.inbox.put(message)

    def ack(self, message: Received) -> None:
        pass

    def on(self, topic: str) -> list[bytes]:
        """Payloads published on `topic`, oldest first."""
        return [m.payload for m in self.published if m.topic == topic]
