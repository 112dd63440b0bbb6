"""Expert data and behaviour cloning on two generated weeks of the reference line at b = 50 (the
exact programme plans each in well under a second): the files replay to their plans' KPIs, a
folder is resumed, bad input is one line, and cloning lowers the NLL into a model that plans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from agent.planners.rl import RLPolicy
from agent.planners.run import run_planner
from agent.training.expert import (
    MANIFEST,
    expert_week,
    load_expert,
    read_manifest,
    read_plan,
    replay,
)
from twin import EnvSettings, LineEnv, Observer, Scenario, load_line, load_week

WEEKS = ["--weeks", "2", "--first-seed", "7", "--batch-sizes", "50", "--jobs", "1", "--time-limit", "20"]


@pytest.fixture(scope="module")
def expert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("expert") / "data"
    assert main(["expert", *WEEKS, "--out", str(out)]) == 0
    return out


def test_expert_files_replay_to_their_plans_kpis(expert: Path) -> None:
    manifest = read_manifest(expert)
    assert manifest.seeds == [7, 8] and manifest.batch_sizes == [50]
    settings = manifest.settings
    line = load_line(settings.line)
    assert [(p.seed, p.batch_size) for p in manifest.plans] == [(7, 50), (8, 50)]
    for plan in manifest.plans:
        found = read_plan(expert / plan.file)
        assert found is not None
        record, arrays = found
        assert record == plan and plan.steps == len(arrays["actions"]) > 0
        assert arrays["masks"][np.arange(plan.steps), arrays["actions"]].all()  # every action allowed
        week = expert_week(settings, plan.seed)
        again = replay(arrays["sequence"].tolist(), week, line, 50, settings.env_settings)
        assert again.kpis["setup_effort"] == plan.setup_effort and again.kpis["idle_s"] == plan.idle_s
        np.testing.assert_array_equal(again.obs, arrays["obs"])
        np.testing.assert_array_equal(again.rewards, arrays["rewards"])
    data = load_expert(expert)
    assert len(data.actions) == sum(p.steps for p in manifest.plans)
    assert sorted(set(data.seeds.tolist())) == [7, 8]


def test_plans_rerecorded_under_the_deadline_observation_and_mask(expert: Path, tmp_path: Path) -> None:
    settings = EnvSettings(observation="deadlines", mask="deadlines")
    source = read_manifest(expert)
    source.plans = source.plans[:1]  # one week: the deadline features cost ~1 s a week
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / MANIFEST).write_text(source.model_dump_json(), encoding="utf-8")
    (tmp_path / "one" / "s7_b50.npz").write_bytes((expert / "s7_b50.npz").read_bytes())
    env_toml = tmp_path / "env.toml"
    env_toml.write_text('observation = "deadlines"\nmask = "deadlines"\n', encoding="utf-8")
    argv = ["expert", "--replay-from", str(tmp_path / "one"), "--env-settings", str(env_toml)]
    assert main([*argv, "--out", str(tmp_path / "deadlines")]) == 0
    made = read_manifest(tmp_path / "deadlines")
    line = load_line(source.settings.line)
    assert made.settings.env_settings == settings and len(made.plans) == len(source.plans)
    for plan, before in zip(made.plans, source.plans, strict=True):
        found = read_plan(tmp_path / "deadlines" / plan.file)
        assert found is not None
        _, arrays = found
        assert arrays["obs"].shape == (before.steps, Observer.size(len(line.types), settings))
        assert arrays["masks"][np.arange(before.steps), arrays["actions"]].all()
        assert plan.outside_mask == int(arrays["outside"].sum())
        env = LineEnv(line, [expert_week(made.settings, plan.seed)], 50, settings)  # the env's own view
        obs, _ = env.reset(options={"week": 0})
        for i, k in enumerate(arrays["sequence"].tolist()[:40]):
            np.testing.assert_array_equal(arrays["obs"][i], obs)
            if arrays["outside"][i]:
                break
            np.testing.assert_array_equal(arrays["masks"][i], env.action_masks())
            obs, *_ = env.step(k)
    # replaying into a folder that holds expert data would orphan its plans: refused, nothing lost
    kept = (tmp_path / "deadlines" / MANIFEST).read_text(encoding="utf-8")
    assert main([*argv, "--out", str(tmp_path / "deadlines")]) == 2
    assert (tmp_path / "deadlines" / MANIFEST).read_text(encoding="utf-8") == kept


def test_refused_runs_name_their_flag_and_write_nothing(
    expert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["expert", "--replay-from", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "--replay-from" in capsys.readouterr().err and not (tmp_path / "r").exists()
    out = tmp_path / "bc"
    missing = str(tmp_path / "m.zip")
    assert main(["imitate", "--data", str(expert), "--out", str(out), "--init-from", missing]) == 2
    assert "m.zip" in capsys.readouterr().err and not out.exists()
    assert main(["imitate", "--data", str(expert), "--out", str(out), "--dagger-rounds", "101"]) == 2
    assert "--dagger-rounds 101: at most 100" in capsys.readouterr().err and not out.exists()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text('{"settings": 3}', encoding="utf-8")
    assert main(["imitate", "--data", str(tmp_path / "broken"), "--out", str(out)]) == 2
    said = capsys.readouterr().err
    assert "--data" in said and "settings" in said and said.count("\n") == 1


def test_expert_resumes_and_remakes_only_a_broken_file(
    expert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "data"
    copy.mkdir()
    for file in expert.iterdir():
        copy.joinpath(file.name).write_bytes(file.read_bytes())
    capsys.readouterr()
    assert main(["expert", *WEEKS, "--out", str(copy)]) == 0
    assert "2 of 2 plans already made; 0 to make" in capsys.readouterr().err
    before = read_plan(copy / "s8_b50.npz")
    whole = (copy / "s8_b50.npz").read_bytes()
    (copy / "s8_b50.npz").write_bytes(whole[: len(whole) // 2])  # a half-written file is no plan
    assert main(["expert", *WEEKS, "--out", str(copy)]) == 0
    assert "1 of 2 plans already made; 1 to make" in capsys.readouterr().err
    after = read_plan(copy / "s8_b50.npz")
    assert before is not None and after is not None
    for key in ("sequence", "obs", "masks"):  # seeded: the same plan again
        np.testing.assert_array_equal(after[1][key], before[1][key])
    assert json.loads((copy / "manifest.json").read_text())["seeds"] == [7, 8]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["expert", "--weeks", "0"], "expert --weeks 0: must be at least 1"),
        (["expert", "--weeks", "1", "--batch-sizes", "5x"], "--batch-sizes '5x': give integers"),
        (["expert", "--weeks", "1", "--batch-sizes", "100000"], "--batch-sizes 100000: "),
        (["expert", "--weeks", "2", "--first-seed", str(2**32 - 1)], "is above 4294967295"),
        (["expert", "--weeks", "1", "--windows", "-1"], "--windows -1: must be at least 0"),
        (["expert"], "expert: give --weeks N (or --replay-from DIR)"),
        (["expert", "--replay-from", "x", "--weeks", "2"], "--weeks would make plans"),
        (["imitate", "--data", "MISSING"], "--data MISSING: no expert data"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "imitate":
        argv = ["imitate", "--data", str(tmp_path / "MISSING"), "--out", str(tmp_path / "m")]
        said = said.replace("MISSING", str(tmp_path / "MISSING"))
    else:
        argv = [*argv, "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("linetwin: error: ") and said in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "s1000_b50.npz").exists()


def test_expert_refuses_a_folder_made_with_other_settings(
    expert: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["expert", *WEEKS, "--windows", "3", "--out", str(expert)]) == 2
    assert "holds expert data made with windows = 10, not 3" in capsys.readouterr().err


def test_cloning_lowers_the_nll_and_the_model_plans_a_week(
    expert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bc"
    argv = ["imitate", "--data", str(expert), "--out", str(out), "--epochs", "2", "--seed", "1"]
    assert main([*argv, "--dagger-rounds", "1", "--dagger-weeks", "1", "--dagger-plays", "1"]) == 0
    said = capsys.readouterr().out
    assert "imitation: DAgger round 1/1: " in said and "imitation: epoch 4/4" in said
    summary = json.loads((out / "imitation.json").read_text())
    assert summary["train_nll"][2] < summary["train_nll"][0]  # cloning, before DAgger's labels
    assert summary["validation_nll"][-1] < summary["validation_nll"][0]
    assert len(summary["dagger_labels"]) == 1
    assert summary["validation_steps"] > 0 and len(summary["validation_seeds"]) == 1
    policy = RLPolicy.from_file(out / "model.zip")
    assert policy.card.curriculum == "imitation" and policy.card.batch_size == 50
    line = load_line(read_manifest(expert).settings.line)
    week = load_week(read_manifest(expert).settings.template_week, line)
    run = run_planner(Scenario.build(line, week, 50), policy)
    assert run.results.completion == 1.0 or run.results.deadlock  # a whole week played
