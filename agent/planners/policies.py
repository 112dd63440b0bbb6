"""Planners behind one interface: each answers the twin's decision requests.

Rules: `random` (seeded), `first-fit`, `earliest-runout`, `setup-aware` (earliest-runout that
prefers cheap changeovers among the urgent types), `slack-greedy` (stays on a type while the
deadlines allow, then the cheapest changeover that keeps them; the most urgent type when none
can) and `sequence` (replays a `sequence.csv`).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from twin import ConfigError, Decision, DecisionRequest, EnvSettings, Forecast, Observer, SequenceEntry
from twin.config import sequence_line


class Policy(ABC):
    """A planner: `decide` gets every decision request of a run, `reset` starts a new run."""

    name: str = "policy"

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - stateless policies need nothing
        """Prepare for a new run (reseed random streams, rewind sequences)."""

    @abstractmethod
    def decide(self, request: DecisionRequest) -> Decision: ...

    def __call__(self, request: DecisionRequest) -> Decision:
        return self.decide(request)


class RandomPolicy(Policy):
    """A uniformly random valid type; the same seed gives the same plan."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self._rng = random.Random(self.seed)

    def decide(self, request: DecisionRequest) -> Decision:
        return Decision(self._rng.choice(request.valid))


class FirstFitPolicy(Policy):
    """The first valid type in the line's type order."""

    name = "first-fit"

    def decide(self, request: DecisionRequest) -> Decision:
        return Decision(request.valid[0])

    def preference(self, request: DecisionRequest) -> tuple[int, ...]:
        """The valid types best first (searches try them in this order): type order."""
        return request.valid


def _runouts(request: DecisionRequest) -> dict[int, float]:
    runouts = Forecast(request).runouts(request.valid)
    return {k: float("inf") if r is None else float(r) for k, r in zip(request.valid, runouts, strict=True)}


class EarliestRunoutPolicy(Policy):
    """The valid type whose buffer stock runs out first at planned consumption (ties: type order)."""

    name = "earliest-runout"

    def decide(self, request: DecisionRequest) -> Decision:
        runout = _runouts(request)
        return Decision(min(request.valid, key=lambda k: (runout[k], k)))

    def preference(self, request: DecisionRequest) -> tuple[int, ...]:
        """The valid types best first (searches try them in this order): earliest run-out first."""
        runout = _runouts(request)
        return tuple(sorted(request.valid, key=lambda k: (runout[k], k)))


class SetupAwarePolicy(Policy):
    """Earliest-runout that changes over cheaply: among the valid types that run out within
    `lookahead_batches` batch durations of the most urgent one, the one with the least setup
    effort from the current type (ties: earlier run-out)."""

    name = "setup-aware"

    def __init__(self, lookahead_batches: float = 2.0) -> None:
        self.lookahead_batches = lookahead_batches

    def decide(self, request: DecisionRequest) -> Decision:
        runout = _runouts(request)
        sc = request.scenario
        batch_s = request.batch_size * sc.line.pas.unit_time_s
        first = min(runout.values())
        window = first + self.lookahead_batches * batch_s
        candidates = [k for k in request.valid if runout[k] <= window] or list(request.valid)
        last = request.last_type

        def cost(k: int) -> tuple[float, float, int]:
            effort = 0.0 if last is None or last == k else sc.setup_effort[last][k]
            return (effort, runout[k], k)

        return Decision(min(candidates, key=cost))

    def preference(self, request: DecisionRequest) -> tuple[int, ...]:
        """The valid types best first (searches try them in this order): the urgent ones by
        setup effort (the first is `decide`'s), then the others by run-out."""
        runout = _runouts(request)
        sc = request.scenario
        window = min(runout.values()) + self.lookahead_batches * request.batch_size * sc.line.pas.unit_time_s
        last = request.last_type

        def cost(k: int) -> tuple[bool, float, float, int]:
            urgent = runout[k] <= window
            effort = 0.0 if last is None or last == k else sc.setup_effort[last][k]
            return (not urgent, effort if urgent else 0.0, runout[k], k)

        return tuple(sorted(request.valid, key=cost))


