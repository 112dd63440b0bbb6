"""Small lines computed by hand: idle time, blocking, deadlock, a break in the middle of a batch,
a holiday, downtime and same-instant ties reproduce the numbers `problem.md` implies."""

from __future__ import annotations

import datetime as dt

import pytest
from builders import make_line, make_scenario, make_week

from twin import (
    Decision,
    DecisionRequest,
    InvalidDecision,
    Line,
    Results,
    Scenario,
    SimulationError,
    simulate,
)


def first_valid(request: DecisionRequest) -> Decision:
    return Decision(request.valid[0])


def run(sc: Scenario, decisions: list[int] | None = None) -> Results:
    if decisions is None:
        return simulate(sc, first_valid)[0]
    it = iter(decisions)
    return simulate(sc, lambda r: Decision(next(it)))[0]


def test_idle_until_the_first_batch_arrives() -> None:
    line = make_line(types=1, fas_units=(10,), pas_unit=1, batch_size=2)
    res = run(make_scenario(line, make_week(line, [[(0, 3)]])))
    # FAS waits 0..2; batch 1 enters at 2 (FAS takes), batch 2 at 4; takes at 12 and 22; done at 32.
    assert (res.idle_s, res.makespan_s, res.units_produced, res.batches) == (2, 32, 4, 2)
    assert res.final_stock == {"T1": 1}
    assert res.completion == 1.0 and not res.deadlock and res.setups == 0


def test_blocking_until_a_take_makes_room() -> None:
    line = make_line(types=1, fas_units=(10,), pas_unit=1, capacity=2, batch_size=2)
    res = run(make_scenario(line, make_week(line, [[(0, 4)]], stock=[2])))
    # batch done at 2 with 1 free place: blocked until the take at 10 frees the second one.
    assert (res.pas_blocked_s, res.pas_busy_s, res.idle_s, res.makespan_s) == (8, 2, 0, 40)
    assert res.buffer_max_fill == 2


def test_deadlock_ends_the_run() -> None:
    line = make_line(types=2, fas_units=(10,), pas_unit=1, capacity=2, batch_size=2)
    res = run(make_scenario(line, make_week(line, [[(0, 1), (1, 1)]])), decisions=[0, 1])
    # T1 enters at 2 (FAS idle 0..2), one T1 stays; T2 done at 4 cannot enter; FAS waits for T2 at 12.
    assert res.deadlock
    assert (res.makespan_s, res.idle_s, res.completion, res.pas_blocked_s) == (12, 2, 0.5, 8)


def test_break_in_the_middle_of_a_batch_and_setup_time() -> None:
    calendar = {
        "shifts": [{"days": "Mon-Fri", "start": "06:00", "end": "14:00"}],
        "breaks": [{"days": "Mon-Fri", "start": "10:00", "end": "10:30"}],
    }
    line = make_line(
        types=2,
        fas_units=(3 * 3600,),
        pas_unit=360,
        batch_size=10,
        setup_time=12_600,
        matrix=[[0, 4], [3, 0]],
        calendar=calendar,
    )
    week = make_week(line, [[(0, 1), (1, 1)]], stock=[1, 0], initial_setup=0, timezone="Europe/Berlin")
    res = run(make_scenario(line, week))
    # Changeover T1->T2 takes 3.5 h (06:00-09:30); the batch runs 09:30-10:00 and 10:30-11:00.
    # The FAS finishes its T1 unit at 09:00 and starves until 11:00: 1.5 working hours.
    assert (res.setup_effort, res.setups, res.idle_s) == (4.0, 1, 5400)
    assert res.makespan_s == 16_200 + 3 * 3600
    assert res.makespan_at == "2026-11-23T14:00:00+01:00"  # ends with the shift, not next morning
    holiday = make_week(
        line,
        [[(0, 1), (1, 1)]],
        stock=[1, 0],
        initial_setup=0,
        timezone="Europe/Berlin",
        holidays=[dt.date(2026, 11, 23)],
    )
    moved = run(make_scenario(line, holiday))
    assert (moved.idle_s, moved.makespan_s) == (res.idle_s, res.makespan_s)
    assert moved.makespan_at == "2026-11-24T14:00:00+01:00"


def test_same_instant_station_order() -> None:
    line = make_line(types=1, fas_units=(10, 10), pas_unit=5, batch_size=1)
    res = run(make_scenario(line, make_week(line, [[(0, 1)], [(0, 1)]], stock=[1])))
    assert res.idle_s_by_station == {"F1": 0, "F2": 5}  # F1 takes the only unit at 0


def test_arrival_at_a_unit_boundary_costs_no_idle() -> None:
    line = make_line(types=1, fas_units=(5,), pas_unit=5, capacity=1, batch_size=1)
    res = run(make_scenario(line, make_week(line, [[(0, 3)]], stock=[1])))
    # At 5 and 10: the FAS finds none (step 1), the batch enters (step 2), the FAS starts (step 3).
    assert (res.idle_s, res.makespan_s, res.pas_blocked_s) == (0, 15, 0)


def test_downtime_pauses_work_and_is_not_idle() -> None:
    line = make_line(types=1, fas_units=(10,), pas_unit=1, batch_size=2)
    week = make_week(line, [[(0, 2)]], stock=[2], downtime=[("F1", 5, 12)])
    res = run(make_scenario(line, week))
    assert (res.makespan_s, res.idle_s) == (27, 0)
    assert res.utilisation["F1"] == 1.0


def test_waiting_while_down_is_not_idle() -> None:
    line = make_line(types=1, fas_units=(10,), pas_unit=10, batch_size=1)
    week = make_week(line, [[(0, 1)]], downtime=[("F1", 3, 7)])
    res = run(make_scenario(line, week))
    assert (res.idle_s, res.makespan_s) == (6, 20)  # waits 0..3 and 7..10


def test_pas_downtime_delays_the_batch() -> None:
    line = make_line(types=1, fas_units=(10,), pas_unit=1, batch_size=4)
    res = run(make_scenario(line, make_week(line, [[(0, 1)]], downtime=[("PAS", 2, 6)])))
    assert (res.idle_s, res.pas_busy_s) == (8, 4)


def test_invalid_decision_is_an_error() -> None:
    line = make_line(types=2, fas_units=(10,))
    sim_line = Line(make_scenario(line, make_week(line, [[(0, 3)]])))
    request = sim_line.start()
    assert request is not None and request.valid == (0,)
    with pytest.raises(InvalidDecision, match="T2 is not valid"):
        sim_line.decide(Decision(1))
    with pytest.raises(InvalidDecision, match="quantity"):
        sim_line.decide(Decision(0, quantity=0))
    with pytest.raises(SimulationError):
        sim_line.results()


def test_no_valid_type_stops_the_pas() -> None:
    line = make_line(types=1, fas_units=(10,))
    sim_line = Line(make_scenario(line, make_week(line, [[(0, 3)]], stock=[3])))
    assert sim_line.start() is None  # the stock covers the plan: no decision at all
    assert sim_line.results().batches == 0
