"""Typed, validated inputs: the line (`line.toml`), a week (`week.toml` + `plan.csv`) and a PAS
sequence (`sequence.csv`), exactly as `contract.md` defines them.

Files become pydantic models here, at the boundary; everything inside the twin trusts them.
Every error is a `ConfigError` naming the file, the line or key, and the bad value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.errors import ConfigError

CONFIG_ENV_VAR = "LINETWIN_CONFIG"
"""Environment variable naming the folder of embedded defaults (line, weeks, env, curricula)."""

PAS_STATION = "PAS"
"""Name of the pre-assembly station in downtime entries and events."""

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CLOCK = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def _parse_days(spec: str) -> frozenset[int]:
    """`"Mon-Fri"`, `"Sat"`, `"Mon,Wed"` or `"Fri-Mon"` (wrapping) -> weekday numbers (Mon = 0)."""
    days: set[int] = set()
    for part in spec.split(","):
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            raise ValueError(f"days must be like 'Mon-Fri', 'Sat' or 'Mon,Wed', got {spec!r}")
        first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        span = (last - first) % 7
        days.update((first + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _clock_seconds(value: str) -> int:
    match = _CLOCK.match(value)
    if not match:
        raise ValueError(f"time must be HH:MM or HH:MM:SS, got {value!r}")
    h, m, s = int(match[1]), int(match[2]), int(match[3] or 0)
    if h > 24 or m > 59 or s > 59 or (h == 24 and (m or s)):
        raise ValueError(f"no such time of day: {value!r}")
    return h * 3600 + m * 60 + s


class TimeWindow(_Strict):
    """A daily window of the calendar, e.g. a shift or a break."""

    days: str = Field(description="weekdays it applies to: 'Mon-Fri', 'Sat', 'Mon,Wed'")
    start: str = Field(description="local start time HH:MM")
    end: str = Field(description="local end time HH:MM; an end before the start crosses midnight")

    @field_validator("days")
    @classmethod
    def _days_valid(cls, v: str) -> str:
        _parse_days(v)
        return v

    @field_validator("start", "end")
    @classmethod
    def _time_valid(cls, v: str) -> str:
        _clock_seconds(v)
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError(f"window {self.start}-{self.end} is empty")
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return _parse_days(self.days)

    @property
    def start_s(self) -> int:
        """Start, seconds after local midnight."""
        return _clock_seconds(self.start)

    @property
    def end_s(self) -> int:
        """End, seconds after the local midnight of the start day (> start_s)."""
        end = _clock_seconds(self.end)
        return end if end > self.start_s else end + 86_400


class CalendarConfig(_Strict):
    """Working time of the line: shifts minus breaks, on every week, minus holidays."""

    shifts: list[TimeWindow] = Field(min_length=1, description="working windows")
    breaks: list[TimeWindow] = Field(default_factory=list, description="pauses inside shifts")


class PasConfig(_Strict):
    """The pre-assembly station."""

    unit_time_s: Annotated[int, Field(gt=0)] = Field(description="working seconds per pre-product")
    batch_size: Annotated[int, Field(gt=0)] = Field(description="default units per batch")
    setup_time_s: Annotated[int, Field(ge=0)] = Field(0, description="working seconds added per changeover")


class BufferConfig(_Strict):
    """The central buffer between the stages."""

    capacity: Annotated[int, Field(gt=0)] = Field(description="pre-products of all types together")


class FasConfig(_Strict):
    """One final assembly station."""

    id: str = Field(min_length=1, description="station name, used in plans and topics")
    unit_time_s: Annotated[int, Field(gt=0)] = Field(description="working seconds per unit")

    @field_validator("id")
    @classmethod
    def _not_pas(cls, v: str) -> str:
        if v == PAS_STATION:
            raise ValueError(f"{PAS_STATION!r} is reserved for the pre-assembly station")
        return v


class SetupEffortConfig(_Strict):
    """Sequence-dependent setup effort of the PAS."""

    matrix: list[list[Annotated[float, Field(ge=0)]]] = Field(
        description="matrix[i][j]: effort of switching from types[i] to types[j]"
    )


class LineConfig(_Strict):
    """A production line: `line.toml`."""

    name: str = Field(min_length=1)
    types: list[str] = Field(min_length=1, description="pre-product types, in order")
    calendar: CalendarConfig
    pas: PasConfig
    buffer: BufferConfig
    fas: list[FasConfig] = Field(min_length=1)
    setup_effort: SetupEffortConfig

    @field_validator("types")
    @classmethod
    def _unique_types(cls, v: list[str]) -> list[str]:
        dupes = sorted({t for t in v if v.count(t) > 1})
        if dupes:
            raise ValueError(f"duplicate types {dupes}")
        if any(not t for t in v):
            raise ValueError("a type name is empty")
        return v

    @field_validator("fas")
    @classmethod
    def _unique_stations(cls, v: list[FasConfig]) -> list[FasConfig]:
        ids = [f.id for f in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate station ids {dupes}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> LineConfig:
        n = len(self.types)
        rows = self.setup_effort.matrix
        if len(rows) != n or any(len(r) != n for r in rows):
            shape = f"{len(rows)}x" + "/".join(str(len(r)) for r in rows)
            raise ValueError(
                f"setup_effort.matrix must be {n}x{n} (one row and column per type), got {shape}"
            )
        if self.pas.batch_size > self.buffer.capacity:
            raise ValueError(
                f"pas.batch_size {self.pas.batch_size} exceeds buffer.capacity {self.buffer.capacity}"
            )
        return self

    @property
    def station_ids(self) -> list[str]:
        return [f.id for f in self.fas]

    def type_index(self, name: str) -> int:
        return self.types.index(name)


class Downtime(_Strict):
    """A planned stop of one station, in local time of the week."""

    station: str
    start: dt.datetime
    end: dt.datetime

    @model_validator(mode="after")
    def _ordered(self) -> Downtime:
        if self.end <= self.start:
            raise ValueError(f"downtime end {self.end} is not after its start {self.start}")
        return self


class Order(_Strict):
    """One row of a FAS plan."""

    type: str
    quantity: int


class WeekConfig(_Strict):
    """A week: `week.toml` plus the FAS plans of `plan.csv`."""

    week_start: dt.date = Field(description="a Monday; the calendar applies from 00:00 local time")
    timezone: str = Field(description="IANA time zone name")
    holidays: list[dt.date] = Field(default_factory=list)
    initial_setup: str = Field("", description="type the PAS is set up for at week start, or ''")
    initial_stock: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    downtime: list[Downtime] = Field(default_factory=list)
    plans: dict[str, list[Order]] = Field(default_factory=dict, description="orders per FAS, in order")

    @field_validator("week_start")
    @classmethod
    def _monday(cls, v: dt.date) -> dt.date:
        if v.weekday() != 0:
            raise ValueError(f"week_start {v} is a {v.strftime('%A')}, not a Monday")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def stock_of(self, type_name: str) -> int:
        return self.initial_stock.get(type_name, 0)


class SequenceEntry(_Strict):
    """One batch of a PAS sequence."""

    type: str
    quantity: int | None = None


# ----------------------------------------------------------------------------------------------
# Loading


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark ignored), or a ConfigError naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, "", None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", None, f"cannot read: {exc}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", None, f"malformed TOML: {exc}") from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _toml_line(path: Path, key: str) -> str:
    """`key` ('a.b[2].c') with the line of its last name in the file, when that name is unique."""
    name = re.sub(r"\[\d+\]$", "", key.split(".")[-1])
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return key
    hits = [i for i, line in enumerate(lines, 1) if re.match(rf"\s*{re.escape(name)}\s*=", line)]
    return f"{hits[0]}: {key}" if len(hits) == 1 else key


def _raise_validation(path: Path, exc: ValidationError, data: dict[str, Any]) -> None:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if p not in ("function-after",))
    key = _key_path(loc)
    value = err.get("input")
    if isinstance(value, dict) and value is data:
        value = None
    reason = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        reason = f"unknown key {key!r}"
    elif err["type"] == "missing":
        reason = f"missing key {key!r}"
        value = None
    raise ConfigError(path, _toml_line(path, key) if key else "", value, reason)


def default_config_dir() -> Path:
    """The folder of embedded defaults: $LINETWIN_CONFIG, else the repository's `config/`."""
    return Path(os.environ.get(CONFIG_ENV_VAR, Path(__file__).resolve().parents[1] / "config"))


