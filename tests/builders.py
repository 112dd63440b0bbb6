"""Small lines and weeks built in code, for hand-computed and property tests (and training
summaries with given evaluation plans)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from twin.config import LineConfig, WeekConfig
from twin.scenario import Scenario

if TYPE_CHECKING:
    from agent.training.summary import TrainSummary

MONDAY = dt.date(2026, 11, 23)
ALWAYS = {"shifts": [{"days": "Mon-Sun", "start": "00:00", "end": "24:00"}], "breaks": []}


def make_line(
    *,
    types: int = 2,
    fas_units: tuple[int, ...] = (10,),
    pas_unit: int = 1,
    capacity: int = 100,
    batch_size: int = 10,
    setup_time: int = 0,
    matrix: list[list[float]] | None = None,
    calendar: dict[str, Any] | None = None,
) -> LineConfig:
    names = [f"T{i + 1}" for i in range(types)]
    if matrix is None:
        matrix = [[0 if i == j else 1 for j in range(types)] for i in range(types)]
    return LineConfig.model_validate(
        {
            "name": "test",
            "types": names,
            "calendar": calendar or ALWAYS,
            "pas": {"unit_time_s": pas_unit, "batch_size": batch_size, "setup_time_s": setup_time},
            "buffer": {"capacity": capacity},
            "fas": [{"id": f"F{i + 1}", "unit_time_s": u} for i, u in enumerate(fas_units)],
            "setup_effort": {"matrix": matrix},
        }
    )


def make_week(
    line: LineConfig,
    plans: list[list[tuple[int, int]]],
    *,
    stock: list[int] | None = None,
    downtime: list[tuple[str, int, int]] = (),  # type: ignore[assignment]
    initial_setup: int | None = None,
    holidays: list[dt.date] = (),  # type: ignore[assignment]
    timezone: str = "UTC",
) -> WeekConfig:
    """plans: per FAS, orders as (type index, quantity); downtime: (station, start_s, end_s)
    in seconds after the week start (calendar time)."""
    start = dt.datetime.combine(MONDAY, dt.time())
    return WeekConfig.model_validate(
        {
            "week_start": MONDAY,
            "timezone": timezone,
            "holidays": list(holidays),
            "initial_setup": "" if initial_setup is None else line.types[initial_setup],
            "initial_stock": {
                t: (stock or [])[i] if i < len(stock or []) else 0 for i, t in enumerate(line.types)
            },
            "downtime": [
                {
                    "station": s,
                    "start": start + dt.timedelta(seconds=a),
                    "end": start + dt.timedelta(seconds=b),
                }
                for s, a, b in downtime
            ],
            "plans": {
                line.fas[f].id: [{"type": line.types[k], "quantity": q} for k, q in orders]
                for f, orders in enumerate(plans)
            },
        }
    )


def make_scenario(line: LineConfig, week: WeekConfig, batch_size: int | None = None) -> Scenario:
    return Scenario.build(line, week, batch_size)


def make_train_summary(
    size: int, met: bool, best: dict[str, Any], deterministic: dict[str, Any] | None = None, **run: Any
) -> TrainSummary:
    """A training run's summary at batch size `size` with these evaluation plans (the deterministic
    one: the best unless given); `run` overrides its fields. What a test does not give is filler:
    setups, batches, return 0, steps to finish 1000 when the run met its criterion."""
    from agent.training.summary import TrainSummary

    plans = {"best": best, "deterministic": deterministic or best}
    fields = {
        "run": "runs/train",
        "command": "linetwin train",
        "curriculum": "A",
        "batch_size": size,
        "seed": 0,
        "steps_budget": 1000,
        "steps_done": 1000,
        "episodes": 1,
        "tasks": [],
        "final_criterion_met": met,
        "steps_to_finish": 1000 if met else None,
        "wall_time_s": 0.0,
        "evaluation": {
            "week": "w1",
            "batch_size": size,
            "zero_idle": not best["deadlock"] and best["idle_s"] == 0,
            **{kind: {"setups": 0, "batches": 0, "return": 0.0, **k} for kind, k in plans.items()},
        },
    }
    return TrainSummary.model_validate({**fields, **run})
