"""The run plots read as calendar time at any span: ticks by the span shown (hours for a run that
deadlocked within hours, a named tick for every day of a week), non-working time shaded in any
window, a note when a window holds nothing, and no matplotlib warning reaches the user."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from builders import make_train_summary
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation, Text

import agent.training.study
import twin.plots
from agent.planners.compare import PlanSettings, comparison_figure, lost_fas_hours, run_planners
from agent.planners.policies import RULES, SequencePolicy, SetupAwarePolicy, make_rule
from agent.planners.registry import PlannerSpec
from agent.planners.run import PlannedRun
from agent.training.summary import TrainSummary
from twin import LineConfig, Scenario, WeekConfig, WeekGenerator, load_calendar, load_week, simulate
from twin.linegen import LineGenerator, LineSpec
from twin.localtime import first_instant
from twin.results import Results, Trace, failure

PLOTS = ("buffer.png", "pas_gantt.png", "fas_timeline.png")
Run = tuple[Scenario, Results, Trace]


@pytest.fixture(scope="module")
def week_run(ref_line: LineConfig, ref_week: WeekConfig) -> Run:
    """w1 planned by the setup-aware rule: complete, ends Fri 27.11. 19:45."""
    scenario = Scenario.build(ref_line, ref_week)
    results, trace = simulate(scenario, SetupAwarePolicy())
    return scenario, results, trace


@pytest.fixture(scope="module")
def short_deadlock(ref_line: LineConfig, config_dir: Path, week_run: Run) -> Run:
    """The issue's example: w1's sequence replayed on w2 at batch size 50 deadlocks Monday afternoon."""
    w1, _, trace = week_run
    scenario = Scenario.build(ref_line, load_week(config_dir / "weeks" / "w2", ref_line), 50)
    results, replayed = simulate(scenario, SequencePolicy(trace.sequence(w1.types), ref_line.types))
    assert results.deadlock and round(results.completion, 3) == 0.063
    return scenario, results, replayed


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Figure]]:
    """The figures plot_run makes, drawn (layout and ticks settled) instead of saved."""
    kept: dict[str, Figure] = {}

    def keep(fig: Figure, path: Path) -> None:
        fig.draw_without_rendering()
        kept[path.name] = fig

    monkeypatch.setattr(twin.plots, "_save", keep)
    yield kept
    for fig in kept.values():
        plt.close(fig)


def tick_labels(ax: Axes) -> list[str]:
    lo, hi = ax.get_xlim()
    return [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]


def shaded_days(ax: Axes) -> float:
    """Days of non-working time shaded in the axes' view."""
    grey = mcolors.to_rgba("#ececec")
    lo, hi = ax.get_xlim()
    return sum(
        max(0.0, min(p.get_x() + p.get_width(), hi) - max(p.get_x(), lo))
        for p in ax.patches
        if isinstance(p, Rectangle) and p.get_facecolor() == grey
    )


def local(scenario: Scenario, text: str) -> dt.datetime:
    return first_instant(dt.datetime.fromisoformat(text), scenario.calendar.tz)


def test_a_run_that_deadlocks_within_hours_reads_in_hours(
    short_deadlock: Run, figures: dict[str, Figure], tmp_path: Path
) -> None:
    scenario, results, trace = short_deadlock
    twin.plots.plot_run(scenario, trace, results, tmp_path)
    clock = twin.plots._Clock(scenario)
    start, end = clock(0), clock(results.makespan_s)
    assert end - start < 1  # Mon 06:00 to 14:25
    for name in PLOTS:
        ax = figures[name].axes[-1]
        labels = tick_labels(ax)
        assert len(labels) >= 5 and len(set(labels)) == len(labels)
        assert all(re.fullmatch(r"Mon \d\d:\d\d", t) for t in labels), labels
        lo, hi = ax.get_xlim()
        assert lo <= start and end <= hi and hi - lo < 1.1 * (end - start)


