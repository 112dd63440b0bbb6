"""Anytime re-planning for the live service: the plan in force, the worker process that keeps
re-planning the rest of the week from the mirrored state, and the stability rule; the bus loop
never waits for it.

The next decision is known a whole batch ahead. At week start, after a restart, whenever the line
leaves the plan (downtime, a stock correction, a plan revision, a PAS that built another type, a
decision point off the plan's state or time) and after every dispatch from a plan that its planner's
time limit stopped, a job goes to the worker (`agent.live.liveplan`): the mirror's snapshot, the
decision just dispatched, the steps in force and a budget (a share of the current batch's expected
wall duration at the line's measured pace).

A dispatch is read from the steps in force where the decision point is one they predicted (`meets`),
else the fast fallback policy answers. A plan made after a deviation replaces the one in force; an
improvement must beat the plan in force simulated from the same state, and by more than `margin`
where it changes the next `keep` dispatches (a plan that keeps changing is one nobody on the floor
trusts). A plan whose first decisions went another way while it was made is dropped (late).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent.errors import ModelError, UsageError
from agent.live.liveplan import (
    LivePlan,
    PlanJob,
    PlanStep,
    answer,
    plan_rest,
    planner_spec,
    warm_up,
    worker_started,
)
from agent.planners.policies import Policy, SetupAwarePolicy
from agent.planners.registry import BEST, RL, PlannerSpec, make_policy
from bridge.messages import PasPlanMsg
from twin import Decision, DecisionRequest, Scenario
from twin.mirror import Mirror
from twin.outlook import Expected
from twin.snapshot import LineSnapshot

log = logging.getLogger(__name__)

REVISION_MAX = 2**31
"""A retained plan's revision above this is not this service's (plans are numbered from 1 then)."""
WARM_UP_S = 5.0
"""Wall seconds a job may wait for the worker to import the planners (the first job of a start)."""
IMPROVE = "improve"
"""The reason of a re-plan that no deviation asked for."""
LEFT_PLAN = "left the plan"
"""The reason when a dispatch had no step of the plan in force (or a plan came too late)."""
OFF_PACE = "off the plan's pace"
"""The reason when a dispatch's time or state was off its step's."""
FOLLOW_UPS = (LEFT_PLAN, OFF_PACE)
"""Reasons the dispatches give (they left the plan): often the consequence of what the line did."""


def _weight(reason: str) -> int:
    """2 for what the line did, 1 for a follow-up, 0 for `improve` (see `Replanner.want`)."""
    return 0 if reason == IMPROVE else 1 if reason in FOLLOW_UPS else 2


LEAD = 1.5
"""A job plans from the first decision point after this many times the line time it is expected
to take (what the last jobs took, the budget for the first: the plan must be in before its first
decision)."""


@dataclass(frozen=True)
class ReplanSettings:
    """How the service re-plans and how stable its plan is."""

    planner: str = BEST
    """A planner of the portfolio (`best`, `cpsat`, `rollout:RULE`, `beam:RULE`, a rule, `rl`)."""
    share: float = 0.5
    """Budget of a re-plan: this share of the current batch's expected wall duration,"""
    min_s: float = 1.0
    max_s: float = 120.0
    """bounded by these (wall seconds)."""
    keep: int = 3
    """The next `keep` dispatches of the current plan stay unless a new plan is better by more than"""
    margin: float = 0.02
    """this share of the current plan's setup effort to the end of the week (any less idle time is
    always taken)."""
    tolerance_s: int = 60
    """A decision point this many working seconds off the plan's still is the plan's (the plan is
    followed there, and re-planned from the real state)."""
    seed: int = 0
    model: Path | None = None
    """The trained agent for `rl` (None: the shipped one)."""

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise UsageError("must be above 0 and at most 1", "plan_share", f"{self.share:g}")
        if self.min_s <= 0 or self.max_s < self.min_s:
            raise UsageError(
                f"must be at least {self.min_s:g} (the least a re-plan gets)", "plan_max", f"{self.max_s:g}"
            )
        if self.keep < 0:
            raise UsageError("must not be negative", "plan_keep", self.keep)
        if self.margin < 0:
            raise UsageError("must not be negative", "plan_margin", f"{self.margin:g}")
        if self.tolerance_s < 0:
            raise UsageError("must not be negative", "plan_tolerance", self.tolerance_s)

    def spec(self) -> PlannerSpec:
        """The planner, checked (UsageError naming `planner`)."""
        return planner_spec(self.planner, self.model)


