"""The rest of the week as the twin expects it: the line model resumed from a snapshot of the real
line and run to the end with the active policy.

A projection remembers every decision point it passed. When the real line reaches a decision point
in exactly the state the projection predicted and the policy answers as predicted, the projection
still holds: the outlook reuses it instead of simulating again (`Projection.follow`). The outlook
of a mirrored line applies that rule at every decision: follow the projection, else simulate the
rest of the week again, then compare each FAS's next predicted shortage with the last alerted one.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.decision import Decider, Decision, DecisionRequest
from twin.line import Engine, Line
from twin.mirror import Mirror
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


class Projection:
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
    ) -> Projection:
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


@dataclass(frozen=True, slots=True)
class Call:
    """A decision point answered: the request, the decider's decision and what the rest of the week
    holds after it if the projection still holds (None: `Outlook.renew` simulates anew)."""

    request: DecisionRequest
    decision: Decision
    expected: Expected | None


@dataclass(frozen=True, slots=True)
class Renewal:
    """A projection simulated anew at the decision point of working second `at_s` (the line's time
    is `now_s`): what it expects (None when no decision is left) and the shortages to alert."""

    at_s: int
    now_s: int
    expected: Expected | None
    alerts: list[Shortage]
    """Each FAS's first predicted shortage, where it differs from the one alerted last."""


class Outlook:
    """The rest of the week for a mirrored line and a decider, kept from decision to decision.

    `decide()` answers the mirror's decision point and says what is expected after it if the line
    still follows the projection (cheap: no simulation). Once the decision has left, `renew()`
    simulates the rest of the week anew if the line had left the projection."""

    def __init__(self, mirror: Mirror, decider: Decider, engine: Engine | None = None) -> None:
        self.mirror = mirror
        self.decider = decider
        self.engine = engine or Engine()
        self.expected: Expected | None = None
        """What the rest of the week holds from the last decision on (None: not known)."""
        self._projection: Projection | None = None
        self._left: tuple[LineSnapshot, Call] | None = None  # a decision off the projection
        self._alerted: dict[str, Shortage] = {}

    def decide(self) -> Call | None:
        """Answer the mirror's decision point; None if nothing valid is left (the PAS stops for the
        week)."""
        scenario = self.mirror.scenario
        snapshot = self.mirror.snapshot()
        request = Line(scenario, self.engine, snapshot).start()
        if request is None:
            return None
        decision = self.decider(request)
        projection = self._projection
        self.expected = projection.follow(scenario, request, decision) if projection else None
        call = Call(request, decision, self.expected)
        self._left = (snapshot, call) if self.expected is None else None
        return call

    def forget(self) -> None:
        """The decider changed (a new plan): the next decision simulates the rest of the week anew."""
        self._projection = None

    def renew(self) -> Renewal | None:
        """After the last decision: if it left the projection, simulate the rest of the week from its
        decision point on and return what changed; None if the projection held."""
        if self._left is None:
            return None
        (snapshot, call), self._left = self._left, None
        scenario = self.mirror.scenario
        projection = Projection.simulate(scenario, snapshot, self.decider, self.engine)
        projection.follow(scenario, call.request, call.decision)
        self._projection = projection
        self.expected = projection.expected_from(0) if projection.steps else None
        now_s = self.mirror.now_s
        first: dict[str, Shortage] = {}
        for shortage in projection.shortages_after(now_s):
            first.setdefault(shortage.station, shortage)
        alerts = [s for station, s in first.items() if self._alerted.get(station) != s]
        self._alerted = first
        return Renewal(call.request.time_s, now_s, self.expected, alerts)
