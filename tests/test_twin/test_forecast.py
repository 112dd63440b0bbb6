"""The forecast's run-outs and demand equal a direct count of the planned takes, unit by unit, at
every decision of runs that keep the FAS at pace (schedule lookups) and runs that starve them
(the search), and on a line with planned downtime."""

from __future__ import annotations

import pytest
from builders import make_line, make_week

import twin.forecast as forecasting
from agent.planners.policies import RandomPolicy, SetupAwarePolicy
from twin import Decision, DecisionRequest, Forecast, LineConfig, Scenario, WeekConfig, simulate


def _planned_takes(request: DecisionRequest) -> list[tuple[int, int]]:
    """(time, type) of every take the plans still make at nominal pace, one unit at a time."""
    sc = request.scenario
    takes = []
    for f, pos in enumerate(request.fas):
        if pos.next_take_s is None:
            continue
        time = pos.next_take_s
        for j, (k, quantity) in enumerate(sc.plans[f][pos.order :]):
            for _ in range(quantity - (pos.taken if j == 0 else 0)):
                takes.append((time, k))
                time += sc.fas_unit_s[f]
    return takes


class Checked:
    """A policy's decisions, each request's forecast checked against the direct count first."""

    def __init__(self, policy: RandomPolicy | SetupAwarePolicy) -> None:
        self.policy, self.decisions, self.looked_up = policy, 0, 0

    def __call__(self, request: DecisionRequest) -> Decision:
        takes = _planned_takes(request)
        forecast = Forecast(request)
        n, now = len(request.stock), request.time_s
        for k in range(n):
            times = sorted(t for t, kind in takes if kind == k)
            expected = times[request.stock[k]] if len(times) > request.stock[k] else None
            assert forecast.runout_s(k) == expected, (request.index, k)
        assert forecast.runouts(range(n)) == [forecast.runout_s(k) for k in range(n)]
        for start, end in ((now, now + 86_400), (now + 100, now + 7_000)):
            direct = [sum(1 for t, kind in takes if kind == k and start <= t < end) for k in range(n)]
            assert forecast.demand(start, end).tolist() == direct
        self.decisions += 1
        self.looked_up += forecast._schedule() is not None  # a kept schedule, not the search
        return self.policy(request)


def test_runouts_and_demand_count_the_planned_takes_at_pace(
    ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    checked = Checked(SetupAwarePolicy())
    results, _ = simulate(Scenario.build(ref_line, ref_week, 50), checked)
    assert results.idle_s == 0 and checked.looked_up >= checked.decisions - forecasting.HOLD > 100


@pytest.mark.parametrize("select", [forecasting.SELECT_TAKES, 0], ids=["select", "search"])
def test_runouts_and_demand_count_the_planned_takes_when_fas_starve(
    ref_line: LineConfig, ref_week: WeekConfig, select: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecasting, "SELECT_TAKES", select)  # the search serves large lines
    checked = Checked(RandomPolicy(3))
    results, _ = simulate(Scenario.build(ref_line, ref_week, 20), checked)
    assert results.idle_s > 0 and 0 < checked.looked_up < checked.decisions


def test_runouts_with_planned_downtime() -> None:
    line = make_line(types=3, fas_units=(10, 7, 13), pas_unit=2, capacity=60, batch_size=10)
    plans = [[(0, 30), (1, 20), (2, 25)], [(2, 40), (0, 35)], [(1, 30), (2, 15), (0, 20)]]
    week = make_week(line, plans, stock=[20, 10, 10], downtime=[("F1", 100, 400), ("F3", 300, 900)])
    checked = Checked(SetupAwarePolicy())
    simulate(Scenario.build(line, week), checked)
    assert checked.decisions > 10