def load_toml_model(path: Path | str, model: type[M]) -> M:
    """Read a TOML file into `model`; every error names the file, the key and the bad value."""
    path = Path(path)
    data = _read_toml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _raise_validation(path, exc, data)
        raise  # pragma: no cover - _raise_validation always raises


def load_line(path: Path | str) -> LineConfig:
    """Read and validate a `line.toml`."""
    return load_toml_model(path, LineConfig)


def _csv_rows(
    path: Path, header: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        columns = [c.strip() for c in next(reader)]
    except StopIteration:
        raise ConfigError(path, "line 1", None, f"empty file, expected header {','.join(header)}") from None
    except csv.Error as exc:
        raise ConfigError(path, "line 1", None, f"malformed CSV: {exc}") from None
    unknown = [c for c in columns if c not in header + optional]
    missing = [c for c in header if c not in columns]
    if unknown or missing or len(set(columns)) != len(columns):
        raise ConfigError(
            path, "line 1", ",".join(columns), f"header must be {','.join(header)} (optional: {optional})"
        )
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(columns):
                raise ConfigError(
                    path, f"line {line}", ",".join(row), f"expected {len(columns)} fields, got {len(row)}"
                )
            yield line, {c: v.strip() for c, v in zip(columns, row, strict=True)}
    except csv.Error as exc:
        raise ConfigError(path, f"line {reader.line_num}", None, f"malformed CSV: {exc}") from None


def _positive_int(path: Path, line: int, field: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(path, f"line {line}: {field}", value, f"{field} must be an integer") from None
    if number < 1:
        raise ConfigError(path, f"line {line}: {field}", value, f"{field} must be at least 1")
    return number


def _in_order(path: Path, rows: dict[int, tuple[int, Any]], what: str) -> list[Any]:
    """Items keyed by position 1..n -> list; gaps are reported with the line of the next row."""
    items = []
    for expected, position in enumerate(sorted(rows), 1):
        line, item = rows[position]
        if position != expected:
            raise ConfigError(
                path, f"line {line}: position", position, f"{what}: position {expected} is missing"
            )
        items.append(item)
    return items


def load_plan(path: Path | str, line_cfg: LineConfig, max_units: int | None = None) -> dict[str, list[Order]]:
    """Read a `plan.csv` into orders per FAS of the line (stations without rows get none);
    `max_units`: the most units all orders together may ask for (what the PAS can build)."""
    path = Path(path)
    total = 0
    per_station: dict[str, dict[int, tuple[int, Order]]] = {s: {} for s in line_cfg.station_ids}
    for line, row in _csv_rows(path, ("station", "position", "type", "quantity")):
        station = row["station"]
        if station not in per_station:
            raise ConfigError(
                path, f"line {line}: station", station, f"unknown station (line has {line_cfg.station_ids})"
            )
        position = _positive_int(path, line, "position", row["position"])
        if row["type"] not in line_cfg.types:
            raise ConfigError(
                path, f"line {line}: type", row["type"], f"unknown type (line has {line_cfg.types})"
            )
        quantity = _positive_int(path, line, "quantity", row["quantity"])
        total += quantity
        if max_units is not None and total > max_units:
            raise ConfigError(
                path,
                f"line {line}: quantity",
                quantity,
                f"the orders so far total {total} units, more than the PAS can build by a week after "
                f"the week's end ({max_units})",
            )
        if position in per_station[station]:
            first = per_station[station][position][0]
            raise ConfigError(
                path,
                f"line {line}: position",
                position,
                f"duplicate position of {station} (also line {first})",
            )
        per_station[station][position] = (line, Order(type=row["type"], quantity=quantity))
    return {s: _in_order(path, rows, s) for s, rows in per_station.items()}


def load_week(folder: Path | str, line_cfg: LineConfig) -> WeekConfig:
    """Read a week folder (`week.toml` + `plan.csv`) and check it against the line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(folder, "", None, "week folder not found")
    toml_path = folder / "week.toml"
    data = _read_toml(toml_path)
    if "plans" in data:
        raise ConfigError(toml_path, "plans", None, "unknown key 'plans' (plans live in plan.csv)")
    try:
        week = WeekConfig.model_validate(data)
    except ValidationError as exc:
        _raise_validation(toml_path, exc, data)
        raise  # pragma: no cover
    _check_week_against_line(toml_path, week, line_cfg)
    from twin.calendar import WorkCalendar  # the calendar module builds on this one

    try:
        calendar = WorkCalendar(line_cfg.calendar, week)
    except ValueError as exc:
        raise ConfigError(toml_path, "holidays", [str(d) for d in week.holidays], str(exc)) from None
    plans = load_plan(folder / "plan.csv", line_cfg, calendar.buildable_units(line_cfg.pas.unit_time_s))
    return week.model_copy(update={"plans": plans})


def _check_week_against_line(path: Path, week: WeekConfig, line_cfg: LineConfig) -> None:
    if week.initial_setup and week.initial_setup not in line_cfg.types:
        raise ConfigError(
            path,
            _toml_line(path, "initial_setup"),
            week.initial_setup,
            f"unknown type (line has {line_cfg.types})",
        )
    for name in week.initial_stock:
        if name not in line_cfg.types:
            raise ConfigError(
                path, f"initial_stock.{name}", name, f"unknown type (line has {line_cfg.types})"
            )
    total = sum(week.initial_stock.values())
    if total > line_cfg.buffer.capacity:
        raise ConfigError(
            path,
            "initial_stock",
            total,
            f"initial stock exceeds the buffer capacity {line_cfg.buffer.capacity}",
        )
    stations = [PAS_STATION, *line_cfg.station_ids]
    for i, down in enumerate(week.downtime):
        if down.station not in stations:
            raise ConfigError(
                path, f"downtime[{i}].station", down.station, f"unknown station (line has {stations})"
            )


def load_sequence(path: Path | str, line_cfg: LineConfig) -> list[SequenceEntry]:
    """Read a `sequence.csv` (`position,type[,quantity]`)."""
    path = Path(path)
    rows: dict[int, tuple[int, SequenceEntry]] = {}
    for line, row in _csv_rows(path, ("position", "type"), ("quantity",)):
        position = _positive_int(path, line, "position", row["position"])
        if row["type"] not in line_cfg.types:
            raise ConfigError(
                path, f"line {line}: type", row["type"], f"unknown type (line has {line_cfg.types})"
            )
        quantity = row.get("quantity", "")
        entry = SequenceEntry(
            type=row["type"], quantity=_positive_int(path, line, "quantity", quantity) if quantity else None
        )
        if position in rows:
            raise ConfigError(
                path,
                f"line {line}: position",
                position,
                f"duplicate position (also line {rows[position][0]})",
            )
        rows[position] = (line, entry)
    return _in_order(path, rows, "sequence")


def write_sequence(path: Path | str, entries: list[SequenceEntry]) -> None:
    """Write a `sequence.csv` with explicit quantities."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["position", "type", "quantity"])
        for i, entry in enumerate(entries, 1):
            writer.writerow([i, entry.type, entry.quantity if entry.quantity is not None else ""])


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_week(folder: Path | str, week: WeekConfig, types: list[str]) -> None:
    """Write a week folder (`week.toml` + `plan.csv`) that `load_week` reads back unchanged."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f'week_start = "{week.week_start.isoformat()}"',
        f"timezone = {_toml_string(week.timezone)}",
        "holidays = [" + ", ".join(f'"{d.isoformat()}"' for d in week.holidays) + "]",
        f"initial_setup = {_toml_string(week.initial_setup)}",
        "",
        "[initial_stock]",
        *(f"{t} = {week.stock_of(t)}" for t in types),
    ]
    for down in week.downtime:
        lines += [
            "",
            "[[downtime]]",
            f"station = {_toml_string(down.station)}",
            f'start = "{down.start.isoformat()}"',
            f'end = "{down.end.isoformat()}"',
        ]
    (folder / "week.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (folder / "plan.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["station", "position", "type", "quantity"])
        for station, orders in week.plans.items():
            for i, order in enumerate(orders, 1):
                writer.writerow([station, i, order.type, order.quantity])
