"""The reward of `problem.md`: r = r_crit + r_safe + beta * r_setup, plus the deadlock penalty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.env_settings import EnvSettings, Task
from twin.observation import Assessment
from twin.results import Results

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class RewardTerms:
    """The parts of one decision's reward (already weighted and scaled)."""

    criticality: float = 0.0
    safety: float = 0.0
    setup: float = 0.0
    deadlock: float = 0.0

    @property
    def total(self) -> float:
        return self.criticality + self.safety + self.setup + self.deadlock


def criticality(assessment: Assessment, range_floor_s: int) -> np.ndarray:
    """Per type: units required in the demand window / range in hours (0 where nothing is required)."""
    hours = np.maximum(assessment.range_s, range_floor_s) / SECONDS_PER_HOUR
    ratio: np.ndarray = assessment.required_window / hours
    return ratio


def decision_reward(
    settings: EnvSettings,
    task: Task,
    setup_effort: float,
    batch_size: int,
    outcome: Assessment | Results,
) -> RewardTerms:
    """The reward of one decision: `beta * r_setup` of the batch it chose (`setup_effort`, `beta =
    setup_weight * task.setup_weight_scale`), plus what it led to: the next decision point's
    `Assessment` earns r_crit + r_safe, scaled by `batch_size / reference_batch_size`; the run's
    `Results` (the decision was the episode's last) the deadlock penalty, `deadlock_penalty * (1 -
    completion)` if it ended in deadlock."""
    beta = settings.setup_weight * task.setup_weight_scale
    setup = -beta * setup_effort
    if isinstance(outcome, Results):
        penalty = settings.deadlock_penalty * (1.0 - outcome.completion) if outcome.deadlock else 0.0
        return RewardTerms(setup=setup, deadlock=penalty)
    scale = batch_size / settings.reference_batch_size
    crit = -settings.criticality_weight * float(criticality(outcome, settings.range_floor_s).sum())
    below = int(np.count_nonzero(outcome.range_s < settings.safety_time_s))
    return RewardTerms(crit * scale, settings.safety_penalty * below * scale, setup)
