"""Command-line values out of range (issue 14, part 4): a seed beyond what numpy takes, budgets and
process counts no machine can run, an empty path, a missing --steps. Each is one line and exit
code 2 at parse time, before anything is written, for every command that has the flag."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from agent.cli.flags import ENVS_MAX, JOBS_MAX, SEED_MAX, STEPS_MAX
from agent.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A command that accepted a value it should refuse (and trains, serves, ...) fails in 20 s."""

    def hung(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("the command ran instead of refusing its flags")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("linetwin: error: ") and "Traceback" not in err
    return err.removeprefix("linetwin: error: ")


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _required(command: argparse.ArgumentParser, tmp_path: Path) -> list[str]:
    """Values for the command's required flags and arguments (parsing stops before they are used)."""
    argv: list[str] = []
    if any("--line" in a.option_strings for a in command._actions):  # a run that got past the
        argv += ["--line", str(tmp_path / "no-line.toml")]  # flags ends at once, never trains
    for action in command._actions:
        if not action.option_strings:
            argv.append(str(tmp_path / "given"))
        elif action.required:
            argv += [action.option_strings[0], "1" if action.dest == "seed" else str(tmp_path / "given")]
    return argv


def _with_flag(flag: str) -> list[str]:
    return [name for name, p in _commands().items() if any(flag in a.option_strings for a in p._actions)]


@pytest.mark.parametrize("command", _with_flag("--seed"))
def test_every_seed_flag_takes_0_to_2_to_the_32_minus_1(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rest = [a for a in _required(_commands()[command], tmp_path)]
    for seed in (str(SEED_MAX + 1), "99999999999999999999"):
        assert main([command, *rest, "--seed", seed]) == 2
        assert _one_line(capsys) == f"{command} --seed {seed}: must be at most {SEED_MAX}"
    assert build_parser().parse_args([command, *rest, "--seed", str(SEED_MAX)]).seed == SEED_MAX
    assert not list(tmp_path.iterdir())


def test_a_study_whose_last_seed_is_beyond_the_range_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study"
    argv = ["study", "--seed", str(SEED_MAX), "--seeds", "2", "--steps", "64", "--out", str(out)]
    assert main(argv) == 2
    assert f"the last run's seed {SEED_MAX + 1} is above {SEED_MAX}" in _one_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("command", ["train", "study"])
def test_a_new_run_without_steps_is_one_line_not_a_pydantic_dump(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main([command, "--out", str(out)]) == 2
    assert _one_line(capsys) == "--steps is required for a new run"
    assert not out.exists()


BOUNDS = [
    ("train", "--steps", STEPS_MAX),
    ("study", "--steps", STEPS_MAX),
    ("train", "--envs", ENVS_MAX),
    ("study", "--envs", ENVS_MAX),
    ("study", "--jobs", JOBS_MAX),
    *[(command, "--workers", JOBS_MAX) for command in _with_flag("--workers")],
]


@pytest.mark.parametrize(("command", "flag", "most"), BOUNDS, ids=[f"{c} {f}" for c, f, _ in BOUNDS])
def test_budgets_and_process_counts_have_a_documented_upper_bound(
    command: str, flag: str, most: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    for value in (str(most + 1), "99999999999999999999999"):
        assert (
            main([command, flag, value, "--out", str(out), *_required(_commands()[command], tmp_path)]) == 2
        )
        assert _one_line(capsys) == f"{command} {flag} {value}: must be at most {most}"
    assert not list(tmp_path.iterdir())
    help_text = _commands()[command].format_help()
    assert f"at most {most}" in " ".join(help_text.split()), help_text


def test_no_flag_of_any_command_takes_an_empty_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty --out wrote into the current folder (simulate: 8 files in the repository)."""
    checked = 0
    for name, command in _commands().items():
        for action in command._actions:
            if action.type is Path:
                pytest.fail(f"{name} {action.option_strings or action.dest} takes any path, even ''")
            if getattr(action.type, "__name__", "") != "path_arg":
                continue
            flag = action.option_strings[0] if action.option_strings else action.dest
            given = [*_required(command, tmp_path)]
            if action.option_strings:
                given += [flag, ""]
            else:
                given[0] = ""
            assert main([name, *given]) == 2, (name, flag)
            assert _one_line(capsys) == f"{name} {flag} '': an empty path; give a file or folder"
            checked += 1
    assert checked >= 30  # --line, --week, --out, --model, ... of every command
    assert not list(tmp_path.iterdir())


def test_an_empty_weeks_list_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", "--steps", "64", "--weeks", ",", "--out", str(out)]) == 2
    assert _one_line(capsys).startswith("--weeks ',': no week folder")
    assert not out.exists()
