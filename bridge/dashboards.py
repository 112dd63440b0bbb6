"""The Grafana dashboards "Line", "Agent" and "Plant", built with Grafana's Foundation SDK from the
metric names of `bridge.metrics` (so a renamed field cannot leave a panel behind). Their InfluxQL runs
on InfluxDB 1.8, 2.x (v1 compatibility) and 3.x. The shipped `grafana/dashboards/*.json` are its
output; regenerate them after a change (a test compares them):

    python -m bridge.dashboards [grafana/dashboards]     # writes line.json, agent.json and plant.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.statetimeline import Panel as StateTimeline
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries
from grafana_foundation_sdk.cog import builder, variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    AnnotationQuery,
    DataSourceRef,
    DataTransformerConfig,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
    VariableRefresh,
)

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
    PLAN,
    PLAN_BATCH,
    SHADOW,
    STOCK,
    WRITER,
    Metric,
)

DATASOURCE = DataSourceRef(type_val="influxdb", uid="linetwin-influxdb")
"""The provisioned datasource (grafana/provisioning/datasources/influxdb.yaml)."""
LINE_FILTER = '"line" =~ /^${line:regex}$/ AND $timeFilter'
"""The chosen line's points, whatever its name: Grafana's `regex` format escapes `\\ ^ $ * + ? . ( ) | [ ]
{ } /` (`escapeRegex` of @grafana/data), and InfluxQL reads `\\/` in a regex as '/' and hands the other
escapes to the regex engine, so every character of the name matches only itself and none ends the
regex. Quotes need no escape between the slashes."""


class InfluxQL(variants.Dataquery, builder.Builder[variants.Dataquery]):
    """A raw InfluxQL query of the InfluxDB datasource, as Grafana's InfluxDB plugin stores it (the SDK
    has builders for the other datasources' queries, not for InfluxDB's)."""

    def __init__(self, query: str, ref_id: str = "A", result_format: str = "time_series") -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format

    def build(self) -> InfluxQL:
        return self

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE,
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }


class InfluxAnnotation(AnnotationQuery, builder.Builder[AnnotationQuery]):
    """Events from an InfluxQL query: the time of each row, its `text` column and the comma-separated
    `tags` columns (the SDK types an annotation's target for Grafana's built-in annotations only)."""

    def __init__(self, name: str, query: str, text: str, tags: list[str], icon_color: str) -> None:
        super().__init__(name=name, datasource=DATASOURCE, enable=True, icon_color=icon_color)
        self.query = InfluxQL(query, ref_id="Anno", result_format="table")
        self.text = text
        self.tags = tags

    def build(self) -> InfluxAnnotation:
        return self

    def to_json(self) -> dict[str, object]:
        target = {
            **self.query.to_json(),
            "fromAnnotations": True,
            "textColumn": self.text,
            "tagsColumn": ",".join(self.tags),
        }
        return {**super().to_json(), "target": target}


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


def latest_rows(metric: Metric, by: str, *fields: str) -> str:
    """Per value of the tag `by`, its newest point's fields (all from that one point; the series come
    in descending order of the tag)."""
    if by not in metric.tags:
        raise ValueError(f"{metric.name} has no tag {by!r}")
    return f'{rows(metric, *fields)} GROUP BY "{by}" ORDER BY time DESC LIMIT 1'


def first(metric: Metric, field: str, alias: str) -> str:
    """The first value of a field in the time range."""
    return f'SELECT first({_field(metric, field)}) AS "{alias}" FROM "{metric.name}" WHERE {LINE_FILTER}'


def _hide(*columns: str) -> DataTransformerConfig:
    return DataTransformerConfig(id_val="organize", options={"excludeByName": dict.fromkeys(columns, True)})


def _sort(column: str) -> DataTransformerConfig:
    """Rows in ascending order of `column`."""
    return DataTransformerConfig(id_val="sortBy", options={"fields": {}, "sort": [{"field": column}]})


def _without_null(column: str) -> DataTransformerConfig:
    """Drop the rows whose `column` is empty."""
    rule = {"fieldName": column, "config": {"id": "isNull", "options": {}}}
    return DataTransformerConfig(
        id_val="filterByValue", options={"filters": [rule], "type": "exclude", "match": "any"}
    )


def _mappings(codes: dict[str, int]) -> list[ValueMapping]:
    return [ValueMap(options={str(v): ValueMappingResult(text=k, index=v) for k, v in codes.items()})]


Panel = TimeSeries | StateTimeline | Stat | Table


def _panel(
    panel: Panel, title: str, queries: list[str], w: int = 12, unit: str = "short", fmt: str = "time_series"
) -> Panel:
    """A panel of the line's queries (refIds A, B, ...), 8 rows high; the dashboard lays panels out
    left to right, wrapping at the grid's 24 columns."""
    targets: list[builder.Builder[variants.Dataquery]] = [
        InfluxQL(q, chr(ord("A") + i), fmt) for i, q in enumerate(queries)
    ]
    return panel.title(title).datasource(DATASOURCE).span(w).height(8).unit(unit).targets(targets)


