"""The paper's batch-size study as a product feature: train a grid of (batch size, seed) runs as
Ray tasks (a local Ray, or a cluster), then write its Table II (CSV and Markdown) and its figures.

Each run lives in `<out>/b<size>_s<seed>/` and is an ordinary `linetwin train` run: a restarted
study skips finished runs and resumes interrupted ones from their last checkpoint. With
`--init-from MODEL` every run starts from that model's weights (e.g. the imitation agent's), so the
paper's questions can be asked of it as of a fresh start; its card is checked before any run."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.distributed import Executor
from agent.errors import UsageError
from agent.folders import make_folder
from agent.planners.cpsat import gap_text
from agent.planners.registry import BEST, PlannerSpec
from agent.planners.sweep import Sweep, SweepSettings, run_sweep, scenarios
from agent.training.summary import SUMMARY, PlanSummary, TrainSummary, read_summary
from agent.training.train import TrainConfig, check, checkpoint_steps, latest_checkpoint, train
from twin import load_line, load_week
from twin.config import load_json_model
from twin.results import failure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BEST_COLUMNS = ("best_setup_effort", "best_idle_s", "bound", "gap", "best_found_by")
"""The best plan of any planner at a batch size, beside the agent's figures (`best_plans`)."""
TABLE_COLUMNS = (
    "batch_size",
    "runs",
    "final_criterion_met",
    "zero_idle_solutions",
    "deadlocked_or_incomplete",
    "steps_to_finish_min",
    "steps_to_finish_avg",
    "steps_to_finish_max",
    "setup_effort_min",
    "setup_effort_avg",
    "setup_effort_max",
    "setup_effort_std",
    "return_avg",
    *BEST_COLUMNS,
)
"""Table II's columns, then the best plan of any planner at the batch size (`best_plans`)."""


PROGRESS_EVERY_S = 30.0
"""Default wall seconds between two progress lines of a study (`--progress-every`)."""


def run_folder(out: Path, batch_size: int, seed: int) -> Path:
    return out / f"b{batch_size}_s{seed}"


def is_finished(folder: Path, steps: int) -> bool:
    """A run whose summary covers the asked budget (or that met its final criterion)."""
    summary = read_summary(folder)
    return summary is not None and (summary.final_criterion_met or summary.steps_done >= steps)


def _train_one(config: TrainConfig) -> TrainSummary:
    """One run of the grid, from its last checkpoint if it has one (a retried task resumes)."""
    resume = latest_checkpoint(config.out / "checkpoints") is not None
    return train(config, resume=resume)


def run_study(
    base: TrainConfig,
    batch_sizes: Sequence[int],
    seeds: Sequence[int],
    jobs: int,
    report: Callable[[str], None] = print,
    progress_every_s: float | None = PROGRESS_EVERY_S,
    ray_address: str | None = None,
) -> list[TrainSummary]:
    """Train every (batch size, seed) not finished yet, each run a Ray task (`agent.distributed`:
    a local Ray of `jobs` CPUs, or the cluster at `ray_address`); return all summaries of the
    grid. Every batch size is checked against the line before any run starts. Every
    `progress_every_s` wall seconds (None: never) one line says how far each run in training is.
    A run whose worker died is retried and resumes from its last checkpoint."""
    if not batch_sizes or not seeds or jobs < 1:
        raise UsageError("a study needs at least one batch size, one seed and one job")
    for size in dict.fromkeys(batch_sizes):
        try:
            check(base.model_copy(update={"batch_size": size}))
        except UsageError as exc:
            if exc.param != "batch_size":
                raise
            raise UsageError(exc.reason, "batch_sizes") from None  # one of the study's sizes
    make_folder(base.out)
    configs = [
        base.model_copy(
            update={"batch_size": b, "seed": s, "out": run_folder(base.out, b, s), "progress": False}
        )
        for b in batch_sizes
        for s in seeds
    ]
    todo = [c for c in configs if not is_finished(c.out, c.steps)]
    report(f"{len(configs) - len(todo)} of {len(configs)} runs already finished; {len(todo)} to train")
    if todo:
        with Executor[TrainSummary](jobs, ray_address, inline=False) as executor:
            report(f"training on {executor.where()}")
            waiting = set(range(len(todo)))
            for event in executor.run(_train_one, [(c,) for c in todo], progress_every_s):
                if event is None:  # Ray starts the calls in order: the first ones waiting run
                    running = [todo[i] for i in sorted(waiting)][: executor.slots()]
                    report(progress_line(running, len(waiting)))
                    continue
                index, summary = event
                waiting.discard(index)
                config = todo[index]
                state = "final criterion met" if summary.final_criterion_met else "not finished"
                report(
                    f"[{len(todo) - len(waiting)}/{len(todo)}] b={config.batch_size} seed={config.seed}: "
                    f"{state}, {summary.steps_done} steps, {summary.wall_time_s:.0f} s"
                )
    return [load_json_model(c.out / SUMMARY, TrainSummary) for c in configs]


