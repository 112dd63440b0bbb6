"""Admission of inbound messages in the service (in-memory bus): a rejected message changes nothing,
untrusted clocks never move the mirror, poison never stops the service. The same faults against the
real broker are in test_live_faults.py."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from streams import week_messages

from agent.live.journal import Journal
from agent.live.service import AgentService
from agent.planners.policies import make_rule
from bridge.admission import Admission, ClockRules
from bridge.bus import MemoryBus, Received
from bridge.messages import ErrorMsg
from bridge.recording import Recorder
from bridge.topics import Topics
from twin import Decision, DecisionRequest, LineConfig, Scenario, WeekConfig, simulate

ROOT = "test/plant/assembly/line1"
Kpis = tuple[int, float, float]
Clean = tuple[list[Received], Kpis]


def mirror(scenario: Scenario, messages: list[Received], **kwargs: object) -> tuple[AgentService, MemoryBus]:
    bus = MemoryBus()
    service = AgentService(scenario, None, "none", Topics(ROOT), bus, **kwargs)  # type: ignore[arg-type]
    for message in messages:
        service.handle(message)
    return service, bus


def kpis(service: AgentService) -> Kpis:
    k = service.mirror.kpis()
    return k.idle_s, k.setup_effort, k.completion


def errors(bus: MemoryBus) -> list[ErrorMsg]:
    return [ErrorMsg.model_validate_json(p) for p in bus.on(Topics(ROOT).errors)]


@pytest.fixture(scope="module")
def scenario(ref_line: LineConfig, ref_week: WeekConfig) -> Scenario:
    return Scenario.build(ref_line, ref_week)


@pytest.fixture(scope="module")
def clean(scenario: Scenario) -> Clean:
    """The week's messages and the offline KPIs they must give (setup-aware, w1: idle 0, effort 695)."""
    results, _ = simulate(scenario, make_rule("setup-aware", 0))
    return week_messages(scenario, ROOT), (results.idle_s, results.setup_effort, results.completion)


def _with(message: Received, **changes: object) -> Received:
    data = json.loads(message.payload)
    data.update(changes)
    return Received(message.topic, json.dumps(data).encode(), received_at=message.received_at)


def _fas1(messages: list[Received], index: int) -> tuple[int, Received]:
    """The `index`-th FAS1 message and its position in the stream."""
    topic = Topics(ROOT).fas_events("FAS1")
    positions = [i for i, m in enumerate(messages) if m.topic == topic]
    return positions[index], messages[positions[index]]


def test_the_clean_week_mirrors_to_the_offline_kpis(scenario: Scenario, clean: Clean) -> None:
    messages, offline = clean
    service, bus = mirror(scenario, messages)
    assert kpis(service) == offline and offline[:2] == (0, 695)
    assert service.rejected == 0 and not errors(bus)


@pytest.mark.parametrize("seq", ["huge", "next"])
def test_a_rejected_message_moves_no_seq(scenario: Scenario, clean: Clean, seq: str) -> None:
    """An unknown type with seq 1,000,000 (or the seq the next genuine event will carry) is rejected,
    and the genuine events after it are all accepted."""
    messages, offline = clean
    at, genuine = _fas1(messages, 100)
    number = 1_000_000 if seq == "huge" else json.loads(genuine.payload)["seq"]
    bad = _with(genuine, seq=number, type="T99")
    service, bus = mirror(scenario, [*messages[:at], bad, *messages[at:]])
    assert kpis(service) == offline
    assert service.rejected == 1 and service.accepted == len(messages)
    [error] = errors(bus)
    assert "unknown type 'T99'" in error.reason and not error.accepted


def _fas1_event(messages: list[Received], kind: str, after: int = 100) -> tuple[int, Received]:
    """The first FAS1 message of event `kind` after FAS1's `after`-th one, and its position."""
    index = after
    while json.loads((found := _fas1(messages, index))[1].payload)["event"] != kind:
        index += 1
    return found


