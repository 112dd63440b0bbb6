"""The re-planner without a bus: a plan of the rest of the week from a mirrored state, its steps and
totals against the twin, the stability rule, the plan follower, and bad settings."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses

import pytest
from builders import make_line, make_scenario, make_week

from agent.cli import main
from agent.errors import UsageError
from agent.live.liveplan import LivePlan, PlanJob, PlanStep, plan_rest
from agent.live.replanner import IMPROVE, Replanner, ReplanSettings
from agent.planners.policies import FollowPolicy, SequencePolicy, SetupAwarePolicy
from twin import Decision, DecisionRequest, Line, Scenario, simulate
from twin.outlook import Expected, state_key

MATRIX = [[0, 3, 9, 4], [5, 0, 2, 8], [7, 6, 0, 3], [2, 9, 5, 0]]
NOTHING = Expected(0, 0.0, 0, False, 0)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    line = make_line(types=4, fas_units=(10, 10), capacity=40, batch_size=10, matrix=MATRIX)
    plans = [[(0, 40), (1, 40), (2, 30), (3, 40)], [(2, 30), (3, 40), (0, 40), (1, 50)]]
    return make_scenario(line, make_week(line, plans, stock=[10, 0, 10, 0]))


def _job(scenario: Scenario, planner: str, decisions: int) -> PlanJob:
    """At decision point `decisions` of setup-aware's week, that decision dispatched (not started)."""
    line = Line(scenario)
    request = line.start()
    rule = SetupAwarePolicy()
    for _ in range(decisions):
        assert request is not None
        request = line.decide(rule(request))
    assert request is not None
    kpis = line.trace.batches
    so_far = Expected(line.idle_so_far(request.time_s), sum(b.setup_effort for b in kpis),
                      sum(b.changeover for b in kpis), False, request.time_s)  # fmt: skip
    snapshot, first = line.snapshot(), rule(request)
    return PlanJob(
        1, scenario, snapshot, first, (), "setup-aware", 0, planner, 0, None, 60, 2.0, IMPROVE, 0, so_far
    )


def _answer(plan: LivePlan, request: DecisionRequest, tolerance_s: int) -> PlanStep | None:
    """What the service's re-planner answers at `request` with `plan` in force."""
    replanner = Replanner(ReplanSettings(tolerance_s=tolerance_s))
    replanner.take(plan)
    return replanner.step(request, plan.revision)


@pytest.mark.parametrize("decisions", [0, 5])
def test_a_plan_of_the_rest_is_what_the_twin_does_when_followed(scenario: Scenario, decisions: int) -> None:
    """Following the plan from the job's state meets every step's predicted state and time, and
    the week's totals (KPIs so far plus forecast) are the twin's whole week of those decisions."""
    job = _job(scenario, "best", decisions)
    plan = plan_rest(job)
    assert plan is not None and plan.anchor == decisions + 1 and plan.source == "dp (exact)"
    line = Line(scenario, None, job.snapshot)
    request = line.start()
    assert request is not None and job.first is not None
    request = line.decide(job.first)
    for step in plan.steps:
        assert request is not None and (request.index, state_key(request)) == (step.index, step.key)
        assert request.time_s == step.time_s and _answer(plan, request, 0) == step
        request = line.decide(Decision(step.type))
    assert request is None

    rule_week = Line(scenario)
    r = rule_week.start()
    rule = SetupAwarePolicy()
    for _ in range(decisions + 1):
        assert r is not None
        r = rule_week.decide(rule(r))
    prefix = [b.type for b in rule_week.trace.batches]
    whole, _ = simulate(
        scenario, SequencePolicy.of_types(prefix + [s.type for s in plan.steps], scenario.types)
    )
    assert (plan.week.idle_s, plan.week.setup_effort, plan.week.setups) == (
        whole.idle_s, whole.setup_effort, whole.setups)  # fmt: skip
    assert [b.position for b in plan.schedule] == list(range(decisions + 2, decisions + 2 + len(plan.steps)))
    assert plan.expected.setup_effort == plan.steps[0].setup_effort


