"""What every command reads: the embedded defaults, the options naming a line and a week, and the
scenario they make."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.cli.flags import count, path_arg, seed
from agent.errors import UsageError
from agent.planners.registry import DEFAULT_MODEL, POLICIES, RL, canonical
from twin import Scenario, load_line, load_week
from twin.config import default_config_dir

CONFIG_DIR = default_config_dir()
"""Embedded defaults: the reference line, weeks, curricula and agent (override with $LINETWIN_CONFIG)."""
DEFAULT_LINE = CONFIG_DIR / "line.toml"
DEFAULT_WEEK = CONFIG_DIR / "weeks" / "w1"


def load_scenario(line_path: Path, week_path: Path, batch_size: int | None) -> Scenario:
    """The line and week of `--line`/`--week` at `--batch-size` (None: the line's).
    Raises TwinError for a bad file, UsageError for a batch size the week cannot take."""
    line = load_line(line_path)
    week = load_week(week_path, line)
    try:
        return Scenario.build(line, week, batch_size)
    except ValueError as exc:
        raise UsageError(str(exc), "batch_size") from None


def common_options(
    p: argparse.ArgumentParser,
    out: str | None,
    week: bool = True,
    batch_default: str = "the line's",
    batch: bool = True,
) -> None:
    """--line, --week, --batch-size, --seed and --out (when `out` names its default)."""
    p.add_argument("--line", type=path_arg, default=DEFAULT_LINE, help="line.toml (default: reference line)")
    if week:
        p.add_argument(
            "--week", type=path_arg, default=DEFAULT_WEEK, help="week folder (default: reference w1)"
        )
    if batch:
        p.add_argument(
            "--batch-size", type=count, default=None, help=f"units per batch (default: {batch_default})"
        )
    p.add_argument("--seed", type=seed, default=0, help="seed of every random stream (default 0)")
    if out is not None:
        p.add_argument("--out", type=path_arg, default=Path(out), help=f"output folder (default {out})")


def policy_options(p: argparse.ArgumentParser, default: str | None, what: str) -> None:
    """--policy (a rule, or `rl`/`rl:MODEL`, the trained agent; read in its one spelling, so `serve
    --policy ppo` dispatches as `rl`) and --model (the agent of `rl`)."""
    p.add_argument("--policy", type=canonical, default=default, help=f"{what}: {POLICIES}")
    p.add_argument(
        "--model",
        type=path_arg,
        default=None,
        help=f"agent for --policy {RL} (default {DEFAULT_MODEL}; or name it: --policy {RL}:MODEL)",
    )
