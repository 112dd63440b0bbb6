"""One ranking for every table, plot and summary, and a deadlocked or incomplete plan marked as such
wherever it appears (issue 14, section 5)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from builders import make_train_summary
from matplotlib.colors import to_rgba
from matplotlib.text import Text

from agent.cli.main import main
from agent.cli.training import _print_summary
from agent.planners.compare import (
    Comparison,
    PlanSettings,
    comparison_figure,
    lost_fas_hours,
    run_planners,
)
from agent.planners.policies import RULES
from agent.planners.registry import PlannerSpec
from agent.training.study import figures, table_rows
from twin import LineConfig, Scenario, WeekConfig
from twin.plots import label_points
from twin.results import failure, rank_key


@pytest.fixture(scope="module")
def rules_on_w1(ref_line: LineConfig, ref_week: WeekConfig) -> Comparison:
    scenario = Scenario.build(ref_line, ref_week)
    return run_planners(scenario, [PlannerSpec(n) for n in RULES], PlanSettings())


def kpis(deadlock: bool, completion: float, idle: int, effort: float) -> dict[str, Any]:
    return {"deadlock": deadlock, "completion": completion, "idle_s": idle, "setup_effort": effort}


def test_the_ranking_puts_no_deadlock_then_completion_then_idle_then_effort_first() -> None:
    plans = {
        "first-fit": kpis(True, 0.018, 20_830, 0.0),
        "random": kpis(True, 0.062, 36_090, 94.0),
        "idle": kpis(False, 1.0, 600, 10.0),
        "cheap": kpis(False, 1.0, 0, 500.0),
        "dear": kpis(False, 1.0, 0, 700.0),
    }
    assert sorted(plans, key=lambda n: rank_key(plans[n])) == ["cheap", "dear", "idle", "random", "first-fit"]
    assert failure(plans["first-fit"]) == "deadlock at 1.8% done"
    assert failure(kpis(False, 0.95, 0, 1.0)) == "incomplete: 95.0% done"
    assert failure(plans["cheap"]) is None


def test_results_rank_like_their_dict(rules_on_w1: Comparison) -> None:
    for run in rules_on_w1.runs:
        assert rank_key(run.results) == rank_key(run.results.to_dict()) == run.results.rank_key()


def test_compare_png_marks_first_fit_deadlocked_and_never_ahead_of_a_complete_plan(
    rules_on_w1: Comparison,
) -> None:
    runs = {r.planner: r.results for r in rules_on_w1.runs}
    first_fit = runs["first-fit"]
    assert first_fit.deadlock and round(first_fit.completion, 3) == 0.018 and first_fit.setup_effort == 0
    assert round(first_fit.idle_s / 3600, 1) == 5.8  # the example: it looked best at lower left
    fig = comparison_figure(rules_on_w1.runs, None)
    ax = fig.axes[0]
    labels = {t.get_text(): t for t in ax.texts}
    assert "first-fit: deadlock at 1.8% done" in labels and "setup-aware" in labels
    assert labels["first-fit: deadlock at 1.8% done"].get_color() == "tab:red"
    ranked = sorted(runs, key=lambda n: rank_key(runs[n]))
    assert ranked[-1] == "first-fit"
    x_of = {n: float(np.asarray(c.get_offsets())[0, 0]) for n, c in zip(ranked, ax.collections, strict=True)}
    complete = [x_of[n] for n, k in runs.items() if failure(k) is None]
    assert complete and x_of["first-fit"] > 10 * max(1.0, *complete)  # idle + the work never built
    assert x_of["first-fit"] == lost_fas_hours(first_fit) == (first_fit.idle_s + first_fit.shortfall_s) / 3600
    red = np.array(to_rgba("tab:red"))
    is_red = [bool(np.allclose(np.asarray(c.get_facecolor())[0], red)) for c in ax.collections]
    assert is_red == [failure(runs[n]) is not None for n in ranked]
    plt.close(fig)
    rows = rules_on_w1.rows()
    assert [r["planner"] for r in rows] == ranked
    assert rows[-1]["deadlock"] is True


def test_labels_of_coinciding_points_do_not_overlap() -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    points = [(1.0, 100.0)] * 5 + [(1.001, 100.5), (8.0, 0.0), (8.0, 0.0)]
    ax.scatter(*zip(*points, strict=True))
    ax.set_xlim(0, 10)
    ax.set_ylim(-300, 500)
    fig.tight_layout()
    notes = label_points(ax, points, [f"planner number {i}" for i in range(len(points))], fontsize=8)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [Text.get_window_extent(n, renderer) for n in notes]  # the text, not its leader line
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    plt.close(fig)


def test_table2_marks_deadlocked_best_plans_and_keeps_their_effort_out() -> None:
    runs = [
        make_train_summary(20, False, {**kpis(False, 1.0, 60, 300.0), "return": -1.0}),
        make_train_summary(20, False, {**kpis(True, 0.018, 20_830, 0.0), "return": -9.0}),
        make_train_summary(30, False, {**kpis(True, 0.05, 9_000, 12.0), "return": -5.0}),
    ]
    rows = {r[0]: r for r in table_rows(runs)}
    assert rows["20"][4] == "1/2" and rows["30"][4] == "1/1"  # deadlocked_or_incomplete
    assert rows["20"][8:11] == ["300", "300", "300"]  # effort of the complete plan only
    assert rows["30"][8:12] == ["-", "-", "-", "-"]


def test_study_figures_say_when_no_run_met_the_criterion_and_mark_deadlocks() -> None:
    runs = [
        make_train_summary(20, False, {**kpis(False, 1.0, 60, 300.0), "return": -1.0}),
        make_train_summary(20, False, {**kpis(True, 0.018, 20_830, 0.0), "return": -9.0}),
    ]
    figs = figures(runs)
    steps = figs["steps_vs_batch_size.png"].axes[0]
    assert any("no run met the final criterion" in t.get_text() for t in steps.texts)
    effort = figs["setup_effort_by_batch_size.png"].axes[0]
    assert [t.get_text() for t in effort.texts] == ["2%"]  # the deadlocked plan's completion
    legend = effort.get_legend()
    assert legend is not None and "deadlocked" in legend.get_texts()[0].get_text()
    for fig in figs.values():
        plt.close(fig)


def test_train_summary_shows_completion_and_deadlock_of_both_plans_ranked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    best = {**kpis(False, 1.0, 0, 412.0), "seed": 17}
    deterministic = {**kpis(True, 0.018, 20_830, 0.0), "seed": None}
    data = make_train_summary(50, False, best, deterministic, steps_done=64, wall_time_s=3.0)
    _print_summary(data)
    lines = capsys.readouterr().out.splitlines()
    plans = [ln.strip() for ln in lines if " plan" in ln and " of w1 " in ln]
    assert plans == [
        "best plan (stochastic, seed 17) of w1 (b=50): complete, completion 1.000, idle 0 s, "
        "setup effort 412, deadlock no",
        "deterministic plan of w1 (b=50): DEADLOCK AT 1.8% DONE, completion 0.018, idle 20830 s, "
        "setup effort 0, deadlock yes",
    ]


def test_evaluate_names_the_seed_that_won_outside_the_list(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, week = config_dir / "agents" / "reference.zip", config_dir / "weeks" / "w2"
    argv = ["evaluate", "--model", str(model), "--week", str(week), "--plans", "3", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = {}
    for line in out.splitlines():
        if match := re.match(r"(rl \([^)]*\))\s+(yes|no)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s", line):
            label, deadlock, completion, idle, effort = match.groups()
            table[label] = kpis(deadlock == "yes", float(completion), int(idle), float(effort))
    seeds = [f"rl (stochastic, seed {s})" for s in range(3)]
    assert list(table) == [*seeds, "rl (deterministic)"]  # each plan under its own label, none as 'best'
    winner = min(table, key=lambda label: rank_key(table[label]))
    won = winner.removeprefix("rl (").removesuffix(")")
    assert f"\nbest plan by the ranking: rl ({won}: best of 4)\n" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["planner"] == f"rl ({won}: best of 4)"
    assert results["kpis"]["setup_effort"] == table[winner]["setup_effort"]
