"""Rollout and beam search over a base policy: never worse than the base, strictly better where the
base leaves idle time or effort, reproducible, anytime, and each trial costs the rest of the week
(it resumes from a checkpoint)."""

from __future__ import annotations

import random

import pytest

from agent.errors import UsageError
from agent.planners.policies import make_rule
from agent.planners.rollout import BEAM, ROLLOUT, SearchSettings, preference, search_plan
from agent.planners.run import run_planner
from tests.builders import make_line, make_scenario, make_week
from twin import Scenario
from twin.line import Line


def _idle_week() -> Scenario:
    """Two FAS, three types; setup-aware leaves 246 s of idle time and 24 of effort."""
    line = make_line(
        types=3, fas_units=(10, 12), capacity=30, matrix=[[0.0, 5.0, 1.0], [1.0, 0.0, 1.0], [9.0, 1.0, 0.0]]
    )
    plans = [[(0, 10), (2, 20), (0, 10), (1, 10)], [(2, 10), (0, 30), (0, 20), (1, 30)]]
    return make_scenario(line, make_week(line, plans, stock=[10, 20, 10]), 10)


def _random_week(seed: int) -> Scenario:
    rng = random.Random(seed)
    matrix = [[0.0 if i == j else rng.choice([1.0, 2.0, 5.0, 9.0]) for j in range(3)] for i in range(3)]
    line = make_line(types=3, fas_units=(10, 12), capacity=rng.choice([30, 40, 60]), matrix=matrix)
    plans = [[(rng.randrange(3), rng.choice([10, 20, 30])) for _ in range(4)] for _ in range(2)]
    stock = [rng.choice([0, 10, 20]) for _ in range(3)]
    return make_scenario(line, make_week(line, plans, stock=stock), 10)


@pytest.mark.parametrize("kind", [ROLLOUT, BEAM])
def test_a_search_beats_a_base_that_leaves_idle_time(kind: str) -> None:
    scenario = _idle_week()
    base = run_planner(scenario, make_rule("setup-aware", 0)).results
    lines: list[str] = []
    run, stats = search_plan(scenario, kind, make_rule("setup-aware", 0), progress=lines.append)
    assert base.idle_s > 0
    assert run.results.idle_s < base.idle_s and run.results.completion == base.completion == 1.0
    assert run.planner == f"{kind}:setup-aware"
    assert len(lines) == stats.improvements > 0 and "setup effort" in lines[-1]


@pytest.mark.parametrize("seed", range(3))
def test_a_search_is_never_worse_than_its_base(seed: int) -> None:
    scenario = _random_week(seed)
    for rule in ("setup-aware", "first-fit"):
        base = run_planner(scenario, make_rule(rule, 0)).results
        for kind, settings in (
            (ROLLOUT, SearchSettings()),
            (ROLLOUT, SearchSettings(1)),
            (BEAM, SearchSettings(2, 2)),
        ):
            run, _ = search_plan(scenario, kind, make_rule(rule, 0), settings)
            assert run.results.rank_key() <= base.rank_key(), (rule, kind, settings)


def test_a_search_is_reproducible() -> None:
    scenario = _random_week(3)
    plans = [search_plan(scenario, kind, make_rule("setup-aware", 0))[0] for kind in (ROLLOUT, ROLLOUT)]
    assert plans[0].trace.sequence(scenario.types) == plans[1].trace.sequence(scenario.types)
    assert plans[0].results.to_dict() == plans[1].results.to_dict()


def test_a_trial_costs_the_rest_of_the_week() -> None:
    """From a checkpoint a trial at decision k simulates the decisions after k only: on average
    about half a week, where re-simulating from the week start would cost a whole one each."""
    scenario = _idle_week()
    line = Line(scenario)
    line.run(make_rule("setup-aware", 0))
    week = line.pas.decisions
    _, stats = search_plan(scenario, ROLLOUT, make_rule("setup-aware", 0))
    assert stats.simulations > week
    assert stats.decisions < 0.75 * stats.simulations * week


def test_out_of_time_the_plan_is_the_incumbent() -> None:
    scenario = _idle_week()
    base = run_planner(scenario, make_rule("setup-aware", 0))
    run, stats = search_plan(scenario, ROLLOUT, make_rule("setup-aware", 0), SearchSettings(time_limit_s=0))
    assert stats.stopped_early and stats.simulations == 1
    assert run.trace.sequence(scenario.types) == base.trace.sequence(scenario.types)


def test_width_tries_the_base_preferred_types_first() -> None:
    scenario = _random_week(2)
    rule = make_rule("setup-aware", 0)
    line = Line(scenario)
    request = line.start()
    while request is not None:
        order = preference(rule, request)
        assert sorted(order) == sorted(request.valid) and order[0] == rule(request).type
        request = line.decide(rule(request))
    _, stats_one = search_plan(scenario, ROLLOUT, make_rule("setup-aware", 0), SearchSettings(width=1))
    assert stats_one.simulations == 1  # the base's own choice only: its week is the incumbent
    _, stats_all = search_plan(scenario, ROLLOUT, make_rule("setup-aware", 0))
    assert stats_all.simulations > 1


@pytest.mark.parametrize(("width", "depth", "param"), [(0, 1, "width"), (None, 0, "depth")])
def test_settings_out_of_range_name_the_parameter(width: int | None, depth: int, param: str) -> None:
    with pytest.raises(UsageError) as caught:
        SearchSettings(width, depth)
    assert caught.value.param == param
