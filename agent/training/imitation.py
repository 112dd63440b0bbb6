"""Behaviour cloning: the MaskablePPO policy learns the expert's action at each recorded decision.

The loss per minibatch is the negative log-probability of the expert's action under the masked
action distribution, minus a small entropy bonus, plus the value head's squared error against the
expert trajectory's discounted env return (so PPO fine-tuning starts with a warm critic). About a
tenth of the weeks (all their batch sizes) are held out: their NLL and accuracy are said per epoch.
The model is saved with its card (`curriculum = "imitation"`) like a trained one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from sb3_contrib import MaskablePPO

from agent.errors import UsageError
from agent.folders import make_folder
from agent.planners.rl import ModelCard, load_model, save_model
from agent.training.dagger import best_sets, dagger_labels
from agent.training.expert import ExpertData, load_expert
from agent.training.train import PPOSettings, new_model
from twin import LineEnv, load_calendar, load_line


class ImitationConfig(BaseModel):
    """One behaviour-cloning run, as `linetwin imitate` takes it."""

    model_config = ConfigDict(extra="forbid")

    data: list[Path]
    out: Path
    epochs: Annotated[int, Field(gt=0)] = 30
    seed: int = 0
    init_from: Path | None = None
    """Start from this model (its card must match the data's types and env settings)."""
    ppo: PPOSettings = Field(default_factory=PPOSettings)
    """A new model's settings (network, gamma of the returns the critic learns)."""
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    minibatch: Annotated[int, Field(gt=0)] = 256
    entropy_coef: Annotated[float, Field(ge=0)] = 1e-3
    value_coef: Annotated[float, Field(ge=0)] = 0.5
    holdout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Share of the weeks held out for validation (at least one when there are two or more)."""
    dagger_rounds: Annotated[int, Field(ge=0, le=100)] = 0
    """Rounds of DAgger after cloning: the agent plays new weeks, the cost-to-go table labels every
    zero-idle state it reaches, and `epochs` more epochs learn from all the data."""
    dagger_weeks: Annotated[int, Field(gt=0, le=100_000)] = 20
    """Generated weeks per round (seeds from `dagger_first_seed` on, new ones every round)."""
    best_sets: bool = True
    """Learn every type as good as the expert's (the cost-to-go tables' ties, where they fit) rather
    than the expert's own choice: the loss is -log of their total probability."""
    dagger_plays: Annotated[int, Field(gt=0)] = 2
    """Plays of each DAgger week: the deterministic one, then stochastic ones (each labelled in
    full; one table of ~0.3 s per week at b = 50)."""
    dagger_first_seed: int = 1_000_000
    dagger_batch_size: Annotated[int, Field(gt=0)] = 50
    command: str = ""


class ImitationSummary(BaseModel):
    """What a run learned, per epoch (index 0: before the first epoch)."""

    train_steps: int
    validation_steps: int
    validation_seeds: list[int]
    train_nll: list[float]
    validation_nll: list[float]
    validation_accuracy: list[float]
    value_rmse: list[float]
    dagger_labels: list[int] = Field(default_factory=list)
    """Labels added per DAgger round."""
    wall_s: float
    command: str


def discounted_returns(rewards: np.ndarray, episodes: np.ndarray, gamma: float) -> np.ndarray:
    """Per row the discounted sum of its episode's rewards from there to the episode's end."""
    returns = np.zeros(len(rewards), dtype=np.float32)
    following = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        if i == len(rewards) - 1 or episodes[i + 1] != episodes[i]:
            following = 0.0
        following = float(rewards[i]) + gamma * following
        returns[i] = following
    return returns


