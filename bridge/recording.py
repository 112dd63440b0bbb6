"""Recorded bus traffic as JSON Lines: `{"t", "topic", "payload", "qos", "retain"}` per message.

A payload that is JSON is stored as its JSON value, anything else as a string (invalid UTF-8
replaced); republishing writes a JSON value back compactly and a string as its text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from bridge.bus import Received
from bridge.errors import RecordingError
from twin.config import field_problem
from twin.files import not_regular


class RecordedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    t: AwareDatetime
    topic: str
    payload: Any
    qos: int = 1
    retain: bool = False

    @classmethod
    def of(cls, message: Received) -> RecordedMessage:
        try:
            payload: Any = json.loads(message.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = message.payload.decode("utf-8", errors="replace")
        t = dt.datetime.fromtimestamp(message.received_at, dt.UTC)
        return cls(t=t, topic=message.topic, payload=payload, qos=message.qos, retain=message.retain)

    def payload_bytes(self) -> bytes:
        if isinstance(self.payload, str):
            return self.payload.encode()
        return json.dumps(self.payload, separators=(",", ":")).encode()

    def received(self) -> Received:
        return Received(self.topic, self.payload_bytes(), self.qos, self.retain, self.t.timestamp())


class Recorder:
    """Appends messages to a JSON Lines file, one flushed line each."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self.count = 0

    def write(self, message: Received) -> RecordedMessage:
        recorded = RecordedMessage.of(message)
        self._file.write(recorded.model_dump_json() + "\n")
        self._file.flush()
        self.count += 1
        return recorded

    def close(self) -> None:
        self._file.close()


class SeqGaps:
    """Messages missing from what was received, told by the `seq` of events, which counts up by
    one per publisher topic: a jump counts the numbers skipped. A repeat (QoS 1 redelivers) counts
    nothing, and `seq` 1 again is a publisher that started over; what was published before the
    first message seen on a topic is not counted (recording may start late)."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.missing = 0
        self.topics: set[str] = set()
        """Topics with a gap."""

    def see(self, topic: str, payload: Any) -> int:
        """Note a received payload (its JSON value); return how many messages it shows missing."""
        seq = payload.get("seq") if isinstance(payload, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            return 0
        last = self.last.get(topic)
        if last is not None and 1 < seq <= last:
            return 0  # a repeat
        self.last[topic] = seq
        skipped = seq - last - 1 if last is not None and seq > last else 0
        if skipped:
            self.missing += skipped
            self.topics.add(topic)
        return skipped


def read_recording(path: Path) -> Iterator[RecordedMessage]:
    """The messages of a recording in file order; a bad line raises `RecordingError` naming it."""
    if (kind := not_regular(path)) is not None:  # a FIFO would block, a device never end
        raise RecordingError(f"{path}: {kind}")
    try:
        lines = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror}") from None
    with lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RecordingError(f"{path}:{number}: not UTF-8 (byte 0x{raw[exc.start]:02x})") from None
            if not line.strip():
                continue
            try:
                yield RecordedMessage.model_validate_json(line)
            except ValidationError as exc:  # the form of every file error (twin.errors.ConfigError)
                err = exc.errors()[0]
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
                value = "" if err["type"] in ("missing", "json_invalid") else f" (value {err.get('input')!r})"
                said = f"{where}: {field_problem(err)}" if where else field_problem(err)
                raise RecordingError(f"{path}:{number}: {said}{value}") from None
