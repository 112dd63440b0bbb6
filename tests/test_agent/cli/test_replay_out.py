"""`replay --out`: a recorded week gets the results.json, sequence, schedule and plots `simulate`
writes, with the twin's KPIs; the plots zoom into a day and show blocked time and deadlocks."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import pytest
from matplotlib.figure import Figure
from streams import week_messages

import twin.plots
from agent.cli import main
from agent.planners.policies import make_rule
from bridge.recording import Recorder
from twin import Scenario, load_line, load_week, simulate
from twin.schedule import pas_schedule

ROOT = "plant"
DOWNTIME = """
[[downtime]]
station = "FAS2"
start = 2026-11-24T09:00:00
end = 2026-11-24T11:30:00

[[downtime]]
station = "PAS"
start = 2026-11-25T13:00:00
end = 2026-11-25T15:00:00
"""


@pytest.fixture(scope="module")
def week_dir(tmp_path_factory: pytest.TempPathFactory, config_dir: Path) -> Path:
    """w1 with a FAS and the PAS down for a while."""
    folder = tmp_path_factory.mktemp("week") / "w1-down"
    shutil.copytree(config_dir / "weeks" / "w1", folder)
    with (folder / "week.toml").open("a", encoding="utf-8") as fh:
        fh.write(DOWNTIME)
    return folder


def _record(scenario: Scenario, rule: str, path: Path) -> Path:
    recorder = Recorder(path)
    for message in week_messages(scenario, ROOT, rule):
        recorder.write(message)
    recorder.close()
    return path


@pytest.mark.parametrize("rule", ["setup-aware", "first-fit"])
def test_replay_out_writes_what_simulate_writes_with_the_twins_kpis(
    rule: str, week_dir: Path, config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = load_line(config_dir / "line.toml")
    scenario = Scenario.build(line, load_week(week_dir, line))
    recording = _record(scenario, rule, tmp_path / "week.jsonl")
    out = tmp_path / "replay"
    argv = ["replay", str(recording), "--root", ROOT, "--week", str(week_dir), "--out", str(out)]
    assert main(argv) == 0
    assert f"to {out}" in capsys.readouterr().out
    results, trace = simulate(scenario, make_rule(rule, 0))
    written = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert written["kpis"] == json.loads(json.dumps(results.to_dict()))
    assert written["kpis"]["deadlock"] is (rule == "first-fit")
    with (out / "schedule.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    expected = pas_schedule(scenario, trace)
    assert [(r["type"], r["start"], r["end"], r["buffer_entry"]) for r in rows] == [
        (
            b.type,
            b.start.isoformat(),
            b.end.isoformat() if b.end else "",
            b.buffer_entry.isoformat() if b.buffer_entry else "",
        )
        for b in expected
    ]
    for name in ("sequence.csv", "schedule.xlsx", "buffer.png", "pas_gantt.png", "fas_timeline.png"):
        assert (out / name).stat().st_size > 0


def test_plots_zoom_into_a_day_and_show_blocked_time_and_the_deadlock(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures: dict[str, Figure] = {}
    monkeypatch.setattr(twin.plots, "_save", lambda fig, path: figures.__setitem__(path.name, fig))
    line = load_line(config_dir / "line.toml")
    scenario = Scenario.build(line, load_week(config_dir / "weeks" / "w1", line))
    cal = scenario.calendar
    day = (cal.start.replace(day=24, hour=6), cal.start.replace(day=24, hour=22))
    results, trace = simulate(scenario, make_rule("setup-aware", 0))
    assert results.pas_blocked_s > 0 and not results.deadlock
    twin.plots.plot_run(scenario, trace, results, tmp_path, day)
    timeline = figures["fas_timeline.png"].axes[0]
    assert [t.get_text() for t in timeline.get_yticklabels()][-1] == "PAS"
    lo, hi = timeline.get_xlim()
    assert (lo, hi) == pytest.approx((mdates.date2num(day[0]), mdates.date2num(day[1])))
    blocked = [
        bars
        for bars in timeline.collections
        if len(bars.get_facecolor())
        and tuple(bars.get_facecolor()[0][:3]) == mcolors.to_rgb(twin.plots._BLOCKED)
    ]
    assert len(blocked) == 1  # the PAS row's blocked time, to the working second
    widths = sum(path.get_extents().width for path in blocked[0].get_paths())
    assert widths * 86_400 == pytest.approx(results.pas_blocked_s, abs=1)
    assert "DEADLOCK" not in timeline.get_title()
    # a deadlocked plan says so in every plot: in the title and by a line where it happened
    figures.clear()
    results, trace = simulate(scenario, make_rule("first-fit", 0))
    assert results.deadlock
    twin.plots.plot_run(scenario, trace, results, tmp_path)
    at = twin.plots._Clock(scenario)(results.makespan_s)
    for name in ("buffer.png", "pas_gantt.png", "fas_timeline.png"):
        ax = figures[name].axes[0]
        assert "DEADLOCK at Mon 23.11." in ax.get_title()
        assert any(list(vline.get_xdata()) == [at, at] for vline in ax.get_lines())


def test_zoom_and_out_mistakes_give_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    for argv, says in [
        (["simulate", "--policy", "setup-aware", "--from", "tuesday"], "--from 'tuesday'"),
        (
            ["simulate", "--policy", "setup-aware", "--from", "2026-11-24T10:00", "--to", "2026-11-24T09:00"],
            "--to",
        ),
        (["plan", "--planner", "first-fit", "--from", "2027-01-04"], "outside the week"),
        (["replay", str(tmp_path / "none.jsonl"), "--to-broker", "--out", str(out)], "--to-broker"),
    ]:
        assert main([*argv, "--out", str(out)] if argv[0] != "replay" else argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("linetwin: error: ") and err.count("\n") == 1 and says in err
        assert not out.exists()
