"""A sequence.csv records what it was made for (sidecar sequence.meta.json); replaying it for another
week or batch size warns up front, for another line is refused, and results.json says what was
replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from paths import CONFIG

from agent.cli import main
from twin import load_line, load_sequence
from twin.config import check_sequence, load_sequence_origin

W1, W2 = CONFIG / "weeks" / "w1", CONFIG / "weeks" / "w2"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's first example: setup-aware on w1 at batch size 50."""
    out = tmp_path_factory.mktemp("sim")
    argv = ["simulate", "--week", str(W1), "--policy", "setup-aware", "--batch-size", "50", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_a_written_sequence_says_what_it_was_made_for(planned: Path) -> None:
    meta = json.loads((planned / "sequence.meta.json").read_text())
    line = load_line(CONFIG / "line.toml")
    assert meta["line"] == line.name and meta["week"] == str(W1)
    assert meta["week_start"] == "2026-11-23" and meta["batch_size"] == 50
    header = (planned / "sequence.csv").read_text().splitlines()[0]
    assert header == "position,type,quantity"  # the contract's format, unchanged
    assert load_sequence(planned / "sequence.csv", line)


def test_the_readme_replay_on_another_week_warns_up_front(
    planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "simulate",
        "--week",
        str(W2),
        "--sequence",
        str(planned / "sequence.csv"),
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    warning = (
        f"linetwin: warning: {planned / 'sequence.csv'}: made for week {W1} of 2026-11-23, not for this week"
    )
    assert captured.err.startswith(warning)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["kpis"]["deadlock"] is True  # what the warning announced
    sequence = results["sequence"]
    assert sequence["source"] == str(planned / "sequence.csv")
    assert sequence["made_for"]["week"] == str(W1) and sequence["made_for"]["batch_size"] == 50
    assert len(sequence["warnings"]) == 1


def test_the_same_week_replays_without_a_word(
    planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--week", str(W1), "--sequence", str(planned / "sequence.csv")]
    assert main([*argv, "--batch-size", "50", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
    results = json.loads((tmp_path / "results.json").read_text())
    before = json.loads((planned / "results.json").read_text())
    assert results["kpis"] == before["kpis"] and results["sequence"]["warnings"] == []


def test_quantities_other_than_the_batch_size_are_reported_as_they_are(
    planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batches = len((planned / "sequence.csv").read_text().splitlines()) - 1
    argv = ["simulate", "--week", str(W1), "--sequence", str(planned / "sequence.csv"), "--batch-size", "40"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"{batches} of {batches} batches have a quantity other than the batch size 40 (50)" in err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["sequence"]["quantities"] == {"50": batches}
    assert results["kpis"]["batch_size"] == 40 and results["kpis"]["units_produced"] % 50 == 0


def test_a_sequence_of_another_line_is_refused_before_anything_is_written(
    planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = tmp_path / "sequence.meta.json"
    (tmp_path / "sequence.csv").write_bytes((planned / "sequence.csv").read_bytes())
    data = json.loads((planned / "sequence.meta.json").read_text())
    meta.write_text(json.dumps({**data, "line": "paint-shop"}, indent=2))  # "line" on line 2
    out = tmp_path / "out"
    assert main(["simulate", "--sequence", str(tmp_path / "sequence.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"linetwin: error: {meta}:2: line: the sequence was made for another line than 'appliance-reference' "
        "(remove the file to replay it anyway) (value 'paint-shop')"
    ]
    assert not out.exists()


def test_a_broken_sidecar_is_named(planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sequence.csv").write_bytes((planned / "sequence.csv").read_bytes())
    (tmp_path / "sequence.meta.json").write_text('{"line": "x"')
    assert main(["simulate", "--sequence", str(tmp_path / "sequence.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    meta = tmp_path / "sequence.meta.json"
    assert len(err) == 1 and err[0].startswith(f"linetwin: error: {meta}:1: malformed JSON: ")


def test_a_sequence_without_sidecar_is_replayed_without_checks(planned: Path, tmp_path: Path) -> None:
    (tmp_path / "sequence.csv").write_bytes((planned / "sequence.csv").read_bytes())
    line = load_line(CONFIG / "line.toml")
    entries = load_sequence(tmp_path / "sequence.csv", line)
    assert load_sequence_origin(tmp_path / "sequence.csv") is None
    here = load_sequence_origin(planned / "sequence.csv")
    assert here is not None
    assert check_sequence(tmp_path / "sequence.csv", entries, None, here) == []
    other = here.model_copy(update={"batch_size": 40})
    assert check_sequence(tmp_path / "sequence.csv", entries, None, other) == [
        f"{tmp_path / 'sequence.csv'}: {len(entries)} of {len(entries)} batches have a quantity other than "
        "the batch size 40 (50); they are replayed as written"
    ]
