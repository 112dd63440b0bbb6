"""The training commands: `train` (one run with a curriculum, new or resumed) and `study` (the
batch-size study: a grid of runs, Table II and figures). torch loads only once the flags are right."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agent.cli.flags import (
    ENVS_MAX,
    JOBS_MAX,
    SEED_MAX,
    STEPS_MAX,
    count,
    envs,
    flag_problem,
    jobs,
    natural,
    not_negative,
    path_arg,
    ray_address_option,
    steps,
)
from agent.cli.imitation import add_imitation_commands
from agent.cli.inputs import DEFAULT_WEEK, common_options
from agent.cli.outputs import check_run_folder
from agent.errors import UsageError
from twin import load_line
from twin.config import load_json_model

if TYPE_CHECKING:
    from agent.training.summary import PlanSummary, TrainSummary
    from agent.training.train import TrainConfig


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
            **_start_options(args),
        )
    except ValidationError as exc:  # a flag the config refuses: one line naming it, never a dump
        raise UsageError(flag_problem(exc)) from None


def _start_options(args: argparse.Namespace) -> dict[str, Any]:
    """--init-from, the expert term (--bc-*) and the best model (--best-*), as TrainConfig's fields."""
    if args.bc_data is None:
        given = [f for f in ("--bc-weight", "--bc-steps") if any(a.split("=")[0] == f for a in args.argv)]
        if given:
            raise UsageError(f"{', '.join(given)} weighs the expert term: give --bc-data DIR too")
    options: dict[str, Any] = {
        "init_from": args.init_from,
        "bc_data": args.bc_data,
        "bc_weight": args.bc_weight,
        "bc_steps": args.bc_steps,
        "best_every": args.best_every,
        "best_weeks": args.best_weeks,
    }
    return options


def _print_summary(summary: TrainSummary) -> None:
    learned = ", ".join(
        f"task {t.task}: {t.learned_at_step if t.learned_at_step is not None else '-'}" for t in summary.tasks
    )
    ev = summary.evaluation
    print(f"steps done {summary.steps_done}, wall time {summary.wall_time_s:.0f} s")
    print(f"tasks learned at step: {learned}")
    print(f"final criterion met: {'yes' if summary.final_criterion_met else 'no'}")
    print("evaluation plans, ranked (no deadlock, completion, idle time, setup effort):")
    plans = {"best": ev.best, "deterministic": ev.deterministic}
    for kind, plan in sorted(plans.items(), key=lambda item: item[1].rank_key()):
        print(f"  {_plan_line(kind, plan, ev.week, ev.batch_size)}")


