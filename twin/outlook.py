"""The rest of the week as the twin expects it: the line model resumed from a snapshot of the real
line and run to the end with the active policy.

An outlook remembers every decision point it passed. When the real line reaches a decision point
in exactly the state the outlook predicted and the policy answers as predicted, the outlook still
holds: the mirror reuses it instead of simulating again (`follow`).
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.decision import Decider, Decision, DecisionRequest
from twin.line import Engine, Line
from twin.scenario import Scenario
from twin.snapshot import LineSnapshot

StateKey = tuple[object, ...]


def state_key(request: DecisionRequest) -> StateKey:
    """What determines the future of a decision point (with the scenario and the policy)."""
    return (request.time_s, request.stock, request.last_type, request.fas, request.batch_size)


@dataclass(frozen=True, slots=True)
class Expected:
    """What the rest of the week holds from a decision point on."""

    idle_s: int
    setup_effort: float
    setups: int
    deadlock: bool
    end_s: int
    """Working second the run ends (the last FAS finishes, or the deadlock)."""


@dataclass(frozen=True, slots=True)
class Shortage:
    """A predicted stock-out: FAS `station` will wait for `type` from working second `at_s`."""

    station: str
    type: str
    at_s: int


@dataclass(frozen=True, slots=True)
class _Step:
    key: StateKey
    decision: Decision
    idle_s: int  # before this decision point
    setup_effort: float
    setups: int


class Outlook:
    """One simulated rest-of-week."""

    def __init__(
        self, scenario: Scenario, steps: list[_Step], total: Expected, shortages: list[Shortage]
    ) -> None:
        self.scenario = scenario
        self.steps = steps
        self.total = total
        self.shortages = shortages
        self._cursor = 0

    @classmethod
    def simulate(
        cls, scenario: Scenario, snapshot: LineSnapshot, decider: Decider, engine: Engine | None = None
    ) -> Outlook:
        line = Line(scenario, engine, snapshot)
        steps: list[_Step] = []
        effort, setups = 0.0, 0
        request = line.start()
        while request is not None:
            decision = decider(request)
            steps.append(
                _Step(state_key(request), decision, line.idle_so_far(request.time_s), effort, setups)
            )
            request = line.decide(decision)
            batch = line.trace.batches[-1]
            effort += batch.setup_effort
            setups += batch.changeover
        total = Expected(line.idle_so_far(line.end_s), effort, setups, line.deadlock, line.end_s)
        shortages = [
            Shortage(scenario.stations[f], scenario.types[k], start)
            for f, k, start, _ in sorted(line.trace.waits, key=lambda w: w[2])
        ]
        return cls(scenario, steps, total, shortages)

    def expected_from(self, index: int) -> Expected:
        step, total = self.steps[index], self.total
        return Expected(
            total.idle_s - step.idle_s,
            total.setup_effort - step.setup_effort,
            total.setups - step.setups,
            total.deadlock,
            total.end_s,
        )

    def follow(self, scenario: Scenario, request: DecisionRequest, decision: Decision) -> Expected | None:
        """If the line reached the next predicted decision point exactly and `decision` is the
        predicted one, advance and return what is expected from here; else None (simulate anew)."""
        if scenario is not self.scenario:
            return None
        key = state_key(request)
        for i in range(self._cursor, len(self.steps)):
            step = self.steps[i]
            if step.key == key:
                if step.decision != decision:
                    return None
                self._cursor = i + 1
                return self.expected_from(i)
            if step.key[0] > key[0]:  # type: ignore[operator]
                break
        return None

    def shortages_after(self, time_s: int) -> list[Shortage]:
        return [s for s in self.shortages if s.at_s >= time_s]
