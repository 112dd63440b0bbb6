"""The `linetwin` command line: outputs of simulate and demo, and one readable line per mistake."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main

PLOTS = ("buffer.png", "pas_gantt.png", "fas_timeline.png")


def test_simulate_writes_results_sequence_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["simulate", "--policy", "setup-aware", "--batch-size", "50", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "setup-aware" in table and "idle_s" in table
    results = json.loads((out / "results.json").read_text())
    kpis = results["kpis"]
    for name in (
        "idle_s",
        "setup_effort",
        "setups",
        "completion",
        "deadlock",
        "makespan_s",
        "makespan_at",
        "utilisation",
        "pas_blocked_s",
        "buffer_mean_fill",
        "buffer_max_fill_by_type",
    ):
        assert name in kpis
    assert kpis["idle_s"] == 0 and kpis["completion"] == 1.0
    for plot in PLOTS:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    # the written sequence replays to the same KPIs
    replay = tmp_path / "replay"
    assert main(["simulate", "--sequence", str(out / "sequence.csv"), "--out", str(replay)]) == 0
    assert json.loads((replay / "results.json").read_text())["kpis"] == kpis


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run (short CP-SAT limit) shared by the tests that read it."""
    out = tmp_path_factory.mktemp("demo")
    capture = subprocess.run(
        [sys.executable, "-m", "agent.cli", "demo", "--time-limit", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out, capture.stdout


@pytest.mark.xdist_group("demo")  # one worker, one demo run
def test_demo_compares_rules_agent_and_cpsat_and_says_where_the_plots_are(demo: tuple[Path, str]) -> None:
    out, stdout = demo
    for name in ("random", "first-fit", "earliest-runout", "setup-aware", "cpsat"):
        assert f"| {name} |" in stdout
    assert re.search(r"\| rl \((stochastic, seed \d+|deterministic): best of 21\) \|", stdout)
    assert "CP-SAT plan, measured by the twin: " in stdout and "CP-SAT model (" in stdout
    assert "best plan" in stdout
    for plot in (*PLOTS, "compare.png"):
        assert str(out / plot) in stdout


@pytest.mark.xdist_group("demo")  # one worker, one demo run
def test_in_the_demo_agent_and_cpsat_reach_zero_idle_below_the_rules_setup_effort(
    demo: tuple[Path, str],
) -> None:
    out, _ = demo
    rows = {r["planner"]: r for r in json.loads((out / "compare.json").read_text())["rows"]}
    agent = next(row for name, row in rows.items() if name.startswith("rl (") and "best of 21" in name)
    rule, cpsat = rows["setup-aware"], rows["cpsat"]
    assert agent["idle_s"] == 0 and agent["setup_effort"] < rule["setup_effort"]
    assert cpsat["idle_s"] == 0 and cpsat["setup_effort"] <= rule["setup_effort"]
    best = json.loads((out / "results.json").read_text())
    ranked = min(
        rows.values(), key=lambda r: (r["deadlock"], -r["completion"], r["idle_s"], r["setup_effort"])
    )
    assert best["planner"] == ranked["planner"]


MISTAKES = [
    ("unknown-policy", ["simulate", "--policy", "magic"], "unknown policy 'magic'"),
    ("policy-and-sequence", ["simulate", "--policy", "random", "--sequence", "x.csv"], "exactly one of"),
    ("neither", ["simulate"], "exactly one of"),
    ("missing-line", ["simulate", "--policy", "random", "--line", "nope.toml"], "nope.toml: file not found"),
    ("missing-week", ["simulate", "--policy", "random", "--week", "nowhere"], "week folder not found"),
    ("batch-too-large", ["simulate", "--policy", "random", "--batch-size", "501"], "--batch-size"),
    ("missing-sequence", ["simulate", "--sequence", "none.csv"], "none.csv: file not found"),
    (
        "model-for-a-rule",
        ["simulate", "--policy", "random", "--model", "m.zip"],
        "--model m.zip: only for the trained agent (rl), not for the rule 'random'",
    ),
    ("unknown-curriculum", ["train", "--curriculum", "Z", "--steps", "10"], "no such curriculum"),
    ("train-without-steps", ["train"], "--steps is required"),
    ("week-and-weeks", ["train", "--steps", "9", "--week", "a", "--weeks", "b"], "--week or --weeks"),
    ("resume-nothing", ["train", "--resume", "nowhere"], "no config.json"),
    ("bad-batch-sizes", ["study", "--batch-sizes", "10,x", "--steps", "9"], "--batch-sizes"),
]


@pytest.mark.parametrize(("argv", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistakes_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linetwin: error:") and message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv", [["simulate", "--policy", "setup-aware"], ["plan", "--planner", "cpsat", "--time-limit", "1"]]
)
def test_an_infinite_setup_effort_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config_dir: Path, argv: list[str]
) -> None:
    # issue 14: TOML allows `inf`; simulate wrote Infinity into results.json, CP-SAT overflowed
    line = tmp_path / "line.toml"
    text = (config_dir / "line.toml").read_text(encoding="utf-8")
    row = "[ 0,  2,  2,  1,  7,  9,  8,  8]"
    line.write_text(text.replace(row, row.replace(" 2,  1", " inf,  1")), encoding="utf-8")
    out = tmp_path / "out"
    assert main([*argv, "--line", str(line), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"linetwin: error: {line}:")
    assert "setup_effort.matrix[0][2]" in err and "(value inf)" in err and "1,000,000" in err
    assert not out.exists()


def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "seq.csv"
    bad.write_text("position,type,quantity\n1,T1,900\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "simulate", "--sequence", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}:2: quantity: batch 1 is larger than the buffer capacity 500" in proc.stderr
