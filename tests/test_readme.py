"""The documentation: its Python examples run as written, from an empty folder, and print what it says;
every link between its pages resolves; every `linetwin` command and flag it shows exists."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from agent.cli import main
from agent.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    {ROOT / "README.md", *ROOT.glob("docs/*.md")}
    | {p for p in ROOT.glob("*/README.md") if not p.parent.name.startswith(".") and p.parent.name != "runs"}
)
"""The front page, the manual in docs/ and the README beside each folder."""


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _blocks() -> list[tuple[Path, str, str]]:
    """Each ```python block of the pages with the paragraph that follows it."""
    return [
        (page, m[1], m[2])
        for page in PAGES
        for m in re.finditer(r"```python\n(.*?)```\n\n(.*?)\n\n", _text(page), re.S)
    ]


def _block(marker: str) -> tuple[Path, str, str]:
    found = [b for b in _blocks() if marker in b[1]]
    assert len(found) == 1, f"one example with {marker!r} in the pages"
    return found[0]


def _run(page: Path, code: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(code, str(page), "exec"), namespace)
    return namespace


def test_the_own_policy_example_runs_anywhere_and_prints_what_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page, code, after = _block("(Policy):")
    monkeypatch.chdir(tmp_path)
    _run(page, code)
    printed = capsys.readouterr().out.splitlines()
    claimed = re.match(r"It prints `(.*?)` and `(.*?)`", after)
    assert claimed is not None
    assert printed == list(claimed.groups())
    # the written sequence replays in the twin to the same KPIs (the page's next step)
    assert main(["simulate", "--sequence", "stay.csv", "--out", "replay"]) == 0
    kpis = json.loads((tmp_path / "replay" / "results.json").read_text(encoding="utf-8"))["kpis"]
    assert f"idle {kpis['idle_s']} s" in printed[0]
    assert f"setup effort {kpis['setup_effort']:g} in {kpis['batches']} batches" == printed[1]
    assert (tmp_path / "replay" / "schedule.csv").is_file()


def test_the_env_snippet_runs_anywhere_and_steps_with_a_valid_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, code, _ = _block('gym.make("linetwin/Line-v0")')
    monkeypatch.chdir(tmp_path)
    namespace = _run(page, code)
    assert namespace["terminated"] is False and namespace["truncated"] is False
    assert "reward_terms" in namespace["info"]  # type: ignore[operator]


def _prose(text: str) -> str:
    """The page without its fenced code blocks (a link inside code is no link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them (`## The exact planner (CP-SAT)` ->
    `the-exact-planner-cp-sat`; a repeated heading gets `-1`, `-2`, ...)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#+ (.*)$", _prose(_text(page)), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, anchor = 0, slug
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def _links(page: Path) -> list[str]:
    """Relative link targets of a page (`[text](target)`), web addresses left out."""
    targets = re.findall(r"\]\(([^)\s]+)\)", _prose(_text(page)))
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_of_a_page_resolves_to_a_file_and_a_heading(page: Path) -> None:
    broken = []
    for link in _links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and (target.suffix != ".md" or anchor not in _anchors(target)):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(ROOT)}")
    assert broken == []


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


def _shown(text: str) -> list[str]:
    """Every `linetwin ...` the page shows: lines of its shell blocks and inline code spans."""
    lines = [
        line.split("#")[0]
        for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)
        for line in block.splitlines()
    ]
    spans = re.findall(r"`(linetwin [^`]+)`", _prose(text))
    return [s.strip() for s in [*lines, *spans] if s.strip().startswith("linetwin ")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_a_page_shows_exists(page: Path) -> None:
    commands = _commands()
    unknown = []
    for shown in _shown(_text(page)):
        words = shown.split()
        if words[1].isupper():  # a placeholder: `linetwin COMMAND --help`
            continue
        command = commands.get(words[1])
        if command is None:
            unknown.append(f"{shown}: no command {words[1]!r}")
            continue
        flags = {f for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", shown)} - {"--help"}
        unknown += [f"{shown}: no flag {f}" for f in sorted(flags - set(command._option_string_actions))]
    assert unknown == []


def test_tests_readme_names_every_test_file_once_in_its_folder() -> None:
    """The folders of tests/ mirror the packages; the table names each file in its folder."""
    tests = ROOT / "tests"
    named = re.findall(r"`(test_\w+)`", _text(tests / "README.md"))
    files = sorted(p.stem for p in tests.rglob("test_*.py"))
    assert sorted(named) == files
    rows = re.findall(r"^\| `([\w/]+)/`[^|]*\|(.*)\|$", _text(tests / "README.md"), re.M)
    assert len(rows) == 6  # twin, bridge and the four rooms of agent
    folders = [d.name for d in tests.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))]
    assert all(name.startswith("test_") for name in folders), folders  # `agent/` would shadow the package
    for folder, listed in rows:
        here = sorted(p.stem for p in (tests / folder).glob("test_*.py"))
        assert sorted(re.findall(r"`(test_\w+)`", listed)) == here, folder
