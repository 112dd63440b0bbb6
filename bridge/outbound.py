"""The twin's outbound messages, built from the mirror and its outlook: the dispatch, the retained
state, forecasts and shortage alerts (the codec reads the inbound ones). Times are the line's
calendar time."""

from __future__ import annotations

import datetime as dt
import uuid

from bridge.messages import (
    AlertMsg,
    BatchMsg,
    DispatchMsg,
    ErrorMsg,
    FasStateMsg,
    ForecastMsg,
    KpiMsg,
    PasPlanMsg,
    PasStateMsg,
    PlannedBatchMsg,
    PlanProvenanceMsg,
    PlanRefMsg,
    ShadowMsg,
    StateMsg,
)
from twin import WorkCalendar
from twin.mirror import Mirror
from twin.outlook import Call, Expected, Shortage
from twin.schedule import ScheduledBatch


def forecast_message(calendar: WorkCalendar, expected: Expected | None) -> ForecastMsg | None:
    if expected is None:
        return None
    return ForecastMsg(
        idle_s=expected.idle_s,
        setup_effort=expected.setup_effort,
        setups=expected.setups,
        deadlock=expected.deadlock,
        end_ts=calendar.datetime_of(expected.end_s),
    )


def dispatch_message(
    mirror: Mirror, call: Call, decision_seq: int, policy: str, based_on: int | None
) -> DispatchMsg:
    """The dispatch of an answered decision point (a new `decision_id`)."""
    scenario = mirror.scenario
    return DispatchMsg(
        ts=scenario.calendar.datetime_of(call.request.time_s),
        decision_seq=decision_seq,
        decision_id=str(uuid.uuid4()),
        type=scenario.types[call.decision.type],
        quantity=call.decision.quantity or call.request.batch_size,
        policy=policy,
        based_on=based_on,
        forecast=forecast_message(scenario.calendar, call.expected),
        position=call.request.index + 1,
    )


def pas_plan_message(
    mirror: Mirror,
    revision: int,
    schedule: list[ScheduledBatch],
    expected: Expected | None,
    provenance: PlanProvenanceMsg,
    gain: float | None,
    week: Expected | None = None,
) -> PasPlanMsg:
    """The retained timed PAS plan, stamped at the mirror's time; `schedule` positions are the
    week's (1-based)."""
    scenario = mirror.scenario
    return PasPlanMsg(
        ts=scenario.calendar.datetime_of(mirror.now_s),
        revision=revision,
        week_start=scenario.week.week_start,
        plan_revision=mirror.revision,
        provenance=provenance,
        forecast=forecast_message(scenario.calendar, expected),
        gain=gain,
        batches=[
            PlannedBatchMsg(
                position=b.position,
                type=b.type,
                quantity=b.quantity,
                start=b.start,
                end=b.end,
                changeover=b.changeover,
            )
            for b in schedule
        ],
        week=forecast_message(scenario.calendar, week),
    )


def alert_message(calendar: WorkCalendar, now_s: int, shortage: Shortage) -> AlertMsg:
    return AlertMsg(
        ts=calendar.datetime_of(now_s),
        type=shortage.type,
        station=shortage.station,
        at=calendar.datetime_of(shortage.at_s),
    )


def error_message(topic: str, reason: str, payload: str = "", accepted: bool = False) -> ErrorMsg:
    """An answer on `twin/errors` about a message on `topic`, stamped now (wall time)."""
    return ErrorMsg(
        ts=dt.datetime.now(dt.UTC), topic=topic, reason=reason, payload=payload, accepted=accepted
    )


def state_message(
    mirror: Mirror,
    expected: Expected | None,
    shadow: ShadowMsg | None,
    counts: tuple[int, int, int],
    pas_plan: PlanRefMsg | None = None,
) -> StateMsg:
    """The retained twin state; `counts`: the events accepted, rejected and restamped so far;
    `pas_plan`: where the timed PAS plan is."""
    m = mirror
    sc = m.scenario
    fill = sum(m.stock)
    capacity = sc.line.buffer.capacity
    fas = {}
    for f, station in enumerate(sc.stations):
        order, taken = m.position(f)
        fas[station] = FasStateMsg(position=order + 1, taken=taken, state=m.fas_state(f))
    batch = m.pas.batch
    accepted, rejected, restamped = counts
    return StateMsg(
        ts=sc.calendar.datetime_of(m.now_s),
        stock=dict(zip(sc.types, m.stock, strict=True)),
        fill=fill,
        capacity=capacity,
        fill_ratio=fill / capacity,
        pas=PasStateMsg(
            status=m.pas_state(),
            batch=BatchMsg(type=sc.types[batch.type], quantity=batch.quantity) if batch else None,
            last_type=sc.types[m.pas.last_type] if m.pas.last_type is not None else None,
        ),
        fas=fas,
        kpis=KpiMsg.of(m.kpis()),
        forecast=forecast_message(sc.calendar, expected),
        shadow=shadow,
        plan_revision=m.revision,
        events_accepted=accepted,
        events_rejected=rejected,
        events_restamped=restamped,
        pas_plan=pas_plan,
    )
