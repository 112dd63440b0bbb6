"""What commands write where (issue 14): a week or a file a user wrote is never overwritten
silently, and every flag is checked before any output or work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.cli import main


def _error(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """stdout and the one error line of a refused command."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linetwin: error: "), captured.err
    return captured.out, lines[0].removeprefix("linetwin: error: ")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def week(config_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "w1"
    shutil.copytree(config_dir / "weeks" / "w1", folder)
    return folder


# -- generate-week -------------------------------------------------------------------------------
def test_generate_week_refuses_a_folder_that_holds_a_week(
    week: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(week)
    assert main(["generate-week", "--seed", "8", "--out", str(week)]) == 2
    out, error = _error(capsys)
    assert (
        error
        == f"--out {week}: already holds week.toml and plan.csv: give a new folder, or --force to overwrite"
    )
    assert out == "" and _snapshot(week) == before


def test_generate_week_refuses_a_folder_with_only_a_plan(
    tmp_path: Path, week: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(week / "plan.csv", folder / "plan.csv")
    assert main(["generate-week", "--seed", "8", "--out", str(folder)]) == 2
    assert _error(capsys)[1].startswith(f"--out {folder}: already holds plan.csv:")
    assert not (folder / "week.toml").exists()


def test_generate_week_overwrites_with_force(week: Path) -> None:
    before = _snapshot(week)
    assert main(["generate-week", "--seed", "8", "--out", str(week), "--force"]) == 0
    assert _snapshot(week) != before


# -- runs --------------------------------------------------------------------------------------
def test_a_run_into_a_week_folder_is_refused_before_it_runs(
    week: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(week)
    assert main(["simulate", "--week", str(week), "--policy", "setup-aware", "--out", str(week)]) == 2
    out, error = _error(capsys)
    assert error == (
        f"--out {week}: holds week.toml and plan.csv, the inputs of a run, not a place for its outputs: "
        "give another folder, or --force"
    )
    assert out == "" and _snapshot(week) == before


def test_a_run_replaces_an_earlier_run_but_not_the_sequence_it_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["simulate", "--policy", "setup-aware", "--out", str(run)]) == 0
    assert main(["simulate", "--policy", "earliest-runout", "--out", str(run)]) == 0  # an earlier run
    capsys.readouterr()
    sequence = run / "sequence.csv"
    before = sequence.read_bytes()
    assert main(["simulate", "--sequence", str(sequence), "--out", str(run)]) == 2
    out, error = _error(capsys)
    assert error == (
        f"--out {run}: the run would overwrite its own input sequence.csv: give another folder, or --force"
    )
    assert out == "" and sequence.read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "--planner", "first-fit"],
        ["compare", "--planners", "first-fit"],
        ["demo", "--no-agent", "--time-limit", "0"],
    ],
)
def test_every_run_command_refuses_a_week_folder(
    week: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    before = _snapshot(week)
    assert main([*command, "--out", str(week)]) == 2
    out, error = _error(capsys)
    assert out == "" and error.startswith(f"--out {week}: holds week.toml and plan.csv, the inputs")
    assert _snapshot(week) == before


# -- flags before output -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--time-limit", "0"], "--time-limit 0: must be positive"),
    ],
)
@pytest.mark.parametrize(
    "command", [["plan", "--planner", "cp-sat"], ["compare", "--planners", "first-fit,cpsat"]]
)
def test_a_cpsat_flag_is_checked_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], flags: list[str], message: str
) -> None:
    out_dir = tmp_path / "out"
    assert main([*command, *flags, "--out", str(out_dir)]) == 2
    out, error = _error(capsys)
    assert out == "" and error == message
    assert not out_dir.exists()


def test_serve_checks_its_clock_flags_before_it_renames_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text("", encoding="utf-8")
    argv = ["serve", "--policy", "setup-aware", "--journal", str(journal), "--fresh"]
    assert main([*argv, "--clock", "line", "--clock-tolerance", "5"]) == 2
    out, error = _error(capsys)
    assert error == "--clock-tolerance: only --clock wall compares timestamps with the receipt time"
    assert out == "" and [p.name for p in tmp_path.iterdir()] == ["j.jsonl"]


def test_a_hand_written_sequence_is_not_replaced_but_other_files_beside_it_are_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n", encoding="utf-8")
    assert main(["simulate", "--policy", "setup-aware", "--out", str(mine)]) == 0  # nothing of mine replaced
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "sequence.csv").write_text("position,type\n1,T1\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["simulate", "--policy", "setup-aware", "--out", str(hand)]) == 2
    out, error = _error(capsys)
    assert error == (
        f"--out {hand}: the run would overwrite sequence.csv, not written by an earlier run "
        "(no results.json, compare.json or sweep.json): give another folder, or --force"
    )
    assert out == "" and (hand / "sequence.csv").read_text(encoding="utf-8") == "position,type\n1,T1\n"
