"""The paper's batch-size study as a product feature: train a grid of (batch size, seed) runs in
parallel processes, then write its Table II (CSV and Markdown) and its figures.

Each run lives in `<out>/b<size>_s<seed>/` and is an ordinary `linetwin train` run: a restarted
study skips finished runs and resumes interrupted ones from their last checkpoint."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.train import TrainConfig, latest_checkpoint, train

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TABLE_COLUMNS = (
    "batch_size",
    "runs",
    "final_criterion_met",
    "zero_idle_solutions",
    "steps_to_finish_min",
    "steps_to_finish_avg",
    "steps_to_finish_max",
    "setup_effort_min",
    "setup_effort_avg",
    "setup_effort_max",
    "setup_effort_std",
    "return_avg",
)


def run_folder(out: Path, batch_size: int, seed: int) -> Path:
    return out / f"b{batch_size}_s{seed}"


def is_finished(folder: Path, steps: int) -> bool:
    """A run whose summary covers the asked budget (or that met its final criterion)."""
    path = folder / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text(encoding="utf-8"))
    return bool(summary["final_criterion_met"] or summary["steps_done"] >= steps)


def _train_one(config: TrainConfig) -> dict[str, Any]:
    resume = latest_checkpoint(config.out / "checkpoints") is not None
    return train(config, resume=resume)


def run_study(
    base: TrainConfig,
    batch_sizes: Sequence[int],
    seeds: Sequence[int],
    jobs: int,
    report: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train every (batch size, seed) not finished yet; return all summaries of the grid."""
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
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(_train_one, c): c for c in todo}
            for done, future in enumerate(as_completed(futures), 1):
                config = futures[future]
                summary = future.result()
                state = "final criterion met" if summary["final_criterion_met"] else "not finished"
                report(
                    f"[{done}/{len(todo)}] b={config.batch_size} seed={config.seed}: {state}, "
                    f"{summary['steps_done']} steps, {summary['wall_time_s']:.0f} s"
                )
    return [json.loads((c.out / "summary.json").read_text(encoding="utf-8")) for c in configs]


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


def table_rows(summaries: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Table II: one row per batch size. Steps, setup effort and return count only the runs that
    met the final criterion (as the paper does), or every run of the size when none did."""
    rows = []
    for size in sorted({s["batch_size"] for s in summaries}):
        runs = [s for s in summaries if s["batch_size"] == size]
        met = [s for s in runs if s["final_criterion_met"]]
        basis = met or runs
        efforts = [float(s["evaluation"]["best"]["setup_effort"]) for s in basis]
        std = f"{statistics.stdev(efforts):.1f}" if len(efforts) > 1 else "-"
        returns = [float(s["evaluation"]["best"]["return"]) for s in basis]
        rows.append(
            [
                str(size),
                str(len(runs)),
                f"{len(met)}/{len(runs)}",
                f"{sum(s['evaluation']['zero_idle'] for s in runs)}/{len(runs)}",
                *_Stats([float(s["steps_to_finish"]) for s in met]).cells(),
                *_Stats(efforts).cells(),
                std,
                f"{statistics.fmean(returns):.1f}" if returns else "-",
            ]
        )
    return rows


def write_table(out: Path, summaries: Sequence[dict[str, Any]]) -> list[Path]:
    rows = table_rows(summaries)
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
        "evaluation plans.",
    ]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md_path]


def write_figures(out: Path, summaries: Sequence[dict[str, Any]]) -> list[Path]:
    """Time steps to finish vs batch size, and setup-effort box plots per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({s["batch_size"] for s in summaries})
    steps = [
        [s["steps_to_finish"] for s in summaries if s["batch_size"] == b and s["final_criterion_met"]]
        for b in sizes
    ]
    efforts = [
        [s["evaluation"]["best"]["setup_effort"] for s in summaries if s["batch_size"] == b] for b in sizes
    ]

    def figure(name: str, ylabel: str, title: str, draw: Callable[[Axes], object]) -> Path:
        fig, ax = plt.subplots(figsize=(7, 4))
        draw(ax)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        return out / name

    def steps_scatter(ax: Axes) -> None:
        for b, values in zip(sizes, steps, strict=True):
            ax.scatter([b] * len(values), values, color="tab:blue", alpha=0.6)
        medians = [(b, statistics.median(v)) for b, v in zip(sizes, steps, strict=True) if v]
        if medians:
            ax.plot(*zip(*medians, strict=True), color="tab:blue", label="median")
            ax.legend()

    return [
        figure(
            "steps_vs_batch_size.png",
            "time steps to finish training",
            "Sample complexity vs batch size (runs that met the final criterion)",
            steps_scatter,
        ),
        figure(
            "setup_effort_by_batch_size.png",
            "setup effort of the best plan",
            "Setup effort per batch size (best of the evaluation plans)",
            lambda ax: ax.boxplot(efforts, tick_labels=[str(b) for b in sizes]),
        ),
    ]
