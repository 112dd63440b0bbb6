"""Benchmark of the live service that re-plans (issue 17): `linetwin serve --planner NAME` against a
line emulated through a real Mosquitto (Debian's `mosquitto`, started here on a free port), next to
the best offline plan.

    python benchmarks/bench_live_plan.py [--weeks w1 w2 w3] [--batch-size 50] [--planner best]
        [--speed S] [--jobs 1] [--reference-limit 300] [--serve-args "..."] [--quick]
        [--policy NAME] [--out runs/bench-live-plan]

Per week two live runs, each one `linetwin serve --clock line --fresh` and one `linetwin emulate`
(separate processes, their own topic root and journal):
- undisturbed: both have the week as given. Reference: `plan_best` on the week with
  `--reference-limit` seconds. Target: live setup effort <= 1.05 x the reference's, zero idle.
- disturbed: the emulator plays the week with two breakdowns that serve does not know (it gets the
  week without them): the PAS Wednesday 11:00-13:00 and FAS1 Thursday 08:00-09:00, local time, both
  wholly in working time (the emulator publishes them as `down`/`up` events). Reference: `plan_best`
  on the week with them as planned downtime (hindsight). Target: live effort <= 1.10 x the
  reference's and no more idle than it.
Figures: the emulated week's KPIs (serve's mirrored KPIs must equal them), the dispatches by their
`policy` (from serve's journal: read from the plan or a fallback), the plans serve published on
`{root}/twin/plan/pas` and their gains, the CPU seconds of serve's process tree (its planner worker
included) and its `serve: planner ...` line, the emulator's waits for a dispatch (p50/p99/max).
`--speed` defaults to a batch of `--batch-size` units lasting 5 s of wall time (batch size x the
PAS unit time / 5). `--policy NAME` runs today's `serve --policy NAME` instead of `--planner`: a dry
run of the plumbing. `--quick`: w1 only at speed 10,000 with 30 s references (a smoke run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from broker import Mosquitto  # the tests' helper: one Mosquitto on a free port

from agent.planners.portfolio import BestSettings, plan_best
from bridge.messages import PasPlanMsg
from bridge.mqtt import MqttBus
from bridge.settings import load_bus_settings
from bridge.topics import Topics
from twin import Scenario, load_line, load_week
from twin.config import PAS_STATION, default_config_dir

BATCH_WALL_S = 5.0
"""Wall seconds a batch lasts at the default speed."""
BREAKDOWNS = (  # (station, days after the week's Monday, local start, hours)
    (PAS_STATION, 2, dt.time(11, 0), 2),
    ("FAS1", 3, dt.time(8, 0), 1),
)
UNDISTURBED_EFFORT = 1.05
DISTURBED_EFFORT = 1.10
EXIT_AFTER_IDLE_S = 5.0
"""serve stops this long after the week's last message."""
SERVE_EXIT_S = 120.0
"""How long serve may take to stop after the emulated week ended."""
QUICK_SPEED = 10_000.0
QUICK_REFERENCE_S = 30.0


@dataclass(frozen=True)
class Case:
    """One live run: serve gets `week_dir`, the emulator `line_dir` (with breakdowns if disturbed)."""

    week: str
    kind: str
    week_dir: Path
    line_dir: Path

    @property
    def name(self) -> str:
        return f"{self.week}-{self.kind}"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", *args]