def split_weeks(seeds: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Rows whose week is held out (True): a seeded share of the distinct week seeds."""
    weeks = np.unique(seeds)
    held = round(len(weeks) * share) if share > 0 else 0
    if share > 0 and len(weeks) > 1:
        held = min(max(held, 1), len(weeks) - 1)
    chosen = np.random.default_rng(seed).choice(weeks, size=held, replace=False)
    return np.isin(seeds, chosen)


def _model(config: ImitationConfig, data: ExpertData) -> tuple[MaskablePPO, int]:
    """A new model (or `init_from`'s) for the data's observation; and its card's batch size."""
    settings = data.settings
    sizes, counts = np.unique(data.batch_sizes, return_counts=True)
    line = load_line(settings.line)
    size = line.pas.batch_size if line.pas.batch_size in sizes else int(sizes[np.argmax(counts)])
    if config.init_from is not None:
        model, card = load_model(config.init_from)
        if card.types != settings.types or card.env_settings != settings.env_settings:
            raise UsageError(
                "the model's card has other types or env settings than the expert data",
                "init_from",
                config.init_from,
            )
        return model, size
    env = LineEnv(line, [load_calendar(settings.template_week, line)], size, settings.env_settings)
    if env.observation_space.shape != data.obs.shape[1:]:
        raise UsageError(
            f"observations of {data.obs.shape[1]} features, the env's have {env.observation_space.shape}",
            "data",
            config.data[0],
        )
    return new_model(config.ppo, env, config.seed), size


def _set_nll(
    model: MaskablePPO, obs: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, Any]:
    """Per row -log of the probability the policy gives the target types (any of them is as good
    as the expert's choice), and the distribution."""
    dist = model.policy.get_distribution(obs, action_masks=masks.numpy())
    categorical = dist.distribution  # one Categorical: the action is one type
    assert isinstance(categorical, torch.distributions.Categorical)
    log_probs = categorical.logits  # normalised log-probabilities; masked types ~ -1e8
    return -torch.logsumexp(log_probs.masked_fill(~targets, -torch.inf), dim=1), dist


def _measure(
    model: MaskablePPO,
    obs: torch.Tensor,
    masks: torch.Tensor,
    targets: torch.Tensor,
    returns: torch.Tensor,
    known: torch.Tensor,
) -> tuple[float, float, float]:
    """Mean NLL of the target sets, the share of rows the deterministic policy chooses a target
    type in, value RMSE."""
    if len(targets) == 0:
        return float("nan"), float("nan"), float("nan")
    policy = model.policy
    nll = correct = squared = 0.0
    with torch.no_grad():
        for start in range(0, len(targets), 4096):
            part = slice(start, start + 4096)
            loss, dist = _set_nll(model, obs[part], masks[part], targets[part])
            chosen = dist.get_actions(deterministic=True)
            values = policy.predict_values(obs[part])
            nll += float(loss.sum())
            correct += float(targets[part][torch.arange(len(chosen)), chosen].sum())
            squared += float(((values.flatten() - returns[part])[known[part]] ** 2).sum())
    n = len(targets)
    return nll / n, correct / n, (squared / max(1, int(known.sum()))) ** 0.5


def imitate(config: ImitationConfig) -> ImitationSummary:
    """Clone the data's plans into a MaskablePPO policy; save `out/model.zip`, its card and
    `out/imitation.json`."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    data = load_expert(config.data)
    if config.dagger_rounds and data.settings.env_settings.observation == "compact":
        raise UsageError(
            "DAgger labels types with the cost-to-go tables; the compact observation's actions "
            "are slots (and its lines too large for the tables): give 0",
            "dagger_rounds",
            config.dagger_rounds,
        )
    torch.manual_seed(config.seed)
    model, batch_size = _model(config, data)
    make_folder(config.out)  # after every check: a refused run writes nothing
    gamma = float(model.gamma)
    returns_all = discounted_returns(data.rewards, data.episodes, gamma)
    held = split_weeks(data.seeds, config.holdout, config.seed)
    obs = torch.as_tensor(data.obs)
    masks = torch.as_tensor(data.masks)
    slots = data.settings.env_settings.observation == "compact"  # actions are slots, not types
    if config.best_sets and not slots:
        print("imitation: looking up the types as good as the expert's (cost-to-go tables)", flush=True)
        targets = torch.as_tensor(best_sets(data))
    else:  # a row whose expert type was outside the slots (action -1) has no target: left out
        labelled = np.flatnonzero(data.actions >= 0)
        targets = torch.zeros(data.masks.shape, dtype=torch.bool)
        targets[labelled, data.actions[labelled]] = True
    returns = torch.as_tensor(returns_all)
    target = targets.any(dim=1).numpy()
    train_rows = np.flatnonzero(~held & target)
    val_rows = np.flatnonzero(held & target)
    policy = model.policy
    if config.init_from is None and len(train_rows):  # the critic starts at the mean return
        with torch.no_grad():
            policy.value_net.bias.fill_(float(returns[train_rows].mean()))
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)

    def measure(rows: np.ndarray) -> tuple[float, float, float]:
        return _measure(model, obs[rows], masks[rows], targets[rows], returns[rows], has_return[rows])

    train_nll, val_nll, val_acc, rmse = [], [], [], []
    total_epochs = config.epochs * (1 + config.dagger_rounds)

    def record(epoch: int) -> None:
        policy.set_training_mode(False)
        t_nll, _, _ = measure(train_rows)
        v_nll, v_acc, v_rmse = measure(val_rows if len(val_rows) else train_rows)
        train_nll.append(round(t_nll, 5))
        val_nll.append(round(v_nll, 5))
        val_acc.append(round(v_acc, 5))
        rmse.append(round(v_rmse, 3))
        print(
            f"imitation: epoch {epoch}/{total_epochs}: train NLL {t_nll:.3f}, validation NLL {v_nll:.3f}, "
            f"accuracy {v_acc:.3f}, value RMSE {v_rmse:.1f}, {time.perf_counter() - start:.1f} s",
            flush=True,
        )

    has_return = torch.ones(len(targets), dtype=torch.bool)  # DAgger's labels have none

    def epochs(first_epoch: int) -> None:
        for epoch in range(first_epoch, first_epoch + config.epochs):
            policy.set_training_mode(True)
            order = rng.permutation(train_rows)
            for first in range(0, len(order), config.minibatch):
                rows = order[first : first + config.minibatch]
                nll, dist = _set_nll(model, obs[rows], masks[rows], targets[rows])
                entropy = dist.entropy()
                assert entropy is not None
                values = policy.predict_values(obs[rows])
                known = has_return[rows]
                value_loss = (
                    torch.nn.functional.mse_loss(values.flatten()[known], returns[rows][known])
                    if bool(known.any())
                    else torch.zeros(())
                )
                loss = nll.mean() - config.entropy_coef * entropy.mean() + config.value_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
                optimizer.step()
            record(epoch)

    record(0)
    epochs(1)
    added: list[int] = []
    for round_ in range(config.dagger_rounds):
        policy.set_training_mode(False)
        first_seed = config.dagger_first_seed + round_ * config.dagger_weeks
        seeds = list(range(first_seed, first_seed + config.dagger_weeks))
        labels = dagger_labels(
            model, data.settings, seeds, config.dagger_batch_size, config.dagger_plays, rng
        )
        added.append(len(labels.actions))
        print(
            f"imitation: DAgger round {round_ + 1}/{config.dagger_rounds}: {len(labels.actions)} labels of "
            f"{labels.asked} decisions ({len(seeds)} weeks; the agent chose a best type at "
            f"{labels.agreed / max(1, len(labels.actions)):.1%}), {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        fresh = np.arange(len(targets), len(targets) + len(labels.actions))
        obs = torch.cat([obs, torch.as_tensor(labels.obs)])
        masks = torch.cat([masks, torch.as_tensor(labels.masks)])
        targets = torch.cat([targets, torch.as_tensor(labels.best)])
        returns = torch.cat([returns, torch.zeros(len(fresh))])
        has_return = torch.cat([has_return, torch.zeros(len(fresh), dtype=torch.bool)])
        train_rows = np.concatenate([train_rows, fresh])
        epochs(1 + (round_ + 1) * config.epochs)

    card = ModelCard(
        types=data.settings.types,
        env_settings=data.settings.env_settings,
        batch_size=batch_size,
        curriculum="imitation",
        command=config.command,
    )
    save_model(model, config.out / "model.zip", card)
    summary = ImitationSummary(
        train_steps=len(train_rows),
        validation_steps=len(val_rows),
        validation_seeds=sorted(int(s) for s in np.unique(data.seeds[held])),
        train_nll=train_nll,
        validation_nll=val_nll,
        validation_accuracy=val_acc,
        value_rmse=rmse,
        dagger_labels=added,
        wall_s=round(time.perf_counter() - start, 1),
        command=config.command,
    )
    (config.out / "imitation.json").write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return summary
