"""The service's live planning: when to re-plan, which dispatch came from the plan, and the timed
PAS plan on the bus (`{root}/twin/plan/pas`, retained). The planning itself runs in the
re-planner's worker process (`agent.live.replanner`); nothing here waits for it."""

from __future__ import annotations

import dataclasses
import logging

from agent.live.liveplan import LivePlan
from agent.live.replanner import IMPROVE, LEFT_PLAN, OFF_PACE, Replanner
from bridge.messages import PasPlanMsg, PlanProvenanceMsg, PlanRefMsg
from bridge.outbound import pas_plan_message
from bridge.topics import Topics
from twin import Decision
from twin.events import BatchStarted, LineEvent, PlanRevised, StationUp, StockCounted
from twin.mirror import Mirror
from twin.outlook import Call, Expected, Outlook, state_key

log = logging.getLogger(__name__)


class LivePlanning:
    """Ties the re-planner to the mirror and the outlook of one service."""

    def __init__(self, replanner: Replanner, mirror: Mirror, outlook: Outlook) -> None:
        self.replanner = replanner
        self.mirror = mirror
        self.outlook = outlook
        self.dispatched: tuple[int, Decision] | None = None
        """The last decision dispatched: (decision index, decision)."""
        self.decided: dict[int, int] = {}
        """The type of each batch by decision index: as built, or dispatched and not started yet."""
        self.message: PasPlanMsg | None = None
        """The plan published last."""
        replanner.want("week start")

    @property
    def planner(self) -> str:
        return self.replanner.settings.planner

    def read(self, call: Call) -> tuple[Call, str]:
        """`call` as dispatched and its `policy`: read from the plan (the planner's name; the plan's
        forecast from there where the outlook has none yet, as after a plan adopted since the last
        decision), else the fallback's name and `(fallback)`; counted."""
        replanner = self.replanner
        step = replanner.step(call.request, self.mirror.revision)
        if step is None or replanner.plan is None:
            replanner.counts.fallback += 1
            return call, f"{replanner.fallback.name} (fallback)"
        replanner.counts.from_plan += 1
        if call.expected is None:
            total = replanner.plan.expected
            expected = Expected(step.idle_s, step.setup_effort, step.setups, total.deadlock, total.end_s)
            call = dataclasses.replace(call, expected=expected)
        return call, self.planner

    def dispatched_now(self, call: Call) -> None:
        """A dispatch left: re-plan from the decision point after it when the plan did not cover
        this one, drifted from it, or is not proved optimal."""
        self.dispatched = (call.request.index, call.decision)
        self.decided[call.request.index] = call.decision.type
        replanner = self.replanner
        step = replanner.step(call.request, self.mirror.revision)
        plan = replanner.plan
        if step is None:
            replanner.want(LEFT_PLAN)
        elif step.key != state_key(call.request):  # the time or the state is off the plan's
            replanner.want(OFF_PACE)
        elif plan is not None and plan.stopped == "time limit":  # more time may find a better one
            replanner.want(IMPROVE)

    def observed(self, event: LineEvent, received_at: float | None) -> None:
        """An applied event: the line's pace, and whether the line left the plan."""
        replanner = self.replanner
        if received_at is not None:
            replanner.pace.observe(received_at, self.mirror.now_s)
        if isinstance(event, PlanRevised):
            replanner.want("plan revision")
        elif isinstance(event, StationUp):
            replanner.want(f"{event.station} up again")
        elif isinstance(event, StockCounted):
            replanner.want("stock correction")
        elif isinstance(event, BatchStarted):
            index = self.mirror.pas.started - 1
            built = self.mirror.scenario.types.index(event.type)
            if self.decided.get(index, built) != built:  # it had been dispatched as another type
                replanner.want(f"the PAS built {event.type}")
            self.decided[index] = built

    def pump(self) -> LivePlan | None:
        """Poll the worker (a plan adopted now is returned), then send the wanted re-plan when the
        next decision point lies ahead: the PAS is busy, or its decision was just dispatched."""
        replanner = self.replanner
        mirror = self.mirror
        adopted = replanner.poll(mirror.revision, self.next_decision, self.decided)
        if adopted is not None:
            self.outlook.forget()  # its projection was simulated with the plan before
        if replanner.wanted is None or replanner.busy or not mirror.plan_known or mirror.any_down:
            return adopted  # (a snapshot knows no downtime: the plan is made when all are up again)
        if replanner.pace.per_wall_s() is None:
            return adopted  # the line's pace sets the budget and how far ahead to plan: wait for it
        first = None
        if mirror.pas.batch is None:
            if self.dispatched is None or self.dispatched[0] != mirror.pas.started:
                return adopted  # a decision is pending: plan once it has left
            first = self.dispatched[1]
        scenario = mirror.scenario
        pas = scenario.line.pas
        batch_s = scenario.batch_size * pas.unit_time_s + pas.setup_time_s
        kpis = mirror.kpis()
        so_far = Expected(kpis.idle_s, kpis.setup_effort, kpis.setups, False, mirror.now_s)
        replanner.submit(scenario, mirror.snapshot(), first, mirror.revision, batch_s, so_far)
        return adopted

    @property
    def next_decision(self) -> int:
        """The index of the next decision point not answered yet."""
        pas = self.mirror.pas
        answered = pas.batch is None and self.dispatched is not None and self.dispatched[0] == pas.started
        return pas.started + answered

    def plan_message(self, plan: LivePlan) -> PasPlanMsg:
        """The retained timed plan of `plan` (remembered as the one published last)."""
        replanner = self.replanner
        provenance = PlanProvenanceMsg(
            planner=plan.planner,
            source=plan.source,
            reason=plan.reason,
            bound=plan.bound,
            gap=plan.gap,
            stopped=plan.stopped,
            planning_s=round(plan.planning_s, 3),
            from_position=plan.anchor + 1,
        )
        upcoming = [b for b in plan.schedule if b.position > self.next_decision]  # not dispatched yet
        self.message = pas_plan_message(
            self.mirror,
            replanner.revision,
            upcoming,
            plan.expected,
            provenance,
            replanner.gain,
            plan.week,
        )
        return self.message

    def ref(self, topics: Topics) -> PlanRefMsg | None:
        """Where `twin/state` says the current plan is (None before the first)."""
        if self.message is None:
            return None
        return PlanRefMsg(
            topic=topics.pas_plan, revision=self.message.revision, next_position=self.next_decision + 1
        )

    def summary(self) -> str:
        """One line for the end of `serve`."""
        c = self.replanner.counts
        return (
            f"planner {self.planner}: {c.jobs} plan{'' if c.jobs == 1 else 's'} made ({c.adopted} adopted, "
            f"{c.kept} kept the current plan, {c.late} late, {c.stale} stale, {c.failed} failed), "
            f"dispatches {c.from_plan} from the plan and {c.fallback} by fallback, "
            f"planner CPU {c.cpu_s:.1f} s, wall {c.planning_s:.1f} s"
        )
