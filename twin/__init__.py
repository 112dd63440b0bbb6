"""The line twin: config, the salabim line model, its decision seam and KPIs.

It knows nothing of MQTT, InfluxDB or stable-baselines3. Its names load on first use, so a tool
that only reads files (`import twin.config`) does not load salabim, gymnasium or numpy. Importing
it registers the gymnasium env `linetwin/Line-v0`: at once if gymnasium is loaded, else as soon as
it is (`twin.registration`)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from twin.registration import ENV_ID, register, register_with_gymnasium

if TYPE_CHECKING:  # what type checkers see; at run time `__getattr__` loads each name from `_HOME`
    from twin.calendar import WorkCalendar
    from twin.config import (
        LineConfig,
        SequenceEntry,
        WeekConfig,
        load_calendar,
        load_line,
        load_plan,
        load_sequence,
        load_week,
        write_sequence,
        write_week,
    )
    from twin.decision import Decider, Decision, DecisionRequest, FasPosition
    from twin.env import LineEnv, episode_kpis
    from twin.env_settings import EnvSettings, Task, load_env_settings
    from twin.errors import ConfigError, InvalidDecision, SimulationError, TwinError
    from twin.forecast import Forecast
    from twin.line import Line, simulate
    from twin.observation import Assessment, Observer
    from twin.results import BatchRecord, Kpis, Results, Trace
    from twin.scenario import Scenario
    from twin.weekgen import WeekGenerator, WeekSpec

_HOME = {
    "WorkCalendar": "calendar",
    **dict.fromkeys(
        (
            "LineConfig",
            "SequenceEntry",
            "WeekConfig",
            "load_calendar",
            "load_line",
            "load_plan",
            "load_sequence",
            "load_week",
            "write_sequence",
            "write_week",
        ),
        "config",
    ),
    **dict.fromkeys(("Decider", "Decision", "DecisionRequest", "FasPosition"), "decision"),
    **dict.fromkeys(("LineEnv", "episode_kpis"), "env"),
    **dict.fromkeys(("EnvSettings", "Task", "load_env_settings"), "env_settings"),
    **dict.fromkeys(("ConfigError", "InvalidDecision", "SimulationError", "TwinError"), "errors"),
    "Forecast": "forecast",
    **dict.fromkeys(("Line", "simulate"), "line"),
    **dict.fromkeys(("Assessment", "Observer"), "observation"),
    **dict.fromkeys(("BatchRecord", "Kpis", "Results", "Trace"), "results"),
    "Scenario": "scenario",
    **dict.fromkeys(("WeekGenerator", "WeekSpec"), "weekgen"),
}
"""Each lazily loaded name and the module of twin it lives in."""


def __getattr__(name: str) -> Any:
    """A name of `__all__` or a submodule (`twin.config`), imported on first use."""
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


register_with_gymnasium()

__all__ = [
    "ENV_ID",
    "Assessment",
    "BatchRecord",
    "ConfigError",
    "Decider",
    "Decision",
    "DecisionRequest",
    "EnvSettings",
    "FasPosition",
    "Forecast",
    "InvalidDecision",
    "Kpis",
    "Line",
    "LineConfig",
    "LineEnv",
    "Observer",
    "Results",
    "Scenario",
    "SequenceEntry",
    "SimulationError",
    "Task",
    "Trace",
    "TwinError",
    "WeekConfig",
    "WeekGenerator",
    "WeekSpec",
    "WorkCalendar",
    "episode_kpis",
    "load_calendar",
    "load_env_settings",
    "load_line",
    "load_plan",
    "load_sequence",
    "load_week",
    "register",
    "simulate",
    "write_sequence",
    "write_week",
]
