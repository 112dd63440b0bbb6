"""The reward of `problem.md`: r = r_crit + r_safe + beta * r_setup, plus the deadlock penalty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.env_settings import EnvSettings
from twin.observation import Assessment

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


def state_terms(assessment: Assessment | None, settings: EnvSettings, batch_size: int) -> tuple[float, float]:
    """(r_crit, r_safe) of the state a decision led to, scaled by batch_size / reference batch size;
    zero once the PAS has nothing left to decide."""
    if assessment is None:
        return 0.0, 0.0
    scale = batch_size / settings.reference_batch_size
    crit = -settings.criticality_weight * float(criticality(assessment, settings.range_floor_s).sum())
    below = int(np.count_nonzero(assessment.range_s < settings.safety_time_s))
    return crit * scale, settings.safety_penalty * below * scale
