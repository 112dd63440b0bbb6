"""PNG plots of a run, in calendar time: buffer fill per type, a PAS Gantt with changeovers, and
the line's timeline (each FAS working per type, idle, down; the PAS producing, blocked, down).
A deadlocked or incomplete run is marked in every title and by a red line where it ended; a
`window` zooms every plot into a span of local time (a day, a shift)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from twin.localtime import first_instant
from twin.results import Results, Trace, failure
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

    def off_shift(self, view: tuple[float, float]) -> list[tuple[float, float]]:
        """(x, width) of the non-working time within `view` (date numbers), from the calendar's
        working intervals: before, between and after them, whether or not the run got there."""
        lo, hi = ((v - _EPOCH_NUM) * _DAY_S for v in view)
        work = self.cal.pieces(self.cal.work_at(lo), self.cal.work_at(hi))
        edges = [lo, *(t for piece in work for t in piece), hi]
        return [
            (self._num(a), (b - a) / _DAY_S) for a, b in zip(edges[::2], edges[1::2], strict=True) if b > a
        ]


def _shade_off_shift(ax: Axes, clock: _Clock, view: tuple[float, float]) -> None:
    for x, w in clock.off_shift(view):
        ax.axvspan(x, x + w, color="#ececec", zorder=0, lw=0)


def _figure(height: float, rows: int = 1, **kw: Any) -> tuple[Figure, Any]:
    """A figure whose layout is settled when it is drawn (constrained layout: outside legends and
    two-line titles fit at any zoom, without tight_layout's warnings)."""
    return plt.subplots(rows, 1, figsize=(14, height), layout="constrained", **kw)


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


_DAYS_FROM = 2.0
"""A view at least this many days long has a tick per day; a shorter one ticks hours (or minutes)."""
_STEPS_MIN = (5, 10, 15, 30, 60, 120, 180, 240, 360, 720)
"""Tick steps of a short view, in minutes: the smallest that gives at most `_TICKS` ticks."""
_TICKS = 12


def _view(clock: _Clock, results: Results, window: Window | None) -> tuple[float, float]:
    """The x span of a run's plots (date numbers): the window, or the run from its first working
    instant to its end; a run of days starts at its first day's midnight, so every day is labelled."""
    if window is not None:
        return float(mdates.date2num(window[0])), float(mdates.date2num(window[1]))
    start, end = clock(0), clock(results.makespan_s)
    if end - start >= _DAYS_FROM:
        first = clock.cal.datetime_of(0)
        midnight = first_instant(dt.datetime.combine(first.date(), dt.time()), clock.tz)
        return float(mdates.date2num(midnight)), end + 0.01 * (end - start)
    span = max(end - start, 1 / 24)  # an hour at least: a run that stopped at once
    middle = (start + end) / 2
    return middle - 0.52 * span, middle + 0.52 * span


def _midnights(clock: _Clock, view: tuple[float, float]) -> list[float]:
    """Date numbers of the local midnights within the view."""
    first, last = (mdates.num2date(v, clock.tz).date() for v in view)
    days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
    xs = [float(mdates.date2num(first_instant(dt.datetime.combine(d, dt.time()), clock.tz))) for d in days]
    return [x for x in xs if view[0] <= x <= view[1]]


def _calendar_axis(ax: Axes, clock: _Clock, view: tuple[float, float]) -> None:
    """Ticks by the span shown: for two days or more a labelled tick per midnight (and one at the
    view's start when that is hours before the first midnight: every day shown is named), minor
    ticks at 6, 14 and 22 h; else hours or minutes, at most `_TICKS` of them."""
    days = view[1] - view[0]
    if days >= _DAYS_FROM:
        ticks = _midnights(clock, view)[:: max(1, round(days / 14))]
        if not ticks or ticks[0] - view[0] > 0.25:
            ticks.insert(0, view[0])
        moments = [mdates.num2date(x, clock.tz) for x in ticks]
        labels = [m.strftime("%a %d.%m." if m.time() == dt.time() else "%a %d.%m. %H:%M") for m in moments]
        ax.set_xticks(ticks, labels)
        ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 14, 22], tz=clock.tz))
    else:
        step = next((m for m in _STEPS_MIN if days * 1440 / m <= _TICKS), _STEPS_MIN[-1])
        locator = (
            mdates.MinuteLocator(byminute=range(0, 60, step), tz=clock.tz)
            if step < 60
            else mdates.HourLocator(byhour=range(0, 24, step // 60), tz=clock.tz)
        )
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=clock.tz))
    ax.set_xlim(*view)
    ax.grid(True, which="major", axis="x", alpha=0.3)


