"""Delivers line protocol to InfluxDB (`/api/v2/write`: InfluxDB 1.8+, 2.x, 3.x, VictoriaMetrics)
in batches from a background thread.

While the server is unreachable or answers 429/5xx, the batch is retried with backoff and new
points wait in a bounded queue; when the queue is full the oldest points are dropped and counted
(`stats.dropped`, logged, and written as `linetwin_writer` once the server is back). A batch the
server refuses as bad data (other 4xx) is counted as rejected and logged, never retried forever."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bridge.metrics import WRITER, line_protocol
from bridge.settings import load_settings

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.5
RETRY_MAX_S = 10.0


def _http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. http://localhost:8086")
    return url


class InfluxSettings(BaseSettings):
    """Where the metrics go; from `LINETWIN_INFLUX_*` environment variables or overrides."""

    model_config = SettingsConfigDict(
        env_prefix="LINETWIN_INFLUX_", extra="forbid", frozen=True, env_ignore_empty=True
    )

    url: Annotated[str, AfterValidator(_http_url)] = Field("http://localhost:8086", description="server URL")
    token: SecretStr | None = Field(None, description="API token (InfluxDB 1.8: user:password)")
    org: str = Field("linetwin", description="organisation (ignored by InfluxDB 1.8 and VictoriaMetrics)")
    bucket: str = Field("linetwin", description="bucket (InfluxDB 1.8: database/retention-policy)")
    batch_size: int = Field(5000, ge=1, description="points per write request")
    flush_interval_s: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="longest wait before a partial batch goes out"
    )
    queue_points: int = Field(1_000_000, ge=1, description="points kept while the server is away")
    timeout_s: float = Field(10.0, ge=0.001, allow_inf_nan=False, description="per request")


def load_influx_settings(**overrides: object) -> InfluxSettings:
    """Settings from the environment, with non-None `overrides` on top; a mistake is a BridgeError
    naming the variable, its value and the rule."""
    return load_settings(InfluxSettings, overrides)


@dataclass(slots=True)
class WriterStats:
    written: int = 0
    dropped: int = 0
    rejected: int = 0
    retries: int = 0


class InfluxWriter:
    """`write(lines)` queues; a background thread delivers. `close()` flushes what it can."""

    def __init__(self, settings: InfluxSettings, line: str = "") -> None:
        self.settings = settings
        self.line = line
        self.stats = WriterStats()
        self._queue: deque[str] = deque()
        self._batch: list[str] = []  # being delivered
        self._cond = threading.Condition()
        self._flushing = 0
        self._closing = False
        token = settings.token.get_secret_value() if settings.token else ""
        self._client = InfluxDBClient(
            url=settings.url, token=token, org=settings.org, timeout=int(settings.timeout_s * 1000)
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._thread = threading.Thread(target=self._deliver_loop, name="influx-writer", daemon=True)
        self._thread.start()

    # -- producer side -----------------------------------------------------------------------
    def write(self, lines: Iterable[str]) -> None:
        with self._cond:
            self._queue.extend(lines)
            overflow = len(self._queue) - self.settings.queue_points
            if overflow > 0:
                for _ in range(overflow):
                    self._queue.popleft()
                if self.stats.dropped == 0:
                    log.warning(
                        "metrics queue full (%d points): dropping the oldest", self.settings.queue_points
                    )
                self.stats.dropped += overflow
            if len(self._queue) >= self.settings.batch_size:
                self._cond.notify_all()

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._batch)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything written so far is delivered (or refused); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.1))
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout_s: float = 30.0) -> bool:
        """Flush for up to `timeout_s` and stop; False if points were left undelivered (logged)."""
        delivered = self.flush(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=self.settings.timeout_s + 5)
        self._client.close()  # type: ignore[no-untyped-call]
        if not delivered:
            log.error("metrics writer closed with %d points undelivered", self.queued)
        return delivered

    # -- delivery ----------------------------------------------------------------------------
    def _deliver_loop(self) -> None:
        while True:
            with self._cond:
                waited = time.monotonic()
                while not self._closing and not self._due(waited):
                    self._cond.wait(0.05)
                if self._closing:
                    return
                size = min(len(self._queue), self.settings.batch_size)
                self._batch = [self._queue.popleft() for _ in range(size)]
            self._send()

    def _due(self, waited_since: float) -> bool:
        """A batch goes out when one is full, when someone flushes, or after the flush interval."""
        if not self._queue:
            return False
        full = len(self._queue) >= self.settings.batch_size
        late = time.monotonic() - waited_since >= self.settings.flush_interval_s
        return full or late or self._flushing > 0

    def _send(self) -> None:
        """Deliver `_batch`, retrying while the server is away; then clear it."""
        delay = RETRY_MIN_S
        records = [*self._batch, self._report()]
        while True:
            try:
                self._api.write(bucket=self.settings.bucket, org=self.settings.org, record=records)
                outcome = "written"
                break
            except ApiException as exc:
                if exc.status is not None and exc.status != 429 and exc.status < 500:
                    log.error("metrics refused by the server (HTTP %s): %s; first point: %s",
                              exc.status, (exc.body or "")[:300], records[0][:200])  # fmt: skip
                    outcome = "rejected"
                    break
                reason = f"HTTP {exc.status}"
            except Exception as exc:  # refused, reset, timed out: the server is away
                reason = type(exc).__name__
            if self.stats.retries == 0 or delay >= RETRY_MAX_S:
                log.warning("metrics server unavailable (%s); %d points wait", reason, self.queued)
            with self._cond:
                if self._closing:
                    return
                self.stats.retries += 1
                self._cond.wait(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        with self._cond:
            if outcome == "written":
                self.stats.written += len(self._batch)
            else:
                self.stats.rejected += len(self._batch)
            self._batch = []
            self._cond.notify_all()

    def _report(self) -> str:
        """The writer's own point (wall-clock time), sent with every batch."""
        s = self.stats
        fields = {
            "queued": self.queued,
            "written": s.written,
            "dropped": s.dropped,
            "rejected": s.rejected,
            "retries": s.retries,
        }
        return line_protocol(WRITER, {"line": self.line}, fields, time.time_ns())
