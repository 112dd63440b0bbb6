"""A run kept at a decision point (`Line.checkpoint`) and restored goes on exactly as the run did:
the same decisions give the same trace and KPIs to the second, at the first decision, the last
and between, in a week with downtime and breaks; `Line.snapshot` resumes the same rest of week."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple

import pytest

from agent.planners.policies import make_rule
from twin import LineConfig, Scenario, WeekConfig
from twin.config import Downtime
from twin.decision import Decision, DecisionRequest
from twin.errors import SimulationError
from twin.line import Engine, Line
from twin.outlook import state_key
from twin.results import Results, Trace

DOWN: list[tuple[str | int, int, int]] = [
    ("PAS", 8, 95),
    ("PAS", 30, 200),
    (0, 9, 37),
    (1, 9, 61),
    (2, 33, 300),
    (3, 6, 40),
]
"""(station or FAS index, hour of the week, minutes): downtime that cuts units and batches."""


def _scenario(line: LineConfig, week: WeekConfig, batch_size: int, down: bool) -> Scenario:
    if down:
        monday = dt.datetime.combine(week.week_start, dt.time())
        downtime = [
            Downtime(
                station=line.station_ids[s] if isinstance(s, int) else s,
                start=monday + dt.timedelta(hours=h),
                end=monday + dt.timedelta(hours=h, minutes=m),
            )
            for s, h, m in DOWN
        ]
        week = week.model_copy(update={"downtime": downtime})
    return Scenario(line, week, batch_size)


def _trace(trace: Trace) -> tuple[object, ...]:
    return (
        [astuple(b) for b in trace.batches],
        sorted((s.fas, s.type, s.start, s.period, s.count, s.first_phase) for s in trace.segments),
        sorted(trace.waits),
        trace.pas_work,
        trace.pas_blocked,
        trace.max_fill,
        trace.max_fill_by_type,
    )


def _full_run(scenario: Scenario) -> tuple[list[Decision], Results, Trace]:
    policy = make_rule("setup-aware", 0)
    decisions: list[Decision] = []

    def decider(request: DecisionRequest) -> Decision:
        decisions.append(policy(request))
        return decisions[-1]

    line = Line(scenario)
    results = line.run(decider)
    return decisions, results, line.trace


def _at(scenario: Scenario, decisions: list[Decision], k: int) -> Line:
    """A run of `decisions` stopped at decision `k`."""
    line = Line(scenario)
    request = line.start()
    while request is not None and request.index < k:
        request = line.decide(decisions[request.index])
    return line


def _finish(line: Line, decisions: list[Decision]) -> Results:
    request = line.pending
    while request is not None:
        request = line.decide(decisions[request.index])
    return line.results()


@pytest.mark.parametrize(("batch_size", "down"), [(50, True), (100, False)])
def test_a_restored_checkpoint_goes_on_as_the_run_did(
    ref_line: LineConfig, ref_week: WeekConfig, batch_size: int, down: bool
) -> None:
    scenario = _scenario(ref_line, ref_week, batch_size, down)
    decisions, results, trace = _full_run(scenario)
    n = len(decisions)
    assert results.idle_s > 0 and results.setup_effort > 0  # idle and effort both add up over the week
    kept = {0, 1, n // 3, n // 2, n - 2, n - 1}
    line, scratch = Line(scenario), Engine()
    request = line.start()
    while request is not None:
        if request.index in kept:
            checkpoint = line.checkpoint()
            assert checkpoint.request is request
            for _ in range(2):  # a checkpoint is restored as often as wanted
                restored = Line.restore(checkpoint, scratch)
                assert _finish(restored, decisions).to_dict() == results.to_dict()
                assert _trace(restored.trace) == _trace(trace)
        request = line.decide(decisions[request.index])
    assert line.results().to_dict() == results.to_dict()  # the checkpoints left the run alone


def test_a_restored_checkpoint_on_the_runs_own_engine(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    scenario = _scenario(ref_line, ref_week, 50, True)
    decisions, results, trace = _full_run(scenario)
    for k in (0, len(decisions) // 2, len(decisions) - 1):
        line = _at(scenario, decisions, k)
        restored = Line.restore(line.checkpoint(), line.engine)  # the run on that engine ends
        k_results = _finish(restored, decisions)
        assert _trace(restored.trace) == _trace(trace)
        assert k_results.to_dict() == results.to_dict()


def test_a_snapshot_resumes_the_same_rest_of_week(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    scenario = _scenario(ref_line, ref_week, 50, True)
    decisions, _, _ = _full_run(scenario)
    line = Line(scenario)
    request = line.start()
    keys = []
    while request is not None:
        keys.append(state_key(request))
        request = line.decide(decisions[request.index])
    for k in (0, len(decisions) // 2, len(decisions) - 1):
        at_k = _at(scenario, decisions, k)
        assert at_k.checkpoint().snapshot() == at_k.snapshot()
        resumed = Line(scenario, snapshot=at_k.snapshot())
        request = resumed.start()
        rest = []
        while request is not None:
            rest.append((request.index, state_key(request)))
            request = resumed.decide(decisions[request.index])
        assert rest == list(enumerate(keys))[k:]


def test_only_a_decision_point_is_kept(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    line = Line(Scenario(ref_line, ref_week, 50))
    with pytest.raises(SimulationError, match="decision point"):
        line.checkpoint()
    with pytest.raises(SimulationError, match="decision point"):
        line.snapshot()
