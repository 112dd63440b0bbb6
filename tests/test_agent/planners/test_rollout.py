"""Rollout and beam search over a base policy: never worse than the base, strictly better where the
base leaves idle time or effort, reproducible, anytime, and each trial costs the rest of the week
(it resumes from a checkpoint)."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest
from builders import make_line, make_scenario, make_week

from agent.cli.main import main
from agent.cli.offline import _plan_settings, run_meta
from agent.errors import UsageError
from agent.planners.compare import run_planners
from agent.planners.deadlines import ZeroIdleModel
from agent.planners.policies import make_rule
from agent.planners.registry import make_policy, parse_planners
from agent.planners.rollout import BEAM, ROLLOUT, SearchSettings, preference, search_plan
from agent.planners.run import run_planner
from twin import LineConfig, Scenario, WeekConfig
from twin.line import Line
from twin.results import rank_key


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


@pytest.mark.parametrize("kind", [ROLLOUT, BEAM])
def test_a_search_from_a_state_mid_week_plans_the_rest_never_worse_than_its_base(kind: str) -> None:
    """From decision 2 of setup-aware's week (as `serve --planner` plans live): the plan's decisions
    begin there, and its rest is no worse than the base's rest from the same state."""
    scenario = _idle_week()
    line = Line(scenario)
    request = line.start()
    for _ in range(2):
        assert request is not None
        request = line.decide(make_rule("setup-aware", 0)(request))
    snapshot = line.snapshot()
    base = run_planner(scenario, make_rule("setup-aware", 0), snapshot).results
    run, _ = search_plan(scenario, kind, make_rule("setup-aware", 0), snapshot=snapshot)
    assert run.results.rank_key() <= base.rank_key() and base.idle_s > 0
    assert len(run.trace.batches) == sum(ZeroIdleModel(scenario, snapshot).counts)


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


# -- by name: plan and compare -------------------------------------------------------------------
def test_a_rollout_s_results_carry_its_search() -> None:
    scenario = _idle_week()
    args = argparse.Namespace(
        line=Path("line.toml"), week=Path("w"), seed=0, time_limit=30.0, workers=1, plans=20, width=2, depth=1
    )
    comparison = run_planners(scenario, parse_planners("rollout:setup-aware"), _plan_settings(args))
    run = comparison.runs[0]
    meta = run_meta(args, scenario, comparison, run)
    search = meta["search"]
    assert isinstance(search, dict) and meta["solver"] is None
    assert (search["width"], search["depth"], search["time_limit_s"]) == (2, 1, 30.0)
    assert search["simulations"] == comparison.searches["rollout:setup-aware"].simulations > 1
    base = run_planner(scenario, make_rule("setup-aware", 0)).results
    assert run.planner == "rollout:setup-aware" and run.results.rank_key() < base.rank_key()


def test_compare_runs_searches_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planners = "first-fit,rollout:first-fit,beam:first-fit"
    args = ["--batch-size", "100", "--time-limit", "0.5", "--width", "1", "--out", str(tmp_path)]
    assert main(["compare", "--planners", planners, *args]) == 0
    payload = json.loads((tmp_path / "compare.json").read_text())
    assert set(payload["searches"]) == {"rollout:first-fit", "beam:first-fit"}
    assert payload["portfolio"] is None
    kpis = payload["kpis"]
    for search in ("rollout:first-fit", "beam:first-fit"):
        assert rank_key(kpis[search]) <= rank_key(kpis["first-fit"])
        assert (tmp_path / "sequences" / f"{search.replace(':', '_')}.csv").is_file()
    assert "planning with beam:first-fit ..." in capsys.readouterr().out


def test_search_names_are_read_with_their_base_policy() -> None:
    model = Path("agent.zip")
    specs = parse_planners("rollout:setup-aware,beam:rl:agent.zip,rollout:ppo,best", model)
    assert [(s.kind, s.base, s.model) for s in specs] == [
        (ROLLOUT, "setup-aware", None),
        (BEAM, "rl", model),
        (ROLLOUT, "rl", model),
        ("best", None, None),
    ]
    assert [s.label for s in specs][:2] == ["rollout:setup-aware", "beam:rl:agent.zip"]


NAMES = [
    (["plan", "--planner", "rollout:"], "name the base policy after the colon, e.g. rollout:setup-aware"),
    (["plan", "--planner", "beam:setupaware"], "is not a policy; did you mean setup-aware?"),
    (["plan", "--planner", "rollout:cpsat"], "the base policy 'cpsat' is not a policy"),
    (["simulate", "--policy", "rollout:setup-aware"], "plans a whole week, it is no policy"),
    (["plan", "--planner", "rollout:first-fit", "--width", "0"], "--width 0: must be at least 1"),
    (["compare", "--planners", "beam:first-fit", "--depth", "0"], "--depth 0: must be at least 1"),
]


@pytest.mark.parametrize(("argv", "message"), NAMES, ids=[" ".join(a) for a, _ in NAMES])
def test_a_search_name_or_setting_mistake_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("linetwin: error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_the_agent_prefers_its_own_choice_first(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    agent = make_policy("rl", 0)
    line = Line(Scenario.build(ref_line, ref_week, 50))
    request = line.start()
    while request is not None and request.index < 10:
        order = preference(agent, request)
        decision = agent(request)
        assert sorted(order) == sorted(request.valid) and order[0] == decision.type
        request = line.decide(decision)
