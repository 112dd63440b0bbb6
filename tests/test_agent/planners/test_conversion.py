"""Coarse to fine: a plan made at one batch size, converted to another for the same week. A b = 50
plan cut into batches of 25 or 10 keeps zero idle and its setup effort on the reference weeks (the
issue's example), merged back it is the plan it was, and a converted plan is always exactly the
week's batches at the new size, whatever the hint lacks or holds too many of."""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest
from builders import make_line, make_scenario, make_week
from paths import CONFIG

from agent.cli.inputs import load_scenario
from agent.errors import UsageError
from agent.planners.conversion import Hint, convert
from agent.planners.dp import solve_exact
from agent.planners.policies import SequencePolicy, SetupAwarePolicy
from agent.planners.run import PlannedRun, run_planner
from twin import Results, Scenario
from twin.timeline import Timeline

WEEKS = ("w1", "w2", "w3")


@cache
def week(name: str, batch_size: int) -> Scenario:
    return load_scenario(CONFIG / "line.toml", CONFIG / "weeks" / name, batch_size)


def replay(scenario: Scenario, sequence: list[int]) -> Results:
    return run_planner(scenario, SequencePolicy.of_types(sequence, scenario.types, "converted")).results


def batches(scenario: Scenario) -> Counter[int]:
    """The week's batches at the scenario's size: what a complete run builds."""
    return Counter({k: n for k, n in enumerate(Timeline(scenario).batches_needed()) if n})


def hint_of(run: PlannedRun, scenario: Scenario) -> Hint:
    return Hint.of([b.type for b in run.trace.batches], scenario, run.planner)


def cut(plan: list[int], parts: int, needed: Counter[int]) -> list[int]:
    """The issue's rule: each batch becomes `parts` batches of its type, and of each type the last
    ones the week no longer needs are dropped."""
    pieces = [k for k in plan for _ in range(parts)]
    extra = Counter(pieces) - needed
    out: list[int] = []
    for k in reversed(pieces):
        if extra[k]:
            extra[k] -= 1
        else:
            out.append(k)
    return out[::-1]


def zero_idle_plan(scenario: Scenario, planner: str) -> PlannedRun:
    """A zero-idle plan of the week: setup-aware's, or the programme's exact one."""
    if planner == "setup-aware":
        run = run_planner(scenario, SetupAwarePolicy())
    else:
        exact = solve_exact(scenario)
        assert exact is not None and exact.exact
        run = run_planner(scenario, SequencePolicy.of_types(exact.sequence, scenario.types, "dp"))
    assert (run.results.deadlock, run.results.idle_s) == (False, 0)
    return run


