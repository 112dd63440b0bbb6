"""Every planner on the same week: one table (Markdown + CSV) and a plot of setup effort against
idle time, with each plan's gap to CP-SAT's plan (as the twin measured both) and to the
model's bound.

Planner names: a rule (`random`, `first-fit`, `earliest-runout`, `setup-aware`), `rules` (all of
them), `cpsat`, `rl:MODEL` (a trained agent, best of its stochastic plans and its
deterministic one; `rl` alone is the shipped agent), `rollout:POLICY` and `beam:POLICY` (searches
with the twin over a base policy) and `best` (the planning portfolio); see
`agent.planners.registry`.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UsageError
from agent.folders import make_folder
from agent.planners.cpsat import (
    MIN_IDLE,
    STAGE_ZERO_IDLE,
    CpSatPlan,
    CpSatSettings,
    check_cpsat,
    gap_text,
    plan_with_cpsat,
    relative_gap,
    stages_text,
)
from agent.planners.policies import make_rule
from agent.planners.registry import BEST, CPSAT, DEFAULT_MODEL, RL, SEARCHES, PlannerSpec
from agent.planners.run import PlannedRun, made_for, run_planner
from twin import Results, Scenario, write_sequence
from twin.results import HEADLINE, failure, headline, kpi_text, rank_key
from twin.schedule import write_schedule

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from agent.planners.policies import Policy
    from agent.planners.portfolio import BestPlan, BestSettings
    from agent.planners.rl import RLPolicy
    from agent.planners.rollout import SearchStats

__all__ = [
    "CPSAT",
    "Comparison",
    "PlanSettings",
    "agent_plans",
    "check_planners",
    "markdown",
    "run_planners",
    "solver_summary",
    "write_comparison",
]


@dataclass(frozen=True)
class PlanSettings:
    """What the searching planners may spend: CP-SAT's settings (its time limit is also the
    portfolio's and each rollout's or beam search's), the agent's stochastic plans (seeds `seed`,
    `seed + 1`, ...), a rollout's or beam's width and a beam's depth
    (`agent.planners.rollout.SearchSettings`); `seed` also seeds the random rule."""

    cpsat: CpSatSettings = field(default_factory=CpSatSettings)
    plans: int = 20
    seed: int = 0
    width: int | None = None
    depth: int = 1
    windows: int | None = None
    """The portfolio's neighbourhood windows (None: until the time limit; a number: a fixed amount
    of work, so that with one worker the same seed gives the same plan)."""


@dataclass
class Comparison:
    """The runs of every planner on one scenario, and the CP-SAT plan if CP-SAT was among them."""

    scenario: Scenario
    runs: list[PlannedRun]
    cpsat: CpSatPlan | None = None
    best: BestPlan | None = None
    """The portfolio's plan if `best` was among the planners."""
    searches: dict[str, SearchStats] = field(default_factory=dict)
    """What each rollout or beam search spent, by its label."""

    @property
    def bound(self) -> float | None:
        """The lower bound on the setup effort of zero-idle plans: the larger of CP-SAT model's
        and the portfolio's, both proved (None: neither gave one)."""
        bounds = [
            plan.bound for plan in (self.cpsat, self.best) if plan is not None and plan.bound is not None
        ]
        return max(bounds) if bounds else None

    def rows(self) -> list[dict[str, object]]:
        """One row per planner, in the order of the ranking (`twin.results.rank_key`). The gaps
        compare the twin's setup effort of a plan with that of CP-SAT's plan (also the twin's),
        where the plan is as good on completion and idle time (otherwise a gap in effort would
        flatter it), and with the best bound (`bound`), where the plan is complete and has no idle
        time (the bound holds for zero-idle plans); CP-SAT's own row has no gap to itself."""
        bound = self.bound
        reference = next((r.results for r in self.runs if r.planner == CPSAT), None)
        rows = []
        for run in sorted(self.runs, key=lambda r: rank_key(r.results)):
            k = run.results
            comparable = (
                reference is not None
                and not k.deadlock
                and k.completion == 1.0
                and k.idle_s <= reference.idle_s
            )
            kpis = {**headline(k), "completion": round(k.completion, 4)}
            rows.append(
                {
                    "planner": run.planner,
                    **{name: kpis[name] for name in KPI_COLUMNS},
                    "gap_cpsat": relative_gap(k.setup_effort, reference.setup_effort)
                    if reference is not None and comparable and run.planner != CPSAT
                    else None,
                    "gap_bound": relative_gap(k.setup_effort, bound)
                    if bound is not None and not k.deadlock and k.completion == 1.0 and k.idle_s == 0
                    else None,
                    "wall_s": round(run.wall_s, 3),
                }
            )
        return rows


Progress = Callable[[str], None]


