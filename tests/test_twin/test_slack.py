"""The deadline slack at a decision point (`twin.slack`): exactly the zero-idle orders on tiny
weeks (brute force), the exact planners' deadline model on a reference week, and the env's
`deadlines` mask and observation."""

from __future__ import annotations

import numpy as np
import pytest
from bruteforce import tiny_best, tiny_week

from agent.planners.deadlines import ZeroIdleModel
from twin import Decision, EnvSettings
from twin.config import default_config_dir, load_line, load_week
from twin.env import LineEnv
from twin.forecast import Forecast
from twin.line import Line
from twin.observation import Observer
from twin.scenario import Scenario
from twin.slack import PositionSlack


def _zero_idle_orders(seed: int) -> tuple[Scenario, set[tuple[int, ...]]]:
    """Tiny week `seed` and every order of its batches the twin runs without idle time (brute
    force); skipped for a week with planned FAS downtime, which the forecast ignores."""
    scenario = tiny_week(seed)
    if any(scenario.downtime[:-1]):
        pytest.skip("the forecast ignores planned FAS downtime (an approximation, documented)")
    outcomes = tiny_best(seed).outcomes
    return scenario, {s for s, o in outcomes.items() if not o.deadlock and o.idle_s == 0}


@pytest.mark.parametrize("seed", range(16), ids=lambda s: f"tiny-{s}")
def test_the_slack_allows_exactly_the_types_that_begin_a_zero_idle_rest(seed: int) -> None:
    scenario, zero = _zero_idle_orders(seed)
    prefixes = {s[:i] for s in zero for i in range(len(s))}
    for prefix in sorted(prefixes):
        line = Line(scenario)
        request = line.start()
        for k in prefix:
            assert request is not None
            request = line.decide(Decision(k))
        assert request is not None
        slack = PositionSlack(request, Forecast(request))
        allowed = {k for k in request.valid if slack.possible and slack.freedom()[k] >= 0}
        extends = {k for k in request.valid if (*prefix, k) in prefixes or (*prefix, k) in zero}
        assert allowed == extends, f"after {prefix}"


def test_the_slack_has_the_exact_planners_deadlines_on_a_reference_week() -> None:
    config = default_config_dir()
    line = load_line(config / "line.toml")
    env = LineEnv(line, [load_week(config / "weeks" / "w1", line)], settings=EnvSettings(mask="deadlines"))
    env.reset(options={"week": 0})
    rng = np.random.default_rng(0)
    done, step = False, 0
    while not done:
        assert env.request is not None and env._line is not None
        if step % 40 == 0:
            slack = PositionSlack(env.request, Forecast(env.request))
            model = ZeroIdleModel(env._line.scenario, env._line.snapshot())
            assert (slack.required == model.required).all(), f"decision {step}"
        _, _, done, _, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        step += 1
    assert info["kpis"]["idle_s"] == 0  # random choices inside the deadline mask never starve a FAS


def test_random_choices_idle_without_the_deadline_mask() -> None:
    config = default_config_dir()
    line = load_line(config / "line.toml")
    env = LineEnv(line, [load_week(config / "weeks" / "w1", line)])
    env.reset(options={"week": 0})
    rng = np.random.default_rng(0)
    done = False
    while not done:
        _, _, done, _, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
    assert info["kpis"]["idle_s"] > 0 or info["kpis"]["deadlock"]


@pytest.mark.parametrize(("observation", "per_type"), [("deadlines", 6), ("runs", 7)])
def test_the_deadline_observation_shows_freedom_and_next_deadline(observation: str, per_type: int) -> None:
    settings = EnvSettings.model_validate({"observation": observation, "mask": "deadlines"})
    env = LineEnv(settings=settings)
    n = len(env.line.types)
    assert env.observation_space.shape == (Observer.size(n, settings),) == (per_type * n + 3,)
    obs, _ = env.reset(options={"week": 0})
    assert obs.shape == (per_type * n + 3,)
    mask = env.action_masks()
    freedom = obs[4 * n + 3 : 5 * n + 3]
    valid = np.zeros(n, dtype=bool)
    assert env.request is not None
    valid[list(env.request.valid)] = True
    assert (mask == (valid & (freedom >= 0))).all()
    assert (obs[5 * n + 3 :] >= 0).all()
    if observation == "runs":  # a type can be built ahead exactly when the mask allows it
        assert ((obs[6 * n + 3 :] > 0) == mask).all()


@pytest.mark.parametrize("seed", range(16), ids=lambda s: f"tiny-{s}")
def test_a_run_is_as_long_as_the_zero_idle_orders_that_begin_with_it(seed: int) -> None:
    scenario, zero = _zero_idle_orders(seed)
    request = Line(scenario).start()
    assert request is not None
    runs = PositionSlack(request, Forecast(request)).runs(longest=99)
    for k in range(len(scenario.types)):
        longest = max((next((i for i, t in enumerate(s) if t != k), len(s)) for s in zero), default=0)
        assert runs[k] == longest, f"type {k}"
