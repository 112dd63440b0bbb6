"""Exceptions of the agent package: one root, one class per kind of failure."""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the agent package raises on purpose."""


class UsageError(AgentError):
    """A command or call that cannot be carried out as given (the message says why)."""


class ModelError(AgentError):
    """A model file that is missing, unreadable or does not fit the line."""
