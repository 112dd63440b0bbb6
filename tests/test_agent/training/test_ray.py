"""The heavy jobs on a real two-node Ray cluster on this machine (tests/ray_cluster.py): a sweep,
expert data and a study give what they give here for the same seeds; a worker killed mid-task is
retried and loses nothing (expert data: the same files; a study run: it resumes from its last
checkpoint); an unreachable --ray-address is one line."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from builders import ALWAYS, make_line, make_week
from ray_cluster import RayCluster, free_port

import agent
from agent import distributed
from agent.cli import main
from agent.distributed import TASK
from agent.training.expert import read_manifest, read_plan
from agent.training.study import _train_one, run_folder
from agent.training.summary import TrainSummary, read_summary
from agent.training.train import TrainConfig
from twin import write_week
from twin.config import load_json_model

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]

TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A head and a worker node of one CPU each, for the whole session (started when first asked)."""
    nodes = RayCluster(tmp_path_factory.mktemp("ray"))
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def _kill_first_task(cluster: RayCluster, ready: Path | None = None, stamped: Path | None = None) -> int:
    """SIGKILL the first worker process running one of our tasks (once `ready` exists); returns
    `stamped`'s modification time then (0 without it)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        workers = cluster.workers(TASK)
        if workers and (ready is None or ready.exists()):
            stamp = stamped.stat().st_mtime_ns if stamped is not None else 0
            os.kill(workers[0], signal.SIGKILL)
            return stamp
        time.sleep(0.02)
    raise AssertionError("no task of ours ran on the cluster")


@pytest.fixture(scope="module")
def silent() -> Iterator[int]:
    """The port of a TCP listener on every interface that accepts connections and says nothing
    (as a service that is not Ray's would to Ray's request)."""
    server = socket.create_server(("", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:{port}", "127.0.0.1:{silent}", "ray://127.0.0.1:{silent}", "nowhere.invalid:6379", "6379"],
)
def test_an_unreachable_ray_address_is_one_line(
    address: str,
    silent: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(distributed, "ANSWER_TIMEOUT_S", 1.0)
    quiet = "{silent}" in address
    address = address.format(port=free_port(), silent=silent)
    argv = ["sweep", "--batch-sizes", "50", "--planner", "setup-aware", "--out", str(tmp_path / "s")]
    start = time.monotonic()
    assert main([*argv, "--ray-address", address]) == 2
    assert time.monotonic() - start < distributed.CONNECT_TIMEOUT_S
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"linetwin: error: --ray-address {address}: ")
    if quiet:
        assert "no gRPC answer within 1 s" in err[0]


def test_a_cluster_that_wants_a_token_says_so_and_takes_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray 2.60's `ray start --head` turns token authentication on: a driver without
    RAY_AUTH_MODE=token hears that in one line (Ray said "no cluster" after 20 s), with it it plans."""
    head = RayCluster(tmp_path / "head", workers=0, token=True)
    (tmp_path / "head").mkdir()
    address = head.start()
    try:
        argv = ["sweep", *_tiny_line(tmp_path), "--batch-sizes", "20", "--planner", "setup-aware"]
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
        assert main([*argv, "--out", str(tmp_path / "no"), "--ray-address", address]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "wants a token: set RAY_AUTH_MODE=token" in err[0], err
        # a fresh process, as a user's command is (Ray keeps the token it read in its process)
        out = ["--out", str(tmp_path / "yes"), "--ray-address", address]
        yes = [sys.executable, "-m", "agent.cli", *argv, *out]
        env = {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(Path(agent.__file__).parents[1])}
        done = subprocess.run(yes, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert main([*argv, "--out", str(tmp_path / "here")]) == 0
        assert _rows(tmp_path / "yes") == _rows(tmp_path / "here") != []
    finally:
        head.stop()


def _tiny_line(folder: Path) -> list[str]:
    line = make_line(
        types=3, fas_units=(3,), capacity=60, batch_size=20, matrix=[[0, 2, 5], [4, 0, 1], [3, 6, 0]]
    )
    week = make_week(line, [[(0, 30), (1, 20), (2, 30), (0, 10), (1, 20), (2, 10)]], stock=[10, 0, 0])
    data = line.model_dump(mode="json", exclude_none=True)
    data["calendar"] = ALWAYS
    (folder / "line.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    write_week(folder / "week", week, line.types)
    return ["--line", str(folder / "line.toml"), "--week", str(folder / "week")]


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "sweep.csv").open(encoding="utf-8") as fh:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(fh)]


def test_a_sweep_on_the_cluster_plans_what_it_plans_here(cluster: RayCluster, tmp_path: Path) -> None:
    argv = [
        "sweep",
        *_tiny_line(tmp_path),
        "--batch-sizes",
        "10,20,30",
        "--planner",
        "setup-aware,first-fit,best",
    ]
    argv += ["--windows", "2", "--time-limit", "5"]
    assert main([*argv, "--out", str(tmp_path / "here")]) == 0
    assert main([*argv, "--out", str(tmp_path / "ray"), "--ray-address", cluster.address]) == 0
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "here") and len(_rows(tmp_path / "here")) == 9


