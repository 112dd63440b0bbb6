"""What the agent sees at a decision point: per type the demand ahead and the range of the buffer
stock, plus fill level and last type, normalised; and which types it may choose.

The `compact` observation keeps its length whatever the number of types (a plant-size line has
dozens): the action mask is pre-filtered to the `top_k` candidates -- the current type if it may
stay, then the cheapest changeovers, the most urgent type always among them -- and the agent
chooses a slot of that list (cheapest first). When no candidate keeps every zero-idle deadline
(PAS setup time or downtime, holidays, too few FAS for the types) the slots are the most urgent
candidates, most urgent first: staying by default would fill the buffer with a type the FAS do
not take and deadlock the line. Each slot shows its type's changeover effort,
deadline slack, demand and range; the types of each setup family (`setup_families`: the groups
the setup matrix makes cheap to change within) are aggregated into one row per family, the most
urgent `families` of them observed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.decision import DecisionRequest
from twin.env_settings import EnvSettings
from twin.forecast import Forecast
from twin.scenario import Scenario
from twin.slack import PositionSlack

OBS_LOW, OBS_HIGH = -1.0, 2.0
"""Bounds of every observation feature."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """A decision point seen through the forecast (times in working seconds)."""

    required_window: np.ndarray
    """Units per type the FAS take in the demand window beyond the buffer stock (>= 0)."""
    remaining: np.ndarray
    """Units per type still to take until the end of the plans, net of buffer stock."""
    range_s: np.ndarray
    """Working time until the stock of each type runs out; inf when it lasts the whole window."""
    candidates: tuple[int, ...]
    """The types the agent may choose (the action mask)."""
    freedom: np.ndarray | None = None
    """Per type the positions of freedom left in the demand window if it is built now (negative:
    a deadline will be missed); None unless the settings observe or mask deadlines."""
    first_due: np.ndarray | None = None
    """Per type the position by which its next batch must enter (inf: none due); None likewise."""
    runs: np.ndarray | None = None
    """Per type the batches it can be built in a row meeting every deadline (observation `runs`)."""
    slots: tuple[int, ...] | None = None
    """`compact`: the types the agent's actions stand for, slot by slot (cheapest changeover first;
    most urgent first when no candidate keeps every deadline)."""

    @property
    def allowed(self) -> tuple[int, ...]:
        """The types the agent may choose: the slots' when the actions are slots, else the candidates."""
        return self.candidates if self.slots is None else self.slots


SLOT_FEATURES = 8
"""`compact`: features per candidate slot (`Observer.observe_compact`)."""
FAMILY_FEATURES = 6
"""`compact`: features per setup family."""
GLOBAL_FEATURES = 4
"""`compact`: buffer fill, working time elapsed, batch size, candidates in the slots."""


def setup_families(matrix: np.ndarray) -> np.ndarray:
    """Per type its setup family (0, 1, ... in type order): the connected groups of the types
    whose changeovers both ways cost at most the threshold, the effort below the widest gap
    between the matrix's distinct off-diagonal efforts (the reference: 1-3 within a family,
    5-10 across, so 3). One family when all changeovers cost alike."""
    n = len(matrix)
    off = matrix[~np.eye(n, dtype=bool)]
    levels = np.unique(off)
    if len(levels) < 2:
        return np.zeros(n, dtype=np.int64)
    gap = int(np.argmax(np.diff(levels)))
    threshold = levels[gap]
    cheap = np.maximum(matrix, matrix.T) <= threshold
    family = np.full(n, -1, dtype=np.int64)
    count = 0
    for start in range(n):
        if family[start] >= 0:
            continue
        family[start], todo = count, [start]
        while todo:
            i = todo.pop()
            for j in np.flatnonzero(cheap[i] & (family < 0)):
                family[j] = count
                todo.append(int(j))
        count += 1
    return family


