"""Which batch size? Planners at every batch size of a list, coarse to fine: per batch size each
plan's idle time and setup effort (the twin's), the bound and the gap, as a table (Markdown, CSV),
sweep.json and a plot.

The sizes run largest first. Every plan found at a coarser size is converted
(`agent.planners.conversion`) and offered to `best` at the finer ones as a hint, so that its plan
at b is never worse than a coarser plan cut into batches of b. The other planners plan each size on
their own: their rows are their own answer to the question.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.distributed import Executor
from agent.errors import UsageError
from agent.folders import make_folder
from agent.planners.conversion import Hint
from agent.planners.cpsat import CpSatSettings, relative_gap
from agent.planners.registry import BEST, CPSAT, DEFAULT_MODEL, RL, PlannerSpec
from agent.planners.run import PlannedRun, made_for
from twin import Scenario, write_sequence
from twin.config import LineConfig, WeekConfig
from twin.results import failure, rank_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from agent.planners.compare import Agents, PlanSettings

Progress = Callable[[str], None]

_ELLIPSIS = ("...", "…")


def parse_batch_sizes(text: str) -> list[int]:
    """`10,20,30` or `10,20,...,100` (the step of the first two, up to the last) -> the sizes, each
    once, in the order given. Raises UsageError naming `batch_sizes`."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 3 and parts[-2] in _ELLIPSIS:
        head, last = parts[:-2], parts[-1]
    else:
        head, last = parts, None
    if any(p in _ELLIPSIS for p in head):
        raise UsageError(
            "write a range as FIRST,SECOND,...,LAST, e.g. 10,20,...,100", "batch_sizes", repr(text)
        )
    if not all(map(_digits, [*head, *([last] if last is not None else [])])):  # int() takes 1_0, ١٠
        raise UsageError("give integers like 10,20,30", "batch_sizes", repr(text))
    sizes = [int(p) for p in head]
    if last is not None:
        step, end = sizes[-1] - sizes[-2], int(last)
        if step <= 0:
            raise UsageError("a range's second size must be above its first", "batch_sizes", repr(text))
        if end <= sizes[-1] or (end - sizes[-1]) % step:
            raise UsageError(
                f"a range goes up in steps of {step} (its first two sizes) to its last size: "
                f"{end} is not one of them",
                "batch_sizes",
                repr(text),
            )
        sizes.extend(range(sizes[-1] + step, end + 1, step))
    return list(dict.fromkeys(sizes))


def _digits(text: str) -> bool:
    return re.fullmatch(r"[0-9]+", text) is not None


def scenarios(line: LineConfig, week: WeekConfig, sizes: Sequence[int]) -> dict[int, Scenario]:
    """The week at every size, built before anything runs. Raises UsageError naming
    `batch_sizes` for a size the week cannot take."""
    out = {}
    for size in sizes:
        try:
            out[size] = Scenario.build(line, week, size)
        except ValueError as exc:
            raise UsageError(str(exc), "batch_sizes") from None
    return out


@dataclass(frozen=True)
class SweepSettings:
    """What each planner may spend at each batch size."""

    time_limit_s: float = 60.0
    """Seconds of CP-SAT and of `best` per batch size."""
    workers: int = 1
    """CP-SAT's and `best`'s search workers."""
    seed: int = 0
    plans: int = 20
    """An agent's stochastic plans beside its deterministic one (0: the deterministic plan only)."""
    width: int | None = None
    """A rollout's or beam search's width (`agent.planners.rollout`; None: its default)."""
    depth: int = 1
    """A beam search's depth."""
    bound: bool = True
    """At a size where no planner gives a bound, `agent.planners.bound`'s, within the time limit."""
    windows: int | None = None
    """`best`'s neighbourhood windows per size (None: until the time limit): a fixed amount of work,
    so that with one worker the same seed gives the same sweep."""