@pytest.mark.parametrize("kind", ["unit_started", "unit_finished"])
def test_a_clock_ahead_moves_no_clock(scenario: Scenario, clean: Clean, kind: str) -> None:
    """One event stamped 3 h after its receipt (a device clock not yet synchronised): applied at its
    receipt time, reported and counted; the week keeps its KPIs (not 43,200 s of idle). A finish is
    followed by the station's next start at the same instant: applied then too, not rejected as
    earlier than the finish's receipt (which lost the rest of the week: completion 0.434)."""
    messages, offline = clean
    at, genuine = _fas1_event(messages, kind)
    ahead = dt.datetime.fromisoformat(json.loads(genuine.payload)["ts"]) + dt.timedelta(hours=3)
    changed = [*messages[:at], _with(genuine, ts=ahead.isoformat()), *messages[at + 1 :]]
    service, bus = mirror(scenario, changed)
    assert kpis(service) == offline
    assert (service.restamped, service.rejected) == (1, 0)
    [error] = errors(bus)
    assert error.accepted and "10800 s after the message was received" in error.reason
    assert service.state().events_restamped == 1


def test_without_a_trusted_receipt_clock_timestamps_are_taken_as_they_are(
    scenario: Scenario, clean: Clean
) -> None:
    """`--clock line` (an emulated week faster than real time): a week that lies in the future
    mirrors cleanly, while the default (wall) would find every event ahead of its receipt."""
    messages, offline = clean
    early = [Received(m.topic, m.payload, received_at=m.received_at - 30 * 86_400) for m in messages]
    service, _ = mirror(scenario, early, clock=ClockRules(trust_receipt=False))
    assert kpis(service) == offline and service.restamped == 0
    service, bus = mirror(scenario, early[:50])  # wall: received before the week, so not applied
    assert (service.rejected, service.restamped) == (50, 0)
    assert "needs --clock line" in errors(bus)[0].reason


@pytest.mark.parametrize(
    ("shift_s", "events"), [(1, 1), (-1, 1), (30, 10)], ids=["1s-ahead", "1s-behind", "30s-ahead-then-back"]
)
def test_clock_jitter_within_the_tolerance_loses_nothing(
    scenario: Scenario, clean: Clean, shift_s: int, events: int
) -> None:
    """A FAS clock a little off for a while (then right again): its events are applied no earlier than
    the station's previous one; nothing is rejected, the week keeps its KPIs."""
    messages, offline = clean
    start, _ = _fas1(messages, 100)
    topic = Topics(ROOT).fas_events("FAS1")
    changed, shifted = list(messages), 0
    for i in range(start, len(messages)):
        if shifted == events:
            break
        if messages[i].topic == topic:
            ts = dt.datetime.fromisoformat(json.loads(messages[i].payload)["ts"]) + dt.timedelta(
                seconds=shift_s
            )
            changed[i] = _with(messages[i], ts=ts.isoformat())
            shifted += 1
    for clock in (ClockRules(), ClockRules(trust_receipt=False)):
        service, _ = mirror(scenario, changed, clock=clock)
        assert (service.rejected, service.restamped) == (0, 0)
        idle_s, effort, completion = kpis(service)
        assert (effort, completion) == offline[1:]
        assert idle_s <= abs(shift_s) * events  # a late start is idle time, as its stamp says


def test_a_sender_that_restarts_its_seq_is_followed(scenario: Scenario, clean: Clean) -> None:
    """FAS1's gateway reboots and counts from 1 again: its events are accepted (reported once), not
    rejected as out of order for the rest of the week."""
    messages, offline = clean
    start, _ = _fas1(messages, 100)
    topic = Topics(ROOT).fas_events("FAS1")
    changed, seq = list(messages), 0
    for i in range(start, len(messages)):
        if messages[i].topic == topic:
            seq += 1
            changed[i] = _with(messages[i], seq=seq)
    service, bus = mirror(scenario, changed)
    assert kpis(service) == offline and service.rejected == 0
    [notice] = errors(bus)
    assert notice.accepted and "seq restarted at 1" in notice.reason


