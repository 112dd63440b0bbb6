"""DAgger labels: the agent plays generated weeks, and at a sample of the decisions it reaches the
exact programme from that state (`SequenceDp` on `ZeroIdleModel(scenario, snapshot)`) says which
type the least-effort zero-idle rest of the week starts with. States from which zero idle is out
of reach (or the programme's states do not fit) get no label."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sb3_contrib import MaskablePPO

from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import SequenceDp
from agent.training.expert import ExpertSettings, expert_week
from twin import Decision, Observer, Scenario, load_line
from twin.line import Engine, Line


@dataclass(frozen=True)
class Labels:
    """Visited states with the programme's first type: one row each."""

    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    asked: int
    """States sampled (some got no label)."""


def dagger_labels(
    model: MaskablePPO,
    settings: ExpertSettings,
    seeds: list[int],
    batch_size: int,
    per_week: int,
    rng: np.random.Generator,
    exact_states: int = 60_000,
) -> Labels:
    """The deterministic agent plays each week of `seeds`; about `per_week` of its decisions per
    week are labelled by the exact programme from the state it reached."""
    line = load_line(settings.line)
    n = len(line.types)
    width = Observer.size(n, settings.env_settings)
    obs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    actions: list[int] = []
    asked = 0
    for seed in seeds:
        scenario = Scenario.build(line, expert_week(settings, seed), batch_size)
        observer = Observer(scenario, settings.env_settings)
        twin = Line(scenario, Engine())
        request = twin.start()
        share = per_week / max(1, math.ceil(sum(request.remaining) / batch_size)) if request else 0.0
        while request is not None:
            assessment = observer.assess(request)
            seen, mask = observer.observe(request, assessment), observer.mask(assessment)
            if rng.random() < share:
                asked += 1
                rest = SequenceDp(ZeroIdleModel(scenario, twin.snapshot()))
                plan = rest.solve(exact_states, exact_only=True)
                if plan is not None and plan.sequence and mask[plan.sequence[0]]:
                    obs.append(seen.copy())
                    masks.append(mask.copy())
                    actions.append(int(plan.sequence[0]))
            action, _ = model.predict(seen, action_masks=mask, deterministic=True)
            request = twin.decide(Decision(int(np.asarray(action).item())))
    return Labels(
        obs=np.array(obs, dtype=np.float32).reshape(len(actions), width),
        masks=np.array(masks, dtype=bool).reshape(len(actions), n),
        actions=np.array(actions, dtype=np.int64),
        asked=asked,
    )