# -- the service's side ----------------------------------------------------------------------
@dataclass
class ReplanCounts:
    """What the re-planner did so far."""

    jobs: int = 0
    adopted: int = 0
    kept: int = 0
    """New plans not taken: not better, or better by less than the margin where they changed the
    next dispatches."""
    stale: int = 0
    """Results for another week plan revision, dropped."""
    late: int = 0
    """Plans that came after their first decision point, which went another way: dropped."""
    failed: int = 0
    from_plan: int = 0
    fallback: int = 0
    """Dispatches read from the plan, and answered by the fallback policy."""
    cpu_s: float = 0.0
    planning_s: float = 0.0


@dataclass
class Pace:
    """Line working seconds per wall second, from the recent events (None until known)."""

    window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=1024))

    def observe(self, wall: float, line_s: int) -> None:
        self.window.append((wall, line_s))

    def per_wall_s(self) -> float | None:
        if len(self.window) < 2:
            return None
        (w0, l0), (w1, l1) = self.window[0], self.window[-1]
        if w1 - w0 < 0.05 or l1 <= l0:
            return None
        return (l1 - l0) / (w1 - w0)


class Replanner:
    """The current plan, the worker process and the stability rule (see the module docstring)."""

    def __init__(self, settings: ReplanSettings, fallback: Policy | None = None) -> None:
        """Raises UsageError for a planner that cannot plan (e.g. an agent's model not found)."""
        spec = settings.spec()
        if RL in (spec.kind, spec.base):  # the worker would fail at every job: say so now
            try:
                make_policy(spec.policy_label, settings.seed, spec.model)
            except (UsageError, ModelError) as exc:
                raise UsageError(str(exc), "planner", settings.planner) from None
        self.settings = replace(settings, planner=settings.planner.strip())
        self.fallback = fallback or SetupAwarePolicy()
        self.plan: LivePlan | None = None
        self.steps: dict[int, PlanStep] = {}
        """The steps in force by decision index: the last plan's, and before its first decision the
        plan's it replaced (adopted before its first decision, it takes over from there)."""
        self.revision = 0
        """Revision of the last plan adopted (the plan topic's; continued from the retained one)."""
        self.counts = ReplanCounts()
        self.pace = Pace()
        self.wanted: str | None = None
        """Why a re-plan is due (None: none)."""
        self.gain: float | None = None
        """Setup effort the last adopted plan saves against the one it replaced."""
        self._executor: cf.ProcessPoolExecutor | None = None
        self._future: cf.Future[LivePlan | None] | None = None
        self._pid: int | None = None
        self._tokens = 0
        self._took: deque[float] = deque(maxlen=3)  # wall seconds of the last jobs, submit to result
        self._submitted = 0.0

    # -- the decider -------------------------------------------------------------------------
    def step(self, request: DecisionRequest, revision: int) -> PlanStep | None:
        """The step in force for `request` under week plan `revision` (None: not covered)."""
        if self.plan is None or self.plan.revision != revision:
            return None
        return answer(self.steps, request, self.settings.tolerance_s)

    # -- jobs --------------------------------------------------------------------------------
    def continue_after(self, retained: bytes | None) -> None:
        """Number plans on from the retained plan of an earlier run (its revision; ignored if bad)."""
        if retained:
            try:
                revision = PasPlanMsg.model_validate_json(retained).revision
            except ValueError:
                log.warning("the retained plan on the plan topic is not one: plans are numbered from 1")
                return
            if not 0 <= revision < REVISION_MAX:
                log.warning(
                    "the retained plan's revision %d is out of range: plans are numbered from 1", revision
                )
                return
            self.revision = max(self.revision, revision)

    def want(self, reason: str) -> None:
        """A re-plan is due for `reason`. One re-plan answers every reason pending, labelled
        with the weightiest (the first of equals): what the line did (the PAS built another
        type, a station up, a revision, a correction, week start) outranks the dispatches' having
        left the plan or its pace (their consequence), which outranks `improve`."""
        if self.wanted is None or _weight(reason) > _weight(self.wanted):
            self.wanted = reason

    def start(self) -> None:
        """Start the worker process and import the planners in it (returns at once)."""
        if self._executor is None:
            ctx = multiprocessing.get_context("spawn")
            self._executor = cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=worker_started)
            pid = self._executor.submit(warm_up)
            pid.add_done_callback(self._note_pid)

    def _note_pid(self, future: cf.Future[int]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._pid = future.result()

    @property
    def busy(self) -> bool:
        return self._future is not None

    def submit(
        self,
        scenario: Scenario,
        snapshot: LineSnapshot,
        first: Decision | None,
        revision: int,
        batch_s: float,
        so_far: Expected,
    ) -> None:
        """Send the wanted re-plan to the worker (the caller checks `busy` and `wanted`)."""
        self.start()
        assert self._executor is not None
        reason = self.wanted or IMPROVE
        self.wanted = None
        pace = self.pace.per_wall_s()
        if pace is None:  # not known yet (week start, a restart): a short plan, improved later
            budget, pace = self.settings.min_s, 1.0
        else:
            budget = min(self.settings.max_s, max(self.settings.min_s, self.settings.share * batch_s / pace))
        in_force = self.plan is not None and self.plan.revision == revision
        incumbent = (
            tuple(s for i, s in sorted(self.steps.items()) if i >= snapshot.decisions) if in_force else ()
        )
        warming = WARM_UP_S if self._pid is None else 0.0  # the worker is still importing the planners
        took = max(self._took, default=budget + warming)  # early when the plan is proved optimal, else later
        lead_s = int((took + 0.1) * pace * LEAD)
        self._tokens += 1
        job = PlanJob(
            self._tokens,
            scenario,
            snapshot,
            first,
            incumbent,
            self.fallback.name,
            lead_s,
            self.settings.planner,
            self.settings.seed,
            self.settings.model,
            self.settings.tolerance_s,
            budget,
            reason,
            revision,
            so_far,
        )
        self._future = self._executor.submit(plan_rest, job)
        self._submitted = time.perf_counter()
        self.counts.jobs += 1

    def poll(self, revision: int, next_decision: int, decided: Mapping[int, int]) -> LivePlan | None:
        """The finished job's plan if it is adopted now; None otherwise (never waits). A plan whose
        first decisions were made meanwhile (`decided`: type by decision index) is taken only if
        they are the plan's (its rest then still holds); else it is late: a re-plan follows."""
        future = self._future
        if future is None or not future.done():
            return None
        self._future = None
        self._took.append(time.perf_counter() - self._submitted)
        try:
            plan = future.result()
        except Exception as exc:  # a planner's bug, or the worker died: the fallback goes on
            cause = f"\n{exc.__cause__}" if exc.__cause__ is not None else ""  # the worker's traceback
            log.error("re-planning failed: %s: %s%s", type(exc).__name__, exc, cause)
            self.counts.failed += 1
            if isinstance(exc, cf.process.BrokenProcessPool):
                self._executor = None
            return None
        if plan is None:
            return None
        log.info(
            "plan of job %d (%s) from decision %d in %.2f s, the line at decision %d: %s, effort %g",
            plan.token, plan.reason, plan.anchor, self._took[-1], next_decision, plan.source,
            plan.expected.setup_effort,
        )  # fmt: skip
        self._pid = plan.pid
        self.counts.cpu_s += plan.cpu_s
        self.counts.planning_s += plan.planning_s
        if plan.revision != revision:
            self.counts.stale += 1
            self.want("plan revision")
            return None
        passed = plan.steps[: max(0, next_decision - plan.anchor)]
        if any(decided.get(s.index) != s.type for s in passed):
            self.counts.late += 1
            self.want(LEFT_PLAN)
            return None
        if not self._adopt(plan):
            self.counts.kept += 1
            return None
        self.take(plan)
        self.revision += 1
        self.counts.adopted += 1
        return plan

    def take(self, plan: LivePlan) -> None:
        """Put `plan` in force (its steps; before its first decision, those of the plan in force)."""
        same = self.plan is not None and self.plan.revision == plan.revision
        before = {i: s for i, s in self.steps.items() if i < plan.anchor} if same else {}
        self.steps = before | {s.index: s for s in plan.steps}
        self.plan = plan

    def _adopt(self, new: LivePlan) -> bool:
        """The stability rule; sets `gain`. A plan made after a deviation replaces the current one
        (made before it: its forecast no longer holds); an improvement must be better."""
        current = self.plan
        self.gain = None
        if current is None or current.revision != new.revision or new.kept is None or new.reason != IMPROVE:
            return True
        idle, effort, types = new.kept  # the plan in force from the same state, simulated as the new one
        mine = new.expected
        self.gain = effort - mine.setup_effort
        if mine.idle_s < idle:
            return True
        if mine.idle_s > idle or mine.setup_effort >= effort - 1e-9:
            self.gain = None
            return False
        keep = self.settings.keep
        if types[:keep] == new.types_from(new.anchor)[:keep]:
            return True
        return mine.setup_effort < effort * (1 - self.settings.margin) - 1e-9

    def close(self) -> None:
        """Stop the worker (a job in progress is abandoned)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        if self._future is not None and self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
        self._future = None


class PlanDecider:
    """The service's decider: the plan's step where it predicted the decision point, else the
    fallback policy (pure: the outlook also simulates with it)."""

    def __init__(self, replanner: Replanner, mirror: Mirror) -> None:
        self.replanner = replanner
        self.mirror = mirror

    def __call__(self, request: DecisionRequest) -> Decision:
        step = self.replanner.step(request, self.mirror.revision)
        if step is not None:
            return Decision(step.type, step.quantity)
        return self.replanner.fallback(request)
