"""The Grafana dashboards "Line" and "Agent", built from the metric names of `bridge.metrics` (so a
renamed field cannot leave a panel behind). Their InfluxQL runs on InfluxDB 1.8, 2.x (v1
compatibility) and 3.x.

    python -m bridge.dashboards [grafana/dashboards]     # writes line.json and agent.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bridge.metrics import (
    ALERT,
    BUFFER,
    DECISION,
    FAS,
    FAS_STATE_CODES,
    FORECAST,
    KPI,
    PAS,
    PAS_STATE_CODES,
    SHADOW,
    STOCK,
    WRITER,
    Metric,
)

DATASOURCE = {"type": "influxdb", "uid": "linetwin-influxdb"}
"""The provisioned datasource (grafana/provisioning/datasources/influxdb.yaml)."""
LINE_FILTER = '"line" =~ /^${line:regex}$/ AND $timeFilter'
"""The line's points: Grafana's `regex` format escapes the name's regex characters (a '.' of a line
name matches only a '.'; '/' would end the InfluxQL regex, but `twin.names` keeps it out of names)."""
WIDTH = 24


def _field(metric: Metric, field: str) -> str:
    if field not in metric.fields:
        raise ValueError(f"{metric.name} has no field {field!r}")
    return f'"{field}"'


def last(metric: Metric, field: str, by: str | None = None, alias: str | None = None) -> str:
    """The step series of a field (last value per interval, carried forward)."""
    group = "time($__interval)" + (f', "{by}"' if by else "")
    name = f' AS "{alias}"' if alias else ""
    return (
        f'SELECT last({_field(metric, field)}){name} FROM "{metric.name}" WHERE {LINE_FILTER} '
        f"GROUP BY {group} fill(previous)"
    )


def rows(metric: Metric, *fields: str) -> str:
    """The raw points of some fields (and tags), for tables and annotations."""
    columns = ", ".join(_field(metric, f) if f in metric.fields else f'"{f}"' for f in fields)
    unknown = [f for f in fields if f not in metric.fields and f not in metric.tags]
    if unknown:
        raise ValueError(f"{metric.name} has no {unknown}")
    return f'SELECT {columns} FROM "{metric.name}" WHERE {LINE_FILTER}'


def _target(query: str, ref: str = "A", fmt: str = "time_series") -> dict[str, Any]:
    return {"refId": ref, "datasource": DATASOURCE, "query": query, "rawQuery": True, "resultFormat": fmt}


def _mappings(codes: dict[str, int]) -> list[dict[str, Any]]:
    return [{"type": "value", "options": {str(v): {"text": k, "index": v} for k, v in codes.items()}}]


class _Board:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = self._row_h = 0

    def add(
        self,
        title: str,
        kind: str,
        queries: list[str],
        w: int = 12,
        h: int = 8,
        unit: str = "short",
        fmt: str = "time_series",
        mappings: list[dict[str, Any]] | None = None,
    ) -> None:
        if self._x + w > WIDTH:
            self._x, self._y = 0, self._y + self._row_h
            self._row_h = 0
        refs = "ABCDEFGH"
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "title": title,
                "type": kind,
                "datasource": DATASOURCE,
                "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h},
                "targets": [_target(q, refs[i], fmt) for i, q in enumerate(queries)],
                "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or []}, "overrides": []},
                "options": {},
            }
        )
        self._x += w
        self._row_h = max(self._row_h, h)


def _dashboard(uid: str, title: str, board: _Board, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["linetwin"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "line",
                    "label": "Line",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": f'SHOW TAG VALUES FROM "{KPI.name}" WITH KEY = "line"',
                    "refresh": 2,
                    "includeAll": False,
                    "multi": False,
                }
            ]
        },
        "annotations": {"list": annotations},
        "panels": board.panels,
    }


def line_dashboard() -> dict[str, Any]:
    b = _Board()
    b.add(
        "Buffer fill",
        "timeseries",
        [last(BUFFER, "fill", alias="fill"), last(BUFFER, "capacity", alias="capacity")],
    )
    b.add("Stock per type", "timeseries", [last(STOCK, "units", by="type")])
    b.add(
        "FAS state",
        "state-timeline",
        [last(FAS, "state_code", by="station")],
        mappings=_mappings(FAS_STATE_CODES),
    )
    b.add("FAS idle time (cumulative)", "timeseries", [last(FAS, "idle_s", by="station")], unit="s")
    b.add("PAS state", "state-timeline", [last(PAS, "state_code")], mappings=_mappings(PAS_STATE_CODES))
    b.add(
        "PAS batches and setup effort (cumulative)",
        "timeseries",
        [last(PAS, "batches", alias="batches"), last(PAS, "setup_effort", alias="setup effort")],
    )
    b.add(
        "Forecast idle time to the end of the week",
        "timeseries",
        [last(FORECAST, "idle_s", alias="forecast idle")],
        unit="s",
    )
    b.add(
        "KPIs so far",
        "stat",
        [last(KPI, "idle_s", alias="idle"), last(KPI, "setup_effort", alias="setup effort")],
    )
    b.add(
        "Decision log",
        "table",
        [rows(DECISION, "decision_seq", "type", "quantity", "policy", "mode", "latency_ms")],
        w=24,
        fmt="table",
    )
    alerts = {
        "name": "Shortage alerts",
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": "red",
        "query": rows(ALERT, "text", "station", "type"),
        "textColumn": "text",
        "tagsColumn": "station,type",
    }
    return _dashboard("linetwin-line", "Line", b, [alerts])


def agent_dashboard() -> dict[str, Any]:
    b = _Board()
    b.add(
        "Shadow agreement", "timeseries", [last(SHADOW, "agreement", alias="agreement")], unit="percentunit"
    )
    b.add(
        "Idle time: forecast for the week vs so far",
        "timeseries",
        [last(FORECAST, "idle_s_end", alias="forecast at week end"), last(KPI, "idle_s", alias="so far")],
        unit="s",
    )
    b.add(
        "Setup effort: forecast for the week vs so far",
        "timeseries",
        [
            last(FORECAST, "setup_effort_end", alias="forecast at week end"),
            last(KPI, "setup_effort", alias="so far"),
        ],
    )
    latency_ms = _field(DECISION, "latency_ms")
    latency = (
        f'SELECT mean({latency_ms}) AS "mean", max({latency_ms}) AS "max" FROM "{DECISION.name}" '
        f"WHERE {LINE_FILTER} GROUP BY time($__interval) fill(none)"
    )
    b.add("Decision latency (in the service)", "timeseries", [latency], unit="ms")
    b.add(
        "Metrics writer",
        "timeseries",
        [last(WRITER, "queued", alias="queued"), last(WRITER, "dropped", alias="dropped")],
        w=24,
    )
    return _dashboard("linetwin-agent", "Agent", b, [])


DASHBOARDS = {"line.json": line_dashboard, "agent.json": agent_dashboard}


def write_dashboards(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in DASHBOARDS.items():
        path = folder / name
        path.write_text(json.dumps(build(), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_dashboards(Path(sys.argv[1] if len(sys.argv) > 1 else "grafana/dashboards")):
        print(f"wrote {path}")
