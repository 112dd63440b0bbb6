"""Constants of the RL formulation (`problem.md`, "The RL formulation"), each with its unit.

`EnvSettings` is what a line's owner tunes once (`config/env.toml`); a `Task` is what a curriculum
changes between its stages (mask, setup-penalty weight, batch size)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from twin.config import load_toml_model


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


class EnvSettings(_Settings):
    """Observation and reward constants of the gym env (defaults: this project's reference)."""

    demand_window_s: Annotated[int, Field(gt=0)] = 86_400
    """Look-ahead of "units required in the next 24 h", in working seconds (24 h)."""
    range_scale_s: Annotated[int, Field(gt=0)] = 14_400
    """Range observed as range / range_scale_s, capped at 1 (4 h: ranges matter most when short)."""
    safety_time_s: Annotated[int, Field(ge=0)] = 1_800
    """A type whose range is below this many working seconds (30 min) earns `safety_penalty`."""
    safety_penalty: Annotated[float, Field(le=0)] = -10.0
    """Reward per type below the safety time, per decision (r_safe)."""
    criticality_weight: Annotated[float, Field(ge=0)] = 0.001
    """Reward per unit of criticality: r_crit = -weight * sum_k required_24h(k) / range(k), with the
    requirement in units and the range in hours (criticality in units per hour)."""
    range_floor_s: Annotated[int, Field(gt=0)] = 900
    """Smallest range used in the criticality (15 min), so a type that has run out stays finite."""
    setup_weight: Annotated[float, Field(ge=0)] = 0.1
    """beta*: reward per unit of setup effort (r = ... + beta * r_setup, r_setup = -S[prev][next])."""
    reference_batch_size: Annotated[int, Field(gt=0)] = 50
    """r_crit and r_safe are scaled by batch_size / reference_batch_size (the paper's normalisation)."""
    deadlock_penalty: Annotated[float, Field(le=0)] = -1000.0
    """Reward when an episode ends in deadlock, times the share of planned units never built; 0 gives
    the paper's env, in which filling the buffer until deadlock shortens the episode and pays."""
    observation: Literal["basic", "deadlines", "runs", "compact"] = "basic"
    """`basic`: the paper's features (4n + 3); `deadlines` adds per type the freedom left in the
    demand window if it is built now and the position of its next deadline (6n + 3); `runs` also
    how many batches of it the PAS can build in a row and still meet every deadline (7n + 3;
    `twin.slack`). `compact`, for lines with many types: the action is a slot of the `top_k`
    candidates (cheapest changeover first), observed one by one, plus the `families` setup
    families aggregated, most urgent first (`8 top_k + 6 families + 4` features, whatever the
    number of types; `twin.observation`)."""
    top_k: Annotated[int, Field(gt=0, le=64)] = 8
    """`compact` only: the candidate types the agent sees and chooses among (its actions)."""
    families: Annotated[int, Field(gt=0, le=64)] = 6
    """`compact` only: the setup families observed (the most urgent; the line's others unseen)."""
    slack_horizon_s: Annotated[int, Field(gt=0)] | None = None
    """Deadlines of the takes beyond this many working seconds from now are not checked by the
    `deadlines` features and mask (None: the whole week; a plant-size week costs O(positions x
    types) per decision without one)."""
    mask: Literal["remaining", "deadlines"] = "remaining"
    """`remaining`: every type with a positive remaining requirement (`problem.md`); `deadlines`:
    of those, the types after which every zero-idle deadline can still be met (all of them when
    none can; `twin.slack`)."""


class Task(_Settings):
    """One stage of a curriculum: what the env changes for it."""

    mask_top_k: Annotated[int, Field(gt=0)] | None = None
    """Restrict the action mask to the k most urgent valid types (curriculum A, task 1: 3)."""
    setup_weight_scale: Annotated[float, Field(ge=0, le=1)] = 1.0
    """Fraction of `EnvSettings.setup_weight` in force (0 = setup effort ignored)."""
    batch_size: Annotated[int, Field(gt=0)] | None = None
    """Batch size of this task (curriculum C); None keeps the env's batch size."""


def load_env_settings(path: Path | str) -> EnvSettings:
    """Read `env.toml`; every error names the file, the key and the bad value."""
    return load_toml_model(path, EnvSettings)
