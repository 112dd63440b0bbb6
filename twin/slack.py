"""Slack of the zero-idle deadlines at a decision point: how many PAS positions of freedom remain,
per type the agent might choose now. The observation's `deadlines` features and the `deadlines`
action mask read it.

From the decision point on, the FAS take at nominal pace (the forecast), so batch `j` of type `k`
must enter by the take it is the first to cover, and the PAS batch at position `i` (0: the one
chosen now) enters no earlier than `max(finish_i, release_i)` (`twin.timeline`: production end,
and the take that frees room for it). Each batch thus has a deadline position, and with one batch
per position the rest of the week can still run without idle time exactly when, for every
position `i`, the batches due at `0..i` number at most `i + 1` (Hall's condition for unit jobs
with deadlines; earliest-deadline-first then meets them all; Jackson 1955). Choosing type `k` now
fills position 0 with `k`, so the freedom left is `min_i (i - due_i(k))` with `due_i(k)` the batches
other than this one due at `1..i`; negative means some deadline will be missed.

With a horizon (`EnvSettings.slack_horizon_s`) only the takes before `now + horizon` set
deadlines: the later ones are not checked (cheap on a plant-size week, exact within the horizon).

Exact (tested against brute force) on lines without setup time and without planned FAS downtime.
With a setup time the entry times assume a changeover before every batch, as the exact planners'
model does (stricter than the line: zero idle may look impossible, or a fine type be refused); with
planned FAS downtime the forecast takes at nominal pace through it (a type may be let through that
later starves a FAS, or one refused that would not).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from twin.decision import DecisionRequest
from twin.forecast import Forecast
from twin.timeline import _advance, _up_at


class PositionSlack:
    """Deadline positions of one decision point's remaining batches, and the freedom per choice."""

    def __init__(self, request: DecisionRequest, forecast: Forecast, horizon_s: int | None = None) -> None:
        b = request.batch_size
        n = len(request.stock)
        stock = request.stock
        counts = [-(-r // b) if r > 0 else 0 for r in request.remaining]
        self.positions = sum(counts)
        """PAS batches the rest of the week builds."""
        until = None if horizon_s is None else request.time_s + horizon_s
        everything, takes = forecast.all_takes(until)
        self.takes = takes
        """Per type the planned takes from now on (before the horizon), sorted."""
        free = sum(stock) - request.scenario.line.buffer.capacity  # room taken beyond the buffer
        entries, release = self._entries(request, everything, free, self.positions)
        self.entries = entries
        """Earliest entry time (working s) of the batch at each position (those a planned take
        makes room for: a later one could never enter, so no deadline falls on it)."""
        self.time_s = request.time_s
        self.first_due = np.full(n, np.inf)
        """Per type the deadline position of its next batch (inf: none due)."""
        rows = self.positions if horizon_s is None else min(self.positions, len(entries))
        # with a horizon, the rows past the last entry are left out: they hold no deadline
        required = np.zeros((max(rows, 1), n), dtype=np.int64)
        self.possible = True
        """False when some batch cannot meet its deadline at any position."""
        entry = np.asarray(entries, dtype=np.int64)
        for k in range(n):
            covered = stock[k] + b * np.arange(counts[k], dtype=np.int64)  # takes before batch j
            covered = covered[covered < len(takes[k])]
            if not len(covered):
                continue
            due = takes[k][covered]
            p = np.searchsorted(entry, due, side="right") - 1
            # the takes waiting for this very batch free no room for it (`Timeline.entry_allows`)
            at = np.flatnonzero((p >= 0) & (entry[np.maximum(p, 0)] == due))
            if len(at):
                room = free + (p[at] + 1) * b
                same = np.searchsorted(takes[k], due[at], side="right") - covered[at]
                waits = (release[p[at]] == due[at]) & (
                    np.searchsorted(everything, due[at], side="right") - same < room
                )
                p[at[waits]] -= 1
            if (p < 0).any():
                self.possible = False
                p = np.maximum(p, 0)
            self.first_due[k] = p[0]
            np.maximum.at(required[:, k], np.minimum(p, len(required) - 1), np.arange(1, len(p) + 1))
        self.required = np.maximum.accumulate(required, axis=0)
        """`required[i, k]`: batches of type k that positions 0..i must hold, shape (positions, n)."""
        due_now = self.required.sum(axis=1, keepdims=True) - (self.required >= 1)
        self._slack = np.arange(len(self.required))[:, None] - due_now
        """`_slack[i, k]`: positions 1..i left over if type k is built now (row 0: minus the
        batches other than k due at position 0)."""

    @staticmethod
    def _entries(
        request: DecisionRequest, takes: np.ndarray, free: int, batches: int
    ) -> tuple[list[int], np.ndarray]:
        """Earliest entry time of the batch at each position (until the buffer never has room), and
        the take that frees room for it (0: none needed); `free`: stock beyond the buffer's room."""
        sc = request.scenario
        b = request.batch_size
        work = b * sc.line.pas.unit_time_s + sc.line.pas.setup_time_s
        down = sc.downtime[-1]
        need = free + b * np.arange(1, batches + 1, dtype=np.int64)
        need = need[need <= len(takes)]
        release = np.where(need > 0, takes[np.clip(need - 1, 0, None)], 0)
        if not down:  # entered_i = max(entered_(i-1) + work, release_i): a running maximum
            steps = work * np.arange(len(need), dtype=np.int64)
            start = np.maximum(release - steps, request.time_s + work)
            return list(map(int, np.maximum.accumulate(start) + steps)), release
        out: list[int] = []
        entered = request.time_s
        for r in release.tolist():
            entered = _up_at(max(_advance(entered, work, down), r), down)
            out.append(entered)
        return out, release

    def freedom(self, horizon_s: int | None = None) -> np.ndarray:
        """Per type, the positions of freedom left if it is built now: `min_i (i - due_i)` over the
        positions `i >= 1` that enter within `horizon_s` of now (all of them when None), shape
        (n,), int. Negative: some deadline will be missed (also when position 0 was due to hold
        another type). At the week's last position the freedom is 0 by counting, so a horizon
        shorter than the week shows how much room the near term leaves."""
        slack = self._slack
        n = slack.shape[1]
        last = len(slack) if horizon_s is None else bisect_right(self.entries, self.time_s + horizon_s)
        last = max(1, min(last, len(slack)))
        out: np.ndarray = np.full(n, len(slack), dtype=np.int64) if last == 1 else slack[1:last].min(axis=0)
        blocked = slack[0] < 0  # position 0 was due to hold another type
        out[blocked] = slack[0][blocked]
        return out

    def runs(self, longest: int) -> np.ndarray:
        """Per type, the most batches of it (at most `longest`) the PAS can build one after another
        from now on and still meet every deadline (shape (n,), int; 0: not even one): how far
        it can build ahead without a changeover."""
        req = self.required
        total = req.sum(axis=1)
        counts = req[-1]
        filled = np.arange(1, len(req) + 1)  # positions 0..i
        out = np.zeros(req.shape[1], dtype=np.int64)
        if not self.possible or (total > filled).any():  # no zero-idle rest at all (Hall)
            return out

        def feasible(k: int, m: int) -> bool:
            others_due = total - np.minimum(req[:, k], m)
            return bool((others_due <= filled - np.minimum(filled, m)).all())

        for k in range(req.shape[1]):  # a run of m feasible => one of m - 1 is: binary search
            lo, hi = 0, min(longest, int(counts[k]))
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if feasible(k, mid) else (lo, mid - 1)
            out[k] = lo
        return out

    def meets(self) -> np.ndarray:
        """Per type, whether building it now leaves every deadline reachable (shape (n,), bool)."""
        return bool(self.possible) & (self.freedom() >= 0)
