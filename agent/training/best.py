"""The best model of a run by evaluation: every `every` steps the agent plans held-out generated
weeks deterministically; the one with the fewest weeks off zero idle, then the least setup effort,
is kept as `best.zip` (with its card), so a fine-tune that drifts away does not ship a worse model.

Held-out weeks are `WeekGenerator.generate(HELD_OUT_SEED + i)`: training draws its weeks' seeds
below 2**31, these lie above."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from agent.planners.evaluate import play
from agent.planners.rl import ModelCard, save_model
from twin import LineConfig, LineEnv, Task, WeekConfig, WeekGenerator

HELD_OUT_SEED = 2**31
"""The first held-out week's seed (training's generated weeks have seeds below it)."""
LOG = "evaluations.jsonl"
"""One line per evaluation in the run folder: steps, weeks off zero idle, setup effort, kept."""


def held_out_weeks(line: LineConfig, template: WeekConfig, count: int) -> list[WeekConfig]:
    generator = WeekGenerator(line, template)
    return [generator.generate(HELD_OUT_SEED + i) for i in range(count)]


@dataclass(frozen=True)
class Score:
    """An evaluation: weeks not at zero idle (or deadlocked), then total setup effort; less is better."""

    off_zero_idle: int
    setup_effort: float

    def key(self) -> tuple[int, float]:
        return self.off_zero_idle, self.setup_effort


class BestKeeper(BaseCallback):
    """Evaluates every `every` steps (after a rollout) and at the end; saves `best.zip` on improvement."""

    def __init__(
        self, folder: Path, every: int, line: LineConfig, weeks: list[WeekConfig], card: ModelCard
    ) -> None:
        super().__init__()
        self.folder = folder
        self.every = every
        self.card = card
        self.envs = [LineEnv(line, [week], card.batch_size, card.env_settings, Task()) for week in weeks]
        self.weeks = len(weeks)
        self.best: Score | None = _logged_best(folder / LOG)
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self._last >= self.every:
            self.evaluate()

    def _on_training_end(self) -> None:
        if self.num_timesteps > self._last:
            self.evaluate()

    def score(self) -> Score:
        off, effort = 0, 0.0
        for env in self.envs:
            results = play(env, self.model, True, 0).run.results  # type: ignore[arg-type]
            off += int(results.deadlock or results.idle_s > 0 or results.completion < 1.0)
            effort += results.setup_effort
        return Score(off, round(effort, 6))

    def evaluate(self) -> Score:
        self._last = self.num_timesteps
        score = self.score()
        kept = self.best is None or score.key() < self.best.key()
        if kept:
            self.best = score
            save_model(self.model, self.folder / "best.zip", self.card)  # type: ignore[arg-type]
        line = {
            "steps": self.num_timesteps,
            "off_zero_idle": score.off_zero_idle,
            "weeks": self.weeks,
            "setup_effort": score.setup_effort,
            "kept": kept,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        self.logger.record("best/off_zero_idle", score.off_zero_idle)
        self.logger.record("best/setup_effort", score.setup_effort)
        return score


def _logged_best(log: Path) -> Score | None:
    """The best score an earlier (resumed) part of the run kept, or None."""
    if not log.is_file():
        return None
    kept = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    scores = [Score(e["off_zero_idle"], e["setup_effort"]) for e in kept if e.get("kept")]
    return min(scores, key=Score.key) if scores else None
