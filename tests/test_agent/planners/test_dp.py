"""The dynamic programme against brute force: on seeded tiny weeks its exact plan has the least
setup effort of every zero-idle order of the week's batches, as the twin measures them, and it says
None exactly when no order runs without idle time. Below it, the deadline model calls an order
zero-idle exactly when the twin runs it without idle time. The oracle's assumption (every plan is
an order of one multiset of batches) is checked against the twin's own action masks."""

from __future__ import annotations

from collections import Counter

import pytest
from bruteforce import counts_of, replay, tiny_best, tiny_week, twin_sequences

from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import solve_exact

SEEDS = range(16)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"tiny-{s}")
def test_the_exact_programme_finds_the_brute_force_optimum(seed: int) -> None:
    scenario = tiny_week(seed)
    best = tiny_best(seed)
    plan = solve_exact(scenario)
    if best.best_zero_idle_effort is None:
        assert plan is None, f"no order of the week runs without idle, yet the programme offers {plan}"
        return
    assert plan is not None and plan.exact
    assert plan.effort == best.best_zero_idle_effort
    measured = replay(scenario, tuple(plan.sequence))
    assert (measured.deadlock, measured.idle_s, measured.setup_effort) == (False, 0, plan.effort)


def test_the_tiny_weeks_hold_weeks_with_and_without_a_zero_idle_plan() -> None:
    """The seeds are worth testing on: some weeks have a zero-idle plan and some do not, and some
    orders deadlock (the oracle tells them apart)."""
    results = [tiny_best(seed) for seed in SEEDS]
    feasible = [r for r in results if r.best_zero_idle_effort is not None]
    assert len(feasible) >= 6 and len(results) - len(feasible) >= 3
    assert any(r.deadlocks for r in results)


@pytest.mark.parametrize("seed", [2, 31, 37], ids=lambda s: f"tiny-{s}")
def test_with_a_setup_time_the_programme_plans_zero_idle_never_below_the_optimum(seed: int) -> None:
    """With a setup time the model assumes a changeover before every batch: stricter than the
    line, so its plan runs without idle in the twin and costs at least the brute-force optimum
    (tiny-31: it finds none; tiny-37: 13 where the twin has 7)."""
    scenario = tiny_week(seed, setup_time=2)
    best = tiny_best(seed, 2).best_zero_idle_effort
    assert best is not None
    plan = solve_exact(scenario)
    if plan is None:
        return
    measured = replay(scenario, tuple(plan.sequence))
    assert (measured.deadlock, measured.idle_s, measured.setup_effort) == (False, 0, plan.effort)
    assert plan.effort >= best


@pytest.mark.parametrize("seed", [0, 2, 3, 13], ids=lambda s: f"tiny-{s}")
def test_every_plan_the_twin_accepts_is_an_order_of_the_weeks_batches(seed: int) -> None:
    """Walking the twin's masks from the week start gives exactly the orders of the multiset,
    each cut where its run deadlocks."""
    counts = Counter({k: n for k, n in enumerate(counts_of(tiny_week(seed))) if n})
    expected = set()
    for order, run in tiny_best(seed).outcomes.items():
        expected.add(order[: run.batches])
        assert run.deadlock or Counter(order[: run.batches]) == counts
    assert twin_sequences(tiny_week(seed)) == expected


@pytest.mark.parametrize("seed", range(6), ids=lambda s: f"tiny-{s}")
def test_the_deadline_model_meets_exactly_the_orders_the_twin_runs_without_idle(seed: int) -> None:
    model = ZeroIdleModel(tiny_week(seed))
    for order, run in tiny_best(seed).outcomes.items():
        assert model.meets(list(order)) == (not run.deadlock and run.idle_s == 0), order
        if not run.deadlock:
            assert model.effort(list(order)) == run.setup_effort, order