Agents = dict[str, tuple["RLPolicy", float]]
"""The loaded agents of a comparison by label, with the seconds their loading took."""


def check_planners(scenario: Scenario, specs: Sequence[PlannerSpec], settings: PlanSettings) -> Agents:
    """Everything the planners would refuse, said before any output or work: CP-SAT's settings
    against the line, and every agent loaded and checked against it."""
    if any(spec.kind == CPSAT for spec in specs):
        check_cpsat(scenario, settings.cpsat)
    if any(spec.kind == BEST for spec in specs):
        best_settings(settings)  # raises for a bad time limit, workers or windows
    if any(spec.kind in SEARCHES for spec in specs) and settings.cpsat.time_limit_s <= 0:
        raise UsageError("must be positive for a search", "time_limit", f"{settings.cpsat.time_limit_s:g}")
    agents: Agents = {}
    for spec in specs:
        if spec.model is not None and spec.policy_label not in agents:  # `rl` or a search over it
            from agent.planners.rl import RLPolicy  # torch only when an agent plans

            start = time.perf_counter()
            policy = RLPolicy.from_file(spec.model)
            policy.check(scenario)
            agents[spec.policy_label] = (policy, time.perf_counter() - start)
    return agents


def run_planners(
    scenario: Scenario,
    specs: Sequence[PlannerSpec],
    settings: PlanSettings,
    progress: Progress | None = None,
    agents: Agents | None = None,
) -> Comparison:
    """Plan the scenario with every planner, in order; each run's KPIs are the twin's. The
    planners are checked first (`check_planners`, unless its `agents` are given): a mistake ends
    the command before any planner has spent its time."""
    agents = check_planners(scenario, specs, settings) if agents is None else agents
    comparison = Comparison(scenario, [])
    for spec in specs:
        if progress is not None:
            progress(f"planning with {spec.label} ...")
        if spec.kind == CPSAT:
            run, plan = plan_with_cpsat(scenario, settings.cpsat, progress)
            comparison.cpsat = plan
        elif spec.kind == BEST:
            run, comparison.best = _plan_best(scenario, settings, progress)
        elif spec.kind in SEARCHES:
            run, comparison.searches[spec.label] = _search(scenario, spec, settings, progress, agents)
        elif spec.kind == RL:
            policy, loaded_s = agents[spec.label]
            start = time.perf_counter()
            run = agent_plans(scenario, policy, settings.plans, settings.seed)[0]
            if spec.model is not None and spec.model != DEFAULT_MODEL:  # two agents: tell them apart
                run = replace(run, planner=f"{spec.label}{run.planner[len(RL) :]}")
            run.wall_s = time.perf_counter() - start + loaded_s  # every plan counts, and the loading
        else:
            run = run_planner(scenario, make_rule(spec.kind, settings.seed))
        comparison.runs.append(run)
    return comparison


def _plan_best(
    scenario: Scenario, settings: PlanSettings, progress: Progress | None
) -> tuple[PlannedRun, BestPlan]:
    """The portfolio's plan in CP-SAT's time limit, with CP-SAT's workers and the seed."""
    from agent.planners.portfolio import plan_best

    return plan_best(scenario, best_settings(settings), progress)


def file_stem(planner: str) -> str:
    """A planner's name as a file or folder name on any system: `rollout:setup-aware` ->
    `rollout_setup-aware` (a colon is not allowed on Windows)."""
    return re.sub(r"[^\w.-]", "_", planner)


def best_settings(settings: PlanSettings) -> BestSettings:
    """The portfolio's settings of a comparison: CP-SAT's time limit and workers, the seed, the
    windows. Raises UsageError for a bad one."""
    from agent.planners.portfolio import BestSettings

    cpsat = settings.cpsat
    return BestSettings(cpsat.time_limit_s, cpsat.workers, settings.seed, settings.windows)


def _search(
    scenario: Scenario, spec: PlannerSpec, settings: PlanSettings, progress: Progress | None, agents: Agents
) -> tuple[PlannedRun, SearchStats]:
    """A rollout or beam search over the spec's base policy, in CP-SAT's time limit."""
    from agent.planners.rollout import SearchSettings, search_plan

    base: Policy
    if spec.base == RL:
        policy, _ = agents[spec.policy_label]
        base = policy
    else:
        assert spec.base is not None
        base = make_rule(spec.base, settings.seed)
    search = SearchSettings(settings.width, settings.depth, settings.cpsat.time_limit_s, spec.decision_time_s)
    return search_plan(scenario, spec.kind, base, search, progress, spec.label)


def search_meta(comparison: Comparison, label: str, settings: PlanSettings) -> dict[str, object] | None:
    """results.json's section of a rollout or beam search: its settings and what it spent."""
    stats = comparison.searches.get(label)
    if stats is None:
        return None
    return {
        "width": settings.width,
        "depth": settings.depth,
        "time_limit_s": settings.cpsat.time_limit_s,
        **stats.summary(),
    }


