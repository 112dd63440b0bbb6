"""Curricula as data (`config/curricula/*.toml`) and the SB3 callback that walks through them.

A task is learned when the mean idle time of the last `window_episodes` episodes played under it
is at most `idle_threshold_s` (the paper's criterion); the last task must meet the stricter
`final_idle_threshold_s`, and then training stops. A deadlocked episode counts the planned FAS work
it never built as idle time, so filling the buffer until deadlock never looks like success."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from stable_baselines3.common.callbacks import BaseCallback

from twin import ConfigError, Task
from twin.config import default_config_dir, defaults_from_env, load_toml_model


class Curriculum(BaseModel):
    """A sequence of env tasks and the criteria to move through them."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)

    name: str
    window_episodes: Annotated[int, Field(gt=0)] = 100
    """Episodes the idle criterion averages over."""
    idle_threshold_s: Annotated[float, Field(ge=0)] = 600.0
    """A task is learned when the mean idle time (working seconds per week) is at most this."""
    final_idle_threshold_s: Annotated[float, Field(ge=0)] = 60.0
    """The stricter criterion of the last task: training is finished when it holds."""
    tasks: list[Task] = Field(alias="task", min_length=1)
    """The tasks in order (`[[task]]` tables)."""

    @model_validator(mode="after")
    def _final_is_stricter(self) -> Curriculum:
        if self.final_idle_threshold_s > self.idle_threshold_s:
            raise ValueError(
                f"final_idle_threshold_s {self.final_idle_threshold_s} is looser than "
                f"idle_threshold_s {self.idle_threshold_s}"
            )
        return self

    def threshold(self, index: int) -> float:
        return self.final_idle_threshold_s if index == len(self.tasks) - 1 else self.idle_threshold_s


def load_curriculum(spec: str | Path) -> Curriculum:
    """A curriculum by name (`A`, `B`, `C`: `config/curricula/<name>.toml`) or from a TOML file."""
    path = Path(spec)
    if not path.suffix:
        path = default_config_dir() / "curricula" / f"{spec}.toml"
        if not path.is_file():
            note = defaults_from_env(path)
            reason = f"no such curriculum (give A, B, C or a .toml file{'; ' + note if note else ''})"
            raise ConfigError(path, "", str(spec), reason)
    return load_toml_model(path, Curriculum)


def episode_idle_s(kpis: dict[str, Any]) -> float:
    """Idle time of an episode for the curriculum criterion: idle plus work lost to a deadlock."""
    return float(kpis["idle_s"] + kpis["shortfall_s"])


class CurriculumCallback(BaseCallback):
    """Moves every env of the VecEnv through the curriculum's tasks; stops training when done."""

    def __init__(self, curriculum: Curriculum, state: dict[str, Any] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.curriculum = curriculum
        state = state or {}
        self.task_index: int = state.get("task_index", 0)
        self.learned_at: list[int | None] = state.get("learned_at", [None] * len(curriculum.tasks))
        self.recent: deque[float] = deque(state.get("recent", []), maxlen=curriculum.window_episodes)
        self.episodes: int = state.get("episodes", 0)

    @property
    def finished(self) -> bool:
        return self.learned_at[-1] is not None

    @property
    def task(self) -> Task:
        return self.curriculum.tasks[self.task_index]

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to continue where this one stopped."""
        return {
            "task_index": self.task_index,
            "learned_at": self.learned_at,
            "recent": list(self.recent),
            "episodes": self.episodes,
        }

    def _on_training_start(self) -> None:
        self.training_env.env_method("set_task", self.task)

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if not done or "kpis" not in info:
                continue
            self.episodes += 1
            if info.get("task") != self.task:
                continue  # an episode that began under the previous task
            self.recent.append(episode_idle_s(info["kpis"]))
            self.logger.record_mean("curriculum/episode_idle_s", self.recent[-1])
        self.logger.record("curriculum/task", self.task_index + 1)
        full = len(self.recent) == self.recent.maxlen
        if full and sum(self.recent) / len(self.recent) <= self.curriculum.threshold(self.task_index):
            return self._task_learned()
        return True

    def _task_learned(self) -> bool:
        self.learned_at[self.task_index] = self.num_timesteps
        if self.verbose:
            print(f"task {self.task_index + 1} learned at step {self.num_timesteps}")
        if self.task_index == len(self.curriculum.tasks) - 1:
            return False  # the final criterion holds: training is finished
        self.task_index += 1
        self.recent.clear()
        self.training_env.env_method("set_task", self.task)
        return True
