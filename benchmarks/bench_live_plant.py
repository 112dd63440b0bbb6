"""Benchmark of many lines live (issue 19): N lines of the reference line (PAS + 4 FAS) emulated at
`--speed` working seconds per wall second against a real Mosquitto (Debian's, started here on a
free port), served either by one `linetwin serve --plant` process for all lines or by one `linetwin
serve` process per line.

    flock /tmp/ctx/heavy.lock python benchmarks/bench_live_plant.py [--lines 30] [--speed 60]
        [--window 120] [--policy setup-aware] [--layouts plant,processes] [--out runs/bench-live-plant]

Per layout: the services start and come online (start-up wall time, CPU and memory); the N virtual
lines (`agent.live.emulator.LineEmulator`, one thread each in this process, the weeks w1, w2, w3 in
turn, their starts spread over `--stagger` seconds so that the lines are not in step) run for
`--window` wall seconds, every line following the dispatches of its service (all lines active);
then they stop. Figures:
- events/s ingested: the events the services accepted (each line's retained `twin/state`) over the
  window, and how many the lines published (nothing may be lost or rejected);
- dispatch latency: per decision point, the line's `batch_stored` published -> the dispatch received
  (the emulator's clock; the week start's answer is left out), p50, p99, max over all lines;
- CPU per line: the services' CPU time (utime + stime of /proc/PID/stat) during the window, per line
  and wall second, as a share of one core; memory per line: the services' resident set (VmRSS) at
  the end of the window divided by the lines (and the same at start-up).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto  # the tests' helper: one Mosquitto on a free port

from agent.live.emulator import LineEmulator
from bridge.messages import StateMsg, StatusMsg
from bridge.mqtt import MqttBus
from bridge.settings import BusSettings, load_bus_settings
from bridge.topics import Topics
from twin import Scenario, load_line, load_week
from twin.config import default_config_dir
from twin.events import LineEvent

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = 1


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", *args]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return 0.0


class Enough(Exception):
    """Raised from an emulator's event hook once the window is over: its week stops there."""


def roots(prefix: str, n: int) -> list[str]:
    return [f"{prefix}/line{i + 1:02d}" for i in range(n)]


def write_plant(path: Path, lines: list[str], weeks: list[Path], policy: str, folder: Path) -> None:
    rows = [
        f'[[lines]]\nroot = "{root}"\nweek = "{weeks[i % len(weeks)]}"\nmode = "active"\n'
        f'policy = "{policy}"\nname = "{root.rsplit("/", 1)[1]}"\n'
        f'journal = "{folder / f"j{i + 1:02d}.jsonl"}"\n'
        for i, root in enumerate(lines)
    ]
    path.write_text("\n".join(rows))


def wait_online(settings: BusSettings, prefix: str, n: int, timeout_s: float) -> float:
    """Wall seconds until every line's retained status says online."""
    started = time.monotonic()
    bus = MqttBus(settings, "bench-status", subscriptions=[f"{prefix}/+/twin/status"], persistent=False)
    bus.start()
    online: set[str] = set()
    try:
        while len(online) < n:
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"only {len(online)} of {n} lines came online within {timeout_s:g} s")
            try:
                message = bus.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            bus.ack(message)  # the broker sends only so many unacknowledged messages at once
            if StatusMsg.model_validate_json(message.payload).status == "online":
                online.add(message.topic)
    finally:
        bus.stop()
    return time.monotonic() - started


def read_states(settings: BusSettings, prefix: str, n: int, timeout_s: float = 10.0) -> dict[str, StateMsg]:
    """Each line's retained twin/state (the newest)."""
    bus = MqttBus(settings, "bench-state", subscriptions=[f"{prefix}/+/twin/state"], persistent=False)
    bus.start()
    states: dict[str, StateMsg] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(states) < n and time.monotonic() < deadline:
            try:
                message = bus.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            bus.ack(message)
            states[message.topic.rsplit("/", 2)[0]] = StateMsg.model_validate_json(message.payload)
    finally:
        bus.stop()
    return states


