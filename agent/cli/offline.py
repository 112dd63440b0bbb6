"""The offline commands: `simulate`, `plan`, `compare`, `demo` and `evaluate` (a week planned and
run in the twin, its results.json, sequence, schedule and plots in --out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli.flags import JOBS_MAX, count, jobs, natural, not_negative, path_arg
from agent.cli.inputs import common_options, load_scenario, policy_options
from agent.cli.live import checked_influx, write_points
from agent.cli.outputs import check_out, force_option, plot_window, run_header, write_run, zoom_options
from agent.errors import UsageError
from agent.planners.policies import RULES, Policy, SequencePolicy
from agent.planners.registry import (
    BEST,
    CPSAT,
    DECISION_TIME_S,
    DEFAULT_MODEL,
    RL,
    RL_ROLLOUT,
    SEARCHES,
    PlannerSpec,
    make_policy,
    parse_planners,
)
from agent.planners.run import PlannedRun, kpi_table, made_for, run_planner
from bridge.points import simulated_points
from twin import Scenario, SequenceEntry, load_sequence
from twin.config import check_sequence, load_sequence_origin, sequence_quantities
from twin.results import failure, rank_key

if TYPE_CHECKING:
    from agent.planners.compare import Comparison, PlanSettings

# OR-Tools (CP-SAT) loads only in the commands that plan with it: `--help`, `validate` and the
# rules start without it.


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.line, args.week, args.batch_size)
    line = scenario.line
    if (args.policy is None) == (args.sequence is None):
        raise UsageError("give exactly one of --policy NAME or --sequence FILE")
    if args.sequence is not None and args.model is not None:
        raise UsageError(f"--model is for --policy {RL}; --sequence replays the file as it is")
    policy: Policy
    meta = run_header(args, scenario)
    if args.sequence is not None:
        entries = load_sequence(args.sequence, line)
        meta["sequence"] = _sequence_meta(args.sequence, entries, scenario, args.week)
        policy = SequencePolicy(entries, line.types, args.sequence)
    else:
        policy = make_policy(args.policy, args.seed, args.model)
    check_out(args.out, [args.sequence], args.force)  # the inputs first, then where to write
    influx = checked_influx() if args.influx else None
    window = plot_window(scenario, args.plot_from, args.plot_to)
    run = run_planner(scenario, policy)
    print(kpi_table([run]))
    files = write_run(args.out, scenario, run, meta, window)
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    if influx is not None:
        batches = [SequenceEntry(type=line.types[b.type], quantity=b.quantity) for b in run.trace.batches]
        replayed = SequencePolicy(batches, line.types, run.planner)
        return write_points(simulated_points(scenario, replayed, run.planner, line.name), line.name, influx)
    return 0


def _sequence_meta(
    path: Path, entries: list[SequenceEntry], scenario: Scenario, week: Path
) -> dict[str, object]:
    """A replayed sequence checked against what it was made for (its `sequence.meta.json`): another
    line is an error, another week or batch size a warning up front; for results.json."""
    origin = load_sequence_origin(path)
    warnings = check_sequence(path, entries, origin, made_for(scenario, week))
    for warning in warnings:
        print(f"linetwin: warning: {warning}", file=sys.stderr, flush=True)
    return {
        "source": str(path),
        "made_for": None if origin is None else origin.model_dump(mode="json"),
        "quantities": sequence_quantities(entries, scenario.batch_size),
        "warnings": warnings,
    }


def _plan_settings(args: argparse.Namespace) -> PlanSettings:
    from agent.planners.compare import PlanSettings
    from agent.planners.cpsat import CpSatSettings

    cpsat = CpSatSettings(args.time_limit, args.workers, args.seed)
    return PlanSettings(
        cpsat,
        args.plans,
        args.seed,
        getattr(args, "width", None),
        getattr(args, "depth", 1),
        getattr(args, "windows", None),
    )


def _say(line: str) -> None:
    print(line, flush=True)


def _compare(
    args: argparse.Namespace, specs: list[PlannerSpec], scenario: Scenario | None = None
) -> tuple[Scenario, Comparison]:
    """Run `specs` on the week of `args` (its `scenario`, when the caller loaded it already)."""
    from agent.planners.compare import check_planners, markdown, run_planners, solver_summary

    if scenario is None:
        scenario = load_scenario(args.line, args.week, args.batch_size)
    settings = _plan_settings(args)
    agents = check_planners(scenario, specs, settings)  # every flag and model before any output
    check_out(args.out, force=args.force)
    print(f"Week {args.week} on line '{scenario.line.name}', batch size {scenario.batch_size}:")
    comparison = run_planners(scenario, specs, settings, _say, agents)
    print()
    print(markdown(comparison.rows()))
    summary = solver_summary(comparison)
    if summary:
        print(f"\n{summary}")
    if comparison.best is not None:
        print(f"\n{_portfolio_line(comparison)}")
    return scenario, comparison


def _portfolio_line(comparison: Comparison) -> str:
    """What the portfolio found: who found its plan, the bound and the gap."""
    from agent.planners.cpsat import gap_text

    best = comparison.best
    assert best is not None
    if best.bound is None:
        bound = f"no bound ({best.bound_method})"
    else:
        gap = "" if best.gap is None else f", gap {gap_text(best.gap)}"
        bound = f"lower bound on the effort of zero-idle plans {best.bound:g} ({best.bound_method}{gap})"
    return f"portfolio (best): plan found by {best.source}, stopped: {best.stopped}; {bound}"


def cmd_plan(args: argparse.Namespace) -> int:
    specs = parse_planners(args.planner, DEFAULT_MODEL)
    if len(specs) != 1:
        raise UsageError(f"--planner {args.planner}: name one planner (compare runs several)")
    scenario = load_scenario(args.line, args.week, args.batch_size)
    window = plot_window(scenario, args.plot_from, args.plot_to)  # before any output, as every check
    scenario, comparison = _compare(args, specs, scenario)
    run = comparison.runs[0]
    files = write_run(args.out, scenario, run, run_meta(args, scenario, comparison, run), window)
    print(f"\nwrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def run_meta(
    args: argparse.Namespace, scenario: Scenario, comparison: Comparison, run: PlannedRun
) -> dict[str, object]:
    """results.json's header of a planned run; CP-SAT's plan carries the solver's section (in
    `plan`, and in `demo` when CP-SAT's plan is the best), the portfolio's its provenance
    (`portfolio`), a rollout's or beam search's its settings and what it spent (`search`)."""
    solver = _solver_meta(args, comparison) if run.planner == CPSAT else None
    meta: dict[str, object] = {**run_header(args, scenario), "solver": solver}
    if run.planner == BEST and comparison.best is not None:
        windows = getattr(args, "windows", None)  # demo has no --windows
        meta["portfolio"] = {**_budget(args), "windows": windows, **comparison.best.summary()}
    if run.planner.partition(":")[0] in SEARCHES:
        from agent.planners.compare import search_meta

        meta["search"] = search_meta(comparison, run.planner, _plan_settings(args))
    return meta


def _solver_meta(args: argparse.Namespace, comparison: Comparison) -> dict[str, object] | None:
    plan = comparison.cpsat
    if plan is None:
        return None
    return {**_budget(args), **plan.summary()}


def _budget(args: argparse.Namespace) -> dict[str, object]:
    """What a searching planner was given: `--time-limit` and `--workers`."""
    return {"time_limit_s": args.time_limit, "workers": args.workers}


def cmd_compare(args: argparse.Namespace) -> int:
    from agent.planners.compare import write_comparison

    specs = parse_planners(args.planners, DEFAULT_MODEL)
    scenario, comparison = _compare(args, specs)
    files = write_comparison(args.out, comparison, run_header(args, scenario))
    print(f"\nwrote {', '.join(p.name for p in files if p.parent == args.out)} and sequences/ to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.planners.compare import write_comparison

    specs = [PlannerSpec(name) for name in RULES]
    if args.model is not None:
        specs.append(PlannerSpec(RL, args.model))
    if args.time_limit > 0:
        specs += [PlannerSpec(CPSAT), PlannerSpec(BEST)]
    scenario, comparison = _compare(args, specs)
    best = min(comparison.runs, key=lambda r: rank_key(r.results))
    failed = failure(best.results)
    print(
        f"\nbest plan: {best.planner}{f' ({failed.upper()}: every plan failed)' if failed else ''} "
        "(ranking: no deadlock, completion, idle time, setup effort)"
    )
    files = write_run(args.out, scenario, best, run_meta(args, scenario, comparison, best))
    files += write_comparison(args.out, comparison, run_header(args, scenario))
    for path in files:
        if path.parent == args.out:
            print(f"  {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from agent.planners.compare import agent_plans
    from agent.planners.rl import RLPolicy

    policy = RLPolicy.from_file(args.model)
    scenario = load_scenario(args.line, args.week, args.batch_size or policy.card.batch_size)
    check_out(args.out, force=args.force)
    best, plans = agent_plans(scenario, policy, args.plans, args.seed)
    print(kpi_table(plans))
    state = failure(best.results)
    print(f"\nbest plan by the ranking: {best.planner}" + (f": {state.upper()}" if state else ""))
    meta = {**run_header(args, scenario), "model": str(args.model), "plans": args.plans + 1}
    files = write_run(args.out, scenario, best, meta)
    print(f"wrote {', '.join(p.name for p in files)} to {args.out}")
    return 0


def _searching(p: argparse.ArgumentParser, time_limit: float) -> None:
    """--time-limit, --workers (CP-SAT) and --plans (an agent's stochastic plans)."""
    p.add_argument(
        "--time-limit",
        type=not_negative,
        default=time_limit,
        help=f"seconds of CP-SAT, and the budget of the portfolio (best) and of each rollout or beam "
        f"search (default {time_limit:g})",
    )
    p.add_argument(
        "--workers", type=jobs, default=2, help=f"CP-SAT search workers (default 2, at most {JOBS_MAX})"
    )
    p.add_argument("--plans", type=count, default=20, help="stochastic plans of an agent (default 20)")


def _search_options(p: argparse.ArgumentParser) -> None:
    """--width and --depth of a rollout or beam search (`rollout:POLICY`, `beam:POLICY`)."""
    p.add_argument(
        "--width",
        type=count,
        default=None,
        help="rollout: types tried per decision, the base policy's favourites first (default: every "
        "valid type); beam: partial sequences kept (default 3)",
    )
    p.add_argument(
        "--depth",
        type=count,
        default=1,
        help="beam: decisions tried ahead before the base policy finishes the week (default 1)",
    )
    p.add_argument(
        "--windows",
        type=natural,
        default=None,
        help="best: neighbourhood windows to search (default: until --time-limit); a fixed amount of "
        "work, so that with --workers 1 the same --seed gives the same plan",
    )


def add_offline_commands(sub: Any) -> None:
    """simulate, plan, compare, demo and evaluate, on the subparsers `sub` of `linetwin`."""
    sim = sub.add_parser("simulate", help="simulate a week with one planner or a given PAS sequence")
    common_options(sim, "runs/simulate")
    policy_options(sim, None, "planner")
    sim.add_argument("--sequence", type=path_arg, help="replay this sequence.csv")
    sim.add_argument(
        "--influx", action="store_true", help="also write the week's points to InfluxDB ($LINETWIN_INFLUX_*)"
    )
    zoom_options(sim)
    force_option(sim)
    sim.set_defaults(func=cmd_simulate)

    planners = (
        f"{', '.join(RULES)}, cpsat (also cp-sat), {RL}[:MODEL] (the trained agent), "
        f"rollout:POLICY or beam:POLICY (searches with the twin over a policy, e.g. rollout:setup-aware, "
        f"rollout:{RL}), {RL_ROLLOUT}[:MODEL] (search at decision time: a rollout over the agent, "
        f"{DECISION_TIME_S:g} s a decision) or {BEST} (the portfolio: the best plan any planner finds "
        "in --time-limit)"
    )
    plan = sub.add_parser(
        "plan", help="plan a week with one planner (e.g. cpsat) and simulate it in the twin"
    )
    common_options(plan, "runs/plan")
    plan.add_argument("--planner", required=True, help=planners)
    _searching(plan, 60.0)
    _search_options(plan)
    zoom_options(plan)
    force_option(plan)
    plan.set_defaults(func=cmd_plan)

    cmp = sub.add_parser("compare", help="every planner on the same week: one table and a plot")
    common_options(cmp, "runs/compare")
    cmp.add_argument(
        "--planners",
        "--planner",
        dest="planners",
        default=f"rules,cpsat,{RL}",
        help=f"comma-separated: rules (all), {planners}",
    )
    _searching(cmp, 60.0)
    _search_options(cmp)
    force_option(cmp)
    cmp.set_defaults(func=cmd_compare)

    demo = sub.add_parser(
        "demo", help="plan a week with every rule, the shipped agent, CP-SAT and the portfolio; plot the best"
    )
    common_options(demo, "runs/demo")
    demo.add_argument(
        "--model", type=path_arg, default=DEFAULT_MODEL, help="agent (default: the shipped one)"
    )
    demo.add_argument("--no-agent", dest="model", action="store_const", const=None, help="no agent")
    _searching(demo, 10.0)
    force_option(demo)
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser("evaluate", help="best of 20 stochastic plans and the deterministic plan of an agent")
    common_options(ev, "runs/evaluate", batch_default="the model's")
    ev.add_argument(
        "--model",
        type=path_arg,
        default=DEFAULT_MODEL,
        help="model.zip or a run folder (default: the shipped one)",
    )
    ev.add_argument("--plans", type=count, default=20, help="stochastic plans (default 20)")
    force_option(ev)
    ev.set_defaults(func=cmd_evaluate)
