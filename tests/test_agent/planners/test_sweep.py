"""`linetwin sweep` on a tiny line: every batch size coarse to fine, its table, files and plot; the
finer size's best plan is never worse than the coarser plan cut into its batches; mistakes are
one line with exit code 2, before anything is written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import tomli_w
from builders import ALWAYS, make_line, make_week

from agent.cli import main
from agent.errors import UsageError
from agent.planners.bound import lower_bound
from agent.planners.conversion import Hint, convert
from agent.planners.cpsat import relative_gap
from agent.planners.policies import SequencePolicy, SetupAwarePolicy
from agent.planners.sweep import parse_batch_sizes
from twin import Scenario, load_line, load_sequence, load_week, simulate, write_week

MATRIX = [[0, 2, 5], [4, 0, 1], [3, 6, 0]]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """A line of three types and one FAS, and a week whose orders change type often: 6 batches
    at b = 20, 12 at b = 10."""
    line = make_line(types=3, fas_units=(3,), capacity=60, batch_size=20, matrix=MATRIX)
    week = make_week(line, [[(0, 30), (1, 20), (2, 30), (0, 10), (1, 20), (2, 10)]], stock=[10, 0, 0])
    data = line.model_dump(mode="json", exclude_none=True)
    data["calendar"] = ALWAYS
    line_file = tmp_path / "line.toml"
    line_file.write_text(tomli_w.dumps(data), encoding="utf-8")
    write_week(tmp_path / "week", week, line.types)
    return line_file, tmp_path / "week"


def _sweep(tiny: tuple[Path, Path], out: Path, *more: str) -> list[str]:
    line, week = tiny
    return ["sweep", "--line", str(line), "--week", str(week), "--out", str(out), *more]


def test_sweep_plans_each_size_coarse_to_fine_and_writes_table_plot_and_sequences(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = _sweep(tiny, out, "--batch-sizes", "10,20", "--planner", "setup-aware")
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert said.index("b=20 [1/2]") < said.index("b=10 [2/2]")  # coarse to fine
    with (out / "sweep.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    line = load_line(tiny[0])
    week = load_week(tiny[1], line)
    for row, size in zip(rows, (10, 20), strict=True):  # ascending in the table
        scenario = Scenario.build(line, week, size)
        results = simulate(scenario, SetupAwarePolicy())[0]
        assert row["batch_size"] == str(size) and row["planner"] == "setup-aware"
        assert (row["idle_s"], row["setup_effort"], row["setups"]) == (
            str(results.idle_s),
            str(results.setup_effort),
            str(results.setups),
        )
        assert row["found_by"] == "setup-aware"
        bound = lower_bound(scenario).value  # no planner of the sweep gave one
        assert bound is not None and float(row["bound"]) == bound
        assert results.idle_s == 0 and float(row["gap"]) == relative_gap(results.setup_effort, bound)
        replayed = simulate(
            scenario, SequencePolicy(load_sequence(out / f"b{size}" / "sequence.csv", line), line.types)
        )[0]
        assert replayed.setup_effort == results.setup_effort and replayed.idle_s == results.idle_s
        assert json.loads((out / f"b{size}" / "results.json").read_text())["kpis"]["batch_size"] == size
    assert len(rows) == 2
    assert "| 10 | setup-aware |" in said and "| 20 | setup-aware |" in said
    assert "| batch size |" in (out / "sweep.md").read_text(encoding="utf-8")
    payload = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert payload["batch_sizes"] == [10, 20] and payload["planners"] == ["setup-aware"]
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_a_sweep_replaces_no_hand_written_file(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "sweep.csv").write_text("mine\n", encoding="utf-8")
    assert main(_sweep(tiny, hand, "--planner", "setup-aware", "--batch-sizes", "10")) == 2
    assert "would overwrite sweep.csv" in capsys.readouterr().err
    assert (hand / "sweep.csv").read_text(encoding="utf-8") == "mine\n"


def test_best_at_a_finer_size_is_never_worse_than_the_coarser_plan_cut_into_its_batches(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    assert main(_sweep(tiny, out, "--batch-sizes", "20,10", "--planner", "best", "--time-limit", "2")) == 0
    capsys.readouterr()
    line = load_line(tiny[0])
    week = load_week(tiny[1], line)
    coarse = [e.type for e in load_sequence(out / "b20" / "sequence.csv", line)]
    fine = Scenario.build(line, week, 10)
    cut = convert(Hint(20, tuple(coarse), "best@20"), fine)
    converted = simulate(fine, SequencePolicy.of_types(cut, fine.types))[0]
    points = {p["batch_size"]: p for p in json.loads((out / "sweep.json").read_text())["points"]}
    assert points[10]["hints"] == ["best@20"]
    found = simulate(fine, SequencePolicy(load_sequence(out / "b10" / "sequence.csv", line), line.types))[0]
    assert found.rank_key() <= converted.rank_key()
    assert points[10]["kpis"]["setup_effort"] == found.setup_effort


@pytest.mark.parametrize(
    ("more", "said"),
    [
        (["--batch-sizes", "10,x"], "--batch-sizes '10,x': give integers like 10,20,30"),
        (["--batch-sizes", "10,20,...,45"], "--batch-sizes '10,20,...,45': a range goes up in steps of 10"),
        (
            ["--batch-sizes", "10,500"],
            "--batch-sizes: batch size 500 must be between 1 and the buffer capacity 60",
        ),
        (
            ["--planner", "setup-awar"],
            "--planner setup-awar: unknown planner 'setup-awar'; did you mean setup-aware?",
        ),
        (["--planner", "cpsat", "--time-limit", "0"], "--time-limit 0: must be positive"),
        (["--planner", "setup-aware,best", "--time-limit", "0"], "--time-limit 0: must be positive"),
    ],
)
def test_a_mistake_is_one_line_and_writes_nothing(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], more: list[str], said: str
) -> None:
    out = tmp_path / "sweep"
    assert main(_sweep(tiny, out, "--batch-sizes", "10,20", "--planner", "setup-aware", *more)) == 2
    said_out, said_err = capsys.readouterr()
    assert said_out == ""  # nothing planned or printed first
    err = said_err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"linetwin: error: {said}")
    assert not out.exists()


def test_the_issues_range_of_batch_sizes_is_every_tenth_from_10_to_100() -> None:
    assert parse_batch_sizes("10,20,…,100") == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert parse_batch_sizes("10,20,...,100") == parse_batch_sizes("10,20,30,40,50,60,70,80,90,100")
    assert parse_batch_sizes("50, 20,50") == [50, 20]
    with pytest.raises(UsageError, match=r"FIRST,SECOND,\.\.\.,LAST"):
        parse_batch_sizes("10,...,100")


def test_sweep_windows_fix_the_work_of_best_and_are_checked(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_sweep(tiny, tmp_path / "bad", "--planner", "best"), "--windows", "-1"]) == 2
    assert "--windows" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    argv = _sweep(tiny, tmp_path / "w", "--batch-sizes", "10,20", "--planner", "best", "--windows", "2")
    assert main([*argv, "--time-limit", "20"]) == 0
    payload = json.loads((tmp_path / "w" / "sweep.json").read_text())
    stopped = [p["plan"]["stopped"] for p in payload["points"]]
    assert len(stopped) == 2 and set(stopped) <= {"optimal", "windows"}
