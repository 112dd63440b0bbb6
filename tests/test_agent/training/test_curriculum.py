"""Curricula as data and the callback that moves training through them, on tiny lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import make_line, make_week
from sb3_contrib import MaskablePPO
from stable_baselines3.common.vec_env import DummyVecEnv

from agent.training.curriculum import Curriculum, CurriculumCallback, load_curriculum
from twin import ConfigError, LineConfig, LineEnv, Task, WeekConfig


def _env(line: LineConfig, week: WeekConfig, envs: int = 2) -> DummyVecEnv:
    return DummyVecEnv([lambda: LineEnv(line, [week], batch_size=5)] * envs)


def _learn(vec: DummyVecEnv, curriculum: Curriculum, steps: int) -> CurriculumCallback:
    model = MaskablePPO("MlpPolicy", vec, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    callback = CurriculumCallback(curriculum)
    model.learn(total_timesteps=steps, callback=callback)
    return callback


def _curriculum(threshold: float, final: float) -> Curriculum:
    return Curriculum.model_validate(
        {
            "name": "tiny",
            "window_episodes": 3,
            "idle_threshold_s": threshold,
            "final_idle_threshold_s": final,
            "task": [
                {"mask_top_k": 1, "setup_weight_scale": 0.0},
                {"setup_weight_scale": 0.5},
                {"batch_size": 4},
            ],
        }
    )


def test_tasks_advance_when_idle_is_low_and_training_stops_at_the_final_criterion() -> None:
    # A fast PAS and a roomy buffer: no plan ever idles, so each task is learned after 3 episodes.
    line = make_line(types=2, fas_units=(10,), pas_unit=1, capacity=100, batch_size=5)
    week = make_week(line, [[(0, 10), (1, 10), (0, 10)]], stock=[10, 0])
    vec = _env(line, week)
    callback = _learn(vec, _curriculum(0.0, 0.0), 5_000)
    assert callback.finished
    learned = callback.learned_at
    assert all(at is not None for at in learned) and learned == sorted(learned)
    assert callback.num_timesteps < 5_000  # stopped by the final criterion, not by the budget
    assert vec.get_attr("task") == [Task(batch_size=4)] * 2


def test_no_task_change_while_the_line_idles() -> None:
    # The PAS is slower than the FAS: every episode idles, so task 1 is never learned.
    line = make_line(types=2, fas_units=(1,), pas_unit=10, capacity=100, batch_size=5)
    week = make_week(line, [[(0, 10), (1, 10)]])
    vec = _env(line, week)
    callback = _learn(vec, _curriculum(1.0, 0.0), 600)
    assert callback.task_index == 0 and callback.learned_at == [None, None, None]
    assert len(callback.recent) == 3 and min(callback.recent) > 1.0


@pytest.mark.parametrize("name,tasks", [("A", 3), ("B", 7), ("C", 8)])
def test_the_papers_curricula_ship_as_data(name: str, tasks: int) -> None:
    curriculum = load_curriculum(name)
    assert curriculum.name == name and len(curriculum.tasks) == tasks
    assert curriculum.tasks[0].mask_top_k == 3 and curriculum.tasks[0].setup_weight_scale == 0.0
    assert curriculum.final_idle_threshold_s <= curriculum.idle_threshold_s


def test_a_curriculum_file_error_names_file_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n\n[[task]]\nsetup_weight_scale = 2.0\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml.*task\[0\]\.setup_weight_scale.*value 2\.0"):
        load_curriculum(path)
    with pytest.raises(ConfigError, match="no such curriculum"):
        load_curriculum("Z")
