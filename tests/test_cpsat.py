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
from agent.cpsat import MIN_IDLE, ZERO_IDLE, CpSatPlanner, CpSatSettings, plan_with_cpsat
from agent.policies import SequencePolicy, SetupAwarePolicy
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
    args = ["plan", "--planner", "cpsat", "--batch-size", "50", "--time-limit", "3", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    solver, kpis = results["solver"], results["kpis"]
    assert solver["status"] in ("FEASIBLE", "OPTIMAL") and solver["mode"] == ZERO_IDLE
    assert 0 < solver["bound"] <= solver["setup_effort"] == kpis["setup_effort"]
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
        "rules,cpsat,ppo",
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
    agent = next(name for name in rows if name.startswith("ppo ("))
    assert agent.endswith(": best of 3)")
    planners = ["random", "first-fit", "earliest-runout", "setup-aware", "cpsat", agent]
    assert sorted(rows) == sorted(planners)
    assert list(rows) == sorted(rows, key=lambda n: rank_key(rows[n]))  # the table is ranked
    assert rows["cpsat"]["gap_incumbent"] == 0.0
    assert 0.0 < rows["cpsat"]["gap_bound"] < 1.0
    rule, cpsat = rows["setup-aware"], rows["cpsat"]  # zero idle both; CP-SAT starts from the rule's plan
    expected = (rule["setup_effort"] - cpsat["setup_effort"]) / rule["setup_effort"]
    assert rule["gap_incumbent"] == pytest.approx(expected, abs=1e-4) and rule["gap_incumbent"] >= 0.0
    assert rows["random"]["gap_incumbent"] is None  # idle time: an effort gap would flatter it
    csv_lines = (tmp_path / "compare.csv").read_text().splitlines()
    assert csv_lines[0].startswith("planner,completion,deadlock,idle_s,setup_effort,setups,gap_incumbent")
    assert len(csv_lines) == 1 + len(rows)
    assert "| planner |" in (tmp_path / "compare.md").read_text()
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("cpsat", "setup-aware", "ppo"):
        assert (tmp_path / "sequences" / f"{name}.csv").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--planners", "rules,magic"], "unknown planner 'magic'"),
        (["compare", "--planners", "cpsat,cpsat"], "named twice"),
        (["plan", "--planner", "rules"], "name one planner"),
        (["plan", "--planner", "cpsat", "--time-limit", "0"], "--time-limit 0: must be positive"),
        (["plan", "--planner", "cpsat", "--workers", "0"], "--workers 0: must be at least 1"),
        (["plan", "--planner", "ppo:missing.zip"], "missing.zip"),
    ],
    ids=["unknown", "twice", "several-for-plan", "time-limit", "workers", "missing-model"],
)
def test_planner_mistakes_give_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
