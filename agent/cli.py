"""`linetwin`: the command line of the twin and its planners.

Every user mistake ends with exit code 2 and one readable line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.policies import RULES, Policy, SequencePolicy
from twin import (
    Results,
    Scenario,
    Trace,
    TwinError,
    load_line,
    load_sequence,
    load_week,
    simulate,
    write_sequence,
)

CONFIG_DIR = Path(os.environ.get("LINETWIN_CONFIG", Path(__file__).resolve().parents[1] / "config"))
"""Embedded defaults: the reference line and weeks (override with $LINETWIN_CONFIG)."""
DEFAULT_LINE = CONFIG_DIR / "line.toml"
DEFAULT_WEEK = CONFIG_DIR / "weeks" / "w1"


class UsageError(Exception):
    """A command line that cannot be carried out."""


@dataclass
class PlannedRun:
    """One planner's run of a week: its KPIs, trace and wall time."""

    planner: str
    results: Results
    trace: Trace
    wall_s: float


def _load(line_path: Path, week_path: Path, batch_size: int | None) -> Scenario:
    line = load_line(line_path)
    week = load_week(week_path, line)
    try:
        return Scenario.build(line, week, batch_size)
    except ValueError as exc:
        raise UsageError(f"--batch-size: {exc}") from None


def make_policy(name: str, seed: int) -> Policy:
    """A rule by name (the RL policy joins here with its model file)."""
    if name not in RULES:
        raise UsageError(f"unknown policy {name!r}; choose one of {', '.join(RULES)}")
    policy = RULES[name]()
    policy.reset(seed)
    return policy


def run_planner(scenario: Scenario, policy: Policy) -> PlannedRun:
    start = time.perf_counter()
    results, trace = simulate(scenario, policy)
    return PlannedRun(policy.name, results, trace, time.perf_counter() - start)


def kpi_table(runs: Sequence[PlannedRun]) -> str:
    """A plain-text table of the headline KPIs, one row per planner."""
    head = (
        "planner",
        "deadlock",
        "completion",
        "idle_s",
        "setup_effort",
        "setups",
        "makespan",
        "max fill",
        "wall",
    )
    rows = [head]
    for r in runs:
        k = r.results
        rows.append(
            (
                r.planner,
                "yes" if k.deadlock else "no",
                f"{k.completion:.3f}",
                str(k.idle_s),
                f"{k.setup_effort:g}",
                str(k.setups),
                k.makespan_at[:16].replace("T", " "),
                str(k.buffer_max_fill),
                f"{r.wall_s * 1000:.0f} ms",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_run(out: Path, scenario: Scenario, run: PlannedRun, meta: dict[str, object]) -> list[Path]:
    """results.json, sequence.csv and the plots of one run."""
    from twin.plots import plot_run  # matplotlib only when writing

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder: {exc.strerror}") from None
    payload = {**meta, "planner": run.planner, "wall_s": round(run.wall_s, 4), "kpis": run.results.to_dict()}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_sequence(out / "sequence.csv", run.trace.sequence(scenario.types))
    return [out / "results.json", out / "sequence.csv", *plot_run(scenario, run.trace, run.results, out)]


def _meta(args: argparse.Namespace, scenario: Scenario) -> dict[str, object]:
    return {
        "line": scenario.line.name,
        "line_file": str(args.line),
        "week": str(args.week),
        "week_start": scenario.week.week_start.isoformat(),
        "batch_size": scenario.batch_size,
        "seed": args.seed,
    }


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = _load(args.line, args.week, args.batch_size)
    line = scenario.line
    if (args.policy is None) == (args.sequence is None):
        raise UsageError("give exactly one of --policy NAME or --sequence FILE")
    policy: Policy
    if args.sequence is not None:
        policy = SequencePolicy(load_sequence(args.sequence, line), line.types, args.sequence)
    else:
        policy = make_policy(args.policy, args.seed)
    run = run_planner(scenario, policy)
    print(kpi_table([run]))
    files = write_run(args.out, scenario, run, _meta(args, scenario))
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    scenario = _load(args.line, args.week, args.batch_size)
    runs = [run_planner(scenario, make_policy(name, args.seed)) for name in RULES]
    best = min(runs, key=lambda r: r.results.rank_key())
    print(f"Week {args.week} on line '{scenario.line.name}', batch size {scenario.batch_size}:\n")
    print(kpi_table(runs))
    print(f"\nbest plan: {best.planner} (ranking: no deadlock, completion, idle time, setup effort)")
    files = write_run(args.out, scenario, best, _meta(args, scenario))
    for path in files:
        print(f"  {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linetwin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, out: str) -> None:
        p.add_argument("--line", type=Path, default=DEFAULT_LINE, help="line.toml (default: reference line)")
        p.add_argument("--week", type=Path, default=DEFAULT_WEEK, help="week folder (default: reference w1)")
        p.add_argument("--batch-size", type=int, default=None, help="units per batch (default: the line's)")
        p.add_argument("--seed", type=int, default=0, help="seed of every random stream (default 0)")
        p.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default {out})")

    sim = sub.add_parser("simulate", help="simulate a week with one planner or a given PAS sequence")
    common(sim, "runs/simulate")
    sim.add_argument("--policy", help=f"planner: {', '.join(RULES)}")
    sim.add_argument("--sequence", type=Path, help="replay this sequence.csv")
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="plan a reference week with every planner and plot the best plan")
    common(demo, "runs/demo")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (TwinError, UsageError) as exc:
        print(f"linetwin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linetwin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