def test_a_better_plan_changes_the_next_dispatches_only_by_more_than_the_margin(scenario: Scenario) -> None:
    """An improvement is compared with the plan in force simulated from the same state (the worker
    does both), and taken if better: by more than the margin where it changes the next dispatches."""
    rule = plan_rest(_job(scenario, "setup-aware", 3))
    assert rule is not None and rule.kept is None  # no plan was in force
    best = plan_rest(dataclasses.replace(_job(scenario, "best", 3), incumbent=rule.steps))
    assert best is not None and best.kept is not None and best.anchor == rule.anchor
    assert best.kept == (rule.expected.idle_s, rule.expected.setup_effort, rule.types_from(rule.anchor))
    saved = rule.expected.setup_effort - best.expected.setup_effort
    assert saved > 0 and rule.types_from(4)[:2] != best.types_from(4)[:2]

    def verdict(**settings: object) -> tuple[bool, float | None]:
        replanner = Replanner(ReplanSettings(**settings))  # type: ignore[arg-type]
        replanner.take(rule)
        return replanner._adopt(best), replanner.gain

    share = saved / rule.expected.setup_effort
    assert verdict(keep=2, margin=share * 0.9) == (True, saved)  # better by more than the margin
    assert verdict(keep=2, margin=share * 1.1) == (False, saved)  # by less: the next 2 stay
    assert verdict(keep=0, margin=share * 1.1) == (True, saved)  # nothing kept: any gain changes it

    replanner = Replanner(ReplanSettings())
    replanner.take(best)
    again = plan_rest(dataclasses.replace(_job(scenario, "setup-aware", 3), incumbent=best.steps))
    assert again is not None and again.source == "current plan"  # the rule is worse: the plan stays
    assert (replanner._adopt(again), replanner.gain) == (False, None)  # no better: not taken
    assert replanner._adopt(dataclasses.replace(again, revision=1))  # another week plan: it applies
    assert replanner._adopt(dataclasses.replace(again, reason="PAS up again"))  # after a deviation: taken


def test_a_job_that_takes_line_time_plans_from_a_later_decision_point(scenario: Scenario) -> None:
    """While the worker plans, the service dispatches from the current plan (here setup-aware's
    rest, so the same decisions as the fallback's): the plan starts after the job's line time, its
    first step is what the line meets there, and its week totals include the decisions meanwhile."""
    current = plan_rest(_job(scenario, "setup-aware", 3))
    assert current is not None
    job = dataclasses.replace(_job(scenario, "best", 3), incumbent=current.steps, lead_s=200)
    plan = plan_rest(job)
    assert plan is not None and plan.anchor > current.anchor + 1
    ahead = current.steps[plan.anchor - current.anchor]
    assert (
        plan.steps[0].key == ahead.key and plan.steps[0].time_s == ahead.time_s >= job.snapshot.time_s + 200
    )
    meanwhile = [s.type for s in current.steps[: plan.anchor - current.anchor]]
    line = Line(scenario)
    request = line.start()
    rule = SetupAwarePolicy()
    for _ in range(4):
        assert request is not None
        request = line.decide(rule(request))
    prefix = [b.type for b in line.trace.batches]
    whole, _ = simulate(
        scenario, SequencePolicy.of_types(prefix + meanwhile + [s.type for s in plan.steps], scenario.types)
    )
    assert (plan.week.idle_s, plan.week.setup_effort) == (whole.idle_s, whole.setup_effort)


def test_a_plan_adopted_before_its_first_decision_takes_over_there(scenario: Scenario) -> None:
    """Until the new plan's first decision the plan in force answers (the worker planned the rest
    from there assuming just that)."""
    current = plan_rest(_job(scenario, "setup-aware", 3))
    assert current is not None
    new = plan_rest(dataclasses.replace(_job(scenario, "best", 3), incumbent=current.steps, lead_s=200))
    assert new is not None and new.anchor > current.anchor
    replanner = Replanner(ReplanSettings())
    replanner.take(current)
    replanner.take(new)
    assert [replanner.steps[i] for i in range(current.anchor, new.anchor)] == list(
        current.steps[: new.anchor - current.anchor]
    )
    assert [replanner.steps[i] for i in range(new.anchor, new.anchor + len(new.steps))] == list(new.steps)
    replanner.take(dataclasses.replace(new, revision=1))  # another week plan: nothing of the old one
    assert min(replanner.steps) == new.anchor


def _finished(replanner: Replanner, plan: object) -> None:
    """As if the worker had just returned `plan`."""
    done: cf.Future[object] = cf.Future()
    done.set_result(plan)
    replanner._future = done  # type: ignore[assignment]


