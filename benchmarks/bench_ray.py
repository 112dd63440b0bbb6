"""Benchmark of the study on Ray: a grid of batch sizes x seeds x steps (default 4 x 2 x 100 k, the
reference line and week, curriculum A) trained three ways on the same two cores:

- serial: one process, the runs one after another (the work);
- pool: two processes of a local `concurrent.futures.ProcessPoolExecutor` (what the study used
  before Ray);
- ray: `run_study` on a two-node Ray cluster on this machine (`ray start --head` + `ray start
  --address`, one CPU each: tests/ray_cluster.py), as `linetwin study --ray-address HOST:PORT`.

Per way it prints the wall time, the overhead against the pool and the parallel efficiency: the
runs' own training time (`wall_time_s` of their summaries, summed) over 2 cores x the wall time;
what is lost is start-up (Ray, the workers' imports), the runs' final evaluations and the grid's
tail. It checks that every way gives the same summaries (the same seeds train the same runs).
`serial` is not run by default (it takes as long as the other two together).

    flock /tmp/ctx/heavy.lock python3 benchmarks/bench_ray.py [--batch-sizes 20,40,60,80]
        [--seeds 2] [--steps 100000] [--ways pool,ray]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ray_cluster import RayCluster

from agent.cli.main import build_parser
from agent.cli.training import _train_config
from agent.training.study import _train_one, run_folder, run_study
from agent.training.summary import TrainSummary
from agent.training.train import TrainConfig

CORES = 2


def grid(base: TrainConfig, sizes: list[int], seeds: list[int]) -> list[TrainConfig]:
    return [
        base.model_copy(
            update={"batch_size": b, "seed": s, "out": run_folder(base.out, b, s), "progress": False}
        )
        for b in sizes
        for s in seeds
    ]


def pool(configs: list[TrainConfig], jobs: int) -> list[TrainSummary]:
    with ProcessPoolExecutor(max_workers=jobs) as workers:
        return list(workers.map(_train_one, configs))


def key(summary: TrainSummary) -> tuple[object, ...]:
    """What the same seed must reproduce: steps, episodes, the curriculum's progress, the plan."""
    best = summary.evaluation.best
    return (
        summary.batch_size,
        summary.seed,
        summary.steps_done,
        summary.episodes,
        tuple(t.learned_at_step for t in summary.tasks),
        best.setup_effort,
        best.idle_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-sizes", default="20,40,60,80")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--ways", default="pool,ray")
    opts = parser.parse_args()
    sizes = [int(b) for b in opts.batch_sizes.split(",")]
    seeds = list(range(opts.seeds))
    ways = opts.ways.split(",")
    root = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    argv = ["study", "--steps", str(opts.steps), "--no-progress", "--checkpoint-steps", str(opts.steps)]
    args = build_parser().parse_args(argv)
    args.argv = argv
    runs = len(sizes) * len(seeds)
    print(
        f"study grid: batch sizes {sizes} x {len(seeds)} seeds x {opts.steps} steps = {runs} runs, "
        f"{CORES} cores; folders under {root}",
        flush=True,
    )
    walls: dict[str, float] = {}
    busy: dict[str, float] = {}
    results: dict[str, list[tuple[object, ...]]] = {}
    for way in ways:
        base = _train_config(args, root / way)
        start = time.perf_counter()
        extra = ""
        if way == "serial":
            summaries = pool(grid(base, sizes, seeds), 1)
        elif way == "pool":
            summaries = pool(grid(base, sizes, seeds), CORES)
        elif way == "ray":
            cluster = RayCluster(root / "cluster")
            up = time.perf_counter()
            address = cluster.start()
            extra = f" (cluster start {time.perf_counter() - up:.1f} s, not counted)"
            start = time.perf_counter()
            try:
                summaries = run_study(base, sizes, seeds, CORES, print, None, ray_address=address)
            finally:
                cluster.stop()
        else:
            raise SystemExit(f"unknown way {way!r}: serial, pool or ray")
        walls[way] = time.perf_counter() - start
        busy[way] = sum(s.wall_time_s for s in summaries)
        results[way] = sorted(map(key, summaries))
        print(f"{way}: {walls[way]:.1f} s for {runs} runs{extra}", flush=True)
    print()
    print("| way | wall (s) | vs pool | runs' training time (s) | parallel efficiency |")
    print("|---|---|---|---|---|")
    for way, wall in walls.items():
        vs = f"{wall / walls['pool'] - 1:+.1%}" if "pool" in walls and way != "pool" else "-"
        cores = 1 if way == "serial" else CORES
        print(f"| {way} | {wall:.1f} | {vs} | {busy[way]:.1f} | {busy[way] / (cores * wall):.0%} |")
    same = len({tuple(r) for r in results.values()}) == 1
    print(f"\nsame summaries (steps, episodes, curriculum, best plan) in every way: {same}")
    for way, rows in results.items():
        if not same:
            print(f"  {way}: {rows}")


if __name__ == "__main__":
    main()