def _dashboard(
    uid: str, title: str, panels: list[Panel], annotations: list[InfluxAnnotation], one_line: bool = True
) -> dashboard.Dashboard:
    """`one_line`: with the variable `line` that every query selects its line by."""
    line = (
        dashboard.QueryVariable("line")
        .label("Line")
        .datasource(DATASOURCE)
        .query(f'SHOW TAG VALUES FROM "{KPI.name}" WITH KEY = "line"')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(False)
        .multi(False)
    )
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["linetwin"])
        .timezone("browser")
        .editable()
        .refresh("10s")
        .time("now-7d", "now")
        .annotations(list(annotations))
    )
    if one_line:
        board.with_variable(line)
    for number, panel in enumerate(panels, 1):
        board.with_panel(panel.id(number))
    return board


def line_dashboard() -> dashboard.Dashboard:
    alerts = rows(ALERT, "text", "station", "type")
    return _dashboard(
        "linetwin-line",
        "Line",
        [
            _panel(
                TimeSeries(),
                "Buffer fill",
                [last(BUFFER, "fill", alias="fill"), last(BUFFER, "capacity", alias="capacity")],
            ),
            _panel(TimeSeries(), "Stock per type", [last(STOCK, "units", by="type")]),
            _panel(
                StateTimeline().mappings(_mappings(FAS_STATE_CODES)),
                "FAS state",
                [last(FAS, "state_code", by="station")],
            ),
            _panel(
                TimeSeries(),
                "FAS idle time (cumulative)",
                [last(FAS, "idle_s", by="station")],
                unit="s",
            ),
            _panel(
                StateTimeline().mappings(_mappings(PAS_STATE_CODES)),
                "PAS state",
                [last(PAS, "state_code")],
            ),
            _panel(
                TimeSeries(),
                "PAS batches and setup effort (cumulative)",
                [last(PAS, "batches", alias="batches"), last(PAS, "setup_effort", alias="setup effort")],
            ),
            _panel(
                TimeSeries(),
                "Forecast idle time to the end of the week",
                [last(FORECAST, "idle_s", alias="forecast idle")],
                unit="s",
            ),
            _panel(
                Stat(),
                "KPIs so far",
                [last(KPI, "idle_s", alias="idle"), last(KPI, "setup_effort", alias="setup effort")],
            ),
            _panel(
                Table(),
                "Decision log",
                [rows(DECISION, "decision_seq", "type", "quantity", "policy", "mode", "latency_ms")],
                w=24,
                fmt="table",
            ),
        ],
        [InfluxAnnotation("Shortage alerts", alerts, "text", ["station", "type"], "red")],
    )