def agent_plans(
    scenario: Scenario, policy: RLPolicy, plans: int, seed: int
) -> tuple[PlannedRun, list[PlannedRun]]:
    """A trained agent's best plan of `plans` stochastic ones and its deterministic one (the
    paper's evaluation), labelled with what won (`rl (stochastic, seed 17: best of 21)`), and all
    of them under their own labels."""
    from agent.planners.evaluate import evaluate

    policy.check(scenario)
    result = evaluate(policy.model, policy.card, scenario, plans, seed)
    won = "deterministic" if result.best.seed is None else f"stochastic, seed {result.best.seed}"
    best = replace(result.best.run, planner=f"{RL} ({won}: best of {plans + 1})")
    return best, [p.run for p in (*result.stochastic, result.deterministic)]


KPI_COLUMNS = ("completion", *(name for name in HEADLINE if name != "completion"))
"""The headline KPIs in the table's order: completion first, as compare.csv has always had them."""

COLUMNS = {
    "planner": "planner",
    **{name: HEADLINE[name] for name in KPI_COLUMNS},
    "gap_cpsat": "gap to CP-SAT plan",
    "gap_bound": "gap to bound",
    "wall_s": "wall (s)",
}


def _cell(key: str, value: object) -> str:
    if value is None:
        return "-"
    if (key == "gap" or key.startswith("gap_")) and isinstance(value, float):
        return gap_text(value)
    if key == "wall_s" and isinstance(value, float):
        return f"{value:.1f}"
    return kpi_text(key, value)


