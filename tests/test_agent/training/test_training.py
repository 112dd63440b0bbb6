"""Smoke runs of the real CLI with a tiny budget: train -> evaluate -> resume, the agent as a planner,
and the errors a missing or incompatible model gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sb3_contrib import MaskablePPO

from agent.cli import main
from agent.cli.training import _print_summary
from agent.training.summary import PlanSummary, TrainSummary, read_summary
from agent.training.train import PPOSettings, load_ppo_settings
from twin.results import HEADLINE

TINY_PPO = "n_steps = 64\nbatch_size = 64\nn_epochs = 1\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained for 128 steps on w1 at batch size 50."""
    root = tmp_path_factory.mktemp("train")
    ppo = root / "ppo.toml"
    ppo.write_text(TINY_PPO, encoding="utf-8")
    run = root / "run"
    argv = ["train", "--curriculum", "A", "--batch-size", "50", "--steps", "128", "--ppo", str(ppo)]
    assert main([*argv, "--checkpoint-steps", "64", "--no-progress", "--out", str(run)]) == 0
    return run


def test_train_writes_model_card_checkpoints_logs_and_summary(trained: Path) -> None:
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["steps_done"] >= 128 and summary["curriculum"] == "A"
    assert [t["task"] for t in summary["tasks"]] == [1, 2, 3]
    assert summary["final_criterion_met"] is False and summary["steps_to_finish"] is None
    assert summary["wall_time_s"] > 0 and "linetwin train" in summary["command"]
    best = summary["evaluation"]["best"]
    assert {"idle_s", "setup_effort", "deadlock", "return"} <= set(best)
    card = json.loads((trained / "model.json").read_text())
    assert card["types"][0] == "T1" and card["batch_size"] == 50
    assert sorted(p.name for p in (trained / "checkpoints").glob("model_*.zip"))
    assert list((trained / "tb").rglob("events.out.tfevents.*"))
    agent = MaskablePPO.load(trained / "model.zip", device="cpu")  # ppo.toml's settings reached it
    assert (agent.n_steps, agent.batch_size, agent.n_epochs) == (64, 64, 1)
    assert agent.learning_rate == PPOSettings().learning_rate
    typed = read_summary(trained)  # what train() returned, read back as it was written
    assert typed is not None and typed.model_dump(mode="json", by_alias=True) == summary


def test_evaluate_writes_the_best_plan_which_replays_exactly(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    assert (
        main(["evaluate", "--model", str(trained / "model.zip"), "--batch-size", "50", "--out", str(out)])
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["plans"] == 21 and results["planner"].endswith(": best of 21)")
    replay = tmp_path / "replay"
    assert main(["simulate", "--sequence", str(out / "sequence.csv"), "--out", str(replay)]) == 0
    assert json.loads((replay / "results.json").read_text())["kpis"] == results["kpis"]


def test_the_agent_plans_in_simulate_and_the_same_seed_gives_the_same_plan(
    trained: Path, tmp_path: Path
) -> None:
    plans = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["simulate", "--policy", "rl", "--model", str(trained), "--out", str(out)]) == 0
        plans.append((out / "sequence.csv").read_text())
    assert plans[0] == plans[1]


def test_resume_continues_the_run_from_its_last_checkpoint(trained: Path) -> None:
    before = json.loads((trained / "summary.json").read_text())
    config = trained / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "progress": True}))  # run with a bar
    assert main(["train", "--resume", str(trained), "--steps", "256", "--no-progress"]) == 0
    after = json.loads((trained / "summary.json").read_text())
    assert after["steps_done"] >= 256 > before["steps_done"]
    assert after["wall_time_s"] > before["wall_time_s"]
    assert json.loads(config.read_text())["progress"] is False  # what learn() was given: no bar


