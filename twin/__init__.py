"""The line twin: config, the salabim line model, its decision seam and KPIs.

It knows nothing of MQTT, InfluxDB or stable-baselines3."""

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
)
from twin.decision import Decider, Decision, DecisionRequest, FasPosition
from twin.errors import ConfigError, InvalidDecision, SimulationError, TwinError
from twin.forecast import Forecast
from twin.line import Line, simulate
from twin.results import BatchRecord, Results, Trace
from twin.scenario import Scenario

__all__ = [
    "BatchRecord",
    "ConfigError",
    "Decider",
    "Decision",
    "DecisionRequest",
    "FasPosition",
    "Forecast",
    "InvalidDecision",
    "Line",
    "LineConfig",
    "Results",
    "Scenario",
    "SequenceEntry",
    "SimulationError",
    "Trace",
    "TwinError",
    "WeekConfig",
    "WorkCalendar",
    "load_line",
    "load_plan",
    "load_sequence",
    "load_week",
    "simulate",
    "write_sequence",
]
