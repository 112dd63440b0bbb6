"""The least setup effort from every zero-idle state of a week to its end: the dynamic programme
of `agent.planners.dp` run backwards, so that one solve answers "which type is best now?" at any
decision point on a zero-idle path (the exact labels of DAgger, Ross et al. 2011).

On a zero-idle path the PAS enters the batch at position `i` at a time that does not depend on
the order (`agent.planners.deadlines`), so the state of a decision point is its position, the
batches built per type and the last type; its value is the least effort of a zero-idle rest. The
forward pass enumerates the states that meet every deadline so far; the backward pass (Bellman)
gives each its value. Exact where the model is (no setup time) and the states fit (`max_states`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent.planners.deadlines import ZeroIdleModel
from agent.planners.dp import SequenceDp


class CostToGo:
    """Values of one week's zero-idle states, from its start. Raises ValueError when a position
    holds more than `max_states` count vectors (b = 10 and 20 weeks may; b = 50 fits) or the
    count vectors do not fit the programme's integer codes."""

    def __init__(self, model: ZeroIdleModel, max_states: int = 60_000) -> None:
        self.model = model
        n = self.n = len(model.counts)
        forward = SequenceDp(model)  # the same state codes and changeover rows as the programme
        if model.batches and not forward.applies:
            raise ValueError("the week's count vectors do not fit the programme's integer codes")
        target = np.asarray(model.counts, dtype=np.int64)
        radix = forward.radix
        self.mult = forward.mult
        self.effort = forward.extended
        """Rows 0..n-1: changeover from that type; row n: the first batch's (from the initial setup)."""
        req = model.required
        layers = [np.zeros(1, dtype=np.int64)]  # codes of the states after i batches, sorted
        for i in range(model.batches):
            codes = layers[-1]
            if not model.zero_idle_possible or not len(codes):
                layers.append(np.zeros(0, dtype=np.int64))  # some batch meets its deadline nowhere
                continue
            states = (codes[:, None] // self.mult[None, :]) % radix[None, :]
            grown = []
            for k in range(n):
                more = states[:, k] < target[k]
                after = states[more].copy()
                after[:, k] += 1
                ok = (after >= req[i]).all(axis=1)
                grown.append(codes[more][ok] + self.mult[k])
            layer = np.unique(np.concatenate(grown))
            if len(layer) > max_states:
                raise ValueError(f"position {i} holds {len(layer)} states (more than {max_states})")
            layers.append(layer)
        self.layers = layers
        values = [np.zeros((len(layers[-1]), n + 1), dtype=np.float32)]  # the end: nothing left
        for i in range(model.batches - 1, -1, -1):
            values.insert(0, self._back(layers[i], layers[i + 1], values[0], target, radix))
        self.values = values
        """`values[i][s, l]`: least effort after state `layers[i][s]` with last type l (n: none)."""

    def _back(
        self, codes: np.ndarray, nxt: np.ndarray, later: np.ndarray, target: np.ndarray, radix: np.ndarray
    ) -> np.ndarray:
        n = self.n
        states = (codes[:, None] // self.mult[None, :]) % radix[None, :]
        out = np.full((len(codes), n + 1), np.inf, dtype=np.float32)
        if not len(nxt):
            return out
        for k in range(n):
            idx = np.flatnonzero(states[:, k] < target[k])
            code = codes[idx] + self.mult[k]
            at = np.minimum(np.searchsorted(nxt, code), len(nxt) - 1)
            found = nxt[at] == code
            idx, at = idx[found], at[found]
            total = self.effort[:, k][None, :] + later[at, k][:, None]
            out[idx] = np.minimum(out[idx], total)
        return out

    def choices(self, built: Sequence[int] | np.ndarray, last: int | None) -> np.ndarray:
        """Per type, the least effort of the rest of the week if it is built next after the
        batches `built` (counts per type) with `last` the type the PAS is set up for (None: the
        initial setup); inf where no zero-idle rest follows. Shape (n,)."""
        n = self.n
        counts = np.asarray(built, dtype=np.int64)
        i = int(counts.sum())
        out = np.full(n, np.inf)
        if i >= len(self.layers) - 1:
            return out
        row = n if last is None else last
        nxt = self.layers[i + 1]
        if not len(nxt):
            return out
        for k in range(n):
            code = int(counts @ self.mult) + int(self.mult[k])
            at = int(np.searchsorted(nxt, code))
            if at < len(nxt) and nxt[at] == code and counts[k] < self.model.counts[k]:
                out[k] = self.effort[row, k] + float(self.values[i + 1][at, k])
        return out

    @property
    def optimum(self) -> float:
        """The least effort of the whole week (inf: no zero-idle plan)."""
        return float(self.values[0][0, self.n]) if len(self.values[0]) else float("inf")
