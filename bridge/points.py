"""The points of a mirrored line: after every accepted event the state of the buffer, each FAS, the
PAS and the KPIs; plus decisions, forecasts, shadow agreement and alerts as they happen.

One point per series and instant: the values a series has when the line's time moves on (events
of one instant are coalesced), and only when they changed, so a week is about 60,000 points.
Timestamps are the line's calendar time, so a live, a replayed and a simulated week look the same."""

from __future__ import annotations

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
    SHADOW,
    STOCK,
    FieldValue,
    Metric,
    line_protocol,
)
from twin import Decider, Line, Scenario
from twin.emission import EventTap
from twin.mirror import Mirror

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


class LinePoints:
    """Collects line protocol for one line; `drain()` hands over what is ready."""

    def __init__(self, line: str, mirror: Mirror) -> None:
        self.line = line
        self.mirror = mirror
        self._calendar = mirror.scenario.calendar
        self._time_s: int | None = None
        self._last: dict[SeriesKey, dict[str, FieldValue]] = {}
        self._ready: list[str] = []

    def ns(self, work_s: float) -> int:
        """Calendar time of a working second, in nanoseconds since the epoch."""
        return round(self._calendar.epoch_of(work_s) * 1e9)

    # -- state after events ------------------------------------------------------------------
    def after_event(self) -> None:
        """Call after each accepted event: the state of the previous instant is final once time
        moves on."""
        now = self.mirror.now_s
        if self._time_s is not None and now != self._time_s:
            self._snapshot(self._time_s)
        self._time_s = now

    def close(self) -> None:
        """The state at the last instant (call at the end of a week or before a pause)."""
        if self._time_s is not None:
            self._snapshot(self._time_s)

    def _snapshot(self, at_s: int) -> None:
        m = self.mirror
        scenario = m.scenario
        time_ns = self.ns(at_s)
        fill = sum(m.stock)
        capacity = scenario.line.buffer.capacity
        self._changed(
            time_ns, BUFFER, {}, {"fill": fill, "capacity": capacity, "fill_ratio": fill / capacity}
        )
        for k, name in enumerate(scenario.types):
            self._changed(time_ns, STOCK, {"type": name}, {"units": m.stock[k]})
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
            self._changed(time_ns, FAS, {"station": station}, fields)
        pas = m.pas
        state = m.pas_state()
        self._changed(
            time_ns,
            PAS,
            {},
            {
                "state": state,
                "state_code": PAS_STATE_CODES[state],
                "batch_type": scenario.types[pas.batch.type] if pas.batch else "",
                "batches": pas.started,
                "setups": pas.setups,
                "setup_effort": float(pas.setup_effort),
            },
        )
        kpi_fields: dict[str, FieldValue] = {
            "idle_s": kpis.idle_s,
            "setup_effort": float(kpis.setup_effort),
            "setups": kpis.setups,
            "completion": kpis.completion,
        }
        self._changed(time_ns, KPI, {}, kpi_fields)

    def _changed(
        self, time_ns: int, metric: Metric, tags: dict[str, str], fields: dict[str, FieldValue]
    ) -> None:
        tags = {"line": self.line, **tags}
        key = (metric.name, tuple(sorted(tags.items())))
        if self._last.get(key) == fields:
            return
        self._last[key] = fields
        self._ready.append(line_protocol(metric, tags, fields, time_ns))

    # -- what the agent does -----------------------------------------------------------------
    def decision(
        self, at_s: int, type_: str, policy: str, mode: str, seq: int, quantity: int, latency_ms: float
    ) -> None:
        tags = {"line": self.line, "type": type_, "policy": policy, "mode": mode}
        fields = {"decision_seq": seq, "quantity": quantity, "latency_ms": latency_ms}
        self._ready.append(line_protocol(DECISION, tags, fields, self.ns(at_s)))

    def forecast(self, at_s: int, policy: str, idle_s: int, setup_effort: float) -> None:
        kpis = self.mirror.kpis()
        fields: dict[str, FieldValue] = {
            "idle_s": idle_s,
            "setup_effort": float(setup_effort),
            "idle_s_end": kpis.idle_s + idle_s,
            "setup_effort_end": float(kpis.setup_effort + setup_effort),
        }
        self._ready.append(
            line_protocol(FORECAST, {"line": self.line, "policy": policy}, fields, self.ns(at_s))
        )

    def shadow(self, at_s: int, agreement: float | None, compared: int, agreed: int) -> None:
        fields: dict[str, FieldValue] = {"compared": compared, "agreed": agreed}
        if agreement is not None:
            fields["agreement"] = agreement
        self._ready.append(line_protocol(SHADOW, {"line": self.line}, fields, self.ns(at_s)))

    def alert(self, at_s: int, station: str, type_: str, starve_at_s: int) -> None:
        tags = {"line": self.line, "station": station, "type": type_}
        when = self._calendar.datetime_of(starve_at_s).isoformat()
        fields: dict[str, FieldValue] = {
            "starve_in_s": starve_at_s - at_s,
            "text": f"{station} runs out of {type_} at {when}",
        }
        self._ready.append(line_protocol(ALERT, tags, fields, self.ns(at_s)))

    def drain(self) -> list[str]:
        ready, self._ready = self._ready, []
        return ready


def simulated_points(scenario: Scenario, decide: Decider, policy: str, line: str) -> list[str]:
    """The points of a simulated week, as the mirror of its events would write them live."""
    run = Line(scenario)
    tap = EventTap(run)
    mirror = Mirror(scenario)
    points = LinePoints(line, mirror)
    request = run.start()
    while True:
        for event in tap.collect():
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
