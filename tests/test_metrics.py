"""Metrics: names and line protocol, the points of a mirrored week, and the writer against a real
VictoriaMetrics (`/api/v2/write`), including an outage."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tsdb import Samples, VictoriaMetrics

from agent.cli import make_policy
from agent.emulator import LineEmulator
from bridge.bus import MemoryBus
from bridge.influx import InfluxWriter, load_influx_settings
from bridge.metrics import BUFFER, FAS, METRICS, PAS, line_protocol
from bridge.points import simulated_points
from bridge.recording import Recorder
from bridge.topics import Topics
from twin import LineConfig, Scenario, WeekConfig, WorkCalendar, simulate, write_week
from twin.config import Downtime

LINE = "line 1"  # a space: tags must be escaped
ROOT = "test/plant/assembly/line1"
POINT = re.compile(
    r"^(?P<series>(?:[^ \\]|\\.)+) (?P<fields>(?:[^ \"\\]|\\.|\"(?:[^\"\\]|\\.)*\")+) (?P<ns>\d+)$"
)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def expected_samples(lines: list[str]) -> Samples:
    """What VictoriaMetrics should hold for these points: numeric fields as `measurement_field`."""
    out: Samples = {}
    for text in lines:
        match = POINT.match(text)
        assert match, text
        name, *tag_parts = re.split(r"(?<!\\),", match["series"])
        tags = tuple(sorted(tuple(_unescape(p).split("=", 1)) for p in tag_parts))
        for field in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", match["fields"]):
            key, value = field.split("=", 1)
            if value.startswith('"') or value in ("true", "false"):
                continue  # VictoriaMetrics keeps numbers only
            number = float(value[:-1] if value.endswith("i") else value)
            samples = out.setdefault((f"{name}_{key}", tags), {})  # type: ignore[arg-type]
            samples[int(match["ns"]) // 1_000_000] = number
    return out


@pytest.fixture(scope="module")
def past_week(ref_week: WeekConfig) -> WeekConfig:
    """w1 moved to a past Monday: VictoriaMetrics drops samples more than two days ahead."""
    return ref_week.model_copy(update={"week_start": dt.date(2026, 1, 5)})


def _points(ref_line: LineConfig, week: WeekConfig, line: str) -> list[str]:
    return simulated_points(
        Scenario.build(ref_line, week), make_policy("setup-aware", 0), "setup-aware", line
    )


@pytest.fixture(scope="module")
def week_points(ref_line: LineConfig, past_week: WeekConfig) -> list[str]:
    return _points(ref_line, past_week, LINE)


# -- line protocol and points -----------------------------------------------------------------
def test_line_protocol_escapes_and_checks_names() -> None:
    text = line_protocol(FAS, {"line": "a b,c", "station": "F=1"}, {"state": 'say "hi"', "idle_s": 3}, 7)
    assert text == 'linetwin_fas,line=a\\ b\\,c,station=F\\=1 state="say \\"hi\\"",idle_s=3i 7'
    with pytest.raises(ValueError, match="unknown keys"):
        line_protocol(BUFFER, {"line": "x"}, {"colour": 1}, 0)
    assert len({m.name for m in METRICS}) == len(METRICS)


def test_a_simulated_week_has_one_point_per_series_and_instant_and_ends_with_its_kpis(
    week_points: list[str], ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    keys = [(p.rsplit(" ", 2)[0], p.rsplit(" ", 1)[1]) for p in week_points if p.startswith("linetwin_fas")]
    assert len(keys) == len(set(keys))
    results, _ = simulate(Scenario.build(ref_line, ref_week), make_policy("setup-aware", 0))
    last_kpi = [p for p in week_points if p.startswith("linetwin_kpi")][-1]
    assert f"idle_s={results.idle_s}i" in last_kpi
    assert f"setup_effort={float(results.setup_effort)!r}" in last_kpi
    decisions = [p for p in week_points if p.startswith("linetwin_decision")]
    assert len(decisions) == results.batches


def _time_in_states(
    points: list[str], metric: str, calendar: WorkCalendar, end_s: int
) -> dict[str, Counter[str]]:
    """Working seconds each series of `metric` spent in each state: a point's state holds until the
    next point of its series, the last one until `end_s`."""
    changes: dict[str, list[tuple[int, str]]] = {}
    for text in points:
        match = POINT.match(text)
        assert match, text
        if match["series"].split(",")[0] != metric:
            continue
        state = re.search(r'(?:^|,)state="(\w+)"', match["fields"])
        assert state, text
        at_s = calendar.work_at(int(match["ns"]) / 1e9)
        changes.setdefault(_unescape(match["series"].rsplit("=", 1)[1]), []).append((at_s, state[1]))
    spent: dict[str, Counter[str]] = {}
    for name, seq in changes.items():
        spent[name] = Counter()
        for (at_s, state), (until_s, _) in zip(seq, [*seq[1:], (end_s, "")], strict=True):
            spent[name][state] += until_s - at_s
    return spent


def _with_downtime(week: WeekConfig) -> WeekConfig:
    """The week with stops of three FAS (one across the night) and the PAS."""
    monday = dt.datetime.combine(week.week_start, dt.time())

    def down(station: str, day: int, start: str, end: str) -> Downtime:
        a, b = (monday + dt.timedelta(days=day, hours=int(t[:2]), minutes=int(t[3:])) for t in (start, end))
        return Downtime(station=station, start=a, end=b)

    stops = [down("FAS1", 1, "10:00", "12:30"), down("FAS3", 0, "23:00", "31:00"),
             down("FAS2", 3, "14:07", "14:50"), down("PAS", 2, "08:00", "09:30")]  # fmt: skip
    return week.model_copy(update={"downtime": stops})


@pytest.mark.parametrize(
    ("downtime", "policy"),
    [(False, "setup-aware"), (True, "setup-aware"), (True, "random"), (True, "first-fit")],
)
def test_the_states_written_hold_as_long_as_the_twin_says(
    ref_line: LineConfig, ref_week: WeekConfig, downtime: bool, policy: str
) -> None:
    """Time-weighted, the FAS and PAS states of a simulated week's points are the twin's idle time,
    utilisation, downtime, PAS busy and blocked time (w1 with setup-aware: FAS1 works all week)."""
    scenario = Scenario.build(ref_line, _with_downtime(ref_week) if downtime else ref_week)
    results, _ = simulate(scenario, make_policy(policy, 0))
    points = simulated_points(scenario, make_policy(policy, 0), policy, LINE)
    end_s = results.makespan_s
    fas = _time_in_states(points, FAS.name, scenario.calendar, end_s)
    assert set(fas) == set(scenario.stations)
    for f, station in enumerate(scenario.stations):
        spent = fas[station]
        down_s = sum(max(0, min(b, end_s) - a) for a, b in scenario.downtime[f] if a < end_s)
        assert spent["down"] == down_s, station
        assert spent["waiting"] == results.idle_s_by_station[station], station
        assert spent["working"] / (end_s - down_s) == pytest.approx(results.utilisation[station], rel=1e-12)
    pas = _time_in_states(points, PAS.name, scenario.calendar, end_s)[LINE]
    assert (pas["producing"], pas["blocked"]) == (results.pas_busy_s, results.pas_blocked_s)


# -- the writer against a real server ---------------------------------------------------------
@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def assert_stored(samples: Samples, expected: Samples) -> None:
    """Every expected series with exactly its timestamps and values (VictoriaMetrics keeps about 12
    significant digits; it also keeps a series per string field, which is not compared)."""
    assert set(expected) <= set(samples)
    for key, values in expected.items():
        assert samples[key].keys() == values.keys(), key
        assert samples[key] == pytest.approx(values, rel=1e-10), key


@pytest.mark.tsdb
def test_every_point_of_a_week_arrives_with_its_values(
    victoria: VictoriaMetrics, week_points: list[str]
) -> None:
    writer = InfluxWriter(load_influx_settings(url=victoria.url, batch_size=2000), line=LINE)
    writer.write(week_points)
    assert writer.close(timeout_s=60)
    assert writer.stats.written == len(week_points) and writer.stats.dropped == 0
    expected = expected_samples(week_points)
    assert_stored(victoria.export(), expected)


@pytest.mark.tsdb
def test_points_written_during_an_outage_arrive_once_the_server_is_back(
    victoria: VictoriaMetrics, week_points: list[str]
) -> None:
    settings = load_influx_settings(url=victoria.url, batch_size=1000, flush_interval_s=0.2, timeout_s=2)
    writer = InfluxWriter(settings, line=LINE)
    half = len(week_points) // 2
    writer.write(week_points[:half])
    assert writer.flush(timeout_s=30)
    victoria.stop()
    writer.write(week_points[half:])  # the server is away: they wait
    threading.Event().wait(2)
    assert writer.queued > 0 and writer.stats.retries > 0
    victoria.start()
    assert writer.close(timeout_s=60)
    assert writer.stats.written == len(week_points) and writer.stats.dropped == 0
    expected = expected_samples(week_points)
    assert_stored(victoria.export(), expected)  # all there, none twice


def test_a_full_queue_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    settings = load_influx_settings(url="http://127.0.0.1:9", queue_points=10, timeout_s=1)  # nobody there
    writer = InfluxWriter(settings, line=LINE)
    writer.write([f"linetwin_buffer,line=x fill={i}i {i}" for i in range(25)])
    assert writer.stats.dropped >= 15
    assert not writer.close(timeout_s=1)


@pytest.mark.tsdb
def test_replay_influx_writes_the_recorded_week_as_it_happened(
    victoria: VictoriaMetrics, ref_line: LineConfig, past_week: WeekConfig, tmp_path: Path
) -> None:
    """The mirror of a recorded week writes the same line state as the simulation of that week."""
    scenario = Scenario.build(ref_line, past_week)
    bus = MemoryBus()
    LineEmulator(scenario, Topics(ROOT), bus, own_policy=make_policy("setup-aware", 0)).run()
    recording = tmp_path / "week.jsonl"
    recorder = Recorder(recording)
    for message in bus.published:
        recorder.write(message)
    recorder.close()
    week_dir = tmp_path / "week"
    write_week(week_dir, past_week, ref_line.types)
    env = {**os.environ, "LINETWIN_INFLUX_URL": victoria.url}
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "replay", str(recording), "--root", ROOT, "--week", str(week_dir),
         "--influx"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    state = [p for p in _points(ref_line, past_week, ref_line.name) if not p.startswith("linetwin_decision")]
    expected = expected_samples(state)
    assert_stored(victoria.export(), expected)
