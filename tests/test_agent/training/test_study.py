"""The batch-size study on a tiny budget: parallel runs, restart skips finished runs, Table II and
figures are written."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from builders import make_line, make_scenario, make_train_summary, make_week

from agent.cli import main
from agent.planners.cpsat import gap_text, relative_gap
from agent.planners.policies import SetupAwarePolicy
from agent.planners.run import run_planner
from agent.planners.sweep import Sweep, SweepPoint
from agent.training.study import table_rows
from agent.training.summary import TrainSummary


def test_study_trains_the_grid_once_and_writes_table_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ppo = tmp_path / "ppo.toml"
    ppo.write_text("n_steps = 64\nbatch_size = 64\nn_epochs = 1\n", encoding="utf-8")
    out = tmp_path / "study"
    argv = ["study", "--batch-sizes", "50,100", "--seeds", "2", "--steps", "64", "--jobs", "2"]
    argv += ["--ppo", str(ppo), "--out", str(out), "--progress-every", "0.5", "--plan-time-limit", "1"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "0 of 4 runs already finished; 4 to train" in first
    assert re.search(
        r"^training: b=(50|100) seed [01] (starting|\d+/64 steps)", first, re.M
    )  # each run's progress
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["b100_s0", "b100_s1", "b50_s0", "b50_s1"]
    with (out / "table2.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["batch_size"] for r in rows] == ["50", "100"]
    assert all(r["runs"] == "2" and r["final_criterion_met"] == "0/2" for r in rows)
    for row in rows:  # the best plan of any planner beside the agent's figures
        assert row["best_found_by"] != "-"
        if row["best_idle_s"] == "0" and row["bound"] != "-":
            effort, bound = float(row["best_setup_effort"]), float(row["bound"])
            assert bound <= effort and row["gap"] == gap_text(relative_gap(effort, bound) or 0.0)
    assert "| batch_size |" in (out / "table2.md").read_text()
    for name in ("steps_vs_batch_size.png", "setup_effort_by_batch_size.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert main([*argv[:-1], "0"]) == 0  # restarted, without the best plans this time
    assert "4 of 4 runs already finished; 0 to train" in capsys.readouterr().out


def test_table_counts_steps_only_for_runs_that_met_the_final_criterion() -> None:
    def summary(size: int, met: bool, steps: int | None, effort: float, idle: int) -> TrainSummary:
        best = {
            "setup_effort": effort,
            "return": -100.0,
            "idle_s": idle,
            "deadlock": False,
            "completion": 1.0,
        }
        return make_train_summary(size, met, best, steps_to_finish=steps)

    rows = table_rows(
        [
            summary(20, True, 1000, 300.0, 0),
            summary(20, True, 3000, 200.0, 0),
            summary(20, False, None, 900.0, 60),
        ]
    )
    assert rows == [
        ["20", "3", "2/3", "2/3", "0/3", "1000", "2000", "3000", "200", "250", "300", "70.7", "-100.0"]
        + ["-"] * 5  # no best plan of any planner: --plan-time-limit 0
    ]


def test_table_shows_the_best_plan_of_any_planner_beside_the_agents_figures() -> None:
    line = make_line(types=2, fas_units=(3,), capacity=40, batch_size=10)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 10), (0, 10)]], stock=[10, 0]))
    run = run_planner(scenario, SetupAwarePolicy())
    effort = run.results.setup_effort
    assert run.results.idle_s == 0 and effort > 0
    portfolio = Sweep([SweepPoint(10, "best", run, "setup-aware", bound=effort / 2)])
    best = {"setup_effort": 9.0, "return": -1.0, "idle_s": 0, "deadlock": False, "completion": 1.0}
    [row] = table_rows([make_train_summary(10, True, best)], portfolio)
    assert row[-5:] == [f"{effort:g}", "0", f"{effort / 2:g}", "50.0%", "setup-aware"]
