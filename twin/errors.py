"""Exceptions of the twin: one root, one class per kind of failure."""

from __future__ import annotations

from pathlib import Path


class TwinError(Exception):
    """Root of every error the twin raises on purpose."""


class ConfigError(TwinError):
    """A line, week, plan, sequence or settings file is invalid.

    One form for every file error, the `file:line:` of compilers:
    `<file>:<line>: <key>: <reason> (value <value>)`; the line, key and value are left out where
    there is none (a missing file has no line; a whole CSV row has no key).
    """

    def __init__(
        self, file: Path | str, key: str, value: object, reason: str, line: int | None = None
    ) -> None:
        self.file = str(file)
        self.key = key
        self.line = line
        self.value = value
        self.reason = reason
        location = self.file if line is None else f"{self.file}:{line}"
        named = f"{key}: " if key else ""
        shown = "" if value is None else f" (value {value!r})"
        super().__init__(f"{location}: {named}{reason}{shown}")


class EntryError(ValueError):
    """A validator's ValueError about one entry of the value it checks: `at` is the entry's path
    inside that value (e.g. `(2,)`: its third entry; a model validator: from the model's root), so
    the file error names that entry, its line and its value, not the whole list (`shown=False`: the
    value is too large to show, e.g. a whole matrix)."""

    def __init__(self, at: tuple[str | int, ...], reason: str, shown: bool = True) -> None:
        super().__init__(reason)
        self.at = at
        self.shown = shown


class InvalidDecision(TwinError):
    """A decision that the action mask does not allow; never repaired silently."""


class SimulationError(TwinError):
    """The simulation cannot continue (e.g. the driver gave no decision)."""
