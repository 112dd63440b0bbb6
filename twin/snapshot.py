"""A line's state at one instant of the week, from which the model can simulate on (the live
mirror's forecasts and decisions start from it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchInProgress:
    """The PAS batch not yet in the buffer."""

    type: int
    quantity: int
    remaining_s: int
    """Working seconds of production left (0: finished, waiting for room in the buffer)."""


@dataclass(frozen=True, slots=True)
class FasProgress:
    """Where one FAS stands: units of its plan taken so far, and the work left on the unit in hand."""

    consumed: int
    remaining_s: int = 0


@dataclass(frozen=True, slots=True)
class LineSnapshot:
    """State of the line at working second `time_s`, after everything that happened at that instant
    up to (not including) a PAS decision. Planned downtime is taken from the scenario."""

    time_s: int
    stock: tuple[int, ...]
    last_type: int | None
    batch: BatchInProgress | None
    fas: tuple[FasProgress, ...]
    decisions: int = 0
