"""Training MaskablePPO on the twin with a curriculum: one function for new and resumed runs.

A run folder holds `config.json` (what was asked), `checkpoints/` (model + curriculum state every
`checkpoint_steps`), `tb/` (TensorBoard), `model.zip` + `model.json` (the final agent and its card)
and `summary.json` (`TrainSummary`: steps at which each task was learned, final KPIs, wall time).
A run may start from a model's weights (`init_from`, e.g. behaviour cloning's), keep the expert in
with a behaviour-cloning term (`bc_data`, `bc_weight`: `agent.training.anchor`) and keep its best
model by evaluation on held-out generated weeks (`best_every`: `best.zip`, `agent.training.best`)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import torch
from pydantic import BaseModel, ConfigDict, Field
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from agent.errors import UsageError
from agent.folders import make_folder
from agent.planners.evaluate import PlayedPlan, evaluate
from agent.planners.rl import ModelCard, save_model
from agent.training.anchor import ExpertAnchor, ExpertSteps, check_expert_steps, load_expert_steps
from agent.training.best import BestKeeper, held_out_weeks
from agent.training.curriculum import Curriculum, CurriculumCallback, load_curriculum
from agent.training.summary import EvaluationSummary, PlanSummary, TaskSummary, TrainSummary, read_summary
from twin import (
    EnvSettings,
    LineConfig,
    LineEnv,
    Observer,
    Scenario,
    WeekConfig,
    WeekGenerator,
    load_calendar,
    load_env_settings,
    load_line,
    load_week,
)
from twin.config import load_toml_model

GENERATED = "generated"
"""`weeks` value that draws a new week from the generator at every reset."""


class PPOSettings(BaseModel):
    """MaskablePPO hyperparameters (stable-baselines3 names; defaults: `config/ppo.toml`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)

    learning_rate: Annotated[float, Field(gt=0)] = 3e-4
    n_steps: Annotated[int, Field(gt=1)] = 1024
    """Steps per env between updates."""
    batch_size: Annotated[int, Field(gt=1)] = 128
    """Minibatch size of an update."""
    n_epochs: Annotated[int, Field(gt=0)] = 10
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    gae_lambda: Annotated[float, Field(gt=0, le=1)] = 0.95
    clip_range: Annotated[float, Field(gt=0)] = 0.2
    ent_coef: Annotated[float, Field(ge=0)] = 0.01
    net_arch: list[int] = Field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the policy and value networks."""


class TrainConfig(BaseModel):
    """One training run, as `linetwin train` takes it (saved as `config.json` for --resume)."""

    model_config = ConfigDict(extra="forbid")

    line: Path
    weeks: list[Path] | None = None
    """Week folders to train on; None draws a generated week at every reset."""
    template_week: Path
    """Calendar of generated weeks, and the week the final evaluation plans."""
    curriculum: str
    batch_size: Annotated[int, Field(gt=0)]
    seed: int = 0
    steps: Annotated[int, Field(gt=0)]
    envs: Annotated[int, Field(gt=0)] = 1
    out: Path
    env_settings: Path | None = None
    ppo: PPOSettings = Field(default_factory=PPOSettings)
    checkpoint_steps: Annotated[int, Field(gt=0)] = 50_000
    eval_plans: Annotated[int, Field(ge=1)] = 20
    progress: bool = True
    command: str = ""
    init_from: Path | None = None
    """A model (.zip with its card) whose weights the run starts from; PPO settings stay the run's."""
    bc_data: Path | None = None
    """Expert data (a folder of .npz: obs, masks, actions) kept in by a behaviour-cloning term."""
    bc_weight: Annotated[float, Field(ge=0)] = 1.0
    bc_steps: Annotated[int, Field(gt=0)] = 4
    """Behaviour-cloning minibatch steps after each PPO update."""
    bc_batch_size: Annotated[int, Field(gt=1)] = 256
    best_every: Annotated[int, Field(ge=0)] = 0
    """Steps between evaluations on held-out generated weeks keeping `best.zip` (0: none)."""
    best_weeks: Annotated[int, Field(gt=0)] = 5


def load_ppo_settings(path: Path | str) -> PPOSettings:
    return load_toml_model(path, PPOSettings)


def _weeks(config: TrainConfig, line: LineConfig) -> list[WeekConfig] | WeekGenerator:
    if config.weeks is None:
        return WeekGenerator(line, load_calendar(config.template_week, line))
    return [load_week(w, line) for w in config.weeks]


def make_vec_env(config: TrainConfig, line: LineConfig, settings: EnvSettings) -> VecEnv:
    weeks = _weeks(config, line)

    def factory() -> gym.Env[Any, Any]:
        return Monitor(LineEnv(line, weeks, config.batch_size, settings))

    factories = [factory] * config.envs
    vec: VecEnv = SubprocVecEnv(factories) if config.envs > 1 else DummyVecEnv(factories)
    vec.seed(config.seed)
    return vec


