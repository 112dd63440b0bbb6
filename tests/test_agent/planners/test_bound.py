"""The lower bound against brute force: on seeded tiny weeks it never exceeds the least setup effort
of a zero-idle order of the week's batches as the twin measures it, equals it when it says it is
exact, and says zero idle is impossible only when no order runs without idle time. The same holds
for the relaxation alone (the programme capped to one state, the windows)."""

from __future__ import annotations

import pytest
from bruteforce import tiny_best, tiny_week

from agent.planners.bound import IMPOSSIBLE, Bound, lower_bound, window_bound
from agent.planners.deadlines import ZeroIdleModel

SEEDS = range(16)


def optimum(seed: int) -> float | None:
    return tiny_best(seed).best_zero_idle_effort


def check(bound: Bound, best: float | None) -> None:
    """`bound` is valid for a week whose least zero-idle effort is `best` (None: no such plan)."""
    if bound.value is None:
        assert best is None, f"{bound.method}: zero idle impossible, yet an order costs {best}"
    elif best is None:  # every number bounds the empty set, but none is its optimum
        assert not bound.exact, f"{bound.method} claims {bound.value} is the optimum of no plan"
    else:
        assert bound.value <= best, f"{bound.method}: {bound.value} above the optimum {best}"
        assert not bound.exact or bound.value == best, f"{bound.method}: {bound.value} is not {best}"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"tiny-{s}")
def test_the_bound_is_at_most_the_brute_force_optimum(seed: int) -> None:
    scenario = tiny_week(seed)
    best = optimum(seed)
    check(lower_bound(scenario), best)
    check(lower_bound(scenario, max_states=1), best)  # the programme cut: the relaxations answer


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"tiny-{s}")
def test_the_windows_alone_are_at_most_the_brute_force_optimum(seed: int) -> None:
    best = optimum(seed)
    if best is not None:
        assert window_bound(ZeroIdleModel(tiny_week(seed))) <= best


def test_on_the_tiny_weeks_the_bound_proves_optima_and_impossibility() -> None:
    """The seeds show the bound at work, not only below the optimum: it proves the optimum of
    some weeks, zero idle impossible in some, and the relaxations alone reach a positive value."""
    bounds = {seed: lower_bound(tiny_week(seed)) for seed in SEEDS}
    assert sum(b.exact and b.value == optimum(s) for s, b in bounds.items()) >= 5
    assert sum(b.method == IMPOSSIBLE for b in bounds.values()) >= 3
    relaxed = [lower_bound(tiny_week(s), max_states=1) for s in SEEDS if optimum(s) is not None]
    assert any(not b.exact and b.value for b in relaxed)
