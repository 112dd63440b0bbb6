"""The results.json of CP-SAT's plan carries the solver's section wherever it is written: in `plan`,
and in `demo` when CP-SAT's plan is the best (issue 14: only compare.json had it)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from builders import make_line, make_scenario, make_week

from agent.cli.offline import run_meta
from agent.planners.compare import Comparison
from agent.planners.cpsat import CpSatSettings, plan_with_cpsat


def test_cpsat_s_plan_carries_the_solver_section_wherever_it_is_written() -> None:
    line = make_line(types=2)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 20)]]))
    run, plan = plan_with_cpsat(scenario, CpSatSettings(time_limit_s=5, workers=1))
    rule = replace(run, planner="setup-aware")
    comparison = Comparison(scenario, [rule, run], plan)
    args = argparse.Namespace(line=Path("line.toml"), week=Path("w"), seed=0, time_limit=5.0, workers=1)
    solver = run_meta(args, scenario, comparison, run)["solver"]  # demo's best, or plan's run
    assert isinstance(solver, dict) and solver["time_limit_s"] == 5.0 and solver["mode"] == plan.mode
    assert run_meta(args, scenario, comparison, rule)["solver"] is None