class SlackGreedyPolicy(Policy):
    """Stays on the current type while every zero-idle deadline can still be met, then changes
    over to the cheapest type that keeps them all (ties: the earlier deadline); when none can
    (PAS setup time or downtime, holidays, too few FAS for the types), the most urgent type
    (earliest deadline, then run-out): the first slot of the `compact` observation
    (`twin.slack`). Deadlines are checked `horizon_s` ahead, or as far as a full buffer lasts at
    the FAS's pace when that is longer (stock built for takes beyond the horizon would fill the
    buffer unchecked). Scales to plant-size lines, where the exact planners do not."""

    name = "slack-greedy"

    def __init__(self, horizon_s: int = 14_400) -> None:
        self.horizon_s = horizon_s
        self.settings = EnvSettings(observation="compact", mask="deadlines", slack_horizon_s=horizon_s)
        self._observer: Observer | None = None

    def _observer_of(self, request: DecisionRequest) -> Observer:
        observer = self._observer
        if observer is None or observer.scenario is not request.scenario:
            sc = request.scenario
            full = sc.line.buffer.capacity / sum(1 / unit for unit in sc.fas_unit_s)
            horizon = max(self.horizon_s, math.ceil(full))
            settings = self.settings.model_copy(update={"slack_horizon_s": horizon})
            observer = self._observer = Observer(sc, settings)
        return observer

    def decide(self, request: DecisionRequest) -> Decision:
        slots = self._observer_of(request).assess(request).slots
        assert slots  # a decision request has a valid type
        return Decision(slots[0])

    def preference(self, request: DecisionRequest) -> tuple[int, ...]:
        """The valid types best first (searches try them in this order): the slots, then the
        other valid types in type order."""
        slots = self._observer_of(request).assess(request).slots or ()
        return (*slots, *(k for k in request.valid if k not in slots))


class SequencePolicy(Policy):
    """Replays a PAS sequence; an entry that the action mask forbids, or running out of entries
    while types are still needed, is an error naming the file and position."""

    name = "sequence"

    def __init__(
        self, entries: list[SequenceEntry], types: list[str], source: Path | str = "sequence"
    ) -> None:
        self.entries = entries
        self.types = types
        self.source = str(source)
        self._next = 0

    @classmethod
    def of_types(cls, sequence: Sequence[int], types: list[str], source: str = "sequence") -> SequencePolicy:
        """Replays type indices as full batches (a planner's sequence)."""
        return cls([SequenceEntry(type=types[k]) for k in sequence], types, source)

    def reset(self, seed: int | None = None) -> None:
        self._next = 0

    def decide(self, request: DecisionRequest) -> Decision:
        position = self._next + 1
        if self._next >= len(self.entries):
            needed = {self.types[k]: request.remaining[k] for k in request.valid}
            raise ConfigError(
                self.source,
                "",
                None,
                f"the sequence ends after {len(self.entries)} batches but the week still needs {needed}",
                line=sequence_line(self.source, len(self.entries)),
            )
        entry = self.entries[self._next]
        k = self.types.index(entry.type)
        if k not in request.valid:
            valid = [self.types[v] for v in request.valid]
            raise ConfigError(
                self.source,
                "type",
                entry.type,
                f"batch {position} is not valid at that decision (working second {request.time_s}; "
                f"valid: {valid})",
                line=sequence_line(self.source, position),
            )
        capacity = request.scenario.line.buffer.capacity
        if entry.quantity is not None and entry.quantity > capacity:
            raise ConfigError(
                self.source,
                "quantity",
                entry.quantity,
                f"batch {position} is larger than the buffer capacity {capacity}: it can never enter it",
                line=sequence_line(self.source, position),
            )
        self._next += 1
        return Decision(k, entry.quantity)


class FollowPolicy(Policy):
    """Follows a plan made for another state, repaired as it goes: the plan's first type the action
    mask allows (types it forbids are skipped and dropped), `fallback` once nothing in the plan is
    valid. A current plan offered to a re-planner after the line left it."""

    name = "follow"

    def __init__(self, sequence: Sequence[int], fallback: Policy) -> None:
        self.sequence = list(sequence)
        self.fallback = fallback
        self._left = list(sequence)

    def reset(self, seed: int | None = None) -> None:
        self._left = list(self.sequence)
        self.fallback.reset(seed)

    def decide(self, request: DecisionRequest) -> Decision:
        valid = set(request.valid)
        for i, k in enumerate(self._left):
            if k in valid:
                del self._left[: i + 1]
                return Decision(k)
        self._left.clear()
        return self.fallback(request)


RULES: dict[str, type[Policy]] = {
    p.name: p
    for p in (RandomPolicy, FirstFitPolicy, EarliestRunoutPolicy, SetupAwarePolicy, SlackGreedyPolicy)
}


def make_rule(name: str, seed: int) -> Policy:
    """A rule of `RULES` by name, reset with `seed`."""
    policy = RULES[name]()
    policy.reset(seed)
    return policy
