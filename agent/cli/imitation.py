"""The imitation commands: `expert` (best plans of generated weeks, replayed as training data) and
`imitate` (behaviour cloning of that data into a MaskablePPO agent). torch loads only once the
flags are right."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from agent.cli.flags import (
    JOBS_MAX,
    SEED_MAX,
    count,
    jobs,
    natural,
    not_negative,
    path_arg,
    positive,
    ray_address_option,
    seed,
)
from agent.cli.inputs import DEFAULT_LINE, DEFAULT_WEEK
from agent.errors import UsageError

PLAN_FLAGS = (
    "--weeks",
    "--first-seed",
    "--batch-sizes",
    "--windows",
    "--time-limit",
    "--cpsat-time",
    "--jobs",
    "--ray-address",
    "--planner",
)
"""What makes plans: `expert --replay-from` takes none of them (it replays plans made before)."""


def cmd_expert(args: argparse.Namespace) -> int:
    from agent.planners.sweep import parse_batch_sizes
    from agent.training.expert import ExpertSettings, make_expert_data
    from twin import EnvSettings, load_env_settings, load_line

    if args.replay_from is not None:
        return _replay_expert(args)
    if args.weeks is None:
        raise UsageError("expert: give --weeks N (or --replay-from DIR)")
    sizes = parse_batch_sizes(args.batch_sizes)
    last = args.first_seed + args.weeks - 1
    if last > SEED_MAX:
        raise UsageError(
            f"--first-seed {args.first_seed} --weeks {args.weeks}: the last week's seed {last} is above "
            f"{SEED_MAX} (seeds are 0 ... 2**32-1)"
        )
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: a file, not a folder")
    line = load_line(args.line)
    settings = ExpertSettings(
        line=args.line.resolve(),
        template_week=args.week.resolve(),
        types=line.types,
        env_settings=load_env_settings(args.env_settings) if args.env_settings else EnvSettings(),
        time_limit_s=args.time_limit,
        windows=args.windows,
        cpsat_s=args.cpsat_time or None,
        planner=args.planner,
    )
    seeds = list(range(args.first_seed, last + 1))
    manifest = make_expert_data(settings, seeds, sizes, args.out, args.jobs, ray_address=args.ray_address)
    wanted = {(s, b) for s in seeds for b in sizes}
    plans = [p for p in manifest.plans if (p.seed, p.batch_size) in wanted]
    for size in sizes:
        mine = [p for p in plans if p.batch_size == size]
        zero = sum(p.idle_s == 0 for p in mine)
        effort = sum(p.setup_effort for p in mine) / len(mine)
        wall = sum(p.wall_s for p in mine) / len(mine)
        outside = sum(p.outside_mask for p in mine)
        print(
            f"b={size}: {len(mine)} plans, {sum(p.steps for p in mine)} decisions, zero idle "
            f"{zero}/{len(mine)}, mean effort {effort:.1f}, {wall:.2f} s per plan, "
            f"{outside} actions outside the mask"
        )
    print(f"wrote {args.out}/manifest.json and {len(manifest.plans)} plan files")
    return 0


def _replay_expert(args: argparse.Namespace) -> int:
    """`expert --replay-from DIR --env-settings FILE --out DIR2`: the same plans, other observations."""
    from agent.training.expert import rerecord
    from twin import EnvSettings, load_env_settings

    typed = [a.split("=")[0] for a in args.argv if a.split("=")[0] in PLAN_FLAGS]
    if typed:
        raise UsageError(
            f"--replay-from {args.replay_from}: {', '.join(typed)} would make plans; it replays those made"
        )
    settings = load_env_settings(args.env_settings) if args.env_settings else EnvSettings()
    manifest = rerecord(args.replay_from, settings, args.out)
    outside = sum(p.outside_mask for p in manifest.plans)
    steps = sum(p.steps for p in manifest.plans)
    print(f"replayed {len(manifest.plans)} plans ({steps} decisions, {outside} actions outside the mask)")
    print(f"wrote {args.out}/manifest.json and {len(manifest.plans)} plan files")
    return 0


def cmd_imitate(args: argparse.Namespace) -> int:
    from agent.training.train import PPOSettings, load_ppo_settings

    data = [Path(p) for p in args.data.split(",") if p.strip()]
    if not data:
        raise UsageError(f"--data {args.data!r}: no folder; give DIR or DIR,DIR,...")
    ppo = load_ppo_settings(args.ppo) if args.ppo else PPOSettings()
    for flag, value, most in (
        ("--dagger-rounds", args.dagger_rounds, 100),
        ("--dagger-weeks", args.dagger_weeks, 100_000),
    ):
        if value > most:  # more would pass the seeds of other uses (the test weeks from 3e9)
            raise UsageError(f"{flag} {value}: at most {most}")
    from agent.training.imitation import ImitationConfig, imitate

    config = ImitationConfig(
        data=data,
        out=args.out,
        epochs=args.epochs,
        seed=args.seed,
        init_from=args.init_from,
        ppo=ppo,
        learning_rate=args.learning_rate,
        dagger_rounds=args.dagger_rounds,
        dagger_weeks=args.dagger_weeks,
        dagger_plays=args.dagger_plays,
        best_sets=not args.expert_choice_only,
        command="linetwin " + shlex.join(args.argv),
    )
    summary = imitate(config)
    print(
        f"imitation: {summary.train_steps} decisions to learn from, {summary.validation_steps} held out; "
        f"validation NLL {summary.validation_nll[0]:.3f} -> {summary.validation_nll[-1]:.3f}, "
        f"accuracy {summary.validation_accuracy[-1]:.3f}, {summary.wall_s:.1f} s"
    )
    print(f"wrote {args.out}/model.zip, model.json and imitation.json")
    return 0


def add_imitation_commands(sub: Any) -> None:
    """expert and imitate, on the subparsers `sub` of `linetwin`."""
    ex = sub.add_parser("expert", help="best plans of generated weeks, replayed as imitation data")
    ex.add_argument("--line", type=path_arg, default=DEFAULT_LINE, help="line.toml (default: reference line)")
    ex.add_argument(
        "--week",
        type=path_arg,
        default=DEFAULT_WEEK,
        help="template week of the generated weeks (default w1)",
    )
    ex.add_argument("--weeks", type=count, default=None, help="generated weeks (seeds --first-seed ...)")
    ex.add_argument("--first-seed", type=seed, default=1000, help="the first week's seed (default 1000)")
    ex.add_argument("--batch-sizes", default="50", help="comma-separated batch sizes (default 50)")
    ex.add_argument(
        "--windows", type=natural, default=10, help="neighbourhood windows per plan (fixed work; default 10)"
    )
    ex.add_argument("--time-limit", type=positive, default=120.0, help="wall seconds per plan (default 120)")
    ex.add_argument(
        "--cpsat-time",
        type=not_negative,
        default=0.5,
        help="CP-SAT's deterministic seconds per plan (default 0.5; 0: a share of --time-limit)",
    )
    ex.add_argument(
        "--planner",
        choices=("best", "slack-greedy"),
        default="best",
        help="best: the planning portfolio (default); slack-greedy: the rule, for plant-size lines",
    )
    ex.add_argument("--env-settings", type=path_arg, default=None, help="env.toml (default: embedded)")
    ex.add_argument(
        "--jobs",
        type=jobs,
        default=2,
        help=f"plans at once on the local Ray (default 2, at most {JOBS_MAX}; 1: here, no Ray)",
    )
    ray_address_option(ex)
    ex.add_argument(
        "--out", type=path_arg, default=Path("runs/expert"), help="data folder (default runs/expert)"
    )
    ex.add_argument(
        "--replay-from",
        type=path_arg,
        default=None,
        help="replay the plans of this expert data under --env-settings into --out (no planning)",
    )
    ex.set_defaults(func=cmd_expert)

    im = sub.add_parser("imitate", help="behaviour cloning of expert data into a MaskablePPO agent")
    im.add_argument("--data", required=True, help="expert data folders: DIR or DIR,DIR,...")
    im.add_argument(
        "--out", type=path_arg, default=Path("runs/imitate"), help="model folder (default runs/imitate)"
    )
    im.add_argument("--epochs", type=count, default=30, help="passes over the data (default 30)")
    im.add_argument("--seed", type=seed, default=0, help="seed of the network, split and batches (default 0)")
    im.add_argument(
        "--init-from", type=path_arg, default=None, help="start from this model .zip (with its card)"
    )
    im.add_argument("--ppo", type=path_arg, default=None, help="ppo.toml: the network of a new agent")
    im.add_argument("--learning-rate", type=positive, default=1e-3, help="Adam's step size (default 0.001)")
    im.add_argument(
        "--dagger-rounds",
        type=natural,
        default=0,
        help="DAgger rounds after cloning: the agent plays new generated weeks (b=50), the exact "
        "cost-to-go labels every zero-idle state it reaches, --epochs more epochs on all (default 0)",
    )
    im.add_argument("--dagger-weeks", type=count, default=20, help="weeks per DAgger round (default 20)")
    im.add_argument(
        "--dagger-plays",
        type=count,
        default=2,
        help="plays of each DAgger week: the deterministic one, then stochastic ones (default 2)",
    )
    im.add_argument(
        "--expert-choice-only",
        action="store_true",
        help="learn the expert's own choice, not every type as good (the cost-to-go's ties)",
    )
    im.set_defaults(func=cmd_imitate)
