"""The agent service's journal, a write-ahead log: every inbound message it accepted and every decision
it made, as JSON Lines. A restarted service replays it to the same state.

Durability: write, sync, then acknowledge.
- `message` and `decision` append an entry; `sync` writes the appended entries out and `os.fsync`s them.
  The service acknowledges an inbound message to the broker only after a sync that covers its entry
  (group commit: one sync for every message processed while the inbox was busy, see
  `agent.live.service.GroupCommit`). The service writes it through a `JournalListener`.
  An entry a power cut takes was therefore never acknowledged, and the broker delivers its message again.
- A decision entry holds the dispatch as published and is synced before the dispatch is published: after
  a crash the restarted service either knows the decision (it republishes that same dispatch, same
  `decision_seq`) or no one saw it (it decides again). It never sends another decision under a seq
  that already left.
- A power cut mid-write leaves a torn last entry (no trailing newline, or not a readable entry).
  `repair`, done before the first read or append, cuts it off, syncs and reports it, so nothing is
  appended to a fragment; its message was never acknowledged. An unreadable entry before the last line
  cannot come from a cut: it is an error naming the file and line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from agent.errors import AgentError
from bridge.bus import Received
from bridge.durable import sync_folder
from twin import LineConfig

log = logging.getLogger(__name__)


class JournalError(AgentError):
    """A journal that cannot be read or written (the message names the file)."""


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    index: int
    """Decision point of the week (0 = week start, n = after the n-th stored batch)."""
    decision_seq: int
    type: str
    dispatch: bytes | None = None
    """The dispatch message as published (None in journals written before it was kept)."""


@dataclass(frozen=True, slots=True)
class LineEntry:
    """The line a journal was written for: its first entry (journals written before it have none),
    so a resume under another line file is refused instead of replayed on the wrong line."""

    name: str
    types: tuple[str, ...]
    setup: str
    """A digest of the line's setup effort and PAS settings."""

    @classmethod
    def of(cls, line: LineConfig) -> LineEntry:
        setup = json.dumps([line.setup_effort.model_dump(mode="json"), line.pas.model_dump(mode="json")])
        return cls(line.name, tuple(line.types), hashlib.sha256(setup.encode()).hexdigest()[:16])

    def __str__(self) -> str:
        return f"line {self.name} ({len(self.types)} types, setup {self.setup})"


@dataclass(frozen=True, slots=True)
class TornEntry:
    """A torn last entry that `repair` cut off."""

    path: Path
    line: int
    size: int
    """Bytes cut."""

    def __str__(self) -> str:
        return f"journal {self.path}: cut a torn last entry of {self.size} bytes at line {self.line}"


def _parse(line: bytes) -> Received | DecisionEntry | LineEntry:
    """One entry (raises ValueError, KeyError or TypeError if it is not one)."""
    item = json.loads(line)
    if "line" in item:
        return LineEntry(str(item["line"]), tuple(str(t) for t in item["types"]), str(item["setup"]))
    if "decision" in item:
        dispatch = item.get("dispatch")
        return DecisionEntry(
            int(item["decision"]),
            int(item["decision_seq"]),
            str(item["type"]),
            dispatch.encode() if isinstance(dispatch, str) else None,
        )
    return Received(str(item["topic"]), item["payload"].encode(), received_at=float(item["t"]))


def written_for(path: Path) -> LineEntry | None:
    """The line the journal at `path` was written for (None: none there, or written without it)."""
    try:
        with path.open("rb") as f:
            first = f.readline()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None  # `Journal` names a journal that is no regular file
    except OSError as exc:
        raise JournalError(f"{path}: cannot read the journal ({exc.strerror})") from None
    try:
        entry = _parse(first) if first.endswith(b"\n") else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # `Journal.entries` names an unreadable entry
    return entry if isinstance(entry, LineEntry) else None


def check_line(path: Path, line: LineConfig) -> None:
    """Raise JournalError when the journal at `path` was written for another line (a resume would
    replay its week on this line's types and setup matrix). Reads, touches nothing."""
    written, now = written_for(path), LineEntry.of(line)
    if written is not None and written != now:
        raise JournalError(
            f"{path}: written for {written}, this is {now}: resume it with its own line file, or "
            "start over with --fresh (or another journal)"
        )


