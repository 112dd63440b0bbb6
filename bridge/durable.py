"""Durable files: what `os.fsync` of a file does not cover."""

from __future__ import annotations

import os
from pathlib import Path


def sync_folder(folder: Path) -> None:
    """Make a new or renamed file's directory entry durable (the file's own fsync does not cover it)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["sync_folder"]
