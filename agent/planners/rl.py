"""A trained MaskablePPO agent as a planner: it answers the twin's decision requests like a rule.

A model is a `.zip` (stable-baselines3) with a `.json` card beside it naming the line's types, the
env settings its observations were built with, and the command that trained it. A missing or
incompatible model is an error, never a silent fallback to another planner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from sb3_contrib import MaskablePPO

from agent.errors import ModelError
from agent.planners.policies import Policy
from twin import Decision, DecisionRequest, EnvSettings, Observer, Scenario
from twin.config import load_json_model
from twin.files import not_regular
from twin.observation import Assessment


class ModelCard(BaseModel):
    """What a model needs besides its weights to plan: written next to it as `<model>.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: list[str]
    env_settings: EnvSettings
    batch_size: int
    curriculum: str
    command: str = ""
    made_by: list[str] = []
    """Every command that made the model, in order (data, imitation, fine-tune), when more than
    `command` did."""
    figures: dict[str, str] = {}
    """Measured figures of the model, each with the command that measured it."""


def card_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def save_model(model: MaskablePPO, path: Path, card: ModelCard) -> None:
    """Save the weights (`path`, a .zip) and the card beside them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    card_path(path).write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_model(path: Path | str) -> tuple[MaskablePPO, ModelCard]:
    path = Path(path)
    if path.is_dir():
        path = path / "model.zip"
    for file in (path, card_path(path)):
        if (kind := not_regular(file)) is not None:  # a FIFO would block, a device never end
            raise ModelError(f"{file}: {kind}")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if not card_path(path).is_file():
        raise ModelError(f"{card_path(path)}: model card not found (every model is saved with one)")
    card = load_json_model(card_path(path), ModelCard)  # a mistake: one line naming file and key
    try:
        model = MaskablePPO.load(path, device="cpu")
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the model: {exc}") from None
    return model, card


class RLPolicy(Policy):
    """Plans with a trained agent: stochastic (seeded by `reset`) or deterministic."""

    name = "rl"

    def __init__(
        self, model: MaskablePPO, card: ModelCard, deterministic: bool = True, seed: int = 0
    ) -> None:
        self.model = model
        self.card = card
        self.deterministic = deterministic
        self.seed = seed
        self._observer: Observer | None = None
        self.name = "rl" if deterministic else "rl-stochastic"

    @classmethod
    def from_file(cls, path: Path | str, deterministic: bool = True, seed: int = 0) -> RLPolicy:
        model, card = load_model(path)
        return cls(model, card, deterministic, seed)

    def check(self, scenario: Scenario) -> None:
        """Raise ModelError when the model cannot plan for this line."""
        if scenario.types != self.card.types:
            raise ModelError(
                f"the model was trained for types {self.card.types}, the line has {scenario.types}"
            )
        expected = (Observer.size(len(scenario.types), self.card.env_settings),)
        space: Any = self.model.observation_space
        if space.shape != expected:
            raise ModelError(f"the model observes {space.shape}, this line needs {expected}")

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        torch.manual_seed(self.seed)

    def _observation(self, request: DecisionRequest) -> tuple[np.ndarray, np.ndarray, Assessment]:
        """The agent's observation of the request, its action mask and the assessment."""
        scenario = request.scenario
        observer = self._observer
        if observer is None or observer.scenario is not scenario:
            self.check(scenario)
            observer = self._observer = Observer(scenario, self.card.env_settings)
        assessment = observer.assess(request)
        return observer.observe(request, assessment), observer.mask(assessment), assessment

    def decide(self, request: DecisionRequest) -> Decision:
        obs, mask, assessment = self._observation(request)
        action, _ = self.model.predict(obs, action_masks=mask, deterministic=self.deterministic)
        k = Observer.chosen(assessment, int(np.asarray(action).item()))
        assert k is not None  # the masked policy chooses an allowed action
        return Decision(k)

    def preference(self, request: DecisionRequest) -> tuple[int, ...]:
        """The valid types best first (searches try them in this order): by the probability the
        agent gives them (the first is its deterministic choice; with slot actions the types
        outside the slots follow in type order)."""
        obs, mask, assessment = self._observation(request)
        tensor, _ = self.model.policy.obs_to_tensor(obs)
        with torch.no_grad():
            distribution = self.model.policy.get_distribution(tensor, action_masks=mask)
        categorical = distribution.distribution  # one Categorical: the action is one type
        assert isinstance(categorical, torch.distributions.Categorical)
        probs = categorical.probs[0].numpy()

        def prob(k: int) -> float:
            action = Observer.action_of(assessment, k)
            return -1.0 if action is None else float(probs[action])

        return tuple(sorted(request.valid, key=lambda k: (-prob(k), k)))
