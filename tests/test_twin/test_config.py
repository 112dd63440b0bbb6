"""Config files: the reference data loads; every class of bad input is rejected with a message
naming the file, the line or key, and the bad value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from twin import ConfigError, LineConfig, load_line, load_sequence, load_week


def test_reference_line_and_weeks_load(config_dir: Path) -> None:
    line = load_line(config_dir / "line.toml")
    assert line.types == [f"T{i}" for i in range(1, 9)]
    assert line.station_ids == ["FAS1", "FAS2", "FAS3", "FAS4"]
    assert line.buffer.capacity == 500 and line.pas.batch_size == 50
    for name in ("w1", "w2", "w3"):
        week = load_week(config_dir / "weeks" / name, line)
        assert week.week_start.weekday() == 0
        assert all(sum(o.quantity for o in week.plans[s]) == 2910 for s in line.station_ids)


def test_plan_csv_crlf_is_read_as_is(config_dir: Path) -> None:
    raw = (config_dir / "weeks" / "w1" / "plan.csv").read_bytes()
    assert b"\r\n" in raw  # the reference files are kept byte-identical


@pytest.fixture
def line_file(tmp_path: Path, config_dir: Path) -> Path:
    path = tmp_path / "line.toml"
    shutil.copy(config_dir / "line.toml", path)
    return path


@pytest.fixture
def week_dir(tmp_path: Path, config_dir: Path) -> Path:
    folder = tmp_path / "week"
    shutil.copytree(config_dir / "weeks" / "w1", folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


LINE_ERRORS = [
    ("malformed-toml", "capacity = 500", "capacity = = 500", ["malformed TOML", "line"]),
    ("unknown-key", "capacity = 500", "capacity = 500\ncolour = 3", ["unknown key", "buffer.colour"]),
    ("missing-key", "capacity = 500", "", ["missing key", "buffer.capacity"]),
    ("zero-unit-time", "unit_time_s = 20", "unit_time_s = 0", ["pas.unit_time_s", "0"]),
    (
        "non-square-matrix",
        "  [10, 10, 10,  5,  3,  2,  2,  0],\n",
        "",
        [":47: setup_effort.matrix: has 7 rows, expected 8 (one row and one column per type)"],
    ),
    (
        "short-row",
        "[ 0,  2,  2,  1,  7,  9,  8,  8]",
        "[ 0,  2,  2,  1,  7,  9,  8]",
        [":48: setup_effort.matrix[0]: has 7 entries, expected 8", "(value [0, 2, 2, 1, 7, 9, 8])"],
    ),
    (
        "negative-effort",
        "[ 0,  2,  2,  1,  7,  9,  8,  8]",
        "[ 0, -2,  2,  1,  7,  9,  8,  8]",
        ["setup_effort.matrix[0][1]", "-2"],
    ),
    (
        "duplicate-type",
        '"T7", "T8"]',
        '"T7", "T7"]',
        [":8: types[7]: duplicate type: also types[6] (value 'T7')"],
    ),
    (
        "bad-days",
        'days = "Mon-Fri", start = "06:00", end = "14:00"',
        'days = "Mon-Fry", start = "06:00", end = "14:00"',
        ["Mon-Fry"],
    ),
    ("bad-clock", 'start = "06:00", end = "14:00"', 'start = "6h", end = "14:00"', ["6h"]),
    (
        "duplicate-station",
        'id = "FAS2"',
        'id = "FAS1"',
        [":34: fas[1].id: duplicate station id: also fas[0] (value 'FAS1')"],
    ),
    ("batch-over-capacity", "capacity = 500", "capacity = 40", ["batch_size 50 exceeds buffer.capacity 40"]),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [e[1:] for e in LINE_ERRORS], ids=[e[0] for e in LINE_ERRORS]
)
def test_bad_line_file(line_file: Path, old: str, new: str, expected: list[str]) -> None:
    _edit(line_file, old, new)
    with pytest.raises(ConfigError) as info:
        load_line(line_file)
    message = str(info.value)
    assert str(line_file) in message
    for part in expected:
        assert part in message


DOWNTIME = (
    '[[downtime]]\nstation = "{station}"\nstart = 2026-11-23T{start}:00\nend = 2026-11-23T{end}:00\n\n'
    "[initial_stock]"
)

WEEK_ERRORS = [
    (
        "not-monday",
        "week.toml",
        'week_start = "2026-11-23"',
        'week_start = "2026-11-24"',
        ["week_start", "Tuesday"],
    ),
    (
        "unknown-timezone",
        "week.toml",
        '"Europe/Berlin"',
        '"Europe/Atlantis"',
        ["timezone", "Europe/Atlantis"],
    ),
    ("unknown-key", "week.toml", "holidays = []", "holidays = []\nshift = 2", ["unknown key", "shift"]),
    ("stock-unknown-type", "week.toml", "T8 = 58", "T9 = 58", ["initial_stock.T9", "unknown type"]),
    ("stock-negative", "week.toml", "T8 = 58", "T8 = -1", ["initial_stock.T8", "-1"]),
    (
        "stock-over-capacity",
        "week.toml",
        "T8 = 58",
        "T8 = 458",
        ["initial stock exceeds the buffer capacity", "651"],
    ),
    (
        "initial-setup-unknown",
        "week.toml",
        'initial_setup = ""',
        'initial_setup = "X1"',
        ["initial_setup", "X1"],
    ),
    (
        "downtime-unknown-station",
        "week.toml",
        "[initial_stock]",
        DOWNTIME.format(station="FAS9", start="08:00", end="09:00"),
        ["downtime[0].station", "FAS9"],
    ),
    (
        "downtime-reversed",
        "week.toml",
        "[initial_stock]",
        DOWNTIME.format(station="FAS1", start="09:00", end="08:00"),
        ["downtime[0]", "not after its start"],
    ),
    ("malformed-toml", "week.toml", "holidays = []", "holidays = [", ["malformed TOML"]),
    (
        "plan-unknown-station",
        "plan.csv",
        "FAS1,1,T5,117",
        "FAS9,1,T5,117",
        [":2: station: unknown station; the line has FAS1, FAS2, FAS3, FAS4 (value 'FAS9')"],
    ),
    (
        "plan-unknown-type",
        "plan.csv",
        "FAS1,2,T7,44",
        "FAS1,2,T77,44",
        [":3: type: unknown type; did you mean T7? (value 'T77')"],
    ),
    (
        "plan-zero-quantity",
        "plan.csv",
        "FAS1,2,T7,44",
        "FAS1,2,T7,0",
        [":3: quantity: must be at least 1 (value '0')"],
    ),
    ("plan-gap", "plan.csv", "FAS1,2,T7,44", "FAS1,99,T7,44", ["position 2 is missing", "FAS1"]),
    (
        "plan-duplicate",
        "plan.csv",
        "FAS1,2,T7,44",
        "FAS1,1,T7,44",
        [":3: position: duplicate position of FAS1 (also line 2) (value 1)"],
    ),
    (
        "plan-bad-row",
        "plan.csv",
        "FAS1,2,T7,44",
        "FAS1,2,T7",
        [":3: expected 4 fields, got 3 (value 'FAS1,2,T7')"],
    ),
    (
        "plan-not-integer",
        "plan.csv",
        "FAS1,2,T7,44",
        "FAS1,two,T7,44",
        [":3: position: must be a whole number (digits 0-9) (value 'two')"],
    ),
    (
        "plan-bad-header",
        "plan.csv",
        "station,position,type,quantity",
        "station,pos,type,quantity",
        [":1: header must be station,position,type,quantity"],
    ),
]


DOWN = '\n[[downtime]]\nstation = "FAS1"\nstart = {start}\nend = {end}\n'

WEEK_NUMBER_ERRORS = [
    ("stock-inf", "week.toml", "T8 = 58", "T8 = inf", ["initial_stock.T8", "inf"]),
    ("stock-bool", "week.toml", "T8 = 58", "T8 = true", ["initial_stock.T8", "True"]),
    (
        "downtime-never-ends",
        "week.toml",
        "T8 = 58\n",
        "T8 = 58\n" + DOWN.format(start="2026-11-24T08:00:00", end="8999-12-31T23:00:00"),
        ["downtime[0].end", "8999-12-31", "2026-12-07"],
    ),
    (
        "downtime-before-the-week",
        "week.toml",
        "T8 = 58\n",
        "T8 = 58\n" + DOWN.format(start="2026-11-20T08:00:00", end="2026-11-21T08:00:00"),
        ["downtime[0].end", "2026-11-21", "2026-11-23"],
    ),
    (
        "fas-plan-past-overtime",
        "plan.csv",
        "FAS1,1,T5,117",
        "FAS1,1,T5,4000",
        # the week and a week of overtime: 2 x 75 working hours
        [": quantity", "more than FAS1 can work by a week after the week's end (540,000 s"],
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [e[1:] for e in WEEK_ERRORS + WEEK_NUMBER_ERRORS],
    ids=[e[0] for e in WEEK_ERRORS + WEEK_NUMBER_ERRORS],
)
def test_bad_week(
    week_dir: Path, ref_line: LineConfig, file: str, old: str, new: str, expected: list[str]
) -> None:
    _edit(week_dir / file, old, new)
    with pytest.raises(ConfigError) as info:
        load_week(week_dir, ref_line)
    message = str(info.value)
    assert message.startswith(str(week_dir / file)) and "\n" not in message
    for part in expected:
        assert part in message


def test_missing_files_are_named(tmp_path: Path, ref_line: LineConfig) -> None:
    with pytest.raises(ConfigError, match=r"line\.toml: file not found"):
        load_line(tmp_path / "line.toml")
    with pytest.raises(ConfigError, match="week folder not found"):
        load_week(tmp_path / "nowhere", ref_line)


SEQUENCE_ERRORS = [
    (
        "unknown-type",
        "position,type\n1,T1\n2,T42\n",
        [":3: type: unknown type; the line has T1, T2, T3, T4, T5, T6, T7, T8 (value 'T42')"],
    ),
    ("gap", "position,type\n1,T1\n3,T2\n", ["position 2 is missing"]),
    ("zero-quantity", "position,type,quantity\n1,T1,0\n", [":2: quantity: must be at least 1"]),
    ("bad-header", "pos,type\n1,T1\n", [":1: header must be position,type"]),
    ("empty", "", ["empty file"]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [e[1:] for e in SEQUENCE_ERRORS], ids=[e[0] for e in SEQUENCE_ERRORS]
)
def test_bad_sequence(tmp_path: Path, ref_line: LineConfig, text: str, expected: list[str]) -> None:
    path = tmp_path / "sequence.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_sequence(path, ref_line)
    for part in [str(path), *expected]:
        assert part in str(info.value)


def test_sequence_reads_quantities(tmp_path: Path, ref_line: LineConfig) -> None:
    path = tmp_path / "sequence.csv"
    path.write_text("position,type,quantity\r\n2,T2,\r\n1,T1,30\r\n", encoding="utf-8")
    entries = load_sequence(path, ref_line)
    assert [(e.type, e.quantity) for e in entries] == [("T1", 30), ("T2", None)]


ROW0 = "[ 0,  2,  2,  1,  7,  9,  8,  8]"

# issue 14: numbers at the edges. (id, old, new, line marker or None, expected parts); a matrix entry
# is cited at its row's own line
LINE_NUMBER_ERRORS = [
    ("effort-inf", ROW0, ROW0.replace(" 2,  1", " inf,  1"), "[ 0,", ["matrix[0][2]", "inf", "1,000,000"]),
    ("effort-nan", ROW0, ROW0.replace(" 2,  1", " nan,  1"), "[ 0,", ["matrix[0][2]", "nan", "finite"]),
    ("effort-minus-inf", ROW0, ROW0.replace(" 2,  1", " -inf, 1"), "[ 0,", ["matrix[0][2]", "-inf"]),
    ("effort-huge", ROW0, ROW0.replace(" 2,  1", " 1e300, 1"), "[ 0,", ["matrix[0][2]", "1e+300"]),
    ("effort-bool", ROW0, ROW0.replace(" 2,  1", " true, 1"), "[ 0,", ["matrix[0][2]", "True"]),
    ("effort-decimals", ROW0, ROW0.replace(" 2,  1", " 0.1234567, 1"), "[ 0,", ["6 decimals"]),
    ("pas-unit-huge", "unit_time_s = 20 ", "unit_time_s = 100000000000000000 ", None, ["pas.unit_time_s"]),
    ("fas-unit-huge", "unit_time_s = 90", "unit_time_s = 604801", None, ["fas[0].unit_time_s", "604,800 s"]),
    ("setup-time-huge", "setup_time_s = 0 ", "setup_time_s = 604801 ", "setup_time_s", ["604801", "604,800"]),
    ("batch-bool", "batch_size = 50 ", "batch_size = true ", "batch_size", ["pas.batch_size", "True"]),
    ("capacity-string", "capacity = 500 ", 'capacity = "500" ', "capacity", ["buffer.capacity", "'500'"]),
    ("capacity-fill", "capacity = 500 ", "capacity = 40000 ", None, ["capacity 40000 x pas.unit_time_s 20"]),
]


def _line_of(path: Path, marker: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.lstrip().startswith(marker))


@pytest.mark.parametrize(
    ("old", "new", "marker", "expected"),
    [e[1:] for e in LINE_NUMBER_ERRORS],
    ids=[e[0] for e in LINE_NUMBER_ERRORS],
)
def test_numbers_out_of_bounds_in_the_line(
    line_file: Path, old: str, new: str, marker: str | None, expected: list[str]
) -> None:
    _edit(line_file, old, new)
    with pytest.raises(ConfigError) as info:
        load_line(line_file)
    message = str(info.value)
    assert message.startswith(str(line_file)) and "\n" not in message
    if marker is not None:
        assert message.startswith(f"{line_file}:{_line_of(line_file, marker)}: ")
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    ("name", "old", "new", "key"),
    [
        ("env.toml", "setup_weight = ", "setup_weight = inf # ", "setup_weight"),
        ("curricula/A.toml", "idle_threshold_s = 600", "idle_threshold_s = nan", "idle_threshold_s"),
        ("ppo.toml", "learning_rate = 0.0003", "learning_rate = inf", "learning_rate"),
    ],
    ids=["env", "curriculum", "ppo"],
)
def test_every_float_of_the_settings_files_is_finite(
    tmp_path: Path, config_dir: Path, name: str, old: str, new: str, key: str
) -> None:
    from agent.training.curriculum import load_curriculum
    from agent.training.train import load_ppo_settings
    from twin.env_settings import load_env_settings

    path = tmp_path / Path(name).name
    shutil.copy(config_dir / name, path)
    _edit(path, old, new)
    load = {"env.toml": load_env_settings, "A.toml": load_curriculum, "ppo.toml": load_ppo_settings}
    with pytest.raises(ConfigError) as info:
        load[path.name](path)
    assert f"{path}:" in str(info.value) and key in str(info.value) and "finite" in str(info.value)
