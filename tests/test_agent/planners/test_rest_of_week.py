"""The rest of a week planned from a decision point (a run's `Line.snapshot()`, as the live mirror
gives one): the deadline model from there accepts the rest of a zero-idle plan, and the programme
from there finds the optimum of the rest, which for an optimal plan is the rest of its effort
(Bellman: every tail of an optimal plan is optimal for its state)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from paths import CONFIG

from agent.cli.inputs import load_scenario
from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import SequenceDp, solve_exact
from twin import Scenario
from twin.decision import Decision
from twin.errors import SimulationError
from twin.line import Line
from twin.snapshot import BatchInProgress
from twin.timeline import Timeline


def at_decision(scenario: Scenario, sequence: list[int], k: int) -> Line:
    line = Line(scenario)
    request = line.start()
    while request is not None and request.index < k:
        request = line.decide(Decision(sequence[request.index]))
    return line


@pytest.mark.parametrize("name", ["w1", "w3"])
def test_from_every_kind_of_decision_point_the_rest_is_planned_to_the_same_optimum(name: str) -> None:
    scenario = load_scenario(CONFIG / "line.toml", CONFIG / "weeks" / name, 50)
    week = ZeroIdleModel(scenario)
    best = solve_exact(scenario)
    assert best is not None and best.exact
    plan = best.sequence
    for k in (0, 1, 97, len(plan) - 1):
        snapshot = at_decision(scenario, plan, k).snapshot()
        rest = ZeroIdleModel(scenario, snapshot)
        assert rest.counts == tuple(plan[k:].count(t) for t in range(len(scenario.types)))
        assert rest.meets(plan[k:])
        found = SequenceDp(rest).solve()
        assert found is not None and found.exact
        assert found.effort == pytest.approx(best.effort - week.effort(plan[:k]))


def test_a_pas_with_a_batch_in_hand_is_no_decision_point() -> None:
    scenario = load_scenario(CONFIG / "line.toml", CONFIG / "weeks" / "w1", 50)
    snapshot = at_decision(scenario, [0] * 3, 1).snapshot()
    with pytest.raises(SimulationError, match="decision point"):
        Timeline(scenario, replace(snapshot, batch=BatchInProgress(0, 50, 10)))
