"""The agent for many types on the reference line at b = 50 (one generated week, the compact
observation): `slack-greedy` expert data record slot actions, cloning learns them, the agent
plans with slots and names types, DAgger (type labels) is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from agent.planners.policies import SlackGreedyPolicy
from agent.planners.rl import RLPolicy
from agent.planners.run import run_planner
from agent.training.expert import expert_week, read_manifest, read_plan, replay
from twin import Observer, Scenario, WeekGenerator, load_calendar, load_env_settings, load_line
from twin.config import default_config_dir
from twin.line import Line

ENV = 'observation = "compact"\ntop_k = 4\nfamilies = 2\nmask = "deadlines"\nslack_horizon_s = 14400\n'


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plant")
    (folder / "env.toml").write_text(ENV)
    out = folder / "data"
    argv = ["expert", "--planner", "slack-greedy", "--weeks", "1", "--first-seed", "5", "--jobs", "1"]
    assert main([*argv, "--env-settings", str(folder / "env.toml"), "--out", str(out)]) == 0
    return out


def test_slack_greedy_takes_the_first_slot(data: Path) -> None:
    settings = read_manifest(data).settings
    line = load_line(settings.line)
    scenario = Scenario.build(line, expert_week(settings, 5), 50)
    greedy = SlackGreedyPolicy()
    observer = Observer(scenario, greedy.settings)
    twin = Line(scenario)
    request = twin.start()
    while request is not None:
        slots = observer.assess(request).slots
        assert slots is not None
        decision = greedy(request)
        assert decision.type == slots[0] and greedy.preference(request)[: len(slots)] == slots
        request = twin.decide(decision)
    assert twin.results().idle_s == 0


def test_expert_data_of_the_compact_observation_hold_slot_actions(data: Path) -> None:
    manifest = read_manifest(data)
    assert manifest.settings.planner == "slack-greedy"
    (plan,) = manifest.plans
    assert plan.source == "slack-greedy" and plan.outside_mask == 0 and plan.idle_s == 0
    found = read_plan(data / plan.file)
    assert found is not None
    arrays = found[1]
    assert arrays["masks"].shape == (plan.steps, 4) and arrays["obs"].shape == (plan.steps, 4 * 8 + 2 * 6 + 4)
    assert (arrays["actions"] == 0).all()  # the rule's choice is slot 0
    line = load_line(manifest.settings.line)
    week = expert_week(manifest.settings, 5)
    again = replay(arrays["sequence"].tolist(), week, line, 50, manifest.settings.env_settings)
    assert again.kpis["setup_effort"] == plan.setup_effort
    np.testing.assert_array_equal(again.obs, arrays["obs"])
    late = replay(arrays["sequence"][::-1].tolist(), week, line, 50, manifest.settings.env_settings)
    assert (late.actions[late.outside] == -1).all() and late.outside.any()  # not among the slots


def test_a_clone_plans_types_through_its_slots_and_dagger_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bc"
    argv = ["imitate", "--data", str(data), "--out", str(out), "--epochs", "1", "--seed", "1"]
    assert main([*argv, "--dagger-rounds", "1"]) == 2
    assert "--dagger-rounds 1: DAgger labels types" in capsys.readouterr().err and not out.exists()
    assert main(argv) == 0
    policy = RLPolicy.from_file(out / "model.zip")
    settings = read_manifest(data).settings
    assert policy.card.env_settings == settings.env_settings and policy.model.action_space.n == 4  # type: ignore[attr-defined]
    scenario = Scenario.build(load_line(settings.line), expert_week(settings, 5), 50)
    run = run_planner(scenario, policy)
    assert run.results.completion == 1.0 and run.results.idle_s == 0  # the deadline mask's slots


def test_the_shipped_plant_agent_reads_the_compact_observation_of_its_line() -> None:
    config = default_config_dir()
    policy = RLPolicy.from_file(config / "agents" / "plant-40x24.zip")
    assert policy.card.env_settings == load_env_settings(config / "plant" / "env.toml")
    line = load_line(config / "lines" / "plant-40x24.toml")
    assert policy.card.types == line.types
    assert policy.model.observation_space.shape == (Observer.size(24, policy.card.env_settings),) == (104,)
    scenario = Scenario.build(
        line, WeekGenerator(line, load_calendar(config / "weeks" / "w1", line)).generate(1), 50
    )
    policy.check(scenario)  # raises for another line
    request = Line(scenario).start()
    assert request is not None and policy(request).type in request.valid
