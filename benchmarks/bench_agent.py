"""Benchmark of trained agents on generated test weeks that no training ever saw (issue 18's targets).

Test week i is `WeekGenerator(line, w1's calendar).generate(TEST_SEED + i)`, TEST_SEED = 3,000,000,000:
above every training seed (`linetwin expert` uses the seeds it is given, training draws below 2**31)
and above the held-out weeks that pick `best.zip` (from 2**31 on).

Per model it prints:
- best of 21 (20 stochastic plans and the deterministic one, `agent.planners.evaluate`) on the
  first `--weeks` test weeks at each batch size: setup effort, idle, and at b = 50 the ratio to the
  portfolio's best plan (the exact programme there: proved optimal);
- at b = 20 and 10, on how many weeks the agent's effort is no worse than its own at b = 50;
- the share of the first `--zero-idle-weeks` test weeks the deterministic agent plans at b = 50
  without idle time.

    python benchmarks/bench_agent.py --models NAME=PATH[,NAME=PATH...] [--weeks 10]
        [--zero-idle-weeks 100] [--batch-sizes 50,20,10] [--plans 20] [--jobs 2]

Weeks run in `--jobs` processes, torch on one thread each.
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

from agent.planners.evaluate import evaluate, play
from agent.planners.portfolio import BestSettings, plan_best
from agent.planners.registry import DEFAULT_MODEL
from agent.planners.rl import RLPolicy, load_model
from agent.planners.rollout import ROLLOUT, SearchSettings, search_plan
from twin import LineEnv, Scenario, load_calendar, load_line
from twin.config import default_config_dir
from twin.weekgen import WeekGenerator

TEST_SEED = 3_000_000_000

_models: dict[str, Any] = {}
_generator: WeekGenerator | None = None


def _start(models: dict[str, str]) -> None:
    global _generator
    torch.set_num_threads(1)
    config = default_config_dir()
    line = load_line(config / "line.toml")
    _generator = WeekGenerator(line, load_calendar(config / "weeks" / "w1", line))
    for name, path in models.items():
        _models[name] = load_model(path)


def _week(task: tuple[int, tuple[int, ...], int, bool, float]) -> dict[str, Any]:
    """One test week: the best plan at b = 50, each model's best of 21 per batch size and, with a
    budget, its rl+rollout plan at b = 50 (or only its deterministic plan at b = 50, for the
    zero-idle share)."""
    index, sizes, plans, full, rollout_s = task
    assert _generator is not None
    week = _generator.generate(TEST_SEED + index)
    out: dict[str, Any] = {"week": index}
    if not full:
        for name, (model, card) in _models.items():
            scenario = Scenario.build(_generator.line, week, 50)
            env = LineEnv(scenario.line, [week], 50, card.env_settings)
            results = play(env, model, True, 0).run.results
            out[name] = {"zero_idle": not results.deadlock and results.idle_s == 0}
        return out
    run, _ = plan_best(Scenario.build(_generator.line, week, 50), BestSettings(time_limit_s=60, windows=0))
    out["best"] = run.results.setup_effort if run.results.idle_s == 0 else None
    for name, (model, card) in _models.items():
        rows = {}
        for b in sizes:
            began = time.perf_counter()
            ev = evaluate(model, card, Scenario.build(_generator.line, week, b), plans=plans)
            best, det = ev.best.run.results, ev.deterministic.run.results
            rows[b] = {
                "effort": best.setup_effort,
                "idle": best.idle_s,
                "det_effort": det.setup_effort,
                "det_idle": det.idle_s,
                "s": time.perf_counter() - began,
            }
        if rollout_s > 0:
            scenario = Scenario.build(_generator.line, week, 50)
            searched, stats = search_plan(
                scenario, ROLLOUT, RLPolicy(model, card), SearchSettings(decision_time_s=rollout_s)
            )
            times = sorted(stats.decision_s)
            out[f"{name}/rollout"] = {
                "effort": searched.results.setup_effort,
                "idle": searched.results.idle_s,
                "max_s": times[-1] if times else 0.0,
                "p95_s": times[int(0.95 * (len(times) - 1))] if times else 0.0,
            }
        out[name] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=f"shipped={DEFAULT_MODEL}")
    parser.add_argument("--weeks", type=int, default=10)
    parser.add_argument("--zero-idle-weeks", type=int, default=100)
    parser.add_argument("--batch-sizes", default="50,20,10")
    parser.add_argument("--plans", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--rollout",
        type=float,
        default=0.0,
        help="rl+rollout's seconds per decision on the --weeks at b=50 (0: none)",
    )
    args = parser.parse_args()
    items = [item.split("=", 1) for item in args.models.split(",")]
    if any(len(item) != 2 or not all(item) for item in items):
        parser.error(f"--models {args.models!r}: give NAME=MODEL[,NAME=MODEL...]")
    models = dict(items)
    for path in models.values():
        if not Path(path).is_file():
            parser.error(f"--models: {path}: no such model")
    try:
        sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        parser.error(f"--batch-sizes {args.batch_sizes!r}: give sizes like 50,20,10")
    if 50 not in sizes:
        parser.error("--batch-sizes: the ratios are taken at b = 50, include it")
    line = load_line(default_config_dir() / "line.toml")
    if any(not 0 < b <= line.buffer.capacity for b in sizes):
        parser.error(
            f"--batch-sizes {args.batch_sizes}: each between 1 and the buffer's {line.buffer.capacity}"
        )
    if args.weeks < 1 or args.zero_idle_weeks < 0 or args.plans < 0 or args.jobs < 1:
        parser.error("--weeks and --jobs at least 1, --zero-idle-weeks and --plans at least 0")
    began = time.perf_counter()
    tasks = [(i, sizes, args.plans, True, args.rollout) for i in range(args.weeks)]
    tasks += [(i, sizes, args.plans, False, 0.0) for i in range(args.zero_idle_weeks)]
    context = get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_start, initargs=(models,)) as pool:
        results = list(pool.map(_week, tasks))
    full = [r for r in results if "best" in r]
    quick = [r for r in results if "best" not in r]
    last = max(args.weeks, args.zero_idle_weeks) - 1
    print(f"test weeks: seeds {TEST_SEED} + 0..{last}, best of {args.plans + 1} plans")
    header = "model        b  effort(mean)  idle>0  ratio(mean)  ratio(max)  det effort  det ratio  s/week"
    print("(ratios to the best plan over the weeks planned without idle time only)")
    print(header)
    for name in models:
        for b in sizes:
            rows = [r[name][b] for r in full]
            # a ratio only where the plan has zero idle (effort bought with idle time compares nothing)
            ratios = [
                r[name][b]["effort"] / r["best"]
                for r in full
                if r["best"] and b == 50 and not r[name][b]["idle"]
            ]
            det = [
                r[name][b]["det_effort"] / r["best"]
                for r in full
                if r["best"] and b == 50 and not r[name][b]["det_idle"]
            ]
            print(
                f"{name:<12} {b:>2} {statistics.mean(x['effort'] for x in rows):>13.1f} "
                f"{sum(x['idle'] > 0 for x in rows):>7} "
                f"{(f'{statistics.mean(ratios):.3f}' if ratios else '-'):>12} "
                f"{(f'{max(ratios):.3f}' if ratios else '-'):>11} "
                f"{statistics.mean(x['det_effort'] for x in rows):>11.1f} "
                f"{(f'{statistics.mean(det):.3f}' if det else '-'):>10} "
                f"{statistics.mean(x['s'] for x in rows):>7.1f}"
            )
        for b in sizes:
            if b == 50:
                continue
            ok = sum(r[name][b]["effort"] <= r[name][50]["effort"] for r in full)
            print(f"{name:<12} b={b}: effort <= its own b=50 effort on {ok}/{len(full)} weeks")
        if args.rollout > 0:
            done = [r[f"{name}/rollout"] for r in full]
            ratios = [
                x["effort"] / r["best"]
                for x, r in zip(done, full, strict=True)
                if r["best"] and not x["idle"]
            ]
            ratios = ratios or [float("nan")]  # no rollout plan without idle time
            mean = statistics.mean(x["effort"] for x in done)
            idle = sum(x["idle"] > 0 for x in done)
            p95, slowest = max(x["p95_s"] for x in done), max(x["max_s"] for x in done)
            print(
                f"{name:<12} rl+rollout {args.rollout:g} s/decision, b=50: effort {mean:.1f}, weeks with idle"
                f" {idle}, ratio mean {statistics.mean(ratios):.3f} max {max(ratios):.3f}, "
                f"decision p95 {p95:.2f} s max {slowest:.2f} s"
            )
        zero = sum(r[name]["zero_idle"] for r in quick)
        if quick:
            share = f"{zero}/{len(quick)} weeks ({zero / len(quick):.0%})"
            print(f"{name:<12} b=50 deterministic, zero idle on {share}")
    best = [r["best"] for r in full if r["best"]]
    if best:
        print(f"best plans (b=50): mean effort {statistics.mean(best):.1f} on {len(best)} weeks")
    print(f"wall {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
