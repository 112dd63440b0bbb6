"""The README's Python examples run as written, from an empty folder, and print what it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[tuple[str, str]]:
    """Each ```python block of the README with the paragraph that follows it."""
    text = README.read_text(encoding="utf-8")
    return [(m[1], m[2]) for m in re.finditer(r"```python\n(.*?)```\n\n(.*?)\n\n", text, re.S)]


def _block(marker: str) -> tuple[str, str]:
    found = [b for b in _blocks() if marker in b[0]]
    assert len(found) == 1, f"one README example with {marker!r}"
    return found[0]


def _run(code: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_the_own_policy_example_runs_anywhere_and_prints_what_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, after = _block("(Policy):")
    monkeypatch.chdir(tmp_path)
    _run(code)
    printed = capsys.readouterr().out.splitlines()
    claimed = re.match(r"It prints `(.*?)` and `(.*?)`", after)
    assert claimed is not None
    assert printed == list(claimed.groups())
    # the written sequence replays in the twin to the same KPIs (the README's next step)
    assert main(["simulate", "--sequence", "stay.csv", "--out", "replay"]) == 0
    kpis = json.loads((tmp_path / "replay" / "results.json").read_text(encoding="utf-8"))["kpis"]
    assert f"idle {kpis['idle_s']} s" in printed[0]
    assert f"setup effort {kpis['setup_effort']:g} in {kpis['batches']} batches" == printed[1]
    assert (tmp_path / "replay" / "schedule.csv").is_file()


def test_the_env_snippet_runs_anywhere_and_steps_with_a_valid_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = _block('gym.make("linetwin/Line-v0")')
    monkeypatch.chdir(tmp_path)
    namespace = _run(code)
    assert namespace["terminated"] is False and namespace["truncated"] is False
    assert "reward_terms" in namespace["info"]  # type: ignore[operator]
