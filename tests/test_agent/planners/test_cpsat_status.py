"""CP-SAT's summary when a stage ends without a solution (issue 14, part 3): it says 'no model
solution' and never 'zero idle found' or the model's estimates of an incumbent it does not have
(was: 'zero idle found ... zero idle UNKNOWN; model estimates for its incumbent: setup effort 695',
the starting rule plan's figures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main

CASES = [
    ([], "zero idle met by the starting rule plan, none found by the model"),
    (["--batch-size", "80"], "zero idle proved impossible"),  # w1 at 80: zero idle is impossible
]


@pytest.mark.parametrize(("batch", "zero_idle"), CASES, ids=["zero-idle", "min-idle"])
def test_a_stage_that_found_nothing_is_said_as_no_model_solution(
    batch: list[str], zero_idle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "--planner", "cpsat", "--time-limit", "0.01", "--out", str(tmp_path / "p"), *batch]
    assert main(argv) == 0
    out = capsys.readouterr().out
    model = next(line for line in out.splitlines() if line.startswith("CP-SAT model"))
    assert "UNKNOWN" in model  # 0.01 s is too short for any stage on w1: the case under test
    assert "no model solution" in model
    assert "zero idle found" not in model and "model estimates" not in model
    measured = next(line for line in out.splitlines() if line.startswith("CP-SAT plan, measured"))
    assert "the starting rule plan" in measured
    assert f"; {zero_idle}): " in model
