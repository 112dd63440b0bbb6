"""The mirror against the offline twin: the events of a simulated week, applied one by one, give the
same KPIs; a line resumed from the mirror's snapshot asks the same decisions; outlooks hold."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.planners.policies import make_rule
from twin import LineConfig, Scenario, WeekConfig
from twin.config import Downtime
from twin.emission import EventTap, finish_time
from twin.line import Line
from twin.mirror import EventRejected, Mirror
from twin.outlook import Outlook, Projection

DOWN = [("PAS", 8, 95), ("PAS", 30, 200), (0, 9, 37), (1, 9, 61), (2, 33, 300), (3, 6, 40)]
"""(station or FAS index, hour of the week, minutes): planned downtime that cuts units and batches."""


@pytest.fixture(scope="module")
def week_with_downtime(ref_line: LineConfig, ref_week: WeekConfig) -> WeekConfig:
    monday = dt.datetime.combine(ref_week.week_start, dt.time())
    downtime = [
        Downtime(
            station=s if isinstance(s, str) else ref_line.station_ids[s],
            start=monday + dt.timedelta(hours=h),
            end=monday + dt.timedelta(hours=h, minutes=m),
        )
        for s, h, m in DOWN
    ]
    return ref_week.model_copy(update={"downtime": downtime})


def _follow(scenario: Scenario, rule: str) -> tuple[Line, Mirror, int]:
    """Simulate with `rule`, mirror every event; count decision requests the snapshot got wrong."""
    policy = make_rule(rule, 0)
    line, mirror = Line(scenario), Mirror(scenario)
    tap = EventTap(line)
    request = line.start()
    mismatches = 0
    while True:
        for event in tap.collect():
            mirror.apply(event)
        if request is None:
            return line, mirror, mismatches
        resumed = Line(scenario, snapshot=mirror.snapshot()).start()
        mismatches += resumed != request and (
            resumed is None
            or (resumed.valid, resumed.stock, resumed.last_type, resumed.fas, resumed.time_s)
            != (request.valid, request.stock, request.last_type, request.fas, request.time_s)
        )
        request = line.decide(policy(request))


@pytest.mark.parametrize(
    ("rule", "batch_size"), [("setup-aware", 20), ("earliest-runout", 50), ("random", 100)]
)
def test_mirrored_events_give_the_offline_kpis(
    ref_line: LineConfig, week_with_downtime: WeekConfig, rule: str, batch_size: int
) -> None:
    scenario = Scenario.build(ref_line, week_with_downtime, batch_size)
    line, mirror, mismatches = _follow(scenario, rule)
    results, kpis = line.results(), mirror.kpis()
    assert mismatches == 0
    if results.deadlock:  # the twin stops counting at the deadlock instant, the mirror at the last event
        assert kpis.idle_s <= results.idle_s
    else:
        assert kpis.idle_s_by_station == results.idle_s_by_station
    assert results.idle_s > 0 or rule == "setup-aware"  # downtime makes these weeks starve
    assert (kpis.setup_effort, kpis.setups, kpis.completion) == (
        results.setup_effort,
        results.setups,
        results.completion,
    )


def test_an_outlook_holds_while_the_line_follows_it(
    ref_line: LineConfig, week_with_downtime: WeekConfig
) -> None:
    scenario = Scenario.build(ref_line, week_with_downtime, 50)
    policy = make_rule("setup-aware", 0)
    outlook = Projection.simulate(scenario, Mirror(scenario).snapshot(), policy)
    line = Line(scenario)
    results = line.run(policy)
    assert outlook.total.idle_s == results.idle_s
    assert outlook.total.setup_effort == results.setup_effort
    line, mirror = Line(scenario), Mirror(scenario)
    tap, request, held = EventTap(line), line.start(), 0
    while request is not None:
        for event in tap.collect():
            mirror.apply(event)
        resumed = Line(scenario, snapshot=mirror.snapshot()).start()
        assert resumed is not None
        expected = outlook.follow(scenario, resumed, policy(resumed))
        held += expected is not None
        request = line.decide(policy(request))
    assert held == results.batches


def test_the_outlook_answers_each_decision_and_simulates_only_where_the_line_left_it(
    ref_line: LineConfig, week_with_downtime: WeekConfig
) -> None:
    """A live decision enters the outlook once to decide and once to renew; the line follows the
    decider, so only the week start (no projection yet) is simulated, with the whole week ahead."""
    scenario = Scenario.build(ref_line, week_with_downtime, 50)
    policy = make_rule("setup-aware", 0)
    results = Line(scenario).run(policy)
    line, mirror = Line(scenario), Mirror(scenario)
    outlook = Outlook(mirror, policy)
    tap, request, held, renewals = EventTap(line), line.start(), 0, []
    while request is not None:
        for event in tap.collect():
            mirror.apply(event)
        call = outlook.decide()
        assert call is not None and call.decision == policy(request)
        held += call.expected is not None
        if (renewal := outlook.renew()) is not None:
            renewals.append(renewal)
        request = line.decide(call.decision)
    assert held == results.batches - 1 and len(renewals) == 1
    expected = renewals[0].expected
    assert expected is not None and (expected.idle_s, expected.setup_effort) == (
        results.idle_s,
        results.setup_effort,
    )


def test_a_rejected_event_changes_nothing(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    from twin.events import BatchStored, StationUp, UnitFinished, UnitStarted

    scenario = Scenario.build(ref_line, ref_week, 50)
    mirror = Mirror(scenario)
    station = scenario.stations[0]
    first = scenario.types[scenario.plans[0][0][0]]
    other = next(t for t in scenario.types if t != first)
    before = (mirror.snapshot(), mirror.kpis())
    for bad in [
        UnitStarted(0, station, other),
        UnitStarted(0, "FAS99", first),
        UnitStarted(0, station, "T99"),
        UnitFinished(0, station, first),
        BatchStored(0, first, 50),
        StationUp(0, station),
    ]:
        with pytest.raises(EventRejected):
            mirror.apply(bad)
        assert (mirror.snapshot(), mirror.kpis()) == before


def test_a_plan_revision_past_the_overtime_of_a_fas_is_rejected(
    ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    # issue 14: a FAS plan longer than the week and its overtime never ends (like plan.csv, refused)
    from twin.events import PlannedOrder, PlanRevised

    scenario = Scenario.build(ref_line, ref_week, 50)
    mirror = Mirror(scenario)
    station, unit_s = scenario.stations[0], scenario.fas_unit_s[0]
    horizon_s = scenario.calendar.horizon_work_s
    units = horizon_s // unit_s + 1  # one unit more than FAS1 can work by then (the PAS could build it)
    assert units <= scenario.buildable_units
    before = (mirror.snapshot(), mirror.kpis())
    orders = (PlannedOrder(station, 1, scenario.types[0], units),)
    with pytest.raises(EventRejected, match=f"{station}'s orders total {units} units"):
        mirror.apply(PlanRevised(0, ref_week.week_start.isoformat(), 1, orders))
    assert (mirror.snapshot(), mirror.kpis()) == before


def test_work_pauses_during_downtime() -> None:
    assert finish_time(0, 90, ()) == 90
    assert finish_time(0, 90, ((30, 100),)) == 160
    assert finish_time(40, 90, ((0, 50), (60, 70), (200, 300))) == 150
