"""The shipped agent and the script that makes it agree: its card's env settings are the script's,
the fine-tune's settings load, and the agent plans a reference week inside the deadline mask
without idle time."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent.planners.registry import DEFAULT_MODEL, REFERENCE_MODEL
from agent.planners.rl import RLPolicy
from agent.planners.run import run_planner
from agent.training.curriculum import load_curriculum
from agent.training.train import load_ppo_settings
from twin import Scenario, load_line, load_week
from twin.config import default_config_dir
from twin.env_settings import load_env_settings

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = ROOT / "config" / "imitation"


def test_the_shipped_agent_is_the_scripts_and_plans_w1_without_idle() -> None:
    policy = RLPolicy.from_file(DEFAULT_MODEL)
    assert policy.card.env_settings == load_env_settings(SETTINGS / "env.toml")
    assert policy.card.env_settings.mask == "deadlines"
    assert "--init-from" in policy.card.command or policy.card.curriculum == "imitation"
    config = default_config_dir()
    line = load_line(config / "line.toml")
    run = run_planner(Scenario.build(line, load_week(config / "weeks" / "w1", line), 50), policy)
    assert run.results.idle_s == 0 and not run.results.deadlock
    assert RLPolicy.from_file(REFERENCE_MODEL).card.curriculum == "A"


def test_the_imitation_script_parses_and_its_settings_load() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "imitation.sh")], check=False).returncode == 0
    assert load_curriculum(SETTINGS / "finetune.toml").tasks[-1].setup_weight_scale == 1.0
    assert (
        load_ppo_settings(SETTINGS / "ppo.toml").learning_rate
        < load_ppo_settings(ROOT / "config" / "ppo.toml").learning_rate
    )
