"""PNG plots of a run, in calendar time: buffer fill per type, a PAS Gantt with changeovers, and
the line's timeline (each FAS working per type, idle, down; the PAS producing, blocked, down).
A deadlocked or incomplete run is marked in every title and by a red line where it ended; a
`window` zooms every plot into a span of local time (a day, a shift)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from twin.results import Results, Trace
from twin.scenario import Scenario

_IDLE = "#d62728"
_DOWN = "#7f7f7f"
_BLOCKED = "#ff9f1c"
_DEADLOCK = "#b00000"
Window = tuple[dt.datetime, dt.datetime]
"""A zoom: the plots show only this span of local time (aware datetimes)."""


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    """Type colours that never look like idle (red) or down (grey)."""
    tab10 = plt.get_cmap("tab10")
    palette = [tab10(i) for i in (0, 1, 2, 4, 5, 6, 8, 9)] + [plt.get_cmap("tab20b")(i) for i in range(20)]
    return [palette[i % len(palette)] for i in range(n)]


_DAY_S = 86_400.0
_EPOCH_NUM = float(mdates.datestr2num("1970-01-01"))  # matplotlib date number of the Unix epoch


class _Clock:
    """Working seconds -> matplotlib date numbers in the week's time zone."""

    def __init__(self, scenario: Scenario) -> None:
        self.cal = scenario.calendar
        self.tz = scenario.week.tz

    @staticmethod
    def _num(epoch: float) -> float:
        return _EPOCH_NUM + epoch / _DAY_S

    def __call__(self, work_s: float) -> float:
        return self._num(self.cal.epoch_of(work_s))

    def many(self, work_s: np.ndarray) -> np.ndarray:
        return np.array([self(w) for w in work_s])

    def bars(self, start: float, end: float) -> list[tuple[float, float]]:
        """(x, width) pieces of a working-time span, split where working time pauses."""
        return [(self._num(a), (b - a) / _DAY_S) for a, b in self.cal.pieces(start, end)]

    def off_shift(self, end_s: int) -> list[tuple[float, float]]:
        """(x, width) of the non-working gaps up to working second end_s."""
        pieces = self.cal.pieces(0, max(end_s, 1))
        return [(self._num(b1), (a2 - b1) / _DAY_S) for (_, b1), (a2, _) in pairwise(pieces)]


def _shade_off_shift(ax: Axes, clock: _Clock, end_s: int) -> None:
    for x, w in clock.off_shift(end_s):
        ax.axvspan(x, x + w, color="#ececec", zorder=0, lw=0)


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _calendar_axis(ax: Axes, clock: _Clock, window: Window | None = None) -> None:
    if window is not None and window[1] - window[0] <= dt.timedelta(days=2):
        hours = max(1, round((window[1] - window[0]).total_seconds() / 3600 / 12))
        ax.xaxis.set_major_locator(mdates.HourLocator(interval=hours, tz=clock.tz))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=clock.tz))
    else:
        ax.xaxis.set_major_locator(mdates.DayLocator(tz=clock.tz))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d.%m.", tz=clock.tz))
        ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 14, 22], tz=clock.tz))
    if window is not None:
        ax.set_xlim(mdates.date2num(window[0]), mdates.date2num(window[1]))
    ax.grid(True, which="major", axis="x", alpha=0.3)


def _failure(results: Results) -> str:
    """A second title line for a plan that failed ('DEADLOCK at ...', 'INCOMPLETE'), else ''."""
    if results.deadlock:
        at = dt.datetime.fromisoformat(results.makespan_at).strftime("%a %d.%m. %H:%M")
        return f"\nDEADLOCK at {at}: completion {results.completion:.1%}"
    if results.completion < 1:
        return f"\nINCOMPLETE: completion {results.completion:.1%}"
    return ""


def _mark_end(ax: Axes, clock: _Clock, results: Results) -> None:
    """A deadlock (or the end of an incomplete run) as a red line labelled where it happened."""
    if not results.deadlock and results.completion >= 1:
        return
    x = clock(results.makespan_s)
    ax.axvline(x, color=_DEADLOCK, lw=2, zorder=5)
    label = "DEADLOCK" if results.deadlock else "INCOMPLETE"
    ax.annotate(
        label,
        (x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-3, -3),
        textcoords="offset points",
        ha="right",
        va="top",
        color=_DEADLOCK,
        fontweight="bold",
        fontsize=9,
    )


