"""The `compact` observation for lines with many types (`twin.observation`): one length whatever
the number of types, setup families read off the matrix, the top-k candidate slots (stay first,
then the cheapest changeovers, the most urgent always in), slot actions in the env, and the slack
horizon that keeps a plant-size week cheap."""

from __future__ import annotations

import numpy as np
import pytest
from builders import make_line, make_week
from gymnasium.spaces import Discrete

from twin import Decision, DecisionRequest, EnvSettings, InvalidDecision, LineEnv, load_line, load_week
from twin.config import default_config_dir
from twin.forecast import Forecast
from twin.line import Line
from twin.observation import FAMILY_FEATURES, GLOBAL_FEATURES, SLOT_FEATURES, Observer, setup_families
from twin.scenario import Scenario
from twin.slack import PositionSlack

COMPACT = EnvSettings(observation="compact", mask="deadlines", top_k=3, families=2)


def test_setup_families_are_the_groups_cheap_to_change_within() -> None:
    config = default_config_dir()
    reference = np.asarray(load_line(config / "line.toml").setup_effort.matrix)
    assert setup_families(reference).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # T1-T4, T5-T8
    plant = np.asarray(load_line(config / "lines" / "plant-40x24.toml").setup_effort.matrix)
    assert setup_families(plant).tolist() == [k // 4 for k in range(24)]  # its header: 6 of 4
    assert setup_families(np.ones((3, 3)) - np.eye(3)).tolist() == [0, 0, 0]  # all alike: one


@pytest.mark.parametrize("types", [2, 8, 24, 64])
def test_the_compact_observation_has_one_length_for_any_number_of_types(types: int) -> None:
    settings = EnvSettings(observation="compact")
    size = SLOT_FEATURES * settings.top_k + FAMILY_FEATURES * settings.families + GLOBAL_FEATURES
    assert Observer.size(types, settings) == size == 104
    assert Observer.actions(types, settings) == settings.top_k
    assert Observer.size(types, EnvSettings(observation="runs")) == 7 * types + 3
    assert Observer.actions(types, EnvSettings()) == types


def test_the_slots_stay_first_then_the_cheapest_and_keep_the_most_urgent() -> None:
    config = default_config_dir()
    line = load_line(config / "line.toml")
    env = LineEnv(line, [load_week(config / "weeks" / "w1", line)], settings=COMPACT)
    assert env.action_space == Discrete(3) and env.observation_space.shape == (3 * 8 + 2 * 6 + 4,)
    obs, _ = env.reset(options={"week": 0})
    rng = np.random.default_rng(1)
    setup = np.asarray(line.setup_effort.matrix)
    done, step = False, 0
    while not done:
        assessment, request = env._assessment, env.request
        assert assessment is not None and request is not None and assessment.slots is not None
        slots, candidates = assessment.slots, assessment.candidates
        assert set(slots) <= set(candidates) and len(slots) == min(3, len(candidates))
        assert env.action_masks().tolist() == [i < len(slots) for i in range(3)]
        assert obs.shape == env.observation_space.shape and env.observation_space.contains(obs)
        first_due = assessment.first_due
        assert first_due is not None
        urgent = min(candidates, key=lambda k: (first_due[k], assessment.range_s[k], k))
        assert urgent in slots
        last = request.last_type
        if last is not None:
            if last in candidates:
                assert slots[0] == last and obs[1] == 1.0  # staying costs nothing: slot 0
            efforts = [setup[last][k] for k in slots if k != urgent or k == slots[0]]
            assert efforts == sorted(efforts)
        action = int(rng.integers(len(slots)))
        obs, _, done, _, info = env.step(action)
        assert env._line is not None and env._line.trace.batches[-1].type == slots[action]
        step += 1
    assert info["kpis"]["idle_s"] == 0  # any slot keeps every deadline (the deadline mask)


def test_a_slot_beyond_the_candidates_raises() -> None:
    line = make_line(types=4, fas_units=(10,), capacity=40, batch_size=10)
    week = make_week(line, [[(0, 30), (1, 30), (2, 30), (3, 30)]], stock=[10, 0, 0, 0])
    env = LineEnv(line, [week], settings=EnvSettings(observation="compact", top_k=8))
    env.reset(options={"week": 0})
    allowed = int(env.action_masks().sum())
    assert allowed < 8
    with pytest.raises(InvalidDecision, match=f"action {allowed} is outside the action mask"):
        env.step(allowed)


def test_a_horizon_as_long_as_the_week_changes_nothing_and_a_short_one_cuts_the_takes() -> None:
    config = default_config_dir()
    line = load_line(config / "line.toml")
    scenario = Scenario.build(line, load_week(config / "weeks" / "w1", line), 50)
    twin = Line(scenario)
    request = twin.start()
    week = scenario.calendar.week_work_s
    for _ in range(40):
        assert request is not None
        forecast = Forecast(request)
        everything, by_type = forecast.all_takes()
        assert [t.tolist() for t in by_type] == [forecast.takes(k).tolist() for k in range(8)]
        assert everything.tolist() == sorted(np.concatenate(by_type).tolist())
        until = request.time_s + 3_600
        for k, takes in enumerate(forecast.takes_by_type(until)):
            full = forecast.takes(k)
            assert takes.tolist() == full[full < until].tolist() == forecast.takes(k, until).tolist()
        exact, long = PositionSlack(request, forecast), PositionSlack(request, forecast, week)
        assert (exact.freedom() == long.freedom()).all() and (exact.first_due == long.first_due).all()
        assert (exact.meets() == long.meets()).all()
        short = PositionSlack(request, forecast, 3_600)
        near = np.isfinite(short.first_due)  # a deadline within the hour is the exact one
        assert (short.first_due[near] == exact.first_due[near]).all()
        request = twin.decide(_keeping(request, exact))


def _keeping(request: DecisionRequest, slack: PositionSlack) -> Decision:
    """The first valid type that keeps every deadline."""
    meets = slack.meets()
    return Decision(next((k for k in request.valid if meets[k]), request.valid[0]))