@dataclass
class SweepPoint:
    """One planner's plan at one batch size, re-simulated in the twin."""

    batch_size: int
    planner: str
    run: PlannedRun
    source: str
    """Who found the plan: the planner itself, or for `best` the part of it (or the hint) that did."""
    bound: float | None = None
    """The planner's own lower bound on setup effort at zero idle (`best`, `cpsat`), if any."""
    hints: tuple[str, ...] = ()
    """The plans offered to it (their sources, e.g. `best@50`)."""
    plan: dict[str, object] | None = None
    """The planner's own summary (`best`'s provenance and improvements, CP-SAT's statuses)."""


@dataclass
class Sweep:
    """Every planner's plan at every batch size of one week."""

    points: list[SweepPoint] = field(default_factory=list)
    lower_bounds: dict[int, float] = field(default_factory=dict)
    """`agent.planners.bound`'s bound at the sizes where no planner gave one."""

    def bound(self, size: int) -> float | None:
        """The best lower bound on setup effort at zero idle known at `size` (None: none)."""
        bounds = [p.bound for p in self.points if p.batch_size == size and p.bound is not None]
        if size in self.lower_bounds:
            bounds.append(self.lower_bounds[size])
        return max(bounds) if bounds else None

    def rows(self) -> list[dict[str, object]]:
        """One row per batch size (ascending) and planner. The gap compares a plan's effort with
        the size's bound where the plan is complete with zero idle (the bound holds for those)."""
        rows = []
        for p in sorted(self.points, key=lambda p: p.batch_size):
            k = p.run.results
            bound = self.bound(p.batch_size)
            zero_idle = failure(k) is None and k.idle_s == 0
            rows.append(
                {
                    "batch_size": p.batch_size,
                    "planner": p.planner,
                    "batches": k.batches,
                    "completion": round(k.completion, 4),
                    "deadlock": k.deadlock,
                    "idle_s": k.idle_s,
                    "setup_effort": k.setup_effort,
                    "setups": k.setups,
                    "bound": bound,
                    "gap": relative_gap(k.setup_effort, bound) if zero_idle else None,
                    "wall_s": round(p.run.wall_s, 3),
                    "found_by": p.source,
                }
            )
        return rows

    def best(self, planner: str) -> list[SweepPoint]:
        """`planner`'s best batch sizes by the ranking (no deadlock, completion, idle time, setup
        effort): every size that ties for first."""
        mine = [p for p in self.points if p.planner == planner]
        if not mine:
            return []
        first = min(rank_key(p.run.results) for p in mine)
        return sorted((p for p in mine if rank_key(p.run.results) == first), key=lambda p: p.batch_size)


def planner_name(spec: PlannerSpec) -> str:
    """A planner as the sweep's rows name it: its label, the shipped agent as `rl`
    (`rollout:rl`, not `rollout:rl:/.../reference.zip`)."""
    return spec.label.replace(f"{RL}:{DEFAULT_MODEL}", RL)


def hint_of(point: SweepPoint, scenario: Scenario) -> Hint:
    """A plan as a hint for other batch sizes, named `planner@size`."""
    return Hint.of([b.type for b in point.run.trace.batches], scenario, point.planner.split(" ")[0])


def _plan_settings(settings: SweepSettings) -> PlanSettings:
    from agent.planners.compare import PlanSettings

    cpsat = CpSatSettings(settings.time_limit_s, settings.workers, settings.seed)
    return PlanSettings(
        cpsat, settings.plans, settings.seed, settings.width, settings.depth, settings.windows
    )


def check_sweep(
    weeks: Mapping[int, Scenario], specs: Sequence[PlannerSpec], settings: SweepSettings
) -> Agents:
    """Everything the planners would refuse, said before any output or work: `best`'s and
    CP-SAT's settings, every agent loaded and checked against the coarsest week."""
    from agent.planners.compare import check_planners

    return check_planners(weeks[max(weeks)], specs, _plan_settings(settings)) if weeks else {}


