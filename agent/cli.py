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

from agent.compare import (
    CPSAT,
    PPO,
    Comparison,
    PlannerSpec,
    PlanSettings,
    agent_plans,
    markdown,
    parse_planners,
    run_planners,
    solver_summary,
    write_comparison,
)
from agent.cpsat import CpSatSettings
from agent.errors import AgentError, UsageError
from agent.live import add_live_commands, write_points
from agent.planning import kpi_table, run_planner, write_run
from agent.policies import RULES, Policy, SequencePolicy, make_rule
from bridge.errors import BridgeError
from bridge.influx import load_influx_settings
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
from twin.config import default_config_dir

if TYPE_CHECKING:
    from agent.train import TrainConfig

CONFIG_DIR = default_config_dir()
"""Embedded defaults: the reference line, weeks, curricula and agent (override with $LINETWIN_CONFIG)."""
DEFAULT_LINE = CONFIG_DIR / "line.toml"
DEFAULT_WEEK = CONFIG_DIR / "weeks" / "w1"
DEFAULT_MODEL = CONFIG_DIR / "agents" / "reference.zip"
RL_POLICY = "rl"


def _load(line_path: Path, week_path: Path, batch_size: int | None) -> Scenario:
    line = load_line(line_path)
    week = load_week(week_path, line)
    try:
        return Scenario.build(line, week, batch_size)
    except ValueError as exc:
        raise UsageError(f"--batch-size: {exc}") from None


def make_policy(name: str, seed: int, model: Path | None = None) -> Policy:
    """A rule by name, or `rl`: the trained agent of `model` (deterministic)."""
    if name == RL_POLICY:
        from agent.rl_policy import RLPolicy  # torch only when an agent plans

        return RLPolicy.from_file(model or DEFAULT_MODEL, deterministic=True, seed=seed)
    if name not in RULES:
        raise UsageError(f"unknown policy {name!r}; choose one of {', '.join([*RULES, RL_POLICY])}")
    if model is not None:
        raise UsageError(f"--model is for --policy {RL_POLICY}, not for the rule {name!r}")
    return make_rule(name, seed)


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
    scenario = _load(args.line, args.week, args.batch_size)
    line = scenario.line
    if (args.policy is None) == (args.sequence is None):
        raise UsageError("give exactly one of --policy NAME or --sequence FILE")
    policy: Policy
    if args.sequence is not None:
        policy = SequencePolicy(load_sequence(args.sequence, line), line.types, args.sequence)
    else:
        policy = make_policy(args.policy, args.seed, args.model)
    if args.influx:
        load_influx_settings()  # a settings mistake ends the command before the week runs
    run = run_planner(scenario, policy)
    print(kpi_table([run]))
    files = write_run(args.out, scenario, run, _meta(args, scenario))
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    if args.influx:
        batches = [SequenceEntry(type=line.types[b.type], quantity=b.quantity) for b in run.trace.batches]
        replayed = SequencePolicy(batches, line.types, run.planner)
        return write_points(simulated_points(scenario, replayed, run.planner, line.name), line.name)
    return 0


def _plan_settings(args: argparse.Namespace) -> PlanSettings:
    return PlanSettings(CpSatSettings(args.time_limit, args.workers, args.seed), args.plans, args.seed)


def _say(line: str) -> None:
    print(line, flush=True)


def _compare(args: argparse.Namespace, specs: list[PlannerSpec]) -> tuple[Scenario, Comparison]:
    scenario = _load(args.line, args.week, args.batch_size)
    print(f"Week {args.week} on line '{scenario.line.name}', batch size {scenario.batch_size}:")
    comparison = run_planners(scenario, specs, _plan_settings(args), _say)
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
    scenario, comparison = _compare(args, specs)
    run = comparison.runs[0]
    meta = {**_meta(args, scenario), "solver": _solver_meta(args, comparison)}
    files = write_run(args.out, scenario, run, meta)
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def _solver_meta(args: argparse.Namespace, comparison: Comparison) -> dict[str, object] | None:
    plan = comparison.cpsat
    if plan is None:
        return None
    return {"time_limit_s": args.time_limit, "workers": args.workers, **plan.summary()}


