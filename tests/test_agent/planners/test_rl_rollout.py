"""Search at decision time, `rl+rollout`: a rollout over the trained agent with a budget per decision,
by name in plan/compare (and serve's re-planner, which reads the same registry); `rollout:rl` stays
a rollout without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import make_week

from agent.errors import UsageError
from agent.planners.compare import PlanSettings, run_planners
from agent.planners.cpsat import CpSatSettings
from agent.planners.registry import (
    DECISION_TIME_S,
    DEFAULT_MODEL,
    REFERENCE_MODEL,
    RL,
    RL_ROLLOUT,
    parse_planners,
)
from agent.planners.rl import RLPolicy
from agent.planners.rollout import ROLLOUT, SearchSettings, search_plan
from agent.planners.run import run_planner
from twin import LineConfig, Scenario
from twin.results import rank_key


@pytest.fixture
def tiny(ref_line: LineConfig) -> Scenario:
    """A short week of the reference line (the shipped agent's types): 500 units at b=50."""
    week = make_week(ref_line, [[(0, 100), (1, 50)], [(2, 100)], [(1, 50)], [(3, 100)]])
    return Scenario.build(ref_line, week, 50)


def test_rl_rollout_is_a_rollout_over_the_agent_with_a_budget_per_decision() -> None:
    model = Path("agent.zip")
    at_decisions, named, plain = parse_planners("rl+rollout,rl+rollout:m.zip,rollout:rl", model)
    assert (at_decisions.kind, at_decisions.base, at_decisions.model) == (ROLLOUT, RL, model)
    assert at_decisions.decision_time_s == named.decision_time_s == DECISION_TIME_S
    assert named.model == Path("m.zip") and named.label == f"{RL_ROLLOUT}:m.zip"
    assert plain.decision_time_s is None and plain.label == "rollout:rl:agent.zip"
    with pytest.raises(UsageError, match="name the model after the colon"):
        parse_planners("rl+rollout:")


def test_compare_plans_with_rl_rollout_never_worse_than_the_agent(tiny: Scenario) -> None:
    settings = PlanSettings(CpSatSettings(time_limit_s=5), plans=1)
    comparison = run_planners(tiny, parse_planners(f"{RL_ROLLOUT},{RL},{RL}:{REFERENCE_MODEL}"), settings)
    searched, alone, other = comparison.runs
    assert searched.planner == RL_ROLLOUT  # the shipped agent's: no path
    assert alone.planner.startswith(f"{RL} (") and other.planner.startswith(f"{RL}:{REFERENCE_MODEL} (")
    assert set(comparison.searches) == {searched.planner}
    assert rank_key(searched.results) <= rank_key(alone.results)


def test_no_trial_starts_after_a_decisions_budget(tiny: Scenario) -> None:
    agent = RLPolicy.from_file(DEFAULT_MODEL)
    run, stats = search_plan(tiny, ROLLOUT, agent, SearchSettings(decision_time_s=1e-9))
    assert stats.simulations == 1  # the agent's own week, no trial
    assert stats.decision_s  # every decision planned, each without a trial
    assert run.results.to_dict() == run_planner(tiny, agent).results.to_dict()
    unlimited, everything = search_plan(tiny, ROLLOUT, agent, SearchSettings())
    assert everything.simulations > 1 and rank_key(unlimited.results) <= rank_key(run.results)


def test_a_decision_budget_must_be_positive() -> None:
    with pytest.raises(UsageError, match="decision_time 0: must be positive"):
        SearchSettings(decision_time_s=0)
