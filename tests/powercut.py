"""`linetwin` with a power cut in the middle of a journal entry, for the tests.

    python tests/powercut.py KIND AFTER serve [serve options]

KIND is `decision` or an inbound branch (`pas`, `fas`, `buffer`, `plan`). When the process is about
to append the first entry of that kind after AFTER entries of its own (AFTER >= 1), the power goes:
the journal keeps what its last sync made durable plus the first half of that entry (everything else
written since that sync is lost, as the page cache is), and the process dies by SIGKILL. Before that
it prints `powercut: KIND entry torn at line L, N bytes kept`.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from agent.cli import main
from agent.live.journal import Journal


def kind_of(line: bytes) -> str:
    item = json.loads(line)
    if "decision" in item:
        return "decision"
    levels = str(item["topic"]).split("/")
    return next(level for level in reversed(levels) if level in ("pas", "fas", "buffer", "plan"))


def run(kind: str, after: int, argv: list[str]) -> int:
    if after < 1:
        raise SystemExit("powercut: AFTER must be at least 1 (the journal is open then)")
    append = Journal._append
    written = 0

    def append_or_cut(journal: Journal, line: bytes) -> None:
        nonlocal written
        written += 1
        if written > after and kind_of(line) == kind:
            os.truncate(journal.path, journal.synced)
            kept = line[: len(line) // 2]
            with journal.path.open("ab") as f:
                f.write(kept)
            lines = journal.path.read_bytes().count(b"\n") + 1
            print(f"powercut: {kind} entry torn at line {lines}, {len(kept)} bytes kept", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        append(journal, line)

    Journal._append = append_or_cut  # type: ignore[method-assign]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