def _plan_line(kind: str, k: PlanSummary, week: str, batch_size: int) -> str:
    """One evaluation plan of a training summary: which plan, how complete, its KPIs."""
    which = f"{kind} plan"
    if kind == "best" and k.seed_known:  # summaries before the seed was kept do not say
        which += " (deterministic)" if k.seed is None else f" (stochastic, seed {k.seed})"
    failed = k.failure()
    return (
        f"{which} of {week} (b={batch_size}): {failed.upper() if failed else 'complete'}, "
        f"completion {k.completion:.3f}, idle {k.idle_s} s, setup effort {k.setup_effort:g}, "
        f"deadlock {'yes' if k.deadlock else 'no'}"
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
    from agent.training.train import holds_run, latest_checkpoint, train

    if args.resume is not None:
        config = _resumed_config(args)
        resume = latest_checkpoint(args.resume / "checkpoints") is not None
        if not resume:
            print(f"train: --resume {args.resume}: no checkpoint yet; the run starts over", flush=True)
        summary = train(config, resume=resume)
    else:
        config = _train_config(args, args.out)
        check_run_folder(args.out)
        if holds_run(args.out):
            raise UsageError(
                f"--out {args.out}: a run is already there; continue it with --resume {args.out}"
            )
        summary = train(config)
    _print_summary(summary)
    print(f"wrote {args.resume or args.out}/summary.json and model.zip")
    if config.best_every > 0:
        print(f"best model on held-out weeks: {config.out}/best.zip (each evaluation: evaluations.jsonl)")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from agent.planners.sweep import parse_batch_sizes
    from agent.training.study import best_plans, run_study, write_figures, write_table

    sizes = parse_batch_sizes(args.batch_sizes)
    if args.seed + args.seeds - 1 > SEED_MAX:  # each run's seed is a seed too
        raise UsageError(
            f"--seed {args.seed} --seeds {args.seeds}: the last run's seed {args.seed + args.seeds - 1} "
            f"is above {SEED_MAX} (seeds are 0 ... 2**32-1)"
        )
    base = _train_config(args, args.out)
    check_run_folder(args.out)
    every = args.progress_every if args.progress_every > 0 and not args.no_progress else None
    seeds = list(range(args.seed, args.seed + args.seeds))
    summaries = run_study(base, sizes, seeds, args.jobs, progress_every_s=every, ray_address=args.ray_address)
    portfolio = best_plans(base, sizes, args.plan_time_limit) if args.plan_time_limit > 0 else None
    files = [*write_table(args.out, summaries, portfolio), *write_figures(args.out, summaries, portfolio)]
    print((args.out / "table2.md").read_text(encoding="utf-8"))
    for path in files:
        print(f"  {path}")
    return 0


def _training_options(p: argparse.ArgumentParser) -> None:
    """What train and study share: the weeks, curriculum, budget and PPO settings of a run."""
    p.add_argument("--week", type=path_arg, default=None, help="train on this week (default: reference w1)")
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
    p.add_argument("--ppo", type=path_arg, default=None, help="ppo.toml with MaskablePPO settings")
    p.add_argument("--checkpoint-steps", type=count, default=50_000, help="checkpoint interval")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--init-from",
        type=path_arg,
        default=None,
        help="start from this model's weights (e.g. behaviour cloning's; its card's types and env "
        "settings must be the run's); PPO settings stay the run's",
    )
    p.add_argument(
        "--bc-data",
        type=path_arg,
        default=None,
        help="expert data (folder of .npz from `linetwin expert`) kept in by behaviour cloning "
        "after every PPO update",
    )
    p.add_argument(
        "--bc-weight", type=not_negative, default=1.0, help="weight of the expert term (default 1)"
    )
    p.add_argument(
        "--bc-steps",
        type=count,
        default=4,
        help="behaviour-cloning minibatch steps after every PPO update (default 4)",
    )
    p.add_argument(
        "--best-every",
        type=natural,
        default=0,
        help="steps between evaluations on held-out generated weeks; the best model is kept as "
        "best.zip (default 0: none)",
    )
    p.add_argument(
        "--best-weeks", type=count, default=5, help="held-out generated weeks of an evaluation (default 5)"
    )


def add_training_commands(sub: Any) -> None:
    """train and study, on the subparsers `sub` of `linetwin`."""
    tr = sub.add_parser("train", help="train MaskablePPO with a curriculum")
    common_options(tr, "runs/train", week=False)
    _training_options(tr)
    tr.add_argument("--resume", type=path_arg, default=None, help="continue the run in this folder")
    tr.set_defaults(func=cmd_train)

    st = sub.add_parser("study", help="batch-size study: a grid of training runs, Table II and figures")
    common_options(st, "runs/study", week=False, batch=False)
    _training_options(st)
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
        "--jobs",
        type=jobs,
        default=2,
        help=f"training runs at once on the local Ray (default 2, at most {JOBS_MAX})",
    )
    ray_address_option(st)
    st.add_argument(
        "--progress-every",
        type=not_negative,
        default=30.0,
        help="wall seconds between lines saying how far each run is (default 30; 0: none)",
    )
    st.add_argument(
        "--plan-time-limit",
        type=not_negative,
        default=30.0,
        help="seconds of the best plan of any planner per batch size, beside Table II (default 30; 0: none)",
    )
    st.set_defaults(func=cmd_study)
    add_imitation_commands(sub)
