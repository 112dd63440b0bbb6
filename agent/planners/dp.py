"""The dynamic programme of the zero-idle PAS sequence: exact where its states fit, a beam where
they do not, and the exact re-optimisation of a window of a plan (large-neighbourhood search).

On the deadline model (`agent.planners.deadlines`) the future of a partial sequence depends only on
how many batches of each type it holds and which type it ended with, so the least setup effort
over states `(counts per type, last type)` position by position is the optimum (Bellman's
principle; the classic DP of sequencing with sequence-dependent changeovers, e.g. Held & Karp 1962,
here over a multiset with deadlines). Deadlines keep the count vectors in a narrow band: on the
reference weeks at b = 50 at most 6,435 count vectors share a position and the whole week solves
in under a second. At b = 10 or 20 the band holds hundreds of thousands; `max_states` then keeps
the cheapest states of each position (a beam: no longer a proof), always including the path of a
known plan (`keep`), so the answer is never worse than it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.planners.deadlines import ZeroIdleModel
from twin import Scenario

_CODE_LIMIT = 2**62


@dataclass(frozen=True)
class DpPlan:
    """A sequence from the programme and what it proves."""

    sequence: list[int]
    """Type index per position (of the window, for `reoptimise`: the whole plan)."""
    effort: float
    """The model's setup effort of the whole sequence."""
    exact: bool
    """No state was cut and the model is the line (no setup time): the least effort of every
    zero-idle plan (of every plan that keeps the positions outside the window, for `reoptimise`)."""
    states: int
    """(counts, last type) states the programme kept, all positions together."""
    wall_s: float


