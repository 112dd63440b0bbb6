"""What the twin writes to InfluxDB: every measurement with its tags and fields (the dashboards query
these names and nothing else), and InfluxDB line protocol for them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

FieldValue = int | float | str | bool


@dataclass(frozen=True, slots=True)
class Metric:
    """One measurement: its name, tag keys and field keys."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]
    doc: str


BUFFER = Metric(
    "linetwin_buffer",
    ("line", "mode"),
    ("fill", "capacity", "fill_ratio"),
    "buffer fill, all types (mode: the line's arm, active or shadow; simulated for a simulated week)",
)
STOCK = Metric("linetwin_stock", ("line", "type"), ("units",), "buffer stock of one type")
FAS = Metric(
    "linetwin_fas",
    ("line", "station"),
    ("state", "state_code", "idle_s", "units", "position"),
    "one FAS: state, cumulative idle time, units taken, order position (1-based)",
)
PAS = Metric(
    "linetwin_pas",
    ("line",),
    ("state", "state_code", "batch_type", "batches", "setups", "setup_effort"),
    "the PAS: state, type of the batch in progress, batches, changeovers and cumulative setup effort",
)
KPI = Metric(
    "linetwin_kpi",
    ("line", "mode"),
    ("idle_s", "setup_effort", "setups", "completion"),
    "the week so far, as the offline twin defines its KPIs (mode: the line's arm, as for the buffer)",
)
DECISION = Metric(
    "linetwin_decision",
    ("line", "type", "policy", "mode"),
    ("decision_seq", "quantity", "latency_ms"),
    "one decision of the agent (latency: the service took the triggering event -> dispatch published)",
)
FORECAST = Metric(
    "linetwin_forecast",
    ("line", "policy"),
    ("idle_s", "setup_effort", "idle_s_end", "setup_effort_end"),
    "forecast to the end of the week from now, and the week's totals it implies",
)
SHADOW = Metric(
    "linetwin_shadow", ("line",), ("agreement", "compared", "agreed"), "shadow mode: agreement with the line"
)
ALERT = Metric(
    "linetwin_alert",
    ("line", "station", "type"),
    ("starve_in_s", "text"),
    "a predicted shortage: the FAS starves in starve_in_s working seconds if nothing changes",
)
WRITER = Metric(
    "linetwin_writer",
    ("line",),
    ("queued", "written", "dropped", "rejected", "retries"),
    "the metrics writer itself: what it delivered, dropped (queue full) or had rejected",
)
PLAN = Metric(
    "linetwin_plan",
    ("line", "planner"),
    ("revision", "plan_revision", "from_position", "batches", "source", "reason", "stopped", "planning_s",
     "bound", "gap", "gain", "idle_s", "setup_effort", "idle_s_end", "setup_effort_end"),
    "a timed PAS plan the service adopted: revision, provenance, gain over the plan it replaced, forecast "
    "to the end of the week and the week's totals it implies",
)  # fmt: skip
PLAN_NEXT = 10
"""How many of an adopted plan's batches `PLAN_BATCH` holds (its `next` tag: 01 … 10)."""
PLAN_BATCH = Metric(
    "linetwin_plan_batch",
    ("line", "next"),
    ("revision", "position", "type", "quantity", "start", "end", "changeover"),
    "the adopted plan's first batches, one series per rank; a rank the plan has not holds its revision only",
)
METRICS = (BUFFER, STOCK, FAS, PAS, KPI, DECISION, FORECAST, SHADOW, ALERT, PLAN, PLAN_BATCH, WRITER)

FAS_STATE_CODES = {"waiting": 0, "working": 1, "down": 2, "done": 3}
PAS_STATE_CODES = {"idle": 0, "producing": 1, "blocked": 2, "down": 3, "stopped": 4}
"""Numbers for state-timeline panels (value mappings in the dashboards use the same)."""


_ESCAPE_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
"""Tag values and field keys, escaped as influxdb-client's `Point` does: a backslash stays as it is
(InfluxDB 1.x would store an escaped one twice). Names never need it (`twin.names`); a policy may."""


def _escape_key(text: str) -> str:
    return text.translate(_ESCAPE_KEY)


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line_protocol(
    metric: Metric, tags: Mapping[str, str], fields: Mapping[str, FieldValue], time_ns: int
) -> str:
    """One point as InfluxDB line protocol; unknown tag or field keys are a programming error."""
    unknown = (set(tags) - set(metric.tags)) | (set(fields) - set(metric.fields))
    if unknown:
        raise ValueError(f"{metric.name}: unknown keys {sorted(unknown)}")
    if not fields:
        raise ValueError(f"{metric.name}: a point needs at least one field")
    tag_text = "".join(f",{k}={_escape_key(v)}" for k, v in sorted(tags.items()) if v != "")
    field_text = ",".join(f"{_escape_key(k)}={_field(v)}" for k, v in fields.items())
    return f"{metric.name}{tag_text} {field_text} {time_ns}"


_SERIES = re.compile(r"(?:[^ \\]|\\.)+")


def series_of(point: str) -> str:
    """The measurement and tags of a point in line protocol (its series)."""
    match = _SERIES.match(point)
    if match is None:
        raise ValueError(f"not line protocol: {point[:80]!r}")
    return match.group()


def time_of(point: str) -> int:
    """The timestamp of a point in line protocol (nanoseconds)."""
    return int(point.rsplit(" ", 1)[1])
