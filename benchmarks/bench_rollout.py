"""Benchmark of rollout search with the twin: what one rollout decision costs when each trial
resumes from a checkpoint of the decision point against re-simulating from the week start, and the
plans `rollout:<base>` finds on the reference weeks.

    python benchmarks/bench_rollout.py [--weeks w1,w2,w3] [--batch-size 50] [--base setup-aware]
                                       [--every 16] [--repeats 3] [--time-limit 0] [--beam-limit 60]

A rollout decision tries every valid type and finishes the week with the base policy. From a
checkpoint a trial simulates the rest of the week; from the week start it replays the decisions
taken so far (a fixed sequence, no policy calls) and then the same rest; the base's calls cost
most of a decision, so the gain grows towards the end of the week. Pinned to one core.
"""

from __future__ import annotations

import argparse
import os
import time

from agent.planners.policies import Policy, make_rule
from agent.planners.rollout import BEAM, ROLLOUT, SearchSettings, search_plan
from agent.planners.run import run_planner
from twin import Decision, Scenario, load_line, load_week
from twin.config import default_config_dir
from twin.line import Engine, Line


def _finish(line: Line, base: Policy) -> int:
    """Run `line` to its end with `base`; the decisions it took."""
    decided = 0
    request = line.pending
    while request is not None:
        request = line.decide(base(request))
        decided += 1
    return decided


def decision_costs(
    scenario: Scenario, base: Policy, every: int, repeats: int
) -> list[tuple[int, int, float, float, int, int]]:
    """(decision index, valid types, seconds from a checkpoint, seconds from the week start, and the
    decisions each simulated) of the rollout decisions at every `every`-th decision point of the
    base's own week; the seconds are the least of `repeats` measurements."""
    engine = Engine()
    line = Line(scenario, engine)
    line.start()
    checkpoints = []
    taken: list[Decision] = []
    while (pending := line.pending) is not None:
        if pending.index % every == 0:
            checkpoints.append(line.checkpoint())
        taken.append(base(pending))
        line.decide(taken[-1])
    costs = []
    for checkpoint in checkpoints:
        k, valid = checkpoint.request.index, checkpoint.request.valid
        resumed, restarted = float("inf"), float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            resumed_decisions = 0
            for t in valid:
                trial = Line.restore(checkpoint, engine)
                trial.decide(Decision(t))
                resumed_decisions += 1 + _finish(trial, base)
            resumed = min(resumed, time.perf_counter() - start)
            start = time.perf_counter()
            restarted_decisions = 0
            for t in valid:
                trial = Line(scenario, engine)
                request = trial.start()
                while request is not None and request.index < k:
                    request = trial.decide(taken[request.index])
                trial.decide(Decision(t))
                restarted_decisions += k + 1 + _finish(trial, base)
            restarted = min(restarted, time.perf_counter() - start)
        costs.append((k, len(valid), resumed, restarted, resumed_decisions, restarted_decisions))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--weeks", default="w1,w2,w3")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--base", default="setup-aware")
    parser.add_argument("--every", type=int, default=16, help="decision points sampled for the costs")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each, the least kept")
    parser.add_argument("--time-limit", type=float, default=0.0, help="rollout's limit (0: none)")
    parser.add_argument("--beam-limit", type=float, default=60.0, help="beam search's limit on w1 (0: skip)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    config = default_config_dir()
    line = load_line(config / "line.toml")
    weeks = args.weeks.split(",")
    first = Scenario.build(line, load_week(config / "weeks" / weeks[0], line), args.batch_size)
    costs = decision_costs(first, make_rule(args.base, 0), args.every, args.repeats)
    resumed = sum(c[2] for c in costs)
    restarted = sum(c[3] for c in costs)
    print(
        f"one rollout decision on {weeks[0]}, b = {args.batch_size}, base {args.base} "
        f"({len(costs)} decision points, least of {args.repeats})"
    )
    print("decision  types  checkpoint (ms)  week start (ms)  decisions simulated (checkpoint / week start)")
    for index, n, a, b, da, db in costs:
        print(f"{index:8d}  {n:5d}  {a * 1000:15.1f}  {b * 1000:15.1f}  {da:8d} / {db}")
    print(
        f"mean: {resumed / len(costs) * 1000:.1f} ms from a checkpoint, "
        f"{restarted / len(costs) * 1000:.1f} ms from the week start ({restarted / resumed:.2f}x); "
        "decisions simulated "
        f"{sum(c[4] for c in costs)} / {sum(c[5] for c in costs)}"
    )
    print()
    print(f"rollout:{args.base} at b = {args.batch_size} (every valid type at every decision)")
    print("week  base effort  base idle  effort  idle  simulations  decisions simulated  wall (s)")
    limit = args.time_limit or None
    for name in weeks:
        scenario = Scenario.build(line, load_week(config / "weeks" / name, line), args.batch_size)
        base = run_planner(scenario, make_rule(args.base, 0)).results
        run, stats = search_plan(
            scenario, ROLLOUT, make_rule(args.base, 0), SearchSettings(time_limit_s=limit)
        )
        kpis = run.results
        print(
            f"{name:4}  {base.setup_effort:11g}  {base.idle_s:9d}  {kpis.setup_effort:6g}  {kpis.idle_s:4d}  "
            f"{stats.simulations:11d}  {stats.decisions:19d}  {stats.wall_s:8.1f}"
        )
    if args.beam_limit > 0:
        settings = SearchSettings(time_limit_s=args.beam_limit)
        run, stats = search_plan(first, BEAM, make_rule(args.base, 0), settings)
        kpis = run.results
        print(
            f"\nbeam:{args.base} on {weeks[0]} (width 3, depth 1, {args.beam_limit:g} s): "
            f"effort {kpis.setup_effort:g}, idle {kpis.idle_s} s, {stats.simulations} simulations, "
            f"stopped early: {stats.stopped_early}"
        )


if __name__ == "__main__":
    main()