def test_resume_without_a_larger_budget_says_where_the_run_is(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = json.loads((trained / "summary.json").read_text())["steps_done"]
    budget = json.loads((trained / "config.json").read_text())["steps"]
    assert main(["train", "--resume", str(trained)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"linetwin: error: --resume {trained}: the run is already at {done} steps (budget {budget}); "
        f"pass --steps N with N > {done} to continue"
    )


def test_resume_takes_no_flag_that_would_change_the_run(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--resume", str(trained), "--steps", "9999", "--envs", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"linetwin: error: --resume {trained}: --envs cannot change a run; it continues as its "
        "config.json says (only --steps and --no-progress can be given)"
    )


def test_a_new_run_never_overwrites_an_old_one(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--steps", "64", "--out", str(trained)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_a_missing_model_is_an_error_not_a_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--policy", "rl", "--model", str(tmp_path / "none.zip")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_a_model_for_another_line_is_an_error(
    trained: Path, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "line.toml"
    other.write_text((config_dir / "line.toml").read_text().replace('"T8"]', '"T9"]'), encoding="utf-8")
    week = tmp_path / "week"
    week.mkdir()
    (week / "week.toml").write_text((config_dir / "weeks/w1/week.toml").read_text().replace("T8 =", "T9 ="))
    (week / "plan.csv").write_text((config_dir / "weeks/w1/plan.csv").read_text().replace(",T8,", ",T9,"))
    argv = ["simulate", "--policy", "rl", "--model", str(trained), "--line", str(other), "--week", str(week)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "trained for types" in capsys.readouterr().err


def test_the_shipped_ppo_toml_holds_the_embedded_defaults(config_dir: Path) -> None:
    assert load_ppo_settings(config_dir / "ppo.toml") == PPOSettings()


def test_an_evaluation_plan_holds_the_headline_kpis_and_batches() -> None:
    kpis = set(PlanSummary.model_fields) - {"episode_return", "seed"}
    assert kpis == {*HEADLINE, "batches"}


PLAN = {"idle_s": 168260, "setup_effort": 211.0, "setups": 35, "deadlock": True, "completion": 0.138}
WRITTEN = {
    "run": "runs/train",
    "command": "linetwin train --curriculum A --batch-size 50 --steps 64 --out runs/train",
    "curriculum": "A",
    "batch_size": 50,
    "seed": 0,
    "steps_budget": 64,
    "steps_done": 64,
    "episodes": 1,
    "tasks": [
        {"task": 1, "learned_at_step": None, "mask_top_k": 3, "setup_weight_scale": 0.0},
        {"task": 2, "learned_at_step": 40, "setup_weight_scale": 0.0},
        {"task": 3, "learned_at_step": None, "setup_weight_scale": 1.0},
    ],
    "final_criterion_met": False,
    "steps_to_finish": None,
    "wall_time_s": 0.1,
    "evaluation": {
        "week": "config/weeks/w1",
        "batch_size": 50,
        "zero_idle": False,
        "best": {**PLAN, "batches": 38, "return": -1728.636, "seed": 7},
        "deterministic": {**PLAN, "batches": 11, "return": -1316.014, "seed": None},
    },
}
"""A summary.json as `train` wrote it before it was typed (issue 15): a dict, `json.dumps(indent=2)`."""


def _without_seeds(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary as written before the evaluation plans kept their seed (issue 14)."""
    ev = summary["evaluation"]
    plans = {kind: {k: v for k, v in ev[kind].items() if k != "seed"} for kind in ("best", "deterministic")}
    return {**summary, "evaluation": {**ev, **plans}}


@pytest.mark.parametrize("written", [WRITTEN, _without_seeds(WRITTEN)], ids=["seeds", "before-seeds"])
def test_a_summary_written_before_it_was_typed_reads_and_writes_back_the_same(
    written: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(written, indent=2) + "\n"
    (tmp_path / "summary.json").write_text(text, encoding="utf-8")
    summary = read_summary(tmp_path)
    assert isinstance(summary, TrainSummary) and summary.evaluation.best.setup_effort == 211.0
    out = tmp_path / "again"
    out.mkdir()
    assert summary.write(out).read_text(encoding="utf-8") == text  # same keys, values and order
    _print_summary(summary)
    best = next(line.strip() for line in capsys.readouterr().out.splitlines() if "best plan" in line)
    said = "best plan (stochastic, seed 7) of" if "seed" in written["evaluation"]["best"] else "best plan of"
    assert best.startswith(f"{said} config/weeks/w1 (b=50): DEADLOCK AT 13.8% DONE")
