"""Every planner on the same week: one table (Markdown + CSV) and a plot of setup effort against
idle time, with each plan's gap to the CP-SAT incumbent and bound.

Planner names: a rule (`random`, `first-fit`, `earliest-runout`, `setup-aware`), `rules` (all of
them), `cpsat`, and `ppo:MODEL` (a trained agent, best of its stochastic plans and its
deterministic one; `ppo` alone is the shipped agent).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cpsat import CPSAT, CpSatPlan, CpSatSettings, plan_with_cpsat
from agent.errors import UsageError
from agent.planning import PlannedRun, run_planner
from agent.policies import RULES, make_rule
from twin import Scenario, write_sequence

if TYPE_CHECKING:
    from agent.rl_policy import RLPolicy

__all__ = [
    "CPSAT",
    "PPO",
    "Comparison",
    "PlanSettings",
    "PlannerSpec",
    "agent_plans",
    "markdown",
    "parse_planners",
    "run_planners",
    "solver_summary",
    "write_comparison",
]

RULES_ALIAS = "rules"
PPO = "ppo"


@dataclass(frozen=True)
class PlannerSpec:
    """One planner to run: its kind (a rule name, `cpsat` or `ppo`) and, for `ppo`, the model."""

    kind: str
    model: Path | None = None

    @property
    def label(self) -> str:
        return f"{PPO}:{self.model}" if self.kind == PPO else self.kind


def parse_planners(text: str, default_model: Path) -> list[PlannerSpec]:
    """`rules,cpsat,ppo:MODEL` -> planner specs in that order (`rules` expands to every rule)."""
    specs: list[PlannerSpec] = []
    for item in (s.strip() for s in text.split(",")):
        if item == RULES_ALIAS:
            specs.extend(PlannerSpec(name) for name in RULES)
        elif item in RULES or item == CPSAT:
            specs.append(PlannerSpec(item))
        elif item == PPO or item.startswith(PPO + ":"):
            path = item.partition(":")[2]
            specs.append(PlannerSpec(PPO, Path(path) if path else default_model))
        else:
            names = ", ".join([RULES_ALIAS, *RULES, CPSAT, f"{PPO}[:MODEL]"])
            raise UsageError(f"--planners: unknown planner {item!r}; choose from {names}")
    if not specs:
        raise UsageError("--planners: name at least one planner")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"--planners: a planner is named twice in {text!r}")
    return specs


@dataclass(frozen=True)
class PlanSettings:
    """What the searching planners may spend: CP-SAT's settings, the agent's stochastic plans
    (seeds `seed`, `seed + 1`, ...); `seed` also seeds the random rule."""

    cpsat: CpSatSettings = field(default_factory=CpSatSettings)
    plans: int = 20
    seed: int = 0


@dataclass
class Comparison:
    """The runs of every planner on one scenario, and the CP-SAT plan if CP-SAT was among them."""

    scenario: Scenario
    runs: list[PlannedRun]
    cpsat: CpSatPlan | None = None

    def rows(self) -> list[dict[str, object]]:
        """One row per planner; the gaps compare setup effort where the plan is as good as CP-SAT's
        on completion and idle time (otherwise a gap in effort would flatter it)."""
        plan = self.cpsat
        reference = next((r.results for r in self.runs if r.planner == CPSAT), None)
        rows = []
        for run in self.runs:
            k = run.results
            comparable = (
                reference is not None
                and not k.deadlock
                and k.completion == 1.0
                and k.idle_s <= reference.idle_s
            )
            rows.append(
                {
                    "planner": run.planner,
                    "completion": round(k.completion, 4),
                    "deadlock": k.deadlock,
                    "idle_s": k.idle_s,
                    "setup_effort": k.setup_effort,
                    "setups": k.setups,
                    "gap_incumbent": _gap(k.setup_effort, plan.setup_effort) if plan and comparable else None,
                    "gap_bound": _gap(k.setup_effort, plan.bound)
                    if plan and comparable and plan.bound is not None
                    else None,
                    "wall_s": round(run.wall_s, 3),
                }
            )
        return rows


def _gap(value: float, reference: float | None) -> float | None:
    """The optimality gap of `value` against `reference`, as CP-SAT states its own:
    (value - reference) / value, the share of the effort that `reference` would save."""
    if reference is None or value <= 0:
        return None
    return round((value - reference) / value, 4)


Progress = Callable[[str], None]


def run_planners(
    scenario: Scenario, specs: Sequence[PlannerSpec], settings: PlanSettings, progress: Progress | None = None
) -> Comparison:
    """Plan the scenario with every planner, in order; each run's KPIs are the twin's."""
    comparison = Comparison(scenario, [])
    for spec in specs:
        if progress is not None:
            progress(f"planning with {spec.label} ...")
        if spec.kind == CPSAT:
            run, plan = plan_with_cpsat(scenario, settings.cpsat, progress)
            comparison.cpsat = plan
        elif spec.kind == PPO:
            assert spec.model is not None
            start = time.perf_counter()
            from agent.rl_policy import RLPolicy  # torch only when an agent plans

            run = agent_plans(scenario, RLPolicy.from_file(spec.model), settings.plans, settings.seed)[0]
            run.wall_s = time.perf_counter() - start  # every plan counts
        else:
            run = run_planner(scenario, make_rule(spec.kind, settings.seed))
        comparison.runs.append(run)
    return comparison


def agent_plans(
    scenario: Scenario, policy: RLPolicy, plans: int, seed: int
) -> tuple[PlannedRun, list[PlannedRun]]:
    """A trained agent's best plan of `plans` stochastic ones and its deterministic one (the
    paper's evaluation), and all of them."""
    from agent.evaluate import evaluate

    policy.check(scenario)
    result = evaluate(policy.model, policy.card, scenario, plans, seed)
    best = result.best.run
    best.planner = f"{PPO} (best of {plans + 1})"
    return best, [p.run for p in (*result.stochastic, result.deterministic)]


