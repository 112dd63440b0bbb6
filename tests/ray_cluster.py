"""A real two-node Ray cluster on this machine for the tests and benchmarks: `ray start --head`
plus `ray start --address ...`, one CPU each, with logs in a folder of its own and Ray's session
files in a short temporary folder (Ray's socket paths must stay under 108 bytes, which pytest's
temporary folders under xdist exceed); stopped by the PIDs of its own processes (never `ray stop`,
which stops every Ray on the machine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayCluster:
    """A head node and `workers` worker nodes of `cpus` CPUs each, their logs under `folder`.
    Token authentication is off unless `token` (then as Ray 2.60's `ray start` has it by default:
    on), so that a driver connects with its address alone."""

    def __init__(self, folder: Path, cpus: int = 1, workers: int = 1, token: bool = False) -> None:
        ray = shutil.which("ray")
        if ray is None:
            raise RuntimeError("the ray command is not installed (scripts/setup.sh installs Ray)")
        self.ray = ray
        self.folder = folder
        self.cpus = cpus
        self.address = ""
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.worker_nodes = workers
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        if token:  # Ray 2.60's default: `ray start` turns token authentication on
            self.env.pop("RAY_AUTH_MODE", None)
        else:
            self.env["RAY_AUTH_MODE"] = "disabled"
        self.temp = Path(tempfile.mkdtemp(prefix="ray-"))  # short: /tmp/ray-XXXXXXXX

    def _node(self, name: str, *flags: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        common = ["--num-cpus", str(self.cpus), "--block", "--disable-usage-stats"]
        self.nodes.append(
            subprocess.Popen(
                [self.ray, "start", *flags, *common],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C of the tests reaches it through stop(), not twice
            )
        )

    def start(self) -> str:
        """Both nodes up; returns the head's address (HOST:PORT) for `ray.init`/--ray-address."""
        temp = self.temp
        self._node(
            "head",
            "--head",
            f"--port={free_port()}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--temp-dir={temp}",
        )
        found = temp / "ray_current_cluster"  # `ray start` writes the head's address there
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (found.is_file() and found.read_text().strip()):
            self._alive(deadline)
        self.address = found.read_text().strip()
        names = ["head"] + [f"worker{i}" for i in range(self.worker_nodes)]
        for name in names[1:]:
            self._node(name, f"--address={self.address}")
        while not all(self._started(name) for name in names):
            self._alive(deadline)
        return self.address

    def _alive(self, deadline: float) -> None:
        for node in self.nodes:
            if node.poll() is not None:
                self.stop()
                raise RuntimeError(f"a Ray node exited with code {node.returncode}: see {self.folder}")
        if time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"the Ray cluster did not start in {START_TIMEOUT_S:.0f} s: see {self.folder}")
        time.sleep(0.2)

    def _started(self, name: str) -> bool:
        """The node's `ray start` said so: its raylet is registered with the head."""
        return b"Ray runtime started" in (self.folder / f"{name}.log").read_bytes()

    def pids(self) -> list[int]:
        """Every process of this cluster: those whose command line names its session folder (the
        nodes' `ray start`, raylets, GCS, agents) and their children (the worker processes)."""
        own = {pid for pid in _all_pids() if str(self.temp) in _cmdline(pid)}
        return sorted(own | {pid for pid in _all_pids() if _parent(pid) in own})

    def workers(self, title: str) -> list[int]:
        """PIDs of this cluster's worker processes whose title is `ray::<title>` (running a task)."""
        return [pid for pid in self.pids() if _cmdline(pid).startswith(f"ray::{title}")]

    def stop(self) -> None:
        """SIGTERM to each node's `ray start --block` (it stops its node's processes), then
        SIGKILL to any process of the cluster still there."""
        for node in self.nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