def test_a_week_names_every_day_from_monday(
    week_run: Run, figures: dict[str, Figure], tmp_path: Path
) -> None:
    scenario, results, trace = week_run
    twin.plots.plot_run(scenario, trace, results, tmp_path)
    last = scenario.calendar.datetime_of(results.makespan_s).date()
    first = scenario.calendar.start.date()
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    assert [d.strftime("%a") for d in days] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    for name in PLOTS:
        assert tick_labels(figures[name].axes[-1]) == [d.strftime("%a %d.%m.") for d in days]


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("2026-11-28T00:00", "2026-11-29T00:00", "the run ended Fri 27.11. 19:45"),  # the issue's
        ("2026-11-23T00:00", "2026-11-23T05:00", "no working time in this span"),
        ("2026-11-24T06:00", "2026-11-24T22:00", None),
        ("2026-11-27T12:00", "2026-11-28T12:00", None),  # the end lies inside: no note
    ],
)
def test_a_window_shades_non_working_time_and_says_when_nothing_happens(
    start: str,
    end: str,
    says: str | None,
    week_run: Run,
    figures: dict[str, Figure],
    tmp_path: Path,
) -> None:
    scenario, results, trace = week_run
    window = (local(scenario, start), local(scenario, end))
    twin.plots.plot_run(scenario, trace, results, tmp_path, window)
    cal = scenario.calendar
    lo, hi = (moment.timestamp() for moment in window)
    off_days = (hi - lo - (cal.work_at(hi) - cal.work_at(lo))) / 86_400  # the calendar's own count
    assert off_days > 0
    for name in PLOTS:
        fig = figures[name]
        assert fig.axes[0].get_xlim() == pytest.approx(
            [twin.plots._Clock._num(m.timestamp()) for m in window]
        )
        for ax in fig.axes:
            assert shaded_days(ax) == pytest.approx(off_days, abs=1e-6)
        notes = [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("Nothing happens")]
        if says is None:
            assert notes == []
        else:
            assert len(notes) == 1 and says in notes[0]


def test_no_matplotlib_warning_reaches_the_user(
    short_deadlock: Run, ref_line: LineConfig, ref_week: WeekConfig, tmp_path: Path
) -> None:
    """The issue's `replay --out --from` on a day after a deadlock leaked 'Tight layout not applied'."""
    w1 = Scenario.build(ref_line, ref_week)
    first_fit, first_fit_trace = simulate(w1, make_rule("first-fit", 0))
    assert first_fit.deadlock
    saturday = (local(w1, "2026-11-28T00:00"), local(w1, "2026-11-29T00:00"))
    scenario, results, trace = short_deadlock
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = twin.plots.plot_run(scenario, trace, results, tmp_path)
        (tmp_path / "zoom").mkdir()
        paths += twin.plots.plot_run(w1, first_fit_trace, first_fit, tmp_path / "zoom", saturday)
    assert all(p.stat().st_size > 0 for p in paths)


def test_compare_labels_lead_to_their_own_points_and_never_overlap(
    ref_line: LineConfig, ref_week: WeekConfig
) -> None:
    """The issue's compare.png: ppo 588, cpsat 655, setup-aware 695 (all without idle time) put
    'cpsat' beside setup-aware's point; each label now has a leader line ending at its own point."""
    scenario = Scenario.build(ref_line, ref_week)
    rules = run_planners(scenario, [PlannerSpec(n) for n in RULES], PlanSettings()).runs
    aware = next(r for r in rules if r.planner == "setup-aware")
    assert aware.results.setup_effort == 695 and aware.results.idle_s == 0

    def with_effort(name: str, effort: float) -> PlannedRun:
        return dataclasses.replace(
            aware, planner=name, results=dataclasses.replace(aware.results, setup_effort=effort)
        )

    runs = [*rules, with_effort("rl (deterministic: best of 21)", 588.0), with_effort("cpsat", 655.0)]
    fig = comparison_figure(runs, None)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    ax = fig.axes[0]
    title = ax.get_title()
    assert "complete plans only" not in title and "did not finish" in title  # red X: deadlocked ones
    point_of = {r.planner: (lost_fas_hours(r.results), r.results.setup_effort) for r in runs}
    pixels = {name: ax.transData.transform(xy) for name, xy in point_of.items()}
    label_of = {
        r.planner: f"{r.planner}: {failure(r.results)}" if failure(r.results) else r.planner for r in runs
    }
    notes = {name: next(t for t in ax.texts if t.get_text() == label) for name, label in label_of.items()}
    assert len(ax.texts) == len(runs)
    boxes = []
    for name, note in notes.items():
        assert isinstance(note, Annotation) and note.arrow_patch is not None
        assert note.xy == pytest.approx(point_of[name])
        arrow = note.arrow_patch
        end = arrow.get_transform().transform(arrow.get_path().vertices)[-1]
        gaps = {other: float(np.hypot(*(end - at))) for other, at in pixels.items()}
        assert gaps[name] <= (twin.plots._MARKER_PT + 1) * fig.dpi / 72  # at its point's marker
        assert min(gaps, key=gaps.__getitem__) == name
        box = Text.get_window_extent(note, renderer)
        assert not any(box.contains(*at) for at in pixels.values())  # covers no point
        boxes.append(box)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    plt.close(fig)