def disturbed_week(week_dir: Path, folder: Path, batch_size: int) -> tuple[Path, list[str]]:
    """A copy of `week_dir` in `folder` whose week.toml also has BREAKDOWNS as downtime; and what
    each costs in working seconds (each must fall wholly in working time)."""
    config = default_config_dir()
    line = load_line(config / "line.toml")
    monday = load_week(week_dir, line).week_start
    target = folder / f"{week_dir.name}-disturbed"
    shutil.copytree(week_dir, target)
    entries = []
    for station, day, start, hours in BREAKDOWNS:
        begin = dt.datetime.combine(monday + dt.timedelta(days=day), start)
        end = begin + dt.timedelta(hours=hours)
        entries.append(
            f'\n[[downtime]]\nstation = "{station}"\nstart = {begin.isoformat()}\nend = {end.isoformat()}\n'
        )
    with (target / "week.toml").open("a") as toml:
        toml.write("".join(entries))
    scenario = Scenario.build(line, load_week(target, line), batch_size)
    names = [*scenario.stations, PAS_STATION]
    said = []
    for station, day, start, hours in BREAKDOWNS:
        lost = sum(b - a for a, b in scenario.downtime[names.index(station)])
        if lost != hours * 3600:
            raise SystemExit(f"{target}: the {station} breakdown is not wholly in working time ({lost} s)")
        at = monday + dt.timedelta(days=day)
        said.append(f"{station} {at:%a %Y-%m-%d} {start:%H:%M} for {hours} h ({lost} working s)")
    return target, said


def reference(week_dir: Path, batch_size: int, limit_s: float) -> dict[str, Any]:
    """The best offline plan of the week in `week_dir` (its downtime planned) within `limit_s`."""
    config = default_config_dir()
    line = load_line(config / "line.toml")
    scenario = Scenario.build(line, load_week(week_dir, line), batch_size)
    started = time.process_time()
    run, best = plan_best(scenario, BestSettings(time_limit_s=limit_s))
    return {
        "setup_effort": run.results.setup_effort,
        "idle_s": run.results.idle_s,
        "completion": run.results.completion,
        "stopped": best.stopped,
        "gap": best.gap,
        "source": best.source,
        "wall_s": round(best.wall_s, 1),
        "cpu_s": round(time.process_time() - started, 1),
    }


class PlanWatch:
    """Reads the plans serve publishes on `{root}/twin/plan/pas` while a week runs."""

    def __init__(self, port: int, root: str) -> None:
        self.topic = Topics(root).pas_plan
        settings = load_bus_settings(port=port, root=root)
        self.bus = MqttBus(settings, "bench-plan-watch", subscriptions=[self.topic], persistent=False)
        self.plans: list[dict[str, Any]] = []
        self.unreadable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def start(self) -> None:
        self.bus.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.bus.stop()

    def _drain(self) -> None:
        while not self._stop.is_set() or not self.bus.inbox.empty():
            try:
                message = self.bus.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            self.bus.ack(message)
            try:
                plan = PasPlanMsg.model_validate_json(message.payload)
            except ValueError:
                self.unreadable += 1
                continue
            p = plan.provenance
            self.plans.append(
                {"revision": plan.revision, "reason": p.reason, "source": p.source, "gain": plan.gain,
                 "planning_s": p.planning_s, "from_position": p.from_position, "stopped": p.stopped}
            )  # fmt: skip


KPI_LINE = re.compile(r"^\s+(\w+)\s+(.+)$")


def _kpis(text: str, title: str) -> dict[str, str]:
    """The `  key value` lines after `title` in a command's output."""
    lines = text.splitlines()
    if title not in lines:
        return {}
    found = {}
    for line in lines[lines.index(title) + 1 :]:
        if not (m := KPI_LINE.match(line)):
            break
        found[m[1]] = m[2].strip()
    return found


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _planner_line(text: str) -> dict[str, Any]:
    """serve's `serve: planner ...` line, read loosely: CPU seconds and re-plans if it names them."""
    lines = [line for line in text.splitlines() if line.startswith("serve: planner")]
    if not lines:
        return {
            "line": None,
            "cpu_s": None,
            "replans": None,
            "adopted": None,
            "from_plan": None,
            "fallback": None,
        }
    line = lines[-1]
    cpu = re.search(r"([\d.]+)\s*(?:s|CPU[- ]s)\s+(?:of\s+)?CPU|CPU[^\d]{0,20}([\d.]+)", line)
    replans = re.search(r"(\d+)\s+(?:re-?plans?|plans? made)|re-?plans?[^\d]{0,10}(\d+)", line)
    adopted = re.search(r"(\d+) adopted", line)
    from_plan = re.search(r"(\d+) from the plan", line)
    fallback = re.search(r"(\d+) by fallback", line)
    return {
        "line": line,
        "cpu_s": _number(next((g for g in cpu.groups() if g), None)) if cpu else None,
        "replans": _number(next((g for g in replans.groups() if g), None)) if replans else None,
        "adopted": _number(adopted[1]) if adopted else None,
        "from_plan": _number(from_plan[1]) if from_plan else None,
        "fallback": _number(fallback[1]) if fallback else None,
    }


