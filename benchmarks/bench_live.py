"""Benchmark of the live loop through a real Mosquitto (Debian's `mosquitto`, started here on a free
port): decision latency, event ingestion and the replay of a recorded week.

    python benchmarks/bench_live.py [--week w1] [--batch-size 50] [--policy rl] [--speed 6000]
                                    [--out runs/bench-live]

1. Decision latency: `linetwin serve` (a separate process) decides with the policy; the emulator
   runs the week at `--speed` working seconds per wall second and times each decision point from
   its last event (the `batch_stored`) to the dispatch it receives. Again at full speed, where the
   service also ingests everything the line publishes between decisions. Both with the journal as
   shipped (write, fsync, acknowledge) and with `os.fsync` made a no-op in `serve` (the cost of it).
2. Ingestion: the week the line built by following the agent (so the outlook holds, as on a line
   that obeys the dispatch) is republished as fast as possible by `linetwin replay --to-broker`
   (a separate process) into a service that mirrors it (with and without the deciding agent).
   Events per second from the first to the last accepted; nothing may be rejected or lost: the
   mirrored KPIs must equal the offline twin's. The service's journal: as shipped (`fsync`, group
   commit), one sync per message (`fsync-each`), written without sync (`no-fsync`), or none.
3. Replay: `linetwin replay` of that recording, wall time of the whole command (start-up included),
   without and with the agent's shadow decisions.

With `--planner NAME` only 1. at `--speed` with the journal as shipped, while `serve --planner NAME
--policy POLICY` dispatches from its plan and its worker process re-plans (issue 17).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto  # the tests' helper: one Mosquitto on a free port

import agent.live.service
from agent.live.emulator import EmulatorTimeout, LineEmulator
from agent.live.journal import Journal
from agent.live.listeners import JournalListener
from agent.live.service import AgentService
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus
from bridge.mqtt import MqttBus
from bridge.recording import Recorder
from bridge.settings import load_bus_settings
from bridge.topics import Topics
from twin import Scenario, load_line, load_week, simulate
from twin.config import default_config_dir

ROOT = "bench/plant/assembly/line1"
KPI_KEYS = ("idle_s", "setup_effort", "batches")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", *args]


WITHOUT_FSYNC = (
    "import os, sys; os.fsync = lambda fd: None; from agent.cli import main; sys.exit(main(sys.argv[1:]))"
)
"""`linetwin` with `os.fsync` a no-op: the journal is written and flushed, never synced."""


@contextlib.contextmanager
def _syncs(mode: str) -> Iterator[list[int]]:
    """Count the journal's fsyncs (`no-fsync`: count, do nothing; `fsync-each`: no group commit)."""
    real, group = os.fsync, agent.live.service.COMMIT_ENTRIES
    counted = [0]

    def fsync(fd: int) -> None:
        counted[0] += 1
        if mode != "no-fsync":
            real(fd)

    os.fsync = fsync
    if mode == "fsync-each":
        agent.live.service.COMMIT_ENTRIES = 1
    try:
        yield counted
    finally:
        os.fsync, agent.live.service.COMMIT_ENTRIES = real, group


