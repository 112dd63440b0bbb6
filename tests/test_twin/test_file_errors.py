"""One form for every file error (issue 14): `<file>:<line>: <key>: <reason> (value <value>)`,
the line of the entry itself, the value once, the reason in the project's words."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from twin import ConfigError, LineConfig, load_line, load_week
from twin.config import CONFIG_ENV_VAR, load_json_model, load_toml_model
from twin.keylines import key_lines


def _copy(config_dir: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(config_dir / name, target)
    return target


def _replace(path: Path, old: str, new: str, nth: int = 1) -> int:
    """Replace the `nth` occurrence of `old`; the line it is on."""
    text = path.read_text(encoding="utf-8")
    at = -1
    for _ in range(nth):
        at = text.index(old, at + 1)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")
    return text[:at].count("\n") + 1


def _message(load: Any, *args: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(*args)
    return str(caught.value)


# (id, old text of line.toml, new text, which occurrence, key, reason and value after the key)
LINE_EXAMPLES = [
    (
        "fas-unit-time-has-its-line",
        "unit_time_s = 90",
        "unit_time_s = 604801",
        3,
        "fas[2].unit_time_s",
        "must be 1 to 604,800 s (one week) (value 604801)",
    ),
    (
        "days-value-once",
        '"Mon-Fri", start = "06:00"',
        '"Mon-Fry", start = "06:00"',
        1,
        "calendar.shifts[0].days",
        "must be like 'Mon-Fri', 'Sat' or 'Mon,Wed' (days Mon to Sun) (value 'Mon-Fry')",
    ),
    (
        "short-matrix-row-named",
        "[ 2,  1,  0,  1,  9,  7,  9, 10]",
        "[ 2,  1,  0,  1,  9,  7, 10]",
        1,
        "setup_effort.matrix[2]",
        "has 7 entries, expected 8 (one row and one column per type) (value [2, 1, 0, 1, 9, 7, 10])",
    ),
    (
        "matrix-value-at-its-row",
        "[ 3,  1,  2,  0,  5, 10,  5, 10]",
        "[ 3,  1,  2,  0,  5, 10,  -5, 10]",
        1,
        "setup_effort.matrix[3][6]",
        "a setup effort must be a finite number from 0 to 1,000,000 (a forbidden changeover cannot be "
        "given: give it a large effort instead) (value -5)",
    ),
    (
        "misplaced-break-is-one-entry",
        '{ days = "Mon-Fri", start = "18:00", end = "18:30" }',
        '{ days = "Mon-Fri", start = "23:00", end = "23:30" }',
        1,
        "calendar.breaks[1]",
        "lies in no shift that starts on Mon (a break belongs to the shift it starts in and its days name "
        "the day that shift starts) (value {'days': 'Mon-Fri', 'start': '23:00', 'end': '23:30'})",
    ),
    (
        "capacity-string",
        "capacity = 500",
        'capacity = "500"',
        1,
        "buffer.capacity",
        "must be a whole number, not a string (value '500')",
    ),
    (
        "batch-bool",
        "batch_size = 50",
        "batch_size = true",
        1,
        "pas.batch_size",
        "must be a whole number, not true/false (value True)",
    ),
    (
        "name-number",
        'name = "appliance-reference"',
        "name = 5",
        1,
        "name",
        "must be a string (in quotes), not a whole number (value 5)",
    ),
    (
        "types-not-a-list",
        '["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"]',
        '"T1"',
        1,
        "types",
        "must be a list [...], not a string (value 'T1')",
    ),
    (
        "effort-string",
        "[ 0,  2,  2,  1,  7,  9,  8,  8]",
        '[ 0,  "2",  2,  1,  7,  9,  8,  8]',
        1,
        "setup_effort.matrix[0][1]",
        "must be a number, not a string (value '2')",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "nth", "key", "said"), [e[1:] for e in LINE_EXAMPLES], ids=[e[0] for e in LINE_EXAMPLES]
)
def test_a_line_file_error_names_file_line_key_reason_and_value_once(
    tmp_path: Path, config_dir: Path, old: str, new: str, nth: int, key: str, said: str
) -> None:
    path = _copy(config_dir, tmp_path, "line.toml")
    number = _replace(path, old, new, nth)
    message = _message(load_line, path)
    assert message == f"{path}:{number}: {key}: {said}"


def test_a_missing_key_and_a_misspelt_key(tmp_path: Path, config_dir: Path) -> None:
    path = _copy(config_dir, tmp_path, "line.toml")
    table = _replace(path, "capacity = 500 ", "# capacity = 500 ") - 1  # the [buffer] line above it
    assert _message(load_line, path) == f"{path}:{table}: buffer.capacity: missing key"
    number = _replace(path, "# capacity = 500 ", "Capacity = 500 ")
    assert (
        _message(load_line, path)
        == f"{path}:{number}: buffer.Capacity: unknown key; expected capacity (value 500)"
    )


def test_an_unknown_type_in_a_week_gets_the_closest_type(
    tmp_path: Path, config_dir: Path, ref_line: LineConfig
) -> None:
    week = tmp_path / "week"
    shutil.copytree(config_dir / "weeks" / "w1", week)
    toml = week / "week.toml"
    number = _replace(toml, "T3 = 14", "t3 = 14")
    assert (
        _message(load_week, week, ref_line)
        == f"{toml}:{number}: initial_stock.t3: unknown type; did you mean T3? (value 14)"
    )
    _replace(toml, "t3 = 14", "T3 = 14")
    number = _replace(toml, 'initial_setup = ""', 'initial_setup = "T9"')
    assert _message(load_week, week, ref_line) == (
        f"{toml}:{number}: initial_setup: unknown type; the line has T1, T2, T3, T4, T5, T6, T7, T8 "
        "(value 'T9')"
    )


def test_toml_and_csv_errors_have_the_same_form(
    tmp_path: Path, config_dir: Path, ref_line: LineConfig
) -> None:
    week = tmp_path / "week"
    shutil.copytree(config_dir / "weeks" / "w1", week)
    number = _replace(week / "plan.csv", "FAS1,2,T7,44", "FAS1,2,t7,44")
    assert _message(load_week, week, ref_line) == (
        f"{week / 'plan.csv'}:{number}: type: unknown type; did you mean T7? (value 't7')"
    )
    _replace(week / "plan.csv", "FAS1,2,t7,44", "FAS1,2,T7,44")
    number = _replace(week / "week.toml", 'timezone = "Europe/Berlin"', 'timezone = "Europe/Berlín"')
    assert _message(load_week, week, ref_line) == (
        f"{week / 'week.toml'}:{number}: timezone: unknown time zone: give an IANA name such as "
        "'Europe/Berlin' (value 'Europe/Berlín')"
    )
    _replace(week / "week.toml", 'timezone = "Europe/Berlín"', 'timezone = "Europe/Berlin"')
    number = _replace(week / "week.toml", "holidays = []", "holidays = [\n  2026-11-24,\n  2026-12-24,\n]")
    assert _message(load_week, week, ref_line) == (
        f"{week / 'week.toml'}:{number + 2}: holidays[1]: a holiday outside the week 2026-11-23 to "
        "2026-11-29 (value '2026-12-24')"
    )


def test_malformed_toml_and_json_name_their_line(tmp_path: Path, config_dir: Path) -> None:
    path = _copy(config_dir, tmp_path, "line.toml")
    number = _replace(path, "capacity = 500", "capacity = = 500")
    assert _message(load_line, path) == f"{path}:{number}: malformed TOML: Invalid value (column 12)"
    card = tmp_path / "card.json"
    card.write_text('{\n  "types": ["T1"],\n  "batch_size": 50,,\n}\n', encoding="utf-8")
    assert (
        _message(load_json_model, card, LineConfig)
        == f"{card}:3: malformed JSON: key must be a string (column 20)"
    )


def test_settings_files_have_the_same_form(tmp_path: Path, config_dir: Path) -> None:
    from agent.training.curriculum import Curriculum
    from agent.training.train import PPOSettings
    from twin.env_settings import EnvSettings

    env = _copy(config_dir, tmp_path, "env.toml")
    number = _replace(env, "setup_weight = ", 'setup_weight = "high" # ')
    assert _message(load_toml_model, env, EnvSettings) == (
        f"{env}:{number}: setup_weight: must be a number (value 'high')"
    )
    ppo = _copy(config_dir, tmp_path, "ppo.toml")
    number = _replace(ppo, "n_epochs = ", "n_epoch = ")
    assert _message(load_toml_model, ppo, PPOSettings).startswith(
        f"{ppo}:{number}: n_epoch: unknown key; expected n_epochs"
    )
    curriculum = _copy(config_dir, tmp_path, "curricula/A.toml")
    number = _replace(curriculum, "setup_weight_scale = ", "setup_weight_scale = [] # ", 2)
    assert _message(load_toml_model, curriculum, Curriculum) == (
        f"{curriculum}:{number}: task[1].setup_weight_scale: must be a number, not a list (value [])"
    )


def test_a_default_file_missing_names_linetwin_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.training.curriculum import load_curriculum
    from twin.config import default_config_dir

    missing = tmp_path / "nonexist"
    monkeypatch.setenv(CONFIG_ENV_VAR, str(missing))
    assert _message(load_line, default_config_dir() / "line.toml") == (
        f"{missing}/line.toml: file not found (the folder of defaults is LINETWIN_CONFIG={missing}, "
        "which is not a folder: unset it or fix it)"
    )
    missing.mkdir()
    assert _message(load_curriculum, "A") == (
        f"{missing}/curricula/A.toml: no such curriculum (give A, B, C or a .toml file; the folder of "
        f"defaults is LINETWIN_CONFIG={missing}) (value 'A')"
    )
    assert str(tmp_path) not in _message(load_line, Path("nowhere.toml"))  # a file given by hand: no hint


def test_key_lines_follow_tables_arrays_and_inline_tables() -> None:
    text = (
        'a."b.c" = """x\ny"""\n[[t.u]]\nk = {x = 1, y = [1,\n2]}\n[[t.u]]\n'
        "k = 1979-05-27 07:32:00 # c\n[t.u.v]\nw = 'z'\n"
    )
    assert key_lines(text) == {
        ("a",): 1,
        ("a", "b.c"): 1,
        ("t",): 3,
        ("t", "u"): 3,
        ("t", "u", 0): 3,
        ("t", "u", 0, "k"): 4,
        ("t", "u", 0, "k", "x"): 4,
        ("t", "u", 0, "k", "y"): 4,
        ("t", "u", 0, "k", "y", 0): 4,
        ("t", "u", 0, "k", "y", 1): 5,
        ("t", "u", 1): 6,
        ("t", "u", 1, "k"): 7,
        ("t", "u", 1, "v"): 8,
        ("t", "u", 1, "v", "w"): 9,
    }


def test_a_recording_line_has_the_same_form(tmp_path: Path) -> None:
    from bridge.errors import RecordingError
    from bridge.recording import read_recording

    path = tmp_path / "week.jsonl"
    path.write_text(
        '{"t": "2026-11-23T06:00:00+00:00", "topic": "a/b", "payload": 1}\n'
        '{"t": "2026-11-23T06:00:01+00:00", "topic": "a/b", "payload": 1, "qos": "one"}\n',
        encoding="utf-8",
    )
    with pytest.raises(RecordingError) as caught:
        list(read_recording(path))
    assert str(caught.value) == f"{path}:2: qos: must be a whole number (value 'one')"
