"""`linetwin`: the command line of the twin and its planners.

Every user mistake ends with exit code 2 and one readable line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agent.cli.flags import (
    ENVS_MAX,
    JOBS_MAX,
    SEED_MAX,
    STEPS_MAX,
    CommandParser,
    as_flags,
    count,
    envs,
    flag_problem,
    jobs,
    natural,
    not_negative,
    path_arg,
    positive,
    seed,
    stdout_closed,
    steps,
)
from agent.cli.inputs import DEFAULT_LINE, DEFAULT_WEEK, common_options, load_scenario
from agent.cli.live import add_live_commands, write_points
from agent.cli.outputs import check_out, force_option, plot_window, write_run, zoom_options
from agent.errors import AgentError, UsageError
from agent.planners.compare import (
    CPSAT,
    Comparison,
    PlanSettings,
    agent_plans,
    check_planners,
    markdown,
    run_planners,
    solver_summary,
    write_comparison,
)
from agent.planners.cpsat import CpSatSettings
from agent.planners.policies import RULES, Policy, SequencePolicy
from agent.planners.registry import DEFAULT_MODEL, RL, PlannerSpec, make_policy, parse_planners
from agent.planners.run import PlannedRun, kpi_table, made_for, run_planner
from bridge.errors import BridgeError
from bridge.influx import check_server, load_influx_settings
from bridge.points import simulated_points
from twin import (
    Scenario,
    SequenceEntry,
    TwinError,
    WeekGenerator,
    WeekSpec,
    load_line,
    load_sequence,
    load_week,
    write_week,
)
from twin.config import (
    check_sequence,
    load_json_model,
    load_sequence_origin,
    sequence_quantities,
)
from twin.results import failure, rank_key
from twin.weekgen import SpecError

if TYPE_CHECKING:
    from agent.training.train import TrainConfig


def _meta(args: argparse.Namespace, scenario: Scenario) -> dict[str, object]:
    return {
        "line": scenario.line.name,
        "line_file": str(args.line),
        "week": str(args.week),
        "week_start": scenario.week.week_start.isoformat(),
        "batch_size": scenario.batch_size,
        "seed": args.seed,
    }


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.line, args.week, args.batch_size)
    line = scenario.line
    if (args.policy is None) == (args.sequence is None):
        raise UsageError("give exactly one of --policy NAME or --sequence FILE")
    if args.sequence is not None and args.model is not None:
        raise UsageError(f"--model is for --policy {RL}; --sequence replays the file as it is")
    policy: Policy
    meta = _meta(args, scenario)
    if args.sequence is not None:
        entries = load_sequence(args.sequence, line)
        meta["sequence"] = _sequence_meta(args.sequence, entries, scenario, args.week)
        policy = SequencePolicy(entries, line.types, args.sequence)
    else:
        policy = make_policy(args.policy, args.seed, args.model)
    check_out(args.out, [args.sequence], args.force)  # the inputs first, then where to write
    if args.influx:
        # a setting or a server that cannot take the points ends the command before the run
        check_server(load_influx_settings())
    window = plot_window(scenario, args.plot_from, args.plot_to)
    run = run_planner(scenario, policy)
    print(kpi_table([run]))
    files = write_run(args.out, scenario, run, meta, window)
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    if args.influx:
        batches = [SequenceEntry(type=line.types[b.type], quantity=b.quantity) for b in run.trace.batches]
        replayed = SequencePolicy(batches, line.types, run.planner)
        return write_points(simulated_points(scenario, replayed, run.planner, line.name), line.name)
    return 0


def _sequence_meta(
    path: Path, entries: list[SequenceEntry], scenario: Scenario, week: Path
) -> dict[str, object]:
    """A replayed sequence checked against what it was made for (its `sequence.meta.json`): another
    line is an error, another week or batch size a warning up front; for results.json."""
    origin = load_sequence_origin(path)
    warnings = check_sequence(path, entries, origin, made_for(scenario, week))
    for warning in warnings:
        print(f"linetwin: warning: {warning}", file=sys.stderr, flush=True)
    return {
        "source": str(path),
        "made_for": None if origin is None else origin.model_dump(mode="json"),
        "quantities": sequence_quantities(entries, scenario.batch_size),
        "warnings": warnings,
    }


def _plan_settings(args: argparse.Namespace) -> PlanSettings:
    return PlanSettings(CpSatSettings(args.time_limit, args.workers, args.seed), args.plans, args.seed)


def _say(line: str) -> None:
    print(line, flush=True)


def _compare(
    args: argparse.Namespace, specs: list[PlannerSpec], scenario: Scenario | None = None
) -> tuple[Scenario, Comparison]:
    """Run `specs` on the week of `args` (its `scenario`, when the caller loaded it already)."""
    if scenario is None:
        scenario = load_scenario(args.line, args.week, args.batch_size)
    settings = _plan_settings(args)
    agents = check_planners(scenario, specs, settings)  # every flag and model before any output
    check_out(args.out, force=args.force)
    print(f"Week {args.week} on line '{scenario.line.name}', batch size {scenario.batch_size}:")
    comparison = run_planners(scenario, specs, settings, _say, agents)
    print()
    print(markdown(comparison.rows()))
    summary = solver_summary(comparison)
    if summary:
        print(f"\n{summary}")
    return scenario, comparison


def cmd_plan(args: argparse.Namespace) -> int:
    specs = parse_planners(args.planner, DEFAULT_MODEL)
    if len(specs) != 1:
        raise UsageError(f"--planner {args.planner}: name one planner (compare runs several)")
    scenario = load_scenario(args.line, args.week, args.batch_size)
    window = plot_window(scenario, args.plot_from, args.plot_to)  # before any output, as every check
    scenario, comparison = _compare(args, specs, scenario)
    run = comparison.runs[0]
    files = write_run(args.out, scenario, run, run_meta(args, scenario, comparison, run), window)
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def run_meta(
    args: argparse.Namespace, scenario: Scenario, comparison: Comparison, run: PlannedRun
) -> dict[str, object]:
    """results.json's header of a planned run; CP-SAT's plan carries the solver's section (in
    `plan`, and in `demo` when CP-SAT's plan is the best)."""
    solver = _solver_meta(args, comparison) if run.planner == CPSAT else None
    return {**_meta(args, scenario), "solver": solver}


