"""Generated weeks: like the reference ones, reproducible, and written in the contract's format."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agent.cli import main
from agent.planners.policies import SetupAwarePolicy
from twin import LineConfig, Scenario, WeekConfig, WeekGenerator, WeekSpec, load_week, simulate, write_week


def test_same_seed_same_week_other_seed_other_week(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    generator = WeekGenerator(ref_line, ref_week)
    assert generator.generate(5) == generator.generate(5)
    assert generator.generate(5).plans != generator.generate(6).plans


def test_a_generated_week_looks_like_the_reference(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    spec = WeekSpec(fill=0.97, order_min=20, order_max=150, initial_stock=250)
    week = WeekGenerator(ref_line, ref_week, spec).generate(1)
    scenario = Scenario.build(ref_line, week, 50)
    week_s = scenario.calendar.week_work_s
    for fas, plan in zip(ref_line.fas, scenario.plans, strict=True):
        assert sum(q for _, q in plan) == int(week_s * 0.97 // fas.unit_time_s)
        assert all(q <= 150 for _, q in plan) and all(q >= 20 for _, q in plan[:-1])
        assert all(a[0] != b[0] for a, b in itertools.pairwise(plan))  # no repeated type
    assert sum(week.initial_stock.values()) == 250
    assert week.week_start == ref_week.week_start and week.timezone == ref_week.timezone
    results, _ = simulate(scenario, SetupAwarePolicy())
    assert results.completion == 1.0 and not results.deadlock


def test_fixed_shares_leave_out_types_without_share(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    week = WeekGenerator(ref_line, ref_week, WeekSpec(shares={"T1": 1.0, "T2": 1.0})).generate(0)
    assert {o.type for orders in week.plans.values() for o in orders} == {"T1", "T2"}


def test_generate_week_cli_writes_a_loadable_week(tmp_path: Path, ref_line: LineConfig) -> None:
    out = tmp_path / "g1"
    assert main(["generate-week", "--seed", "3", "--out", str(out), "--fill", "0.9"]) == 0
    week = load_week(out, ref_line)
    again = tmp_path / "g2"
    write_week(again, week, ref_line.types)
    assert load_week(again, ref_line) == week
    assert (out / "plan.csv").read_text() == (again / "plan.csv").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--order-min", "200"], "--order-min 200 exceeds --order-max"),
        (["--shares", "T1=0.5,X=0.5"], "unknown types ['X']"),
        (["--shares", "T1:0.5"], "TYPE=SHARE"),
        (["--initial-stock", "900"], "--initial-stock 900 exceeds the buffer capacity"),
    ],
    ids=["order-range", "unknown-type", "malformed-shares", "stock-too-large"],
)
def test_generate_week_rejects_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["generate-week", "--seed", "1", "--out", str(tmp_path / "w"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


NO_UNIT = "FAS1 gets no whole unit (90 s) of the week's 75 working hours: give at least 0.000334"  # 90/270000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--fill", "1e-9"],
            "--fill 1e-09: " + NO_UNIT,
        ),
        (
            ["--fill", "0.0003", "--initial-stock", "0"],
            "--fill 0.0003: " + NO_UNIT,
        ),
        (
            ["--fill", "0.01", "--order-min", "40", "--order-max", "60"],
            "--order-min 40: larger than the whole plan of FAS1 (30 units at fill 0.01)",
        ),
        (
            ["--fill", "0.01", "--order-min", "10"],
            "--initial-stock 250: more than the 120 units the plans take at fill 0.01 (give at most 120)",
        ),
    ],
    ids=["no-order", "no-unit", "order-min-above-the-plan", "stock-above-the-plans"],
)
def test_generate_week_refuses_a_spec_that_plans_nothing_or_ignores_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "w"
    assert main(["generate-week", "--seed", "1", "--out", str(out), *argv]) == 2
    assert capsys.readouterr().err.strip() == f"linetwin: error: {message}"
    assert not out.exists()


def test_generate_week_at_the_smallest_fill_plans_a_unit_per_fas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref_line: LineConfig
) -> None:
    """The fill the refusal names is enough; an --order-max beyond every plan means no cap."""
    out = tmp_path / "w"
    argv = ["--fill", "0.000334", "--order-min", "1", "--initial-stock", "4", "--order-max", str(10**20)]
    assert main(["generate-week", "--seed", "1", "--out", str(out), *argv]) == 0
    week = load_week(out, ref_line)
    assert [sum(o.quantity for o in week.plans[f.id]) for f in ref_line.fas] == [1, 1, 1, 1]
    assert sum(week.initial_stock.values()) == 4
    assert "4 orders, initial stock 4" in capsys.readouterr().out
