"""The Grafana dashboards: generated from the metric names, well formed, and every query (panels,
annotations, the line variable), with Grafana's macros substituted, runs on a real InfluxQL engine
(Debian's InfluxDB 1.x) loaded with a replayed week and the plans a service adopted during it, and
returns the series it should."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from builders import make_week
from paths import REPO
from streams import week_messages
from tsdb import InfluxDB1

from agent.live.emulator import LineEmulator
from agent.live.listeners import PointsListener
from agent.live.service import AgentService, Mode
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus
from bridge.dashboards import DASHBOARDS, DATASOURCE, SHIPPED, main
from bridge.messages import PasPlanMsg, PlanProvenanceMsg
from bridge.metrics import METRICS, PLAN_NEXT, WRITER, line_protocol
from bridge.outbound import pas_plan_message
from bridge.topics import Topics
from twin import LineConfig, Scenario, WeekConfig, simulate
from twin.mirror import Mirror
from twin.names import name_problem
from twin.outlook import Expected, Projection
from twin.schedule import pas_schedule

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


class Loaded(NamedTuple):
    db: InfluxDB1
    agreement: float
    plans: list[PasPlanMsg]


def plan_of(mirror: Mirror, revision: int, reason: str, rule: str, gain: float | None) -> PasPlanMsg:
    """The rest of the week as `rule` plays it, planned from the mirror's state (the batch started last
    is done), with the twin's forecast (as `serve --planner` publishes a plan)."""
    scenario, policy, done = mirror.scenario, make_policy(rule, 0), mirror.pas.started
    schedule = pas_schedule(scenario, simulate(scenario, policy)[1])[done:]
    forecast = Projection.simulate(scenario, mirror.snapshot(), policy).expected_from(0)
    made = PlanProvenanceMsg(planner="best", source=rule, reason=reason, bound=None, gap=None, stopped="done",
                             planning_s=0.25 * revision, from_position=done + 1)  # fmt: skip
    kpis = mirror.kpis()  # the week's totals: what `serve --planner`'s worker adds to its forecast
    week = Expected(kpis.idle_s + forecast.idle_s, kpis.setup_effort + forecast.setup_effort,
                    kpis.setups + forecast.setups, forecast.deadlock, forecast.end_s)  # fmt: skip
    return pas_plan_message(mirror, revision, schedule, forecast, made, gain, week)