@pytest.mark.parametrize("planner", ["setup-aware", "dp"])
@pytest.mark.parametrize("name", WEEKS)
def test_a_b50_plan_cut_into_25_and_10_keeps_its_effort_and_into_20_zero_idle(
    name: str, planner: str
) -> None:
    coarse = week(name, 50)
    run = zero_idle_plan(coarse, planner)
    plan = [b.type for b in run.trace.batches]
    hint = hint_of(run, coarse)
    for size in (25, 10):
        fine = week(name, size)
        converted = convert(hint, fine)
        assert converted == cut(plan, 50 // size, batches(fine))
        results = replay(fine, converted)
        assert (results.deadlock, results.idle_s) == (False, 0)
        assert results.setup_effort == run.results.setup_effort
        # merged back into batches of 50 it is the plan it was cut from
        assert convert(Hint.of(converted, fine, "cut"), coarse) == plan
    # batches of 20 straddle those of 50: the order moves where it misses a deadline
    fine = week(name, 20)
    converted = convert(hint, fine)
    assert Counter(converted) == batches(fine)
    results = replay(fine, converted)
    assert (results.deadlock, results.idle_s) == (False, 0)


@pytest.mark.parametrize("name", WEEKS)
def test_a_b10_plan_merged_into_batches_of_50_is_a_complete_plan(name: str) -> None:
    fine, coarse = week(name, 10), week(name, 50)
    run = run_planner(fine, SetupAwarePolicy())
    merged = convert(hint_of(run, fine), coarse)
    assert Counter(merged) == batches(coarse)
    results = replay(coarse, merged)
    assert not results.deadlock and results.completion == 1.0


def two_types(batch_size: int) -> Scenario:
    """One FAS taking 4 T1, 4 T2, then 4 T1, one every 10 s, from an empty buffer: batch j of a
    type is due when the FAS takes that batch's first unit."""
    line = make_line(types=2, fas_units=(10,), capacity=12, batch_size=batch_size)
    return make_scenario(line, make_week(line, [[(0, 4), (1, 4), (0, 4)]], stock=[0, 0]))


@pytest.mark.parametrize(
    ("types", "size", "expected"),
    [
        # split: each batch of 4 becomes two of 2
        (("T1", "T2", "T1"), 2, [0, 0, 1, 1, 0, 0]),
        # batches of 3 (T1: 3 of them, T2: 2) in the order the stream reaches their first unit:
        # T1 units 1 and 4 in the first batch, T2 units 1 and 4 in the second, T1 unit 7 in the third
        (("T1", "T2", "T1"), 3, [0, 0, 1, 1, 0]),
        # merge: the batch of 8 T1 sits where its first unit was
        (("T1", "T2", "T1"), 8, [0, 1]),
        # too many batches: the week needs three at b = 4
        (("T1", "T2", "T1", "T1", "T2"), 4, [0, 1, 0]),
        # a type the hint lacks goes before the first batch due after it (T2 at 40 s, T1's second at 80 s)
        (("T1", "T1"), 4, [0, 1, 0]),
        # no batches at all: the deadline order
        ((), 2, [0, 0, 1, 1, 0, 0]),
    ],
    ids=["split", "batches-of-3", "merge", "too-many", "type-missing", "empty"],
)
def test_conversion_of_a_hand_made_plan(types: tuple[str, ...], size: int, expected: list[int]) -> None:
    scenario = two_types(size)
    converted = convert(Hint(4, types, "hand@4"), scenario)
    assert converted == expected
    assert Counter(converted) == batches(scenario)
    results = replay(scenario, converted)
    assert not results.deadlock and results.completion == 1.0


def test_an_order_that_misses_a_deadline_moves_to_meet_it() -> None:
    # F1 takes one T1 (in stock), then 4 T2 from 20 s, then 4 T1 from 100 s; a batch takes 12 s,
    # so only the first enters by 20 s: T2 goes first whatever the hint says
    line = make_line(types=2, fas_units=(20,), pas_unit=3, capacity=12, batch_size=4)
    scenario = make_scenario(line, make_week(line, [[(0, 1), (1, 4), (0, 4)]], stock=[1, 0]))
    assert replay(scenario, [0, 1]).idle_s > 0
    converted = convert(Hint(4, ("T1", "T2"), "hand@4"), scenario)
    assert converted == [1, 0]
    assert replay(scenario, converted).idle_s == 0


def test_a_type_missing_from_a_reference_plan_is_planned_by_its_deadlines() -> None:
    coarse = week("w1", 50)
    run = run_planner(coarse, SetupAwarePolicy())
    without_t3 = tuple(t for t in hint_of(run, coarse).types if t != "T3")
    converted = convert(Hint(50, without_t3, "no-T3@50"), coarse)
    assert Counter(converted) == batches(coarse)
    results = replay(coarse, converted)
    assert not results.deadlock and results.completion == 1.0


def test_a_hint_for_another_lines_types_is_refused_naming_the_hint() -> None:
    with pytest.raises(UsageError) as caught:
        convert(Hint(50, ("T1", "Axle", "Hub"), "best@50"), two_types(4))
    assert caught.value.param == "hint" and caught.value.value == "best@50"
    assert str(caught.value) == (
        "hint best@50: names types ['Axle', 'Hub'] that line 'test' does not have (its types: T1, T2)"
    )


def test_a_hint_without_a_batch_size_is_refused_naming_the_hint() -> None:
    with pytest.raises(UsageError, match=r"^hint best@0: batch size 0 must be at least 1$"):
        convert(Hint(0, ("T1",), "best@0"), two_types(4))
