"""Benchmark of an agent for many types on unseen weeks of a plant-size line (issue 19, point 2).

Test week i is `WeekGenerator(line, w1's calendar).generate(TEST_SEED + i)`, TEST_SEED =
3,000,000,000, as in `bench_agent.py`: no training week (`linetwin expert` seeds from 1000,
training draws below 2**31, `best.zip`'s held-out weeks from 2**31) is among them.

Per week and planner (the rules `setup-aware` and `slack-greedy`, and each model, played
deterministically) it prints the idle time, the setup effort and the wall time; then per planner
the weeks at zero idle, the mean effort and the mean ratio to setup-aware's effort.

    python benchmarks/bench_plant_agent.py [--line config/lines/plant-40x24.toml]
        [--models NAME=PATH,...] [--weeks 10] [--first 0] [--jobs 2]

Default model: plant=config/agents/plant-40x24.zip. Weeks run in `--jobs` processes (torch on one
thread each).
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from agent.planners.policies import Policy, make_rule
from agent.planners.rl import RLPolicy
from twin import Scenario, load_calendar, load_line, simulate
from twin.config import default_config_dir
from twin.weekgen import WeekGenerator

TEST_SEED = 3_000_000_000
RULES = ("setup-aware", "slack-greedy")


def _week(task: tuple[str, dict[str, str], int]) -> list[dict[str, Any]]:
    """Every planner's run of test week `i` of the line."""
    line_path, models, i = task
    torch.set_num_threads(1)
    line = load_line(line_path)
    week = WeekGenerator(line, load_calendar(default_config_dir() / "weeks" / "w1", line)).generate(
        TEST_SEED + i
    )
    scenario = Scenario.build(line, week, line.pas.batch_size)
    planners: list[tuple[str, Policy]] = [(name, make_rule(name, 0)) for name in RULES]
    planners += [(name, RLPolicy.from_file(path)) for name, path in models.items()]
    rows = []
    for name, policy in planners:
        start = time.perf_counter()
        results, _ = simulate(scenario, policy)
        wall = time.perf_counter() - start
        rows.append(
            {
                "week": i,
                "planner": name,
                "idle_s": results.idle_s,
                "effort": results.setup_effort,
                "wall_s": wall,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--line", default="config/lines/plant-40x24.toml")
    parser.add_argument("--models", default="plant=config/agents/plant-40x24.zip")
    parser.add_argument("--weeks", type=int, default=10)
    parser.add_argument("--first", type=int, default=0, help="first test week (seed TEST_SEED + first)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    models = dict(item.split("=", 1) for item in args.models.split(",") if item)
    for path in models.values():
        if not Path(path).is_file():
            parser.error(f"--models: {path} not found")
    tasks = [(args.line, models, i) for i in range(args.first, args.first + args.weeks)]
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            weeks = list(pool.map(_week, tasks))
    else:
        weeks = [_week(t) for t in tasks]
    names = [*RULES, *models]
    print(f"line {args.line}, test weeks {TEST_SEED}+{args.first}..{args.first + args.weeks - 1}")
    print(f"{'week':>5} " + " ".join(f"{n:>24}" for n in names) + "   (idle s / effort)")
    for rows in weeks:
        cells = {r["planner"]: f"{r['idle_s']:g} / {r['effort']:g}" for r in rows}
        print(f"{rows[0]['week']:>5} " + " ".join(f"{cells[n]:>24}" for n in names))
    base = {
        rows[0]["week"]: next(r["effort"] for r in rows if r["planner"] == "setup-aware") for rows in weeks
    }
    print()
    for name in names:
        mine = [r for rows in weeks for r in rows if r["planner"] == name]
        zero = sum(r["idle_s"] == 0 for r in mine)
        effort = statistics.mean(r["effort"] for r in mine)
        ratio = statistics.mean(r["effort"] / base[r["week"]] for r in mine)
        wall = statistics.mean(r["wall_s"] for r in mine)
        print(
            f"{name:>14}: zero idle {zero}/{len(mine)}, mean effort {effort:,.0f} "
            f"(x{ratio:.3f} setup-aware's), {wall:.1f} s per week"
        )
    print(f"wall {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