def agent_dashboard() -> dashboard.Dashboard:
    latency_ms = _field(DECISION, "latency_ms")
    latency = (
        f'SELECT mean({latency_ms}) AS "mean", max({latency_ms}) AS "max" FROM "{DECISION.name}" '
        f"WHERE {LINE_FILTER} GROUP BY time($__interval) fill(none)"
    )
    batch = ("position", "type", "quantity", "start", "end", "changeover", "revision")
    replans = rows(PLAN, "revision", "reason", "source", "planner", "gain", "planning_s",
                   "setup_effort_end", "idle_s_end", "from_position", "stopped", "gap")  # fmt: skip
    replan_notes = rows(PLAN, "reason", "source", "planner")
    return _dashboard(
        "linetwin-agent",
        "Agent",
        [
            _panel(
                TimeSeries(),
                "Shadow agreement",
                [last(SHADOW, "agreement", alias="agreement")],
                unit="percentunit",
            ),
            _panel(
                TimeSeries(),
                "Idle time: forecast for the week vs so far",
                [
                    last(FORECAST, "idle_s_end", alias="forecast at week end"),
                    last(KPI, "idle_s", alias="so far"),
                    last(PLAN, "idle_s_end", alias="plan at week end"),
                ],
                unit="s",
            ),
            _panel(
                TimeSeries(),
                "Setup effort: forecast for the week vs so far",
                [
                    last(FORECAST, "setup_effort_end", alias="forecast at week end"),
                    last(KPI, "setup_effort", alias="so far"),
                    last(PLAN, "setup_effort_end", alias="plan at week end"),
                ],
            ),
            _panel(TimeSeries(), "Decision latency (in the service)", [latency], unit="ms"),
            _panel(
                Table().transformations(
                    [_without_null("position"), _sort("position"), _hide("Time", "next")]
                ),
                "Plan: next batches",
                [latest_rows(PLAN_BATCH, "next", *batch)],
                fmt="table",
            ),
            _panel(
                Stat(),
                "Setup effort for the week: plans vs so far",
                [
                    first(PLAN, "setup_effort_end", alias="first plan"),
                    last(PLAN, "setup_effort_end", alias="current plan"),
                    last(KPI, "setup_effort", alias="so far"),
                ],
                w=6,
            ),
            _panel(
                Stat(),
                "Idle time for the week: plans vs so far",
                [
                    first(PLAN, "idle_s_end", alias="first plan"),
                    last(PLAN, "idle_s_end", alias="current plan"),
                    last(KPI, "idle_s", alias="so far"),
                ],
                w=6,
                unit="s",
            ),
            _panel(Table(), "Re-plans (newest first)", [f"{replans} ORDER BY time DESC"], w=24, fmt="table"),
            _panel(
                TimeSeries(),
                "Metrics writer",
                [last(WRITER, "queued", alias="queued"), last(WRITER, "dropped", alias="dropped")],
                w=24,
            ),
        ],
        [InfluxAnnotation("Re-plans", replan_notes, "reason", ["source", "planner"], "blue")],
    )


PLANT_FILTER = "$timeFilter"
"""The plant dashboard's queries take every line."""
PER_LINE = '"line", "mode"'
"""One row (series) per line, with its arm."""


def per_line(metric: Metric, *fields: tuple[str, str], how: str = "last") -> str:
    """Per line (and its arm), `how` of each field in the time range (`(field, alias)` pairs)."""
    columns = ", ".join(f'{how}({_field(metric, f)}) AS "{alias}"' for f, alias in fields)
    return f'SELECT {columns} FROM "{metric.name}" WHERE {PLANT_FILTER} GROUP BY {PER_LINE}'


def each_line(metric: Metric, field: str) -> str:
    """The step series of a field, one per line (with its arm)."""
    return (
        f'SELECT last({_field(metric, field)}) FROM "{metric.name}" WHERE {PLANT_FILTER} '
        f"GROUP BY time($__interval), {PER_LINE} fill(previous)"
    )