def logged_steps(folder: Path) -> int | None:
    """Env steps a run in training has reached: the last step in its TensorBoard events (written
    after every rollout), else its newest checkpoint; None before either exists."""
    from tensorboard.backend.event_processing.event_file_loader import (  # type: ignore[import-untyped]
        EventFileLoader,
    )

    steps = [checkpoint_steps(found[0])] if (found := latest_checkpoint(folder / "checkpoints")) else []
    for events in (folder / "tb").glob("*/events.out.tfevents.*"):
        try:
            steps += [event.step for event in EventFileLoader(str(events)).Load()]
        except OSError:  # being written or gone: the next line tells
            continue
    return max(steps) if steps else None


def progress_line(running: Sequence[TrainConfig], pending: int) -> str:
    """'training: b=30 seed 0 12288/50000 steps (25%), ...; 3 waiting for a process'."""
    parts = []
    for config in running:
        steps = logged_steps(config.out)
        done = "starting" if steps is None else f"{steps}/{config.steps} steps ({steps / config.steps:.0%})"
        parts.append(f"b={config.batch_size} seed {config.seed} {done}")
    waiting = pending - len(running)
    return (
        "training: " + (", ".join(parts) or "-") + (f"; {waiting} waiting for a process" if waiting else "")
    )


PLAN_TIME_LIMIT_S = 30.0
"""Default seconds of the best plan per batch size (`--plan-time-limit`)."""


def evaluation_week(config: TrainConfig) -> Path:
    """The week a run's final evaluation plans (as `train` picks it)."""
    return config.template_week if config.weeks is None else config.weeks[0]


def best_plans(
    base: TrainConfig,
    batch_sizes: Sequence[int],
    time_limit_s: float = PLAN_TIME_LIMIT_S,
    report: Callable[[str], None] = print,
) -> Sweep:
    """The best plan of any planner (`best`, coarse to fine) of the study's evaluation week at
    every batch size, `time_limit_s` each, seeded with the study's seed: what the agent's
    Table II is measured against."""
    line = load_line(base.line)
    week = load_week(evaluation_week(base), line)
    weeks = scenarios(line, week, batch_sizes)
    settings = SweepSettings(time_limit_s, workers=1, seed=base.seed, plans=0)
    return run_sweep(weeks, [PlannerSpec(BEST)], settings, report)


@dataclass
class _Stats:
    values: list[float]

    def cells(self, digits: int = 0) -> list[str]:
        if not self.values:
            return ["-"] * 3
        return [
            f"{min(self.values):.{digits}f}",
            f"{statistics.fmean(self.values):.{digits}f}",
            f"{max(self.values):.{digits}f}",
        ]


def _failed(summary: TrainSummary) -> bool:
    """The run's best evaluation plan deadlocked or left planned units unbuilt."""
    return summary.evaluation.best.failure() is not None