def _say_if_empty(ax: Axes, clock: _Clock, results: Results, window: Window | None) -> None:
    """A zoom on a time where nothing happens says why, in the middle of the plot: the run had
    ended (or deadlocked) before it, or the line has no working time in it."""
    if window is None:
        return
    lo, hi = window[0].timestamp(), window[1].timestamp()
    end = clock.cal.epoch_of(results.makespan_s)
    if lo >= end:
        when = dt.datetime.fromtimestamp(end, clock.tz).strftime("%a %d.%m. %H:%M")
        text = f"Nothing happens here: the run {'deadlocked' if results.deadlock else 'ended'} {when}"
    elif clock.cal.work_at(hi) == clock.cal.work_at(lo):
        text = "Nothing happens here: no working time in this span (grey: non-working time)"
    else:
        return
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        bbox={"facecolor": "white", "edgecolor": "#999999", "boxstyle": "round"},
        zorder=6,
    )


def _failure(results: Results) -> str:
    """A second title line for a plan that failed ('DEADLOCK at ...', 'INCOMPLETE'), else ''."""
    if results.deadlock:
        at = dt.datetime.fromisoformat(results.makespan_at).strftime("%a %d.%m. %H:%M")
        return f"\nDEADLOCK at {at}: completion {results.completion:.1%}"
    if results.completion < 1:
        return f"\nINCOMPLETE: completion {results.completion:.1%}"
    return ""


def _mark_end(ax: Axes, clock: _Clock, results: Results, view: tuple[float, float]) -> None:
    """A deadlock (or the end of an incomplete run) within the view as a red line labelled where it
    happened (the label on the side with room)."""
    x = clock(results.makespan_s)
    if failure(results) is None or not view[0] <= x <= view[1]:
        return
    ax.axvline(x, color=_DEADLOCK, lw=2, zorder=5)
    right = x - view[0] > 0.15 * (view[1] - view[0])  # room on the left of the line
    note = ax.annotate(
        "DEADLOCK" if results.deadlock else "INCOMPLETE",
        (x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-3 if right else 3, -3),
        textcoords="offset points",
        ha="right" if right else "left",
        va="top",
        color=_DEADLOCK,
        fontweight="bold",
        fontsize=9,
    )
    note.set_in_layout(False)


def _calendar(axes: Sequence[Axes], clock: _Clock, results: Results, window: Window | None) -> None:
    """The calendar of a run's plot (axes sharing x): the view, non-working time shaded, the end
    of a failed run, the ticks, and a note in the first axes when nothing happens in the window."""
    view = _view(clock, results, window)
    for ax in axes:
        _shade_off_shift(ax, clock, view)
        _mark_end(ax, clock, results, view)
        _calendar_axis(ax, clock, view)
    _say_if_empty(axes[0], clock, results, window)


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
    if len(t) > STOCK_POINTS:  # the state at evenly spaced instants: the last change at or before each
        at = np.linspace(t[0], t[-1], STOCK_POINTS)
        rows = np.searchsorted(t, at, side="right") - 1
        t, stock = at, stock[rows]
    x = clock.many(t)
    fig, ax = _figure(5)
    ax.stackplot(x, stock.T, labels=scenario.types, colors=_colours(len(scenario.types)), step="post")
    ax.axhline(scenario.line.buffer.capacity, color="k", lw=1, ls="--", label="capacity")
    ax.set_ylabel("units in buffer")
    ax.set_title(
        f"Buffer fill per type — mean {results.buffer_mean_fill:.0f}, max {results.buffer_max_fill} "
        f"of {scenario.line.buffer.capacity}{_failure(results)}"
    )
    _calendar([ax], clock, results, window)
    handles, labels = ax.get_legend_handles_labels()
    _legend(fig, ax, handles, labels, fits=_rows(5))
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
    fig, (gantt, effort) = _figure(5, 2, sharex=True, height_ratios=[1, 1.4])
    end = results.makespan_s
    for k, bars in _batch_bars(clock, trace, end).items():
        gantt.broken_barh(bars, (0, 1), facecolors=colours[k])
    blocked = [p for a, e in trace.pas_blocked for p in clock.bars(a, e)]
    gantt.broken_barh(blocked, (0, 1), facecolors=_BLOCKED, hatch=_hatch(blocked))
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
    _legend(fig, gantt, handles, scenario.types, fits=GANTT_ROWS, rows=_rows(5))
    _calendar([gantt, effort], clock, results, window)
    _save(fig, path)


