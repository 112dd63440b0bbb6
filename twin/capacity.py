"""A week's demand against the line's capacity, from the files alone (nothing is simulated): what
`linetwin validate` prints.

Load of a station = the working time its share of the week needs / the working time it has (the
week's working time minus its downtime). A FAS needs its planned units times its unit time; the PAS
needs the batches that cover the demand beyond the initial stock (whole batches) times the batch
size times its unit time, plus the setup time of one changeover per type it must build (at least,
whatever the order; the type it is set up for at the week start, or the first with none, is free).
Over 100 % the week cannot be done in its own working time (work continues in the next working
time as overtime); under it, a plan may still leave FAS idle."""

from __future__ import annotations

from dataclasses import dataclass

from twin.config import PAS_STATION
from twin.results import down_s
from twin.scenario import Scenario


@dataclass(frozen=True)
class StationLoad:
    station: str
    unit_time_s: int
    units: int
    """Units the station must build in the week."""
    needed_s: int
    available_s: int

    @property
    def load(self) -> float:
        return self.needed_s / self.available_s if self.available_s else float("inf")

    @property
    def buildable_units(self) -> int:
        """Units the station can build in its available time."""
        return self.available_s // self.unit_time_s


@dataclass(frozen=True)
class TypeDemand:
    type: str
    planned: int
    """Units of the type in all FAS plans."""
    stock: int
    to_build: int
    batches: int


@dataclass(frozen=True)
class WeekLoad:
    work_s: int
    """Working seconds of the week itself (overtime excluded)."""
    horizon_s: int
    """Working seconds up to the end of the overtime allowed after the week."""
    demand: list[TypeDemand]
    stations: list[StationLoad]
    """The FAS in line order, then the PAS."""

    def report(self) -> str:
        """Working time, the demand table and the load table, as `linetwin validate` prints them."""
        h = 3600
        lines = [
            f"working time: {self.work_s / h:.1f} h in the week, {self.horizon_s / h:.1f} h with the "
            "overtime allowed after it",
            "",
            "demand (units)",
        ]
        rows = [["type", "planned", "stock", "to build", "batches"]]
        rows += [[d.type, str(d.planned), str(d.stock), str(d.to_build), str(d.batches)] for d in self.demand]
        fields = ("planned", "stock", "to_build", "batches")
        rows.append(["total", *(str(sum(getattr(d, f) for d in self.demand)) for f in fields)])
        lines += [_columns(rows), "", "load per station (working time needed / available in the week)"]
        rows = [["station", "unit s", "units", "needed h", "available h", "load", "buildable units"]]
        rows += [
            [
                st.station,
                str(st.unit_time_s),
                str(st.units),
                f"{st.needed_s / h:.1f}",
                f"{st.available_s / h:.1f}",
                f"{st.load:.0%}",
                str(st.buildable_units),
            ]
            for st in self.stations
        ]
        lines.append(_columns(rows))
        over = [f"{st.station} {st.load:.0%}" for st in self.stations if st.load > 1]
        if over:
            lines += ["", f"over capacity: {', '.join(over)}: the week needs overtime"]
        return "\n".join(lines)


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def week_load(scenario: Scenario) -> WeekLoad:
    cal = scenario.calendar
    work = cal.week_work_s
    b = scenario.batch_size
    planned = [0] * len(scenario.types)
    for plan in scenario.plans:
        for k, q in plan:
            planned[k] += q
    demand = []
    for k, name in enumerate(scenario.types):
        to_build = max(0, planned[k] - scenario.initial_stock[k])
        demand.append(TypeDemand(name, planned[k], scenario.initial_stock[k], to_build, -(-to_build // b)))
    stations = [
        StationLoad(
            station,
            unit,
            units := sum(q for _, q in plan),
            units * unit,
            work - down_s(scenario.downtime[f], work),
        )
        for f, (station, unit, plan) in enumerate(
            zip(scenario.stations, scenario.fas_unit_s, scenario.plans, strict=True)
        )
    ]
    pas = scenario.line.pas
    built = [d for d in demand if d.batches]
    names = {d.type for d in built}
    first_free = bool(built) and (not scenario.week.initial_setup or scenario.week.initial_setup in names)
    changeovers = len(built) - first_free
    units = sum(d.batches for d in built) * b
    stations.append(
        StationLoad(
            PAS_STATION,
            pas.unit_time_s,
            units,
            units * pas.unit_time_s + changeovers * pas.setup_time_s,
            work - down_s(scenario.downtime[-1], work),
        )
    )
    return WeekLoad(work, cal.horizon_work_s, demand, stations)
