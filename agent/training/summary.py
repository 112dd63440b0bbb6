"""A training run's `summary.json`, typed: the steps at which each task was learned, the final
agent's evaluation plans and the wall time. Written and read in the shape it always had."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from twin import Results, Task
from twin.config import load_json_model
from twin.results import RankKey, failure, headline, rank_key


class PlanSummary(BaseModel):
    """One evaluation plan of the final agent: its headline KPIs (`twin.results.HEADLINE`) and
    batches, in the order summary.json has always had them, its episode return and its seed."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    idle_s: int
    setup_effort: float
    setups: int
    deadlock: bool
    completion: float
    batches: int
    episode_return: float = Field(alias="return")
    seed: int | None = None
    """The seed of a stochastic plan, None for the deterministic one; summaries written before the
    seed was kept do not have it (`seed_known`)."""

    @classmethod
    def of(cls, results: Results, episode_return: float, seed: int | None) -> PlanSummary:
        """The plan of a run with these `results`: its KPIs as the twin computed them."""
        kpis = headline(results, "batches")
        return cls.model_validate({**kpis, "return": round(episode_return, 3), "seed": seed})

    @property
    def seed_known(self) -> bool:
        return "seed" in self.model_fields_set

    def rank_key(self) -> RankKey:
        """The plan's place in the one ranking of plans (`twin.results.rank_key`)."""
        return rank_key(self.model_dump())

    def failure(self) -> str | None:
        """How the plan failed (`twin.results.failure`), or None for a complete one."""
        return failure(self.model_dump())

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.seed_known:  # an old summary reads back as it was
            data.pop("seed")
        return data


class EvaluationSummary(BaseModel):
    """The final agent on the evaluation week at its final batch size: the best of its stochastic
    and deterministic plans by the ranking, and its deterministic plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    week: str
    batch_size: int
    zero_idle: bool
    """Some evaluation plan had no idle time."""
    best: PlanSummary
    deterministic: PlanSummary


class TaskSummary(Task):
    """A curriculum task (its settings) and the step at which it was learned (None: never)."""

    task: int
    learned_at_step: int | None

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        head = {"task": data.pop("task"), "learned_at_step": data.pop("learned_at_step")}
        return {**head, **{k: v for k, v in data.items() if v is not None}}  # settings given only


class TrainSummary(BaseModel):
    """What a training run did: `summary.json` in its folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: str
    command: str
    curriculum: str
    batch_size: int
    seed: int
    steps_budget: int
    steps_done: int
    episodes: int
    tasks: list[TaskSummary]
    final_criterion_met: bool
    steps_to_finish: int | None
    """The step at which the last task was learned (None: not yet)."""
    wall_time_s: float
    evaluation: EvaluationSummary

    def write(self, folder: Path) -> Path:
        path = folder / SUMMARY
        text = json.dumps(self.model_dump(mode="json", by_alias=True), indent=2)
        path.write_text(text + "\n", encoding="utf-8")
        return path


SUMMARY = "summary.json"


def read_summary(folder: Path) -> TrainSummary | None:
    """The summary of the run in `folder`, None before it has one."""
    path = folder / SUMMARY
    return load_json_model(path, TrainSummary) if path.is_file() else None