def table_rows(summaries: Sequence[TrainSummary], portfolio: Sweep | None = None) -> list[list[str]]:
    """Table II: one row per batch size. Steps, setup effort and return count only the runs that
    met the final criterion (as the paper does), or every run of the size when none did; setup
    effort only of best plans that are complete without deadlock (the others are counted in
    `deadlocked_or_incomplete`: stopping early saves setups). Then the best plan of any planner
    at the size (`best_plans`; `-` without it): its setup effort and idle time, the bound and
    the gap, and who found it."""
    plans = {r["batch_size"]: r for r in portfolio.rows()} if portfolio is not None else {}
    rows = []
    for size in sorted({s.batch_size for s in summaries}):
        runs = [s for s in summaries if s.batch_size == size]
        met = [s for s in runs if s.final_criterion_met]
        basis = met or runs
        efforts = [s.evaluation.best.setup_effort for s in basis if not _failed(s)]
        std = f"{statistics.stdev(efforts):.1f}" if len(efforts) > 1 else "-"
        returns = [s.evaluation.best.episode_return for s in basis]
        rows.append(
            [
                str(size),
                str(len(runs)),
                f"{len(met)}/{len(runs)}",
                f"{sum(s.evaluation.zero_idle for s in runs)}/{len(runs)}",
                f"{sum(map(_failed, runs))}/{len(runs)}",
                *_Stats([float(s.steps_to_finish) for s in met if s.steps_to_finish is not None]).cells(),
                *_Stats(efforts).cells(),
                std,
                f"{statistics.fmean(returns):.1f}" if returns else "-",
                *_best_cells(plans.get(size)),
            ]
        )
    return rows


def _best_cells(row: dict[str, object] | None) -> list[str]:
    if row is None:
        return ["-"] * len(BEST_COLUMNS)
    failed = failure(row)
    effort = f"{row['setup_effort']:g}" + (f" ({failed})" if failed else "")
    bound, gap = row["bound"], row["gap"]
    return [
        effort,
        str(row["idle_s"]),
        "-" if bound is None else f"{bound:g}",
        gap_text(gap) if isinstance(gap, float) else "-",
        str(row["found_by"]),
    ]


def write_table(out: Path, summaries: Sequence[TrainSummary], portfolio: Sweep | None = None) -> list[Path]:
    rows = table_rows(summaries, portfolio)
    csv_path, md_path = out / "table2.csv", out / "table2.md"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(TABLE_COLUMNS)
        writer.writerows(rows)
    lines = [
        "| " + " | ".join(TABLE_COLUMNS) + " |",
        "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        "Steps to finish, setup effort and return: runs that met the final criterion "
        "(all runs of a batch size when none did). Setup effort and return: the best of the "
        "evaluation plans (by the ranking: no deadlock, completion, idle time, setup effort); "
        "setup effort only of those that are complete without deadlock. deadlocked_or_incomplete: "
        "runs whose best plan deadlocked or left planned units unbuilt. best_*, bound, gap: the "
        "best plan of any planner (`linetwin sweep --planner best`) of the evaluation week at the "
        "batch size, the lower bound on setup effort at zero idle and the plan's gap to it "
        "(- where the study planned none: --plan-time-limit 0).",
    ]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def write_figures(out: Path, summaries: Sequence[TrainSummary], portfolio: Sweep | None = None) -> list[Path]:
    """steps_vs_batch_size.png and setup_effort_by_batch_size.png (see `figures`)."""
    import matplotlib.pyplot as plt

    paths = []
    for name, fig in figures(summaries, portfolio).items():
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        paths.append(out / name)
    return paths


