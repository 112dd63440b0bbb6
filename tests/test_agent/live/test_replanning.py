"""`serve --planner`: the service dispatches from a plan its worker process keeps re-planning,
against a real Mosquitto and an emulated line that breaks down, gets a plan revision mid-week and
once builds another type than dispatched."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as paho
import pytest
from broker import Mosquitto
from builders import make_line, make_scenario, make_week
from paho.mqtt.enums import CallbackAPIVersion

from agent.live.emulator import LineEmulator
from agent.live.listeners import ServiceListener
from agent.live.replanner import Replanner, ReplanSettings
from agent.live.service import AgentService
from agent.planners.policies import SequencePolicy, SetupAwarePolicy
from bridge.admission import ClockRules
from bridge.messages import DispatchMsg, OrderMsg, PasPlanMsg, PlanMsg, StateMsg, StatusMsg
from bridge.mqtt import MqttBus
from bridge.settings import load_bus_settings
from bridge.topics import Topics
from twin import Decision, DecisionRequest, Scenario, simulate
from twin.events import BatchStarted, LineEvent

pytestmark = pytest.mark.mqtt

ROOT = "test/replanning/line1"
SPEED = 100.0
"""Working seconds per wall second: a batch cycle lasts about half a wall second, so that a re-plan on a
loaded machine (two test workers on two cores) still ends within a cycle or two and each deviation
keeps its own reason."""
DOWN = ("PAS", 300, 420)
"""The PAS breakdown the emulated line has and the service's week does not know."""
REVISED_AT_S = 700
DISOBEY_AT = 20
"""The decision point where the controller builds another type than dispatched."""

MATRIX = [[0, 3, 9, 4], [5, 0, 2, 8], [7, 6, 0, 3], [2, 9, 5, 0]]


def _weeks() -> tuple[Scenario, Scenario, Scenario, PlanMsg]:
    """The service's week, the emulated line's (the breakdown, and the revised plan from the start:
    the revision only shortens the last order), the revised week without the breakdown, and the
    revision as the line's systems publish it."""
    line = make_line(types=4, fas_units=(10, 10), pas_unit=1, capacity=40, batch_size=10, matrix=MATRIX)
    plans = [[(0, 40), (1, 40), (2, 30), (3, 40)], [(2, 30), (3, 40), (0, 40), (1, 50)]]
    revised = [plans[0], [*plans[1][:-1], (1, 30)]]
    week = make_week(line, plans, stock=[10, 0, 10, 0])
    real = make_week(line, revised, stock=[10, 0, 10, 0], downtime=[DOWN])
    plain = make_week(line, revised, stock=[10, 0, 10, 0])
    served, emulated = make_scenario(line, week), make_scenario(line, real)
    orders = [
        OrderMsg(station=line.fas[f].id, position=i, type=line.types[k], quantity=q)
        for f, station_orders in enumerate(revised)
        for i, (k, q) in enumerate(station_orders, 1)
    ]
    revision = PlanMsg(
        v=1,
        ts=served.calendar.datetime_of(REVISED_AT_S),
        event="plan",
        week_start=week.week_start,
        revision=1,
        orders=orders,
    )
    return served, emulated, make_scenario(line, plain), revision