IDLE_LISTED = 6
"""Most stations whose idle time a timeline's title lists: a larger line's title says the total and
the stations idle longest."""
GANTT_ROWS = 10
"""Legend entries that fit beside the PAS Gantt's bar row; more go beside the figure, in columns."""
_ROW_IN = 0.175
"""Height of a legend entry at font size 8 (inches)."""


def _rows(height: float) -> int:
    """Legend entries that fit a figure `height` inches high."""
    return max(1, int((height - 0.4) / _ROW_IN))


def _legend(
    fig: Figure, ax: Axes, handles: Sequence[Any], labels: Sequence[str], fits: int, rows: int = 0
) -> None:
    """The legend beside `ax` when its `fits` entries do, else beside the figure in columns of at
    most `rows` (default `fits`) entries: its height never sets the plot's."""
    if len(labels) <= fits:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        return
    columns = -(-len(labels) // (rows or fits))
    fig.legend(handles, labels, loc="outside right upper", ncols=columns, fontsize=8)


def idle_summary(idle_s: Mapping[str, float]) -> str:
    """Each station's idle hours; of more than `IDLE_LISTED` stations, the total and the three
    idle longest ('12.5 h in all, most FAS7 2.1 h, FAS3 1.9 h, FAS12 1.0 h')."""
    if len(idle_s) <= IDLE_LISTED:
        return ", ".join(f"{s} {v / 3600:.1f} h" for s, v in idle_s.items())
    worst = sorted((s for s in idle_s if idle_s[s] > 0), key=lambda s: -idle_s[s])[:3]
    most = ", ".join(f"{s} {idle_s[s] / 3600:.1f} h" for s in worst)
    total = f"{sum(idle_s.values()) / 3600:.1f} h in all of {len(idle_s)} stations"
    return f"{total}, most {most}" if most else total


HATCHED_PIECES = 500
"""Most pieces of the blocked series that are hatched: Agg hatches each piece (a plant-size week
blocks thousands of times: plain orange there, seconds saved)."""
STOCK_POINTS = 5_000
"""Most instants the buffer plot draws: a plant-size week changes its stock at some 200,000; above
this the plot shows the stock at `STOCK_POINTS` evenly spaced working instants (several per pixel
column of the 14-inch plot)."""


def _hatch(pieces: Sequence[object]) -> str | None:
    return "//" if len(pieces) <= HATCHED_PIECES else None


Bars = Sequence[tuple[float, float, float]]
"""Pieces of one series of a timeline: (x, width, row), each drawn 0.8 high from its row."""


def _series(ax: Axes, bars: Bars, colour: Any, **style: Any) -> None:
    """One series of bars (a type on every station, idle, down) as one artist, whatever its rows."""
    if not bars:
        return
    x, w, y = np.asarray(bars, dtype=float).T
    corners = np.stack([np.c_[x, y], np.c_[x, y + 0.8], np.c_[x + w, y + 0.8], np.c_[x + w, y]], axis=1)
    ax.add_collection(PolyCollection(list(corners), facecolors=colour, **style), autolim=True)


def plot_fas(
    scenario: Scenario, trace: Trace, results: Results, path: Path, window: Window | None = None
) -> None:
    """Each FAS (working per type, idle, down) and, below them, the PAS (producing per type,
    blocked, down): where a FAS starves, one sees what the PAS was doing. One artist per series
    (a type, idle, blocked, down), not per station or batch: a plant-size line draws in a second."""
    clock = _Clock(scenario)
    colours = _colours(len(scenario.types))
    stations = scenario.stations
    pas = len(stations)
    height = 1.2 + 0.7 * (len(stations) + 1)
    fig, ax = _figure(height)
    by_type: dict[int, list[tuple[float, float, float]]] = {}
    for seg in trace.segments:
        if seg.count:
            pieces = clock.bars(seg.start, seg.end)
            by_type.setdefault(seg.type, []).extend((x, w, seg.fas) for x, w in pieces)
    for k, pas_bars in _batch_bars(clock, trace, results.makespan_s).items():
        by_type.setdefault(k, []).extend((x, w, pas) for x, w in pas_bars)
    for k, bars in by_type.items():
        _series(ax, bars, colours[k])
    waits = [(x, w, f) for f, _, start, end in trace.waits if end > start for x, w in clock.bars(start, end)]
    _series(ax, waits, _IDLE)
    blocked = [(x, w, pas) for a, e in trace.pas_blocked for x, w in clock.bars(a, e)]
    _series(ax, blocked, _BLOCKED, hatch=_hatch(blocked))
    down = [(x, w, f) for f in range(pas + 1) for a, e in scenario.downtime[f] for x, w in clock.bars(a, e)]
    _series(ax, down, _DOWN)
    ax.set_ylim(-0.2, pas + 1)
    ax.axhline(pas - 0.1, color="k", lw=0.6)
    ax.set_yticks([f + 0.4 for f in range(len(stations) + 1)], [*stations, "PAS"])
    ax.invert_yaxis()
    ax.set_title(
        f"Line timeline (colour = type, red = idle, orange = PAS blocked, grey = down) — idle: "
        f"{idle_summary(results.idle_s_by_station)}; PAS blocked {results.pas_blocked_s / 3600:.1f} h"
        f"{_failure(results)}",
        fontsize=10,
    )
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in [*colours, _IDLE, _BLOCKED, _DOWN]]
    _legend(fig, ax, handles, [*scenario.types, "idle", "blocked", "down"], fits=_rows(height))
    _calendar([ax], clock, results, window)
    _save(fig, path)


