"""Benchmark of start-up: wall time of a fresh interpreter that reads files only (`import
twin.config`), of `linetwin --help` and of `linetwin validate` (the reference line and w1).

    python benchmarks/bench_startup.py [--runs 7] [--repo DIR]

`--repo` times another checkout (e.g. an older commit from `git archive`), run from its folder so
its own packages load. Prints the median and the range of `--runs` runs, and which heavy
libraries each command loaded (none should, for these three).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("salabim", "gymnasium", "ortools", "torch", "stable_baselines3", "influxdb_client")
CASES = {
    "import twin.config": "import twin.config",
    "linetwin --help": "from agent.cli import main; main(['--help'])",
    "linetwin validate": "from agent.cli import main; main(['validate'])",
}


def timed(code: str, repo: Path) -> tuple[float, list[str]]:
    """Wall seconds of `python -c code` in `repo`, and the heavy libraries it had loaded."""
    probe = f"\nimport sys as _s; print('LOADED', *sorted(set({HEAVY!r}) & set(_s.modules)), file=_s.stderr)"
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", code + probe], cwd=repo, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    loaded = next(line for line in run.stderr.splitlines() if line.startswith("LOADED")).split()[1:]
    return wall, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    print(f"start-up of {args.repo}, median of {args.runs} runs (range):")
    for name, code in CASES.items():
        runs = [timed(code, args.repo) for _ in range(args.runs)]
        walls = [wall for wall, _ in runs]
        loaded = ", ".join(runs[-1][1]) or "none"
        print(
            f"  {name:<20} {statistics.median(walls):.2f} s ({min(walls):.2f}-{max(walls):.2f}); "
            f"heavy libraries loaded: {loaded}"
        )


if __name__ == "__main__":
    main()
