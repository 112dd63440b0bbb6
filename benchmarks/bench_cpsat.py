"""Benchmark of the exact planner: CP-SAT incumbent and bound on the reference weeks, and the
shipped RL agent's gap to them.

    python benchmarks/bench_cpsat.py [--weeks w1,w2,w3] [--batch-sizes 20,50] [--limits 60,300]
                                     [--workers 2] [--out runs/bench-cpsat]

Every sequence is simulated in the twin; idle time and setup effort are the twin's. The agent
plans as in the paper's evaluation (best of 20 stochastic plans and the deterministic one); it
was trained at b=50, so its b=20 rows show it outside its training batch size.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from agent.planners.cpsat import CpSatSettings, plan_with_cpsat
from agent.planners.evaluate import evaluate
from agent.planners.rl import RLPolicy
from twin import Scenario, load_line, load_week
from twin.config import default_config_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--weeks", default="w1,w2,w3")
    parser.add_argument("--batch-sizes", default="20,50")
    parser.add_argument("--limits", default="60,300", help="CP-SAT time limits in seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cpsat"))
    args = parser.parse_args()
    config = default_config_dir()
    line = load_line(config / "line.toml")
    agent = RLPolicy.from_file(config / "agents" / "reference.zip")
    rows = []
    print("week  b  limit  status    incumbent  bound  gap    twin idle  twin effort  rl idle  rl effort")
    for week_name in args.weeks.split(","):
        week = load_week(config / "weeks" / week_name, line)
        for b in (int(x) for x in args.batch_sizes.split(",")):
            scenario = Scenario.build(line, week, b)
            rl = evaluate(agent.model, agent.card, scenario, 20, 0).best.run.results
            for limit in (float(x) for x in args.limits.split(",")):
                start = time.perf_counter()
                run, plan = plan_with_cpsat(scenario, CpSatSettings(limit, args.workers, 0))
                row = {
                    "week": week_name,
                    "batch_size": b,
                    "time_limit_s": limit,
                    "wall_s": round(time.perf_counter() - start, 1),
                    "status": plan.status,
                    "mode": plan.mode,
                    "incumbent": plan.setup_effort,
                    "bound": plan.bound,
                    "gap": plan.gap,
                    "twin_idle_s": run.results.idle_s,
                    "twin_setup_effort": run.results.setup_effort,
                    "rl_idle_s": rl.idle_s,
                    "rl_setup_effort": rl.setup_effort,
                }
                rows.append(row)
                gap = "-" if plan.gap is None else f"{plan.gap:.0%}"
                bound = "-" if plan.bound is None else f"{plan.bound:g}"
                print(
                    f"{week_name:4}  {b:2}  {limit:5.0f}  {plan.status:8}  {plan.setup_effort:9g}  "
                    f"{bound:>5}  "
                    f"{gap:>4}  {run.results.idle_s:9}  {run.results.setup_effort:11g}  {rl.idle_s:7}  "
                    f"{rl.setup_effort:9g}",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_cpsat.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'bench_cpsat.json'}")


if __name__ == "__main__":
    main()
