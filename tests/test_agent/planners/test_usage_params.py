"""Library errors name parameters and the command line says them as flags (issue 15, point 4); the
trained agent is `rl` or `rl:MODEL` everywhere, and `ppo`, its old name, is still taken (point 2)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from builders import make_line, make_scenario, make_week
from paths import REPO

from agent.cli import main
from agent.cli.main import build_parser
from agent.errors import UsageError
from agent.planners.cpsat import CpSatSettings, check_cpsat
from agent.planners.registry import DEFAULT_MODEL, RL, PlannerSpec, make_policy, parse_planners

AGENT = REPO / "agent"
LIBRARY = ("planners", "training", "live")
"""The rooms of agent/ that are used without the command line."""


def _usage_errors(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string in the message of a `UsageError(...)` raised in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        called = node.func if isinstance(node, ast.Call) else None
        name = getattr(called, "id", None) or getattr(called, "attr", None)
        if isinstance(node, ast.Call) and name == "UsageError" and node.args:
            texts = [c.value for c in ast.walk(node.args[0]) if isinstance(c, ast.Constant)]
            found += [(node.lineno, t) for t in texts if isinstance(t, str)]
    return found


def test_no_library_error_names_a_flag() -> None:
    flags = [
        f"{path.relative_to(AGENT)}:{line}: {text!r}"
        for room in LIBRARY
        for path in sorted((AGENT / room).rglob("*.py"))
        for line, text in _usage_errors(path)
        if re.search(r"--[a-z]", text)
    ]
    assert flags == []


@pytest.mark.parametrize(
    ("settings", "param", "said"),
    [
        (CpSatSettings(time_limit_s=0), "time_limit", "time_limit 0: must be positive"),
        (CpSatSettings(workers=0), "workers", "workers 0: must be at least 1"),
    ],
)
def test_cpsat_s_settings_are_refused_by_their_parameter(
    settings: CpSatSettings, param: str, said: str
) -> None:
    line = make_line(types=2)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 20)]]))
    with pytest.raises(UsageError) as caught:
        check_cpsat(scenario, settings)
    assert caught.value.param == param and str(caught.value) == said


@pytest.mark.parametrize("name", ["rl", f"rl:{DEFAULT_MODEL}", "ppo", f"ppo:{DEFAULT_MODEL}"])
def test_the_trained_agent_is_rl_and_ppo_is_still_taken_for_it(name: str) -> None:
    from agent.planners.rl import RLPolicy

    policy = make_policy(name, 0)
    assert isinstance(policy, RLPolicy) and policy.name == RL
    assert policy.card == RLPolicy.from_file(DEFAULT_MODEL).card


@pytest.mark.parametrize("command", ["simulate", "serve", "emulate", "replay"])
def test_the_policy_is_read_in_its_one_spelling(command: str) -> None:
    given = ["recording.jsonl"] if command == "replay" else []
    policies = {
        typed: build_parser().parse_args([command, *given, "--policy", typed]).policy
        for typed in ("ppo", "ppo:m.zip", "rl:m.zip", "setup-aware")
    }
    assert policies == {
        "ppo": RL,
        "ppo:m.zip": f"{RL}:m.zip",
        "rl:m.zip": f"{RL}:m.zip",
        "setup-aware": "setup-aware",
    }


def test_ppo_names_the_agent_in_a_list_of_planners_too() -> None:
    specs = parse_planners("ppo:m.zip,ppo,rules")
    assert specs[:2] == [PlannerSpec(RL, Path("m.zip")), PlannerSpec(RL, DEFAULT_MODEL)]
    assert [s.label for s in specs[:2]] == [f"{RL}:m.zip", f"{RL}:{DEFAULT_MODEL}"]


@pytest.mark.parametrize("command", ["simulate", "emulate"])
def test_a_model_named_twice_differently_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    named, other = tmp_path / "a.zip", tmp_path / "b.zip"
    assert main([command, "--policy", f"rl:{named}", "--model", str(other)]) == 2
    assert capsys.readouterr().err == (
        f"linetwin: error: --model {other}: 'rl:{named}' names the model {named} already: name it once\n"
    )
    policy = make_policy(f"rl:{DEFAULT_MODEL}", 0, DEFAULT_MODEL)  # the same model twice is one model
    assert policy.name == RL


def test_the_command_line_loads_no_solver_trainer_or_metrics_client_until_a_command_needs_it() -> None:
    """`linetwin --help` and `validate` start without OR-Tools, torch, SB3 or the InfluxDB client."""
    heavy = "{'ortools', 'torch', 'stable_baselines3', 'influxdb_client', 'gymnasium'}"
    code = f"import sys, agent.cli.main\nprint(sorted({heavy} & set(sys.modules)))\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines() == ["[]"]
