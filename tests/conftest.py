"""Shared fixtures: the embedded reference line and weeks (copied into config/)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import salabim.salabim
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/builders.py, tests/oracle.py

from broker import Mosquitto

from twin import LineConfig, WeekConfig, load_line, load_week

torch.set_num_threads(1)  # small networks: threads only contend (and training runs may share the cores)

_SALABIM_FIND_CALLER = salabim.salabim._get_caller_frame
_SALABIM_FILE = _SALABIM_FIND_CALLER.__code__.co_filename


def _caller_frame() -> FrameType:
    """salabim's `_get_caller_frame` (the first frame outside salabim.py and `<string>`) without its
    two `inspect.stack()` calls, which read the source of every frame: under pytest and hypothesis
    the stack is deep and sys.modules large, and each Environment cost up to 0.2 s (tests/test_twin/
    took 257 s, 36 s with this). The same frame, found by walking f_back; checked below."""
    frame = sys._getframe(1)
    while frame.f_code.co_filename in (_SALABIM_FILE, "<string>") and frame.f_back is not None:
        frame = frame.f_back
    return frame


def _new_environment() -> tuple[object, dict[str, int]]:
    env = salabim.salabim.Environment(
        trace=False, random_seed="", set_numpy_random_seed=False, yieldless=False
    )
    return env._main.frame.f_code, env._source_files


_by_salabim = _new_environment()
salabim.salabim._get_caller_frame = _caller_frame
assert _new_environment() == _by_salabim, "the fast _get_caller_frame finds another frame than salabim's"

CONFIG = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(scope="session")
def config_dir() -> Path:
    return CONFIG


@pytest.fixture(scope="session")
def ref_line() -> LineConfig:
    return load_line(CONFIG / "line.toml")


@pytest.fixture(scope="session")
def ref_week(ref_line: LineConfig) -> WeekConfig:
    return load_week(CONFIG / "weeks" / "w1", ref_line)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto broker on a free port for one test."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; whatever still runs at its end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