def cmd_compare(args: argparse.Namespace) -> int:
    scenario, comparison = _compare(args, parse_planners(args.planners, DEFAULT_MODEL))
    files = write_comparison(args.out, comparison, _meta(args, scenario))
    print(f"\nwrote {', '.join(p.name for p in files if p.parent == args.out)} and sequences/ to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    specs = [PlannerSpec(name) for name in RULES]
    if args.model is not None:
        specs.append(PlannerSpec(PPO, args.model))
    if args.time_limit > 0:
        specs.append(PlannerSpec(CPSAT))
    scenario, comparison = _compare(args, specs)
    best = min(comparison.runs, key=lambda r: r.results.rank_key())
    print(f"\nbest plan: {best.planner} (ranking: no deadlock, completion, idle time, setup effort)")
    files = write_run(args.out, scenario, best, _meta(args, scenario))
    files += write_comparison(args.out, comparison, _meta(args, scenario))
    for path in files:
        if path.parent == args.out:
            print(f"  {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from agent.rl_policy import RLPolicy

    policy = RLPolicy.from_file(args.model)
    scenario = _load(args.line, args.week, args.batch_size or policy.card.batch_size)
    best, plans = agent_plans(scenario, policy, args.plans, args.seed)
    print(kpi_table([*plans, best]))
    meta = {**_meta(args, scenario), "model": str(args.model), "plans": args.plans + 1}
    files = write_run(args.out, scenario, best, meta)
    print(f"\nbest plan: {best.planner}; wrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def _week_folders(spec: str) -> list[Path] | None:
    """`--weeks`: comma-separated week folders, a folder of week folders, or `generated` (None)."""
    from agent.train import GENERATED

    if spec == GENERATED:
        return None
    paths = [Path(p) for p in spec.split(",") if p]
    if len(paths) == 1 and not (paths[0] / "week.toml").exists() and paths[0].is_dir():
        paths = sorted(p for p in paths[0].iterdir() if (p / "week.toml").is_file())
        if not paths:
            raise UsageError(f"--weeks {spec}: no week folders (with week.toml) in it")
    return paths


def _train_config(args: argparse.Namespace, out: Path) -> TrainConfig:
    from agent.train import PPOSettings, TrainConfig, load_ppo_settings

    if args.week is not None and args.weeks is not None:
        raise UsageError("give --week or --weeks, not both")
    weeks = _week_folders(args.weeks) if args.weeks is not None else [args.week or DEFAULT_WEEK]
    line = load_line(args.line)
    batch_size = args.batch_size or line.pas.batch_size
    ppo = load_ppo_settings(args.ppo) if args.ppo else PPOSettings()
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


def _print_summary(summary: dict[str, Any]) -> None:
    learned = ", ".join(
        f"task {t['task']}: {t['learned_at_step'] if t['learned_at_step'] is not None else '-'}"
        for t in summary["tasks"]
    )
    ev = summary["evaluation"]
    print(f"steps done {summary['steps_done']}, wall time {summary['wall_time_s']:.0f} s")
    print(f"tasks learned at step: {learned}")
    print(f"final criterion met: {'yes' if summary['final_criterion_met'] else 'no'}")
    for kind in ("best", "deterministic"):
        k = ev[kind]
        print(
            f"{kind} plan of {ev['week']} (b={ev['batch_size']}): idle {k['idle_s']} s, "
            f"setup effort {k['setup_effort']:g}, deadlock {'yes' if k['deadlock'] else 'no'}"
        )


def cmd_train(args: argparse.Namespace) -> int:
    from agent.train import TrainConfig, train

    if args.resume is not None:
        path = args.resume / "config.json"
        if not path.is_file():
            raise UsageError(f"--resume {args.resume}: no config.json (not a training run)")
        config = TrainConfig.model_validate_json(path.read_text(encoding="utf-8"))
        if args.steps is not None:
            config = config.model_copy(update={"steps": args.steps})
        summary = train(config, resume=True)
    else:
        if args.steps is None:
            raise UsageError("--steps is required for a new run")
        summary = train(_train_config(args, args.out))
    _print_summary(summary)
    print(f"wrote {args.resume or args.out}/summary.json and model.zip")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from agent.study import run_study, write_figures, write_table

    try:
        sizes = [int(b) for b in args.batch_sizes.split(",")]
    except ValueError:
        raise UsageError(f"--batch-sizes {args.batch_sizes!r}: give integers like 10,20,30") from None
    base = _train_config(args, args.out)
    summaries = run_study(base, sizes, list(range(args.seed, args.seed + args.seeds)), args.jobs)
    files = [*write_table(args.out, summaries), *write_figures(args.out, summaries)]
    print((args.out / "table2.md").read_text(encoding="utf-8"))
    for path in files:
        print(f"  {path}")
    return 0


def cmd_generate_week(args: argparse.Namespace) -> int:
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
        week = WeekGenerator(line, template, spec).generate(args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    write_week(args.out, week, line.types)
    orders = sum(len(o) for o in week.plans.values())
    stock = sum(week.initial_stock.values())
    print(f"wrote {args.out}/week.toml and plan.csv: {orders} orders, initial stock {stock}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linetwin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(
        p: argparse.ArgumentParser, out: str | None, week: bool = True, batch_default: str = "the line's"
    ) -> None:
        p.add_argument("--line", type=Path, default=DEFAULT_LINE, help="line.toml (default: reference line)")
        if week:
            p.add_argument(
                "--week", type=Path, default=DEFAULT_WEEK, help="week folder (default: reference w1)"
            )
        p.add_argument(
            "--batch-size", type=int, default=None, help=f"units per batch (default: {batch_default})"
        )
        p.add_argument("--seed", type=int, default=0, help="seed of every random stream (default 0)")
        if out is not None:
            p.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default {out})")

    def training(p: argparse.ArgumentParser) -> None:
        p.add_argument("--week", type=Path, default=None, help="train on this week (default: reference w1)")
        p.add_argument(
            "--weeks",
            default=None,
            help="train on several weeks: DIR,DIR,... or a folder of week folders, or 'generated' "
            "(a new week every episode, calendar of --week)",
        )
        p.add_argument("--curriculum", default="A", help="A, B, C or a curriculum .toml (default A)")
        p.add_argument("--steps", type=int, default=None, help="training budget in env steps")
        p.add_argument("--envs", type=int, default=1, help="parallel envs (processes when > 1)")
        p.add_argument("--env-settings", type=Path, default=None, help="env.toml (default: embedded)")
        p.add_argument("--ppo", type=Path, default=None, help="ppo.toml with MaskablePPO settings")
        p.add_argument("--checkpoint-steps", type=int, default=50_000, help="checkpoint interval")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sim = sub.add_parser("simulate", help="simulate a week with one planner or a given PAS sequence")
    common(sim, "runs/simulate")
    sim.add_argument("--policy", help=f"planner: {', '.join([*RULES, RL_POLICY])}")
    sim.add_argument(
        "--model", type=Path, default=None, help=f"agent for --policy rl (default {DEFAULT_MODEL})"
    )
    sim.add_argument("--sequence", type=Path, help="replay this sequence.csv")
    sim.add_argument(
        "--influx", action="store_true", help="also write the week's points to InfluxDB ($LINETWIN_INFLUX_*)"
    )
    sim.set_defaults(func=cmd_simulate)

    def searching(p: argparse.ArgumentParser, time_limit: float) -> None:
        p.add_argument(
            "--time-limit", type=float, default=time_limit, help=f"CP-SAT seconds (default {time_limit:g})"
        )
        p.add_argument("--workers", type=int, default=2, help="CP-SAT search workers (default 2)")
        p.add_argument("--plans", type=int, default=20, help="stochastic plans of an agent (default 20)")

    planners = f"{', '.join(RULES)}, cpsat or ppo[:MODEL]"
    plan = sub.add_parser(
        "plan", help="plan a week with one planner (e.g. cpsat) and simulate it in the twin"
    )
    common(plan, "runs/plan")
    plan.add_argument("--planner", required=True, help=planners)
    searching(plan, 60.0)
    plan.set_defaults(func=cmd_plan)

    cmp = sub.add_parser("compare", help="every planner on the same week: one table and a plot")
    common(cmp, "runs/compare")
    cmp.add_argument(
        "--planners", default="rules,cpsat,ppo", help=f"comma-separated: rules (all), {planners}"
    )
    searching(cmp, 60.0)
    cmp.set_defaults(func=cmd_compare)

    demo = sub.add_parser(
        "demo", help="plan a week with every rule, the shipped agent and CP-SAT; plot the best"
    )
    common(demo, "runs/demo")
    demo.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="agent (default: the shipped one)")
    demo.add_argument("--no-agent", dest="model", action="store_const", const=None, help="no agent")
    searching(demo, 10.0)
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser("evaluate", help="best of 20 stochastic plans and the deterministic plan of an agent")
    common(ev, "runs/evaluate", batch_default="the model's")
    ev.add_argument("--model", type=Path, required=True, help="model.zip (or a run folder)")
    ev.add_argument("--plans", type=int, default=20, help="stochastic plans (default 20)")
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser("train", help="train MaskablePPO with a curriculum")
    common(tr, "runs/train", week=False)
    training(tr)
    tr.add_argument("--resume", type=Path, default=None, help="continue the run in this folder")
    tr.set_defaults(func=cmd_train)

    st = sub.add_parser("study", help="batch-size study: a grid of training runs, Table II and figures")
    common(st, "runs/study", week=False)
    training(st)
    st.add_argument("--batch-sizes", default="10,20,30,40,50,60,70,80,90,100", help="comma-separated")
    st.add_argument("--seeds", type=int, default=3, help="runs per batch size (seeds --seed, --seed+1, ...)")
    st.add_argument("--jobs", type=int, default=2, help="parallel training processes (default 2)")
    st.set_defaults(func=cmd_study)

    gen = sub.add_parser("generate-week", help="write a random week like the reference ones")
    gen.add_argument("--line", type=Path, default=DEFAULT_LINE, help="line.toml (default: reference line)")
    gen.add_argument(
        "--like", type=Path, default=DEFAULT_WEEK, help="week whose calendar to use (default w1)"
    )
    gen.add_argument("--seed", type=int, required=True, help="same seed, same week")
    gen.add_argument("--out", type=Path, required=True, help="week folder to write")
    defaults = WeekSpec()
    gen.add_argument("--fill", type=float, default=defaults.fill, help="share of FAS time planned")
    gen.add_argument("--order-min", type=int, default=defaults.order_min, help="smallest order (units)")
    gen.add_argument("--order-max", type=int, default=defaults.order_max, help="largest order (units)")
    gen.add_argument("--shares", default=None, help="demand shares T1=0.2,T2=0.1,... (default: drawn)")
    gen.add_argument("--share-concentration", type=float, default=defaults.share_concentration)
    gen.add_argument("--initial-stock", type=int, default=defaults.initial_stock, help="units at week start")
    gen.set_defaults(func=cmd_generate_week)
    add_live_commands(sub, common, _load, make_policy, ", ".join([*RULES, RL_POLICY]), DEFAULT_MODEL)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.argv = argv
    try:
        code: int = args.func(args)
        return code
    except (TwinError, AgentError, BridgeError) as exc:
        print(f"linetwin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linetwin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
