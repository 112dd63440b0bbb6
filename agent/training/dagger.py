"""DAgger labels (Ross, Gordon & Bagnell 2011): the agent plays generated weeks, and every decision
it reaches on a zero-idle path is labelled with the type the least-effort zero-idle rest of the
week starts with, read from the week's cost-to-go table (`agent.planners.cost_to_go`: one backward
programme per week answers every state). Decisions off a zero-idle path, and weeks whose states do
not fit the table, get no label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sb3_contrib import MaskablePPO

from agent.planners.cost_to_go import CostToGo
from agent.planners.deadlines import ZeroIdleModel
from agent.training.expert import ExpertData, ExpertSettings, expert_week
from twin import Decision, Observer, Scenario, load_line
from twin.line import Engine, Line


@dataclass(frozen=True)
class Labels:
    """Visited states with the programme's best type: one row each."""

    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    best: np.ndarray
    """Every type whose rest is as cheap as the label's, shape (rows, n), bool (ties are common)."""
    asked: int
    """Decisions reached (those off a zero-idle path got no label)."""
    agreed: int
    """Decisions at which the agent's own choice was one of the best."""


def dagger_labels(
    model: MaskablePPO,
    settings: ExpertSettings,
    seeds: list[int],
    batch_size: int,
    plays: int,
    rng: np.random.Generator,
    max_states: int = 60_000,
) -> Labels:
    """The agent plays each week of `seeds` `plays` times (deterministically first, then with its
    stochastic policy, seeded from `rng`); every decision it reaches is labelled."""
    line = load_line(settings.line)
    n = len(line.types)
    width = Observer.size(n, settings.env_settings)
    obs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    actions: list[int] = []
    best: list[np.ndarray] = []
    asked = agreed = 0
    for seed in seeds:
        scenario = Scenario.build(line, expert_week(settings, seed), batch_size)
        try:
            table = CostToGo(ZeroIdleModel(scenario), max_states)
        except ValueError:
            continue
        observer = Observer(scenario, settings.env_settings)
        engine = Engine()
        for play in range(plays):
            torch.manual_seed(int(rng.integers(2**31)))
            twin = Line(scenario, engine)
            request = twin.start()
            built = np.zeros(n, dtype=np.int64)
            while request is not None:
                assessment = observer.assess(request)
                seen, mask = observer.observe(request, assessment), observer.mask(assessment)
                action, _ = model.predict(seen, action_masks=mask, deterministic=play == 0)
                chosen = int(np.asarray(action).item())
                asked += 1
                values = np.where(mask, table.choices(built, request.last_type), np.inf)
                if np.isfinite(values).any() and twin.idle_so_far(request.time_s) == 0:
                    label = int(values.argmin())
                    obs.append(seen.copy())
                    masks.append(mask.copy())
                    actions.append(label)
                    best.append(values <= values[label])
                    agreed += bool(values[chosen] <= values[label])
                built[chosen] += 1
                request = twin.decide(Decision(chosen))
    return Labels(
        obs=np.array(obs, dtype=np.float32).reshape(len(actions), width),
        masks=np.array(masks, dtype=bool).reshape(len(actions), n),
        actions=np.array(actions, dtype=np.int64),
        best=np.array(best, dtype=bool).reshape(len(actions), n),
        asked=asked,
        agreed=agreed,
    )


def best_sets(data: ExpertData, max_states: int = 60_000) -> np.ndarray:
    """For each row of expert data, every type as good as the expert's (shape (rows, n), bool):
    the plan's states are looked up in its week's cost-to-go table; where the table does not fit
    (b = 10, 20) or a state is off a zero-idle path, the expert's action alone."""
    n = data.masks.shape[1]
    out = np.zeros((len(data.actions), n), dtype=bool)
    out[np.arange(len(data.actions)), data.actions] = True
    line = load_line(data.settings.line)
    for episode in np.unique(data.episodes):
        rows = np.flatnonzero(data.episodes == episode)
        week = expert_week(data.settings, int(data.seeds[rows[0]]))
        scenario = Scenario.build(line, week, int(data.batch_sizes[rows[0]]))
        try:
            table = CostToGo(ZeroIdleModel(scenario), max_states)
        except ValueError:
            continue
        built = np.zeros(n, dtype=np.int64)
        last = table.model.previous
        for row in rows:
            values = np.where(data.masks[row], table.choices(built, last), np.inf)
            k = int(data.actions[row])
            if np.isfinite(values[k]):
                out[row] = values <= values[k]
            built[k] += 1
            last = k
    return out