class RunSaver(BaseCallback):
    """Every `every` steps (and at the end) saves the model and the curriculum state together."""

    def __init__(self, folder: Path, every: int, curriculum: CurriculumCallback) -> None:
        super().__init__()
        self.folder = folder
        self.every = every
        self.curriculum = curriculum
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last >= self.every:
            self.save()
        return True

    def _on_training_end(self) -> None:
        self.save()

    def save(self) -> None:
        self._last = self.num_timesteps
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model.save(self.folder / f"model_{self.num_timesteps}.zip")
        state = json.dumps(self.curriculum.state())
        (self.folder / f"state_{self.num_timesteps}.json").write_text(state + "\n", encoding="utf-8")


def checkpoint_steps(checkpoint: Path) -> int:
    """The training steps a checkpoint `model_<steps>.zip` was saved at."""
    return int(checkpoint.stem.removeprefix("model_"))


def latest_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint with its curriculum state, or None."""
    found = []
    for path in folder.glob("model_*.zip"):
        match = re.fullmatch(r"model_(\d+)\.zip", path.name)
        state = folder / f"state_{match[1]}.json" if match else None
        if match and state and state.is_file():
            found.append((int(match[1]), path, state))
    if not found:
        return None
    _, path, state = max(found)
    return path, json.loads(state.read_text(encoding="utf-8"))


def new_model(ppo: PPOSettings, env: Any, seed: int, tensorboard_log: str | None = None) -> MaskablePPO:
    """A fresh MaskablePPO agent (MLP policy, CPU) with `ppo`'s settings on `env` (a gym env or a
    VecEnv)."""
    return MaskablePPO(
        "MlpPolicy",
        env,
        **ppo.model_dump(exclude={"net_arch"}),  # stable-baselines3's names
        policy_kwargs={"net_arch": list(ppo.net_arch)},
        seed=seed,
        device="cpu",
        tensorboard_log=tensorboard_log,
    )


def _model(config: TrainConfig, env: VecEnv, resume: Path | None) -> MaskablePPO:
    tb = str(config.out / "tb")
    if resume is not None:
        return MaskablePPO.load(resume, env=env, device="cpu", tensorboard_log=tb)
    model = new_model(config.ppo, env, config.seed, tb)
    if config.init_from is not None:  # the weights only: the run's PPO settings stay
        try:
            model.set_parameters(str(config.init_from), exact_match=True, device="cpu")
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"its network does not fit the run's ({config.ppo.net_arch}): {first}",
                "init_from",
                config.init_from,
            ) from None
    return model


def obs_size(line: LineConfig, week: WeekConfig, settings: EnvSettings) -> int:
    """The length of the run's observation vector (as its env builds it)."""
    space: Any = LineEnv(line, [week], None, settings).observation_space
    return int(space.shape[0])


def check_init_from(path: Path, line: LineConfig, week: WeekConfig, settings: EnvSettings) -> None:
    """The model a run starts from must have been trained for the line's types with the run's env
    settings (else its observations mean something else): UsageError naming the model."""
    from agent.errors import ModelError
    from agent.planners.rl import load_model

    try:
        model, card = load_model(path)
    except ModelError as exc:
        raise UsageError(str(exc), "init_from") from None
    if card.types != line.types:
        raise UsageError(f"its card's types {card.types} are not the line's {line.types}", "init_from", path)
    if card.env_settings != settings:
        theirs, ours = card.env_settings.model_dump(), settings.model_dump()
        differ = ", ".join(f"{k} {theirs[k]!r} (run: {ours[k]!r})" for k in ours if theirs.get(k) != ours[k])
        raise UsageError(f"its card's env settings differ: {differ}", "init_from", path)
    space: Any = model.observation_space
    expected = (obs_size(line, week, settings),)
    if space.shape != expected:
        raise UsageError(f"it observes {space.shape}, the run's env {expected}", "init_from", path)


def check(config: TrainConfig) -> tuple[LineConfig, Curriculum, EnvSettings]:
    """Read every input of a run (line, weeks, curriculum, env settings) and check every batch size
    it will use against the line, before anything is written."""
    line = load_line(config.line)
    curriculum: Curriculum = load_curriculum(config.curriculum)
    settings = load_env_settings(config.env_settings) if config.env_settings else EnvSettings()
    weeks = _weeks(config, line)
    week = load_week(config.template_week, line) if isinstance(weeks, WeekGenerator) else weeks[0]
    try:
        Scenario.build(line, week, config.batch_size)
    except ValueError as exc:
        raise UsageError(str(exc), "batch_size") from None
    for i, task in enumerate(curriculum.tasks, 1):
        try:
            Scenario.build(line, week, task.batch_size or config.batch_size)
        except ValueError as exc:
            raise UsageError(f"curriculum {curriculum.name}, task {i}: {exc}") from None
    if config.init_from is not None:
        check_init_from(config.init_from, line, week, settings)
    if config.bc_data is not None:
        _expert(config, line, settings)
    return line, curriculum, settings


def _expert(config: TrainConfig, line: LineConfig, settings: EnvSettings) -> ExpertSteps:
    """The run's expert data, checked against its env."""
    assert config.bc_data is not None
    steps = load_expert_steps(config.bc_data, line.types, settings)
    size = obs_size(line, load_calendar(config.template_week, line), settings)
    check_expert_steps(steps, size, Observer.actions(len(line.types), settings), config.bc_data)
    return steps


