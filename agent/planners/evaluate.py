"""The paper's evaluation: a trained agent plans a week 20 times with its stochastic policy and once
deterministically; the best plan by the ranking of `problem.md` is kept."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from sb3_contrib import MaskablePPO

from agent.planners.rl import ModelCard
from agent.planners.run import PlannedRun
from twin import LineEnv, Scenario, Task
from twin.results import rank_key


@dataclass
class PlayedPlan:
    """One plan the agent made: the run, the return it earned and the seed of its draws (None for
    the deterministic plan)."""

    run: PlannedRun
    episode_return: float
    seed: int | None = None


@dataclass
class Evaluation:
    """All plans of one evaluation; `best` wins by the ranking (deterministic included)."""

    best: PlayedPlan
    deterministic: PlayedPlan
    stochastic: list[PlayedPlan]

    @property
    def zero_idle(self) -> bool:
        best = self.best.run.results
        return not best.deadlock and best.idle_s == 0


def play(env: LineEnv, model: MaskablePPO, deterministic: bool, seed: int) -> PlayedPlan:
    """Plan the env's (first) week once; `seed` fixes the stochastic policy's draws."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed, options={"week": 0})
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=deterministic)
        obs, reward, done, _, _ = env.step(int(action))
        total += reward
    results, trace = env.results()
    name = "rl (deterministic)" if deterministic else f"rl (stochastic, seed {seed})"
    run = PlannedRun(name, results, trace, time.perf_counter() - start)
    return PlayedPlan(run, total, None if deterministic else seed)


def evaluate(
    model: MaskablePPO,
    card: ModelCard,
    scenario: Scenario,
    plans: int = 20,
    seed: int = 0,
    until: float | None = None,
) -> Evaluation:
    """`plans` stochastic plans (seeds seed, seed+1, ...) and the deterministic plan of one week,
    with the normal mask and the full setup penalty. `until`: a `time.perf_counter()` instant after
    which no further stochastic plan starts (the deterministic one is always played)."""
    env = LineEnv(scenario.line, [scenario.week], scenario.batch_size, card.env_settings, Task())
    stochastic = []
    for i in range(plans):
        if until is not None and time.perf_counter() > until:
            break
        stochastic.append(play(env, model, False, seed + i))
    deterministic = play(env, model, True, seed)
    best = min([*stochastic, deterministic], key=lambda p: rank_key(p.run.results))
    return Evaluation(best, deterministic, stochastic)
