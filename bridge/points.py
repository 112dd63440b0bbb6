"""The points of a mirrored line: the state of the buffer, each FAS, the PAS and the KPIs at every
instant, plus decisions, forecasts, shadow agreement and alerts as they happen.

An instant's state is written once it is final: when the next event moves the line's time on (the
state before that event, so a FAS that finished a unit and started the next at one instant is
`working` there), and when the line has been quiet for `QUIET_S` by receipt time, so the last state
before a pause is not held back. The PAS finishing a batch between two events is written at the
second it finished. One point per series and instant, only when it changed; a series never has two
points at one timestamp: if an event for an instant already written arrives later, the series it
changes follow 1 ms after their last point.

Timestamps are the line's calendar time, so a live, a replayed and a simulated week look the same.
The state and shadow points are a function of the applied events and their receipt times: replaying
a journal regenerates them exactly, at the same timestamps. An adopted plan's points are not: they
are written once, when the service adopts it."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.messages import PasPlanMsg
from bridge.metrics import (
    ALERT,
    BUFFER,
    DECISION,
    FAS,
    FAS_STATE_CODES,
    FORECAST,
    KPI,
    PAS,
    PAS_STATE_CODES,
    PLAN,
    PLAN_BATCH,
    PLAN_NEXT,
    SHADOW,
    STOCK,
    FieldValue,
    Metric,
    line_protocol,
    series_of,
)
from twin import Decider, Line, Scenario
from twin.emission import EventTap
from twin.mirror import Mirror

QUIET_S = 2.0
"""A line that sent nothing for this long (wall time between receipts) has its current instant
written, although a later event could still carry the same timestamp."""
QUIET_MARGIN_S = 0.25
"""While waiting, quiet is declared this much later: a message is stamped in the network thread a
moment before it is queued, and it must not arrive stamped inside the quiet time already written."""
RESTATE_NS = 1_000_000
"""A series' point for an instant it already has goes this much later (1 ms: what every store keeps)."""


Series = tuple[Metric, dict[str, str], dict[str, FieldValue]]


@dataclass(frozen=True, slots=True)
class _Instant:
    """The line's state at one instant, taken before an event could change it."""

    at_s: int
    series: list[Series]
    pas: dict[str, FieldValue]
    pas_left_s: int | None
    """Work left on the PAS batch while it is producing (it is blocked once this has passed)."""


