"""Benchmark of plant-size lines (issue 19): how the cost grows with FAS and types, on the reference
line (4 FAS x 8 types, config/line.toml) and the shipped config/lines/plant-16x16.toml and
plant-40x24.toml, each on weeks generated on w1's calendar (seeds 1 ... --weeks):

- batches: PAS batches of a week with the rule setup-aware (b = the line's batch size);
- simulate: wall time of one week with setup-aware, scenario set-up included, files not (median of
  the weeks);
- env steps/s: `LineEnv` with the basic observation over whole episodes, choosing the valid type
  that runs out first ("at pace": the FAS never starve) or uniformly within the mask ("random": they
  starve, episodes end in deadlock and resets weigh in);
- plots: the three run plots of one week (`plot_run`: buffer, PAS Gantt, line timeline, PNG);
- deadline obs: `PositionSlack` over the whole week (the `deadlines` observation and mask, no
  `slack_horizon_s`) at every 10th decision of one week;
- memory: peak RSS of the process that measured the line (one fresh process per line) and the
  RSS after each of the consecutive weeks (a simulated week and an env episode each, then a garbage
  collection): first and last.

Each process first simulates and plots a week once (warm-up: first calls, fonts, caches).

    flock /tmp/ctx/heavy.lock python3 benchmarks/bench_scale.py [--weeks 5] [--random-steps 3000]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.planners.policies import SetupAwarePolicy
from twin import (
    Decision,
    DecisionRequest,
    Forecast,
    LineEnv,
    Scenario,
    WeekGenerator,
    load_calendar,
    load_line,
    simulate,
)
from twin.plots import plot_run
from twin.slack import PositionSlack

ROOT = Path(__file__).resolve().parents[1]
LINES = {
    "4/8 (reference)": ROOT / "config" / "line.toml",
    "16/16": ROOT / "config" / "lines" / "plant-16x16.toml",
    "40/24": ROOT / "config" / "lines" / "plant-40x24.toml",
}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class TimedSlack(SetupAwarePolicy):
    """setup-aware, timing a deadline assessment (PositionSlack: freedom and the mask) at every 10th
    decision."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def decide(self, request: DecisionRequest) -> Decision:
        if request.index % 10 == 0:  # every 10th decision: a sample
            start = time.perf_counter()
            slack = PositionSlack(request, Forecast(request))
            slack.freedom(86_400)
            slack.meets()
            self.seconds.append(time.perf_counter() - start)
        return super().decide(request)


def steps_per_s(env: LineEnv, weeks: int, at_pace: bool, steps: int | None) -> float:
    """Env steps/s: whole episodes of every week (at pace), or `steps` random steps."""
    rng = np.random.default_rng(0)
    n = env.action_space.n
    done_steps, elapsed = 0, 0.0
    episodes = range(weeks) if at_pace else range(10**9)
    for week in episodes:
        start = time.perf_counter()
        obs, _ = env.reset(seed=week, options={"week": week % weeks})
        done = False
        while not done:
            allowed = np.flatnonzero(env.action_masks())
            if at_pace:
                action = int(allowed[np.argmin(obs[2 * n : 3 * n][allowed])])
            else:
                action = int(rng.choice(allowed))
            obs, _, done, _, _ = env.step(action)
            done_steps += 1
            if steps is not None and done_steps >= steps:
                break
        elapsed += time.perf_counter() - start
        if steps is not None and done_steps >= steps:
            break
    return done_steps / elapsed


def measure(name: str, path: Path, weeks: int, random_steps: int) -> dict[str, Any]:
    line = load_line(path)
    generator = WeekGenerator(line, load_calendar(ROOT / "config" / "weeks" / "w1", line))
    week_list = [generator.generate(seed) for seed in range(1, weeks + 1)]
    env = LineEnv(line, week_list)
    scenario = Scenario.build(line, week_list[0])
    results, trace = simulate(scenario, SetupAwarePolicy())
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: first calls, fonts, caches
        plot_run(scenario, trace, results, Path(tmp))
    sim_s, batches, rss = [], [], []
    for week in week_list:
        start = time.perf_counter()
        results, trace = simulate(Scenario.build(line, week), SetupAwarePolicy())
        sim_s.append(time.perf_counter() - start)
        batches.append(results.batches)
        steps_per_s(env, 1, at_pace=True, steps=None)  # an episode of week 0 (memory over episodes)
        gc.collect()
        rss.append(rss_mb())
    scenario = Scenario.build(line, week_list[0])
    results, trace = simulate(scenario, SetupAwarePolicy())
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        plot_run(scenario, trace, results, Path(tmp))
        plot_s = time.perf_counter() - start
    timed = TimedSlack()
    simulate(Scenario.build(line, week_list[0]), timed)
    return {
        "line": name,
        "fas": len(line.fas),
        "types": len(line.types),
        "pas_s": line.pas.unit_time_s,
        "batches": statistics.median(batches),
        "simulate_s": statistics.median(sim_s),
        "pace_steps_s": steps_per_s(env, weeks, at_pace=True, steps=None),
        "random_steps_s": steps_per_s(env, weeks, at_pace=False, steps=random_steps),
        "plot_s": plot_s,
        "slack_ms": 1000 * statistics.median(timed.seconds),
        "slack_max_ms": 1000 * max(timed.seconds),
        "rss_first": rss[0],
        "rss_last": rss[-1],
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weeks", type=int, default=5, help="consecutive generated weeks per line")
    parser.add_argument("--random-steps", type=int, default=3000, help="random env steps per line")
    args = parser.parse_args()
    rows = []
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:  # a fresh process per line
        for name, path in LINES.items():
            rows.append(pool.apply(measure, (name, path, args.weeks, args.random_steps)))
            print(f"measured {name}", flush=True)
    print(
        "\n| FAS / types | PAS s/unit | batches/week | simulate (setup-aware) | env steps/s at pace "
        "| env steps/s random | plots | deadline obs per decision (median, max) | peak RSS "
        f"| RSS after week 1 → {args.weeks} |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['line']} | {r['pas_s']} | {r['batches']:,.0f} | {r['simulate_s']:.2f} s "
            f"| {r['pace_steps_s']:,.0f} | {r['random_steps_s']:,.0f} | {r['plot_s']:.2f} s "
            f"| {r['slack_ms']:.1f} ms, {r['slack_max_ms']:.1f} ms | {r['peak_mb']:.0f} MiB "
            f"| {r['rss_first']:.0f} → {r['rss_last']:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
