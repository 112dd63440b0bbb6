"""A real Mosquitto broker for the tests: Debian's `mosquitto` on a free port, stopped by PID."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """One broker process with persistence (sessions and retained messages survive a restart)."""

    def __init__(self, folder: Path, max_queued_messages: int = 0, extra: str = "") -> None:
        """`max_queued_messages`: per session (0: unlimited; Mosquitto's own default is 1,000);
        `extra`: more lines of configuration."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/test.sh installs it with apt-get)")
        self.binary = binary
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"  # as root it would switch to `mosquitto` and could not save here
            "persistence true\n"
            f"persistence_location {folder}/\n"
            f"max_queued_messages {max_queued_messages}\n"
            f"log_dest file {folder}/mosquitto.log\n"
            "log_type error\n"
            "log_type warning\n"
            "set_tcp_nodelay true\n"  # no Nagle delay on small messages (40 ms per round trip otherwise)
            + extra
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # what it has to say goes to its log file
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with code {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # saves the persistence database
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, pause_s: float = 0.5) -> None:
        self.stop()
        time.sleep(pause_s)
        self.start()
