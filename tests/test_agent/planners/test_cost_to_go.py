"""The cost-to-go table against brute force: on seeded tiny weeks its optimum is the least setup
effort of every zero-idle order, and following its best choice at every decision of the twin runs
the week at that effort without idle time."""

from __future__ import annotations

import numpy as np
import pytest
from bruteforce import tiny_best, tiny_week

from agent.planners.cost_to_go import CostToGo
from agent.planners.deadlines import ZeroIdleModel
from twin import Decision
from twin.line import Line

SEEDS = range(16)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"tiny-{s}")
def test_following_the_table_runs_the_brute_force_optimum(seed: int) -> None:
    scenario = tiny_week(seed)
    best = tiny_best(seed).best_zero_idle_effort
    model = ZeroIdleModel(scenario)
    if not model.exact:
        pytest.skip("with a setup time the model is stricter than the line")
    table = CostToGo(model)
    if best is None:
        assert not np.isfinite(table.optimum)
        return
    assert table.optimum == best
    line = Line(scenario)
    request = line.start()
    built = [0] * len(scenario.types)
    while request is not None:
        values = table.choices(built, request.last_type)
        k = int(values.argmin())
        assert np.isfinite(values[k]) and k in request.valid
        built[k] += 1
        request = line.decide(Decision(k))
    results = line.results()
    assert results.idle_s == 0 and results.setup_effort == best


def test_a_position_with_too_many_states_is_refused() -> None:
    with pytest.raises(ValueError, match=r"holds .* states"):
        CostToGo(ZeroIdleModel(tiny_week(0)), max_states=1)
