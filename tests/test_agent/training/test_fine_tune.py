"""Fine-tuning a model: `train --init-from` (weights of a model whose card fits the run), the expert
kept in by behaviour cloning (`--bc-data`), the best model by held-out weeks (`--best-every`), and
`study --init-from`; on a tiny week of the reference line (the shipped agent's types)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from builders import make_week
from sb3_contrib import MaskablePPO
from stable_baselines3.common.logger import configure

from agent.cli import main
from agent.planners.registry import REFERENCE_MODEL as DEFAULT_MODEL
from agent.training.anchor import ExpertAnchor, load_expert_steps
from twin import EnvSettings, LineConfig, LineEnv
from twin.config import write_week

TINY_PPO = "n_steps = 32\nbatch_size = 32\nn_epochs = 1\nlearning_rate = 0.0001\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, ref_line: LineConfig) -> Path:
    """A folder with a tiny week of the reference line (500 units, b=50), ppo.toml, a curriculum of
    one task, and expert data (`linetwin expert`: the best plan of one generated week)."""
    root = tmp_path_factory.mktemp("tiny")
    week = make_week(ref_line, [[(0, 100), (1, 50)], [(2, 100)], [(1, 50)], [(3, 100)]])
    write_week(root / "week", week, ref_line.types)
    (root / "ppo.toml").write_text(TINY_PPO, encoding="utf-8")
    (root / "one.toml").write_text('name = "one"\n[[task]]\nsetup_weight_scale = 1.0\n', encoding="utf-8")
    expert = ["expert", "--weeks", "1", "--first-seed", "7", "--batch-sizes", "50", "--jobs", "1"]
    assert main([*expert, "--time-limit", "20", "--out", str(root / "expert")]) == 0
    return root


@pytest.fixture(scope="module")
def fresh(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of the tiny week from fresh weights (seed 0), as `_train` would make it."""
    from agent.training.train import PPOSettings, TrainConfig, train

    week, out = tiny / "week", tmp_path_factory.mktemp("fresh") / "run"
    ppo = PPOSettings(n_steps=32, batch_size=32, n_epochs=1, learning_rate=1e-4)
    config = TrainConfig(
        line=DEFAULT_MODEL.parents[1] / "line.toml",
        weeks=[week],
        template_week=week,
        curriculum=str(tiny / "one.toml"),
        batch_size=50,
        steps=32,
        out=out,
        ppo=ppo,
        eval_plans=1,
        progress=False,
    )
    train(config)
    return out


def _train(tiny: Path, out: Path, *flags: str) -> list[str]:
    return [
        "train",
        "--week",
        str(tiny / "week"),
        "--curriculum",
        str(tiny / "one.toml"),
        "--steps",
        "32",
        "--ppo",
        str(tiny / "ppo.toml"),
        "--no-progress",
        "--out",
        str(out),
        *flags,
    ]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("linetwin: error: ")
    return err.removeprefix("linetwin: error: ")


def _card(tmp_path: Path, **change: object) -> Path:
    """A copy of the shipped agent whose card says `change` (a key of the card or its env settings)."""
    model = tmp_path / "other.zip"
    shutil.copy(DEFAULT_MODEL, model)
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text(encoding="utf-8"))
    for key, value in change.items():
        (card if key in card else card["env_settings"])[key] = value
    model.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    return model


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"safety_time_s": 900}, "its card's env settings differ: safety_time_s 900 (run: 1800)"),
        ({"types": ["A", "B"]}, "its card's types ['A', 'B'] are not the line's"),
    ],
)
def test_a_model_whose_card_does_not_fit_the_run_is_one_line_and_nothing_is_written(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], said: str
) -> None:
    model = _card(tmp_path, **change)
    out = tmp_path / "run"
    assert main(_train(tiny, out, "--init-from", str(model))) == 2
    assert _one_line(capsys).startswith(f"--init-from {model}: {said}")
    assert not out.exists()


def test_study_starts_each_run_from_the_model_so_checks_its_card(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _card(tmp_path, safety_time_s=900)
    argv = _train(tiny, tmp_path / "study", "--init-from", str(model))
    argv[0] = "study"
    assert main([*argv, "--batch-sizes", "50", "--seeds", "1", "--plan-time-limit", "0"]) == 2
    assert _one_line(capsys).startswith(f"--init-from {model}: its card's env settings differ")


def test_init_from_starts_from_the_models_weights_with_the_runs_ppo_settings(
    tiny: Path, tmp_path: Path
) -> None:
    fresh, tuned = tmp_path / "fresh", tmp_path / "tuned"
    assert main(_train(tiny, fresh)) == 0
    assert main(_train(tiny, tuned, "--init-from", str(DEFAULT_MODEL))) == 0
    models = (DEFAULT_MODEL, fresh / "model.zip", tuned / "model.zip")
    weights = [MaskablePPO.load(path, device="cpu") for path in models]
    shipped, a, b = (m.policy.state_dict() for m in weights)
    name = "action_net.weight"
    assert not torch.equal(a[name], b[name])  # same seed, another start
    assert (b[name] - shipped[name]).abs().max() < (a[name] - shipped[name]).abs().max()
    assert weights[2].learning_rate == 1e-4 != MaskablePPO.load(DEFAULT_MODEL, device="cpu").learning_rate
    config = json.loads((tuned / "config.json").read_text(encoding="utf-8"))
    assert config["init_from"] == str(DEFAULT_MODEL)
    assert f"--init-from {DEFAULT_MODEL}" in json.loads((tuned / "model.json").read_text())["command"]


def test_the_expert_term_raises_the_expert_actions_probability(tiny: Path, ref_line: LineConfig) -> None:
    data = load_expert_steps(tiny / "expert", ref_line.types, EnvSettings())
    env = LineEnv(None, [str(tiny / "week")], 50)
    model = MaskablePPO("MlpPolicy", env, n_steps=32, batch_size=32, seed=0, device="cpu")
    model.set_logger(configure(None, []))
    anchor = ExpertAnchor(data, weight=1.0, steps=20, batch_size=8, seed=0)
    anchor.init_callback(model)
    for _ in range(3):
        anchor.anchor()
    assert len(anchor.losses) == 3 and anchor.losses[-1] < anchor.losses[0]


def test_the_expert_term_and_the_best_model_in_a_run(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = [
        "--bc-data",
        str(tiny / "expert"),
        "--bc-weight",
        "0.5",
        "--best-every",
        "32",
        "--best-weeks",
        "1",
    ]
    assert main(_train(tiny, out, *flags)) == 0
    logged = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]
    assert [e["steps"] for e in logged] == [32] and logged[0]["kept"] and logged[0]["weeks"] == 1
    assert (out / "best.zip").is_file() and json.loads((out / "best.json").read_text())["types"][0] == "T1"
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert (config["bc_data"], config["bc_weight"], config["best_every"]) == (str(tiny / "expert"), 0.5, 32)


def test_expert_data_of_other_env_settings_is_one_line(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "env.toml"
    env.write_text('observation = "deadlines"\n', encoding="utf-8")
    flags = ["--env-settings", str(env), "--bc-data", str(tiny / "expert")]
    assert main(_train(tiny, tmp_path / "run", *flags)) == 2
    said = _one_line(capsys)
    differ = "observation 'basic' (run: 'deadlines')"
    assert said == f"--bc-data {tiny / 'expert'}: recorded under other env settings: {differ}"
    assert not (tmp_path / "run").exists()