def plot_run(
    scenario: Scenario, trace: Trace, results: Results, out: Path, window: Window | None = None
) -> list[Path]:
    """Write the three plots of a run into `out` (zoomed to `window` if given); return their paths."""
    paths = [out / "buffer.png", out / "pas_gantt.png", out / "fas_timeline.png"]
    for plot, path in zip((plot_buffer, plot_pas, plot_fas), paths, strict=True):
        plot(scenario, trace, results, path, window)
    return paths


_MARKER_PT = 5.0
"""Half the size of a labelled point's marker (points): labels keep clear of it, leader lines end at it."""


def _text_box(note: Annotation, renderer: Any) -> Bbox:
    """The box of an annotation's text alone (its window extent includes its leader line)."""
    note.update_positions(renderer)
    return Text.get_window_extent(note, renderer)


def label_points(
    ax: Axes, points: Sequence[tuple[float, float]], labels: Sequence[str], **style: Any
) -> list[Annotation]:
    """Label each point with a leader line to it: next to it (right of it, or left in the right
    half of the axes) where the label covers no other label, no point and not the legend; else
    further out and up or down by its own height until it is free (points that coincide get a
    column of labels), so a label beside someone else's point still shows whose it is. Call after
    the axes' limits, legend and the figure's layout are final."""
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    middle = frame.x0 + frame.width / 2
    r = _MARKER_PT * fig.dpi / 72
    marks = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in ax.transData.transform(points)]
    legend = ax.get_legend()
    if legend is not None:
        marks.append(legend.get_window_extent(renderer))
    placed: list[Bbox] = []
    notes: list[Annotation] = []
    for xy, text in zip(points, labels, strict=True):
        side = -1 if ax.transData.transform(xy)[0] > middle else 1
        note = ax.annotate(
            text,
            xy,
            textcoords="offset points",
            xytext=(side * 2 * _MARKER_PT, _MARKER_PT),
            ha="right" if side < 0 else "left",
            va="bottom",
            arrowprops={"arrowstyle": "-", "lw": 0.6, "shrinkA": 1, "shrinkB": _MARKER_PT},
            **style,
        )
        if note.arrow_patch is not None:
            note.arrow_patch.set_color(note.get_color())
        box = _text_box(note, renderer)
        step = (box.height + 2) * 72 / fig.dpi  # pixels -> points
        for i in range(1, 4 * len(points) + 2):
            if not any(box.overlaps(other) for other in [*placed, *marks]):
                break
            shift = (i + 1) // 2 * step * (1 if i % 2 else -1)  # up, down, further up, ...
            note.xyann = (side * 5 * _MARKER_PT, _MARKER_PT + shift)
            box = _text_box(note, renderer)
        placed.append(box)
        notes.append(note)
    return notes


__all__ = ["Window", "label_points", "plot_run", "stock_series"]
