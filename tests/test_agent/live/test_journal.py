"""The journal as a write-ahead log: a torn last entry is cut and reported, an acknowledgement never
comes before the sync that makes its entry durable, a decision is durable before its dispatch leaves,
and a restart after a cut at any kind of entry ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest
from broker import Mosquitto

import agent.live.journal
from agent.cli import main
from agent.live.emulator import LineEmulator
from agent.live.journal import DecisionEntry, Journal, JournalError, TornEntry
from agent.live.listeners import JournalListener
from agent.live.service import AgentService
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus, Received
from bridge.codec import encode
from bridge.topics import Topics
from twin import LineConfig, Scenario, WeekConfig
from twin.events import PlannedOrder, PlanRevised, StockCounted

ROOT = "test/plant/assembly/line1"
TOPICS = Topics(ROOT)
POLICY = "setup-aware"
REAL_FSYNC = os.fsync


@pytest.fixture(scope="module")
def scenario(ref_line: LineConfig, ref_week: WeekConfig) -> Scenario:
    return Scenario.build(ref_line, ref_week)


@pytest.fixture(scope="module")
def stream(scenario: Scenario) -> list[Received]:
    """Every kind of inbound message: the plan, a stock count, then the line's first five batches
    (PAS and FAS events) as the emulator publishes them."""
    week = scenario.week
    orders = tuple(
        PlannedOrder(station, position, order.type, order.quantity)
        for station, plan in week.plans.items()
        for position, order in enumerate(plan, start=1)
    )
    plan = PlanRevised(0, week.week_start.isoformat(), 1, orders)
    count = StockCounted(0, dict(week.initial_stock))
    line = MemoryBus()
    LineEmulator(scenario, TOPICS, line, own_policy=make_policy(POLICY, 0)).run()
    stored = [i for i, m in enumerate(line.published) if b"batch_stored" in m.payload]
    return [
        Received(TOPICS.plan, encode(plan, 1, scenario.calendar)),
        Received(TOPICS.buffer_events, encode(count, 1, scenario.calendar)),
        *line.published[: stored[4] + 1],
    ]


def _service(scenario: Scenario, bus: MemoryBus, journal: Journal) -> AgentService:
    return AgentService(
        scenario,
        make_policy(POLICY, 0),
        POLICY,
        TOPICS,
        bus,
        plan_known=False,
        listeners=[JournalListener(journal)],
    )


def _kind(line: bytes) -> str:
    item = json.loads(line)
    if "decision" in item:
        return "decision"
    inbound = TOPICS.parse_inbound(item["topic"])
    assert inbound is not None
    return inbound.kind


# -- repair -----------------------------------------------------------------------------------
def _journal_of_every_kind(path: Path) -> list[bytes]:
    journal = Journal(path)
    for topic in (TOPICS.plan, TOPICS.buffer_events, TOPICS.pas_events, TOPICS.fas_events("FAS1")):
        journal.message(Received(topic, b'{"v":1,"seq":1,"event":"x"}', received_at=1.5))
    journal.decision(DecisionEntry(0, 1, "T1", b'{"decision_seq":1}'))
    journal.close()
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("kind", ["plan", "buffer", "pas", "fas", "decision"])
@pytest.mark.parametrize("keep", ["one byte", "half", "all but the newline"])
def test_a_torn_last_entry_is_cut_to_the_last_complete_one_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, keep: str
) -> None:
    path = tmp_path / "journal.jsonl"
    lines = _journal_of_every_kind(path)
    torn = next(i for i, line in enumerate(lines) if _kind(line) == kind)
    entry = lines[torn]
    size = {"one byte": 1, "half": len(entry) // 2, "all but the newline": len(entry) - 1}[keep]
    path.write_bytes(b"".join(lines[:torn]) + entry[:size])

    journal = Journal(path)
    with caplog.at_level(logging.WARNING):
        cut = journal.repair()
    assert cut == TornEntry(path, torn + 1, size)
    assert str(cut) == f"journal {path}: cut a torn last entry of {size} bytes at line {torn + 1}"
    assert str(cut) in caplog.text
    assert path.read_bytes() == b"".join(lines[:torn])
    assert len(list(journal.entries())) == torn
    journal.decision(DecisionEntry(9, 9, "T2"))  # appended after the last complete entry, not the fragment
    journal.close()
    assert [_kind(line) for line in path.read_bytes().splitlines()] == [
        *(_kind(line) for line in lines[:torn]),
        "decision",
    ]
    assert len(list(Journal(path).entries())) == torn + 1


def test_an_unreadable_last_line_with_its_newline_is_cut_too(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = _journal_of_every_kind(path)
    path.write_bytes(b"".join(lines) + b'{"topic":"x"}\n')
    cut = Journal(path).repair()
    assert cut is not None and (cut.line, cut.size) == (len(lines) + 1, 14)
    assert path.read_bytes() == b"".join(lines)


def test_an_intact_journal_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = _journal_of_every_kind(path)
    journal = Journal(path)
    assert journal.repair() is None and journal.cut is None
    assert path.read_bytes() == b"".join(lines)
    assert [type(e) for e in journal.entries()] == [Received] * 4 + [DecisionEntry]
    assert Journal(tmp_path / "new.jsonl").repair() is None


def test_an_unreadable_entry_before_the_last_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = _journal_of_every_kind(path)
    path.write_bytes(b"".join(lines[:2]) + b"{oops\n" + b"".join(lines[2:]))
    journal = Journal(path)
    assert journal.repair() is None
    with pytest.raises(JournalError, match=rf"^{path}:3: unreadable journal entry \("):
        list(journal.entries())
    assert path.read_bytes().count(b"\n") == len(lines) + 1  # nothing cut


@pytest.mark.mqtt
def test_serve_exits_2_with_one_line_on_an_unreadable_entry_inside_the_journal(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.jsonl"
    lines = _journal_of_every_kind(path)
    path.write_bytes(lines[0] + b"\x00\x00\x00\n" + b"".join(lines[1:]))
    code = main(["serve", "--port", str(mosquitto.port), "--root", ROOT, "--policy", POLICY,
                 "--journal", str(path), "--exit-after-idle", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"linetwin: error: {path}:2: unreadable journal entry") and err.count("\n") == 1


# -- write, sync, acknowledge -----------------------------------------------------------------
class DurabilityBus(MemoryBus):
    """Notes, at each acknowledgement and each published dispatch, how many bytes of the journal
    were on disk (as the last `os.fsync` of the journal left them)."""

    def __init__(self) -> None:
        super().__init__()
        self.durable = 0
        self.syncs = 0
        self.acked: list[tuple[Received, int]] = []
        self.dispatched: list[tuple[bytes, int]] = []

    def fsync(self, fd: int) -> None:
        REAL_FSYNC(fd)
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode):  # not the folder's entry
            self.syncs += 1
            self.durable = status.st_size

    def ack(self, message: Received) -> None:
        self.acked.append((message, self.durable))

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if topic == TOPICS.dispatch:
            self.dispatched.append((payload, self.durable))
        super().publish(topic, payload, qos=qos, retain=retain)


def test_a_message_is_acknowledged_and_a_dispatch_published_only_once_its_entry_is_synced(
    scenario: Scenario, stream: list[Received], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = DurabilityBus()
    monkeypatch.setattr(agent.live.journal.os, "fsync", bus.fsync)
    path = tmp_path / "journal.jsonl"
    service = _service(scenario, bus, Journal(path))
    for message in stream:  # a backlog, as after a restart: the syncs are grouped
        bus.inbox.put(message)
    service.run(threading.Event(), idle_timeout_s=0.2)
    monkeypatch.undo()

    ends: dict[tuple[str, str], int] = {}
    decisions: dict[int, int] = {}
    offset = 0
    for line in path.read_bytes().splitlines(keepends=True):
        offset += len(line)
        item = json.loads(line)
        if "decision" in item:
            decisions[item["decision_seq"]] = offset
        else:
            ends[item["topic"], item["payload"]] = offset
    assert len(ends) == len(stream) and service.rejected == 0
    assert [m for m, _ in bus.acked] == stream  # each once, in order of arrival
    for message, durable in bus.acked:
        assert durable >= ends[message.topic, message.payload.decode()], f"acked before its sync: {message}"
    assert len(bus.dispatched) == len(decisions) == 6  # week start and five batches stored
    for payload, durable in bus.dispatched:
        assert durable >= decisions[json.loads(payload)["decision_seq"]], "published before its sync"
    assert bus.syncs < len(stream) / 2  # grouped


def test_a_message_whose_processing_fails_is_acknowledged_once_in_its_turn(
    scenario: Scenario, stream: list[Received], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = DurabilityBus()
    monkeypatch.setattr(agent.live.journal.os, "fsync", bus.fsync)
    service = _service(scenario, bus, Journal(tmp_path / "journal.jsonl"))
    poison, late = stream[3], stream[6]  # one fails before it is journaled, one after it is acknowledged
    ingest, deliver = service._ingest, service.deliver_points

    def ingest_or_fail(message: Received) -> None:
        if message is poison:
            raise RuntimeError("a bug")
        ingest(message)

    def deliver_or_fail(final: bool = False) -> None:
        if bus.acked and bus.acked[-1][0] is late:
            raise RuntimeError("another bug")
        deliver(final)

    monkeypatch.setattr(service, "_ingest", ingest_or_fail)
    monkeypatch.setattr(service, "deliver_points", deliver_or_fail)
    messages = stream[:10]
    for message in messages:
        bus.inbox.put(message)
    service.run(threading.Event(), idle_timeout_s=0.2)
    assert [m for m, _ in bus.acked] == messages
    assert service.rejected == 2  # both answered on twin/errors as internal errors


def test_a_journal_that_cannot_be_synced_stops_the_service_before_any_acknowledgement(
    scenario: Scenario, stream: list[Received], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    bus = DurabilityBus()
    service = _service(scenario, bus, Journal(tmp_path / "journal.jsonl"))
    for message in stream[:10]:
        bus.inbox.put(message)
    monkeypatch.setattr(agent.live.journal.os, "fsync", fail)
    with pytest.raises(JournalError, match=r"journal.jsonl: cannot sync the journal"):
        service.run(threading.Event(), idle_timeout_s=0.2)
    assert bus.acked == [] and bus.dispatched == []


class PowerCut(BaseException):
    """The machine stops here (no handler of the service catches it)."""


class CutBeforeDispatch(MemoryBus):
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if topic == TOPICS.dispatch:
            raise PowerCut
        super().publish(topic, payload, qos=qos, retain=retain)


def test_a_decision_synced_before_a_crash_is_published_after_the_restart_with_its_seq(
    scenario: Scenario, stream: list[Received], tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"
    first = _service(scenario, CutBeforeDispatch(), Journal(path))
    with pytest.raises(PowerCut):
        first.handle(stream[0])  # the plan: the week-start decision is synced, then the power goes
    synced = [e for e in Journal(path).entries() if isinstance(e, DecisionEntry)]
    assert [(e.index, e.decision_seq) for e in synced] == [(0, 1)] and synced[0].dispatch is not None

    bus = MemoryBus()
    journal = Journal(path)
    again = _service(scenario, bus, journal)
    again.resume(journal.entries())
    again.run(threading.Event(), idle_timeout_s=0.5)
    assert bus.on(TOPICS.dispatch_current) == [synced[0].dispatch]  # the same dispatch, decision_seq 1
    assert bus.on(TOPICS.dispatch) == []  # no other decision for that point


# -- restarts after a cut -----------------------------------------------------------------------
def _cut_points(lines: list[bytes]) -> dict[str, int]:
    """For each kind of entry, the line of one to tear (the last plan and count, a mid-run event of
    each station kind, the third decision)."""
    kinds = [_kind(line) for line in lines]
    at = {kind: [i for i, k in enumerate(kinds) if k == kind] for kind in set(kinds)}
    return {"plan": at["plan"][0], "buffer": at["buffer"][0], "pas": at["pas"][5],
            "fas": at["fas"][len(at["fas"]) // 2], "decision": at["decision"][2]}  # fmt: skip


@pytest.mark.parametrize("kind", ["plan", "buffer", "pas", "fas", "decision"])
def test_a_restart_after_a_cut_at_any_kind_of_entry_ends_as_a_run_without_one(
    scenario: Scenario, stream: list[Received], tmp_path: Path, kind: str
) -> None:
    """A power cut while the entry was written: the file keeps the entries before it and a fragment;
    the broker still holds every message from the one being written (or decided on) onwards, since
    none of them was acknowledged, and delivers them to the restarted service."""
    whole = tmp_path / "whole.jsonl"
    uncut = _service(scenario, MemoryBus(), Journal(whole))
    for message in stream:
        uncut.handle(message)
    assert uncut.rejected == 0
    lines = whole.read_bytes().splitlines(keepends=True)
    torn = _cut_points(lines)[kind]
    messages_before = sum(1 for line in lines[:torn] if _kind(line) != "decision")
    if kind == "decision":
        messages_before -= 1  # its batch_stored was not acknowledged yet: the sync comes with the decision
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"".join(lines[:torn]) + lines[torn][: len(lines[torn]) // 2])

    bus = MemoryBus()
    journal = Journal(path)
    restarted = _service(scenario, bus, journal)
    assert journal.repair() == TornEntry(path, torn + 1, len(lines[torn]) // 2)
    restarted.resume(journal.entries())
    for message in stream[messages_before:]:  # redelivered: what was never acknowledged
        restarted.handle(message)
    journal.close()

    assert restarted.mirror.kpis() == uncut.mirror.kpis()
    assert restarted.mirror.snapshot() == uncut.mirror.snapshot()
    entries = list(Journal(path).entries())
    decisions = [e for e in entries if isinstance(e, DecisionEntry)]
    assert [e.index for e in decisions] == list(range(6))  # every decision point answered once
    assert [e.decision_seq for e in decisions] == list(range(1, 7))
    assert len(entries) == len(lines)