class Controller(LineEmulator):
    """The emulated line; once, at `DISOBEY_AT`, it builds another valid type than dispatched."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.built: list[str] = []

    def _decision(self, request: DecisionRequest) -> Decision:
        decision = super()._decision(request)
        if request.index == DISOBEY_AT:
            other = next(k for k in request.valid if k != decision.type)
            return Decision(other, decision.quantity)
        return decision


@dataclass
class Seen(ServiceListener):
    """What the service did: each dispatch, whether a re-plan was in flight then, each plan."""

    replanner: Replanner
    dispatches: list[DispatchMsg] = field(default_factory=list)
    while_planning: int = 0
    plans: list[PasPlanMsg] = field(default_factory=list)

    def on_dispatched(self, dispatch: DispatchMsg, latency_ms: float | None) -> None:
        self.dispatches.append(dispatch)
        self.while_planning += self.replanner.busy

    def on_plan(self, plan: PasPlanMsg) -> None:
        self.plans.append(plan)


@pytest.fixture
def served(mosquitto: Mosquitto) -> Iterator[tuple[AgentService, Seen]]:
    """`serve --planner best --policy setup-aware --clock line` in this process."""
    scenario = _weeks()[0]
    settings = load_bus_settings(port=mosquitto.port, root=ROOT)
    topics = Topics(ROOT)
    online = (topics.status, lambda: StatusMsg(ts=dt.datetime.now(dt.UTC), status="online").dump())
    bus = MqttBus(settings, "serve", subscriptions=topics.inbound_filters, birth=online)
    replanner = Replanner(ReplanSettings(planner="best", min_s=0.5), SetupAwarePolicy())
    seen = Seen(replanner)
    service = AgentService(
        scenario, SetupAwarePolicy(), "setup-aware", topics, bus,
        clock=ClockRules(trust_receipt=False), listeners=[seen], replanner=replanner,
    )  # fmt: skip
    replanner.start()
    deadline = time.monotonic() + 60
    while replanner._pid is None and time.monotonic() < deadline:  # the worker has imported
        time.sleep(0.05)
    bus.start()
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    yield service, seen
    stop.set()
    thread.join(timeout=10)
    replanner.close()
    bus.stop()


def _retained(broker: Mosquitto, topic: str) -> bytes:
    got: list[bytes] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    client.loop_stop()
    client.disconnect()
    assert got, f"nothing retained on {topic}"
    return got[0]


def test_the_service_replans_after_each_deviation_and_every_dispatch_is_valid(
    mosquitto: Mosquitto, served: tuple[AgentService, Seen]
) -> None:
    service, seen = served
    _, emulated, plain, revision = _weeks()
    topics = Topics(ROOT)
    bus = MqttBus(load_bus_settings(port=mosquitto.port, root=ROOT), "emulate", subscriptions=[
        topics.dispatch, topics.dispatch_current, topics.status])  # fmt: skip
    built: list[str] = []
    revised = threading.Event()

    def on_event(event: LineEvent) -> None:
        if isinstance(event, BatchStarted):
            built.append(event.type)
        if event.at_s >= REVISED_AT_S and not revised.is_set():
            revised.set()
            bus.publish(topics.plan, revision.dump(), qos=1, retain=True)

    line = Controller(emulated, topics, bus, speed=SPEED, on_event=on_event, dispatch_timeout_s=30)
    bus.start()
    try:
        line.wait_for_twin(30)
        results = line.run()
        assert bus.flush()
    finally:
        bus.stop()
    deadline = time.monotonic() + 10
    while service.accepted < line.published + 1 and time.monotonic() < deadline:
        time.sleep(0.05)

    # nothing lost, nothing rejected; every dispatch was valid for the line and applied
    assert (service.accepted, service.rejected) == (line.published + 1, 0)
    assert line.dispatched == results.batches == len(seen.dispatches)
    assert (line.elsewhere, line.own_decisions) == (0, 0)  # (`stale`: the same on dispatch/pas/current)

    # the live KPIs are the offline simulation of the decisions the line built
    offline, _ = simulate(make_scenario(plain.line, emulated.week), SequencePolicy.of_types(
        [emulated.types.index(t) for t in built], emulated.types))  # fmt: skip
    live = service.mirror.kpis()
    assert (live.setup_effort, live.idle_s, live.setups, live.batches, live.units_consumed) == (
        offline.setup_effort, offline.idle_s, offline.setups, offline.batches, offline.units_consumed
    )  # fmt: skip
    assert results.setup_effort == offline.setup_effort

    # it re-planned at week start and after each deviation, and dispatched from the plans
    reasons = [p.provenance.reason for p in seen.plans]
    assert reasons[0] in ("week start", "left the plan")  # (the first plan may come late at this speed)
    assert {"PAS up again", "plan revision", f"the PAS built {built[DISOBEY_AT]}"} <= set(reasons)
    policies = [d.policy for d in seen.dispatches]
    assert policies[0] == "setup-aware (fallback)"
    assert policies.count("best") > len(policies) / 2
    assert seen.while_planning > 0  # dispatches left while a re-plan was in flight
    counts = seen.replanner.counts
    assert counts.failed == 0 and counts.adopted == len(seen.plans)
    assert (counts.from_plan, counts.fallback) == (
        policies.count("best"),
        len(policies) - policies.count("best"),
    )

    # the retained plan is the last one adopted, and the state points to it
    retained = PasPlanMsg.model_validate_json(_retained(mosquitto, topics.pas_plan))
    assert retained == seen.plans[-1] and retained.revision == len(seen.plans)
    assert [p.revision for p in seen.plans] == list(range(1, len(seen.plans) + 1))
    state = StateMsg.model_validate_json(_retained(mosquitto, topics.state))
    assert state.pas_plan is not None and state.pas_plan.topic == topics.pas_plan
    # the last plan was followed to the end, at the times it said
    followed = [(d.type, d.ts, d.policy) for d in seen.dispatches[retained.batches[0].position - 1 :]]
    assert followed == [(b.type, b.start, "best") for b in retained.batches]
    assert json.loads(retained.dump())["batches"][0]["start"] == retained.batches[
        0
    ].start.isoformat().replace("+00:00", "Z")
