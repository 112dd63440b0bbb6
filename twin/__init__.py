"""The line twin: config, the salabim line model, its decision seam and KPIs.

Importing it registers the gymnasium env `linetwin/Line-v0`. It knows nothing of MQTT, InfluxDB
or stable-baselines3."""

from twin.calendar import WorkCalendar
from twin.config import (
    LineConfig,
    SequenceEntry,
    WeekConfig,
    load_line,
    load_plan,
    load_sequence,
    load_week,
    write_sequence,
    write_week,
)
from twin.decision import Decider, Decision, DecisionRequest, FasPosition
from twin.env import ENV_ID, LineEnv, episode_kpis, register
from twin.env_settings import EnvSettings, Task, load_env_settings
from twin.errors import ConfigError, InvalidDecision, SimulationError, TwinError
from twin.forecast import Forecast
from twin.line import Line, simulate
from twin.observation import Assessment, Observer
from twin.results import BatchRecord, Results, Trace
from twin.scenario import Scenario
from twin.weekgen import WeekGenerator, WeekSpec

register()

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
