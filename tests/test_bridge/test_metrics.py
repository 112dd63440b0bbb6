"""Metrics: names and line protocol, the points of a mirrored week (each instant's state as long as
it held), and the writer against a real VictoriaMetrics (`/api/v2/write`): an outage, access refused
(401 from VictoriaMetrics, 404 from InfluxDB 1.x), and `serve --influx` killed and restarted."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Mosquitto
from streams import week_messages
from tsdb import InfluxDB1, Samples, VictoriaMetrics

from agent.live.emulator import LineEmulator
from agent.live.journal import Journal
from agent.live.listeners import PointsListener
from agent.live.service import AgentService
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus, Received
from bridge.influx import InfluxWriter, load_influx_settings
from bridge.metrics import BUFFER, DECISION, FAS, METRICS, PAS, WRITER, line_protocol, series_of, time_of
from bridge.points import QUIET_S, RESTATE_NS, LinePoints, simulated_points
from bridge.recording import Recorder
from bridge.topics import Topics
from twin import LineConfig, Scenario, WeekConfig, WorkCalendar, simulate, write_week
from twin.config import Downtime
from twin.mirror import Mirror

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
            ms = int(match["ns"]) // 1_000_000
            assert ms not in samples, f"two points at one time: {text}"
            samples[ms] = number
    return out


@pytest.fixture(scope="module")
def past_week(ref_week: WeekConfig) -> WeekConfig:
    """w1 moved to a past Monday: VictoriaMetrics drops samples more than two days ahead."""
    return ref_week.model_copy(update={"week_start": dt.date(2026, 1, 5)})


def _points(ref_line: LineConfig, week: WeekConfig, line: str, arm: str = "") -> list[str]:
    """The simulated week's points; `arm`: tagged as `serve` in that mode writes them."""
    return simulated_points(
        Scenario.build(ref_line, week), make_policy("setup-aware", 0), "setup-aware", line, arm
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
        for (since_s, held), (until_s, _) in zip(seq, [*seq[1:], (end_s, "")], strict=True):
            spent[name][held] += until_s - since_s
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


def _mirrored(scenario: Scenario, messages: list[Received], live: bool, end: bool = True) -> list[str]:
    """The points of a service that mirrors `messages`: `live`, it is idle between two messages (and
    for a minute after the last) and hands its points over while it is; else as a replay, one after
    the other. `end`: then the state of the last instant, as at the end of a week."""
    points: list[str] = []
    service = AgentService(
        scenario, None, "none", Topics(ROOT), MemoryBus(), listeners=[PointsListener(points.extend)]
    )
    for message, after in zip(messages, [*messages[1:], None], strict=True):
        service.handle(message)
        if live:
            idle_until = after.received_at - 0.001 if after is not None else message.received_at + 60
            service.deliver_points(now=idle_until)
    service.deliver_points(final=end)
    return points


def test_a_quiet_line_has_its_state_written_and_what_comes_late_follows_1_ms_after(
    ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    """A line that sends its events in real time has each instant written when it falls quiet, the
    same points as the simulation. When FAS1's next unit starts 3 s after the unit before it finished
    (same timestamp), the quiet FAS1 is written `waiting`, then `working` 1 ms later; a replay of the
    same messages, receipt times and all, writes the same points."""
    scenario = Scenario.build(ref_line, ref_week)
    messages = week_messages(scenario, ROOT)
    simulated = simulated_points(scenario, make_policy("setup-aware", 0), "setup-aware", ref_line.name)
    state = [p for p in simulated if not p.startswith(DECISION.name)]
    assert _mirrored(scenario, messages, live=True) == state

    fas1 = Topics(ROOT).fas_events("FAS1")
    i = next(i for i, m in enumerate(messages) if i > 5000 and m.topic == fas1 and b"finished" in m.payload)
    late = [Received(m.topic, m.payload, received_at=m.received_at + 3.0) for m in messages[i + 1 :]]
    slow = [*messages[: i + 1], *late]
    live = _mirrored(scenario, slow, live=True)
    assert live == _mirrored(scenario, slow, live=False)
    at_ns = LinePoints(LINE, Mirror(scenario)).ns(scenario.calendar.work_at(slow[i].received_at - 0.05))
    states = {int(p.rsplit(" ", 1)[1]) - at_ns: p.split('state="')[1].split('"')[0]
              for p in live if p.startswith(f"{FAS.name},line={ref_line.name},station=FAS1")}  # fmt: skip
    assert (states.get(0), states.get(RESTATE_NS)) == ("waiting", "working")
    quiet = _mirrored(scenario, slow[: i + 1], live=True, end=False)  # not held back until more comes
    assert set(quiet) <= set(live) and any(p.startswith(FAS.name) and p.endswith(f" {at_ns}") for p in quiet)


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


@pytest.fixture(scope="module")
def recorded_week(
    ref_line: LineConfig, past_week: WeekConfig, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A folder with the past week (`week/`) and its recording as the emulator publishes it."""
    folder = tmp_path_factory.mktemp("recorded")
    bus = MemoryBus()
    LineEmulator(
        Scenario.build(ref_line, past_week), Topics(ROOT), bus, own_policy=make_policy("setup-aware", 0)
    ).run()
    recorder = Recorder(folder / "week.jsonl")
    for message in bus.published:
        recorder.write(message)
    recorder.close()
    write_week(folder / "week", past_week, ref_line.types)
    return folder


def _linetwin(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.tsdb
def test_replay_influx_writes_the_recorded_week_as_it_happened(
    victoria: VictoriaMetrics, ref_line: LineConfig, past_week: WeekConfig, recorded_week: Path
) -> None:
    """The mirror of a recorded week writes the same line state as the simulation of that week."""
    env = {**os.environ, "LINETWIN_INFLUX_URL": victoria.url}
    recording, week_dir = recorded_week / "week.jsonl", recorded_week / "week"
    done = _linetwin("replay", str(recording), "--root", ROOT, "--week", str(week_dir), "--influx", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    state = [p for p in _points(ref_line, past_week, ref_line.name) if not p.startswith("linetwin_decision")]
    expected = expected_samples(state)
    assert_stored(victoria.export(), expected)


# -- access refused -----------------------------------------------------------------------------
@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A VictoriaMetrics that demands a user and password: the writer's token gets HTTP 401."""
    server = VictoriaMetrics(tmp_path / "vm", auth=("linetwin", "secret"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _refused(url: str, status: str, check: str) -> str:
    return (
        f"linetwin: error: metrics: {url}/api/v2/write answered HTTP {status} for bucket 'linetwin': {check}"
    )


@pytest.mark.tsdb
@pytest.mark.parametrize("command", ["simulate", "replay"])
def test_a_refused_token_is_an_error_of_one_line_naming_url_status_and_token(
    guarded: VictoriaMetrics, recorded_week: Path, tmp_path: Path, command: str
) -> None:
    env = {**os.environ, "LINETWIN_INFLUX_URL": guarded.url, "LINETWIN_INFLUX_TOKEN": "linetwin:wrong"}
    week = ["--week", str(recorded_week / "week")]
    args = (
        ["simulate", "--policy", "setup-aware", *week, "--out", str(tmp_path / "out")]
        if command == "simulate"
        else ["replay", str(recorded_week / "week.jsonl"), "--root", ROOT, *week]
    )
    done = _linetwin(*args, "--influx", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    check = "check LINETWIN_INFLUX_TOKEN (InfluxDB 1.8: user:password)"
    assert done.stderr.splitlines() == [_refused(guarded.url, "401 unauthorized", check)]
    assert guarded.export() == {}


@pytest.mark.tsdb
def test_a_missing_endpoint_is_an_error_of_one_line(recorded_week: Path, tmp_path: Path) -> None:
    """InfluxDB 1.x before 1.8 has no `/api/v2/write`: 404."""
    server = InfluxDB1(tmp_path / "influxdb")
    server.start()
    try:
        env = {**os.environ, "LINETWIN_INFLUX_URL": server.url}
        week = ["--week", str(recorded_week / "week")]
        out = ["--out", str(tmp_path / "out")]
        done = _linetwin("simulate", "--policy", "setup-aware", *week, *out, "--influx", env=env)
    finally:
        server.stop()
    assert done.returncode == 2, done.stdout + done.stderr
    check = (
        "the server has no /api/v2/write (InfluxDB 1.8 or later, 2.x, 3.x or VictoriaMetrics take it): "
        "check LINETWIN_INFLUX_URL and the server's version"
    )
    assert done.stderr.splitlines() == [_refused(server.url, "404 not found (404 page not found)", check)]
    assert not (tmp_path / "out").exists()  # the server was asked before the run


# -- serve --influx: refused access, kill -9 -----------------------------------------------------
def _cli(*args: str, out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args], stdout=out.open("w"), stderr=subprocess.STDOUT, text=True,
        env=env,
    )  # fmt: skip


class ServedWeek:
    """`serve --influx` and `emulate` of the past week on a real broker."""

    def __init__(self, broker: Mosquitto, folder: Path, week_dir: Path, influx: dict[str, str],
                 processes: list[subprocess.Popen[str]]) -> None:  # fmt: skip
        self.port, self.folder, self.week_dir, self.processes = str(broker.port), folder, week_dir, processes
        batches = {"LINETWIN_INFLUX_FLUSH_INTERVAL_S": "1", "LINETWIN_INFLUX_BATCH_SIZE": "1000000"}
        self.env = {**os.environ, **batches, **influx}  # a batch a second
        self.journal = folder / "journal.jsonl"
        self.serves = 0
        self.serve = self.start_serve()
        self.emulate = _cli(
            "emulate", "--port", self.port, "--root", ROOT, "--week", str(week_dir), "--speed", "60000",
            out=folder / "emulate.log", env=self.env,
        )  # fmt: skip
        processes.append(self.emulate)

    def start_serve(self, **env: str) -> subprocess.Popen[str]:
        self.serves += 1
        serve = _cli(
            "serve", "--port", self.port, "--root", ROOT, "--policy", "setup-aware",
            "--week", str(self.week_dir), "--journal", str(self.journal), "--clock", "line", "--influx",
            "--exit-after-idle", "4",
            out=self.log(self.serves), env={**self.env, **env},
        )  # fmt: skip
        self.processes.append(serve)
        return serve

    def log(self, number: int) -> Path:
        return self.folder / f"serve{number}.log"

    def finish(self, dispatches: int) -> None:
        emulated = (self.folder / "emulate.log").read_text
        assert self.emulate.wait(timeout=120) == 0, emulated()
        assert f"{dispatches} dispatches applied" in emulated()
        assert self.serve.wait(timeout=90) == 0, self.log(self.serves).read_text()


def _journal_points(scenario: Scenario, journal: Path) -> list[str]:
    """What the journal's replay regenerates, plus what serve's ledger kept: every point serve writes
    (its decisions without the latency, which is not kept)."""
    points: list[str] = []
    service = AgentService(scenario, None, "setup-aware", Topics(ROOT), MemoryBus(),
                           listeners=[PointsListener(points.extend, arm=True)])  # fmt: skip
    service.resume(Journal(journal).entries())
    service.deliver_points(final=True)
    kept = journal.with_suffix(".influx.kept.lp")
    return points + (kept.read_text().splitlines() if kept.exists() else [])


def assert_exactly(samples: Samples, points: list[str]) -> None:
    """The server holds these points, each once (`export` fails on two samples at one time), and no
    other, but for the writer's own, the decisions' latency (measured live only) and what it keeps
    of string fields."""
    expected = expected_samples(points)
    assert_stored(samples, expected)
    extra = {name for name, _ in set(samples) - set(expected)}
    strings = {"linetwin_fas_state", "linetwin_pas_state", "linetwin_pas_batch_type", "linetwin_alert_text"}
    writer = {f"linetwin_writer_{f}" for f in WRITER.fields}
    assert extra <= {"linetwin_decision_latency_ms", *strings, *writer}
    decisions = {t for (name, _), values in expected.items() if name == "linetwin_decision_decision_seq"
                 for t in values}  # fmt: skip
    latencies = {
        t for (name, _), values in samples.items() if name == "linetwin_decision_latency_ms" for t in values
    }
    assert latencies <= decisions


@pytest.mark.slow
@pytest.mark.mqtt
@pytest.mark.tsdb
def test_serve_says_loudly_that_access_is_refused_mirrors_on_and_delivers_once_it_is_granted(
    mosquitto: Mosquitto, guarded: VictoriaMetrics, ref_line: LineConfig, past_week: WeekConfig,
    recorded_week: Path, tmp_path: Path, processes: list[subprocess.Popen[str]],
) -> None:  # fmt: skip
    influx = {"LINETWIN_INFLUX_URL": guarded.url, "LINETWIN_INFLUX_TOKEN": "linetwin:wrong"}
    week = ServedWeek(mosquitto, tmp_path, recorded_week / "week", influx, processes)
    log = week.log(1).read_text
    deadline = time.monotonic() + 30
    while "HTTP 401" not in log():
        assert time.monotonic() < deadline and week.serve.poll() is None, log()
        time.sleep(0.2)
    guarded.stop()  # the administrator lets the token in
    guarded.auth = None
    guarded.start()
    results, _ = simulate(Scenario.build(ref_line, past_week), make_policy("setup-aware", 0))
    week.finish(results.batches)
    said = [line for line in log().splitlines() if "HTTP 401" in line]
    check = "check LINETWIN_INFLUX_TOKEN (InfluxDB 1.8: user:password)"
    assert said[0] == (f"ERROR bridge.influx: {_refused(guarded.url, '401 unauthorized', check)[17:]}; "
                       f"{said[0].rsplit('; ', 1)[1]}")  # fmt: skip
    assert said[0].endswith("points wait, retrying") and len(said) == 1  # again only after a minute
    assert f"metrics: {guarded.url} accepts the writes again" in log()
    assert_exactly(guarded.export(), _journal_points(Scenario.build(ref_line, past_week), week.journal))


@pytest.mark.slow
@pytest.mark.mqtt
@pytest.mark.tsdb
def test_serve_killed_and_restarted_writes_every_point_once(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, ref_line: LineConfig, past_week: WeekConfig,
    recorded_week: Path, tmp_path: Path, processes: list[subprocess.Popen[str]],
) -> None:  # fmt: skip
    """kill -9 mid-week: the restarted serve sends what the first one had only queued (regenerated
    from the journal, or kept by the ledger) and nothing it had delivered."""
    week = ServedWeek(mosquitto, tmp_path, recorded_week / "week", {"LINETWIN_INFLUX_URL": victoria.url},
                      processes)  # fmt: skip
    ledger = tmp_path / "journal.influx.json"
    writes, last, deadline = 0, (0, 0), time.monotonic() + 30
    while writes < 3:  # each write of the ledger is a new file (renamed over the old one)
        assert time.monotonic() < deadline and week.serve.poll() is None, week.log(1).read_text()
        stat = ledger.stat() if ledger.exists() else None
        now = (stat.st_ino, stat.st_mtime_ns) if stat else (0, 0)
        writes, last = writes + (now != last), now
        time.sleep(0.01)
    time.sleep(0.2)  # between two batches: none in flight, points wait in the queue
    assert week.emulate.poll() is None, "the week ended before the kill"
    week.serve.send_signal(signal.SIGKILL)
    week.serve.wait(timeout=10)
    delivered = json.loads(ledger.read_text())["delivered"]
    shutil.copy(week.journal, tmp_path / "at-kill.jsonl")
    time.sleep(QUIET_S + 0.5)
    week.serve = week.start_serve()
    scenario = Scenario.build(ref_line, past_week)
    results, _ = simulate(scenario, make_policy("setup-aware", 0))
    week.finish(results.batches)

    written = _journal_points(scenario, week.journal)
    assert_exactly(victoria.export(), written)
    queued = [p for p in _journal_points(scenario, tmp_path / "at-kill.jsonl")
              if time_of(p) > delivered.get(series_of(p), -1)]  # fmt: skip
    assert queued, "nothing was left to regenerate at the kill"
    skipped = re.search(r"(\d+) delivered before a restart", week.log(2).read_text())
    assert skipped and int(skipped[1]) > 0
    # the line's state is the simulation's, but at the instant of the restart (written when quiet)
    state = ("linetwin_buffer", "linetwin_stock", "linetwin_fas", "linetwin_pas", "linetwin_kpi")
    live = expected_samples([p for p in written if p.startswith(state)])
    offline = expected_samples(
        [p for p in _points(ref_line, past_week, ref_line.name, "active") if p.startswith(state)]
    )
    differ = {
        t
        for key in live.keys() | offline.keys()
        for t in live.get(key, {}).keys() ^ offline.get(key, {}).keys()
    }
    differ |= {t for key in live.keys() & offline.keys() for t in live[key].keys() & offline[key].keys()
               if live[key][t] != offline[key][t]}  # fmt: skip
    assert not differ or max(differ) - min(differ) < 1000, sorted(differ)