def figures(summaries: Sequence[TrainSummary], portfolio: Sweep | None = None) -> dict[str, Figure]:
    """Time steps to finish vs batch size, and setup-effort box plots per batch size (complete
    best plans; a deadlocked or incomplete best plan is a red X with its completion), beside them
    the best plan of any planner (a black diamond where it has zero idle) and the bound (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.plots import label_points

    sizes = sorted({s.batch_size for s in summaries})
    steps = [
        [
            s.steps_to_finish
            for s in summaries
            if s.batch_size == b and s.final_criterion_met and s.steps_to_finish is not None
        ]
        for b in sizes
    ]
    best: list[list[PlanSummary]] = [
        [s.evaluation.best for s in summaries if s.batch_size == b] for b in sizes
    ]

    marks: list[tuple[tuple[float, float], str]] = []  # red labels a `draw` leaves for label_points

    def figure(ylabel: str, title: str, draw: Callable[[Axes], object]) -> Figure:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        draw(ax)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if marks:  # labelled once the layout is settled, apart and with leader lines
            fig.draw_without_rendering()
            fig.set_layout_engine("none")
            label_points(ax, [xy for xy, _ in marks], [t for _, t in marks], fontsize=7, color="tab:red")
            marks.clear()
        return fig

    def steps_scatter(ax: Axes) -> None:
        for b, values in zip(sizes, steps, strict=True):
            ax.scatter([b] * len(values), values, color="tab:blue", alpha=0.6)
        medians = [(b, statistics.median(v)) for b, v in zip(sizes, steps, strict=True) if v]
        for b, values in zip(sizes, steps, strict=True):
            if not values:  # said where it applies, never an empty spot
                ax.text(b, 0.03, "none met", transform=ax.get_xaxis_transform(), ha="center", fontsize=7)
        ax.set_xticks(sizes)
        ax.set_xlim(min(sizes) - 5, max(sizes) + 5)
        if medians:
            ax.plot(*zip(*medians, strict=True), color="tab:blue", label="median")
            ax.legend()
        else:
            ax.set_yticks([])
            ax.text(
                0.5,
                0.5,
                f"no run met the final criterion\n(0 of {len(summaries)} runs: no steps to finish)",
                transform=ax.transAxes,
                ha="center",
                va="center",
            )

    def effort_boxes(ax: Axes) -> None:
        complete = [[k.setup_effort for k in plans if k.failure() is None] for plans in best]
        drawn = [(i, v) for i, v in enumerate(complete, 1) if v]
        if drawn:
            ax.boxplot([v for _, v in drawn], positions=[i for i, _ in drawn])
        failed = [(i, k) for i, plans in enumerate(best, 1) for k in plans if k.failure() is not None]
        if failed:
            ax.scatter(
                [i for i, _ in failed],
                [k.setup_effort for _, k in failed],
                marker="X",
                color="tab:red",
                zorder=3,
                label="deadlocked or incomplete best plan (effort not comparable)",
            )
            marks.extend(((i, k.setup_effort), f"{k.completion:.0%}") for i, k in failed)
            ax.legend(fontsize=7)
        if portfolio is not None:
            _best_marks(ax, portfolio, sizes)
        ax.set_xticks(range(1, len(sizes) + 1), [str(b) for b in sizes])
        ax.set_xlim(0.5, len(sizes) + 0.5)

    return {
        "steps_vs_batch_size.png": figure(
            "time steps to finish training",
            "Sample complexity vs batch size (runs that met the final criterion)",
            steps_scatter,
        ),
        "setup_effort_by_batch_size.png": figure(
            "setup effort of the best plan",
            "Setup effort per batch size (best of the evaluation plans)",
            effort_boxes,
        ),
    }


def _best_marks(ax: Axes, portfolio: Sweep, sizes: Sequence[int]) -> None:
    """The best plan of any planner at each of the box plots' sizes (position 1, 2, ...): a black
    diamond with zero idle, hollow with idle time or a failure; the bound as a grey bar."""
    where = {size: i for i, size in enumerate(sizes, 1)}
    points = [p for p in portfolio.points if p.batch_size in where]
    clean = [p for p in points if failure(p.run.results) is None and p.run.results.idle_s == 0]
    for group, face, label in (
        (clean, "black", "best plan of any planner"),
        ([p for p in points if p not in clean], "none", "best plan of any planner, with idle time"),
    ):
        if group:
            ax.scatter(
                [where[p.batch_size] for p in group],
                [p.run.results.setup_effort for p in group],
                marker="D",
                facecolors=face,
                edgecolors="black",
                zorder=4,
                label=label,
            )
    bounds = {where[size]: bound for size in where if (bound := portfolio.bound(size)) is not None}
    if bounds:
        ax.scatter(
            list(bounds),
            list(bounds.values()),
            marker="_",
            s=300,
            color="grey",
            zorder=4,
            label="lower bound",
        )
    ax.legend(fontsize=7)