def test_study_labels_of_deadlocked_plans_at_one_batch_size_stay_apart() -> None:
    """Seeds whose best plans deadlock at nearly the same effort: one label each, none on another."""

    def deadlocked(completion: float, effort: float) -> TrainSummary:
        best = {"deadlock": True, "completion": completion, "idle_s": 9_000, "setup_effort": effort}
        return make_train_summary(20, False, {**best, "return": -9.0})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = agent.training.study.figures(
            [deadlocked(c, e) for c, e in ((0.018, 0.0), (0.02, 1.0), (0.05, 2.0), (0.06, 0.0))]
        )
    fig = figs["setup_effort_by_batch_size.png"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    notes = [t for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert sorted(t.get_text() for t in notes) == ["2%", "2%", "5%", "6%"]
    boxes = [Text.get_window_extent(t, renderer) for t in notes]
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(t.arrow_patch is not None for t in notes)
    for f in figs.values():
        plt.close(f)


def test_many_types_and_stations_leave_the_rows_their_height_and_the_title_in_the_figure(
    figures: dict[str, Figure], tmp_path: Path, config_dir: Path
) -> None:
    """At 40x24 the Gantt's legend set its height (the PAS row squashed) and the timeline's title
    listed every station's idle time, past the figure's edges."""
    line, _ = LineGenerator(LineSpec(types=24, fas=8)).generate(1)
    scenario = Scenario.build(
        line, WeekGenerator(line, load_calendar(config_dir / "weeks" / "w1", line)).generate(1)
    )
    results, trace = simulate(scenario, SetupAwarePolicy())
    twin.plots.plot_run(scenario, trace, results, tmp_path)
    pas = figures["pas_gantt.png"]
    gantt, effort = pas.axes
    assert gantt.get_legend() is None and len(pas.legends[0].get_texts()) == 24
    assert gantt.bbox.height / effort.bbox.height == pytest.approx(1 / 1.4, rel=0.1)
    timeline = figures["fas_timeline.png"]
    title = timeline.axes[0].title
    idle = results.idle_s_by_station
    assert f"idle: {sum(idle.values()) / 3600:.1f} h in all of {len(idle)} stations" in title.get_text()
    box, page = title.get_window_extent(), timeline.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1
    for fig in (pas, timeline, figures["buffer.png"]):
        for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]:
            extent = legend.get_window_extent()
            assert extent.y0 >= 0 and extent.y1 <= fig.bbox.y1 and extent.x1 <= fig.bbox.x1


def test_a_title_lists_the_idle_time_of_a_few_stations_and_sums_up_many() -> None:
    few = {"FAS1": 3600, "FAS2": 0, "PAS": 1800}
    assert twin.plots.idle_summary(few) == "FAS1 1.0 h, FAS2 0.0 h, PAS 0.5 h"
    many = {f"FAS{k}": 360 * k for k in range(10)}
    assert (
        twin.plots.idle_summary(many)
        == "4.5 h in all of 10 stations, most FAS9 0.9 h, FAS8 0.8 h, FAS7 0.7 h"
    )
    assert twin.plots.idle_summary(dict.fromkeys(many, 0)) == "0.0 h in all of 10 stations"
