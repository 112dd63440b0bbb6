"""The seam between simulation and decision: what the line asks at a decision point, and the answer.

Every driver (a rule, the gym env, the live mirror's agent service) sees the same request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from twin.scenario import Scenario


@dataclass(frozen=True, slots=True)
class FasPosition:
    """Where one FAS stands in its plan at the decision point."""

    order: int
    """Index of its current order (len(plan) when it is done)."""
    taken: int
    """Units of that order it has taken from the buffer."""
    next_take_s: int | None
    """Working second of its next take at nominal pace (None when done)."""
    waiting: bool
    """True while it starves (waits for its type)."""


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """A decision point: the PAS is free and asks which type to build next."""

    index: int
    """Number of this decision in the run (0-based)."""
    time_s: int
    """Working seconds since the week start."""
    valid: tuple[int, ...]
    """Type indices whose remaining requirement is positive: the action mask."""
    stock: tuple[int, ...]
    """Buffer stock per type."""
    remaining: tuple[int, ...]
    """Units per type the FAS still have to take, minus buffer stock (PAS holds nothing now)."""
    last_type: int | None
    """Type the PAS is set up for (None before the first batch without initial setup)."""
    batch_size: int
    fas: tuple[FasPosition, ...]
    scenario: Scenario

    @property
    def mask(self) -> tuple[bool, ...]:
        valid = set(self.valid)
        return tuple(k in valid for k in range(len(self.stock)))


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: the type of the next batch and its size (default: the run's batch size)."""

    type: int
    quantity: int | None = None


class Decider(Protocol):
    """Anything that answers decision requests (a policy)."""

    def __call__(self, request: DecisionRequest) -> Decision: ...
