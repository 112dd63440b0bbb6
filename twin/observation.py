"""What the agent sees at a decision point: per type the demand ahead and the range of the buffer
stock, plus fill level and last type, normalised; and which types it may choose."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.decision import DecisionRequest
from twin.env_settings import EnvSettings
from twin.forecast import Forecast
from twin.scenario import Scenario
from twin.slack import PositionSlack

OBS_LOW, OBS_HIGH = -1.0, 2.0
"""Bounds of every observation feature."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """A decision point seen through the forecast (times in working seconds)."""

    required_window: np.ndarray
    """Units per type the FAS take in the demand window beyond the buffer stock (>= 0)."""
    remaining: np.ndarray
    """Units per type still to take until the end of the plans, net of buffer stock."""
    range_s: np.ndarray
    """Working time until the stock of each type runs out; inf when it lasts the whole window."""
    candidates: tuple[int, ...]
    """The types the agent may choose (the action mask)."""
    freedom: np.ndarray | None = None
    """Per type the positions of freedom left in the demand window if it is built now (negative:
    a deadline will be missed); None unless the settings observe or mask deadlines."""
    first_due: np.ndarray | None = None
    """Per type the position by which its next batch must enter (inf: none due); None likewise."""
    runs: np.ndarray | None = None
    """Per type the batches it can be built in a row meeting every deadline (observation `runs`)."""


class Observer:
    """Turns decision requests of one scenario into assessments and observation vectors."""

    def __init__(self, scenario: Scenario, settings: EnvSettings) -> None:
        self.scenario = scenario
        self.settings = settings
        self.n_types = len(scenario.types)
        self.window_s = settings.demand_window_s
        self.window_units = sum(self.window_s / unit for unit in scenario.fas_unit_s)
        self.week_s = scenario.calendar.week_work_s
        self.capacity = scenario.line.buffer.capacity

    @staticmethod
    def size(n_types: int, settings: EnvSettings | None = None) -> int:
        """Length of the observation vector for a line with `n_types` types."""
        extra = {"basic": 0, "deadlines": 2, "runs": 3}[settings.observation if settings else "basic"]
        return (4 + extra) * n_types + 3

    def assess(self, request: DecisionRequest, mask_top_k: int | None = None) -> Assessment:
        forecast = Forecast(request)
        now = request.time_s
        stock = np.asarray(request.stock, dtype=np.int64)
        required = np.maximum(forecast.demand(now, now + self.window_s) - stock, 0)
        range_s = np.full(self.n_types, np.inf)
        for k in np.flatnonzero(required):
            runout = forecast.runout_s(int(k))
            assert runout is not None  # the window's demand exceeds the stock
            range_s[k] = runout - now
        remaining = np.asarray(request.remaining, dtype=np.int64)
        candidates = request.valid
        freedom = first_due = runs = None
        if self.settings.observation != "basic" or self.settings.mask == "deadlines":
            slack = PositionSlack(request, forecast)
            freedom, first_due = slack.freedom(self.window_s), slack.first_due
            if self.settings.observation == "runs":  # longer runs than 2 buffers' worth show as 2
                runs = slack.runs(int(OBS_HIGH * self.capacity / request.batch_size) + 1)
            if self.settings.mask == "deadlines":
                meets = slack.meets()
                candidates = tuple(k for k in candidates if meets[k]) or candidates
        if mask_top_k is not None and len(candidates) > mask_top_k:
            urgency = sorted(candidates, key=lambda k: (range_s[k], -required[k], -remaining[k], k))
            candidates = tuple(sorted(urgency[:mask_top_k]))
        return Assessment(required, remaining, range_s, candidates, freedom, first_due, runs)

    def mask(self, assessment: Assessment) -> np.ndarray:
        mask = np.zeros(self.n_types, dtype=bool)
        mask[list(assessment.candidates)] = True
        return mask

    def observe(self, request: DecisionRequest, assessment: Assessment) -> np.ndarray:
        """The observation vector (see `LineEnv` for its table)."""
        n = self.n_types
        obs = np.zeros(self.size(n, self.settings), dtype=np.float32)
        obs[:n] = assessment.required_window / self.capacity
        obs[n : 2 * n] = assessment.remaining / self.window_units
        obs[2 * n : 3 * n] = np.minimum(assessment.range_s / self.settings.range_scale_s, 1.0)
        if request.last_type is not None:
            obs[3 * n + request.last_type] = 1.0
        obs[4 * n] = sum(request.stock) / self.capacity
        obs[4 * n + 1] = request.time_s / self.week_s
        obs[4 * n + 2] = request.batch_size / self.capacity
        if self.settings.observation != "basic":
            assert assessment.freedom is not None and assessment.first_due is not None
            units = request.batch_size / self.capacity  # positions as buffer shares: b-invariant
            obs[4 * n + 3 : 5 * n + 3] = assessment.freedom * units
            obs[5 * n + 3 : 6 * n + 3] = np.minimum(assessment.first_due * units, OBS_HIGH)
        if self.settings.observation == "runs":
            assert assessment.runs is not None
            obs[6 * n + 3 : 7 * n + 3] = assessment.runs * units
        return np.clip(obs, OBS_LOW, OBS_HIGH, out=obs)
