"""Property tests on random small lines: the twin equals the independent one-unit-at-a-time
oracle (KPIs and action masks), units are conserved, the buffer never exceeds its capacity, a FAS
is idle only while its type is out of stock, and the same seed gives the same run."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from builders import make_line, make_scenario, make_week
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import run_oracle

from agent.planners.policies import RandomPolicy
from twin import Decision, DecisionRequest, Scenario, Trace, simulate
from twin.plots import stock_series


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_types = draw(st.integers(1, 4))
    n_fas = draw(st.integers(1, 3))
    capacity = draw(st.integers(2, 30))
    line = make_line(
        types=n_types,
        fas_units=tuple(draw(st.lists(st.integers(1, 6), min_size=n_fas, max_size=n_fas))),
        pas_unit=draw(st.integers(1, 3)),
        capacity=capacity,
        batch_size=draw(st.integers(1, capacity)),
        setup_time=draw(st.sampled_from([0, 0, 2])),
        matrix=[[0 if i == j else draw(st.integers(0, 5)) for j in range(n_types)] for i in range(n_types)],
    )
    order = st.tuples(st.integers(0, n_types - 1), st.integers(1, 12))
    plans = [draw(st.lists(order, max_size=4)) for _ in range(n_fas)]
    stock = [0] * n_types
    for k in draw(st.lists(st.integers(0, n_types - 1), max_size=capacity)):
        stock[k] += 1
    stations = ["PAS"] + [f.id for f in line.fas]
    downtime = [
        (s, a, a + d)
        for s, a, d in draw(
            st.lists(st.tuples(st.sampled_from(stations), st.integers(0, 80), st.integers(1, 30)), max_size=3)
        )
    ]
    initial = draw(st.one_of(st.none(), st.integers(0, n_types - 1)))
    return make_scenario(line, make_week(line, plans, stock=stock, downtime=downtime, initial_setup=initial))


@dataclass
class Recorder:
    """A seeded random policy that sometimes asks for other batch sizes, and records its answers."""

    seed: int
    capacity: int

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.decisions: list[tuple[int, int]] = []
        self.valid: list[tuple[int, ...]] = []
        self.times: list[int] = []

    def __call__(self, request: DecisionRequest) -> Decision:
        k = self.rng.choice(request.valid)
        quantity = self.rng.choice([None, None, self.rng.randint(1, self.capacity)])
        self.decisions.append((k, quantity or request.batch_size))
        self.valid.append(request.valid)
        self.times.append(request.time_s)
        return Decision(k, quantity)


PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(sc=scenarios(), seed=st.integers(0, 10**6))
def test_twin_equals_the_oracle(sc: Scenario, seed: int) -> None:
    policy = Recorder(seed, sc.line.buffer.capacity)
    res, _ = simulate(sc, policy)
    ref = run_oracle(sc, policy.decisions)
    assert policy.valid == ref.valid_sets
    assert policy.times == ref.decision_times
    assert list(res.idle_s_by_station.values()) == ref.idle_by_station
    assert (res.setup_effort, res.setups) == (ref.setup_effort, ref.setups)
    assert (res.units_consumed, res.units_produced) == (ref.consumed, ref.produced)
    assert (res.deadlock, res.makespan_s) == (ref.deadlock, ref.end_s)
    assert (res.pas_busy_s, res.pas_blocked_s) == (ref.pas_busy_s, ref.pas_blocked_s)
    assert res.buffer_max_fill == ref.max_fill
    assert list(res.buffer_max_fill_by_type.values()) == ref.max_fill_by_type
    assert list(res.final_stock.values()) == ref.final_stock
    if res.makespan_s:
        areas = [m * res.makespan_s for m in res.buffer_mean_fill_by_type.values()]
        assert np.allclose(areas, ref.area_by_type, rtol=0, atol=1e-6)


def _check_invariants(sc: Scenario, trace: Trace, end_s: int) -> None:
    times, stock = stock_series(sc, trace, end_s)
    assert (stock >= 0).all()
    assert (stock.sum(axis=1) <= sc.line.buffer.capacity).all()
    for _, k, start, end in trace.waits:
        during = (times >= start) & (times < end)
        assert (stock[during, k] == 0).all(), "a FAS was idle while its type was in stock"


@PROPERTY_SETTINGS
@given(sc=scenarios(), seed=st.integers(0, 10**6))
def test_conservation_capacity_and_idle_only_when_out_of_stock(sc: Scenario, seed: int) -> None:
    res, trace = simulate(sc, Recorder(seed, sc.line.buffer.capacity))
    for k, name in enumerate(sc.types):
        taken = sum(s.count for s in trace.segments if s.type == k)
        produced = sum(b.quantity for b in trace.batches if b.type == k and b.entered_s is not None)
        assert sc.initial_stock[k] + produced == taken + res.final_stock[name]
    assert res.units_consumed == sum(s.count for s in trace.segments)
    _check_invariants(sc, trace, res.makespan_s)


@settings(max_examples=50, deadline=None)
@given(sc=scenarios(), seed=st.integers(0, 10**6))
def test_same_seed_same_run(sc: Scenario, seed: int) -> None:
    first, trace1 = simulate(sc, RandomPolicy(seed))
    second, trace2 = simulate(sc, RandomPolicy(seed))
    assert first == second
    assert [(b.type, b.quantity) for b in trace1.batches] == [(b.type, b.quantity) for b in trace2.batches]


def test_reference_week_invariants(ref_line, ref_week) -> None:  # type: ignore[no-untyped-def]
    from agent.planners.policies import SetupAwarePolicy

    for batch_size in (10, 50):
        sc = Scenario.build(ref_line, ref_week, batch_size)
        res, trace = simulate(sc, SetupAwarePolicy())
        _check_invariants(sc, trace, res.makespan_s)
        assert res.completion == 1.0 and res.idle_s == 0


def test_reference_weeks_equal_the_oracle(ref_line, config_dir) -> None:  # type: ignore[no-untyped-def]
    """The full reference weeks at b=10 and b=50, decided by a rule, agree with the oracle."""
    from agent.planners.policies import SetupAwarePolicy
    from twin import load_week

    for week_name, batch_size in (("w1", 50), ("w2", 10), ("w3", 20)):
        sc = Scenario.build(ref_line, load_week(config_dir / "weeks" / week_name, ref_line), batch_size)
        rule = SetupAwarePolicy()
        decisions: list[tuple[int, int]] = []

        def recording(
            request: DecisionRequest, rule: SetupAwarePolicy = rule, out: list = decisions
        ) -> Decision:
            d = rule(request)
            out.append((d.type, request.batch_size))
            return d

        res, _ = simulate(sc, recording)
        ref = run_oracle(sc, decisions)
        assert (res.idle_s, res.setup_effort, res.makespan_s) == (
            sum(ref.idle_by_station),
            ref.setup_effort,
            ref.end_s,
        )
        assert (res.buffer_max_fill, list(res.final_stock.values())) == (ref.max_fill, ref.final_stock)
        assert res.pas_blocked_s == ref.pas_blocked_s
