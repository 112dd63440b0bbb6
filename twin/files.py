"""What kind of file a path names, before it is opened: a FIFO blocks its reader until a writer
comes (`--line /some/fifo` hung), a device never ends (`--line /dev/zero` ran out of memory).
Every reader of the project's files asks `not_regular` first."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular(path: Path | str) -> str | None:
    """`not a regular file (a FIFO)` when `path` names something other than a regular file (links
    followed), else None; a path that cannot be looked at is None too: opening it says why."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind})"
