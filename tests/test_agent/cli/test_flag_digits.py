"""Whole numbers typed on the command line are ASCII digits (int() would also take `1_0`, `+10`
and `١٠`): one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main


@pytest.mark.parametrize("typed", ["1_0", "١٠", "+10"])
@pytest.mark.parametrize("flag", ["--steps", "--envs", "--seed"])
def test_numbers_of_flags_are_ascii_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, typed: str
) -> None:
    out = tmp_path / "out"
    steps = [] if flag == "--steps" else ["--steps", "10"]
    assert main(["train", *steps, flag, typed, "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"linetwin: error: train {flag} {typed}: not a whole number"
    ]
    assert not out.exists()


@pytest.mark.parametrize("typed", ["1_0", "١٠", "+10"])
def test_batch_sizes_of_a_study_are_ascii_digits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], typed: str
) -> None:
    out = tmp_path / "out"
    assert main(["study", "--batch-sizes", f"20,{typed}", "--steps", "10", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"linetwin: error: --batch-sizes '20,{typed}': give integers like 10,20,30"
    ]
    assert not out.exists()
