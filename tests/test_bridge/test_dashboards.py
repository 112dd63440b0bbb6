"""The Grafana dashboards: generated from the metric names, well formed, and every query (panels,
annotations, the line variable), with Grafana's macros substituted, runs on a real InfluxQL engine
(Debian's InfluxDB 1.x) loaded with a replayed week and returns the series it should."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paths import REPO
from tsdb import InfluxDB1

from agent.live.emulator import LineEmulator
from agent.live.listeners import PointsListener
from agent.live.service import AgentService, Mode
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus
from bridge.dashboards import DASHBOARDS, DATASOURCE, SHIPPED, main
from bridge.metrics import METRICS, WRITER, line_protocol
from bridge.topics import Topics
from twin import LineConfig, Scenario, WeekConfig, simulate
from twin.names import name_problem

GRAFANA = REPO / "grafana"
ROOT = "test/plant/assembly/line1"


def _dashboards() -> dict[str, dict[str, Any]]:
    return {name: json.loads((GRAFANA / "dashboards" / name).read_text()) for name in DASHBOARDS}


def test_the_shipped_dashboards_are_the_generated_ones(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    for name in DASHBOARDS:
        assert (tmp_path / name).read_text() == (GRAFANA / "dashboards" / name).read_text(), (
            f"grafana/dashboards/{name} is stale: run python -m bridge.dashboards"
        )
    assert SHIPPED == GRAFANA / "dashboards"  # the default folder


def test_the_generator_says_in_one_line_where_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("mine\n")
    assert main([str(taken)]) == 2
    assert capsys.readouterr().err == f"bridge.dashboards: error: {taken}: File exists\n"
    assert taken.read_text() == "mine\n"


def test_dashboards_have_unique_ids_a_known_datasource_and_no_overlapping_panels() -> None:
    provisioned = (GRAFANA / "provisioning" / "datasources" / "influxdb.yaml").read_text()
    assert f"uid: {DATASOURCE.uid}" in provisioned
    boards = _dashboards()
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for board in boards.values():
        panels = board["panels"]
        assert len({p["id"] for p in panels}) == len(panels)
        cells: set[tuple[int, int]] = set()
        for p in panels:
            assert p["datasource"]["uid"] == DATASOURCE.uid
            g = p["gridPos"]
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & area, f"{p['title']} overlaps another panel"
            assert g["x"] + g["w"] <= 24
            cells |= area


# -- queries on a real InfluxQL engine --------------------------------------------------------
@pytest.fixture(scope="module")
def week(ref_line: LineConfig, ref_week: WeekConfig) -> Scenario:
    return Scenario.build(ref_line, ref_week.model_copy(update={"week_start": dt.date(2026, 1, 5)}))


@pytest.fixture(scope="module")
def loaded(week: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InfluxDB1, float]]:
    """A week the line ran with setup-aware, replayed through the service in shadow mode with first-fit,
    whose outlooks starve the FAS (shortage alerts)."""
    line_bus = MemoryBus()
    LineEmulator(week, Topics(ROOT), line_bus, own_policy=make_policy("setup-aware", 0)).run()
    points: list[str] = []
    service = AgentService(
        week, make_policy("first-fit", 0), "first-fit", Topics(ROOT), MemoryBus(), Mode.SHADOW,
        listeners=[PointsListener(points.extend)],
    )  # fmt: skip
    for message in line_bus.published:
        service.handle(message)
    service.deliver_points(final=True)
    last_ns = int(points[-1].rsplit(" ", 1)[1])
    points.append(line_protocol(WRITER, {"line": week.line.name}, {"queued": 0, "dropped": 0}, last_ns))
    db = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    db.start()
    db.write(points)
    assert service.shadow.agreement is not None
    try:
        yield db, service.shadow.agreement
    finally:
        db.stop()


def grafana_regex(value: str) -> str:
    r"""What Grafana substitutes for `${var:regex}` with one value: `escapeRegex` of @grafana/data puts
    a backslash before each of `\ ^ $ * + ? . ( ) | [ ] { } /`."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m[0], value)


def _substitute(query: str, week: Scenario, line: str | None = None) -> str:
    start = int(week.calendar.epoch_of(0) * 1000)
    end = int(week.calendar.epoch_of(week.calendar.week_work_s) * 1000) + 7 * 86_400_000
    assert "$line" not in query.replace("${line:regex}", ""), (
        "every use of the line variable is regex-escaped"
    )
    return (
        query.replace("$timeFilter", f"time >= {start}ms and time <= {end}ms")
        .replace("$__interval", "10m")
        .replace("${line:regex}", grafana_regex(week.line.name if line is None else line))
    )


