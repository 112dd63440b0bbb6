"""The week commands: `generate-week` (a random week like the reference ones) and `validate` (a
line and a week checked, with their load per station)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.cli.flags import as_flags, count, flag_problem, natural, path_arg, positive, seed
from agent.cli.inputs import DEFAULT_LINE, DEFAULT_WEEK, load_scenario
from agent.cli.outputs import force_option, no_file_in_the_way
from agent.errors import UsageError
from agent.folders import make_folder
from twin import WeekGenerator, WeekSpec, load_line, write_week
from twin.config import calendar_left_out
from twin.weekgen import SpecError

WEEK_FILES = ("week.toml", "plan.csv")


def _check_week_out(out: Path, force: bool) -> None:
    """generate-week never overwrites a week (a shipped one, or one a user wrote) unless --force."""
    no_file_in_the_way(out)
    taken = [name for name in WEEK_FILES if (out / name).exists()]
    if taken and not force:
        raise UsageError(
            f"--out {out}: already holds {' and '.join(taken)}: give a new folder, or --force to overwrite"
        )


def cmd_generate_week(args: argparse.Namespace) -> int:
    _check_week_out(args.out, args.force)
    line = load_line(args.line)
    template, left_out = calendar_left_out(args.like, line)
    shares = None
    if args.shares:
        try:
            shares = {k: float(v) for k, v in (item.split("=") for item in args.shares.split(","))}
        except ValueError:
            raise UsageError(f"--shares {args.shares!r}: give TYPE=SHARE pairs like T1=0.2,T2=0.1") from None
    try:
        spec = WeekSpec(
            fill=args.fill,
            order_min=args.order_min,
            order_max=args.order_max,
            shares=shares,
            share_concentration=args.share_concentration,
            initial_stock=args.initial_stock,
        )
    except ValidationError as exc:
        raise UsageError(flag_problem(exc)) from None
    try:
        week = WeekGenerator(line, template, spec).generate(args.seed)
    except SpecError as exc:
        raise UsageError(f"--{exc.field.replace('_', '-')} {exc.value}: {exc.reason}") from None
    except ValueError as exc:
        raise UsageError(as_flags(str(exc))) from None
    make_folder(args.out)
    write_week(args.out, week, line.types)
    orders = sum(len(o) for o in week.plans.values())
    stock = sum(week.initial_stock.values())
    print(f"wrote {args.out}/week.toml and plan.csv: {orders} orders, initial stock {stock}")
    if left_out:
        stations = ", ".join(sorted({d.station for d in left_out}))
        print(f"left out {len(left_out)} downtime of --like {args.like} on {stations}: not on {line.name}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from twin.capacity import week_load

    scenario = load_scenario(args.line, args.week, args.batch_size)
    week = scenario.week
    print(
        f"{args.line} and {args.week} are valid: line '{scenario.line.name}', week of "
        f"{week.week_start.isoformat()} ({week.timezone}), batch size {scenario.batch_size}"
    )
    print(week_load(scenario).report())
    return 0


def add_week_commands(sub: Any) -> None:
    """generate-week and validate, on the subparsers `sub` of `linetwin`."""
    gen = sub.add_parser("generate-week", help="write a random week like the reference ones")
    gen.add_argument(
        "--line", type=path_arg, default=DEFAULT_LINE, help="line.toml (default: reference line)"
    )
    gen.add_argument(
        "--like",
        type=path_arg,
        default=DEFAULT_WEEK,
        help="a week (of any line) whose calendar to use (default w1): its week start, time zone, "
        "holidays and the downtime of stations --line has",
    )
    gen.add_argument("--seed", type=seed, required=True, help="same seed, same week")
    gen.add_argument("--out", type=path_arg, required=True, help="week folder to write")
    defaults = WeekSpec()
    gen.add_argument("--fill", type=positive, default=defaults.fill, help="share of FAS time planned")
    gen.add_argument("--order-min", type=count, default=defaults.order_min, help="smallest order (units)")
    gen.add_argument("--order-max", type=count, default=defaults.order_max, help="largest order (units)")
    gen.add_argument("--shares", default=None, help="demand shares T1=0.2,T2=0.1,... (default: drawn)")
    gen.add_argument("--share-concentration", type=positive, default=defaults.share_concentration)
    gen.add_argument(
        "--initial-stock", type=natural, default=None, help="units at week start (default: half the buffer)"
    )
    force_option(gen, "(overwrite) a folder that already holds week.toml or plan.csv")
    gen.set_defaults(func=cmd_generate_week)

    val = sub.add_parser(
        "validate", help="check a line and a week; print demand, capacity and load per station (no run)"
    )
    val.add_argument(
        "--line", type=path_arg, default=DEFAULT_LINE, help="line.toml (default: reference line)"
    )
    val.add_argument(
        "--week", type=path_arg, default=DEFAULT_WEEK, help="week folder (default: reference w1)"
    )
    val.add_argument("--batch-size", type=count, default=None, help="units per batch (default: the line's)")
    val.set_defaults(func=cmd_validate)