@pytest.fixture(scope="module")
def loaded(week: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """A week the line ran with setup-aware, replayed through the service in shadow mode with first-fit,
    whose outlooks starve the FAS (shortage alerts); meanwhile the service adopts four plans: at week
    start earliest-runout's, at once a better one (setup-aware's), one mid-week and one with four
    batches left (fewer than the table's ranks)."""
    line_bus = MemoryBus()
    LineEmulator(week, Topics(ROOT), line_bus, own_policy=make_policy("setup-aware", 0)).run()
    points: list[str] = []
    service = AgentService(
        week, make_policy("first-fit", 0), "first-fit", Topics(ROOT), MemoryBus(), Mode.SHADOW,
        listeners=[PointsListener(points.extend, arm=True)],
    )  # fmt: skip
    plans: list[PasPlanMsg] = []

    def adopt(reason: str, rule: str, gain: float | None) -> None:
        plans.append(plan_of(service.mirror, len(plans) + 1, reason, rule, gain))
        service.listeners.on_plan(plans[-1])

    batches = simulate(week, make_policy("setup-aware", 0))[0].batches
    adopt("week start", "earliest-runout", None)
    adopt("improve", "setup-aware", 459.0)
    for message in line_bus.published:
        service.handle(message)
        started = service.mirror.pas.started
        if (started, len(plans)) in ((batches // 2, 2), (batches - 4, 3)):
            adopt("PAS down" if len(plans) == 2 else "improve", "setup-aware", None)
    assert len(plans) == 4 and len(plans[-1].batches) == 4
    service.deliver_points(final=True)
    last_ns = int(points[-1].rsplit(" ", 1)[1])
    points.append(line_protocol(WRITER, {"line": week.line.name}, {"queued": 0, "dropped": 0}, last_ns))
    db = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    db.start()
    db.write(points)
    assert service.shadow.agreement is not None
    try:
        yield Loaded(db, service.shadow.agreement, plans)
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
    loaded: Loaded, week: Scenario, board: str, title: str, query: str
) -> None:
    series = loaded.db.query(_substitute(query, week))
    by_tag = re.search(r'GROUP BY (?:time\(\$__interval\), )?"(\w+)"', query)
    expected = (
        {"type": len(week.types), "station": len(week.stations), "next": PLAN_NEXT, "line": 1}[by_tag[1]]
        if by_tag
        else 1
    )
    assert len(series) == expected, f"{board} / {title}"
    for s in series:
        values = [v for row in s["values"] for v in row[1:] if v is not None]
        assert values, f"{board} / {title}: {s.get('tags')} is empty"


@pytest.mark.tsdb
def test_the_panels_end_at_the_week_s_kpis_and_the_line_variable_lists_the_line(
    loaded: Loaded, week: Scenario
) -> None:
    db, shadow_agreement, _ = loaded
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


def _panel_queries(title: str) -> list[str]:
    (panel,) = [p for p in _dashboards()["agent.json"]["panels"] if p["title"] == title]
    return [t["query"] for t in panel["targets"]]


@pytest.mark.tsdb
def test_the_plan_panels_show_the_newest_plan_s_batches_and_the_plans_against_the_week(
    loaded: Loaded, week: Scenario
) -> None:
    """The table holds the newest plan's four batches in order right after it was adopted and nothing
    of the plans before it (its other ranks are empty, and dropped), and nothing at the week's end
    (each dispatch moved it on); the week's setup effort of the first plan (earliest-runout's), of
    the current one and so far are the offline weeks' of those rules; the re-plans table lists the
    four, newest first."""
    db, _, plans = loaded
    (table,) = _panel_queries("Plan: next batches")
    series = db.query(_substitute(table, week))
    assert sorted(s["tags"]["next"] for s in series) == [f"{rank:02d}" for rank in range(1, PLAN_NEXT + 1)]
    assert all(len(s["values"]) == 1 for s in series)
    rows = [dict(zip(s["columns"], s["values"][0], strict=True)) for s in series]
    assert all(r["revision"] == 4 for r in rows)
    (panel,) = [p for p in _dashboards()["agent.json"]["panels"] if p["title"] == "Plan: next batches"]
    steps = [(t["id"], t["options"]) for t in panel["transformations"]]
    assert [step for step, _ in steps] == ["filterByValue", "sortBy", "organize"]
    assert steps[0][1]["filters"][0] == {"fieldName": "position", "config": {"id": "isNull", "options": {}}}
    assert steps[1][1]["sort"] == [{"field": "position"}]
    assert steps[2][1]["excludeByName"] == {"Time": True, "next": True}
    assert all(r["position"] is None for r in rows)  # at the week's end every batch was dispatched
    newest = plans[-1]
    until = int(newest.ts.timestamp() * 1000)  # the table right after the newest plan was adopted
    at_adoption = db.query(_substitute(table, week).replace("time <= ", f"time <= {until}ms and time <= "))
    rows = [dict(zip(s["columns"], s["values"][0], strict=True)) for s in at_adoption]
    shown = sorted((r["position"], r["type"], r["quantity"], r["start"], r["end"]) for r in rows
                   if r["position"] is not None)  # fmt: skip
    assert shown == [(b.position, b.type, b.quantity, b.start.isoformat(), b.end and b.end.isoformat())
                     for b in newest.batches]  # fmt: skip
    assert newest.batches[0].position == newest.provenance.from_position

    first, current, so_far = (
        [v for row in db.query(_substitute(q, week))[0]["values"] for v in row[1:] if v is not None][-1]
        for q in _panel_queries("Setup effort for the week: plans vs so far")
    )
    runout, _ = simulate(week, make_policy("earliest-runout", 0))
    aware, _ = simulate(week, make_policy("setup-aware", 0))
    assert (first, current, so_far) == (runout.setup_effort, aware.setup_effort, aware.setup_effort)
    assert runout.setup_effort > aware.setup_effort

    (replans,) = _panel_queries("Re-plans (newest first)")
    listed = db.query(_substitute(replans, week))[0]
    revision, reason, gain = (listed["columns"].index(c) for c in ("revision", "reason", "gain"))
    assert [(r[revision], r[reason], r[gain]) for r in listed["values"]] == [
        (4, "improve", None), (3, "PAS down", None), (2, "improve", 459.0), (1, "week start", None)
    ]  # fmt: skip


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
        texts = ("state", "batch_type", "text", "type", "start", "end", "source", "reason", "stopped")
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
                if board == "plant.json":
                    continue  # every line at once: test_the_plant_dashboard_lists_every_line_in_its_arm
                series = db.query(_substitute(query, week, line))
                found = {v for s in series for row in s["values"] for v in row[1:] if v not in (None, "tag")}
                assert found and found <= {value, line}, f"{board} / {title} for line {line!r}: {found}"
    finally:
        db.stop()


@pytest.mark.tsdb
def test_the_plant_dashboard_lists_every_line_in_its_arm(ref_line: LineConfig, tmp_path: Path) -> None:
    """Three lines of a tiny week, two active (the line built what setup-aware and earliest-runout
    chose) and one shadow (first-fit): the table has one row per line with its arm and its week's
    KPIs, buffer fill and decisions; the panels per arm end at the mean of their lines."""
    plans = [[(0, 100), (5, 50)], [(2, 50), (7, 100)], [(4, 50), (1, 50)], [(6, 50), (3, 50)]]
    week = make_week(ref_line, plans, stock=[10] * 8)
    scenario = Scenario.build(ref_line, week)
    lines = {"l1": ("setup-aware", Mode.ACTIVE), "l2": ("earliest-runout", Mode.ACTIVE),
             "l3": ("first-fit", Mode.SHADOW)}  # fmt: skip
    points: list[str] = []
    decisions = {}
    for name, (rule, mode) in lines.items():
        topics = Topics(f"test/plant/{name}")
        listener = PointsListener(points.extend, name=name, arm=True)
        service = AgentService(scenario, make_policy("setup-aware", 0), "setup-aware", topics, MemoryBus(),
                               mode, listeners=[listener])  # fmt: skip
        for message in week_messages(scenario, topics.root, rule):
            service.handle(message)
        service.deliver_points(final=True)
        decisions[name] = service.shadow.decisions
    results = {name: simulate(scenario, make_policy(rule, 0))[0] for name, (rule, _) in lines.items()}
    db = InfluxDB1(tmp_path / "influxdb")
    db.start()
    try:
        db.write(points)
        (panel,) = [p for p in _dashboards()["plant.json"]["panels"] if p["title"].startswith("Lines")]
        assert [t["id"] for t in panel["transformations"]] == ["merge", "sortBy", "organize"]
        kpis, buffer, counted = (db.query(_substitute(t["query"], scenario)) for t in panel["targets"])
        rows = {s["tags"]["line"]: (s["tags"]["mode"], dict(zip(s["columns"], s["values"][0], strict=True)))
                for s in kpis}  # fmt: skip
        assert {name: mode for name, (mode, _) in rows.items()} == {n: m.value for n, (_, m) in lines.items()}
        for name, (_, row) in rows.items():
            assert (row["idle (s)"], row["setup effort"], row["setups"], row["completion"]) == (
                results[name].idle_s, results[name].setup_effort, results[name].setups, 1.0)  # fmt: skip
        assert {s["tags"]["line"] for s in buffer} == set(lines)
        assert {s["tags"]["line"]: s["values"][0][1] for s in counted} == decisions
        (arms,) = [p for p in _dashboards()["plant.json"]["panels"] if p["title"].startswith("Arms")]
        kpis_by_arm, buffer_by_arm = (db.query(_substitute(t["query"], scenario)) for t in arms["targets"])
        rows = {s["tags"]["mode"]: dict(zip(s["columns"], s["values"][0], strict=True)) for s in kpis_by_arm}
        both = (results["l1"].setup_effort + results["l2"].setup_effort) / 2
        assert {arm: (r["lines"], r["setup effort"]) for arm, r in rows.items()} == {
            "active": (2, pytest.approx(both)), "shadow": (1, results["l3"].setup_effort)}  # fmt: skip
        assert results["l1"].setup_effort != results["l2"].setup_effort  # a mean, not one line's
        assert {s["tags"]["mode"] for s in buffer_by_arm} == {"active", "shadow"}
    finally:
        db.stop()
