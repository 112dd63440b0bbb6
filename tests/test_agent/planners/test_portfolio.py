"""The planning portfolio (`best`): the exact programme proves the reference weeks at b = 50 optimal
(bound = effort, gap 0), a plan converted from a coarser size is never beaten by the portfolio's
own result at the finer size, every improvement prints one line with the bound and the gap, Ctrl-C
keeps the best plan so far, and a fixed amount of work is reproducible."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from paths import CONFIG

from agent.cli import main
from agent.cli.inputs import load_scenario
from agent.errors import UsageError
from agent.planners.conversion import Hint, convert
from agent.planners.dp import solve_exact
from agent.planners.policies import SequencePolicy, SetupAwarePolicy
from agent.planners.portfolio import BestSettings, plan_best
from agent.planners.run import run_planner
from twin import Scenario


@cache
def week(name: str, batch_size: int) -> Scenario:
    return load_scenario(CONFIG / "line.toml", CONFIG / "weeks" / name, batch_size)


def test_plan_best_proves_the_b50_week_optimal_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "best"
    assert (
        main(["plan", "--planner", "best", "--batch-size", "50", "--time-limit", "30", "--out", str(out)])
        == 0
    )
    said = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    kpis, portfolio = results["kpis"], results["portfolio"]
    exact = solve_exact(week("w1", 50))
    assert exact is not None and exact.exact
    assert kpis["idle_s"] == 0 and kpis["setup_effort"] == exact.effort == portfolio["bound"]
    assert (
        portfolio["gap"] == 0.0 and portfolio["stopped"] == "optimal" and portfolio["source"] == "dp (exact)"
    )
    improvements = portfolio["improvements"]
    assert improvements[0]["source"] == "setup-aware" and improvements[-1]["setup_effort"] == exact.effort
    assert [i["setup_effort"] for i in improvements] == sorted(
        (i["setup_effort"] for i in improvements), reverse=True
    )
    line = next(s for s in said.splitlines() if s.endswith("dp (exact)"))
    assert f"effort {exact.effort:g}" in line and f"bound {exact.effort:g}" in line and "gap 0.0%" in line


SEARCHING = BestSettings(
    time_limit_s=10, workers=1, windows=3, beam_states=200, exact_states=50, window_states=500
)
"""The portfolio without the exact programme (which solves the reference weeks at b = 50 at once):
the beam and a few windows search, a fixed amount of work (too little time for CP-SAT's share)."""


@pytest.mark.parametrize(("name", "coarse", "fine"), [("w2", 100, 50), ("w3", 50, 25), ("w1", 25, 50)])
def test_the_result_at_b_is_never_worse_than_the_converted_coarse_plan(
    name: str, coarse: int, fine: int
) -> None:
    scenario = week(name, fine)
    made = run_planner(week(name, coarse), SetupAwarePolicy())
    hint = Hint.of([b.type for b in made.trace.batches], week(name, coarse), "setup-aware")
    converted = run_planner(
        scenario, SequencePolicy.of_types(convert(hint, scenario), scenario.types, "hint")
    )
    run, plan = plan_best(scenario, SEARCHING, hints=[hint])
    assert run.results.rank_key() <= converted.results.rank_key()
    assert any(i.source == "setup-aware@" + str(coarse) + " converted" for i in plan.improvements) or (
        plan.improvements[0].setup_effort <= converted.results.setup_effort
    )
    replayed = run_planner(
        scenario, SequencePolicy.of_types([b.type for b in run.trace.batches], scenario.types, "x")
    )
    assert replayed.results.to_dict() == run.results.to_dict()  # the twin confirms the plan


def test_ctrl_c_keeps_the_best_plan_so_far() -> None:
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if "setup-aware" in line:
            raise KeyboardInterrupt

    run, plan = plan_best(week("w1", 50), BestSettings(time_limit_s=30), say)
    assert plan.stopped == "interrupted" and plan.source == "setup-aware"
    assert run.results.setup_effort == run_planner(week("w1", 50), SetupAwarePolicy()).results.setup_effort


def test_a_fixed_amount_of_work_gives_the_same_plan() -> None:
    settings = replace(SEARCHING, seed=3, time_limit_s=120, cpsat_s=1.0)  # far from the clock
    first, plan1 = plan_best(week("w1", 50), settings)
    second, plan2 = plan_best(week("w1", 50), settings)
    assert [b.type for b in first.trace.batches] == [b.type for b in second.trace.batches]
    assert [(i.source, i.setup_effort) for i in plan1.improvements] == [
        (i.source, i.setup_effort) for i in plan2.improvements
    ]
    assert plan1.stopped == plan2.stopped == "windows"


@pytest.mark.parametrize(
    ("settings", "param"),
    [({"time_limit_s": 0}, "time_limit"), ({"workers": 0}, "workers"), ({"windows": -1}, "windows")],
)
def test_bad_settings_name_their_parameter(settings: dict[str, float], param: str) -> None:
    with pytest.raises(UsageError) as caught:
        BestSettings(**settings)  # type: ignore[arg-type]
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("planner", "flags", "said"),
    [
        ("best", ["--time-limit", "0"], "--time-limit 0: must be positive"),
        ("rollout:setup-aware", ["--time-limit", "0"], "--time-limit 0: must be positive for a search"),
        ("best", ["--windows", "-1"], "--windows"),
    ],
)
def test_a_bad_budget_is_one_line_before_anything_is_printed(
    planner: str, flags: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--planner", planner, *flags, "--out", str(tmp_path / "x")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and said in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
