"""Benchmark of every planner on the reference weeks at every batch size: idle time, setup effort,
wall time, the bound and the gap (issue 16).

    python benchmarks/bench_plans.py [--weeks w1,w2,w3] [--batch-sizes 100,50,20,10]
        [--planners setup-aware,earliest-runout,cpsat,rollout:setup-aware,rl,best]
        [--cpsat-time-limit 60] [--time-limit 300] [--workers 1] [--jobs 2] [--seed 0]
        [--quick] [--out runs/bench-plans]

Per week the batch sizes run coarse to fine (largest first): `best` at b gets every plan it found
at a coarser size as a hint (`agent.planners.sweep`). `rl` is the shipped agent's deterministic
plan. Every plan is simulated in the twin; idle time and setup effort are the twin's. The bound is
the best lower bound any planner proved at (week, b) (`best`'s, CP-SAT's); the gap compares a plan
with it where the plan is complete with zero idle. `--jobs 2` plans two weeks at a time in
processes (each seeded with --seed, one search worker each; a search stopped by its time limit
depends on the CPU time it got, so two runs can differ a little).
A planner name the registry does not know (yet) is skipped with a note. `--quick`: a smoke run
(w1, b = 100 and 50, CP-SAT 5 s, best 10 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from agent.errors import UsageError
from agent.planners.cpsat import gap_text, relative_gap
from agent.planners.registry import DEFAULT_MODEL, PlannerSpec, parse_planners
from agent.planners.sweep import BEST, Sweep, SweepSettings, parse_batch_sizes, run_sweep, scenarios
from twin import load_line, load_week
from twin.config import default_config_dir
from twin.results import failure

PLANNERS = "setup-aware,earliest-runout,cpsat,rollout:setup-aware,rl,best"


def known_planners(text: str) -> tuple[list[PlannerSpec], list[str]]:
    """The planners of `text` the registry knows, and a note for each it does not."""
    specs, notes = [], []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        try:
            specs += parse_planners(name, DEFAULT_MODEL)
        except UsageError as exc:
            notes.append(f"skipped {name}: {exc.reason}")
    return specs, notes


def bench_week(
    week_name: str, sizes: list[int], specs: list[PlannerSpec], args: argparse.Namespace
) -> list[dict[str, object]]:
    """Every planner at every size of one week (coarse to fine): one row per (size, planner)."""
    config = default_config_dir()
    line = load_line(config / "line.toml")
    weeks = scenarios(line, load_week(config / "weeks" / week_name, line), sizes)

    def say(text: str) -> None:
        sys.stdout.write(f"{week_name} {text}\n")  # one write: weeks in parallel keep their lines apart
        sys.stdout.flush()

    start = time.perf_counter()
    sweeps: list[Sweep] = []
    others = [s for s in specs if s.kind != BEST]
    with_best = any(s.kind == BEST for s in specs)
    if others:  # CP-SAT's limit; the agent's deterministic plan only; best gives the bound
        settings = SweepSettings(args.cpsat_time_limit, args.workers, args.seed, plans=0, bound=not with_best)
        sweeps.append(run_sweep(weeks, others, settings, say))
    if with_best:
        settings = SweepSettings(args.time_limit, args.workers, args.seed, plans=0)
        sweeps.append(run_sweep(weeks, [PlannerSpec(BEST)], settings, say))
    say(f"done in {time.perf_counter() - start:.0f} s")
    rows = []
    for size in sorted(sizes):
        bounds = [b for s in sweeps if (b := s.bound(size)) is not None]
        bound = max(bounds) if bounds else None
        for sweep in sweeps:
            for p in (p for p in sweep.points if p.batch_size == size):
                k = p.run.results
                zero_idle = failure(k) is None and k.idle_s == 0
                rows.append(
                    {
                        "week": week_name,
                        "batch_size": size,
                        "planner": p.planner,
                        "failure": failure(k),
                        "idle_s": k.idle_s,
                        "setup_effort": k.setup_effort,
                        "setups": k.setups,
                        "wall_s": round(p.run.wall_s, 1),
                        "bound": bound,
                        "gap": relative_gap(k.setup_effort, bound) if zero_idle else None,
                        "found_by": p.source,
                    }
                )
    return rows


def cell(row: dict[str, object]) -> str:
    """'231 / 0 s (14.2%)': setup effort / idle time (gap to the bound), or how the plan failed."""
    if row["failure"]:
        return f"{row['failure']}"
    gap = row["gap"]
    said = f" ({gap_text(gap)})" if isinstance(gap, float) else ""
    return f"{row['setup_effort']:g} / {row['idle_s']} s{said}"


def tables(rows: list[dict[str, object]], planners: list[str]) -> str:
    """Setup effort / idle time (gap) per week and batch size, a column per planner, the bound;
    then every planner's wall time."""
    head = ["week", "b", *planners, "bound"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(planners) + 1)]
    walls = ["| " + " | ".join(["week", "b", *planners]) + " |", "|---|---:|" + "---:|" * len(planners)]
    keys = dict.fromkeys((r["week"], r["batch_size"]) for r in rows)
    for week, size in keys:
        mine = {r["planner"]: r for r in rows if r["week"] == week and r["batch_size"] == size}
        bound = next(iter(mine.values()))["bound"]
        cells = [cell(mine[p]) if p in mine else "-" for p in planners]
        lines.append(
            f"| {week} | {size} | " + " | ".join(cells) + f" | {'-' if bound is None else f'{bound:g}'} |"
        )
        wall = [f"{mine[p]['wall_s']:.1f}" if p in mine else "-" for p in planners]
        walls.append(f"| {week} | {size} | " + " | ".join(wall) + " |")
    return "\n".join(
        [
            "Setup effort / idle time (gap to the bound), the twin's:",
            "",
            *lines,
            "",
            "Wall time (s):",
            "",
            *walls,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--weeks", default="w1,w2,w3")
    parser.add_argument("--batch-sizes", default="100,50,20,10")
    parser.add_argument("--planners", default=PLANNERS)
    parser.add_argument("--cpsat-time-limit", type=float, default=60.0, help="CP-SAT seconds per plan")
    parser.add_argument("--time-limit", type=float, default=300.0, help="best's seconds per plan")
    parser.add_argument("--workers", type=int, default=1, help="search workers per plan")
    parser.add_argument("--jobs", type=int, default=1, help="weeks planned at a time (processes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: w1, b=100,50, 5 s / 10 s")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-plans"))
    args = parser.parse_args()
    if args.quick:
        args.weeks, args.batch_sizes, args.cpsat_time_limit, args.time_limit = "w1", "100,50", 5.0, 10.0
    sizes = sorted(parse_batch_sizes(args.batch_sizes), reverse=True)
    weeks = [w.strip() for w in args.weeks.split(",") if w.strip()]
    specs, notes = known_planners(args.planners)
    for note in notes:
        print(f"note: {note}", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(bench_week, week, sizes, specs, args) for week in weeks]
        rows = [row for future in futures for row in future.result()]
    wall = time.perf_counter() - start
    planners = list(dict.fromkeys(str(r["planner"]) for r in rows))
    print()
    print(tables(rows, planners))
    print(f"\n{len(weeks)} weeks x {len(sizes)} batch sizes in {wall:.0f} s (--jobs {args.jobs})")
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "notes": notes,
        "wall_s": wall,
        "rows": rows,
    }
    (args.out / "bench_plans.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'bench_plans.json'}")


if __name__ == "__main__":
    main()
