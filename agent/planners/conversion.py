"""Coarse to fine: a PAS plan made at one batch size, converted into a plan at another for the same
week, so that a planner at batch size b starts from every plan found at a coarser (or finer) size.

The hint defines a stream of units: each of its batches is `batch_size` units of its type, in
order. The converted plan orders its batches (type k, number j) by where that stream reaches the
batch's first unit (unit `(j - 1) * b + 1` of type k): a coarse batch splits into consecutive
batches of its type, consecutive fine batches merge into the batch holding their first unit. The
result is then exactly the week's batches at b (`Timeline.batches_needed`: the action mask allows
a type while its remaining requirement is positive, so a complete run builds those counts):
batches beyond them are dropped, and a batch the stream does not reach goes just before the first
batch needed later than it (the deadline order, which also plans a hint without batches). Last,
where that order misses a deadline of the zero-idle model (`agent.planners.deadlines`), the batches
move as little as it takes to meet them all (`meet_deadlines`).

Cutting a zero-idle plan into a divisor of its batch size keeps zero idle and the setup effort:
every smaller batch enters no later than the big one's share of it would have, and the runs of a
type stay runs. At other sizes batches straddle the hint's, and the repair makes the plan zero-idle
for some more setup effort whenever the week has a zero-idle plan at all.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from agent.errors import UsageError
from agent.planners.deadlines import ZeroIdleModel
from twin import Scenario


@dataclass(frozen=True)
class Hint:
    """A plan made elsewhere, offered to a planner."""

    batch_size: int
    types: tuple[str, ...]
    """Type names in build order."""
    source: str
    """Who made it, e.g. `best@50`."""

    @classmethod
    def of(cls, sequence: Sequence[int], scenario: Scenario, maker: str) -> Hint:
        """A plan of `scenario` (type indices at its batch size), made by `maker`."""
        size = scenario.batch_size
        return cls(size, tuple(scenario.types[k] for k in sequence), f"{maker}@{size}")


def convert(hint: Hint, scenario: Scenario, repair: bool = True) -> list[int]:
    """The hint as type indices for `scenario` at its batch size: a complete plan of the week;
    `repair`: moved to meet the zero-idle deadlines (`meet_deadlines`; with a setup time the
    deadlines are stricter than the line, and the plan as cut may be the better one).

    Raises UsageError (naming the hint) for a type the line does not have or a batch size below 1."""
    if hint.batch_size < 1:
        raise UsageError(f"batch size {hint.batch_size} must be at least 1", "hint", hint.source)
    index = {name: k for k, name in enumerate(scenario.types)}
    unknown = sorted({name for name in hint.types if name not in index})
    if unknown:
        raise UsageError(
            f"names types {unknown} that line {scenario.line.name!r} does not have "
            f"(its types: {', '.join(scenario.types)})",
            "hint",
            hint.source,
        )
    model = ZeroIdleModel(scenario)
    timeline = model.timeline
    stream = _stream_positions([index[name] for name in hint.types], len(scenario.types))
    b, coarse = scenario.batch_size, hint.batch_size
    placed: list[tuple[int, float, int]] = []  # (stream unit, due time, type)
    missing: list[tuple[float, int]] = []  # (due time, type)
    for k, count in enumerate(timeline.batches_needed()):
        for j in range(1, count + 1):
            due = timeline.due(k, j)
            due_s = float("inf") if due is None else float(due.time_s)
            unit = (j - 1) * b  # 0-based unit of type k this batch starts with
            m = unit // coarse  # the hint's batch of type k that holds it
            if m < len(stream[k]):
                placed.append((stream[k][m] * coarse + unit - m * coarse, due_s, k))
            else:
                missing.append((due_s, k))
    placed.sort()
    # a missing batch goes before the first placed batch due later than it: the first position
    # where the running maximum of the due times exceeds its own
    latest = list(accumulate((due_s for _, due_s, _ in placed), max))
    before: list[list[int]] = [[] for _ in range(len(placed) + 1)]
    for due_s, k in sorted(missing):
        before[bisect_right(latest, due_s)].append(k)
    out: list[int] = []
    for i, (_, _, k) in enumerate(placed):
        out.extend(before[i])
        out.append(k)
    out.extend(before[-1])
    return meet_deadlines(out, model) if repair else out


def meet_deadlines(sequence: Sequence[int], model: ZeroIdleModel) -> list[int]:
    """`sequence` (exactly the week's batches) reordered to meet every deadline of `model`, moving
    as little as it takes: from the last position back, each position takes the batch latest in
    `sequence` among those whose deadline allows that position. An order that meets them all is
    kept as it is; when no order can (or the sequence is not the week's batches), `sequence`."""
    plan = list(sequence)
    if not model.is_complete(plan) or not model.zero_idle_possible:
        return plan
    deadline = {(d.type, d.number): d.position for d in model.deadlines}
    seen = [0] * len(model.counts)
    batches = []  # (deadline position, position in the sequence, type), latest deadline first
    for i, k in enumerate(plan):
        seen[k] += 1
        batches.append((deadline.get((k, seen[k]), len(plan) - 1), i, k))
    batches.sort(reverse=True)
    out = [0] * len(plan)
    allowed: list[tuple[int, int]] = []  # (-position in the sequence, type): a max-heap
    nxt = 0
    for position in range(len(plan) - 1, -1, -1):
        while nxt < len(batches) and batches[nxt][0] >= position:
            heapq.heappush(allowed, (-batches[nxt][1], batches[nxt][2]))
            nxt += 1
        if not allowed:
            return plan
        out[position] = heapq.heappop(allowed)[1]
    return out


def _stream_positions(sequence: list[int], n_types: int) -> list[list[int]]:
    """Per type, the positions of its batches in `sequence`."""
    out: list[list[int]] = [[] for _ in range(n_types)]
    for i, k in enumerate(sequence):
        out[k].append(i)
    return out
