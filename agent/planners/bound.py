"""Lower bounds on the setup effort of every zero-idle plan, on the deadline model
(`agent.planners.deadlines`); valid because every zero-idle plan of the line meets its deadlines
(checked against brute force on small weeks: tests/test_agent/planners/test_bound.py).

Two relaxations:
- **exact**: the dynamic programme (`agent.planners.dp`) where no position holds more count
  vectors than a budget: the optimum itself, gap 0 (the reference weeks at b = 50).
- **windows**: the types that must appear inside a window of positions cost at least the cheapest
  path through them; disjoint windows add up (`window_bound`). Weak (84 against the optimum 231
  on w1 at b = 50), but cheap at any batch size. Keeping the deadlines of a few types only (the
  others free fillers, efforts closed under shortest paths) was tried and was weaker still: 32 with
  three types, 56 with five, in a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import DpPlan, SequenceDp
from twin import Scenario

EXACT = "exact"
WINDOWS = "windows"
IMPOSSIBLE = "zero idle impossible"


@dataclass(frozen=True)
class Bound:
    """A lower bound on the setup effort of every zero-idle plan."""

    value: float | None
    """None when zero idle is impossible (proved by a deadline no position meets) or the model is
    stricter than the line (a setup time)."""
    exact: bool
    """`value` is the optimum (the programme ran uncapped)."""
    method: str
    """Which relaxation gave `value`: `exact`, `windows` or why there is none."""
    wall_s: float
    plan: DpPlan | None = None
    """The optimal plan when `exact`."""


def lower_bound(
    scenario: Scenario | ZeroIdleModel,
    max_states: int = 60_000,
    subset_size: int = 3,
    time_limit_s: float = 30.0,
) -> Bound:
    """The best bound the relaxations give within `time_limit_s` seconds (wall): the exact
    programme when no position holds more than `max_states` count vectors, else the largest of the
    subset bounds (groups of `subset_size` types, most expensive groups first) and the windows."""
    start = time.perf_counter()
    model = scenario if isinstance(scenario, ZeroIdleModel) else ZeroIdleModel(scenario)
    if not model.exact:
        return Bound(None, False, "the setup time makes the model stricter than the line", 0.0)
    if not (model.zero_idle_possible and model.positions_suffice):
        return Bound(None, False, IMPOSSIBLE, time.perf_counter() - start)
    if model.batches == 0:
        return Bound(0.0, True, EXACT, 0.0)
    dp = SequenceDp(model)
    plan = dp.solve(max_states, exact_only=True)
    if plan is not None and plan.exact:
        return Bound(plan.effort, True, EXACT, time.perf_counter() - start, plan)
    if plan is None and dp.applies and not dp.cut:  # every state kept, and none reached the end
        return Bound(None, False, IMPOSSIBLE, time.perf_counter() - start)
    return Bound(window_bound(model), False, WINDOWS, time.perf_counter() - start)


def window_bound(model: ZeroIdleModel) -> float:
    """A lower bound on the setup effort of every zero-idle plan, stronger than CP-SAT's LP
    (whose relaxation spreads every position over all types at no cost).

    By position `i` at least `req[i, k]` batches of type `k` are built (deadlines) and at most
    `i + 1 - sum of the others' req`. So type `k` must appear in positions `A..B` when
    `req[B, k]` exceeds the most it can have by `A - 1`. Within a window the sequence walks
    through every type that must appear, costing at least the cheapest path through them
    (efforts closed under shortest paths); disjoint windows add up, and a dynamic programme
    picks the windows that give the largest sum."""
    n_pos, n_types = model.batches, len(model.counts)
    if n_pos == 0:
        return 0.0
    req = model.required
    most = np.minimum(
        np.asarray(model.counts)[None, :],
        np.arange(1, n_pos + 1)[:, None] - (req.sum(axis=1)[:, None] - req),
    )
    before = np.vstack([np.zeros((1, n_types), dtype=np.int64), most])  # row A: the most by A - 1
    path = _path_costs(model.effort_matrix)
    best = np.zeros(n_pos + 1)  # best[i]: the bound from windows inside positions 0 .. i - 1
    for end in range(n_pos):
        must = req[end][None, :] > before[: end + 1]  # per window start A = 0 .. end: the types due
        best[end + 1] = max(best[end], float((best[: end + 1] + path(must)).max()))
    return float(best[n_pos])


_EXACT_PATH_TYPES = 14
"""Up to this many types the cheapest path through a set of types is tabulated exactly (2^n sets);
beyond, each type after the first costs at least the cheapest changeover of all."""


def _path_costs(effort: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function from rows of type sets (booleans, shape (m, types)) to a lower bound on the
    cheapest path through each set."""
    n = len(effort)
    if n <= _EXACT_PATH_TYPES:
        table = cheapest_paths(effort)
        bits = 1 << np.arange(n)
        return lambda sets: np.asarray(table[sets @ bits])
    closed = closed_efforts(effort)
    cheapest = float((closed + np.diag(np.full(n, np.inf))).min())
    return lambda sets: np.maximum(sets.sum(axis=1) - 1, 0) * cheapest


def closed_efforts(effort: np.ndarray) -> np.ndarray:
    """Setup efforts closed under shortest paths (Floyd-Warshall): `out[a, b]` <= `effort[a, b]`
    and the triangle inequality holds."""
    dist = np.asarray(effort, dtype=float).copy()
    for m in range(len(dist)):
        dist = np.minimum(dist, dist[:, [m]] + dist[[m], :])
    return dist


def cheapest_paths(effort: np.ndarray) -> np.ndarray:
    """Per subset of types (a bit mask): the least effort of a path visiting all of them, with
    efforts closed under shortest paths (a walk may pass through other types)."""
    dist = closed_efforts(effort)
    n = len(dist)
    cost = np.full((1 << n, n), np.inf)
    cost[1 << np.arange(n), np.arange(n)] = 0.0
    for mask in range(1, 1 << n):
        for last in range(n):
            here = cost[mask, last]
            if not np.isfinite(here):
                continue
            for nxt in range(n):
                if not mask >> nxt & 1:
                    grown = mask | 1 << nxt
                    cost[grown, nxt] = min(cost[grown, nxt], here + dist[last, nxt])
    out: np.ndarray = cost.min(axis=1)
    out[0] = 0.0
    return out
