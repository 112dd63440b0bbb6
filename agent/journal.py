"""The agent service's journal: every inbound message it read and every decision it published,
appended as JSON Lines and flushed at once. A restarted service replays it to the same state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agent.errors import AgentError
from bridge.bus import Received


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    index: int
    """Decision point of the week (0 = week start, n = after the n-th stored batch)."""
    decision_seq: int
    type: str


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] | None = None

    def entries(self) -> Iterator[Received | DecisionEntry]:
        """What an earlier run wrote, in order."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                try:
                    item = json.loads(line)
                    if "decision" in item:
                        yield DecisionEntry(item["decision"], item["decision_seq"], item["type"])
                    else:
                        yield Received(item["topic"], item["payload"].encode(), received_at=item["t"])
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    if line.endswith("\n"):
                        raise AgentError(f"{self.path}:{number}: unreadable journal entry ({exc})") from None
                    return  # a last line cut short by a crash: it was never acted upon

    def _write(self, item: dict[str, object]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(item, separators=(",", ":")) + "\n")
        self._file.flush()

    def message(self, message: Received) -> None:
        payload = message.payload.decode("utf-8", errors="replace")
        self._write({"topic": message.topic, "payload": payload, "t": message.received_at})

    def decision(self, entry: DecisionEntry) -> None:
        self._write({"decision": entry.index, "decision_seq": entry.decision_seq, "type": entry.type})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
