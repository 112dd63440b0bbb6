"""Shared fixtures: the embedded reference line and weeks (copied into config/)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/builders.py, tests/oracle.py

from broker import Mosquitto

from twin import LineConfig, WeekConfig, load_line, load_week

torch.set_num_threads(1)  # small networks: threads only contend (and training runs may share the cores)

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