COLUMNS = {
    "planner": "planner",
    "completion": "completion",
    "deadlock": "deadlock",
    "idle_s": "idle (s)",
    "setup_effort": "setup effort",
    "setups": "setups",
    "gap_incumbent": "gap to CP-SAT incumbent",
    "gap_bound": "gap to CP-SAT bound",
    "wall_s": "wall (s)",
}


def _cell(key: str, value: object) -> str:
    if value is None:
        return "-"
    if key == "deadlock":
        return "yes" if value else "no"
    if key.startswith("gap_") and isinstance(value, float):
        return f"{value:.1%}"
    if key == "completion" and isinstance(value, float):
        return f"{value:.3f}"
    if key == "wall_s" and isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def markdown(rows: list[dict[str, object]]) -> str:
    head = "| " + " | ".join(COLUMNS.values()) + " |"
    rule = "|" + "|".join("---" if k == "planner" else "---:" for k in COLUMNS) + "|"
    body = ["| " + " | ".join(_cell(k, row[k]) for k in COLUMNS) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def solver_summary(comparison: Comparison) -> str | None:
    """One line on what CP-SAT proved, or None without a CP-SAT run."""
    plan = comparison.cpsat
    if plan is None:
        return None
    bound = "no bound" if plan.bound is None else f"bound {plan.bound:g}"
    gap = "" if plan.gap is None else f", gap {plan.gap:.1%}"
    idle = "" if plan.mode == "zero-idle" else f", model's idle estimate {plan.idle_estimate_s} s"
    hint = "; the plan is the starting rule plan: CP-SAT found nothing better" if plan.from_hint else ""
    return (
        f"CP-SAT: {plan.status} ({plan.mode}; zero idle {plan.zero_idle}), incumbent {plan.setup_effort:g}, "
        f"{bound}{gap}{idle}; {plan.batches} batches, {plan.wall_s:.1f} s{hint}"
    )


def write_comparison(out: Path, comparison: Comparison, meta: dict[str, object]) -> list[Path]:
    """compare.md, compare.csv, compare.json, compare.png and each planner's sequence."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder: {exc.strerror}") from None
    rows = comparison.rows()
    summary = solver_summary(comparison)
    md = markdown(rows) + ("\n\n" + summary if summary else "") + "\n"
    (out / "compare.md").write_text(md, encoding="utf-8")
    with (out / "compare.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    payload = {
        **meta,
        "rows": rows,
        "cpsat": comparison.cpsat.summary() if comparison.cpsat else None,
        "kpis": {r.planner: r.results.to_dict() for r in comparison.runs},
    }
    (out / "compare.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    sequences = out / "sequences"
    sequences.mkdir(exist_ok=True)
    files = [out / "compare.md", out / "compare.csv", out / "compare.json"]
    for run in comparison.runs:
        path = sequences / f"{run.planner.split(' ')[0]}.csv"
        write_sequence(path, run.trace.sequence(comparison.scenario.types))
        files.append(path)
    files.append(plot_comparison(rows, comparison.cpsat, out / "compare.png"))
    return files


def plot_comparison(rows: list[dict[str, object]], plan: CpSatPlan | None, path: Path) -> Path:
    """Setup effort against idle time, one labelled point per planner; CP-SAT's bound as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        idle_h = float(row["idle_s"]) / 3600  # type: ignore[arg-type]
        effort = float(row["setup_effort"])  # type: ignore[arg-type]
        marker = "X" if row["deadlock"] else "o"
        ax.scatter(idle_h, effort, marker=marker, s=60, zorder=3)
        ax.annotate(
            str(row["planner"]), (idle_h, effort), textcoords="offset points", xytext=(6, 4), fontsize=8
        )
    if plan is not None and plan.bound is not None:
        ax.axhline(
            plan.bound, color="grey", linestyle="--", linewidth=1, label=f"CP-SAT bound {plan.bound:g}"
        )
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("FAS idle time (h)  -  X: deadlock")
    ax.set_ylabel("setup effort")
    ax.set_title("Planners on the same week: lower left is better")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
