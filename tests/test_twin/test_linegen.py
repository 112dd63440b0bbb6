"""Generated lines (`generate-line`): like the reference one at any size, reproducible, and weeks
for them without a week of theirs (`generate-week` takes only a template's calendar)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from paths import CONFIG

from agent.cli import main
from twin import LineEnv, Scenario, WeekGenerator, WeekSpec, load_calendar, load_line, load_week
from twin.linegen import LineGenerator, LineSpec

LINE = CONFIG / "line.toml"
SHIPPED = ("plant-16x16", "plant-40x24")


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_line_is_what_its_header_command_makes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = CONFIG / "lines" / f"{name}.toml"
    command = shlex.split(shipped.read_text().splitlines()[1].removeprefix("#"))
    assert command[:2] == ["linetwin", "generate-line"] and command[-2:] == [
        "--out",
        f"config/lines/{name}.toml",
    ]
    monkeypatch.chdir(tmp_path)
    assert main(command[1:]) == 0
    capsys.readouterr()
    assert (tmp_path / "config" / "lines" / f"{name}.toml").read_text() == shipped.read_text()


@pytest.mark.parametrize(("types", "fas", "unit"), [(8, 4, 90), (24, 40, 45), (5, 3, 200)])
def test_the_pas_gets_the_planned_load_asked_for(types: int, fas: int, unit: int) -> None:
    line, _ = LineGenerator(LineSpec(types=types, fas=fas, fas_unit_time_s=unit, fas_spread=0.1)).generate(7)
    week = WeekGenerator(line, load_calendar(CONFIG / "weeks" / "w1", line)).generate(1)
    scenario = Scenario.build(line, week)
    units = sum(q for plan in scenario.plans for _, q in plan)
    load = units * line.pas.unit_time_s / scenario.calendar.week_work_s
    assert load == pytest.approx(0.86, rel=0.02)
    assert len(line.types) == types and len(line.fas) == fas


def test_changeovers_are_cheap_within_a_family_dear_across_and_asymmetric() -> None:
    generator = LineGenerator(LineSpec(types=10, families=3))
    line, text = generator.generate(2)
    family = generator.family_of()
    assert family == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    m = line.setup_effort.matrix
    for i in range(10):
        for j in range(10):
            if i == j:
                assert m[i][j] == 0
            elif family[i] == family[j]:
                assert 1 <= m[i][j] <= 3
            else:
                assert 5 <= m[i][j] <= 10
    assert any(m[i][j] != m[j][i] for i in range(10) for j in range(i))
    assert generator.generate(2) == (line, text) and generator.generate(3)[0] != line


def test_generate_week_and_the_env_need_no_week_of_a_generated_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line_file, week = tmp_path / "three.toml", tmp_path / "week"
    assert main(["generate-line", "--types", "3", "--fas", "2", "--seed", "1", "--out", str(line_file)]) == 0
    assert main(["generate-week", "--line", str(line_file), "--seed", "4", "--out", str(week)]) == 0
    capsys.readouterr()
    line = load_line(line_file)
    loaded = load_week(week, line)
    assert {o.type for plan in loaded.plans.values() for o in plan} <= {"T1", "T2", "T3"}
    assert sum(loaded.initial_stock.values()) == line.buffer.capacity // 2
    env = LineEnv(line)  # w1 is no week of this line: weeks on its calendar
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4 * 3 + 3,)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--types", "8", "--families", "9"], "--families 9: more than the 8 types"),
        (["--load", "1.5"], "generate-line --load 1.5: must be at most 1"),
        (["--fas-spread", "1"], "generate-line --fas-spread 1: must be less than 1"),
        (["--types", "501"], "generate-line --types 501: must be at most 500"),
        (["--name", "a/b"], "--name a/b: it contains '/'"),
        (["--types", "1", "--fas", "1", "--batch-size", "100000"], "--batch-size 100000: a buffer of"),
        (["--fas-unit-time", "1e9"], "generate-line --fas-unit-time 1e9: must be at most 604800"),
        (["--types", "1e3"], "generate-line --types 1e3: must be at most 500"),
        (
            ["--load", "1e-20"],
            "--load 1e-20: at the PAS's least 1 s per unit, the FAS would take more than a week",
        ),
        (["--load", "1e-5"], "--load 1e-05: at the PAS's least 1 s per unit, the FAS would take 388,000 s"),
        (["--fas-unit-time", "20000"], "--fas-unit-time 20000: FAS units of up to 20,000 s; a week's plan"),
        (["--load", "0.0003"], "--load 0.0003: the FAS plans of a week at --fill 0.97 take 80 units, less"),
    ],
    ids=[
        "families",
        "load",
        "spread",
        "types",
        "name",
        "batch-size",
        "unit-1e9",
        "types-1e3",
        "load-1e-20",
        "load-1e-5",
        "unit-20000",
        "load-stock",
    ],
)
def test_a_bad_generate_line_flag_is_one_line_naming_flag_and_value(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "line.toml"
    assert main(["generate-line", "--seed", "1", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"linetwin: error: {message}") and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize(("load", "fill"), [(0.0009, 0.97), (0.86, 0.97), (0.003, 0.5)])
def test_a_line_generate_line_writes_gets_a_week_by_default(load: float, fill: float) -> None:
    """The bounds on the derived unit times let through what generate-week takes with its defaults."""
    line, _ = LineGenerator(LineSpec(load=load, fill=fill)).generate(1)
    week = WeekGenerator(line, load_calendar(CONFIG / "weeks" / "w1", line), WeekSpec(fill=fill)).generate(1)
    assert sum(len(plan) for plan in week.plans.values()) >= len(line.fas)


def test_the_least_load_generate_line_names_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "line.toml"
    assert main(["generate-line", "--seed", "1", "--load", "1e-5", "--out", str(out)]) == 2
    least = capsys.readouterr().err.split("give --load ")[1].split()[0]
    assert main(["generate-line", "--seed", "1", "--load", least, "--out", str(out)]) == 2
    least = capsys.readouterr().err.split("give --load ")[1].split()[0]  # then the buffer's stock
    assert main(["generate-line", "--seed", "1", "--load", least, "--out", str(out)]) == 0
    assert main(["generate-week", "--line", str(out), "--seed", "1", "--out", str(tmp_path / "w")]) == 0


def test_generate_line_and_week_refuse_an_out_under_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for argv, out in (
        (["generate-line", "--types", "3", "--fas", "1"], afile / "x.toml"),
        (["generate-week"], afile / "sub"),
        (["generate-week"], afile),
    ):
        assert main([*argv, "--seed", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err.splitlines()
        what = "a file, not a folder" if out == afile else f"{afile} is a file, not a folder"
        assert err == [f"linetwin: error: --out {out}: {what}"]
    assert afile.read_text() == "mine"


def test_generate_week_like_a_week_of_another_line_leaves_out_its_stations_downtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    like = tmp_path / "like"
    like.mkdir()
    (like / "week.toml").write_text(
        (CONFIG / "weeks" / "w1" / "week.toml").read_text()
        + '\n[[downtime]]\nstation = "FAS39"\nstart = 2026-11-24T09:00:00\nend = 2026-11-24T15:30:00\n'
        + '\n[[downtime]]\nstation = "FAS2"\nstart = 2026-11-25T09:00:00\nend = 2026-11-25T10:00:00\n'
    )
    out = tmp_path / "week"
    assert main(["generate-week", "--like", str(like), "--seed", "1", "--out", str(out)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[-1] == f"left out 1 downtime of --like {like} on FAS39: not on {load_line(LINE).name}"
    week = load_week(out, load_line(LINE))
    assert [d.station for d in week.downtime] == ["FAS2"]


def test_generate_line_never_overwrites_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "line.toml"
    out.write_text("mine")
    assert main(["generate-line", "--seed", "1", "--out", str(out)]) == 2
    assert "--out" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["generate-line", "--seed", "1", "--out", str(tmp_path)]) == 2
    assert main(["generate-line", "--seed", "1", "--out", str(out), "--force"]) == 0
    assert load_line(out).types == [f"T{i}" for i in range(1, 9)]
