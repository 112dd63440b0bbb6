"""The line's event vocabulary, shared by the emulator, the live mirror, the bus and the metrics.

Times are working seconds of the week (`at_s`, see `twin.calendar`); the bus turns them into
calendar timestamps and back. Stations are named as in `line.toml` (`PAS` for the pre-assembly
station), types by their names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchStarted:
    """The PAS began a batch."""

    at_s: int
    type: str
    quantity: int


@dataclass(frozen=True, slots=True)
class BatchStored:
    """A finished batch entered the buffer as a whole (a decision point follows)."""

    at_s: int
    type: str
    quantity: int


@dataclass(frozen=True, slots=True)
class UnitStarted:
    """A FAS took one pre-product from the buffer and began a unit."""

    at_s: int
    station: str
    type: str


@dataclass(frozen=True, slots=True)
class UnitFinished:
    """A FAS finished a unit."""

    at_s: int
    station: str
    type: str


@dataclass(frozen=True, slots=True)
class StationDown:
    """A station (a FAS or `PAS`) stopped: maintenance or a breakdown."""

    at_s: int
    station: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StationUp:
    """A station works again."""

    at_s: int
    station: str


@dataclass(frozen=True, slots=True)
class StockCounted:
    """An authoritative count of buffer stock per type (types not named keep their count)."""

    at_s: int
    stock: dict[str, int]


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    station: str
    position: int
    type: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlanRevised:
    """A new revision of the week's plan: every station's orders from position 1."""

    at_s: int
    week_start: str
    revision: int
    orders: tuple[PlannedOrder, ...]


LineEvent = (
    BatchStarted
    | BatchStored
    | UnitStarted
    | UnitFinished
    | StationDown
    | StationUp
    | StockCounted
    | PlanRevised
)
"""Anything the line reports."""