def per_arm(metric: Metric, *fields: tuple[str, str], lines: bool = False) -> str:
    """Per arm (active, shadow), the mean over its lines of each line's last value of each field in
    the time range (`(field, alias)` pairs); `lines`: also how many lines the arm has. The KPIs of
    the lines the agent steers next to those it only advises."""
    inner = ", ".join(f'last({_field(metric, f)}) AS "{f}"' for f, _ in fields)
    columns = ", ".join(f'mean("{f}") AS "{alias}"' for f, alias in fields)
    if lines:
        columns = f'count("{fields[0][0]}") AS "lines", {columns}'
    return (
        f'SELECT {columns} FROM (SELECT {inner} FROM "{metric.name}" WHERE {PLANT_FILTER} '
        f'GROUP BY {PER_LINE}) WHERE {PLANT_FILTER} GROUP BY "mode"'
    )


def _merged_rows(by: str) -> list[DataTransformerConfig]:
    """The table's queries (one row per `by` each) joined into one row per `by`."""
    return [DataTransformerConfig(id_val="merge", options={}), _sort(by), _hide("Time")]


def plant_dashboard() -> dashboard.Dashboard:
    """Every line of the plant: a table of their KPIs (buffer fill, idle time, setups and effort,
    decisions) with each line's arm, the same per arm (the mean of its lines), and each line's
    buffer fill, idle time and setup effort over time."""
    kpi_fields = (("idle_s", "idle (s)"), ("setup_effort", "setup effort"), ("setups", "setups"),
                  ("completion", "completion"))  # fmt: skip
    buffer_fields = (("fill", "buffer fill"), ("fill_ratio", "buffer fill ratio"))
    latency_ms = _field(DECISION, "latency_ms")
    decisions = (
        f'SELECT count({_field(DECISION, "decision_seq")}) AS "decisions", '
        f'percentile({latency_ms}, 99) AS "latency p99 (ms)" FROM "{DECISION.name}" '
        f"WHERE {PLANT_FILTER} GROUP BY {PER_LINE}"
    )
    return _dashboard(
        "linetwin-plant",
        "Plant",
        [
            _panel(
                Table().transformations(_merged_rows("line")),
                "Lines (each one's last values in the time range)",
                [per_line(KPI, *kpi_fields), per_line(BUFFER, *buffer_fields), decisions],
                w=24,
                fmt="table",
            ),
            _panel(
                Table().transformations(_merged_rows("mode")),
                "Arms: active (the agent dispatches) and shadow (it only recommends), mean per line",
                [per_arm(KPI, *kpi_fields, lines=True), per_arm(BUFFER, *buffer_fields)],
                w=24,
                fmt="table",
            ),
            _panel(
                TimeSeries(), "Idle time per line (cumulative)", [each_line(KPI, "idle_s")], w=8, unit="s"
            ),
            _panel(TimeSeries(), "Setup effort per line (cumulative)", [each_line(KPI, "setup_effort")], w=8),
            _panel(
                TimeSeries(),
                "Buffer fill per line",
                [each_line(BUFFER, "fill_ratio")],
                w=8,
                unit="percentunit",
            ),
        ],
        [],
        one_line=False,
    )


DASHBOARDS = {"line.json": line_dashboard, "agent.json": agent_dashboard, "plant.json": plant_dashboard}


def write_dashboards(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in DASHBOARDS.items():
        path = folder / name
        path.write_text(json.dumps(build().build(), cls=JSONEncoder, indent=2) + "\n")
        written.append(path)
    return written


SHIPPED = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"
"""Where the repository keeps the dashboards Grafana provisions (docker/compose.yaml)."""


def main(argv: list[str] | None = None) -> int:
    """`python -m bridge.dashboards [FOLDER]`: write the dashboards (default: the shipped ones)."""
    parser = argparse.ArgumentParser(prog="python -m bridge.dashboards", description=main.__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=SHIPPED, help=f"default {SHIPPED}")
    args = parser.parse_args(argv)
    try:
        paths = write_dashboards(args.folder)
    except OSError as exc:
        print(f"bridge.dashboards: error: {args.folder}: {exc.strerror}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
