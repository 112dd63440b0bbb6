"""`linetwin sweep`: which batch size? Planners at every batch size of a list, coarse to fine; a
table per batch size (idle time, setup effort, bound, gap, wall time, who found the plan), a plot,
and each plan's sequence.csv."""

from __future__ import annotations

import argparse
from typing import Any

from agent.cli.flags import JOBS_MAX, jobs, natural, not_negative, ray_address_option
from agent.cli.inputs import common_options
from agent.cli.outputs import check_out, force_option, run_header
from agent.planners.registry import DEFAULT_MODEL, RL, parse_planners
from twin import load_line, load_week

DEFAULT_SIZES = "10,20,...,100"


def cmd_sweep(args: argparse.Namespace) -> int:
    from agent.planners.sweep import (  # OR-Tools: only in the command that plans
        RANKING,
        SweepSettings,
        answer,
        check_sweep,
        markdown,
        parse_batch_sizes,
        run_sweep,
        scenarios,
        write_sweep,
    )

    sizes = parse_batch_sizes(args.batch_sizes)
    specs = parse_planners(args.planner, DEFAULT_MODEL)
    line = load_line(args.line)
    weeks = scenarios(line, load_week(args.week, line), sizes)
    settings = SweepSettings(args.time_limit, args.workers, args.seed, args.plans, windows=args.windows)
    agents = check_sweep(weeks, specs, settings)  # every flag and model before any output
    check_out(args.out, force=args.force)
    first = weeks[max(weeks)]
    order = ", ".join(map(str, sorted(weeks, reverse=True)))
    planners = ", ".join(s.label for s in specs)
    print(
        f"Week {args.week} on line '{line.name}', batch sizes {order} (coarse to fine), {planners}:",
        flush=True,
    )
    sweep = run_sweep(weeks, specs, settings, _say, agents, args.jobs, args.ray_address)
    print()
    print(markdown(sweep.rows()))
    print(f"\nBest batch size by {RANKING}:")
    for line_text in answer(sweep):
        print(f"  {line_text}")
    meta = {
        **run_header(args, first),
        "planners": [s.label for s in specs],
        "time_limit_s": args.time_limit,
        "workers": args.workers,
        "plans": args.plans,
    }
    meta.pop("batch_size")
    files = write_sweep(args.out, sweep, weeks, meta)
    print(f"\nwrote {', '.join(p.name for p in files if p.parent == args.out)} and b<size>/ to {args.out}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def add_sweep_command(sub: Any) -> None:
    """sweep, on the subparsers `sub` of `linetwin`."""
    sw = sub.add_parser(
        "sweep", help="which batch size? planners at every batch size, coarse to fine: a table and a plot"
    )
    common_options(sw, "runs/sweep", batch=False)
    sw.add_argument(
        "--batch-sizes",
        dest="batch_sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated, or a range FIRST,SECOND,...,LAST (default {DEFAULT_SIZES})",
    )
    sw.add_argument(
        "--planners",
        "--planner",
        dest="planner",
        default="best",
        help=f"best (default: the portfolio, coarser plans as hints), a rule, rules, cpsat, {RL}[:MODEL], "
        "rollout:POLICY, beam:POLICY; comma-separated for several",
    )
    sw.add_argument(
        "--time-limit",
        type=not_negative,
        default=60.0,
        help="seconds per batch size of best, CP-SAT, a rollout or beam search, and the bound (default 60)",
    )
    sw.add_argument(
        "--workers",
        type=jobs,
        default=1,
        help=f"search workers of best and CP-SAT (default 1, at most {JOBS_MAX})",
    )
    sw.add_argument(
        "--plans",
        type=natural,
        default=20,
        help="stochastic plans of an agent (default 20; 0: deterministic only)",
    )
    sw.add_argument(
        "--windows",
        type=natural,
        default=None,
        help="best: neighbourhood windows per batch size (default: until --time-limit); a fixed amount "
        "of work, so that with --workers 1 the same --seed gives the same sweep",
    )
    sw.add_argument(
        "--jobs",
        type=jobs,
        default=1,
        help=f"plans at once on a local Ray (default 1: here, no Ray; at most {JOBS_MAX}): the other "
        "planners at every size at once, best one size after another",
    )
    ray_address_option(sw)
    force_option(sw)
    sw.set_defaults(func=cmd_sweep)
