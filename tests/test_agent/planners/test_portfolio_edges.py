"""The portfolio on the lines the breaker of issue 16 brought: a setup time (the deadline model is
stricter than the line, so it proves nothing), a line the shipped agent was not trained for, many
types (the window bound's table of type sets, the programme's back-pointers), and deadlines that
ask for more batches than positions."""

from __future__ import annotations

import time

import pytest
from bruteforce import tiny_best, tiny_week
from builders import make_line, make_scenario, make_week

from agent.planners.bound import IMPOSSIBLE, lower_bound, window_bound
from agent.planners.conversion import Hint, convert
from agent.planners.cpsat import CpSatPlanner, CpSatSettings
from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import solve_exact
from agent.planners.policies import SequencePolicy
from agent.planners.portfolio import BestSettings, plan_best
from agent.planners.run import run_planner
from twin import Scenario

QUICK = BestSettings(time_limit_s=4, workers=1, windows=2)


def crowded() -> Scenario:
    """Both FAS need their second unit at 5 s; only the first batch comes in time: each deadline
    alone can be met, both together not (zero idle is impossible)."""
    line = make_line(
        types=2, fas_units=(5, 5), capacity=10, batch_size=2, pas_unit=2, matrix=[[0, 3], [1, 0]]
    )
    return make_scenario(line, make_week(line, [[(0, 4)], [(1, 4)]], stock=[1, 1]))


def test_with_a_setup_time_cpsat_does_not_call_zero_idle_impossible_and_best_finds_it() -> None:
    scenario = tiny_week(31, setup_time=2)  # the deadline model admits no order; the twin runs one
    truth = tiny_best(31, setup_time=2)
    assert truth.best_zero_idle_effort is not None
    assert solve_exact(scenario) is None
    plan = CpSatPlanner(scenario, CpSatSettings(time_limit_s=5, workers=1)).solve()
    assert plan.zero_idle != "infeasible" and plan.bound is None
    run, best = plan_best(scenario, QUICK)
    assert run.results.idle_s == 0 and best.bound is None and best.stopped != "optimal"
    assert run.results.setup_effort >= truth.best_zero_idle_effort


def test_a_hint_is_also_offered_as_cut_where_the_deadlines_would_reorder_it() -> None:
    scenario = tiny_week(37, setup_time=2)
    coarse = Scenario.build(scenario.line, scenario.week, scenario.batch_size * 2)
    hint = Hint.of(list(range(len(scenario.types))), coarse, "test")  # one batch of each type
    cut = run_planner(
        scenario, SequencePolicy.of_types(convert(hint, scenario, repair=False), scenario.types, "cut")
    )
    run, _ = plan_best(scenario, QUICK, hints=[hint])
    assert run.results.rank_key() <= cut.results.rank_key()


def test_a_line_the_shipped_agent_does_not_know_leaves_the_agent_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines: list[str] = []
    run, best = plan_best(crowded(), QUICK, lines.append)
    assert best.bound is None and best.bound_method == IMPOSSIBLE
    assert any("the shipped agent is left out" in line for line in lines)
    assert run.results.completion == 1.0


def test_deadlines_that_ask_for_more_batches_than_positions_make_zero_idle_impossible() -> None:
    model = ZeroIdleModel(crowded())
    assert model.zero_idle_possible and not model.positions_suffice
    assert lower_bound(model).method == IMPOSSIBLE


def test_the_window_bound_of_many_types_is_quick_and_valid() -> None:
    types = 24
    line = make_line(types=types, fas_units=(2, 2), capacity=60, batch_size=5)
    plans = [[(k, 5) for k in range(0, types, 2)], [(k, 5) for k in range(1, types, 2)]]
    scenario = make_scenario(line, make_week(line, plans))
    model = ZeroIdleModel(scenario)
    start = time.perf_counter()
    bound = window_bound(model)
    assert time.perf_counter() - start < 2.0
    run, _ = plan_best(scenario, QUICK)
    if run.results.idle_s == 0:
        assert bound <= run.results.setup_effort


def test_the_programme_traces_its_plan_on_a_line_of_130_types() -> None:
    types = 130
    line = make_line(types=types, fas_units=(4,), capacity=40, batch_size=5)
    stock = [10] + [0] * (types - 1)
    scenario = make_scenario(line, make_week(line, [[(0, 10), (128, 10), (1, 5), (129, 10)]], stock=stock))
    plan = solve_exact(scenario)
    assert plan is not None and plan.exact
    replayed = run_planner(scenario, SequencePolicy.of_types(plan.sequence, scenario.types, "dp")).results
    assert replayed.completion == 1.0 and replayed.idle_s == 0 and replayed.setup_effort == plan.effort


def test_ctrl_c_in_a_sweep_ends_the_sweep_after_the_size_it_interrupted() -> None:
    from paths import CONFIG

    from agent.cli.inputs import load_scenario
    from agent.planners.registry import PlannerSpec
    from agent.planners.sweep import SweepSettings, run_sweep

    weeks = {b: load_scenario(CONFIG / "line.toml", CONFIG / "weeks" / "w1", b) for b in (50, 25)}
    said: list[str] = []

    def say(line: str) -> None:  # Ctrl-C as the portfolio reports its first plan at b = 50
        said.append(line)
        if line.startswith("b=50 [1/2]") and "setup-aware" in line:
            raise KeyboardInterrupt

    sweep = run_sweep(weeks, [PlannerSpec("best")], SweepSettings(time_limit_s=30, workers=1), say)
    assert [p.batch_size for p in sweep.points] == [50]
    assert sweep.points[0].source.endswith("(interrupted)")
    assert any(line.startswith("interrupted at b=50") for line in said)


def test_the_agents_stochastic_plans_stop_at_their_share_of_the_time() -> None:
    from paths import CONFIG

    from agent.cli.inputs import load_scenario
    from agent.planners.evaluate import evaluate
    from agent.planners.registry import DEFAULT_MODEL
    from agent.planners.rl import RLPolicy

    policy = RLPolicy.from_file(DEFAULT_MODEL)
    scenario = load_scenario(CONFIG / "line.toml", CONFIG / "weeks" / "w1", 50)
    result = evaluate(policy.model, policy.card, scenario, plans=5, until=time.perf_counter())
    assert result.stochastic == [] and result.best is result.deterministic
