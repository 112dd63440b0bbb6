"""Names that travel into other formats (`twin/names.py`): type names, station ids and the line name
outside the rule are refused when the line is loaded, with the rule; the ones inside it read back
unchanged from TOML, CSV, MQTT topic levels, InfluxDB line protocol, file names and plot labels."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from builders import ALWAYS, MONDAY
from influxdb_client import Point
from tsdb import InfluxDB1

import twin.plots
from agent.cli import main
from agent.planners.policies import SetupAwarePolicy
from bridge.codec import decode, encode
from bridge.errors import BadMessage
from bridge.metrics import ALERT, FAS, STOCK, line_protocol, series_of
from bridge.points import simulated_points
from bridge.topics import InboundTopic, Topics
from twin import (
    ConfigError,
    LineConfig,
    Scenario,
    WeekConfig,
    load_line,
    load_sequence,
    load_week,
    simulate,
    write_week,
)
from twin.config import Downtime, Order, SequenceEntry, write_sequence
from twin.events import UnitStarted
from twin.names import NAME_RULE

ROOT = "acme/plant1/assembly/line1"

REFUSED = {  # name -> what the message says is wrong with it
    "Typ B": "contains a space",
    "FAS/1": "contains '/'",
    "acme/plant1/line1": "contains '/'",
    "a,b": "contains ','",
    'a"b': "contains '\"'",
    "a'b": 'contains "\'"',
    "a=b": "contains '='",
    "a+b": "contains '+'",
    "a#b": "contains '#'",
    "a$b": "contains '$'",
    "a|b": "contains '|'",
    "a\\b": "contains '\\\\'",
    "T1 ": "contains a space",
    " T1": "starts with a space",
    "_T1": "starts with '_'",
    ".T1": "starts with '.'",
    "-T1": "starts with '-'",
    "": "is empty",
    "T" * 65: "has 65 characters",
    "a\tb": "contains U+0009",
    "a\nb": "contains U+000A",
    "a\u00a0b": "contains U+00A0",
    "e\u0301": "contains U+0301 (a combining mark",
}
ACCEPTED = ["T1.5", "Typ-ß", "Ü", "é", "Линия_1", "Γ2", "a..b", "1", "x-y_z.0", "T" * 64]


def _line_data(
    name: str = "line.1", types: tuple[str, ...] = ("T1", "T2"), stations: tuple[str, ...] = ("F1",)
) -> dict[str, Any]:
    n = len(types)
    return {
        "name": name,
        "types": list(types),
        "calendar": ALWAYS,
        "pas": {"unit_time_s": 1, "batch_size": 10},
        "buffer": {"capacity": 100},
        "fas": [{"id": s, "unit_time_s": 3600} for s in stations],
        "setup_effort": {"matrix": [[0 if i == j else 1 for j in range(n)] for i in range(n)]},
    }


def _write_line(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


ROLES = {
    "line name": (lambda bad: _line_data(name=bad), "name"),
    "type name": (lambda bad: _line_data(types=("T1", bad)), "types[1]"),
    "station id": (lambda bad: _line_data(stations=("F1", bad)), "fas[1].id"),
}


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("bad", list(REFUSED), ids=[repr(n)[:20] for n in REFUSED])
def test_a_name_outside_the_rule_is_refused_when_the_line_is_loaded(
    tmp_path: Path, role: str, bad: str
) -> None:
    build, key = ROLES[role]
    path = _write_line(tmp_path / "line.toml", build(bad))
    with pytest.raises(ConfigError) as caught:
        load_line(path)
    err = caught.value
    assert (err.file, err.key, err.value) == (str(path), key, bad)
    assert err.reason.startswith(f"it {REFUSED[bad]}")
    assert err.reason.endswith(f"; {NAME_RULE}")
    assert "\n" not in str(err)


ISSUE_EXAMPLES = [  # what the line has, the line number and key in line.toml (an entry of a
    # multi-line array: its own line), the value, the message
    (_line_data(types=("Typ B", "T1.5")), "3: types[0]", "'Typ B'", "contains a space"),
    (_line_data(stations=("FAS/1",)), "7: fas[0].id", "'FAS/1'", "contains '/'"),
    (_line_data(name="acme/plant1/line1"), "1: name", "'acme/plant1/line1'", "contains '/'"),
]


@pytest.mark.parametrize(
    ("data", "where", "value", "problem"), ISSUE_EXAMPLES, ids=["type", "station", "line"]
)
def test_the_issue_s_names_end_generate_week_with_one_line_and_nothing_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data: dict[str, Any],
    where: str,
    value: str,
    problem: str,
) -> None:
    line = _write_line(tmp_path / "line.toml", data)
    assert main(["generate-week", "--line", str(line), "--seed", "1", "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err == f"linetwin: error: {line}:{where}: it {problem}; {NAME_RULE} (value {value})\n"
    assert not (tmp_path / "w").exists()


def test_generate_week_on_a_line_with_a_dotted_type_name_reads_back_its_own_week(tmp_path: Path) -> None:
    data = _line_data(name="line.1", types=("T1.5", "Typ-ß", "T3"), stations=("FAS.1", "FAS-Ü"))
    line_path = _write_line(tmp_path / "line.toml", data)
    line = load_line(line_path)
    like = WeekConfig(
        week_start=MONDAY,
        timezone="Europe/Berlin",
        initial_stock={"T1.5": 10, "Typ-ß": 0, "T3": 0},
        downtime=[
            Downtime(station="FAS.1", start=dt.datetime(2026, 11, 24, 8), end=dt.datetime(2026, 11, 24, 9))
        ],
        plans={"FAS.1": [Order(type="T1.5", quantity=20)], "FAS-Ü": [Order(type="Typ-ß", quantity=20)]},
    )
    write_week(tmp_path / "like", like, line.types)
    assert load_week(tmp_path / "like", line) == like
    out = tmp_path / "generated"
    argv = ["--line", str(line_path), "--like", str(tmp_path / "like"), "--seed", "3", "--out", str(out)]
    assert main(["generate-week", *argv, "--initial-stock", "30"]) == 0
    text = (out / "week.toml").read_text(encoding="utf-8")
    assert '"T1.5" = ' in text
    assert list(tomllib.loads(text)["initial_stock"]) == line.types
    week = load_week(out, line)
    assert sum(week.initial_stock.values()) == 30 and set(week.initial_stock) == set(line.types)
    assert {o.type for orders in week.plans.values() for o in orders} <= set(line.types)


def test_a_bare_dotted_key_in_a_hand_written_week_gets_a_hint(tmp_path: Path) -> None:
    line = LineConfig.model_validate(_line_data(types=("T1.5", "T2")))
    write_week(tmp_path / "w", WeekConfig(week_start=MONDAY, timezone="UTC"), line.types)
    week_toml = tmp_path / "w" / "week.toml"
    text = week_toml.read_text(encoding="utf-8")
    week_toml.write_text(text.replace('"T1.5" = 0', "T1.5 = 4"), encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"week\.toml:7: initial_stock\.T1\.5: a bare dotted key is the table 'T1' in TOML: quote a "
        r'type name with a dot, "T1\.5" = \.\.\. \(value 4\)$',
    ):
        load_week(tmp_path / "w", line)
    week_toml.write_text(text.replace('"T1.5" = 0', "T1 = 2\nT1.5 = 4"), encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r'malformed TOML: .* \(T1.5 is a dotted key: quote a name with a dot, "T1.5" = \.\.\.\)',
    ):
        load_week(tmp_path / "w", line)


def _week(line: LineConfig, name: str) -> WeekConfig:
    return WeekConfig(
        week_start=MONDAY,
        timezone="UTC",
        initial_setup=name,
        initial_stock={name: 3, "Z9": 0},
        downtime=[
            Downtime(station=name, start=dt.datetime(2026, 11, 23, 1), end=dt.datetime(2026, 11, 23, 2))
        ],
        plans={name: [Order(type=name, quantity=5), Order(type="Z9", quantity=2)], "F2": []},
    )


@pytest.mark.parametrize("name", ACCEPTED)
def test_a_name_inside_the_rule_round_trips_through_every_format(tmp_path: Path, name: str) -> None:
    line = LineConfig.model_validate(_line_data(name=name, types=(name, "Z9"), stations=(name, "F2")))
    assert load_line(_write_line(tmp_path / "line.toml", line.model_dump())) == line
    week = _week(line, name)
    # TOML keys and values, CSV cells (week.toml, plan.csv, sequence.csv)
    write_week(tmp_path / "week", week, line.types)
    assert load_week(tmp_path / "week", line) == week
    entries = [SequenceEntry(type=name, quantity=10), SequenceEntry(type="Z9", quantity=10)]
    write_sequence(tmp_path / "sequence.csv", entries)
    assert load_sequence(tmp_path / "sequence.csv", line) == entries
    # MQTT topic levels and payloads
    scenario = Scenario.build(line, week)
    topics = Topics(ROOT)
    event = UnitStarted(60, name, name)
    topic = topics.fas_events(name)
    assert topics.parse_inbound(topic) == InboundTopic("fas", name)
    assert decode(topics, topic, encode(event, 1, scenario.calendar)).event(scenario.calendar) == event
    # line protocol, as influxdb-client writes it
    tags, fields = (
        {"line": name, "station": name, "type": name},
        {"starve_in_s": 5, "text": f"{name} runs out"},
    )
    point = line_protocol(ALERT, tags, fields, 7)
    oracle = Point(ALERT.name).tag("line", name).tag("station", name).tag("type", name)
    assert (
        point == oracle.field("starve_in_s", 5).field("text", f"{name} runs out").time(7).to_line_protocol()
    )
    assert series_of(point) == point.split(" ")[0]
    # file names
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / f"{name}.csv").write_text(name, encoding="utf-8")
    assert [p.name for p in (tmp_path / "files").iterdir()] == [f"{name}.csv"]


@pytest.mark.parametrize(
    "text", [*REFUSED, "ppo (best of 21)"], ids=[repr(n)[:20] for n in [*REFUSED, "ppo"]]
)
def test_tags_and_string_fields_are_escaped_as_influxdb_client_escapes_them(text: str) -> None:
    """Policy labels are free text; names are not, but the writer must not depend on that."""
    if text.endswith("\\"):
        pytest.skip("influxdb-client appends a space to a tag value ending in a backslash")
    point = line_protocol(ALERT, {"line": "l1", "station": text}, {"text": text}, 7)
    oracle = Point(ALERT.name).tag("line", "l1").tag("station", text).field("text", text).time(7)
    assert point == oracle.to_line_protocol()


def test_a_station_that_is_not_a_name_never_becomes_a_topic_level() -> None:
    topics = Topics(ROOT)
    with pytest.raises(ValueError, match=r"station 'FAS/1' cannot be a topic level: it contains '/'"):
        topics.fas_events("FAS/1")
    assert topics.parse_inbound(f"{ROOT}/fas/FAS/1/events") is None
    for bad in ("$SYS/line1", "line\t1", "/line1", "a/#"):
        with pytest.raises(ValueError, match="topic root"):
            Topics(bad)


@pytest.mark.parametrize(
    ("level", "reason"),
    [
        ("FAS 1", "station 'FAS 1' in the topic is not a station id: it contains a space"),
        ('a"b', "station 'a\"b' in the topic is not a station id: it contains '\"'"),
        ("PAS", "station 'PAS' is the pre-assembly station: it reports on pas/events"),
    ],
)
def test_a_fas_topic_whose_station_is_no_station_id_is_a_bad_message(level: str, reason: str) -> None:
    topics = Topics(ROOT)
    payload = json.dumps(
        {"v": 1, "ts": "2026-11-23T06:00:00+00:00", "seq": 1, "event": "down", "reason": "x"}
    )
    with pytest.raises(BadMessage) as caught:
        decode(topics, f"{ROOT}/fas/{level}/events", payload.encode())
    assert str(caught.value).startswith(reason)


def test_plot_labels_show_the_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["T1.5", "Typ-ß", "Линия_1"]
    line = LineConfig.model_validate(_line_data(types=tuple(names), stations=("FAS.1", "Γ2")))
    plans = {
        "FAS.1": [Order(type="T1.5", quantity=3), Order(type="Линия_1", quantity=2)],
        "Γ2": [Order(type="Typ-ß", quantity=4)],
    }
    scenario = Scenario.build(line, WeekConfig(week_start=MONDAY, timezone="UTC", plans=plans))
    labels: list[str] = []
    save = twin.plots._save

    def keep_labels(fig: Any, path: Path) -> None:
        for ax in fig.axes:
            legend = ax.get_legend()
            labels.extend(t.get_text() for t in (legend.get_texts() if legend else []))
            labels.extend(t.get_text() for t in ax.get_yticklabels())
        save(fig, path)

    monkeypatch.setattr(twin.plots, "_save", keep_labels)
    results, trace = simulate(scenario, SetupAwarePolicy())
    paths = twin.plots.plot_run(scenario, trace, results, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)
    assert set(names) | {"FAS.1", "Γ2"} <= set(labels)


@pytest.mark.tsdb
def test_names_read_back_from_a_real_influxdb(tmp_path: Path) -> None:
    """Every accepted name as the line, station and type tags of a simulated week's points."""
    db = InfluxDB1(tmp_path / "influxdb")
    db.start()
    try:
        points: list[str] = []
        for name in ACCEPTED:
            line = LineConfig.model_validate(_line_data(name=name, types=(name, "Z9"), stations=(name, "F2")))
            plans = {name: [Order(type=name, quantity=2)], "F2": [Order(type="Z9", quantity=1)]}
            scenario = Scenario.build(line, WeekConfig(week_start=MONDAY, timezone="UTC", plans=plans))
            points += simulated_points(scenario, SetupAwarePolicy(), "setup-aware", name)
        db.write(points)
        for metric, key in ((FAS, "station"), (STOCK, "type"), (FAS, "line")):
            values = db.query(f'SHOW TAG VALUES FROM "{metric.name}" WITH KEY = "{key}"')[0]["values"]
            assert {v[1] for v in values} == {
                *ACCEPTED,
                {"station": "F2", "type": "Z9", "line": None}[key],
            } - {None}
    finally:
        db.stop()