class Journal:
    """One root's and week's write-ahead log: `message` and `decision` append, `sync` makes the
    appended entries durable, `entries` reads them back for a restart; `lock` keeps a second
    service off the file and `repair` cuts a torn last entry."""

    def __init__(self, path: Path) -> None:
        """Raises `JournalError` if `path` is there but no regular file (a folder, a device)."""
        if path.exists() and not path.is_file():
            raise JournalError(f"{path}: the journal must be a regular file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{path}: cannot create its folder ({exc.strerror})") from None
        self.path = path
        self._lock: BinaryIO | None = None
        self.cut: TornEntry | None = None
        """What `repair` cut off, if anything."""
        self.synced = 0
        """Bytes of the file known to be on disk (after the last sync)."""
        self._file: BinaryIO | None = None
        self._unsynced = False
        self._repaired = False

    def lock(self) -> None:
        """Hold the journal for this process (an advisory lock on `<journal>.lock`, released when the
        process ends, kill -9 included); raises `JournalError` if another process holds it: two
        services appending to one journal would interleave their entries."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self._lock = lock_path.open("wb")
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalError(f"{self.path}: in use by another running serve") from None
        except OSError as exc:
            raise JournalError(f"{lock_path}: cannot lock the journal ({exc.strerror})") from None

    def repair(self) -> TornEntry | None:
        """Cut a torn last entry off the file (synced, logged, and kept in `cut`); done once."""
        if self._repaired:
            return self.cut
        self._repaired = True
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        start = data.rfind(b"\n", 0, max(len(data) - 1, 0)) + 1  # where the last line begins
        last = data[start:]
        if not last:
            return None
        try:
            torn = not last.endswith(b"\n")
            if not torn:
                _parse(last)
        except (ValueError, KeyError, TypeError, AttributeError):
            torn = True
        if not torn:
            return None
        try:
            with self.path.open("r+b") as f:
                f.truncate(start)
                os.fsync(f.fileno())
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot cut a torn last entry ({exc.strerror})") from None
        self.cut = TornEntry(self.path, data.count(b"\n", 0, start) + 1, len(last))
        log.warning("%s (never acknowledged: the broker delivers it again)", self.cut)
        return self.cut

    def entries(self) -> Iterator[Received | DecisionEntry]:
        """What an earlier run wrote, in order (after `repair`)."""
        self.repair()
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    entry = _parse(line)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise JournalError(f"{self.path}:{number}: unreadable journal entry ({reason})") from None
                if not isinstance(entry, LineEntry):
                    yield entry

    def _append(self, line: bytes) -> None:
        if self._file is None:
            self.repair()
            created = not self.path.exists()
            try:
                self._file = self.path.open("ab")
            except OSError as exc:
                raise JournalError(f"{self.path}: cannot open the journal ({exc.strerror})") from None
            if created:
                try:
                    sync_folder(self.path.parent)
                except OSError as exc:
                    reason = f"cannot sync the journal's folder ({exc.strerror})"
                    raise JournalError(f"{self.path}: {reason}") from None
            self.synced = self._file.tell()
        try:
            self._file.write(line)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write the journal ({exc.strerror})") from None
        self._unsynced = True

    def message(self, message: Received) -> None:
        payload = message.payload.decode("utf-8", errors="replace")
        item = {"topic": message.topic, "payload": payload, "t": message.received_at}
        self._append(json.dumps(item, separators=(",", ":")).encode() + b"\n")

    def line(self, entry: LineEntry) -> None:
        item = {"line": entry.name, "types": list(entry.types), "setup": entry.setup}
        self._append(json.dumps(item, separators=(",", ":")).encode() + b"\n")

    def decision(self, entry: DecisionEntry) -> None:
        item: dict[str, object] = {"decision": entry.index, "decision_seq": entry.decision_seq}
        item["type"] = entry.type
        if entry.dispatch is not None:
            item["dispatch"] = entry.dispatch.decode()
        self._append(json.dumps(item, separators=(",", ":")).encode() + b"\n")

    def sync(self) -> None:
        """Write out every entry appended so far and fsync it (nothing to do if none is new)."""
        if self._file is None or not self._unsynced:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot sync the journal ({exc.strerror})") from None
        self.synced = self._file.tell()
        self._unsynced = False

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