def _percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.median(ms)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def decision_latency(
    broker: Mosquitto, scenario: Scenario, args: argparse.Namespace, speed: float, fsync: bool
) -> dict[str, Any]:
    """`serve` in its own process (`fsync` False: with `os.fsync` a no-op), the emulator here; waits
    per decision point."""
    name = f"{speed:g}-{'fsync' if fsync else 'no-fsync'}"
    log = broker.folder / f"serve-{name}.log"
    linetwin = _cli() if fsync else [sys.executable, "-c", WITHOUT_FSYNC]
    serve = subprocess.Popen(
        [*linetwin, "serve", "--port", str(broker.port), "--root", ROOT, "--policy", args.policy,
         "--week", str(args.week_dir), "--batch-size", str(scenario.batch_size),
         "--journal", str(broker.folder / f"journal-{name}.jsonl"), "--exit-after-idle", "3",
         *(["--planner", args.planner] if args.planner else [])],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    settings = load_bus_settings(port=broker.port, root=ROOT)
    topics = Topics(ROOT)
    subscriptions = [topics.dispatch, topics.status]
    bus = MqttBus(settings, f"emulate-{speed:g}", subscriptions=subscriptions, persistent=False)
    emulator = LineEmulator(scenario, topics, bus, speed=speed)
    bus.start()
    try:
        try:
            emulator.wait_for_twin(timeout_s=120)
        except EmulatorTimeout as exc:
            raise RuntimeError(f"{exc}:\n{log.read_text()}") from None
        started = time.perf_counter()
        results = emulator.run()
        wall = time.perf_counter() - started
        bus.flush()
    finally:
        bus.stop()
    if serve.wait(timeout=60) != 0:
        raise RuntimeError(f"serve failed:\n{log.read_text()}")
    waits = emulator.dispatch_waits_s[1:]  # the first answers the week start, not a batch_stored
    planner = [line for line in log.read_text().splitlines() if line.startswith("serve: planner")]
    return {
        "planner": planner[0].removeprefix("serve: ") if planner else None,
        "speed": speed,
        "fsync": fsync,
        "events": emulator.published,
        "dispatches": emulator.dispatched,
        "week_wall_s": round(wall, 2),
        "kpis": {k: getattr(results, k) for k in KPI_KEYS},
        **_percentiles_ms(waits),
    }


def record_week(scenario: Scenario, policy: str, path: Path) -> int:
    """The contract's events of the week the line builds by following `policy`, as a recording."""
    bus = MemoryBus()
    LineEmulator(scenario, Topics(ROOT), bus, own_policy=make_policy(policy, 0)).run()
    recorder = Recorder(path)
    for message in bus.published:
        recorder.write(message)
    recorder.close()
    return recorder.count


def ingestion(
    broker: Mosquitto,
    scenario: Scenario,
    recording: Path,
    count: int,
    policy: str | None,
    backlog: bool,
    journal: str = "fsync",
) -> dict[str, Any]:
    """A service here mirrors what `replay --to-broker` (its own process) publishes at full speed:
    while it runs (`backlog` False: the publisher sets the pace), or before it connects (True: the
    broker holds the week for its session and the service drains it as fast as it can). `journal`:
    `fsync` (as shipped), `fsync-each`, `no-fsync` or `none`."""
    settings = load_bus_settings(port=broker.port, root=ROOT)
    topics = Topics(ROOT)
    role = f"ingest-{policy}-{'backlog' if backlog else 'live'}-{journal}"
    publish = _cli("replay", str(recording), "--to-broker", "--speed", "0",
                   "--port", str(broker.port), "--root", ROOT)  # fmt: skip
    if backlog:
        session = MqttBus(settings, role, subscriptions=topics.inbound_filters)
        session.start()
        session.stop()  # the session exists: the broker queues the week for it
        printed = subprocess.run(publish, capture_output=True, text=True, check=True).stdout
    bus = MqttBus(settings, role, subscriptions=topics.inbound_filters)
    decider = make_policy(policy, 0) if policy else None
    log = Journal(broker.folder / f"journal-{role}.jsonl") if journal != "none" else None
    listeners = [JournalListener(log)] if log is not None else []
    service = AgentService(scenario, decider, policy or "none", topics, bus, listeners=listeners)
    with _syncs(journal) as syncs:
        started = time.perf_counter()
        bus.start()
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        if not backlog:
            publisher = subprocess.Popen(publish, stdout=subprocess.PIPE, text=True)
        first = 0.0
        deadline = time.monotonic() + 120
        while (handled := service.accepted + service.rejected) < count and time.monotonic() < deadline:
            if handled and not first:
                first = time.perf_counter()
            time.sleep(0.001)
        last = time.perf_counter()
        if not backlog:
            printed, _ = publisher.communicate(timeout=60)
        stop.set()
        thread.join(timeout=30)
        bus.stop()
        if log is not None:
            log.close()
    kpis = service.state().kpis
    return {
        "policy": policy or "none (mirror only)",
        "mode": "backlog" if backlog else "live",
        "journal": journal,
        "syncs": syncs[0],
        "accepted": service.accepted,
        "rejected": service.rejected,
        "events_per_s": round(service.accepted / (last - first)) if first else 0,
        "from_connect_s": round(last - started, 2),
        "publisher": printed.strip().splitlines()[-1],
        "kpis": {k: getattr(kpis, k) for k in KPI_KEYS},
    }


def replay(recording: Path, args: argparse.Namespace, policy: str | None) -> dict[str, Any]:
    command = _cli("replay", str(recording), "--root", ROOT, "--week", str(args.week_dir),
                   "--batch-size", str(args.batch_size),
                   *(["--policy", policy] if policy else []))  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return {
        "policy": policy or "none",
        "command_wall_s": round(time.perf_counter() - started, 2),
        "printed": done.stdout.strip().splitlines()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--week", default="w1")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--policy", default="rl")
    parser.add_argument("--speed", type=float, default=6000.0, help="working seconds per wall second")
    parser.add_argument(
        "--planner",
        default=None,
        help="serve --planner NAME (--policy the fallback): only the decision latency at --speed, with "
        "the sync, while the planner's worker re-plans",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-live"))
    args = parser.parse_args()
    config = default_config_dir()
    line = load_line(config / "line.toml")
    args.week_dir = config / "weeks" / args.week
    scenario = Scenario.build(line, load_week(args.week_dir, line), args.batch_size)
    offline, _ = simulate(scenario, make_policy(args.policy, 0))
    expected = {k: getattr(offline, k) for k in KPI_KEYS}
    print(f"offline twin, {args.week} b={args.batch_size} {args.policy}: {expected}")
    report: dict[str, Any] = {"week": args.week, "batch_size": args.batch_size, "offline": expected}
    if args.planner:
        print(f"serve --planner {args.planner}: its KPIs are its own (the offline line is {args.policy}'s)")
    with tempfile.TemporaryDirectory() as folder:
        broker = Mosquitto(Path(folder) / "mosquitto")
        broker.start()
        try:
            if args.planner:
                report["latency"] = [decision_latency(broker, scenario, args, args.speed, True)]
                print(f"decision latency at speed {args.speed:g} while planning: {report['latency'][0]}")
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "bench_live_planner.json").write_text(json.dumps(report, indent=2))
                return
            report["latency"] = [
                decision_latency(broker, scenario, args, s, fsync)
                for s in (args.speed, 0.0)
                for fsync in (True, False)
            ]
            for row in report["latency"]:
                print(f"decision latency at speed {row['speed']:g}: {row}")
            recording = Path(folder) / "week.jsonl"
            count = record_week(scenario, args.policy, recording)
            runs = [(True, None, j) for j in ("none", "no-fsync", "fsync", "fsync-each")]
            runs += [(True, args.policy, j) for j in ("none", "fsync")]
            runs += [(False, p, "fsync") for p in (None, args.policy)]
            report["ingestion"] = [
                ingestion(broker, scenario, recording, count, p, backlog, j) for backlog, p, j in runs
            ]
            for row in report["ingestion"]:
                print(f"ingestion of {count} events: {row}")
            report["replay"] = [replay(recording, args, p) for p in (None, args.policy)]
            for row in report["replay"]:
                print(f"replay: {row}")
        finally:
            broker.stop()
    lost = [r for r in report["ingestion"] if r["rejected"] or r["kpis"] != expected]
    lost += [r for r in report["latency"] if r["kpis"] != expected]
    print("every run equals the offline twin" if not lost else f"MISMATCH: {lost}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_live.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'bench_live.json'}")


if __name__ == "__main__":
    main()