def run_sweep(
    weeks: Mapping[int, Scenario],
    specs: Sequence[PlannerSpec],
    settings: SweepSettings,
    progress: Progress | None = None,
    agents: Agents | None = None,
    jobs: int = 1,
    ray_address: str | None = None,
) -> Sweep:
    """Plan every scenario (one per batch size) with every planner, largest batch size first;
    `best` gets every plan found at a coarser size as a hint. The planners are checked first
    (`check_sweep`, unless its `agents` are given). With `jobs` > 1 or a `ray_address` each
    plan is a Ray task (`agent.distributed`): the other planners' plans at every size at once,
    `best`'s one size after another (it waits for the coarser plans); the same plans as here."""
    say = progress or (lambda _: None)
    agents = check_sweep(weeks, specs, settings) if agents is None else agents
    sizes = sorted(weeks, reverse=True)
    sweep = Sweep()
    hints: list[Hint] = []
    with Executor[SweepPoint](jobs, ray_address, cpus=settings.workers) as executor:
        if not executor.here:
            say(f"planning on {executor.where()}")
        early = {
            (size, k): executor.submit(_plan_other, weeks[size], spec, settings)
            for size in ([] if executor.here else sizes)
            for k, spec in enumerate(specs)
            if spec.kind != BEST
        }
        for n, size in enumerate(sizes, 1):
            scenario = weeks[size]
            found: list[SweepPoint] = []
            for k, spec in enumerate(specs):

                def inner(line: str, head: str = f"b={size} [{n}/{len(sizes)}]") -> None:
                    say(f"{head}: {line}")

                if (size, k) in early:
                    point = executor.result(early[(size, k)])
                elif spec.kind == BEST:
                    plans = f"{len(hints)} coarser plan{'' if len(hints) == 1 else 's'}"
                    inner(f"planning with {BEST} ({plans} as hints) ...")
                    said = inner if executor.here else _quiet
                    point = executor.result(
                        executor.submit(_plan_best, scenario, settings, said, tuple(hints))
                    )
                else:
                    point = _plan_other(scenario, spec, settings, inner, agents)
                found.append(point)
                say(f"b={size}: {point.planner}: {point_text(point)}")
            sweep.points.extend(found)
            if settings.bound and settings.time_limit_s > 0 and sweep.bound(size) is None:
                _lower_bound(sweep, scenario, say)
            known = {h.types for h in hints}
            hints.extend(h for p in found if (h := hint_of(p, scenario)).types not in known)
            if any((p.plan or {}).get("stopped") == "interrupted" for p in found):
                say(f"interrupted at b={size}: the sizes below it are not planned")
                break
    if any(s.kind == BEST for s in specs):
        _merge_finer(sweep, weeks, say)
    return sweep


def _quiet(line: str) -> None:
    """The progress of a plan made in a Ray task: its result is said when it arrives."""


def _plan_other(
    scenario: Scenario,
    spec: PlannerSpec,
    settings: SweepSettings,
    progress: Progress = _quiet,
    agents: Agents | None = None,
) -> SweepPoint:
    """A planner other than `best` at one size (its agent loaded here unless `agents` has it)."""
    from agent.planners.compare import run_planners

    comparison = run_planners(scenario, [spec], _plan_settings(settings), progress, agents)
    run = comparison.runs[0]
    plan = comparison.cpsat if spec.kind == CPSAT else None
    return SweepPoint(
        scenario.batch_size,
        planner_name(spec),
        run,
        run.planner,
        plan.bound if plan is not None else None,
        plan=plan.summary() if plan is not None else None,
    )


def _lower_bound(sweep: Sweep, scenario: Scenario, say: Progress) -> None:
    """The bound of `agent.planners.bound` at a size where no planner gave one, said."""
    from agent.planners.bound import lower_bound

    found = lower_bound(scenario)
    size = scenario.batch_size
    if found.value is not None:
        sweep.lower_bounds[size] = found.value
        say(f"b={size}: lower bound {found.value:g} ({found.method}, {found.wall_s:.1f} s)")
    else:
        say(f"b={size}: no lower bound: {found.method}")


