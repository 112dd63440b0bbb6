"""The expert kept in a PPO fine-tune: after every PPO update, a few minibatch steps of behaviour
cloning (the negative log-probability of the expert's action under the masked policy), scaled by a
weight, with the policy's own optimizer. Without it PPO with the shaped reward drifts back to the
short-sighted style (issue 18: 200k steps took an imitation agent from ~250 back to ~550 effort)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from agent.errors import UsageError
from twin import EnvSettings


@dataclass(frozen=True)
class ExpertSteps:
    """Expert decisions: observations (float32), the action masks in force, the actions taken."""

    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


def load_expert_steps(folder: Path, types: list[str], settings: EnvSettings) -> ExpertSteps:
    """The decisions of every plan of an expert data folder (`linetwin expert`), which must have been
    recorded for the run's types and env settings. Raises UsageError naming the folder."""
    from agent.training.expert import load_expert

    try:
        data = load_expert(folder)
    except UsageError as exc:
        raise UsageError(exc.reason, "bc_data", folder) from None
    made = data.settings
    if made.types != types:
        raise UsageError(f"recorded for types {made.types}, the run's line has {types}", "bc_data", folder)
    if made.env_settings != settings:
        theirs, ours = made.env_settings.model_dump(), settings.model_dump()
        differ = ", ".join(f"{k} {theirs[k]!r} (run: {ours[k]!r})" for k in ours if theirs.get(k) != ours[k])
        raise UsageError(f"recorded under other env settings: {differ}", "bc_data", folder)
    labelled = data.actions >= 0  # -1: the expert's type was not among the slots (`compact`)
    return ExpertSteps(
        np.asarray(data.obs[labelled], dtype=np.float32),
        np.asarray(data.masks[labelled], dtype=bool),
        data.actions[labelled].astype(np.int64),
    )


def check_expert_steps(steps: ExpertSteps, obs_size: int, n_actions: int, folder: Path) -> None:
    """The data must fit the run's observation and mask, and every action lie inside its mask."""
    if steps.obs.shape[1:] != (obs_size,) or steps.masks.shape[1:] != (n_actions,):
        raise UsageError(
            f"the expert data observes {steps.obs.shape[1:]} with masks {steps.masks.shape[1:]}, "
            f"the run's env {(obs_size,)} with {(n_actions,)} (other env settings or line?)",
            "bc_data",
            folder,
        )
    outside = ~steps.masks[np.arange(len(steps)), steps.actions]
    if outside.any():
        raise UsageError(f"{int(outside.sum())} expert actions lie outside their mask", "bc_data", folder)


class ExpertAnchor(BaseCallback):
    """After each PPO update: `steps` minibatches (`batch_size` expert decisions each) of
    `weight` x mean(-log pi(expert action | obs, mask)), with the policy's optimizer."""

    def __init__(self, data: ExpertSteps, weight: float, steps: int, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.data = data
        self.weight = weight
        self.steps = steps
        self.batch_size = min(batch_size, len(data))
        self.rng = np.random.default_rng(seed)
        self.updates_seen = 0
        self.losses: list[float] = []
        """The mean negative log-probability of each anchoring (before its steps)."""

    def _on_training_start(self) -> None:
        self.updates_seen = self._updates()

    def _updates(self) -> int:
        return int(getattr(self.model, "_n_updates", 0))

    def _on_rollout_start(self) -> None:
        """Called after the previous update (the first rollout has none before it)."""
        if self._updates() > self.updates_seen and self.weight > 0:
            self.anchor()
        self.updates_seen = self._updates()

    def _on_training_end(self) -> None:
        if self._updates() > self.updates_seen and self.weight > 0:
            self.anchor()

    def _on_step(self) -> bool:
        return True

    def anchor(self) -> None:
        """`steps` behaviour-cloning steps on random expert minibatches."""
        policy = self.model.policy
        policy.set_training_mode(True)
        max_norm = float(getattr(self.model, "max_grad_norm", 0.5))
        first: float | None = None
        for _ in range(self.steps):
            pick = self.rng.choice(len(self.data), self.batch_size, replace=False)
            obs = torch.as_tensor(self.data.obs[pick])
            actions = torch.as_tensor(self.data.actions[pick])
            _, log_prob, _ = policy.evaluate_actions(  # type: ignore[operator]
                obs, actions, action_masks=self.data.masks[pick]
            )
            nll = -log_prob.mean()
            if first is None:
                first = float(nll.detach())
            policy.optimizer.zero_grad()
            (self.weight * nll).backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
            policy.optimizer.step()
        policy.set_training_mode(False)
        if first is not None:
            self.losses.append(first)
            self.logger.record("expert/nll", first)