def _solver_meta(args: argparse.Namespace, comparison: Comparison) -> dict[str, object] | None:
    plan = comparison.cpsat
    if plan is None:
        return None
    return {"time_limit_s": args.time_limit, "workers": args.workers, **plan.summary()}


def cmd_compare(args: argparse.Namespace) -> int:
    specs = parse_planners(args.planners, DEFAULT_MODEL)
    scenario, comparison = _compare(args, specs)
    files = write_comparison(args.out, comparison, _meta(args, scenario))
    print(f"\nwrote {', '.join(p.name for p in files if p.parent == args.out)} and sequences/ to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    specs = [PlannerSpec(name) for name in RULES]
    if args.model is not None:
        specs.append(PlannerSpec(RL, args.model))
    if args.time_limit > 0:
        specs.append(PlannerSpec(CPSAT))
    scenario, comparison = _compare(args, specs)
    best = min(comparison.runs, key=lambda r: rank_key(r.results))
    failed = failure(best.results)
    print(
        f"\nbest plan: {best.planner}{f' ({failed.upper()}: every plan failed)' if failed else ''} "
        "(ranking: no deadlock, completion, idle time, setup effort)"
    )
    files = write_run(args.out, scenario, best, run_meta(args, scenario, comparison, best))
    files += write_comparison(args.out, comparison, _meta(args, scenario))
    for path in files:
        if path.parent == args.out:
            print(f"  {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from agent.planners.rl import RLPolicy

    policy = RLPolicy.from_file(args.model)
    scenario = load_scenario(args.line, args.week, args.batch_size or policy.card.batch_size)
    check_out(args.out, force=args.force)
    best, plans = agent_plans(scenario, policy, args.plans, args.seed)
    print(kpi_table(plans))
    state = failure(best.results)
    print(f"\nbest plan by the ranking: {best.planner}" + (f": {state.upper()}" if state else ""))
    meta = {**_meta(args, scenario), "model": str(args.model), "plans": args.plans + 1}
    files = write_run(args.out, scenario, best, meta)
    print(f"wrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def _week_folders(spec: str) -> list[Path] | None:
    """`--weeks`: comma-separated week folders, a folder of week folders, or `generated` (None)."""
    from agent.training.train import GENERATED

    if spec == GENERATED:
        return None
    paths = [Path(p) for p in spec.split(",") if p.strip()]
    if not paths:  # '' or ',': no week at all
        raise UsageError(f"--weeks {spec!r}: no week folder; give DIR,DIR,... or a folder of week folders")
    if len(paths) == 1 and not (paths[0] / "week.toml").exists() and paths[0].is_dir():
        paths = sorted(p for p in paths[0].iterdir() if (p / "week.toml").is_file())
        if not paths:
            raise UsageError(f"--weeks {spec}: no week folders (with week.toml) in it")
    return paths


def _train_config(args: argparse.Namespace, out: Path) -> TrainConfig:
    from agent.training.train import PPOSettings, TrainConfig, load_ppo_settings

    if args.steps is None:  # train and study alike (study's TrainConfig said it as a pydantic dump)
        raise UsageError("--steps is required for a new run")
    if args.week is not None and args.weeks is not None:
        raise UsageError("give --week or --weeks, not both")
    weeks = _week_folders(args.weeks) if args.weeks is not None else [args.week or DEFAULT_WEEK]
    line = load_line(args.line)
    batch_size = getattr(args, "batch_size", None) or line.pas.batch_size  # study: --batch-sizes
    ppo = load_ppo_settings(args.ppo) if args.ppo else PPOSettings()
    try:
        return TrainConfig(
            line=args.line,
            weeks=weeks,
            template_week=args.week or (weeks[0] if weeks else DEFAULT_WEEK),
            curriculum=str(args.curriculum),
            batch_size=batch_size,
            seed=args.seed,
            steps=args.steps,
            envs=args.envs,
            out=out,
            env_settings=args.env_settings,
            ppo=ppo,
            checkpoint_steps=args.checkpoint_steps,
            progress=not args.no_progress,
            command="linetwin " + shlex.join(args.argv),
        )
    except ValidationError as exc:  # a flag the config refuses: one line naming it, never a dump
        raise UsageError(flag_problem(exc)) from None


def _print_summary(summary: dict[str, Any]) -> None:
    learned = ", ".join(
        f"task {t['task']}: {t['learned_at_step'] if t['learned_at_step'] is not None else '-'}"
        for t in summary["tasks"]
    )
    ev = summary["evaluation"]
    print(f"steps done {summary['steps_done']}, wall time {summary['wall_time_s']:.0f} s")
    print(f"tasks learned at step: {learned}")
    print(f"final criterion met: {'yes' if summary['final_criterion_met'] else 'no'}")
    print("evaluation plans, ranked (no deadlock, completion, idle time, setup effort):")
    for kind in sorted(("best", "deterministic"), key=lambda kind: rank_key(ev[kind])):
        print(f"  {_plan_line(kind, ev[kind], ev['week'], ev['batch_size'])}")


def _plan_line(kind: str, k: dict[str, Any], week: str, batch_size: int) -> str:
    """One evaluation plan of a training summary: which plan, how complete, its KPIs."""
    which = f"{kind} plan"
    if kind == "best" and "seed" in k:  # summaries before the seed was kept do not say
        which += " (deterministic)" if k["seed"] is None else f" (stochastic, seed {k['seed']})"
    failed = failure(k)
    return (
        f"{which} of {week} (b={batch_size}): {failed.upper() if failed else 'complete'}, "
        f"completion {k['completion']:.3f}, idle {k['idle_s']} s, setup effort {k['setup_effort']:g}, "
        f"deadlock {'yes' if k['deadlock'] else 'no'}"
    )


RESUME_FLAGS = ("--resume", "--steps", "--no-progress")
"""What `train --resume` takes: everything else is the run's own `config.json`."""


def _resumed_config(args: argparse.Namespace) -> TrainConfig:
    """The run's config.json with --steps and --no-progress on top; other flags are refused,
    not ignored, and a budget the run already reached is said, not silently skipped."""
    path = args.resume / "config.json"
    if not path.is_file():
        raise UsageError(f"--resume {args.resume}: no config.json (not a training run)")
    typed = [a.split("=")[0] for a in args.argv if a.startswith("--")]
    others = [flag for flag in typed if flag not in RESUME_FLAGS]
    if others:
        raise UsageError(
            f"--resume {args.resume}: {', '.join(others)} cannot change a run; it continues as its "
            f"config.json says (only --steps and --no-progress can be given)"
        )
    from agent.training.train import TrainConfig, run_progress  # torch: only once the flags are right

    config = load_json_model(path, TrainConfig)
    config = config.model_copy(update={"progress": not args.no_progress})
    if args.steps is not None:
        config = config.model_copy(update={"steps": args.steps})
    done, finished = run_progress(args.resume)
    if finished:
        raise UsageError(
            f"--resume {args.resume}: the run met its final criterion at {done} steps; nothing to continue"
        )
    if done is not None and config.steps <= done:
        raise UsageError(
            f"--resume {args.resume}: the run is already at {done} steps (budget {config.steps}); "
            f"pass --steps N with N > {done} to continue"
        )
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from agent.training.train import latest_checkpoint, train

    if args.resume is not None:
        config = _resumed_config(args)
        resume = latest_checkpoint(args.resume / "checkpoints") is not None
        if not resume:
            print(f"train: --resume {args.resume}: no checkpoint yet; the run starts over", flush=True)
        summary = train(config, resume=resume)
    else:
        summary = train(_train_config(args, args.out))
    _print_summary(summary)
    print(f"wrote {args.resume or args.out}/summary.json and model.zip")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from agent.training.study import run_study, write_figures, write_table

    parts = [b.strip() for b in args.batch_sizes.split(",")]
    if not all(b.isascii() and b.isdigit() for b in parts):  # int() would take 1_0 and ١٠
        raise UsageError(f"--batch-sizes {args.batch_sizes!r}: give integers like 10,20,30")
    sizes = list(dict.fromkeys(int(b) for b in parts))
    if args.seed + args.seeds - 1 > SEED_MAX:  # each run's seed is a seed too
        raise UsageError(
            f"--seed {args.seed} --seeds {args.seeds}: the last run's seed {args.seed + args.seeds - 1} "
            f"is above {SEED_MAX} (seeds are 0 ... 2**32-1)"
        )
    base = _train_config(args, args.out)
    every = args.progress_every if args.progress_every > 0 and not args.no_progress else None
    seeds = list(range(args.seed, args.seed + args.seeds))
    summaries = run_study(base, sizes, seeds, args.jobs, progress_every_s=every)
    files = [*write_table(args.out, summaries), *write_figures(args.out, summaries)]
    print((args.out / "table2.md").read_text(encoding="utf-8"))
    for path in files:
        print(f"  {path}")
    return 0


WEEK_FILES = ("week.toml", "plan.csv")


def _check_week_out(out: Path, force: bool) -> None:
    """generate-week never overwrites a week (a shipped one, or one a user wrote) unless --force."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder")
    taken = [name for name in WEEK_FILES if (out / name).exists()]
    if taken and not force:
        raise UsageError(
            f"--out {out}: already holds {' and '.join(taken)}: give a new folder, or --force to overwrite"
        )


def cmd_generate_week(args: argparse.Namespace) -> int:
    _check_week_out(args.out, args.force)
    line = load_line(args.line)
    template = load_week(args.like, line)
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
    write_week(args.out, week, line.types)
    orders = sum(len(o) for o in week.plans.values())
    stock = sum(week.initial_stock.values())
    print(f"wrote {args.out}/week.toml and plan.csv: {orders} orders, initial stock {stock}")
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


def build_parser() -> CommandParser:
    parser = CommandParser(prog="linetwin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    common = common_options

    def training(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--week", type=path_arg, default=None, help="train on this week (default: reference w1)"
        )
        p.add_argument(
            "--weeks",
            default=None,
            help="train on several weeks: DIR,DIR,... or a folder of week folders, or 'generated' "
            "(a new week every episode, calendar of --week)",
        )
        p.add_argument("--curriculum", default="A", help="A, B, C or a curriculum .toml (default A)")
        p.add_argument(
            "--steps", type=steps, default=None, help=f"training budget in env steps (at most {STEPS_MAX})"
        )
        p.add_argument(
            "--envs", type=envs, default=1, help=f"parallel envs (processes when > 1; at most {ENVS_MAX})"
        )
        p.add_argument("--env-settings", type=path_arg, default=None, help="env.toml (default: embedded)")
        p.add_argument("--ppo", type=path_arg, default=None, help="ppo.toml with MaskableRL settings")
        p.add_argument("--checkpoint-steps", type=count, default=50_000, help="checkpoint interval")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sim = sub.add_parser("simulate", help="simulate a week with one planner or a given PAS sequence")
    common(sim, "runs/simulate")
    sim.add_argument("--policy", help=f"planner: {', '.join([*RULES, RL])}")
    sim.add_argument(
        "--model", type=path_arg, default=None, help=f"agent for --policy rl (default {DEFAULT_MODEL})"
    )
    sim.add_argument("--sequence", type=path_arg, help="replay this sequence.csv")
    sim.add_argument(
        "--influx", action="store_true", help="also write the week's points to InfluxDB ($LINETWIN_INFLUX_*)"
    )
    zoom_options(sim)
    force_option(sim)
    sim.set_defaults(func=cmd_simulate)

    def searching(p: argparse.ArgumentParser, time_limit: float) -> None:
        p.add_argument(
            "--time-limit",
            type=not_negative,
            default=time_limit,
            help=f"CP-SAT seconds (default {time_limit:g})",
        )
        p.add_argument(
            "--workers", type=jobs, default=2, help=f"CP-SAT search workers (default 2, at most {JOBS_MAX})"
        )
        p.add_argument("--plans", type=count, default=20, help="stochastic plans of an agent (default 20)")

    planners = f"{', '.join(RULES)}, cpsat (also cp-sat) or rl[:MODEL] (the trained agent)"
    plan = sub.add_parser(
        "plan", help="plan a week with one planner (e.g. cpsat) and simulate it in the twin"
    )
    common(plan, "runs/plan")
    plan.add_argument("--planner", required=True, help=planners)
    searching(plan, 60.0)
    zoom_options(plan)
    force_option(plan)
    plan.set_defaults(func=cmd_plan)

    cmp = sub.add_parser("compare", help="every planner on the same week: one table and a plot")
    common(cmp, "runs/compare")
    cmp.add_argument(
        "--planners",
        "--planner",
        dest="planners",
        default="rules,cpsat,rl",
        help=f"comma-separated: rules (all), {planners}",
    )
    searching(cmp, 60.0)
    force_option(cmp)
    cmp.set_defaults(func=cmd_compare)

    demo = sub.add_parser(
        "demo", help="plan a week with every rule, the shipped agent and CP-SAT; plot the best"
    )
    common(demo, "runs/demo")
    demo.add_argument(
        "--model", type=path_arg, default=DEFAULT_MODEL, help="agent (default: the shipped one)"
    )
    demo.add_argument("--no-agent", dest="model", action="store_const", const=None, help="no agent")
    searching(demo, 10.0)
    force_option(demo)
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser("evaluate", help="best of 20 stochastic plans and the deterministic plan of an agent")
    common(ev, "runs/evaluate", batch_default="the model's")
    ev.add_argument("--model", type=path_arg, required=True, help="model.zip (or a run folder)")
    ev.add_argument("--plans", type=count, default=20, help="stochastic plans (default 20)")
    force_option(ev)
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("train", help="train MaskableRL with a curriculum")
    common(tr, "runs/train", week=False)
    training(tr)
    tr.add_argument("--resume", type=path_arg, default=None, help="continue the run in this folder")
    tr.set_defaults(func=cmd_train)

    st = sub.add_parser("study", help="batch-size study: a grid of training runs, Table II and figures")
    common(st, "runs/study", week=False, batch=False)
    training(st)
    st.add_argument(
        "--batch-sizes",
        "--batch-size",
        dest="batch_sizes",
        default="10,20,30,40,50,60,70,80,90,100",
        help="comma-separated (--batch-size 30: a study of one size)",
    )
    st.add_argument(
        "--seeds", type=count, default=3, help="runs per batch size (seeds --seed, --seed+1, ...)"
    )
    st.add_argument(
        "--jobs", type=jobs, default=2, help=f"parallel training processes (default 2, at most {JOBS_MAX})"
    )
    st.add_argument(
        "--progress-every",
        type=not_negative,
        default=30.0,
        help="wall seconds between lines saying how far each run is (default 30; 0: none)",
    )
    st.set_defaults(func=cmd_study)

    gen = sub.add_parser("generate-week", help="write a random week like the reference ones")
    gen.add_argument(
        "--line", type=path_arg, default=DEFAULT_LINE, help="line.toml (default: reference line)"
    )
    gen.add_argument(
        "--like", type=path_arg, default=DEFAULT_WEEK, help="week whose calendar to use (default w1)"
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
        "--initial-stock", type=natural, default=defaults.initial_stock, help="units at week start"
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
    add_live_commands(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = subparsers.choices[command]
    return found


def flag_of(command: argparse.ArgumentParser, argv: Sequence[str], param: str) -> str:
    """The flag of a library parameter (`time_limit`, `planners`) as the user typed it (an
    alias included), else its first long spelling; `--param-name` when the command has none."""
    dests = {param, *PARAM_DESTS.get(param, ())}
    typed = [a.split("=")[0] for a in argv if a.startswith("--")]
    for action in command._actions:
        if action.dest in dests and action.option_strings:
            said = [s for s in typed if s in action.option_strings]
            return said[-1] if said else action.option_strings[-1]
    return "--" + param.replace("_", "-")


PARAM_DESTS = {"planners": ("planner",), "planner": ("policy",)}
"""Library parameters that some commands take under another option name."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            parser.unknown_flags(extras, _subparser(parser, args.command))
    except SystemExit as exc:  # a flag mistake (exit code 2) or --help (0): returned like the others
        return exc.code if isinstance(exc.code, int) else 2
    except BrokenPipeError:  # `linetwin --help | head`
        stdout_closed()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.argv = argv
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # `linetwin ... | head`: the reader is gone
        stdout_closed()
    except UsageError as exc:  # the library names a parameter; the user reads the flag
        flag = flag_of(_subparser(parser, args.command), argv, exc.param) if exc.param else None
        print(f"linetwin: error: {exc.said_as(flag)}", file=sys.stderr)
        return 2
    except (TwinError, AgentError, BridgeError) as exc:
        print(f"linetwin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linetwin: interrupted", file=sys.stderr)
        return 130