def _merge_finer(sweep: Sweep, weeks: Mapping[int, Scenario], say: Progress) -> None:
    """Finer to coarse: `best`'s plan at each size is replaced by a finer size's plan merged into
    its batches (`conversion.convert`) where the twin ranks that better; said when it is."""
    from agent.planners.conversion import convert
    from agent.planners.policies import SequencePolicy
    from agent.planners.run import run_planner

    best = sorted((p for p in sweep.points if p.planner == BEST), key=lambda p: p.batch_size)
    for i, point in enumerate(best):
        scenario = weeks[point.batch_size]
        for finer in best[:i]:
            hint = hint_of(finer, weeks[finer.batch_size])
            start = time.perf_counter()
            sequence = convert(hint, scenario)
            run = run_planner(scenario, SequencePolicy.of_types(sequence, scenario.types, BEST))
            point.run.wall_s += time.perf_counter() - start
            if rank_key(run.results) < rank_key(point.run.results):
                run.wall_s = point.run.wall_s
                point.run, point.source = run, f"{hint.source} merged"
                point.hints = (*point.hints, hint.source)
                point.plan = {**(point.plan or {}), "kept": point.source}  # over the portfolio's own
                said = f"b={finer.batch_size}'s plan merged is better"
                say(f"b={point.batch_size}: {BEST}: {said}: {point_text(point)}")


def _plan_best(
    scenario: Scenario, settings: SweepSettings, progress: Progress, hints: Sequence[Hint]
) -> SweepPoint:
    """The portfolio's plan with every hint, in the sweep's time limit."""
    from agent.planners.compare import best_settings
    from agent.planners.portfolio import plan_best  # loaded when it plans

    run, plan = plan_best(scenario, best_settings(_plan_settings(settings)), progress, hints)
    sources = tuple(h.source for h in hints)
    who = plan.source + (" (interrupted)" if plan.stopped == "interrupted" else "")
    return SweepPoint(scenario.batch_size, BEST, run, who, plan.bound, sources, plan.summary())


def point_text(point: SweepPoint) -> str:
    """'idle 0 s, setup effort 231, 40 setups, bound 180, 60.2 s, found by cpsat' (or how it failed)."""
    k = point.run.results
    failed = failure(k)
    head = f"{failed.upper()}, " if failed else ""
    bound = f", bound {point.bound:g}" if point.bound is not None else ""
    return (
        f"{head}idle {k.idle_s} s, setup effort {k.setup_effort:g}, {k.setups} setups{bound}, "
        f"{point.run.wall_s:.1f} s, found by {point.source}"
    )


COLUMNS = {
    "batch_size": "batch size",
    "planner": "planner",
    "batches": "batches",
    "completion": "completion",
    "deadlock": "deadlock",
    "idle_s": "idle (s)",
    "setup_effort": "setup effort",
    "setups": "setups",
    "bound": "bound",
    "gap": "gap",
    "wall_s": "wall (s)",
    "found_by": "found by",
}
"""sweep.csv's columns, with their heads in sweep.md."""


def markdown(rows: Sequence[Mapping[str, object]]) -> str:
    """The sweep's table as Markdown, as every comparison table reads."""
    from agent.planners.compare import markdown as table

    return table(rows, COLUMNS, text=("planner", "found_by"))


def answer(sweep: Sweep) -> list[str]:
    """Per planner, the batch size it plans best (the ranking: no deadlock, completion, idle time,
    setup effort), one line each."""
    lines = []
    for planner in dict.fromkeys(p.planner for p in sweep.points):
        best = sweep.best(planner)
        sizes = ", ".join(f"b={p.batch_size}" for p in best)
        k = best[0].run.results
        failed = failure(k)
        said = f"{failed}" if failed else f"idle {k.idle_s} s, setup effort {k.setup_effort:g}"
        lines.append(f"{planner}: best at {sizes} ({said})")
    return lines


RANKING = "the ranking: no deadlock, completion, idle time, setup effort"


