"""The exact planner: its timeline matches the twin, on tiny lines it finds the brute-force optimum,
and `linetwin plan` / `linetwin compare` report the twin's KPIs next to the solver's figures."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import make_line, make_scenario, make_week

from agent.cli import main
from agent.planners.compare import Comparison, solver_summary, write_comparison
from agent.planners.cpsat import MIN_IDLE, ZERO_IDLE, CpSatPlanner, CpSatSettings, plan_with_cpsat
from agent.planners.policies import EarliestRunoutPolicy, SequencePolicy, SetupAwarePolicy
from twin import LineConfig, Results, Scenario, WeekConfig, load_week, simulate
from twin.results import rank_key
from twin.timeline import Timeline

EXACT = CpSatSettings(time_limit_s=20, workers=1)


def replay(scenario: Scenario, sequence: list[int]) -> Results:
    return simulate(scenario, SequencePolicy.of_types(sequence, scenario.types))[0]


def orders(counts: list[int]) -> Iterator[list[int]]:
    """Every distinct order of a multiset of batches (counts per type)."""
    if not any(counts):
        yield []
        return
    for k, n in enumerate(counts):
        if n:
            counts[k] -= 1
            for rest in orders(counts):
                yield [k, *rest]
            counts[k] += 1


def brute_force(scenario: Scenario) -> tuple[bool, float, int, float]:
    """The best rank key over every plan the action mask allows (a complete run builds exactly
    the planner's batch counts, in some order)."""
    counts = list(CpSatPlanner(scenario).counts)
    return min(replay(scenario, seq).rank_key() for seq in orders(counts))


def tiny(seed: int) -> Scenario:
    """A random tiny line: 3 types, 2 FAS, a small buffer, sometimes PAS downtime and an initial setup."""
    rng = random.Random(seed)
    n = 3
    matrix = [[0 if i == j else rng.randint(1, 6) for j in range(n)] for i in range(n)]
    b = rng.choice([3, 4, 5])
    capacity = rng.randint(b + 2, 4 * b)
    line = make_line(
        types=n,
        fas_units=(rng.randint(4, 9), rng.randint(4, 9)),
        capacity=capacity,
        batch_size=b,
        matrix=matrix,
    )
    plans = [[(rng.randrange(n), rng.randint(2, 7)) for _ in range(rng.randint(2, 3))] for _ in range(2)]
    stock = [rng.randint(0, 3) for _ in range(n)]
    down = [("PAS", rng.randint(0, 20), rng.randint(21, 40))] if rng.random() < 0.3 else []
    week = make_week(line, plans, stock=stock, initial_setup=rng.choice([None, 0, 1]), downtime=down)
    return make_scenario(line, week)


# Seeds of `tiny` whose week has a zero-idle plan with at most 8 batches (found by brute force).
ZERO_IDLE_SEEDS = [2, 6, 10, 13, 21, 29, 34, 37, 38]


@pytest.mark.parametrize("seed", ZERO_IDLE_SEEDS, ids=lambda s: f"tiny-{s}")
def test_cpsat_finds_the_brute_force_optimum_on_tiny_lines(seed: int) -> None:
    scenario = tiny(seed)
    run, plan = plan_with_cpsat(scenario, EXACT)
    best = brute_force(scenario)
    assert plan.mode == ZERO_IDLE and plan.status == "OPTIMAL"
    assert run.results.rank_key() == best
    assert plan.setup_effort == run.results.setup_effort == plan.bound  # proved: bound meets incumbent


def test_when_idle_is_unavoidable_cpsat_minimises_it_first() -> None:
    # FAS1 starts with T2, of which there is none: it waits for the first batch whatever the plan.
    line = make_line(types=2, fas_units=(5, 7), capacity=12, batch_size=4, matrix=[[0, 3], [1, 0]])
    week = make_week(line, [[(1, 6), (0, 8)], [(0, 5), (1, 6)]], stock=[3, 0])
    scenario = make_scenario(line, week)
    run, plan = plan_with_cpsat(scenario, EXACT)
    assert plan.mode == MIN_IDLE and plan.zero_idle == "infeasible" and plan.bound is None
    assert run.results.idle_s > 0
    assert run.results.rank_key() == brute_force(scenario)


def test_an_infeasible_stage_is_said_not_hidden_behind_the_next_ones_optimal(tmp_path: Path) -> None:
    # Both FAS need their second unit at 5 s; only the first batch (in at 4 s) comes in time, so
    # every deadline alone can be met but not both: CP-SAT proves zero idle infeasible.
    line = make_line(
        types=2, fas_units=(5, 5), capacity=10, batch_size=2, pas_unit=2, matrix=[[0, 3], [1, 0]]
    )
    scenario = make_scenario(line, make_week(line, [[(0, 4)], [(1, 4)]], stock=[1, 1]))
    run, plan = plan_with_cpsat(scenario, EXACT)
    assert all(d.position >= 0 for d in CpSatPlanner(scenario)._deadline_positions())
    assert plan.stages == (
        ("zero idle", "INFEASIBLE"),
        ("least idle", "OPTIMAL"),
        ("setup effort", "OPTIMAL"),
    )
    assert plan.zero_idle == "infeasible" and plan.mode == MIN_IDLE
    assert run.results.rank_key() == brute_force(scenario)
    summary = solver_summary(Comparison(scenario, [run], plan))
    assert summary is not None
    measured, model = summary.splitlines()
    k = run.results
    assert measured.startswith(f"CP-SAT plan, measured by the twin: idle {k.idle_s} s, setup effort ")
    assert "zero idle INFEASIBLE, least idle OPTIMAL, setup effort OPTIMAL" in model
    estimate = f"setup effort {plan.setup_effort:g}, idle {plan.idle_estimate_s} s"
    assert f"model estimates for its incumbent: {estimate}" in model
    # compare.md: the two lines are two Markdown paragraphs, not one run together
    write_comparison(tmp_path, Comparison(scenario, [run], plan), {})
    assert (tmp_path / "compare.md").read_text(encoding="utf-8").endswith(f"\n\n{measured}\n\n{model}\n")


def test_a_stage_that_runs_out_of_time_is_said_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # w1 at batch size 80 has no zero-idle plan and half a second is far too short for the
    # least-idle model: CP-SAT says UNKNOWN and the starting rule plan stands, said as such.
    out = tmp_path / "plan"
    args = ["plan", "--planner", "cpsat", "--batch-size", "80", "--time-limit", "0.5", "--out", str(out)]
    assert main(args) == 0
    solver = json.loads((out / "results.json").read_text())["solver"]
    assert solver["stages"] == {"least idle": "UNKNOWN"} and solver["status"] == "UNKNOWN"
    assert solver["from_hint"] and solver["model_idle_estimate_s"] is None
    printed = capsys.readouterr().out
    assert "least idle UNKNOWN; no model solution" in printed
    assert "the starting rule plan: CP-SAT found nothing the twin ranks better" in printed


@pytest.mark.parametrize("batch_size", [20, 50])
def test_the_timeline_gives_the_twins_entry_times_of_a_zero_idle_plan(
    ref_line: LineConfig, config_dir: Path, batch_size: int
) -> None:
    scenario = Scenario.build(ref_line, load_week(config_dir / "weeks" / "w2", ref_line), batch_size)
    results, trace = simulate(scenario, SetupAwarePolicy())
    assert results.idle_s == 0
    timeline = Timeline(scenario)
    counts = [sum(b.type == k for b in trace.batches) for k in range(len(scenario.types))]
    assert list(timeline.batches_needed()) == counts
    assert timeline.entry_times(len(trace.batches)) == [b.entered_s for b in trace.batches]


def test_plan_cpsat_reports_solver_figures_and_the_twins_kpis(
    tmp_path: Path, ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    out = tmp_path / "cpsat"
    # 6 s: with 3 s CP-SAT found no solution (UNKNOWN) while another test worker shared the two cores
    args = ["plan", "--planner", "cpsat", "--batch-size", "50", "--time-limit", "6", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    solver, kpis = results["solver"], results["kpis"]
    assert solver["status"] in ("FEASIBLE", "OPTIMAL") and solver["mode"] == ZERO_IDLE
    assert solver["stages"] == {"zero idle": solver["status"]} and solver["kept_incumbent"]
    assert 0 < solver["bound"] <= solver["model_setup_effort"] == kpis["setup_effort"]
    assert kpis["idle_s"] == 0 and not kpis["deadlock"]
    rule = simulate(Scenario.build(ref_line, ref_week, 50), SetupAwarePolicy())[0]
    assert kpis["setup_effort"] <= rule.setup_effort  # it starts from the better rule plan
    replayed = tmp_path / "replay"
    assert main(["simulate", "--sequence", str(out / "sequence.csv"), "--out", str(replayed)]) == 0
    assert json.loads((replayed / "results.json").read_text())["kpis"] == kpis


def test_compare_writes_one_table_csv_and_plot_with_gaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "compare",
        "--planners",
        "rules,cpsat,rl",
        "--time-limit",
        "3",
        "--plans",
        "2",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "| cpsat |" in capsys.readouterr().out
    rows = {r["planner"]: r for r in json.loads((tmp_path / "compare.json").read_text())["rows"]}
    agent = next(name for name in rows if name.startswith("rl ("))
    assert agent.endswith(": best of 3)")
    planners = ["random", "first-fit", "earliest-runout", "setup-aware", "slack-greedy", "cpsat", agent]
    assert sorted(rows) == sorted(planners)
    assert list(rows) == sorted(rows, key=lambda n: rank_key(rows[n]))  # the table is ranked
    assert rows["cpsat"]["gap_cpsat"] is None  # never a planner against itself
    assert 0.0 < rows["cpsat"]["gap_bound"] < 1.0
    rule, cpsat = rows["setup-aware"], rows["cpsat"]  # zero idle both; CP-SAT starts from the rule's plan
    expected = (rule["setup_effort"] - cpsat["setup_effort"]) / rule["setup_effort"]
    assert rule["gap_cpsat"] == pytest.approx(expected, abs=5e-4) and rule["gap_cpsat"] >= 0.0
    assert rows["random"]["gap_cpsat"] is None  # idle time: an effort gap would flatter it
    csv_lines = (tmp_path / "compare.csv").read_text().splitlines()
    assert "gap_cpsat,gap_bound" in csv_lines[0]
    assert len(csv_lines) == 1 + len(rows)
    assert "| planner |" in (tmp_path / "compare.md").read_text()
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("cpsat", "setup-aware", "rl"):
        assert (tmp_path / "sequences" / f"{name}.csv").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--planners", "rules,magic"], "unknown planner 'magic'"),
        (["compare", "--planners", "cpsat,cpsat"], "named twice"),
        (["plan", "--planner", "rules"], "name one planner"),
        (["plan", "--planner", "cpsat", "--time-limit", "0"], "--time-limit 0: must be positive"),
        (["plan", "--planner", "cpsat", "--workers", "0"], "--workers 0: must be at least 1"),
        (["plan", "--planner", "rl:missing.zip"], "missing.zip"),
    ],
    ids=["unknown", "twice", "several-for-plan", "time-limit", "workers", "missing-model"],
)
def test_planner_mistakes_give_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_b80_prints_the_twins_figures_first_and_labels_the_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    # issue 14: w1 at batch size 80 (zero idle impossible) printed the model's "OPTIMAL, incumbent
    # 393, idle estimate 3140 s" for a plan the twin measured at 684 and 9,590 s idle.
    out = tmp_path / "plan"
    args = ["plan", "--planner", "cpsat", "--batch-size", "80", "--time-limit", "2", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    results = json.loads((out / "results.json").read_text())
    kpis, solver = results["kpis"], results["solver"]
    replayed = tmp_path / "replay"
    replay = ["simulate", "--sequence", str(out / "sequence.csv"), "--batch-size", "80"]
    assert main([*replay, "--out", str(replayed)]) == 0
    assert json.loads((replayed / "results.json").read_text())["kpis"] == kpis  # the twin's figures
    scenario = Scenario.build(ref_line, ref_week, 80)
    rules = [simulate(scenario, rule())[0] for rule in (SetupAwarePolicy, EarliestRunoutPolicy)]
    assert Results(**kpis).rank_key() <= min(r.rank_key() for r in rules)  # never worse than its start
    measured = next(
        i for i, line in enumerate(printed) if line.startswith("CP-SAT plan, measured by the twin")
    )
    assert f"idle {kpis['idle_s']} s, setup effort {kpis['setup_effort']:g}" in printed[measured]
    model = printed[measured + 1]
    assert model.startswith("CP-SAT model (min-idle; zero idle proved impossible): least idle ")
    if solver["model_idle_estimate_s"] is None:  # no model solution in the time: said so
        assert "no model solution" in model and solver["from_hint"]
    else:
        estimate = f"estimates for its incumbent: setup effort {solver['model_setup_effort']:g}, idle "
        assert f"model {estimate}{solver['model_idle_estimate_s']} s" in model
    assert solver["zero_idle"] == "infeasible" and "least idle" in solver["stages"]
    assert "setup_effort" not in solver and "idle_estimate_s" not in solver  # the model's are model_*
    row = next(line for line in printed if line.startswith("| cpsat |")).split("|")
    assert row[7].strip() == "-"  # no gap of CP-SAT against itself

    compared = tmp_path / "compare"
    args = ["compare", "--planners", "rules,cpsat", "--batch-size", "80", "--time-limit", "2"]
    assert main([*args, "--out", str(compared)]) == 0
    table = json.loads((compared / "compare.json").read_text())
    rows, measured_kpis = {r["planner"]: r for r in table["rows"]}, table["kpis"]
    cpsat = measured_kpis["cpsat"]
    assert rows["cpsat"]["gap_cpsat"] is None
    for name, row_ in rows.items():
        k = measured_kpis[name]
        like = (
            name != "cpsat" and not k["deadlock"] and k["completion"] == 1 and k["idle_s"] <= cpsat["idle_s"]
        )
        expected = round((k["setup_effort"] - cpsat["setup_effort"]) / k["setup_effort"], 3) if like else None
        assert row_["gap_cpsat"] == expected, name
        assert row_["gap_bound"] is None  # no bound without a zero-idle plan