@pytest.mark.parametrize(
    ("topic", "ts", "reason"),
    [
        ("buffer/events", "2027-03-01T10:00:00+01:00", "a week after the week's end"),
        ("fas/FAS2/events", "2026-11-20T10:00:00+01:00", "lies before the week"),
        ("fas/FAS1/events", "2026-11-23T06:00:00+01:00", "before the previous event on this topic"),
    ],
    ids=["stock-dated-2027", "before-the-week", "before-the-station's-last"],
)
def test_timestamps_out_of_bounds_are_rejected(
    scenario: Scenario, clean: Clean, topic: str, ts: str, reason: str
) -> None:
    """A stock count dated 2027, an event before the week, an event before the station's previous
    one: rejected with or without a trusted receipt clock, and the week keeps its KPIs."""
    messages, offline = clean
    at, genuine = _fas1(messages, 100)
    body = {"event": "stock", "stock": {"T1": 0}} if topic.startswith("buffer") else {"event": "down"}
    payload = json.dumps({"v": 1, "ts": ts, "seq": 10_000, **body}).encode()
    bad = Received(f"{ROOT}/{topic}", payload, received_at=genuine.received_at)
    for clock in (ClockRules(), ClockRules(trust_receipt=False)):
        service, bus = mirror(scenario, [*messages[:at], bad, *messages[at:]], clock=clock)
        assert kpis(service) == offline
        assert service.rejected == 1
        assert reason in errors(bus)[0].reason


def test_admission_records_only_what_it_is_told_was_applied() -> None:
    week = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    admission = Admission(week)
    ts = week + dt.timedelta(hours=1)
    assert admission.check("t", 5, ts, ts.timestamp()).at == ts
    assert admission.last_seq("t") is None  # checking records nothing
    assert admission.accept("t", 5, ts) is None
    assert admission.accept("t", 8, ts) == "gap: seq 6..7 missing"
    assert admission.check("t", 8, ts, ts.timestamp()).reason == "duplicate seq 8 (last accepted 8)"


