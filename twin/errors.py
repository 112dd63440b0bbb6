"""Exceptions of the twin: one root, one class per kind of failure."""

from __future__ import annotations

from pathlib import Path


class TwinError(Exception):
    """Root of every error the twin raises on purpose."""


class ConfigError(TwinError):
    """A line, week, plan or sequence file is invalid.

    The message names the file, where in it (line number or key), the bad value and why.
    """

    def __init__(self, file: Path | str, where: str, value: object, reason: str) -> None:
        self.file = str(file)
        self.where = where
        self.value = value
        self.reason = reason
        location = f"{self.file}:{where}" if where else self.file
        shown = "" if value is None else f" (value {value!r})"
        super().__init__(f"{location}: {reason}{shown}")


class InvalidDecision(TwinError):
    """A decision that the action mask does not allow; never repaired silently."""


class SimulationError(TwinError):
    """The simulation cannot continue (e.g. the driver gave no decision)."""
