"""The gymnasium env: API checks, masks that agree with the twin, hand-computed rewards, seeding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from builders import make_line, make_week
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from agent.planners.policies import SetupAwarePolicy
from twin import (
    ENV_ID,
    EnvSettings,
    InvalidDecision,
    LineConfig,
    LineEnv,
    Scenario,
    Task,
    WeekConfig,
    WeekGenerator,
    load_env_settings,
    simulate,
)

HAND = EnvSettings(
    demand_window_s=100,
    range_scale_s=100,
    safety_time_s=25,
    safety_penalty=-1.0,
    criticality_weight=1.0,
    range_floor_s=5,
    setup_weight=0.5,
    reference_batch_size=10,
    deadlock_penalty=-100.0,
)


def _rollout(env: LineEnv, seed: int, rng_seed: int = 0) -> tuple[list[np.ndarray], list[float]]:
    rng = np.random.default_rng(rng_seed)
    obs, _ = env.reset(seed=seed)
    seen, rewards, done = [obs.copy()], [], False
    while not done:
        obs, reward, done, truncated, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        assert not truncated
        seen.append(obs.copy())
        rewards.append(reward)
    return seen, rewards


def test_the_shipped_env_toml_holds_the_embedded_defaults(config_dir: Path) -> None:
    assert load_env_settings(config_dir / "env.toml") == EnvSettings()


def test_registered_id_passes_gymnasiums_and_sb3s_checks() -> None:
    env = gym.make(ENV_ID)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(LineEnv(), warn=True)


def test_reading_files_loads_no_simulator_and_the_id_registers_whatever_is_imported_first() -> None:
    code = (
        "import sys, twin.config\n"
        "print(sorted({'salabim', 'gymnasium', 'numpy'} & set(sys.modules)))\n"
        "import gymnasium as gym\n"
        "print(type(gym.make('linetwin/Line-v0').unwrapped).__name__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines() == ["[]", "LineEnv"]


def test_every_name_twin_exports_loads_from_its_module() -> None:
    import twin

    assert set(twin.__all__) == {*twin._HOME, "ENV_ID", "register"}  # every lazy name is exported
    assert [name for name in twin.__all__ if getattr(twin, name, None) is None] == []
    assert twin.config.default_config_dir().is_dir()  # a submodule, by attribute


def test_mask_is_the_twins_valid_set_and_obs_stay_in_bounds(
    ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    env = LineEnv(ref_line, [ref_week], batch_size=50)
    rng = np.random.default_rng(1)
    env.reset(seed=1)
    done = False
    while not done:
        request = env.request
        assert request is not None
        mask = env.action_masks()
        assert tuple(bool(m) for m in mask) == request.mask
        obs, _, done, _, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        assert env.observation_space.contains(obs)


def test_top_k_mask_keeps_the_most_urgent_valid_types(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    env = LineEnv(ref_line, [ref_week], batch_size=50, task=Task(mask_top_k=3))
    obs, _ = env.reset(seed=0)
    request = env.request
    assert request is not None and len(request.valid) > 3
    mask = env.action_masks()
    assert mask.sum() == 3 and all(k in request.valid for k in np.flatnonzero(mask))
    n = len(ref_line.types)
    ranges = obs[2 * n : 3 * n]
    chosen = set(np.flatnonzero(mask))
    # no valid type outside the three runs out earlier than one inside
    assert max(ranges[list(chosen)]) <= min(ranges[k] for k in request.valid if k not in chosen)


def test_an_action_outside_the_mask_raises_and_is_not_repaired() -> None:
    line = make_line(types=2, fas_units=(10,))
    env = LineEnv(line, [make_week(line, [[(0, 5)]])])
    env.reset(seed=0)
    assert list(env.action_masks()) == [True, False]
    with pytest.raises(InvalidDecision, match="outside the action mask"):
        env.step(1)


def test_rewards_on_hand_computed_states() -> None:
    # One FAS (10 s per unit) plans T1 x5 then T2 x5; stock T1 2; PAS 1 s per unit, batches of 10.
    line = make_line(types=2, fas_units=(10,), pas_unit=1, capacity=100, batch_size=10)
    env = LineEnv(line, [make_week(line, [[(0, 5), (1, 5)]], stock=[2, 0])], settings=HAND)
    env.reset(seed=0)
    # Decide T2 at 0. It enters at 10, when the FAS has just taken the last T1: stock (0, 10).
    # T1 takes at 20, 30, 40 -> required in the window 3, range 10 s; T2 is covered.
    _, reward, done, _, info = env.step(1)
    terms = info["reward_terms"]
    assert terms.criticality == pytest.approx(-3 / (10 / 3600))  # -1080: 3 units over 10 s (in hours)
    assert terms.safety == -1.0  # T1's range 10 s is below the 25 s safety time
    assert terms.setup == 0.0  # the first batch without initial setup is free
    assert reward == pytest.approx(-1081.0) and not done
    # Then T1 (the only valid type): a changeover T2 -> T1 of effort 1 at beta 0.5. The batch enters
    # at 20 as the FAS asks for T1; afterwards every requirement is covered and the episode ends.
    _, reward, done, _, info = env.step(0)
    assert done and reward == pytest.approx(-0.5)
    assert info["kpis"]["idle_s"] == 0 and info["kpis"]["setup_effort"] == 1.0


def test_criticality_and_safety_scale_with_the_batch_size() -> None:
    line = make_line(types=2, fas_units=(10,), pas_unit=1, capacity=100, batch_size=10)
    week = make_week(line, [[(0, 5), (1, 5)]], stock=[2, 0])
    half = HAND.model_copy(update={"reference_batch_size": 5})
    env = LineEnv(line, [week], settings=half)
    env.reset(seed=0)
    _, reward, _, _, _ = env.step(1)
    assert reward == pytest.approx(2 * -1081.0)


def test_deadlock_ends_the_episode_with_its_penalty() -> None:
    # Buffer of 10: a batch of T1 fills it while the FAS waits for T2; the T2 batch can never enter.
    line = make_line(types=2, fas_units=(10,), pas_unit=1, capacity=10, batch_size=10)
    env = LineEnv(line, [make_week(line, [[(1, 5), (0, 10)]])], settings=HAND)
    env.reset(seed=0)
    env.step(0)
    _, _, done, _, info = env.step(1)
    assert done and info["kpis"]["deadlock"] and info["kpis"]["completion"] == 0.0
    assert info["reward_terms"].deadlock == -100.0
    assert info["kpis"]["shortfall_s"] == 15 * 10


def test_the_task_scales_the_setup_term_and_a_deadlock_costs_the_share_never_built() -> None:
    # T1 x5, T2 x5, T1 x10 on a buffer of 10. T1 enters at 10; then 5 units of T2 are required in
    # the window and T2's range is 50 s (first taken at 60): r_crit = -5 / (50 / 3600) = -360.
    line = make_line(types=2, fas_units=(10,), pas_unit=1, capacity=10, batch_size=10)
    week = make_week(line, [[(0, 5), (1, 5), (0, 10)]])
    env = LineEnv(line, [week], settings=HAND, task=Task(setup_weight_scale=0.5))
    env.reset(seed=0)
    _, reward, done, _, _ = env.step(0)
    assert reward == pytest.approx(-360.0) and not done
    # T2 (changeover of effort 1 at beta 0.5 * 0.5) never enters past the 5 T1 left: a deadlock with
    # 5 of 20 units built costs -100 * (1 - 0.25).
    _, reward, done, _, info = env.step(1)
    assert done and info["kpis"]["deadlock"] and info["kpis"]["completion"] == 0.25
    assert (info["reward_terms"].setup, info["reward_terms"].deadlock) == (-0.25, -75.0)
    assert reward == -75.25


def test_same_seed_same_rollout_over_listed_and_generated_weeks(
    ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    generator = WeekGenerator(ref_line, ref_week)
    for weeks in ([ref_week, generator.generate(7)], generator):
        a, b = LineEnv(ref_line, weeks), LineEnv(ref_line, weeks)
        obs_a, rew_a = _rollout(a, seed=3)
        obs_b, rew_b = _rollout(b, seed=3)
        assert rew_a == rew_b and all(np.array_equal(x, y) for x, y in zip(obs_a, obs_b, strict=True))


def test_reset_draws_weeks_with_the_seed(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    generator = WeekGenerator(ref_line, ref_week)
    env = LineEnv(ref_line, generator)
    first = [tuple(env.reset(seed=s)[0]) for s in range(4)]
    again = [tuple(env.reset(seed=s)[0]) for s in range(4)]
    assert first == again and len(set(first)) == 4


def test_set_task_takes_effect_at_the_next_reset(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    env = LineEnv(ref_line, [ref_week], batch_size=50)
    env.reset(seed=0)
    env.set_task(Task(batch_size=20, mask_top_k=2))
    assert env.action_masks().sum() > 2 and env.current_batch_size == 50
    env.reset(seed=0)
    assert env.action_masks().sum() == 2
    assert env.request is not None and env.request.batch_size == 20


def test_a_reused_engine_gives_the_kpis_of_a_fresh_line(ref_line: LineConfig, ref_week: WeekConfig) -> None:
    fresh, _ = simulate(Scenario.build(ref_line, ref_week, 50), SetupAwarePolicy())
    env = LineEnv(ref_line, [ref_week], batch_size=50)
    env.reset(seed=0)
    for _ in range(5):  # an episode abandoned half-way leaves nothing behind
        env.step(int(np.flatnonzero(env.action_masks())[0]))
    for _ in range(2):
        env.reset(seed=0)
        policy, done = SetupAwarePolicy(), False
        while not done:
            assert env.request is not None
            _, _, done, _, _ = env.step(policy(env.request).type)
        assert env.results()[0] == fresh