# -- poison ----------------------------------------------------------------------------------
def _plan(scenario: Scenario, revision: int, quantity_of_last: int) -> Received:
    orders = [
        {"station": station, "position": p, "type": o.type, "quantity": o.quantity}
        for station, plan in scenario.week.plans.items()
        for p, o in enumerate(plan, start=1)
    ]
    last = max(i for i, o in enumerate(orders) if o["station"] == "FAS1")
    orders[last]["quantity"] = quantity_of_last
    payload = {"v": 1, "ts": "2026-11-23T05:00:00+01:00", "event": "plan", "week_start": "2026-11-23",
               "revision": revision, "orders": orders}  # fmt: skip
    received = dt.datetime(2026, 11, 23, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()
    return Received(f"{ROOT}/plan", json.dumps(payload).encode(), retain=True, received_at=received)


def test_a_poison_plan_is_rejected_and_the_week_goes_on(scenario: Scenario, clean: Clean) -> None:
    """A revision whose last FAS1 order asks for 2**70 units: more than the PAS can build, rejected
    (before, it was accepted and the next decision crashed the service with an OverflowError)."""
    messages, offline = clean
    poison = _plan(scenario, 1, 2**70)
    bus = MemoryBus()
    service = AgentService(scenario, make_rule("setup-aware", 0), "setup-aware", Topics(ROOT), bus)
    for message in [poison, *messages]:
        service.handle(message)
    assert kpis(service) == offline
    assert service.mirror.revision == 0 and service.rejected == 1
    assert "more than the PAS can build" in errors(bus)[0].reason


def test_the_retained_copy_of_the_plan_in_force_is_no_error(scenario: Scenario) -> None:
    """With the plan from the bus, every (re)connect delivers the retained plan again."""
    plan = _plan(scenario, 1, 10)
    service, bus = mirror(scenario, [plan, plan, plan], plan_known=False)
    assert service.mirror.revision == 1 and service.accepted == 1
    assert not errors(bus)
    service.handle(Received(plan.topic, b"", retain=False))  # a client clears the retained plan
    assert not errors(bus) and service.mirror.revision == 1
    not_retained = Received(plan.topic, plan.payload, retain=False, received_at=plan.received_at)
    service.handle(not_retained)  # the same revision sent again by a publisher: a duplicate
    assert "not newer than 1" in errors(bus)[0].reason


class Failing:
    """A policy that fails at its first `fail` calls, then follows setup-aware."""

    def __init__(self, fail: int) -> None:
        self.left = fail
        self.rule = make_rule("setup-aware", 0)

    def __call__(self, request: DecisionRequest) -> Decision:
        if self.left:
            self.left -= 1
            raise OverflowError("Python int too large to convert to C long")
        return self.rule(request)


def test_a_failing_decision_never_ends_the_service(scenario: Scenario, clean: Clean) -> None:
    messages, offline = clean
    bus = MemoryBus()
    service = AgentService(scenario, Failing(1), "failing", Topics(ROOT), bus)
    service.decide_if_due()  # the week start: fails, reported
    service.decide_if_due()  # not tried again until an event changed the state
    [error] = errors(bus)
    assert error.topic == Topics(ROOT).dispatch and "decision 0 failed: OverflowError" in error.reason
    for message in messages:
        service.handle(message)
    assert kpis(service) == offline
    assert len(bus.on(Topics(ROOT).dispatch)) == offline_batches(scenario)


def offline_batches(scenario: Scenario) -> int:
    results, _ = simulate(scenario, make_rule("setup-aware", 0))
    return results.batches


def test_a_journal_entry_that_cannot_be_applied_is_reported_and_skipped(
    scenario: Scenario,
    clean: Clean,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A journal written before quantities were bounded holds the poison plan: the resume skips it
    (no crash loop) and the rest of the journal resumes the week."""
    messages, offline = clean
    journal = Journal(tmp_path / "journal.jsonl")
    for message in [_plan(scenario, 1, 2**70), *messages]:
        journal.message(message)
    journal.close()
    service = AgentService(scenario, None, "none", Topics(ROOT), MemoryBus())
    assert service.resume(Journal(journal.path).entries()) == len(messages) + 1
    assert service.skipped_entries == 1 and service.rejected == 0
    assert kpis(service) == offline


def test_replay_of_a_recorded_week_with_a_clock_ahead_gives_the_clean_kpis(
    scenario: Scenario, clean: Clean, tmp_path: Path
) -> None:
    """The issue's example through the real command: `linetwin replay` of w1's recording with one
    event stamped 3 h ahead of its receipt, and a stock count dated 2027 added."""
    messages, offline = clean
    at, genuine = _fas1(messages, 100)
    ahead = dt.datetime.fromisoformat(json.loads(genuine.payload)["ts"]) + dt.timedelta(hours=3)
    stock = json.dumps(
        {"v": 1, "ts": "2027-03-01T10:00:00+01:00", "seq": 1, "event": "stock", "stock": {"T1": 0}}
    )
    future = Received(Topics(ROOT).buffer_events, stock.encode(), received_at=genuine.received_at)
    recording = tmp_path / "week.jsonl"
    recorder = Recorder(recording)
    for message in [*messages[:at], _with(genuine, ts=ahead.isoformat()), future, *messages[at + 1 :]]:
        recorder.write(message)
    recorder.close()
    state = tmp_path / "state.json"
    replay = subprocess.run(
        [sys.executable, "-m", "agent.cli", "replay", str(recording), "--root", ROOT, "--json", str(state)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    final = json.loads(state.read_text())
    assert (final["kpis"]["idle_s"], final["kpis"]["setup_effort"], final["kpis"]["completion"]) == offline
    assert (final["events_restamped"], final["events_rejected"]) == (1, 1)
