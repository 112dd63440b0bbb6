"""Benchmark of search at decision time, `rl+rollout`: a rollout over the trained agent with a budget
per decision. Per week and budget: seconds per decision (mean, p95, max: the target is one decision
<= 1 s), the plan's setup effort and idle time against the agent alone and against the portfolio's
best plan (`best`).

    python benchmarks/bench_rl_rollout.py [--weeks w1,w2,w3] [--batch-size 50] [--model MODEL]
                                          [--decision-times 0.25,0.5,1] [--best-time-limit 30]

The first decision also waits for the agent's own week (the first incumbent): printed apart as
`base week s`. Pinned to one core, torch on one thread (the second core for the rest of the line).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from agent.planners.portfolio import BestSettings, plan_best
from agent.planners.registry import DECISION_TIME_S, DEFAULT_MODEL
from agent.planners.rl import RLPolicy
from agent.planners.rollout import ROLLOUT, SearchSettings, search_plan
from agent.planners.run import run_planner
from twin import Scenario, load_line, load_week
from twin.config import default_config_dir


def _ratio(effort: float, best: float) -> str:
    return f"{effort / best:.2f}" if best > 0 else "-"


def _row(week: str, planner: str, effort: float, idle: int, best: float, wall: float, times: str = "") -> str:
    return (
        f"{week:<5} {planner:<22} {effort:>7g} {idle:>7} {_ratio(effort, best):>6} {times:>41} {wall:>7.1f}"
    )


def _times(times: list[float], base_week_s: float) -> str:
    """Decisions, mean, p95 and max seconds of a decision, the base's own week."""
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else max(times, default=0.0)
    mean = statistics.fmean(times) if times else 0.0
    return f"{len(times):>5} {mean:>7.3f} {p95:>7.3f} {max(times, default=0.0):>7.3f} {base_week_s:>11.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", default="w1", help="reference weeks (comma-separated)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--decision-times", default=f"0.25,{DECISION_TIME_S:g},1")
    parser.add_argument("--best-time-limit", type=float, default=30.0, help="the portfolio's seconds")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    config = default_config_dir()
    line = load_line(config / "line.toml")
    policy = RLPolicy.from_file(args.model)
    budgets = [float(t) for t in args.decision_times.split(",")]
    print(f"model {args.model}, b={args.batch_size}, decision budgets {budgets} s, one core")
    head = (
        f"{'week':<5} {'planner':<22} {'effort':>7} {'idle s':>7} {'/best':>6} "
        f"{'dec.':>5} {'mean s':>7} {'p95 s':>7} {'max s':>7} {'base week s':>11} {'wall s':>7}"
    )
    print(head)
    for name in args.weeks.split(","):
        scenario = Scenario.build(line, load_week(config / "weeks" / name, line), args.batch_size)
        best, how = plan_best(scenario, BestSettings(time_limit_s=args.best_time_limit))
        best_effort = best.results.setup_effort
        print(_row(name, f"best ({how.source})", best_effort, best.results.idle_s, best_effort, how.wall_s))
        start = time.perf_counter()
        alone = run_planner(scenario, policy).results
        wall = time.perf_counter() - start
        print(_row(name, "rl", alone.setup_effort, alone.idle_s, best_effort, wall))
        for budget in budgets:
            run, stats = search_plan(scenario, ROLLOUT, policy, SearchSettings(decision_time_s=budget))
            k, times = run.results, _times(stats.decision_s, stats.base_week_s)
            print(
                _row(
                    name,
                    f"rl+rollout {budget:g} s",
                    k.setup_effort,
                    k.idle_s,
                    best_effort,
                    stats.wall_s,
                    times,
                )
            )


if __name__ == "__main__":
    main()