def markdown(
    rows: Sequence[Mapping[str, object]],
    columns: Mapping[str, str] = COLUMNS,
    text: Collection[str] = ("planner",),
) -> str:
    """A Markdown table of `rows` (`columns`: key -> head); the `text` columns left-aligned, the
    figures right-aligned and said as every table says them (gaps in %, `-` for none)."""
    head = "| " + " | ".join(columns.values()) + " |"
    rule = "|" + "|".join("---" if k in text else "---:" for k in columns) + "|"
    body = ["| " + " | ".join(_cell(k, row[k]) for k in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


_ZERO_IDLE_SAID = {
    "feasible": "zero idle found",
    "infeasible": "zero idle proved impossible",
    "unknown": "zero idle not found in time",
}
_SOLVED = ("OPTIMAL", "FEASIBLE")
"""CP-SAT statuses of a stage that ended with a solution; any other (UNKNOWN, INVALID, ...) found none."""


def _zero_idle_said(plan: CpSatPlan) -> str:
    """What the zero-idle stage found: a plan the starting rule plan met while the stage ended
    without a solution (UNKNOWN) is the rule plan's zero idle, not one the model found."""
    stage = dict(plan.stages).get(STAGE_ZERO_IDLE)
    if plan.zero_idle == "feasible" and stage is not None and stage not in _SOLVED:
        return "zero idle met by the starting rule plan, none found by the model"
    return _ZERO_IDLE_SAID[plan.zero_idle]


def solver_summary(comparison: Comparison) -> str | None:
    """Two lines, or None without a CP-SAT run: first what the twin measured of CP-SAT's plan,
    then the model's own figures, labelled as the model's (each stage's status as it ended, its
    estimates for its incumbent, its bound)."""
    plan = comparison.cpsat
    run = next((r for r in comparison.runs if r.planner == CPSAT), None)
    if plan is None or run is None:
        return None
    k = run.results
    done = "deadlock" if k.deadlock else "complete" if k.completion == 1.0 else "incomplete"
    if plan.from_hint:
        kept = "the starting rule plan: CP-SAT found nothing the twin ranks better"
    elif plan.kept_incumbent:
        kept = "the model's incumbent"
    else:
        kept = f"the twin's best of {plan.simulated} solutions CP-SAT found, not the model's incumbent"
    measured = (
        f"CP-SAT plan, measured by the twin: idle {k.idle_s} s, setup effort {k.setup_effort:g}, "
        f"completion {k.completion:.3f} ({done}); {kept}"
    )
    solved = plan.status in _SOLVED  # the stage that gave the plan: the figures are its incumbent's
    if plan.idle_estimate_s is None or not solved:
        estimate = "no model solution"
    else:
        estimate = f"model estimates for its incumbent: setup effort {plan.setup_effort:g}"
        estimate += f", idle {plan.idle_estimate_s} s" if plan.mode == MIN_IDLE else ""
    if plan.bound is not None:
        of = "" if solved else " of the starting rule plan"
        bound = f"model bound on setup effort {plan.bound:g} (gap{of} {gap_text(plan.gap or 0.0)})"
    elif plan.mode == MIN_IDLE:
        bound = "no bound in min-idle mode"
    else:
        bound = "no bound (with a setup time the model is stricter than the line)"
    model = (
        f"CP-SAT model ({plan.mode}; {_zero_idle_said(plan)}): "
        f"{stages_text(plan.stages) or 'no solve'}; {estimate}; {bound}; {plan.batches} batches, "
        f"{plan.wall_s:.1f} s"
    )
    return f"{measured}\n{model}"


def write_comparison(out: Path, comparison: Comparison, meta: dict[str, object]) -> list[Path]:
    """compare.md, compare.csv, compare.json, compare.png and each planner's sequence and schedule."""
    make_folder(out)
    rows = comparison.rows()
    summary = solver_summary(comparison)
    paragraphs = [markdown(rows), *(summary.splitlines() if summary else [])]  # a single newline joins lines
    md = "\n\n".join(paragraphs) + "\n"
    (out / "compare.md").write_text(md, encoding="utf-8")
    with (out / "compare.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    payload = {
        **meta,
        "rows": rows,
        "cpsat": comparison.cpsat.summary() if comparison.cpsat else None,
        "portfolio": comparison.best.summary() if comparison.best else None,
        "searches": {label: stats.summary() for label, stats in comparison.searches.items()},
        "kpis": {r.planner: r.results.to_dict() for r in comparison.runs},
    }
    (out / "compare.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    sequences = out / "sequences"
    sequences.mkdir(exist_ok=True)
    files = [out / "compare.md", out / "compare.csv", out / "compare.json"]
    for run in comparison.runs:
        path = sequences / f"{file_stem(run.planner.split(' ')[0])}.csv"
        write_sequence(
            path,
            run.trace.sequence(comparison.scenario.types),
            made_for(comparison.scenario, meta.get("week")),
        )
        files += [path, *write_schedule(path, comparison.scenario, run.trace)]
    files.append(plot_comparison(comparison.runs, comparison.cpsat, out / "compare.png"))
    return files


def lost_fas_hours(results: Results) -> float:
    """Where compare.png places a plan: its FAS idle time, plus, for a plan that stops early
    (deadlock), the FAS working time of the planned units it never built: those hours are lost
    too, so a plan that stops early never sits left of one that finishes."""
    return (results.idle_s + results.shortfall_s) / 3600


def comparison_figure(runs: Sequence[PlannedRun], plan: CpSatPlan | None) -> Figure:
    """Setup effort against lost FAS time, one labelled point per planner in the order of the
    ranking; a deadlocked or incomplete plan is a red X labelled with how far it got."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from twin.plots import label_points

    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ranked = sorted(runs, key=lambda r: rank_key(r.results))
    points, labels, colours = [], [], []
    for run in ranked:
        k = run.results
        failed = failure(k)
        xy = (lost_fas_hours(k), k.setup_effort)
        ax.scatter(*xy, marker="X" if failed else "o", s=70, color=_FAILED if failed else _COMPLETE, zorder=3)
        points.append(xy)
        labels.append(f"{run.planner}: {failed}" if failed else run.planner)
        colours.append(_FAILED if failed else "black")
    handles = [
        Line2D([], [], marker="o", ls="", color=_COMPLETE, label="complete plan (x: idle time)"),
        Line2D(
            [], [], marker="X", ls="", color=_FAILED, label="deadlock/incomplete (x: idle + unbuilt work)"
        ),
    ]
    if plan is not None and plan.bound is not None:
        handles.append(
            ax.axhline(plan.bound, color="grey", ls="--", lw=1, label=f"CP-SAT model bound {plan.bound:g}")
        )
    ax.legend(handles=handles, loc="upper right", fontsize=7)
    ax.set_xlabel("lost FAS time (h): idle time, plus the planned work never built")
    ax.set_ylabel("setup effort")
    ax.set_title(
        "Planners on the same week: lower left is better; a red X did not finish its plan", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.15)
    for get, put in ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim)):
        low, high = get()
        put(max(low, -0.05 * high), high)  # no room for negative hours or effort
    fig.draw_without_rendering()  # the layout settles; labels are placed in it and keep it
    fig.set_layout_engine("none")
    for note, colour in zip(label_points(ax, points, labels, fontsize=8), colours, strict=True):
        note.set_color(colour)
        if note.arrow_patch is not None:
            note.arrow_patch.set_color(colour)
    return fig


_COMPLETE = "tab:blue"
_FAILED = "tab:red"


def plot_comparison(runs: Sequence[PlannedRun], plan: CpSatPlan | None, path: Path) -> Path:
    """compare.png: `comparison_figure` of the runs."""
    import matplotlib.pyplot as plt

    fig = comparison_figure(runs, plan)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
