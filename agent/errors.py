"""Exceptions of the agent package: one root, one class per kind of failure."""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class AgentError(Exception):
    """Root of every error the agent package raises on purpose."""


class UsageError(AgentError):
    """A command or call that cannot be carried out as given.

    `param` names the parameter at fault (`time_limit`, `out`), `value` what it was given: the
    message reads `param value: reason`, and the command line names the flag instead (`--time-limit`)."""

    def __init__(self, reason: str, param: str | None = None, value: object = None) -> None:
        self.reason = reason
        self.param = param
        self.value = value
        super().__init__(self.said_as(param))

    def said_as(self, name: str | None) -> str:
        """The message with the parameter called `name` (a flag on the command line)."""
        if name is None:
            return self.reason
        return f"{name}: {self.reason}" if self.value is None else f"{name} {self.value}: {self.reason}"


class ModelError(AgentError):
    """A model file that is missing, unreadable or does not fit the line."""


def suggest(typed: str, known: Sequence[str]) -> str:
    """'; did you mean X?' for the closest of `known` (one it abbreviates first), or ''."""
    longer = [name for name in known if name.startswith(typed)] if len(typed) > 3 else []
    close = longer[:1] or difflib.get_close_matches(typed, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
