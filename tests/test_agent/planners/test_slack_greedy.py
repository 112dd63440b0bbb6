"""`slack-greedy` where the zero-idle deadlines cannot all be met -- PAS setup time, PAS downtime,
a holiday, few FAS for many types -- and on a line whose buffer lasts longer than its deadline
horizon: it serves the most urgent type instead of staying, so it completes every week
`setup-aware` completes (it used to fill the buffer with the current type and deadlock)."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.planners.policies import SetupAwarePolicy, SlackGreedyPolicy
from twin import LineConfig, Observer, Scenario, WeekConfig, WeekGenerator, load_calendar, simulate
from twin.config import default_config_dir
from twin.line import Line
from twin.linegen import LineGenerator, LineSpec

PAS_DOWN = {"station": "PAS", "start": "2026-11-26T13:00", "end": "2026-11-26T17:00"}
FAS2_DOWN = {"station": "FAS2", "start": "2026-11-24T09:00", "end": "2026-11-24T15:30"}
HOLIDAY = dt.date(2026, 11, 25)


def _w1(line: LineConfig, week: WeekConfig, **change: object) -> Scenario:
    return Scenario.build(line, WeekConfig.model_validate({**week.model_dump(), **change}), 50)


def _generated(spec: LineSpec, line_seed: int, week_seed: int) -> Scenario:
    line, _ = LineGenerator(spec).generate(line_seed)
    week = WeekGenerator(line, load_calendar(default_config_dir() / "weeks" / "w1", line)).generate(week_seed)
    return Scenario.build(line, week, line.pas.batch_size)


def _cases(line: LineConfig, week: WeekConfig) -> dict[str, Scenario]:
    slow_setup = line.model_copy(update={"pas": line.pas.model_copy(update={"setup_time_s": 600})})
    return {
        "setup time 600 s": _w1(slow_setup, week),
        "PAS down 4 h": _w1(line, week, downtime=[PAS_DOWN]),
        "holiday, FAS2 and PAS down": _w1(line, week, holidays=[HOLIDAY], downtime=[FAS2_DOWN, PAS_DOWN]),
        "4 FAS, 24 types": _generated(LineSpec(types=24, families=6, fas=4), 3, 5),
        "1 FAS, 8 types": _generated(LineSpec(types=8, families=2, fas=1), 1, 1),
        "1 FAS, buffer of 11 h": _generated(LineSpec(types=8, families=2, fas=1), 1, 3),
    }


@pytest.fixture(scope="module")
def cases(ref_line: LineConfig, ref_week: WeekConfig) -> dict[str, Scenario]:
    return _cases(ref_line, ref_week)


@pytest.mark.parametrize(
    "case",
    [
        "setup time 600 s",
        "PAS down 4 h",
        "holiday, FAS2 and PAS down",
        "4 FAS, 24 types",
        "1 FAS, 8 types",
        "1 FAS, buffer of 11 h",
    ],
)
def test_slack_greedy_completes_where_setup_aware_does(case: str, cases: dict[str, Scenario]) -> None:
    scenario = cases[case]
    aware, _ = simulate(scenario, SetupAwarePolicy())
    greedy, _ = simulate(scenario, SlackGreedyPolicy())
    assert not aware.deadlock and aware.completion == 1.0
    assert not greedy.deadlock and greedy.completion == 1.0
    assert greedy.units_consumed == greedy.units_planned == aware.units_consumed


def test_without_a_deadline_to_keep_it_builds_the_most_urgent_type(cases: dict[str, Scenario]) -> None:
    """Every decision of the setup-time week is one where no type keeps every deadline (the
    deadline model changes over before each batch): the rule's choice is the most urgent
    candidate, the current type only when it is that one."""
    scenario = cases["setup time 600 s"]
    greedy = SlackGreedyPolicy()
    observer = Observer(scenario, greedy.settings)
    twin = Line(scenario)
    request = twin.start()
    stayed = changed = 0
    while request is not None:
        assessment = observer.assess(request)
        first_due, range_s = assessment.first_due, assessment.range_s
        assert first_due is not None and assessment.slots is not None
        urgency = [(first_due[k], range_s[k]) for k in assessment.slots]
        assert urgency == sorted(urgency)
        choice = greedy(request).type
        assert choice == assessment.slots[0]
        assert min((first_due[k], range_s[k]) for k in request.valid) == urgency[0]
        stayed += choice == request.last_type
        changed += choice != request.last_type
        request = twin.decide(greedy(request))
    assert twin.results().completion == 1.0 and stayed > 0 and changed > 0