def holds_run(out: Path) -> bool:
    """A folder a new run must not take: the config of a run with a checkpoint or a final model (one
    with only its config.json stopped before its first checkpoint and is started over)."""
    return (out / "config.json").exists() and (
        latest_checkpoint(out / "checkpoints") is not None or (out / "model.zip").exists()
    )


def run_progress(out: Path) -> tuple[int | None, bool]:
    """Steps a run folder got to (its newest checkpoint or summary; None: not started) and whether
    it met its final criterion."""
    summary = read_summary(out)
    found = latest_checkpoint(out / "checkpoints")
    steps = [checkpoint_steps(found[0])] if found else []
    if summary is not None:
        steps.append(summary.steps_done)
    return (max(steps) if steps else None), summary is not None and summary.final_criterion_met


def train(config: TrainConfig, resume: bool = False) -> TrainSummary:
    """Train (or continue) a run; returns its summary (also written to `summary.json`). A folder
    with only the config.json of a run that stopped before its first checkpoint is started over."""
    torch.set_num_threads(1)
    line, curriculum, settings = check(config)
    out = config.out
    checkpoints = out / "checkpoints"
    previous = read_summary(out)
    state: dict[str, Any] | None = None
    start_from: Path | None = None
    if resume:
        found = latest_checkpoint(checkpoints)
        if found is None:
            raise UsageError("no checkpoint to continue from", "resume", out)
        start_from, state = found
    elif holds_run(out):
        raise UsageError("a run is already there: resume it, or give another folder", "out", out)
    make_folder(out)
    (out / "config.json").write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")

    env = make_vec_env(config, line, settings)
    try:
        model = _model(config, env, start_from)
        steps_left = config.steps - model.num_timesteps
        tracker = CurriculumCallback(curriculum, state, verbose=1)
        if steps_left > 0 and not tracker.finished:
            saver = RunSaver(checkpoints, config.checkpoint_steps, tracker)
            callbacks: list[BaseCallback] = [tracker, saver]
            if config.bc_data is not None:
                expert = _expert(config, line, settings)
                callbacks.append(
                    ExpertAnchor(expert, config.bc_weight, config.bc_steps, config.bc_batch_size, config.seed)
                )
            if config.best_every > 0:
                held_out = held_out_weeks(line, load_calendar(config.template_week, line), config.best_weeks)
                callbacks.append(
                    BestKeeper(
                        out, config.best_every, line, held_out, _card(config, line, curriculum, settings)
                    )
                )
            start = time.perf_counter()
            model.learn(
                total_timesteps=steps_left,
                callback=CallbackList(callbacks),
                progress_bar=config.progress,
                reset_num_timesteps=not resume,
                tb_log_name="ppo",
            )
            wall = time.perf_counter() - start
        else:
            wall = 0.0
    finally:
        env.close()

    card = _card(config, line, curriculum, settings)
    save_model(model, out / "model.zip", card)
    summary = TrainSummary(
        run=str(config.out),
        command=config.command,
        curriculum=curriculum.name,
        batch_size=config.batch_size,
        seed=config.seed,
        steps_budget=config.steps,
        steps_done=model.num_timesteps,
        episodes=tracker.episodes,
        tasks=[
            TaskSummary(task=i + 1, learned_at_step=at, **task.model_dump())
            for i, (task, at) in enumerate(zip(curriculum.tasks, tracker.learned_at, strict=True))
        ],
        final_criterion_met=tracker.finished,
        steps_to_finish=tracker.learned_at[-1],
        wall_time_s=round((previous.wall_time_s if previous else 0.0) + wall, 1),
        evaluation=_evaluate(config, line, model, card),
    )
    summary.write(out)
    return summary


def _card(config: TrainConfig, line: LineConfig, curriculum: Curriculum, settings: EnvSettings) -> ModelCard:
    """The card of the run's models (its final batch size; the command names --init-from and
    the expert data where given)."""
    return ModelCard(
        types=line.types,
        env_settings=settings,
        batch_size=curriculum.tasks[-1].batch_size or config.batch_size,
        curriculum=curriculum.name,
        command=config.command,
    )


def _evaluate(
    config: TrainConfig, line: LineConfig, model: MaskablePPO, card: ModelCard
) -> EvaluationSummary:
    """Best-of-N and deterministic plans of the evaluation week at the final batch size."""
    week_path = config.template_week if config.weeks is None else config.weeks[0]
    scenario = Scenario.build(line, load_week(week_path, line), card.batch_size)
    result = evaluate(model, card, scenario, config.eval_plans, config.seed)

    def pick(plan: PlayedPlan) -> PlanSummary:
        return PlanSummary.of(plan.run.results, plan.episode_return, plan.seed)

    return EvaluationSummary(
        week=str(week_path),
        batch_size=card.batch_size,
        zero_idle=result.zero_idle,
        best=pick(result.best),
        deterministic=pick(result.deterministic),
    )