def test_a_plan_that_comes_after_its_first_decision_is_taken_only_if_that_went_its_way(
    scenario: Scenario,
) -> None:
    plan = plan_rest(_job(scenario, "best", 3))
    assert plan is not None
    first = plan.steps[0]
    replanner = Replanner(ReplanSettings())
    _finished(replanner, plan)
    other = next(k for k in range(4) if k != first.type)
    assert replanner.poll(0, plan.anchor + 1, {plan.anchor: other}) is None  # it went another way
    assert (replanner.counts.late, replanner.wanted, replanner.plan) == (1, "left the plan", None)
    _finished(replanner, plan)
    assert replanner.poll(0, plan.anchor + 1, {plan.anchor: first.type}) is plan  # its rest holds
    assert replanner.counts.adopted == 1 and replanner.revision == 1


def test_the_plan_answers_a_decision_point_a_little_off_its_time_and_not_another(scenario: Scenario) -> None:
    plan = plan_rest(_job(scenario, "best", 2))
    assert plan is not None
    line = Line(scenario, None, _job(scenario, "best", 2).snapshot)
    request = line.start()
    assert request is not None
    request = line.decide(SetupAwarePolicy()(request))
    assert request is not None and _answer(plan, request, 0) == plan.steps[0]
    off = dataclasses.replace(request, time_s=request.time_s + 60)
    assert _answer(plan, off, 60) == plan.steps[0] and _answer(plan, off, 59) is None
    other = next(k for k in range(4) if k != request.last_type)
    assert _answer(plan, dataclasses.replace(request, last_type=other), 60) is None  # another type was built
    assert _answer(plan, dataclasses.replace(request, index=request.index + 1), 60) != plan.steps[0]


def test_the_follower_takes_the_plan_s_next_valid_type_then_the_fallback(scenario: Scenario) -> None:
    line = Line(scenario)
    request = line.start()
    assert request is not None and request.valid == (0, 1, 2, 3)
    follow = FollowPolicy([0, 2], SetupAwarePolicy())
    assert follow(request) == Decision(0)
    narrowed = dataclasses.replace(request, valid=(1, 3))
    assert follow(narrowed) == SetupAwarePolicy()(narrowed)  # 2 is not valid: dropped, the rule decides
    follow.reset()
    assert follow(request) == Decision(0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"share": 0.0}, "plan_share 0: must be above 0"),
        ({"share": 1.5}, "plan_share 1.5: must be above 0 and at most 1"),
        ({"max_s": 0.5}, "plan_max 0.5: must be at least 1"),
        ({"keep": -1}, "plan_keep -1"),
        ({"margin": -0.1}, "plan_margin -0.1"),
        ({"planner": "nope"}, "planner nope: unknown planner"),
        ({"planner": "best,cpsat"}, "planner best,cpsat: takes one planner"),
    ],
)
def test_bad_settings_name_their_parameter(settings: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        ReplanSettings(**settings).spec()  # type: ignore[arg-type]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--planner", "nope"], "--planner nope: unknown planner 'nope'"),
        (["--planner", "best", "--plan-share", "2"], "--plan-share 2: must be above 0 and at most 1"),
        (["--planner", "best", "--plan-max", "0.5"], "--plan-max 0.5: must be at least 1"),
        (["--plan-share", "0.3"], "--plan-share 0.3: only with --planner"),
        (["--plan-keep", "2"], "--plan-keep 2: only with --planner"),
        (
            ["--policy", "best"],
            "--policy best: plans the rest of the week, it is no policy: dispatch from its plan "
            "with --planner best",
        ),
        (["--planner", "rules"], "--planner rules: takes one planner (`rules` stands for every rule)"),
    ],
)
def test_serve_says_a_bad_planner_setting_in_one_line_before_it_connects(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["serve", "--policy", "setup-aware", "--port", "1", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linetwin: error:") and message in err and len(err.splitlines()) == 1


def test_one_replan_answers_every_pending_reason_and_is_labelled_with_the_weightiest() -> None:
    replanner = Replanner(ReplanSettings())
    for reason in (IMPROVE, "left the plan", "the PAS built T3", "off the plan's pace", "FAS1 up again"):
        replanner.want(reason)
    assert replanner.wanted == "the PAS built T3"  # what the line did, not its consequence
    replanner.wanted = None
    replanner.want(IMPROVE)
    replanner.want("left the plan")
    assert replanner.wanted == "left the plan"