class SequenceDp:
    """The programme over one scenario's deadline model. Raises nothing: `applies` says whether
    the model's count vectors fit its integer codes (types x batches of plant size may not)."""

    def __init__(self, model: ZeroIdleModel) -> None:
        self.model = model
        n = len(model.counts)
        self.n = n
        radix = np.asarray(model.counts, dtype=np.int64) + 1
        self.applies = float(np.prod(radix.astype(float))) < _CODE_LIMIT and model.batches > 0
        self.mult = np.concatenate([[1], np.cumprod(radix)[:-1]]).astype(np.int64)
        self.radix = radix
        extended = np.zeros((n + 1, n))  # row n: "no type yet" (the initial setup, or nothing)
        extended[:n] = model.effort_matrix
        if model.previous is not None:
            extended[n] = model.effort_matrix[model.previous]
        self.extended = extended
        self.pointer = np.int8 if n < 127 else np.int32  # the previous type of each state
        self.cut = False
        """Whether the last run cut states (then a None from it proves nothing)."""

    # -- public --------------------------------------------------------------------------------
    def solve(
        self,
        max_states: int | None = None,
        keep: Sequence[int] | None = None,
        exact_only: bool = False,
        until: float | None = None,
    ) -> DpPlan | None:
        """The least-effort zero-idle sequence (exact unless `max_states` cut a position); None when
        the deadlines admit no sequence (or none the cap kept). `keep`: a zero-idle plan whose
        states are never cut, so the answer is never worse than it. `exact_only`: give up (None,
        `cut` set) at the first position that holds more than `max_states` states. `until`: a
        `time.perf_counter()` instant after which it gives up (None, `cut` set)."""
        if not self.applies or not self.model.zero_idle_possible:
            return None
        keep = list(keep) if keep is not None and self.model.meets(keep) else None
        start = np.zeros(self.n, dtype=np.int64)
        target = np.asarray(self.model.counts, dtype=np.int64)
        n_pos = self.model.batches
        return self._run(start, self.n, 0, n_pos, target, None, max_states, keep, [], exact_only, until)

    def reoptimise(
        self,
        sequence: Sequence[int],
        lo: int,
        hi: int,
        max_states: int | None = None,
        until: float | None = None,
    ) -> DpPlan | None:
        """The zero-idle plan that keeps `sequence` outside positions `lo..hi-1` and orders that
        window at least effort (never worse than `sequence`, which must meet every deadline)."""
        if not self.applies or not self.model.meets(sequence):
            return None
        seq = list(sequence)
        start = self._counts(seq[:lo])
        last = seq[lo - 1] if lo > 0 else self.n
        target = self._counts(seq[:hi])
        after = seq[hi] if hi < len(seq) else None
        plan = self._run(start, last, lo, hi, target, after, max_states, seq[lo:hi], seq[:lo], False, until)
        if plan is None:
            return None
        full = [*seq[:lo], *plan.sequence, *seq[hi:]]
        return DpPlan(full, self.model.effort(full), plan.exact, plan.states, plan.wall_s)

    # -- the programme -------------------------------------------------------------------------
    def _counts(self, seq: Sequence[int]) -> np.ndarray:
        return np.bincount(np.asarray(seq, dtype=np.int64), minlength=self.n).astype(np.int64)[: self.n]

    def _run(
        self,
        start: np.ndarray,
        start_last: int,
        lo: int,
        hi: int,
        target: np.ndarray,
        after: int | None,
        max_states: int | None,
        keep: list[int] | None,
        prefix: list[int],
        exact_only: bool = False,
        until: float | None = None,
    ) -> DpPlan | None:
        began = time.perf_counter()
        n, E, mult, req = self.n, self.extended, self.mult, self.model.required
        codes = np.asarray([int(start @ mult)], dtype=np.int64)
        states = start[None, :]
        cost = np.full((1, n + 1), np.inf)
        cost[0, start_last] = 0.0
        layers: list[tuple[np.ndarray, np.ndarray]] = []  # per position: codes, best previous last
        exact, kept = True, 0
        self.cut = False
        keep_state = start.copy()
        for i in range(lo, hi):
            if until is not None and time.perf_counter() > until:
                self.cut = True
                return None
            parts_code, parts_cost, parts_prev, parts_k = [], [], [], []
            for k in range(n):
                idx = np.nonzero(states[:, k] < target[k])[0]
                if not len(idx):
                    continue
                grown = states[idx]
                grown[:, k] += 1
                ok = (grown >= req[i]).all(axis=1)
                idx, grown = idx[ok], grown[ok]
                if not len(idx):
                    continue
                total = cost[idx] + E[:, k][None, :]
                prev = total.argmin(axis=1)
                parts_code.append(codes[idx] + mult[k])
                parts_cost.append(total[np.arange(len(idx)), prev])
                parts_prev.append(prev.astype(self.pointer))
                parts_k.append(np.full(len(idx), k))
            if not parts_code:
                return None
            all_codes = np.concatenate(parts_code)
            codes, inverse = np.unique(all_codes, return_inverse=True)
            ks = np.concatenate(parts_k)
            cost = np.full((len(codes), n + 1), np.inf)
            cost[inverse, ks] = np.concatenate(parts_cost)
            back = np.full((len(codes), n + 1), -1, dtype=self.pointer)
            back[inverse, ks] = np.concatenate(parts_prev)
            if keep is not None:
                keep_state[keep[i - lo]] += 1
            if max_states is not None and len(codes) > max_states:
                exact = False
                self.cut = True
                if exact_only:
                    return None
                chosen = self._beam(codes, cost, max_states, keep_state if keep is not None else None)
                codes, cost, back = codes[chosen], cost[chosen], back[chosen]
            states = (codes[:, None] // mult[None, :]) % self.radix[None, :]
            kept += len(codes)
            layers.append((codes, back))
        final = cost[0, :n] + (E[:n, after] if after is not None else 0.0)  # one state: the target
        last = int(final.argmin())
        if not np.isfinite(final[last]):
            return None
        sequence = self._trace(layers, last)
        effort = self.model.effort([*prefix, *sequence])
        return DpPlan(sequence, effort, exact and self.model.exact, kept, time.perf_counter() - began)

    def _beam(
        self, codes: np.ndarray, cost: np.ndarray, width: int, keep_state: np.ndarray | None
    ) -> np.ndarray:
        """Indices (sorted) of the `width` cheapest states and of the kept plan's state. Dropping
        states that cannot meet the next deadlines first was measured slower and no better (w1,
        b = 20, 20,000 states: 218 in 65 s against 209 in 23 s)."""
        chosen = np.argsort(cost.min(axis=1), kind="stable")[:width]
        if keep_state is not None:
            code = int(keep_state @ self.mult)
            at = int(np.searchsorted(codes, code))
            if at < len(codes) and codes[at] == code and at not in set(chosen.tolist()):
                chosen = np.append(chosen, at)
        return np.sort(chosen)

    def _trace(self, layers: list[tuple[np.ndarray, np.ndarray]], last: int) -> list[int]:
        sequence: list[int] = []
        at = 0
        for depth in range(len(layers) - 1, -1, -1):
            codes, back = layers[depth]
            sequence.append(last)
            previous = int(back[at, last])
            if depth:
                at = int(np.searchsorted(layers[depth - 1][0], codes[at] - self.mult[last]))
            last = previous
        return sequence[::-1]


def solve_exact(scenario: Scenario) -> DpPlan | None:
    """The least-effort zero-idle plan of `scenario` by the uncapped programme; None when zero idle
    is impossible (or the programme does not apply). Memory grows with the states: for tests and
    small weeks; planners use `SequenceDp.solve` with a cap."""
    return SequenceDp(ZeroIdleModel(scenario)).solve()