def stock_series(scenario: Scenario, trace: Trace, end_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Event times and the stock per type after each of them (rows: times, columns: types)."""
    n = len(scenario.types)
    times: list[np.ndarray] = [np.array([0])]
    deltas: list[np.ndarray] = [np.zeros((1, n), dtype=np.int64)]
    deltas[0][0] = scenario.initial_stock
    for seg in trace.segments:
        if seg.count:
            t = seg.start + seg.period * np.arange(seg.count)
            d = np.zeros((seg.count, n), dtype=np.int64)
            d[:, seg.type] = -1
            times.append(t)
            deltas.append(d)
    for b in trace.batches:
        if b.entered_s is not None:
            d = np.zeros((1, n), dtype=np.int64)
            d[0, b.type] = b.quantity
            times.append(np.array([b.entered_s]))
            deltas.append(d)
    all_t = np.concatenate(times)
    order = np.argsort(all_t, kind="stable")
    stock = np.cumsum(np.concatenate(deltas)[order], axis=0)
    t_sorted = all_t[order]
    last = np.r_[t_sorted[1:] != t_sorted[:-1], True]  # the state after each instant
    t_out = np.r_[t_sorted[last], end_s]
    s_out = np.vstack([stock[last], stock[last][-1:]])
    return t_out, s_out


def plot_buffer(
    scenario: Scenario, trace: Trace, results: Results, path: Path, window: Window | None = None
) -> None:
    clock = _Clock(scenario)
    t, stock = stock_series(scenario, trace, results.makespan_s)
    x = clock.many(t)
    fig, ax = plt.subplots(figsize=(14, 5))
    ax.stackplot(x, stock.T, labels=scenario.types, colors=_colours(len(scenario.types)), step="post")
    ax.axhline(scenario.line.buffer.capacity, color="k", lw=1, ls="--", label="capacity")
    ax.set_ylabel("units in buffer")
    ax.set_title(
        f"Buffer fill per type — mean {results.buffer_mean_fill:.0f}, max {results.buffer_max_fill} "
        f"of {scenario.line.buffer.capacity}{_failure(results)}"
    )
    _shade_off_shift(ax, clock, results.makespan_s)
    _mark_end(ax, clock, results)
    _calendar_axis(ax, clock, window)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    _save(fig, path)


def _batch_bars(clock: _Clock, trace: Trace, end_s: int) -> dict[int, list[tuple[float, float]]]:
    """Per type, the (x, width) pieces of its PAS batches from start to finish (or `end_s`)."""
    out: dict[int, list[tuple[float, float]]] = {}
    for b in trace.batches:
        finish = b.finished_s if b.finished_s is not None else end_s
        out.setdefault(b.type, []).extend(clock.bars(b.decided_s, finish))
    return out


def plot_pas(
    scenario: Scenario, trace: Trace, results: Results, path: Path, window: Window | None = None
) -> None:
    clock = _Clock(scenario)
    colours = _colours(len(scenario.types))
    fig, (gantt, effort) = plt.subplots(2, 1, figsize=(14, 5), sharex=True, height_ratios=[1, 1.4])
    end = results.makespan_s
    for k, bars in _batch_bars(clock, trace, end).items():
        gantt.broken_barh(bars, (0, 1), facecolors=colours[k])
    gantt.broken_barh(
        [p for a, e in trace.pas_blocked for p in clock.bars(a, e)], (0, 1), facecolors=_BLOCKED, hatch="//"
    )
    gantt.broken_barh(
        [p for a, e in scenario.downtime[-1] for p in clock.bars(a, e)], (0, 1), facecolors=_DOWN
    )
    changes = [b for b in trace.batches if b.changeover]
    gantt.vlines([clock(b.decided_s) for b in changes], -0.15, 0, colors="k", lw=0.6)
    gantt.set_yticks([0.5], ["PAS"])
    gantt.set_ylim(-0.2, 1.05)
    gantt.set_title(
        f"PAS batches (colour = type, ticks = changeovers, orange = blocked, grey = down) — "
        f"{results.batches} batches, {results.setups} changeovers, blocked "
        f"{results.pas_blocked_s / 3600:.1f} h{_failure(results)}"
    )
    cum = np.cumsum([b.setup_effort for b in trace.batches])
    effort.step([clock(b.decided_s) for b in trace.batches], cum, where="post", color="k")
    effort.set_ylabel("cumulative setup effort")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in colours]
    gantt.legend(handles, scenario.types, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    for axis in (gantt, effort):
        _shade_off_shift(axis, clock, end)
        _mark_end(axis, clock, results)
    _calendar_axis(effort, clock, window)
    _save(fig, path)


def plot_fas(
    scenario: Scenario, trace: Trace, results: Results, path: Path, window: Window | None = None
) -> None:
    """Each FAS (working per type, idle, down) and, below them, the PAS (producing per type,
    blocked, down): where a FAS starves, one sees what the PAS was doing."""
    clock = _Clock(scenario)
    colours = _colours(len(scenario.types))
    stations = scenario.stations
    pas = len(stations)
    fig, ax = plt.subplots(figsize=(14, 1.2 + 0.7 * (len(stations) + 1)))
    runs: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for seg in trace.segments:
        if seg.count:
            runs.setdefault((seg.fas, seg.type), []).extend(clock.bars(seg.start, seg.end))
    for (f, k), bars in runs.items():
        ax.broken_barh(bars, (f, 0.8), facecolors=colours[k])
    waits: dict[int, list[tuple[float, float]]] = {}
    for f, _, start, end in trace.waits:
        if end > start:
            waits.setdefault(f, []).extend(clock.bars(start, end))
    for f, bars in waits.items():
        ax.broken_barh(bars, (f, 0.8), facecolors=_IDLE)
    for k, bars in _batch_bars(clock, trace, results.makespan_s).items():
        ax.broken_barh(bars, (pas, 0.8), facecolors=colours[k])
    blocked = [p for a, e in trace.pas_blocked for p in clock.bars(a, e)]
    ax.broken_barh(blocked, (pas, 0.8), facecolors=_BLOCKED, hatch="//")
    for f in range(len(stations) + 1):
        ax.broken_barh(
            [p for a, e in scenario.downtime[f] for p in clock.bars(a, e)], (f, 0.8), facecolors=_DOWN
        )
    ax.axhline(pas - 0.1, color="k", lw=0.6)
    ax.set_yticks([f + 0.4 for f in range(len(stations) + 1)], [*stations, "PAS"])
    ax.invert_yaxis()
    idle = ", ".join(f"{s} {v / 3600:.1f} h" for s, v in results.idle_s_by_station.items())
    ax.set_title(
        f"Line timeline (colour = type, red = idle, orange = PAS blocked, grey = down) — idle: {idle}; "
        f"PAS blocked {results.pas_blocked_s / 3600:.1f} h{_failure(results)}",
        fontsize=10,
    )
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in [*colours, _IDLE, _BLOCKED, _DOWN]]
    ax.legend(
        handles,
        [*scenario.types, "idle", "blocked", "down"],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
    )
    _shade_off_shift(ax, clock, results.makespan_s)
    _mark_end(ax, clock, results)
    _calendar_axis(ax, clock, window)
    _save(fig, path)


def plot_run(
    scenario: Scenario, trace: Trace, results: Results, out: Path, window: Window | None = None
) -> list[Path]:
    """Write the three plots of a run into `out` (zoomed to `window` if given); return their paths."""
    paths = [out / "buffer.png", out / "pas_gantt.png", out / "fas_timeline.png"]
    for plot, path in zip((plot_buffer, plot_pas, plot_fas), paths, strict=True):
        plot(scenario, trace, results, path, window)
    return paths


def label_points(
    ax: Axes, points: Sequence[tuple[float, float]], labels: Sequence[str], **style: Any
) -> list[Annotation]:
    """Label each point next to it (right of it, or left in the right half of the axes) without
    two labels overlapping: a label that would cover one already placed moves up or down by its own
    height until it is free (points that coincide get a column of labels). Call after the axes'
    limits and the figure's layout are final."""
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    middle = ax.get_window_extent(renderer).x0 + ax.get_window_extent(renderer).width / 2
    placed: list[Bbox] = []
    notes: list[Annotation] = []
    for xy, text in zip(points, labels, strict=True):
        left = ax.transData.transform(xy)[0] > middle
        dx = -6 if left else 6
        note = ax.annotate(
            text, xy, textcoords="offset points", xytext=(dx, 4), ha="right" if left else "left", **style
        )
        box = note.get_window_extent(renderer)
        step = (box.height + 2) * 72 / fig.dpi  # pixels -> points
        for i in range(1, 4 * len(points) + 2):
            if not any(box.overlaps(other) for other in placed):
                break
            shift = (i + 1) // 2 * step * (1 if i % 2 else -1)  # up, down, further up, ...
            note.xyann = (dx, 4 + shift)
            box = note.get_window_extent(renderer)
        placed.append(box)
        notes.append(note)
    return notes


__all__ = ["Window", "label_points", "plot_run", "stock_series"]
