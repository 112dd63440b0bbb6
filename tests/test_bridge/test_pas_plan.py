"""The timed PAS plan (`{root}/twin/plan/pas`, issue 17): its message round-trips, `twin/state` without
`pas_plan` still validates (additive), the contract's example is one, and an adopted plan's points
(`PointsListener.on_plan`) are exact: its provenance, gain and forecast with the week's totals it
implies (equal to the offline week's), its first batches one series per rank, kept for the writer's
ledger (no journal replay regenerates them)."""

from __future__ import annotations

import json
import re

import pytest
from builders import make_line, make_scenario, make_week
from paths import REPO

from agent.live.listeners import PointsListener
from agent.live.service import AgentService
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus
from bridge.messages import DispatchMsg, PasPlanMsg, PlanProvenanceMsg, PlanRefMsg, StateMsg
from bridge.metrics import PLAN_NEXT
from bridge.outbound import pas_plan_message
from bridge.points import RESTATE_NS
from bridge.topics import Topics
from twin import Line, Scenario, simulate
from twin.emission import EventTap
from twin.mirror import Mirror
from twin.outlook import Expected, Projection
from twin.results import Results
from twin.schedule import ScheduledBatch, pas_schedule

ROOT = "test/plant/assembly/line1"
POLICY = "setup-aware"


@pytest.fixture(scope="module")
def week() -> tuple[Scenario, Results, list[ScheduledBatch]]:
    """A small week whose PAS cannot keep its two FAS busy (idle time and changeovers to forecast),
    in a time zone with an offset; the week as setup-aware plays it, and its schedule."""
    line = make_line(types=3, fas_units=(2, 3), batch_size=10, capacity=40, setup_time=30)
    orders = [[(0, 30), (1, 20), (2, 20), (0, 10)], [(1, 20), (2, 30), (0, 20)]]
    scenario = make_scenario(line, make_week(line, orders, stock=[10, 5, 0], timezone="Europe/Berlin"))
    results, trace = simulate(scenario, make_policy(POLICY, 0))
    assert results.idle_s > 0 and results.setup_effort > 0 and results.batches > PLAN_NEXT
    return scenario, results, pas_schedule(scenario, trace)


def at_decision(scenario: Scenario, index: int) -> Mirror:
    """The mirror of the week as setup-aware plays it, at its decision point `index` (0-based)."""
    line, mirror, policy = Line(scenario), Mirror(scenario), make_policy(POLICY, 0)
    tap, request = EventTap(line), line.start()
    while request is not None:
        for event in tap.collect():
            mirror.apply(event)
        if request.index == index:
            return mirror
        request = line.decide(policy(request))
    raise AssertionError(f"the week has no decision point {index}")


def plan_at(
    mirror: Mirror, schedule: list[ScheduledBatch], revision: int, reason: str, gain: float | None
) -> PasPlanMsg:
    """The rest of the week as setup-aware plays it, planned at the mirror's decision point, with the
    twin's forecast from there (as `serve --planner` publishes a plan)."""
    done = mirror.pas.started
    forecast = Projection.simulate(mirror.scenario, mirror.snapshot(), make_policy(POLICY, 0)).expected_from(
        0
    )
    made = PlanProvenanceMsg(planner="best", source="lns window 3-12", reason=reason, bound=3.0, gap=0.25,
                             stopped="time limit", planning_s=0.5, from_position=done + 1)  # fmt: skip
    kpis = mirror.kpis()  # the week's totals: what `serve --planner`'s worker adds to its forecast
    week = Expected(kpis.idle_s + forecast.idle_s, kpis.setup_effort + forecast.setup_effort,
                    kpis.setups + forecast.setups, forecast.deadlock, forecast.end_s)  # fmt: skip
    return pas_plan_message(mirror, revision, schedule[done:], forecast, made, gain, week)


def test_a_plan_message_round_trips_and_the_state_without_it_still_validates(
    week: tuple[Scenario, Results, list[ScheduledBatch]],
) -> None:
    scenario, _, schedule = week
    plan = plan_at(at_decision(scenario, 3), schedule, 7, "PAS down", None)
    assert PasPlanMsg.model_validate_json(plan.dump()) == plan
    sent = json.loads(plan.dump())
    assert sent["batches"][0]["start"] == schedule[3].start.isoformat()  # local time with its offset
    assert (sent["v"], sent["gain"], sent["provenance"]["from_position"]) == (1, None, 4)

    state = AgentService(scenario, None, "none", Topics(ROOT), MemoryBus()).state()
    before = {k: v for k, v in json.loads(state.dump()).items() if k != "pas_plan"}  # a v1 state
    assert StateMsg.model_validate(before) == state and state.pas_plan is None
    pointing = state.model_copy(update={"pas_plan": PlanRefMsg(topic=Topics(ROOT).pas_plan, revision=7)})
    assert StateMsg.model_validate_json(pointing.dump()) == pointing
    assert json.loads(pointing.dump())["pas_plan"] == {
        "topic": f"{ROOT}/twin/plan/pas", "revision": 7, "next_position": None}  # fmt: skip


def test_the_contract_s_example_is_a_plan_message_and_its_state_points_to_it() -> None:
    page = (REPO / "docs" / "contract.md").read_text()
    section = page.split("### The timed PAS plan", 1)[1]
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example is not None
    plan = PasPlanMsg.model_validate_json(example[1].replace(", …]", "]"))
    assert [b.position for b in plan.batches] == [
        plan.provenance.from_position,
        plan.provenance.from_position + 1,
    ]
    assert plan.ts <= plan.batches[0].start and plan.gain is not None and plan.week is not None
    pointer = re.search(r'`"pas_plan":(\{.*?\})`', section)
    assert pointer is not None
    ref = PlanRefMsg.model_validate_json(pointer[1])
    assert (ref.topic, ref.revision) == (Topics("acme/plant1/assembly/line1").pas_plan, plan.revision)


