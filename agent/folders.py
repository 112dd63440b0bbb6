"""Output folders: every run creates its folder here, or raises one error saying why it cannot."""

from __future__ import annotations

from pathlib import Path

from agent.errors import UsageError


def make_folder(out: Path) -> None:
    """Create `out` and its parents. Raises UsageError naming the parameter `out` (the CLI says
    --out) with the system's reason: a file in the way, no permission, no such place."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder: {exc.strerror}", "out", out) from None
