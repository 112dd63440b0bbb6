"""Real time-series servers for the tests: Debian's `victoria-metrics` (accepts `/api/v2/write`, reads
back through its export API) on a free port, stopped by PID."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from broker import free_port

START_TIMEOUT_S = 20.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, float]]


def _wait_for(process: subprocess.Popen[bytes], url: str) -> None:
    """Until `url` answers; raise if the server exits or does not answer in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S:.0f} s")


def installed(program: str, package: str) -> str:
    """The path of `program`; RuntimeError naming the Debian `package` that has it if there is none."""
    binary = shutil.which(program)
    if binary is None:
        raise RuntimeError(f"{package} is not installed (scripts/test.sh installs it with apt-get)")
    return binary


class VictoriaMetrics:
    """`auth` (user, password): the server demands HTTP basic authentication on its APIs (a writer
    without it gets 401); the health check and `export` work either way."""

    def __init__(self, folder: Path, auth: tuple[str, str] | None = None) -> None:
        self.binary = installed("victoria-metrics", "victoria-metrics")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = auth
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        user, password = self.auth or ("", "")
        auth = [f"-httpAuth.username={user}", f"-httpAuth.password={password}"] if self.auth else []
        self.process = subprocess.Popen(
            [
                self.binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.folder / 'data'}",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
                *auth,
            ],
            stdout=(self.folder / "vm.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_for(self.process, f"{self.url}/health")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # flushes what it holds in memory to disk
            self.process.wait(timeout=30)
        self.process = None

    def export(self, match: str = '{__name__=~"linetwin_.*"}') -> Samples:
        """Every stored sample of the matching series, whatever its time: {(name, labels): {ms: value}}."""
        with urllib.request.urlopen(self._request("/internal/force_flush"), timeout=10):
            pass
        query = urllib.parse.urlencode({"match[]": match, "start": "0", "end": str(4_000_000_000)})
        with urllib.request.urlopen(self._request(f"/api/v1/export?{query}"), timeout=60) as response:
            rows = [json.loads(line) for line in response.read().splitlines() if line.strip()]
        series: Samples = {}
        for row in rows:
            labels = dict(row["metric"])
            name = labels.pop("__name__")
            samples = series.setdefault((name, tuple(sorted(labels.items()))), {})
            for t, v in zip(row["timestamps"], row["values"], strict=True):
                if t in samples:
                    raise AssertionError(f"{name} {labels}: two samples at {t}")
                samples[t] = v
        return series

    def _request(self, path: str) -> urllib.request.Request:
        request = urllib.request.Request(f"{self.url}{path}")
        if self.auth is not None:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        return request


class InfluxDB1:
    """Debian's InfluxDB 1.x: no `/api/v2/write`, but `/write` takes the writer's line protocol and
    `/query` runs InfluxQL, the language of the dashboards."""

    def __init__(self, folder: Path, database: str = "linetwin") -> None:
        self.binary = installed("influxd", "influxdb")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "influxdb.conf"
        self.config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{folder}/meta"\n'
            f'[data]\n  dir = "{folder}/data"\n  wal-dir = "{folder}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[monitor]\n  store-enabled = false\n[logging]\n  level = "error"\n'
            "[ifql]\n  enabled = false\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-config", str(self.config)],
            stdout=(self.folder / "influxd.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_for(self.process, f"{self.url}/ping")
        self.query(f'CREATE DATABASE "{self.database}"', method="POST")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def write(self, lines: list[str]) -> None:
        body = "\n".join(lines).encode()
        url = f"{self.url}/write?db={self.database}&precision=ns"
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=60):
            pass

    def query(self, influxql: str, method: str = "GET") -> list[dict[str, object]]:
        """The statement's series (`name`, `tags`, `columns`, `values`); an error raises."""
        params = urllib.parse.urlencode({"db": self.database, "q": influxql, "epoch": "ms"})
        request = urllib.request.Request(
            f"{self.url}/query?{params}" if method == "GET" else f"{self.url}/query",
            data=params.encode() if method == "POST" else None,
            method=method,
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            result = json.loads(response.read())["results"][0]
        if "error" in result:
            raise AssertionError(f"{influxql}: {result['error']}")
        return list(result.get("series", []))
