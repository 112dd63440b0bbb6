"""What is said of CP-SAT's plan (issue 14): a gap is computed once and shown the same in the
table and the summary."""

from __future__ import annotations

from dataclasses import replace

from builders import make_line, make_scenario, make_week

from agent.planners.compare import Comparison, markdown, solver_summary
from agent.planners.cpsat import CpSatSettings, plan_with_cpsat


def test_table_and_summary_show_one_gap_rounded_once() -> None:
    line = make_line(types=2)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 20)]]))
    run, plan = plan_with_cpsat(scenario, CpSatSettings(time_limit_s=5, workers=1))
    # the trial's figures: effort 611 against a bound of 84 is a gap of 86.25...%, shown 86.3%
    run.results = replace(run.results, setup_effort=611.0, idle_s=0, completion=1.0, deadlock=False)
    comparison = Comparison(scenario, [run], replace(plan, setup_effort=611.0, bound=84.0))
    (row,) = comparison.rows()
    assert row["gap_bound"] == 0.863
    assert "| 86.3% |" in markdown([row])
    summary = solver_summary(comparison)
    assert summary is not None and "model bound on setup effort 84 (gap 86.3%)" in summary