def run_layout(layout: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    broker = Mosquitto(folder / f"mosquitto-{layout}")
    broker.start()
    prefix = f"bench/{layout}"
    lines = roots(prefix, args.lines)
    config = default_config_dir()
    weeks = [config / "weeks" / w for w in args.weeks.split(",")]
    journals = folder / f"journals-{layout}"
    journals.mkdir()
    common = ["--port", str(broker.port), "--clock", "line", "--policy", args.policy]
    logs: list[Path] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if layout == "plant":
            plant = folder / "plant.toml"
            write_plant(plant, lines, weeks, args.policy, journals)
            logs.append(folder / "serve-plant.log")
            command = _cli("serve", "--plant", str(plant), *common)
            processes.append(subprocess.Popen(command, stdout=logs[-1].open("w"), stderr=subprocess.STDOUT))
        else:
            for i, root in enumerate(lines):
                logs.append(folder / f"serve-{i + 1:02d}.log")
                command = _cli("serve", "--root", root, "--week", str(weeks[i % len(weeks)]),
                               "--journal", str(journals / f"j{i + 1:02d}.jsonl"), *common)  # fmt: skip
                processes.append(
                    subprocess.Popen(command, stdout=logs[-1].open("w"), stderr=subprocess.STDOUT)
                )
        settings = load_bus_settings(port=broker.port, root=lines[0])
        try:
            startup_s = wait_online(settings, prefix, args.lines, timeout_s=300)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{logs[0].read_text()[-3000:]}") from None
        time.sleep(1.0)  # the week-start decisions (SETTLE_S) are made before the window
        pids = [p.pid for p in processes]
        startup_cpu = sum(cpu_s(pid) for pid in pids)
        startup_rss = sum(rss_mib(pid) for pid in pids)
        print(f"{layout}: {args.lines} lines online after {startup_s:.1f} s, {startup_cpu:.1f} CPU s, "
              f"{startup_rss:.0f} MiB", flush=True)  # fmt: skip

        stop = threading.Event()
        emulators: list[LineEmulator] = []
        failures: list[str] = []
        scenarios: dict[Path, Scenario] = {}
        line_cfg = load_line(config / "line.toml")
        for week in weeks:
            scenarios[week] = Scenario.build(line_cfg, load_week(week, line_cfg))

        def enough(_event: LineEvent) -> None:
            if stop.is_set():
                raise Enough

        buses = []
        for i, root in enumerate(lines):
            topics = Topics(root)
            bus = MqttBus(
                settings.model_copy(update={"root": root}),
                f"bench-emulate-{i}",
                subscriptions=[topics.dispatch, topics.dispatch_current],
                persistent=False,
            )
            buses.append(bus)
            scenario = scenarios[weeks[i % len(weeks)]]
            emulators.append(LineEmulator(scenario, topics, bus, speed=args.speed, on_event=enough))

        def emulate(i: int) -> None:
            time.sleep(i * args.stagger / args.lines)
            buses[i].start()
            try:
                emulators[i].run()
            except Enough:
                pass
            except Exception as exc:  # reported with the figures
                failures.append(f"{lines[i]}: {exc}")
            finally:
                buses[i].flush(timeout_s=10)
                buses[i].stop()

        cpu_before = sum(cpu_s(pid) for pid in pids)
        own_before = os.times()
        threads = [threading.Thread(target=emulate, args=(i,), daemon=True) for i in range(args.lines)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(args.window)
        cpu_window = sum(cpu_s(pid) for pid in pids) - cpu_before
        rss = [rss_mib(pid) for pid in pids]
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        window_s = time.monotonic() - started
        own = os.times()
        time.sleep(3.0)  # the services go quiet and publish their state
        states = read_states(settings, prefix, args.lines)
        published = sum(e.published for e in emulators)
        accepted = sum(s.events_accepted for s in states.values())
        rejected = sum(s.events_rejected for s in states.values())
        waits = [w for e in emulators for w in e.dispatch_waits_s[1:]]
        ms = np.array(waits) * 1000 if waits else np.array([np.nan])
        return {
            "layout": layout,
            "lines": args.lines,
            "processes": len(processes),
            "speed": args.speed,
            "policy": args.policy,
            "startup_s": round(startup_s, 1),
            "startup_cpu_s": round(startup_cpu, 1),
            "startup_rss_mib": round(startup_rss),
            "window_s": round(window_s, 1),
            "events_published": published,
            "events_accepted": accepted,
            "events_rejected": rejected,
            "states": len(states),
            "events_per_s": round(accepted / window_s, 1),
            "decisions": len(waits),
            "dispatches": sum(e.dispatched for e in emulators),
            "latency_p50_ms": round(float(np.median(ms)), 1),
            "latency_p99_ms": round(float(np.percentile(ms, 99)), 1),
            "latency_max_ms": round(float(ms.max()), 1),
            "cpu_s": round(cpu_window, 1),
            "cpu_per_line_pct": round(100 * cpu_window / window_s / args.lines, 2),
            "rss_mib": round(sum(rss)),
            "rss_per_line_mib": round(sum(rss) / args.lines, 1),
            "emulators_cpu_s": round(own.user + own.system - own_before.user - own_before.system, 1),
            "failures": failures,
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--lines", type=int, default=30)
    parser.add_argument("--speed", type=float, default=60.0, help="working seconds per wall second")
    parser.add_argument("--window", type=float, default=120.0, help="wall seconds the lines run")
    parser.add_argument("--stagger", type=float, default=10.0, help="the lines start within so many s")
    parser.add_argument("--policy", default="setup-aware")
    parser.add_argument("--weeks", default="w1,w2,w3")
    parser.add_argument("--layouts", default="plant,processes")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-live-plant"))
    args = parser.parse_args()
    report = []
    with tempfile.TemporaryDirectory() as folder:
        for layout in args.layouts.split(","):
            row = run_layout(layout, args, Path(folder))
            report.append(row)
            print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench_live_plant-{args.lines}-{args.policy}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
