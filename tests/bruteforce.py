"""The brute-force oracle of the PAS sequence on tiny weeks: every distinct order of the week's
batches, each simulated in the twin, and the best of them.

A complete run builds a fixed multiset of batches (`problem.md`: the action mask allows a type
while its remaining requirement is positive, so `Timeline.batches_needed` counts them); every plan
is an order of it. `twin_sequences` checks that assumption by walking the twin's own masks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from math import factorial, prod
from typing import NamedTuple

from builders import make_line, make_scenario, make_week

from twin import Decision, Scenario
from twin.line import Engine, Line
from twin.results import Results
from twin.timeline import Timeline

MIN_ORDERS, MAX_ORDERS = 10, 1500
"""Distinct orders a tiny week has: a real choice, and each is one twin run of about a millisecond."""


class Outcome(NamedTuple):
    """What the twin measured of one order."""

    deadlock: bool
    idle_s: int
    setup_effort: float
    batches: int
    """Batches built: the whole order unless the run deadlocked."""


@dataclass(frozen=True)
class BruteForce:
    """The best plans of a week over every order of its batches, as the twin measures them."""

    best_zero_idle_effort: float | None
    """The least setup effort at zero idle (None: no order runs without idle time)."""
    least_idle_s: int | None
    """The least idle time of a run without deadlock (None: every order deadlocks)."""
    effort_at_least_idle: float | None
    """The least setup effort among the runs with that idle time."""
    sequences: int
    """Orders simulated."""
    best_zero_idle: tuple[int, ...] | None = None
    """One order with that effort at zero idle."""
    deadlocks: int = 0
    """Orders whose run deadlocked."""
    outcomes: dict[tuple[int, ...], Outcome] = field(default_factory=dict, compare=False)
    """Every order's run."""


def counts_of(scenario: Scenario) -> tuple[int, ...]:
    """Batches of each type a complete run builds."""
    return Timeline(scenario).batches_needed()


def distinct_orders(counts: tuple[int, ...]) -> int:
    """How many distinct orders a multiset of batches has."""
    return factorial(sum(counts)) // prod(factorial(n) for n in counts)


def orders(counts: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every distinct order of a multiset of batches (counts per type), each once."""
    left = list(counts)
    total = sum(left)
    prefix: list[int] = []

    def extend() -> Iterator[tuple[int, ...]]:
        if len(prefix) == total:
            yield tuple(prefix)
            return
        for k, n in enumerate(left):
            if n:
                left[k] -= 1
                prefix.append(k)
                yield from extend()
                prefix.pop()
                left[k] += 1

    return extend()


def replay(scenario: Scenario, sequence: tuple[int, ...], engine: Engine | None = None) -> Results:
    """The twin's KPIs of `sequence` (full batches; a run that ends early leaves entries unused)."""
    line = Line(scenario, engine)
    request = line.start()
    position = 0
    while request is not None:
        request = line.decide(Decision(sequence[position]))
        position += 1
    return line.results()


def brute_force(scenario: Scenario) -> BruteForce:
    """Simulate every distinct order of the week's batches and keep the best."""
    engine = Engine()
    best_zero: tuple[float, tuple[int, ...]] | None = None
    least: tuple[int, float] | None = None
    runs = deadlocks = 0
    outcomes = {}
    for sequence in orders(counts_of(scenario)):
        results = replay(scenario, sequence, engine)
        runs += 1
        outcomes[sequence] = Outcome(results.deadlock, results.idle_s, results.setup_effort, results.batches)
        if results.deadlock:
            deadlocks += 1
            continue
        assert results.completion == 1.0, f"{sequence} ran without deadlock but did not finish"
        key = (results.idle_s, results.setup_effort)
        least = key if least is None else min(least, key)
        if results.idle_s == 0 and (best_zero is None or results.setup_effort < best_zero[0]):
            best_zero = (results.setup_effort, sequence)
    return BruteForce(
        best_zero_idle_effort=None if best_zero is None else best_zero[0],
        least_idle_s=None if least is None else least[0],
        effort_at_least_idle=None if least is None else least[1],
        sequences=runs,
        best_zero_idle=None if best_zero is None else best_zero[1],
        deadlocks=deadlocks,
        outcomes=outcomes,
    )


def twin_sequences(scenario: Scenario) -> set[tuple[int, ...]]:
    """Every PAS sequence the twin accepts, found by walking its action masks (each prefix
    replayed from the week start): the valid types at each decision, until the run ends."""
    engine = Engine()
    found: set[tuple[int, ...]] = set()

    def walk(prefix: tuple[int, ...]) -> None:
        line = Line(scenario, engine)
        request = line.start()
        for k in prefix:
            assert request is not None
            request = line.decide(Decision(k))
        if request is None:
            found.add(prefix)
            return
        for k in request.valid:
            walk((*prefix, k))

    walk(())
    return found


@cache
def tiny_week(seed: int, setup_time: int = 0) -> Scenario:
    """A seeded tiny week: 2-3 types, 1-2 FAS, a small buffer, 5-9 batches with
    `MIN_ORDERS` to `MAX_ORDERS` orders; batch size, initial stock and setup, an asymmetric setup matrix and
    sometimes downtime of the PAS or a FAS vary with the seed."""
    rng = random.Random(seed)
    while True:
        n = rng.choice([2, 3])
        nf = rng.choice([1, 2])
        b = rng.choice([2, 3, 4, 5])
        capacity = rng.randint(2 * b, 3 * b)
        matrix = [[0 if i == j else rng.randint(1, 9) for j in range(n)] for i in range(n)]
        line = make_line(
            types=n,
            fas_units=tuple(rng.randint(3, 9) for _ in range(nf)),
            pas_unit=rng.choice([1, 1, 2]),
            capacity=capacity,
            batch_size=b,
            setup_time=setup_time,
            matrix=matrix,
        )
        orders_per_fas = (1, 3) if nf == 2 else (2, 5)
        plans = [
            [(rng.randrange(n), rng.randint(1, 2 * b)) for _ in range(rng.randint(*orders_per_fas))]
            for _ in range(nf)
        ]
        stock = [rng.randint(0, b) for _ in range(n)]
        for orders_of_fas in plans:  # the first take of every FAS is mostly in stock
            first = orders_of_fas[0][0]
            stock[first] = max(stock[first], rng.randint(0, b))
        if sum(stock) > capacity - b:
            continue
        down = [("PAS", rng.randint(0, 20), rng.randint(21, 40))] if rng.random() < 0.25 else []
        if rng.random() < 0.25:
            down.append((f"F{rng.randrange(nf) + 1}", rng.randint(0, 30), rng.randint(31, 60)))
        initial_setup = rng.choice([None, *range(n)])
        demand = [sum(q for orders_of_fas in plans for k, q in orders_of_fas if k == t) for t in range(n)]
        counts = tuple(max(0, -(-(d - s) // b)) for d, s in zip(demand, stock, strict=True))
        if 5 <= sum(counts) <= 9 and MIN_ORDERS <= distinct_orders(counts) <= MAX_ORDERS:
            week = make_week(line, plans, stock=stock, initial_setup=initial_setup, downtime=down)
            scenario = make_scenario(line, week)
            assert counts_of(scenario) == counts, "the twin's takes are not the plans' units"
            return scenario


@cache
def tiny_best(seed: int, setup_time: int = 0) -> BruteForce:
    """The brute force of `tiny_week(seed, setup_time)`, once per test session."""
    return brute_force(tiny_week(seed, setup_time))
