"""A FIFO, a device or a folder given where a file is read (issue 14, part 4): one line, exit
code 2, `not a regular file`, never a hang (`--line /some/fifo` waited for a writer forever) or a
MemoryError (`--line /dev/zero`). Every reader asks `twin.files.not_regular` before it opens."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from agent.cli import main
from bridge.errors import RecordingError
from bridge.recording import read_recording
from twin import TwinError, load_line
from twin.files import not_regular


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A reader that blocks on a FIFO fails the test after 20 s instead of hanging the suite."""

    def hung(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("blocked on a FIFO")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("linetwin: error: ") and "Traceback" not in err
    return err.removeprefix("linetwin: error: ")


def test_the_kind_of_a_path() -> None:
    assert not_regular("/dev/zero") == "not a regular file (a device)"
    assert not_regular("/") == "not a regular file (a folder)"
    assert not_regular(__file__) is None
    assert not_regular("/no/such/file") is None  # opening it says 'not found'


CASES = [  # (argv, the file named in the message); {fifo}, {week}: a week whose file is a FIFO
    ("validate --line {fifo}", "{fifo}"),
    ("simulate --policy setup-aware --line {fifo} --out {out}", "{fifo}"),
    ("validate --week {week}", "{week}/week.toml"),
    ("simulate --policy setup-aware --week {plan_week} --out {out}", "{plan_week}/plan.csv"),
    ("simulate --sequence {fifo} --out {out}", "{fifo}"),
    ("evaluate --model {fifo} --out {out}", "{fifo}"),
    ("train --steps 64 --ppo {fifo} --out {out}", "{fifo}"),
    ("replay {fifo} --out {out}", "{fifo}"),
    ("record --out {fifo}", "--out {fifo}"),
]


def _week_with_fifo(config_dir: Path, folder: Path, name: str) -> Path:
    shutil.copytree(config_dir / "weeks" / "w1", folder)
    (folder / name).unlink()
    os.mkfifo(folder / name)
    return folder


@pytest.mark.parametrize(("argv", "named"), CASES, ids=[argv.split(" {")[0] for argv, _ in CASES])
def test_a_fifo_given_as_a_file_is_one_line_not_a_hang(
    argv: str, named: str, fifo: Path, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    places = {"fifo": str(fifo), "out": str(tmp_path / "out")}
    if "{week}" in argv:
        places["week"] = str(_week_with_fifo(config_dir, tmp_path / "week", "week.toml"))
    if "{plan_week}" in argv:
        places["plan_week"] = str(_week_with_fifo(config_dir, tmp_path / "plan_week", "plan.csv"))
    assert main([word.format(**places) for word in argv.split()]) == 2
    assert _one_line(capsys) == f"{named.format(**places)}: not a regular file (a FIFO)"
    assert not (tmp_path / "out").exists()


def test_a_device_as_the_line_is_one_line_not_a_memory_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--line", "/dev/zero"]) == 2
    assert _one_line(capsys) == "/dev/zero: not a regular file (a device)"
    with pytest.raises(TwinError, match="not a regular file"):
        load_line("/dev/zero")


def test_the_readers_below_the_command_line_refuse_it_too(fifo: Path) -> None:
    with pytest.raises(RecordingError, match=r"fifo: not a regular file \(a FIFO\)$"):
        list(read_recording(fifo))