EXPERT = ["expert", "--weeks", "2", "--first-seed", "7", "--batch-sizes", "50", "--time-limit", "20"]


def test_expert_data_on_the_cluster_equals_here_with_a_worker_killed(
    cluster: RayCluster, tmp_path: Path
) -> None:
    here, there = tmp_path / "here", tmp_path / "ray"
    assert main([*EXPERT, "--jobs", "1", "--out", str(here)]) == 0
    killer = _start_killer(cluster)
    assert main([*EXPERT, "--ray-address", cluster.address, "--out", str(there)]) == 0
    assert killer.result() is not None  # a worker did die mid-plan: Ray ran its task again
    made, again = read_manifest(here), read_manifest(there)
    assert [(p.seed, p.batch_size, p.setup_effort, p.idle_s, p.file) for p in again.plans] == [
        (p.seed, p.batch_size, p.setup_effort, p.idle_s, p.file) for p in made.plans
    ]
    for plan in made.plans:
        one, two = read_plan(here / plan.file), read_plan(there / plan.file)
        assert one is not None and two is not None
        for key, array in one[1].items():
            np.testing.assert_array_equal(two[1][key], array)


def _start_killer(cluster: RayCluster, *files: Path) -> Future[int]:
    """`_kill_first_task` in a thread, while the job runs here."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(_kill_first_task, cluster, *files)
    pool.shutdown(wait=False)
    return future


def _study(tmp_path: Path, out: Path, steps: int, *more: str) -> list[str]:
    ppo = tmp_path / "ppo.toml"
    ppo.write_text("n_steps = 64\nbatch_size = 64\nn_epochs = 1\n", encoding="utf-8")
    return [
        "study",
        "--steps",
        str(steps),
        "--ppo",
        str(ppo),
        "--checkpoint-steps",
        "64",
        "--plan-time-limit",
        "0",
        "--progress-every",
        "0",
        "--out",
        str(out),
        *more,
    ]


def _kept(summary: TrainSummary) -> tuple[object, ...]:
    best = summary.evaluation.best
    return summary.steps_done, summary.episodes, best.setup_effort, best.idle_s, best.episode_return


def test_a_study_on_the_cluster_trains_what_it_trains_here(cluster: RayCluster, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    argv = _study(tmp_path, out, 128, "--batch-sizes", "50", "--seeds", "1")
    assert main([*argv, "--ray-address", cluster.address]) == 0
    for size in (50,):
        there = read_summary(run_folder(out, size, 0))
        config = load_json_model(run_folder(out, size, 0) / "config.json", TrainConfig)
        here = _train_one(config.model_copy(update={"out": tmp_path / f"here{size}"}))  # the same run here
        assert there is not None and _kept(there) == _kept(here)


def test_a_study_run_whose_worker_is_killed_resumes_from_its_checkpoint(
    cluster: RayCluster, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    first = run_folder(out, 50, 0) / "checkpoints" / "model_64.zip"
    killer = _start_killer(cluster, first.with_name("state_64.json"), first)  # the checkpoint is whole
    argv = _study(tmp_path, out, 256, "--batch-sizes", "50", "--seeds", "1")
    assert main([*argv, "--ray-address", cluster.address]) == 0
    stamp = killer.result()
    summary = read_summary(run_folder(out, 50, 0))
    assert summary is not None and summary.steps_done == 256  # the whole budget, nothing lost
    checkpoints = sorted(p.name for p in first.parent.glob("model_*.zip"))
    assert checkpoints == ["model_128.zip", "model_192.zip", "model_256.zip", "model_64.zip"]
    assert first.stat().st_mtime_ns == stamp  # resumed from it: a run started over would rewrite it
