"""Benchmark of the run plots: CPU time of `twin.plots.plot_run` (buffer, PAS Gantt, line timeline,
PNGs written) for the full reference week w1 (setup-aware), a day zoom of it, and a run that
deadlocks within hours (w1's sequence replayed on w2); and of compare.png for the rule planners.

    python benchmarks/bench_plots.py [--repeats 5]

CPU time of this process (time.process_time), median and minimum over the repeats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.planners.compare import PlanSettings, plot_comparison, run_planners
from agent.planners.policies import RULES, SequencePolicy, SetupAwarePolicy
from agent.planners.registry import PlannerSpec
from twin import Scenario, load_line, load_week, simulate
from twin.plots import plot_run

CONFIG = Path(__file__).resolve().parents[1] / "config"


def cpu_ms(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        work()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed plots per case")
    args = parser.parse_args()
    line = load_line(CONFIG / "line.toml")
    w1 = Scenario.build(line, load_week(CONFIG / "weeks" / "w1", line))
    w2 = Scenario.build(line, load_week(CONFIG / "weeks" / "w2", line), 50)
    week = simulate(w1, SetupAwarePolicy())
    replayed = simulate(w2, SequencePolicy(week[1].sequence(w1.types), line.types))
    tz = w1.calendar.tz
    day = (dt.datetime(2026, 11, 24, 6, tzinfo=tz), dt.datetime(2026, 11, 25, 6, tzinfo=tz))
    rules = run_planners(w1, [PlannerSpec(n) for n in RULES], PlanSettings())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("plot_run w1 week", lambda: plot_run(w1, week[1], week[0], out)),
            ("plot_run w1 day zoom", lambda: plot_run(w1, week[1], week[0], out, day)),
            ("plot_run w2 deadlock", lambda: plot_run(w2, replayed[1], replayed[0], out)),
            ("compare.png rules", lambda: plot_comparison(rules.runs, None, out / "compare.png")),
        ]
        cpu_ms(cases[0][1], 1)  # warm-up: fonts, caches
        print(f"{'case':<22} {'median ms':>10} {'min ms':>8}")
        for name, work in cases:
            median, least = cpu_ms(work, args.repeats)
            print(f"{name:<22} {median:>10.0f} {least:>8.0f}")


if __name__ == "__main__":
    main()