def write_sweep(
    out: Path, sweep: Sweep, weeks: Mapping[int, Scenario], meta: dict[str, object]
) -> list[Path]:
    """sweep.md, sweep.csv, sweep.json, sweep.png, and per batch size and planner
    `b<size>/<planner>/` with its results.json and sequence.csv (one planner: `b<size>/`)."""
    make_folder(out)
    rows = sweep.rows()
    lines = [markdown(rows), "", f"Best batch size by {RANKING}:", *(f"- {a}" for a in answer(sweep))]
    (out / "sweep.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (out / "sweep.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    files = [out / "sweep.md", out / "sweep.csv", out / "sweep.json"]
    from agent.planners.compare import file_stem

    planners = list(dict.fromkeys(p.planner for p in sweep.points))
    points = []
    for p in sweep.points:
        folder = out / f"b{p.batch_size}"
        if len(planners) > 1:
            folder /= file_stem(p.planner)
        make_folder(folder)
        scenario = weeks[p.batch_size]
        entry = {
            "batch_size": p.batch_size,
            "planner": p.planner,
            "found_by": p.source,
            "hints": list(p.hints),
            "bound": p.bound,
            "wall_s": round(p.run.wall_s, 4),
            "plan": p.plan,
            "kpis": p.run.results.to_dict(),
        }
        header = {**meta, "batch_size": p.batch_size}
        (folder / "results.json").write_text(
            json.dumps({**header, **entry}, indent=2) + "\n", encoding="utf-8"
        )
        write_sequence(
            folder / "sequence.csv",
            p.run.trace.sequence(scenario.types),
            made_for(scenario, meta.get("week")),
        )
        files += [folder / "results.json", folder / "sequence.csv"]
        points.append(entry)
    payload = {
        **meta,
        "batch_sizes": sorted(weeks),
        "rows": rows,
        "best": {pl: [p.batch_size for p in sweep.best(pl)] for pl in planners},
        "bounds": {str(b): sweep.bound(b) for b in sorted(weeks)},
        "points": points,
    }
    (out / "sweep.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    files.append(plot_sweep(sweep, out / "sweep.png"))
    return files


def sweep_figure(sweep: Sweep) -> Figure:
    """Setup effort (top) and idle time (bottom) against batch size, a line per planner; the bound
    as grey bars and, with one planner, the gap to it as a band; a plan that failed is a red X."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, low) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, layout="constrained")
    sizes = sorted({p.batch_size for p in sweep.points})
    planners = list(dict.fromkeys(p.planner for p in sweep.points))
    for planner in planners:
        mine = sorted((p for p in sweep.points if p.planner == planner), key=lambda p: p.batch_size)
        xs = [p.batch_size for p in mine]
        effort = [p.run.results.setup_effort for p in mine]
        idle_h = [p.run.results.idle_s / 3600 for p in mine]
        colour = top.plot(xs, effort, marker="o", label=planner)[0].get_color()
        low.plot(xs, idle_h, marker="o", color=colour)
        failed = [i for i, p in enumerate(mine) if failure(p.run.results)]
        for ax, ys in ((top, effort), (low, idle_h)):
            ax.scatter(
                [xs[i] for i in failed], [ys[i] for i in failed], marker="X", s=80, color=_FAILED, zorder=3
            )
        gaps = [(x, v, y) for x, y in zip(xs, effort, strict=True) if (v := sweep.bound(x)) is not None]
        if len(planners) == 1 and gaps:
            gx, gb, gy = zip(*gaps, strict=True)
            top.fill_between(gx, gb, gy, color=colour, alpha=0.12, label="gap to the bound")
    known = [(b, v) for b in sizes if (v := sweep.bound(b)) is not None]
    if known:
        top.scatter(*zip(*known, strict=True), marker="_", s=300, color="grey", zorder=3, label="lower bound")
    if any(failure(p.run.results) for p in sweep.points):
        top.scatter([], [], marker="X", color=_FAILED, label="deadlock or incomplete")
    top.set_ylabel("setup effort")
    top.legend(fontsize=7)
    top.set_title("Which batch size? Setup effort and idle time of each plan (the twin's)", fontsize=10)
    low.set_ylabel("idle time (h)")
    low.set_xlabel("batch size")
    low.set_xticks(sizes)
    for ax in (top, low):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    return fig


_FAILED = "tab:red"


def plot_sweep(sweep: Sweep, path: Path) -> Path:
    """sweep.png: `sweep_figure` of the sweep."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(sweep)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
