"""Benchmark of the twin: time and peak memory to simulate reference week w1 with a fixed zero-idle
sequence at b=10 and b=50, and process memory over many consecutive simulated weeks.

    python benchmarks/bench_twin.py [--weeks 2000] [--repeats 30]

Pinned to one core. The sequences are the setup-aware rule's plans (zero idle time, checked).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc
from pathlib import Path

from agent.planners.policies import SequencePolicy, SetupAwarePolicy
from twin import Scenario, SequenceEntry, load_line, load_week, simulate

CONFIG = Path(__file__).resolve().parents[1] / "config"
TARGET_MS = {50: 30.0, 10: 60.0}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def zero_idle_sequence(scenario: Scenario) -> list[SequenceEntry]:
    results, trace = simulate(scenario, SetupAwarePolicy())
    if results.idle_s != 0 or results.completion != 1.0:
        raise SystemExit(f"the rule's plan is not zero-idle at b={scenario.batch_size}")
    return trace.sequence(scenario.types)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weeks", type=int, default=2000, help="consecutive weeks for the memory test")
    parser.add_argument("--repeats", type=int, default=30, help="timed replays per batch size")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    line = load_line(CONFIG / "line.toml")
    week = load_week(CONFIG / "weeks" / "w1", line)
    print("reference week w1, fixed zero-idle sequence, one core\n")
    header = ("batch size", "batches", "min ms", "median ms", "target ms", "peak MiB")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (10, 8, 8, 10, 10, 9), strict=True)))
    scenarios = {}
    for batch_size in (50, 10):
        sc = Scenario.build(line, week, batch_size)
        scenarios[batch_size] = sc
        sequence = zero_idle_sequence(sc)
        times = []
        for _ in range(args.repeats):
            policy = SequencePolicy(sequence, line.types)
            start = time.perf_counter()
            simulate(sc, policy)
            times.append((time.perf_counter() - start) * 1000)
        tracemalloc.start()
        simulate(sc, SequencePolicy(sequence, line.types))
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"{batch_size:>10} {len(sequence):>8} {min(times):>8.1f} {statistics.median(times):>10.1f} "
            f"{TARGET_MS[batch_size]:>10.0f} {peak:>9.2f}"
        )

    print(f"\nprocess memory over {args.weeks} consecutive simulated weeks (b=50, a new Line each week)")
    sc = scenarios[50]
    sequence = zero_idle_sequence(sc)
    samples = []
    start = time.perf_counter()
    for i in range(1, args.weeks + 1):
        simulate(sc, SequencePolicy(sequence, line.types))
        if i % max(1, args.weeks // 10) == 0:
            samples.append((i, rss_mb()))
    wall = time.perf_counter() - start
    print(f"{'weeks':>8} {'RSS MiB':>9}")
    for i, mb in samples:
        print(f"{i:>8} {mb:>9.1f}")
    growth = samples[-1][1] - samples[0][1]
    print(f"\ngrowth from week {samples[0][0]} to {samples[-1][0]}: {growth:+.1f} MiB; {wall:.1f} s in all")


if __name__ == "__main__":
    main()