def _dispatch_policies(journal: Path) -> dict[str, int]:
    """How many dispatches of the journal each `policy` made (from the plan, or a fallback)."""
    counts: Counter[str] = Counter()
    if not journal.exists():
        return {}
    with journal.open() as f:
        for line in f:
            entry = json.loads(line)
            if "dispatch" in entry:
                counts[json.loads(entry["dispatch"]).get("policy", "?")] += 1
    return dict(counts)


def _wait_tree(process: subprocess.Popen[bytes], timeout_s: float) -> float | None:
    """Wait for `process`; the CPU seconds of it and its waited-for children (None: timed out,
    killed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.1)
    process.kill()
    process.wait()
    return None


def live(broker: Mosquitto, case: Case, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """One week: serve and the emulator, each its own process; their figures."""
    root = f"bench/live-plan/{os.getpid()}-{case.name}"
    journal = logs / f"{case.name}-journal.jsonl"  # kept: the dispatches and events of the week
    decides = ["--policy", args.policy] if args.policy else ["--planner", args.planner]
    serve_log, emulate_log = logs / f"{case.name}-serve.log", logs / f"{case.name}-emulate.log"
    watch = PlanWatch(broker.port, root)
    watch.start()
    started = time.monotonic()
    with serve_log.open("w") as out:
        serve = subprocess.Popen(
            _cli("serve", "--port", str(broker.port), "--root", root, "--week", str(case.week_dir),
                 "--batch-size", str(args.batch_size), *decides, *shlex.split(args.serve_args),
                 "--clock", "line", "--fresh", "--journal", str(journal),
                 "--exit-after-idle", f"{EXIT_AFTER_IDLE_S:g}"),
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        emulate = subprocess.run(
            _cli("emulate", "--port", str(broker.port), "--root", root, "--week", str(case.line_dir),
                 "--batch-size", str(args.batch_size), "--speed", f"{args.speed:g}",
                 "--progress-every", "0", "--wait-twin", "120"),
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        serve_cpu = _wait_tree(serve, SERVE_EXIT_S)
        watch.stop()
    wall = time.monotonic() - started
    emulate_log.write_text(emulate.stdout + emulate.stderr)
    served = serve_log.read_text()
    if emulate.returncode != 0 or serve.returncode != 0:
        raise RuntimeError(
            f"{case.name}: emulate exit {emulate.returncode}, serve exit {serve.returncode} "
            f"(see {emulate_log} and {serve_log})"
        )
    line_kpis = _kpis(emulate.stdout, "KPIs of the emulated week:")
    mirrored = _kpis(served, "KPIs of the mirrored week so far:")
    waits = re.search(r"([\d.]+) ms \(median\), ([\d.]+) ms \(p99\), ([\d.]+) ms \(max\)", emulate.stdout)
    events = re.search(r"emulate: (\d+) events, (\d+) dispatches applied", emulate.stdout)
    return {
        "root": root,
        "setup_effort": _number(line_kpis.get("setup_effort")),
        "idle_s": _number(line_kpis.get("idle_s")),
        "completion": _number(line_kpis.get("completion")),
        "batches": _number(line_kpis.get("batches")),
        "mirror_equal": all(
            mirrored.get(k) == line_kpis.get(k) for k in ("setup_effort", "idle_s", "batches")
        ),
        "events": int(events[1]) if events else None,
        "dispatches_applied": int(events[2]) if events else None,
        "dispatch_policies": _dispatch_policies(journal),
        "dispatch_ms": dict(zip(("p50", "p99", "max"), map(float, waits.groups()), strict=True))
        if waits
        else None,
        "plans_published": len(watch.plans),
        "plans_unreadable": watch.unreadable,
        "plan_gains": sum(p["gain"] or 0.0 for p in watch.plans),
        "plans": watch.plans,
        "planner": _planner_line(served),
        "serve_cpu_s": round(serve_cpu, 1) if serve_cpu is not None else None,
        "wall_s": round(wall, 1),
    }


def _met(kind: str, row: dict[str, Any], ref: dict[str, Any]) -> tuple[float | None, bool]:
    effort, idle = row["setup_effort"], row["idle_s"]
    if effort is None or idle is None or row["completion"] != 1.0:
        return None, False
    ratio = effort / ref["setup_effort"] if ref["setup_effort"] else float("inf")
    if kind == "undisturbed":
        return ratio, effort <= UNDISTURBED_EFFORT * ref["setup_effort"] and idle == 0
    return ratio, effort <= DISTURBED_EFFORT * ref["setup_effort"] and idle <= ref["idle_s"]


def _fmt(value: Any, spec: str = "g") -> str:
    return "n/a" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        "week", "case", "live effort", "live idle s", "reference effort", "reference idle s", "ratio",
        "target", "met", "dispatches: plan / fallback / other", "re-plans / adopted / on bus (gains)",
        "planner CPU s", "serve CPU s", "dispatch p50 / p99 / max ms",
    ]  # fmt: skip
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        live_row, ref = r["live"], r["reference"]
        target = (
            f"<= {UNDISTURBED_EFFORT:g}x, idle 0"
            if r["kind"] == "undisturbed"
            else f"<= {DISTURBED_EFFORT:g}x, idle <= ref"
        )
        policies: dict[str, int] = live_row["dispatch_policies"]
        fallback = sum(n for p, n in policies.items() if "fallback" in p)
        planned = policies.get(r["decides"], 0) if "fallback" not in r["decides"] else 0
        other = sum(policies.values()) - fallback - planned
        ms = live_row["dispatch_ms"] or {}
        planner = live_row["planner"]
        out.append(
            f"| {r['week']} | {r['kind']} | {_fmt(live_row['setup_effort'])} | {_fmt(live_row['idle_s'])} "
            f"| {_fmt(ref['setup_effort'])} | {_fmt(ref['idle_s'])} | {_fmt(r['ratio'], '.3f')} | {target} "
            f"| {'yes' if r['met'] else 'no'} | {planned} / {fallback} / {other} "
            f"| {_fmt(planner['replans'])} / {_fmt(planner['adopted'])} / {live_row['plans_published']} "
            f"({live_row['plan_gains']:g}) "
            f"| {_fmt(planner['cpu_s'])} | {_fmt(live_row['serve_cpu_s'])} "
            f"| {_fmt(ms.get('p50'))} / {_fmt(ms.get('p99'))} / {_fmt(ms.get('max'))} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--weeks", nargs="+", default=["w1", "w2", "w3"])
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--planner", default="best", help="serve --planner NAME")
    parser.add_argument("--policy", help="serve --policy NAME instead of --planner (a dry run)")
    parser.add_argument("--serve-args", default="", help="more serve flags (budget, stability), one string")
    parser.add_argument("--speed", type=float, help="working s per wall s (default: a batch lasts 5 s)")
    parser.add_argument("--reference-limit", type=float, default=300.0, help="plan_best's seconds")
    parser.add_argument("--cases", nargs="+", choices=["undisturbed", "disturbed"],
                        default=["undisturbed", "disturbed"])  # fmt: skip
    parser.add_argument(
        "--references-from",
        type=Path,
        default=None,
        help="take the offline references from an earlier run's JSON (same weeks, size and limit)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="live weeks at a time (and references, at most one per core)"
    )
    parser.add_argument("--quick", action="store_true", help="w1 at speed 10,000, 30 s references")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-live-plan"))
    args = parser.parse_args()
    config = default_config_dir()
    line = load_line(config / "line.toml")
    if args.quick:
        args.weeks, args.speed = ["w1"], args.speed or QUICK_SPEED
        args.reference_limit = min(args.reference_limit, QUICK_REFERENCE_S)
    if args.speed is None:
        args.speed = args.batch_size * line.pas.unit_time_s / BATCH_WALL_S
    if (
        not args.policy
        and "--planner"
        not in subprocess.run(_cli("serve", "--help"), capture_output=True, text=True, check=True).stdout
    ):
        raise SystemExit("linetwin serve has no --planner yet: run with --policy setup-aware (a dry run)")
    decides = args.policy or args.planner
    print(
        f"serve {'--policy' if args.policy else '--planner'} {decides} {args.serve_args}; weeks "
        f"{' '.join(args.weeks)}, b = {args.batch_size}, speed {args.speed:g} (a batch lasts "
        f"{args.batch_size * line.pas.unit_time_s / args.speed:.2f} s wall), "
        f"references {args.reference_limit:g} s",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": " ".join(sys.argv),
        "serve": {
            "decides": decides,
            "flag": "--policy" if args.policy else "--planner",
            "args": args.serve_args,
        },
        "batch_size": args.batch_size,
        "speed": args.speed,
        "reference_limit_s": args.reference_limit,
        "breakdowns": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        cases = []
        for week in args.weeks:
            week_dir = config / "weeks" / week
            if "undisturbed" in args.cases:
                cases.append(Case(week, "undisturbed", week_dir, week_dir))
            if "disturbed" in args.cases:
                line_dir, said = disturbed_week(week_dir, Path(folder), args.batch_size)
                report["breakdowns"].append({"week": week, "breakdowns": said})
                print(f"{week} disturbed: {'; '.join(said)}", flush=True)
                cases.append(Case(week, "disturbed", week_dir, line_dir))
        references: dict[str, dict[str, Any]] = {}
        if args.references_from is not None:  # the offline references of an earlier run of these weeks
            earlier = json.loads(args.references_from.read_text())
            references = {f"{r['week']}-{r['kind']}": r["reference"] for r in earlier["rows"]}
            report["references_from"] = str(args.references_from)
        cores = min(args.jobs, os.cpu_count() or 1)  # a reference is CPU-bound: one per core
        with concurrent.futures.ProcessPoolExecutor(max_workers=cores) as pool:
            futures = {
                c.name: pool.submit(reference, c.line_dir, args.batch_size, args.reference_limit)
                for c in cases
                if c.name not in references
            }
            for name, future in futures.items():
                references[name] = future.result()
                print(f"reference {name}: {references[name]}", flush=True)
        broker = Mosquitto(Path(folder) / "mosquitto")
        broker.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as threads:
                runs = {c.name: threads.submit(live, broker, c, args, logs) for c in cases}
                rows = []
                for case in cases:
                    result = runs[case.name].result()
                    ratio, met = _met(case.kind, result, references[case.name])
                    rows.append({"week": case.week, "kind": case.kind, "decides": decides, "live": result,
                                 "reference": references[case.name], "ratio": ratio, "met": met})  # fmt: skip
                    print(
                        f"live {case.name}: {json.dumps(result | {'plans': len(result['plans'])})}",
                        flush=True,
                    )
        finally:
            broker.stop()
    report["rows"] = rows
    print()
    print(table(rows))
    mismatched = [r["live"]["root"] for r in rows if not r["live"]["mirror_equal"]]
    print(
        "serve's mirrored KPIs equal the emulated week's in every run"
        if not mismatched
        else f"MISMATCH: {mismatched}"
    )
    (args.out / "bench_live_plan.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'bench_live_plan.json'} (logs in {logs})")


if __name__ == "__main__":
    main()