class Observer:
    """Turns decision requests of one scenario into assessments and observation vectors."""

    def __init__(self, scenario: Scenario, settings: EnvSettings) -> None:
        self.scenario = scenario
        self.settings = settings
        self.n_types = len(scenario.types)
        self.window_s = settings.demand_window_s
        self.window_units = sum(self.window_s / unit for unit in scenario.fas_unit_s)
        self.week_s = scenario.calendar.week_work_s
        self.capacity = scenario.line.buffer.capacity
        self.setup = np.asarray(scenario.setup_effort, dtype=np.float64)
        self.family = setup_families(self.setup)
        self.n_families = int(self.family.max()) + 1 if self.n_types else 0
        self.top_effort = max(float(self.setup.max()), 1.0)

    @staticmethod
    def size(n_types: int, settings: EnvSettings | None = None) -> int:
        """Length of the observation vector for a line with `n_types` types."""
        kind = settings.observation if settings else "basic"
        if settings is not None and kind == "compact":
            return SLOT_FEATURES * settings.top_k + FAMILY_FEATURES * settings.families + GLOBAL_FEATURES
        extra = {"basic": 0, "deadlines": 2, "runs": 3}[kind]
        return (4 + extra) * n_types + 3

    @staticmethod
    def actions(n_types: int, settings: EnvSettings | None = None) -> int:
        """Number of actions: the types, or with the `compact` observation the candidate slots."""
        return settings.top_k if settings is not None and settings.observation == "compact" else n_types

    @staticmethod
    def chosen(assessment: Assessment, action: int) -> int | None:
        """The type an action stands for (None: no allowed type)."""
        if assessment.slots is None:
            return action if action in assessment.candidates else None
        return assessment.slots[action] if 0 <= action < len(assessment.slots) else None

    @staticmethod
    def action_of(assessment: Assessment, k: int) -> int | None:
        """The action that chooses type k (None: the mask does not allow it)."""
        if assessment.slots is None:
            return k if k in assessment.candidates else None
        return assessment.slots.index(k) if k in assessment.slots else None

    def assess(self, request: DecisionRequest, mask_top_k: int | None = None) -> Assessment:
        forecast = Forecast(request)
        now = request.time_s
        stock = np.asarray(request.stock, dtype=np.int64)
        required = np.maximum(forecast.demand(now, now + self.window_s) - stock, 0)
        range_s = np.full(self.n_types, np.inf)
        slack = None
        if self.settings.observation != "basic" or self.settings.mask == "deadlines":
            slack = PositionSlack(request, forecast, self.settings.slack_horizon_s)
        for k in np.flatnonzero(required):
            if slack is not None and stock[k] < len(slack.takes[k]):  # the take that finds none
                range_s[k] = slack.takes[k][stock[k]] - now
                continue
            horizon = self.settings.slack_horizon_s
            if slack is not None and horizon is not None and horizon >= self.settings.range_scale_s:
                range_s[k] = horizon  # at least: observed as 1 all the same
                continue
            runout = forecast.runout_s(int(k))
            assert runout is not None  # the window's demand exceeds the stock
            range_s[k] = runout - now
        remaining = np.asarray(request.remaining, dtype=np.int64)
        candidates = request.valid
        freedom = first_due = runs = None
        feasible = True  # some candidate keeps every deadline
        if slack is not None:
            freedom, first_due = slack.freedom(self.window_s), slack.first_due
            if self.settings.observation == "runs":  # longer runs than 2 buffers' worth show as 2
                runs = slack.runs(int(OBS_HIGH * self.capacity / request.batch_size) + 1)
            if self.settings.mask == "deadlines" or self.settings.observation == "compact":
                meets = slack.meets()
                keeping = tuple(k for k in candidates if meets[k])
                feasible = bool(keeping)
                if self.settings.mask == "deadlines":
                    candidates = keeping or candidates
        if mask_top_k is not None and len(candidates) > mask_top_k:
            urgency = sorted(candidates, key=lambda k: (range_s[k], -required[k], -remaining[k], k))
            candidates = tuple(sorted(urgency[:mask_top_k]))
        slots = None
        if self.settings.observation == "compact":
            assert first_due is not None
            slots = self._slots(candidates, request.last_type, first_due, range_s, feasible)
        return Assessment(required, remaining, range_s, candidates, freedom, first_due, runs, slots)

    def _slots(
        self,
        candidates: tuple[int, ...],
        last: int | None,
        first_due: np.ndarray,
        range_s: np.ndarray,
        feasible: bool = True,
    ) -> tuple[int, ...]:
        """The `top_k` candidates, cheapest changeover first (staying costs nothing; ties: the
        earlier deadline, then the shorter range); the most urgent candidate takes the last
        slot when it is not among them. When no candidate keeps every deadline (`feasible`
        False), the most urgent first: earliest deadline, then shortest range, then the
        cheaper changeover -- the current type leads only when it is the most urgent."""

        def effort(k: int) -> float:
            return 0.0 if last is None else float(self.setup[last, k])

        if not feasible:
            urgency = sorted(candidates, key=lambda k: (first_due[k], range_s[k], effort(k), k))
            return tuple(urgency[: self.settings.top_k])
        order = sorted(candidates, key=lambda k: (effort(k), first_due[k], range_s[k], k))
        top = order[: self.settings.top_k]
        urgent = min(candidates, key=lambda k: (first_due[k], range_s[k], k))
        if urgent not in top:
            top[-1] = urgent
        return tuple(top)

    def mask(self, assessment: Assessment) -> np.ndarray:
        if assessment.slots is not None:
            slots = np.zeros(self.settings.top_k, dtype=bool)
            slots[: len(assessment.slots)] = True
            return slots
        mask = np.zeros(self.n_types, dtype=bool)
        mask[list(assessment.candidates)] = True
        return mask

    def observe(self, request: DecisionRequest, assessment: Assessment) -> np.ndarray:
        """The observation vector (see `LineEnv` for its table)."""
        if self.settings.observation == "compact":
            return self.observe_compact(request, assessment)
        n = self.n_types
        obs = np.zeros(self.size(n, self.settings), dtype=np.float32)
        obs[:n] = assessment.required_window / self.capacity
        obs[n : 2 * n] = assessment.remaining / self.window_units
        obs[2 * n : 3 * n] = np.minimum(assessment.range_s / self.settings.range_scale_s, 1.0)
        if request.last_type is not None:
            obs[3 * n + request.last_type] = 1.0
        obs[4 * n] = sum(request.stock) / self.capacity
        obs[4 * n + 1] = request.time_s / self.week_s
        obs[4 * n + 2] = request.batch_size / self.capacity
        if self.settings.observation != "basic":
            assert assessment.freedom is not None and assessment.first_due is not None
            units = request.batch_size / self.capacity  # positions as buffer shares: b-invariant
            obs[4 * n + 3 : 5 * n + 3] = assessment.freedom * units
            obs[5 * n + 3 : 6 * n + 3] = np.minimum(assessment.first_due * units, OBS_HIGH)
        if self.settings.observation == "runs":
            assert assessment.runs is not None
            obs[6 * n + 3 : 7 * n + 3] = assessment.runs * units
        return np.clip(obs, OBS_LOW, OBS_HIGH, out=obs)

    def observe_compact(self, request: DecisionRequest, assessment: Assessment) -> np.ndarray:
        """The `compact` observation: `top_k` slot rows, `families` family rows, 4 globals.

        Per slot (its type k; zeros when empty): changeover effort to k / the matrix's largest,
        k is the current type, k is in the current type's family, freedom left if built now and
        position of its next deadline (x batch size / capacity), units required in the demand
        window / capacity, units remaining / window capacity, range / range scale (<= 1).
        Per family, most urgent first (earliest deadline; zeros beyond the line's families): 1,
        it holds the current type, its required and remaining units (as above), its earliest
        deadline position, its cheapest changeover from the current type / the largest."""
        assert assessment.slots is not None and assessment.first_due is not None
        assert assessment.freedom is not None
        settings = self.settings
        units = request.batch_size / self.capacity
        last = request.last_type
        due = np.minimum(assessment.first_due * units, OBS_HIGH)
        effort = np.zeros(self.n_types) if last is None else self.setup[last] / self.top_effort
        mine = np.zeros(self.n_types, dtype=bool) if last is None else self.family == self.family[last]
        rows = np.zeros((self.n_types, SLOT_FEATURES), dtype=np.float64)
        rows[:, 0] = effort
        if last is not None:
            rows[last, 1] = 1.0
        rows[:, 2] = mine
        rows[:, 3] = assessment.freedom * units
        rows[:, 4] = due
        rows[:, 5] = assessment.required_window / self.capacity
        rows[:, 6] = assessment.remaining / self.window_units
        rows[:, 7] = np.minimum(assessment.range_s / settings.range_scale_s, 1.0)
        slots = np.zeros((settings.top_k, SLOT_FEATURES))
        slots[: len(assessment.slots)] = rows[list(assessment.slots)]
        families = np.zeros((settings.families, FAMILY_FEATURES))
        fam = self.family
        f_due = np.full(self.n_families, np.inf)
        np.minimum.at(f_due, fam, due)
        cheapest = np.full(self.n_families, np.inf)
        np.minimum.at(cheapest, fam, effort)
        required = np.bincount(fam, assessment.required_window, self.n_families) / self.capacity
        remaining = np.bincount(fam, np.maximum(assessment.remaining, 0), self.n_families)
        order = sorted(range(self.n_families), key=lambda f: (f_due[f], f))[: settings.families]
        for row, f in enumerate(order):
            current = last is not None and fam[last] == f
            share = remaining[f] / self.window_units
            families[row] = (1.0, current, required[f], share, f_due[f], cheapest[f])
        glob = (
            sum(request.stock) / self.capacity,
            request.time_s / self.week_s,
            request.batch_size / self.capacity,
            len(assessment.slots) / settings.top_k,
        )
        obs = np.concatenate([slots.ravel(), families.ravel(), glob]).astype(np.float32)
        return np.clip(obs, OBS_LOW, OBS_HIGH, out=obs)