def _listener(mirror: Mirror) -> tuple[PointsListener, list[str], list[str]]:
    written: list[str] = []
    kept: list[str] = []
    listener = PointsListener(written.extend, keep=kept.extend)
    listener.bind(mirror, "live")
    return listener, written, kept


def test_an_adopted_plan_writes_its_provenance_forecast_and_first_batches_at_its_time(
    week: tuple[Scenario, Results, list[ScheduledBatch]],
) -> None:
    """Three batches left: ranks 01-03 hold them, 04-10 only the revision. The week's totals it
    implies (KPIs so far plus forecast) are the offline week's."""
    scenario, results, schedule = week
    mirror = at_decision(scenario, results.batches - 3)
    plan = plan_at(mirror, schedule, 4, "PAS down", 2.0)
    listener, written, kept = _listener(mirror)
    listener.on_plan(plan)

    ns = round(scenario.calendar.epoch_of(mirror.now_s) * 1e9)
    assert plan.forecast is not None and scenario.line.name == "test"
    head = (
        "linetwin_plan,line=test,planner=best revision=4i,plan_revision=0i,"
        f'from_position={results.batches - 2}i,batches=3i,source="lns window 3-12",reason="PAS down",'
        'stopped="time limit",planning_s=0.5,bound=3.0,gap=0.25,gain=2.0,'
        f"idle_s={plan.forecast.idle_s}i,setup_effort={plan.forecast.setup_effort!r},"
        f"idle_s_end={results.idle_s}i,setup_effort_end={float(results.setup_effort)!r} {ns}"
    )
    batches = [
        f'linetwin_plan_batch,line=test,next=0{rank} revision=4i,position={b.position}i,type="{b.type}",'
        f'quantity={b.quantity}i,start="{b.start.isoformat()}",end="{b.end.isoformat() if b.end else ""}",'
        f"changeover={'true' if b.changeover else 'false'} {ns}"
        for rank, b in enumerate(schedule[-3:], 1)
    ]
    empty = [f"linetwin_plan_batch,line=test,next={rank:02d} revision=4i {ns}" for rank in range(4, 11)]
    assert kept == [head, *batches, *empty]
    assert written == []  # the writer takes them through its ledger (`keep`), not as state
    assert ',end="' in batches[0] and "+01:00" in batches[0]


def test_a_plan_adopted_at_the_same_instant_follows_1_ms_later_without_what_it_does_not_know(
    week: tuple[Scenario, Results, list[ScheduledBatch]],
) -> None:
    """At week start the plan of the week, then a better one at once (the same instant): each of its
    series' points goes 1 ms later, so the newest plan wins every rank; a plan without a forecast,
    gain or bound writes none of their fields."""
    scenario, _, schedule = week
    mirror = at_decision(scenario, 0)
    listener, _, kept = _listener(mirror)
    listener.on_plan(plan_at(mirror, schedule, 1, "week start", None))
    better = plan_at(mirror, schedule, 2, "improve", 1.5)
    made = better.provenance.model_copy(update={"bound": None, "gap": None})
    unknown = {"forecast": None, "week": None, "gain": None, "provenance": made}
    listener.on_plan(better.model_copy(update=unknown))
    first, second = kept[: PLAN_NEXT + 1], kept[PLAN_NEXT + 1 :]
    ns = round(scenario.calendar.epoch_of(0) * 1e9)
    assert {int(p.rsplit(" ", 1)[1]) for p in first} == {ns}
    assert {int(p.rsplit(" ", 1)[1]) for p in second} == {ns + RESTATE_NS}
    assert [p.split(" ")[0] for p in first] == [p.split(" ")[0] for p in second]  # the same series
    assert all(f"next={rank:02d} revision=2i,position={rank}i," in second[rank] for rank in range(1, 11))
    assert second[0] == (
        "linetwin_plan,line=test,planner=best revision=2i,plan_revision=0i,from_position=1i,batches="
        f'{len(schedule)}i,source="lns window 3-12",reason="improve",stopped="time limit",planning_s=0.5 '
        f"{ns + RESTATE_NS}"
    )
    assert "gain=" not in first[0] and "setup_effort_end=" in first[0]


def test_a_dispatch_moves_the_next_batches_on_live_and_not_on_a_journal_replay(
    week: tuple[Scenario, Results, list[ScheduledBatch]],
) -> None:
    """After the dispatch of the plan's first batch the ranks hold its batches from the second on
    (at the dispatch's time); a dispatch replayed from the journal (no latency) writes none."""
    scenario, _, schedule = week
    mirror = at_decision(scenario, 3)
    plan = plan_at(mirror, schedule, 2, "improve", 1.0)
    listener, _, kept = _listener(mirror)
    listener.on_plan(plan)
    first = plan.batches[0]
    dispatch = DispatchMsg(ts=first.start, decision_seq=4, decision_id="d", type=first.type,
                           quantity=first.quantity, policy="best", based_on=3, forecast=None,
                           position=first.position)  # fmt: skip
    kept.clear()
    listener.on_dispatched(dispatch, None)
    assert kept == []
    listener.on_dispatched(dispatch, 5.0)
    ranked = [p for p in kept if p.startswith("linetwin_plan_batch")]
    assert len(ranked) == PLAN_NEXT
    assert f"position={plan.batches[1].position}i" in ranked[0] and ",next=01 " in ranked[0]