class LinePoints:
    """Collects line protocol for one line; `drain()` hands over what is ready.

    Feed it `before(at_s, heard_at)` and `after_event(heard_at)` around every event the mirror
    applies; a rejected event needs nothing. `heard_at` is the receipt time (epoch seconds) of a
    message from the line, None in simulations."""

    def __init__(self, line: str, mirror: Mirror, arm: str = "") -> None:
        """`arm`: the `mode` tag of the buffer and KPI points (`active`, `shadow`; none if empty), so
        dashboards compare the lines the agent steers with those it only advises."""
        self.line = line
        self.arm = {"mode": arm} if arm else {}
        self.mirror = mirror
        self._calendar = mirror.scenario.calendar
        self._instant = mirror.now_s
        self._pending: _Instant | None = None
        self._heard: float | None = None
        self._quiet_written = False
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, FieldValue]] = {}
        self._series_ns: dict[str, int] = {}
        self._ready: list[str] = []

    def ns(self, work_s: float) -> int:
        """Calendar time of a working second, in nanoseconds since the epoch."""
        return round(self._calendar.epoch_of(work_s) * 1e9)

    # -- state around events -----------------------------------------------------------------
    def before(self, at_s: int, heard_at: float | None = None) -> None:
        """Call before the mirror applies an event stamped `at_s` (received at `heard_at`)."""
        moves = at_s > self.mirror.now_s
        self._pending = self._take() if moves or self._breaks_quiet(heard_at) else None

    def after_event(self, heard_at: float | None = None) -> None:
        """Call after the mirror applied the event: the instant it left, or the one that was quiet
        before it, is final."""
        pending, self._pending = self._pending, None
        moved = self.mirror.now_s != self._instant
        if pending is not None and (moved or self._breaks_quiet(heard_at)):
            self._write(pending)
        self._instant = self.mirror.now_s
        if heard_at is not None:
            self._heard = heard_at
            self._quiet_written = False

    def _breaks_quiet(self, heard_at: float | None) -> bool:
        """A message received after the line was quiet long enough (and that was not written yet)."""
        return (
            heard_at is not None
            and self._heard is not None
            and not self._quiet_written
            and heard_at - self._heard > QUIET_S
        )

    # -- quiet -------------------------------------------------------------------------------
    def quiet_in(self, now: float) -> float | None:
        """Seconds until `quiet(now)` writes the current instant (0: now); None if it will not."""
        if self._heard is None or self._quiet_written:
            return None
        return max(0.0, self._heard + QUIET_S + QUIET_MARGIN_S - now)

    def quiet(self, now: float) -> bool:
        """Call while no message waits: write the current instant if the line has been quiet long
        enough (once per quiet period). True if it did."""
        if self.quiet_in(now) != 0.0:
            return False
        self._write(self._take())
        self._quiet_written = True
        return True

    def close(self) -> None:
        """Write the current instant (the end of a simulated or replayed week)."""
        self._write(self._take())

    # -- one instant -------------------------------------------------------------------------
    def _take(self) -> _Instant:
        m = self.mirror
        scenario = m.scenario
        fill = sum(m.stock)
        capacity = scenario.line.buffer.capacity
        series: list[Series] = [
            (BUFFER, self.arm, {"fill": fill, "capacity": capacity, "fill_ratio": fill / capacity})
        ]
        series += [(STOCK, {"type": name}, {"units": m.stock[k]}) for k, name in enumerate(scenario.types)]
        kpis = m.kpis()
        for f, station in enumerate(scenario.stations):
            state = m.fas_state(f)
            order, _ = m.position(f)
            fields: dict[str, FieldValue] = {
                "state": state,
                "state_code": FAS_STATE_CODES[state],
                "idle_s": kpis.idle_s_by_station[station],
                "units": m.fas[f].consumed,
                "position": min(order + 1, len(scenario.plans[f])),
            }
            series.append((FAS, {"station": station}, fields))
        pas = m.pas
        state = m.pas_state()
        pas_fields: dict[str, FieldValue] = {
            "state": state,
            "state_code": PAS_STATE_CODES[state],
            "batch_type": scenario.types[pas.batch.type] if pas.batch else "",
            "batches": pas.started,
            "setups": pas.setups,
            "setup_effort": float(pas.setup_effort),
        }
        series.append((PAS, {}, pas_fields))
        kpi_fields: dict[str, FieldValue] = {
            "idle_s": kpis.idle_s,
            "setup_effort": float(kpis.setup_effort),
            "setups": kpis.setups,
            "completion": kpis.completion,
        }
        series.append((KPI, self.arm, kpi_fields))
        left = pas.batch.work.remaining(m.now_s) if pas.batch is not None and state == "producing" else None
        return _Instant(m.now_s, series, pas_fields, left)

    def _write(self, instant: _Instant) -> None:
        time_ns = self.ns(instant.at_s)
        for metric, tags, fields in instant.series:
            self._changed(time_ns, metric, tags, fields)
        if instant.pas_left_s is not None and instant.at_s + instant.pas_left_s < self.mirror.now_s:
            blocked: dict[str, FieldValue] = {
                **instant.pas,
                "state": "blocked",
                "state_code": PAS_STATE_CODES["blocked"],
            }
            self._changed(self.ns(instant.at_s + instant.pas_left_s), PAS, {}, blocked)

    def _changed(
        self, time_ns: int, metric: Metric, tags: dict[str, str], fields: dict[str, FieldValue]
    ) -> None:
        key = (metric.name, tuple(sorted(tags.items())))
        if self._last.get(key) == fields:
            return
        self._last[key] = fields
        self._point(metric, tags, fields, time_ns)

    def _point(
        self, metric: Metric, tags: dict[str, str], fields: dict[str, FieldValue], time_ns: int
    ) -> None:
        """Queue one point; later than the series' last one (by `RESTATE_NS` if it had this instant)."""
        tags = {"line": self.line, **tags}
        text = line_protocol(metric, tags, fields, time_ns)
        series = series_of(text)
        last = self._series_ns.get(series)
        if last is not None and time_ns <= last:
            time_ns = last + RESTATE_NS
            text = line_protocol(metric, tags, fields, time_ns)
        self._series_ns[series] = time_ns
        self._ready.append(text)

    # -- what the agent does -----------------------------------------------------------------
    def decision(
        self, at_s: int, type_: str, policy: str, mode: str, seq: int, quantity: int, latency_ms: float | None
    ) -> None:
        """One decision; `latency_ms` None when it is not known (a decision regenerated from a journal)."""
        tags = {"type": type_, "policy": policy, "mode": mode}
        fields: dict[str, FieldValue] = {"decision_seq": seq, "quantity": quantity}
        if latency_ms is not None:
            fields["latency_ms"] = latency_ms
        self._point(DECISION, tags, fields, self.ns(at_s))

    def forecast(self, at_s: int, policy: str, idle_s: int, setup_effort: float) -> None:
        kpis = self.mirror.kpis()
        fields: dict[str, FieldValue] = {
            "idle_s": idle_s,
            "setup_effort": float(setup_effort),
            "idle_s_end": kpis.idle_s + idle_s,
            "setup_effort_end": float(kpis.setup_effort + setup_effort),
        }
        self._point(FORECAST, {"policy": policy}, fields, self.ns(at_s))

    def shadow(self, at_s: int, agreement: float | None, compared: int, agreed: int) -> None:
        fields: dict[str, FieldValue] = {"compared": compared, "agreed": agreed}
        if agreement is not None:
            fields["agreement"] = agreement
        self._point(SHADOW, {}, fields, self.ns(at_s))

    def alert(self, at_s: int, station: str, type_: str, starve_at_s: int) -> None:
        when = self._calendar.datetime_of(starve_at_s).isoformat()
        fields: dict[str, FieldValue] = {
            "starve_in_s": starve_at_s - at_s,
            "text": f"{station} runs out of {type_} at {when}",
        }
        self._point(ALERT, {"station": station, "type": type_}, fields, self.ns(at_s))

    def plan(self, plan: PasPlanMsg) -> None:
        """An adopted timed PAS plan at its `ts`: its provenance, gain and forecast (with the week's
        totals it implies, the plan's `week`: the KPIs when planning began plus the forecast from
        then), and its first `PLAN_NEXT` batches, one
        series per rank (`next` 01, 02, …); a rank beyond its last batch gets only the revision, so
        no rank keeps a batch of an earlier plan."""
        time_ns = self.ns(self._calendar.work_at_datetime(plan.ts))
        made = plan.provenance
        fields: dict[str, FieldValue] = {
            "revision": plan.revision,
            "plan_revision": plan.plan_revision,
            "from_position": made.from_position,
            "batches": len(plan.batches),
            "source": made.source,
            "reason": made.reason,
            "stopped": made.stopped,
            "planning_s": float(made.planning_s),
        }
        known = {"bound": made.bound, "gap": made.gap, "gain": plan.gain}
        fields |= {key: float(value) for key, value in known.items() if value is not None}
        if plan.forecast is not None:
            fields |= {"idle_s": plan.forecast.idle_s, "setup_effort": float(plan.forecast.setup_effort)}
        if plan.week is not None:
            fields |= {"idle_s_end": plan.week.idle_s, "setup_effort_end": float(plan.week.setup_effort)}
        self._point(PLAN, {"planner": made.planner}, fields, time_ns)
        self._plan_batches(plan, 0, time_ns)

    def plan_batches(self, plan: PasPlanMsg, at_s: int, dispatched: int) -> None:
        """The plan's next `PLAN_NEXT` batches after position `dispatched` (a dispatch at working
        second `at_s` moved the plan on: the panel of the next batches follows it)."""
        self._plan_batches(plan, dispatched, self.ns(at_s))

    def _plan_batches(self, plan: PasPlanMsg, dispatched: int, time_ns: int) -> None:
        upcoming = [b for b in plan.batches if b.position > dispatched]
        for rank in range(1, PLAN_NEXT + 1):
            batch_fields: dict[str, FieldValue] = {"revision": plan.revision}
            if rank <= len(upcoming):
                b = upcoming[rank - 1]
                batch_fields |= {
                    "position": b.position,
                    "type": b.type,
                    "quantity": b.quantity,
                    "start": b.start.isoformat(),
                    "end": "" if b.end is None else b.end.isoformat(),
                    "changeover": b.changeover,
                }
            self._point(PLAN_BATCH, {"next": f"{rank:0{len(str(PLAN_NEXT))}d}"}, batch_fields, time_ns)

    def mark(self) -> int:
        """Where the points queued from now on begin (see `take`)."""
        return len(self._ready)

    def take(self, mark: int) -> list[str]:
        """Remove and return the points queued since `mark()` (ones a journal cannot regenerate, for
        a writer to keep)."""
        taken = self._ready[mark:]
        del self._ready[mark:]
        return taken

    def drain(self) -> list[str]:
        ready, self._ready = self._ready, []
        return ready


def simulated_points(scenario: Scenario, decide: Decider, policy: str, line: str, arm: str = "") -> list[str]:
    """The points of a simulated week, as the mirror of its events would write them live (`arm`:
    their `mode` tag, as `serve` writes it; none by default, as `replay` writes them)."""
    run = Line(scenario)
    tap = EventTap(run)
    mirror = Mirror(scenario)
    points = LinePoints(line, mirror, arm)
    request = run.start()
    while True:
        for event in tap.collect():
            points.before(event.at_s)
            mirror.apply(event)
            points.after_event()
        if request is None:
            break
        decision = decide(request)
        type_ = scenario.types[decision.type]
        quantity = decision.quantity or scenario.batch_size
        points.decision(request.time_s, type_, policy, "simulated", request.index + 1, quantity, 0.0)
        request = run.decide(decision)
    points.close()
    return points.drain()
