"""The planners: one interface, masks respected, rules behave as named, sequences replay exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import make_line, make_scenario, make_week

from agent.planners.policies import (
    RULES,
    EarliestRunoutPolicy,
    FirstFitPolicy,
    RandomPolicy,
    SequencePolicy,
    SetupAwarePolicy,
)
from twin import ConfigError, Forecast, Line, LineConfig, Scenario, SequenceEntry, WeekConfig, simulate


@pytest.fixture(scope="module")
def w1_b50(ref_line: LineConfig, ref_week: WeekConfig) -> Scenario:
    return Scenario.build(ref_line, ref_week, 50)


@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_completes_a_run_within_the_mask(name: str, w1_b50: Scenario) -> None:
    res, trace = simulate(w1_b50, RULES[name]())
    assert res.batches == len(trace.batches) > 0


def test_first_fit_picks_the_first_valid_type() -> None:
    line = make_line(types=3, fas_units=(10,))
    sim = Line(make_scenario(line, make_week(line, [[(2, 5), (1, 5)]])))
    request = sim.start()
    assert request is not None and request.valid == (1, 2)
    assert FirstFitPolicy()(request).type == 1


def test_earliest_runout_serves_the_type_needed_first() -> None:
    line = make_line(types=3, fas_units=(10, 10))
    week = make_week(line, [[(2, 2), (0, 5)], [(1, 5)]], stock=[0, 3, 2])
    request = Line(make_scenario(line, week)).start()
    assert request is not None
    forecast = Forecast(request)
    # Step 1 at time 0 took one T3 (F1) and one T2 (F2): stock is T1 0, T2 2, T3 1.
    # F1 takes its last T3 at 10, then T1 at 20: T1 runs out at 20. F2 takes T2 at 10, 20, 30: out at 30.
    assert request.stock == (0, 2, 1)
    assert forecast.runout_s(0) == 20 and forecast.runout_s(1) == 30 and forecast.runout_s(2) is None
    assert forecast.demand_between(1, 0, 25) == 2
    assert EarliestRunoutPolicy()(request).type == 0  # T3 has no remaining requirement: not valid


def test_setup_aware_prefers_a_cheap_changeover_among_urgent_types(w1_b50: Scenario) -> None:
    er, _ = simulate(w1_b50, EarliestRunoutPolicy())
    sa, _ = simulate(w1_b50, SetupAwarePolicy())
    assert sa.idle_s == er.idle_s == 0
    assert sa.setup_effort < er.setup_effort


def test_random_is_reproducible_and_seed_dependent(w1_b50: Scenario) -> None:
    a, _ = simulate(w1_b50, RandomPolicy(1))
    b, _ = simulate(w1_b50, RandomPolicy(1))
    c, _ = simulate(w1_b50, RandomPolicy(2))
    assert a == b and a != c


def test_sequence_replays_a_plan_exactly(w1_b50: Scenario) -> None:
    res, trace = simulate(w1_b50, SetupAwarePolicy())
    replay, _ = simulate(w1_b50, SequencePolicy(trace.sequence(w1_b50.types), w1_b50.types))
    assert replay == res


def test_sequence_errors_name_file_line_and_position(tmp_path: Path) -> None:
    line = make_line(types=2, fas_units=(10,), capacity=20, batch_size=5)
    sc = make_scenario(line, make_week(line, [[(0, 12)]]))
    source = tmp_path / "seq.csv"
    source.write_text("position,type,quantity\n2,T2,\n1,T1,21\n", encoding="utf-8")  # position 2: line 2
    with pytest.raises(ConfigError, match=rf"^{source}:2: type: batch 2 is not valid.* \(value 'T2'\)$"):
        simulate(sc, SequencePolicy([SequenceEntry(type="T1"), SequenceEntry(type="T2")], sc.types, source))
    with pytest.raises(ConfigError, match=rf"^{source}:3: the sequence ends after 1 batches.*'T1': 7"):
        simulate(sc, SequencePolicy([SequenceEntry(type="T1")], sc.types, source))
    with pytest.raises(ConfigError, match=rf"^{source}:3: quantity: batch 1 .*capacity 20.*\(value 21\)$"):
        simulate(sc, SequencePolicy([SequenceEntry(type="T1", quantity=21)], sc.types, source))
