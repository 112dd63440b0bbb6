"""Power cuts of `serve` on a real Mosquitto: the journal is a write-ahead log, so a week whose service
loses power in the middle of a journal entry, again and again, ends as the offline twin's week."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Mosquitto
from paths import TESTS
from test_live import (
    ROOT,
    SPEED,
    WEEK_TIMEOUT_S,
    Controller,
    LiveWeek,
    _cli,
    _final_state,
    _kpis,
    _offline,
    _serve,
)

from twin import LineConfig, WeekConfig

pytestmark = pytest.mark.mqtt

POWERCUT = TESTS / "powercut.py"
POLICY = "setup-aware"
CUTS = [("pas", 1500), ("decision", 1500), ("fas", 1500)]
"""One power cut per kind of entry the line's week writes, each after that many entries of the run."""


class PowerCutWeek(LiveWeek):
    """A `LiveWeek` whose `serve` starts under `powercut.py`."""

    def __init__(self, broker: Mosquitto, folder: Path, kind: str, after: int) -> None:
        port = str(broker.port)
        self.broker, self.folder, self.policy = broker, folder, POLICY
        self.journal = folder / "journal.jsonl"
        self.controller = Controller(broker, f"{ROOT}/dispatch/pas", folder / "controller.txt")
        self.recording = folder / "week.jsonl"
        self.recorder = _cli(
            "record", "--port", port, "--root", ROOT, "--out", str(self.recording), out=folder / "rec.log"
        )
        self.serve = self.serve_with_cut(kind, after, "serve0")
        self.emulate = _cli(
            "emulate", "--port", port, "--root", ROOT, "--speed", SPEED, out=folder / "emulate.log"
        )

    def serve_with_cut(self, kind: str, after: int, name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(POWERCUT), kind, str(after), "serve", "--port", str(self.broker.port),
             "--root", ROOT, "--policy", POLICY, "--journal", str(self.journal)],
            stdout=(self.folder / f"{name}.log").open("w"), stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


@pytest.fixture
def weeks() -> Iterator[list[LiveWeek]]:
    started: list[LiveWeek] = []
    yield started
    for week in started:
        week.kill()


@pytest.mark.slow
def test_power_cuts_at_every_kind_of_entry_lose_no_event_and_repeat_no_decision(
    mosquitto: Mosquitto, tmp_path: Path, ref_line: LineConfig, ref_week: WeekConfig, weeks: list[LiveWeek]
) -> None:
    week = PowerCutWeek(mosquitto, tmp_path, *CUTS[0])
    weeks.append(week)
    for n in range(len(CUTS)):
        log = tmp_path / f"serve{n}.log"
        assert week.serve.wait(timeout=WEEK_TIMEOUT_S) == -9, f"no power cut: {log.read_text()}"
        torn = re.search(r"powercut: (\w+) entry torn at line (\d+), (\d+) bytes kept", log.read_text())
        assert torn and torn[1] == CUTS[n][0], log.read_text()
        if n + 1 < len(CUTS):
            week.serve = week.serve_with_cut(*CUTS[n + 1], f"serve{n + 1}")
        else:
            week.serve = _serve(mosquitto, tmp_path, POLICY, name=f"serve{n + 1}")
        report = f"serve: journal {week.journal}: cut a torn last entry of {torn[3]} bytes at line {torn[2]}"
        deadline = time.monotonic() + 30
        while report not in (tmp_path / f"serve{n + 1}.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert report in (tmp_path / f"serve{n + 1}.log").read_text()
    emulated = week.finish()

    offline = _offline(ref_line, ref_week, POLICY)
    assert f"{offline[2]} dispatches applied" in emulated
    seqs = [d["decision_seq"] for d in week.controller.dispatches()]
    assert len(seqs) == len(set(seqs)), "a decision_seq was repeated"
    journal = [json.loads(line) for line in week.journal.read_text().splitlines()]
    decisions = [e["decision"] for e in journal if "decision" in e]
    assert decisions == list(range(offline[2]))  # every decision point answered once
    assert _kpis(_final_state(week.recording)) == offline  # no event lost