def _queries() -> list[tuple[str, str, str]]:
    out = []
    for name, board in _dashboards().items():
        for panel in board["panels"]:
            out += [(name, panel["title"], t["query"]) for t in panel["targets"]]
        out += [(name, a["name"], a["target"]["query"]) for a in board["annotations"]["list"]]
    return out


@pytest.mark.tsdb
@pytest.mark.parametrize(("board", "title", "query"), _queries(), ids=lambda v: str(v)[:40])
def test_every_dashboard_query_returns_its_series(
    loaded: tuple[InfluxDB1, float], week: Scenario, board: str, title: str, query: str
) -> None:
    series = loaded[0].query(_substitute(query, week))
    by_tag = re.search(r'GROUP BY time\(\$__interval\), "(\w+)"', query)
    expected = {"type": len(week.types), "station": len(week.stations)}[by_tag[1]] if by_tag else 1
    assert len(series) == expected, f"{board} / {title}"
    for s in series:
        values = [v for row in s["values"] for v in row[1:] if v is not None]
        assert values, f"{board} / {title}: {s.get('tags')} is empty"


@pytest.mark.tsdb
def test_the_panels_end_at_the_week_s_kpis_and_the_line_variable_lists_the_line(
    loaded: tuple[InfluxDB1, float], week: Scenario
) -> None:
    db, shadow_agreement = loaded
    line_var = _dashboards()["line.json"]["templating"]["list"][0]["query"]
    assert [v[1] for v in db.query(line_var)[0]["values"]] == [week.line.name]
    results, _ = simulate(week, make_policy("setup-aware", 0))
    kpis = {q: db.query(_substitute(q, week))[0]["values"] for q in (
        'SELECT last("setup_effort") FROM "linetwin_kpi" WHERE "line" =~ /^${line:regex}$/ AND $timeFilter',
        'SELECT last("agreement") FROM "linetwin_shadow" WHERE "line" =~ /^${line:regex}$/ AND $timeFilter',
    )}  # fmt: skip
    effort, agreement = (values[-1][1] for values in kpis.values())
    assert effort == results.setup_effort
    assert agreement == pytest.approx(shadow_agreement)
    assert 0 < agreement < 1


LINE_NAMES = ["line.1", "line-1", "lineX1", "Linie.Ü", "Linie_Ü", "a..b", "a.b", "axb", "l1", "a"]
"""Names the rule accepts that a regex would confuse: each '.' matches any character unescaped."""
FOREIGN_NAMES = ["l(1)", "a|b", "a*", "a/b", "a\\b", "a'b", 'a"b']
"""Names the rule keeps out, which another writer could still store: a regex character would match
other lines ("l1", "a"), a '/' would end the InfluxQL regex, a backslash or a quote escape."""


@pytest.mark.tsdb
def test_every_panel_selects_exactly_its_line_whatever_its_name(week: Scenario, tmp_path: Path) -> None:
    """Lines whose names differ only where an unescaped '.' or another regex or InfluxQL character
    would match: every query, with the line variable formatted as Grafana does, returns the chosen
    line's points and no other's."""
    assert all(name_problem(n) is None for n in LINE_NAMES)
    assert all(name_problem(n) is not None for n in FOREIGN_NAMES)
    names = LINE_NAMES + FOREIGN_NAMES
    db = InfluxDB1(tmp_path / "influxdb")
    db.start()
    try:
        at_ns = int(week.calendar.epoch_of(3600) * 1e9)
        texts = ("state", "batch_type", "text")
        points = [
            line_protocol(
                metric,
                {**{k: "tag" for k in metric.tags}, "line": line},
                {f: line if f in texts else value for f in metric.fields},
                at_ns,
            )
            for value, line in enumerate(names, 1)
            for metric in METRICS
        ]
        db.write(points)
        for value, line in enumerate(names, 1):
            for board, title, query in _queries():
                series = db.query(_substitute(query, week, line))
                found = {v for s in series for row in s["values"] for v in row[1:] if v not in (None, "tag")}
                assert found and found <= {value, line}, f"{board} / {title} for line {line!r}: {found}"
    finally:
        db.stop()
