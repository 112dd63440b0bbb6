"""Typed, validated inputs: the line (`line.toml`), a week (`week.toml` + `plan.csv`) and a PAS
sequence (`sequence.csv`), exactly as `contract.md` defines them.

Files become pydantic models here, at the boundary; everything inside the twin trusts them.
Every error is a `ConfigError` naming the file, the line or key, and the bad value.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import difflib
import hashlib
import io
import json
import math
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from twin.errors import ConfigError, EntryError
from twin.files import not_regular
from twin.keylines import key_lines, line_of
from twin.localtime import first_instant
from twin.names import Name

if TYPE_CHECKING:
    from twin.calendar import WorkCalendar  # builds on this module

CONFIG_ENV_VAR = "LINETWIN_CONFIG"
"""Environment variable naming the folder of embedded defaults (line, weeks, env, curricula)."""

PAS_STATION = "PAS"
"""Name of the pre-assembly station in downtime entries and events."""

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

MAX_TIME_S = 7 * 86_400
"""Longest unit time, setup time and batch (a buffer's worth of units plus a setup): one week of
seconds, 604,800. Keeps every run finite and every time exact on the simulation's float clock."""

MAX_SETUP_EFFORT = 1_000_000
"""Largest effort of one changeover. With at most `EFFORT_DECIMALS` decimals CP-SAT scales an effort
to an integer of at most 10^12, so a week's objective stays far inside 64-bit integers."""

EFFORT_DECIMALS = 6
"""Most decimals of a setup effort (CP-SAT works on integers: efforts are scaled by up to 10^6)."""
_CLOCK = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


YEARS = (1970, 9000)
"""Years a week and its dates may lie in: from the Unix epoch, and far enough below 9999 that a
week's overtime and a calendar run over by `calendar` weeks stay representable."""


def _a_date(value: Any) -> Any:
    """A date as TOML or JSON writes it (2026-11-23 or "2026-11-23"), never a number: pydantic
    would read 20261123 as seconds since 1970."""
    if isinstance(value, (int, float)):
        raise ValueError(f"must be a date like 2026-11-23, not {_kind(value)}")
    return value


def _in_years(value: dt.date) -> dt.date:
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise ValueError(f"must lie in the years {YEARS[0]} to {YEARS[1]}")
    return value


Date = Annotated[dt.date, BeforeValidator(_a_date), AfterValidator(_in_years)]
"""A date of a week file: written as a date, in `YEARS`."""
DateTime = Annotated[dt.datetime, BeforeValidator(_a_date), AfterValidator(_in_years)]
"""A date and time of a week file: written as one, in `YEARS`."""


M = TypeVar("M", bound=BaseModel)


def _parse_days(spec: str) -> frozenset[int]:
    """`"Mon-Fri"`, `"Sat"`, `"Mon,Wed"` or `"Fri-Mon"` (wrapping) -> weekday numbers (Mon = 0)."""
    days: set[int] = set()
    for part in spec.split(","):
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            raise ValueError("must be like 'Mon-Fri', 'Sat' or 'Mon,Wed' (days Mon to Sun)")
        first, last = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        span = (last - first) % 7
        days.update((first + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _clock_seconds(value: str) -> int:
    match = _CLOCK.match(value)
    if not match:
        raise ValueError("must be a local time HH:MM or HH:MM:SS")
    h, m, s = int(match[1]), int(match[2]), int(match[3] or 0)
    if h > 24 or m > 59 or s > 59 or (h == 24 and (m or s)):
        raise ValueError("no such time of day (00:00 to 24:00)")
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
            raise ValueError("the window is empty: its start and end are the same time")
        if self.start_s == 86_400:
            raise ValueError("a window cannot start at 24:00: write 00:00 and name the next day")
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
    """Working time of the line: shifts minus breaks, on every week, minus holidays. A shift belongs
    to the day it starts on; a break to the shift it starts in, its `days` naming the day that shift
    starts (rules: `twin.calendar`)."""

    shifts: list[TimeWindow] = Field(min_length=1, description="working windows; never overlapping")
    breaks: list[TimeWindow] = Field(
        default_factory=list, description="pauses inside shifts; days = the day their shift starts"
    )

    @field_validator("shifts")
    @classmethod
    def _shifts_apart(cls, v: list[TimeWindow]) -> list[TimeWindow]:
        from twin.calendar import check_shifts  # the calendar module builds on this one

        check_shifts(v)
        return v

    @field_validator("breaks")
    @classmethod
    def _breaks_in_shifts(cls, v: list[TimeWindow], info: ValidationInfo) -> list[TimeWindow]:
        from twin.calendar import check_breaks

        if "shifts" in info.data:
            check_breaks(info.data["shifts"], v)
        return v


def _within(low: int, high: int | None = None, unit: str = "") -> AfterValidator:
    """A whole number from `low` to `high` (None: no upper limit), the range said when it is not."""

    def check(value: int) -> int:
        if value < low or (high is not None and value > high):
            limit = f"at least {low}" if high is None else f"{low} to {high:,}{unit}"
            raise ValueError(f"must be {limit}")
        return value

    return AfterValidator(check)


# The numbers of the files: strict (TOML's `true` is not 1, "20" is not 20) and bounded; counts
# are bounded through the buffer (LineConfig: a buffer's worth of units is built within a week).
UnitTime = Annotated[int, Field(strict=True), _within(1, MAX_TIME_S, " s (one week)")]
SetupTime = Annotated[int, Field(strict=True), _within(0, MAX_TIME_S, " s (one week)")]
Units = Annotated[int, Field(strict=True), _within(1)]
Stock = Annotated[int, Field(strict=True), _within(0)]


def _effort(value: float) -> float:
    if not (math.isfinite(value) and 0 <= value <= MAX_SETUP_EFFORT):
        raise ValueError(
            f"a setup effort must be a finite number from 0 to {MAX_SETUP_EFFORT:,} (a forbidden "
            "changeover cannot be given: give it a large effort instead)"
        )
    scaled = value * 10**EFFORT_DECIMALS
    if not math.isclose(scaled, round(scaled), rel_tol=0, abs_tol=1e-6):
        raise ValueError(f"a setup effort has at most {EFFORT_DECIMALS} decimals")
    return value


Effort = Annotated[float, Field(strict=True), AfterValidator(_effort)]


class PasConfig(_Strict):
    """The pre-assembly station."""

    unit_time_s: UnitTime = Field(description="working seconds per pre-product (1 to 604,800)")
    batch_size: Units = Field(description="default units per batch (1 to the buffer's capacity)")
    setup_time_s: SetupTime = Field(0, description="working seconds added per changeover (0 to 604,800)")


class BufferConfig(_Strict):
    """The central buffer between the stages."""

    capacity: Units = Field(
        description="pre-products of all types together; the PAS builds as many within a week "
        "(capacity x pas.unit_time_s + pas.setup_time_s <= 604,800 s)"
    )


class FasConfig(_Strict):
    """One final assembly station."""

    id: Name = Field(description="station name, used in plans, topics and metrics (twin.names)")
    unit_time_s: UnitTime = Field(description="working seconds per unit (1 to 604,800)")

    @field_validator("id")
    @classmethod
    def _not_pas(cls, v: str) -> str:
        if v == PAS_STATION:
            raise ValueError(f"{PAS_STATION!r} is reserved for the pre-assembly station")
        return v


class SetupEffortConfig(_Strict):
    """Sequence-dependent setup effort of the PAS."""

    matrix: list[list[Effort]] = Field(
        description="matrix[i][j]: effort of switching from types[i] to types[j] (0 to 1,000,000, "
        "at most 6 decimals)"
    )


class LineConfig(_Strict):
    """A production line: `line.toml`."""

    name: Name = Field(description="the line's name: the `line` tag of its metrics (twin.names)")
    types: list[Name] = Field(min_length=1, description="pre-product types, in order (twin.names)")
    calendar: CalendarConfig
    pas: PasConfig
    buffer: BufferConfig
    fas: list[FasConfig] = Field(min_length=1)
    setup_effort: SetupEffortConfig

    @field_validator("types")
    @classmethod
    def _unique_types(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if name in v[:i]:
                raise EntryError((i,), f"duplicate type: also types[{v.index(name)}]")
        return v

    @field_validator("fas")
    @classmethod
    def _unique_stations(cls, v: list[FasConfig]) -> list[FasConfig]:
        ids = [f.id for f in v]
        for i, name in enumerate(ids):
            if name in ids[:i]:
                raise EntryError((i, "id"), f"duplicate station id: also fas[{ids.index(name)}]")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> LineConfig:
        n = len(self.types)
        rows = self.setup_effort.matrix
        if len(rows) != n:
            raise EntryError(
                ("setup_effort", "matrix"),
                f"has {len(rows)} rows, expected {n} (one row and one column per type)",
                shown=False,
            )
        for i, row in enumerate(rows):
            if len(row) != n:
                raise EntryError(
                    ("setup_effort", "matrix", i),
                    f"has {len(row)} entries, expected {n} (one row and one column per type)",
                )
        if self.pas.batch_size > self.buffer.capacity:
            raise EntryError(
                ("pas", "batch_size"),
                f"pas.batch_size {self.pas.batch_size} exceeds buffer.capacity {self.buffer.capacity}",
            )
        fill_s = self.buffer.capacity * self.pas.unit_time_s + self.pas.setup_time_s
        if fill_s > MAX_TIME_S:
            raise EntryError(
                ("buffer", "capacity"),
                f"buffer.capacity {self.buffer.capacity} x pas.unit_time_s {self.pas.unit_time_s} + "
                f"pas.setup_time_s {self.pas.setup_time_s} = {fill_s:,} s: a batch as large as the "
                f"buffer must be buildable within {MAX_TIME_S:,} s (one week)",
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
    start: DateTime
    end: DateTime

    @model_validator(mode="after")
    def _ordered(self) -> Downtime:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise EntryError(
                ("end",),
                f"downtime start {self.start.isoformat()} and end {self.end.isoformat()}: give both "
                "with a UTC offset or neither (local time of the week)",
            )
        if self.end <= self.start:
            raise EntryError(("end",), f"downtime end is not after its start {self.start.isoformat()}")
        return self


class Order(_Strict):
    """One row of a FAS plan."""

    type: str
    quantity: int


class WeekConfig(_Strict):
    """A week: `week.toml` plus the FAS plans of `plan.csv`."""

    week_start: Date = Field(description="a Monday; the calendar applies from 00:00 local time")
    timezone: str = Field(description="IANA time zone name")
    holidays: list[Date] = Field(
        default_factory=list, description="days of the week whose shifts are not worked (no repeats)"
    )
    initial_setup: str = Field("", description="type the PAS is set up for at week start, or ''")
    initial_stock: dict[str, Stock] = Field(default_factory=dict)
    downtime: list[Downtime] = Field(default_factory=list)
    plans: dict[str, list[Order]] = Field(default_factory=dict, description="orders per FAS, in order")

    @field_validator("week_start")
    @classmethod
    def _monday(cls, v: dt.date) -> dt.date:
        if v.weekday() != 0:
            raise ValueError(f"is a {v.strftime('%A')}, not a Monday")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe": a folder; too long
            raise ValueError("unknown time zone: give an IANA name such as 'Europe/Berlin'") from exc
        return v

    @field_validator("holidays")
    @classmethod
    def _holidays_in_week(cls, v: list[dt.date], info: ValidationInfo) -> list[dt.date]:
        monday = info.data.get("week_start")
        if monday is None:
            return v
        sunday = monday + dt.timedelta(days=6)
        for i, day in enumerate(v):
            if not monday <= day <= sunday:
                raise EntryError((i,), f"a holiday outside the week {monday} to {sunday}")
            if day in v[:i]:
                raise EntryError((i,), f"a holiday listed twice: also holidays[{v.index(day)}]")
        return v

    @field_validator("initial_stock", mode="before")
    @classmethod
    def _quoted_dotted_keys(cls, v: Any) -> Any:
        """A bare `T1.5 = 50` is the table `T1` with a key `5` in TOML: say how to write it."""
        for key, value in v.items() if isinstance(v, dict) else ():
            if isinstance(value, dict) and value:
                inner = next(iter(value))
                raise EntryError(
                    (key, inner),
                    f"a bare dotted key is the table {key!r} in TOML: quote a type name with a dot, "
                    f'"{key}.{inner}" = ...',
                )
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


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its mark starts the same way
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _encoding_of(data: bytes) -> str:
    """UTF-8, or what a byte-order mark says; UTF-16 without a mark only when every other byte of
    its start is zero (ASCII text as UTF-16): a stray NUL in UTF-8 text is a NUL, not UTF-16."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    pairs = min(len(data), 200) // 2
    if pairs >= 2:
        odd, even = data[1 : 2 * pairs : 2].count(0), data[0 : 2 * pairs : 2].count(0)
        if odd >= 0.9 * pairs and even <= 0.1 * pairs:
            return "utf-16-le"
        if even >= 0.9 * pairs and odd <= 0.1 * pairs:
            return "utf-16-be"
    return "utf-8"


def decode_text(path: Path, data: bytes) -> str:
    """A text file's bytes as text: UTF-8, or UTF-16/32 with a byte-order mark (a spreadsheet's
    "Unicode text"); anything else is a ConfigError naming the line of the first bad byte."""
    encoding = _encoding_of(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode(encoding, errors="replace")
        line = before.count("\n") + 1
        shown = data.decode(encoding, errors="replace").splitlines()[line - 1][:60]
        name = "UTF-8" if encoding.startswith("utf-8") else encoding.upper()
        raise ConfigError(
            path,
            "",
            shown,
            f"not {name}: byte 0x{data[exc.start]:02x} cannot be read (save the file as UTF-8)",
            line=line,
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError(path, "", None, "a NUL character: not a text file", line=line)
    return text.removeprefix("\ufeff")


def _read_text(path: Path) -> str:
    """The file's text (see `decode_text`), or a ConfigError naming it."""
    if (kind := not_regular(path)) is not None:  # a FIFO would block, a device never end
        raise ConfigError(path, "", None, kind)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", None, f"file not found{_from_env(path)}") from None
    except OSError as exc:
        raise ConfigError(path, "", None, f"cannot read: {exc.strerror or exc}") from None
    return decode_text(path, data)


def defaults_from_env(path: Path) -> str:
    """'the folder of defaults is LINETWIN_CONFIG=...' when `path` lies in the folder that
    $LINETWIN_CONFIG names (a default file the user never typed), else ''."""
    folder = os.environ.get(CONFIG_ENV_VAR)
    if not folder or not path.resolve().is_relative_to(Path(folder).resolve()):
        return ""
    state = "" if Path(folder).is_dir() else ", which is not a folder"
    return f"the folder of defaults is {CONFIG_ENV_VAR}={folder}{state}"


def _from_env(path: Path) -> str:
    note = defaults_from_env(path)
    return f" ({note}: unset it or fix it)" if note else ""


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _read_toml(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.search(str(exc))
        line = int(at[1]) if at else None
        detail = _TOML_AT.sub("", str(exc)) + (f" (column {at[2]})" if at else "")
        hint = _dotted_key_hint(text, line)
        raise ConfigError(path, "", None, f"malformed TOML: {detail}{hint}", line=line) from None


def _dotted_key_hint(text: str, line: int | None) -> str:
    """A hint when the line in error has a bare dotted key (`T1.5 = 50`: a table `T1` in TOML)."""
    lines = text.splitlines()
    if line is None or not 0 < line <= len(lines):
        return ""
    key = re.match(r"\s*([\w-]+(?:\.[\w-]+)+)\s*=", lines[line - 1])
    return f' ({key[1]} is a dotted key: quote a name with a dot, "{key[1]}" = ...)' if key else ""


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_JSON_AT = re.compile(r"(?:at )?line (\d+) column (\d+)")


def _line_in(path: Path, loc: tuple[int | str, ...]) -> int | None:
    """The line of the key at `loc` in a TOML file (a missing key: its table's line); in a JSON
    file, the line of the last name of `loc` where that name occurs once."""
    try:
        text = _read_text(path)
    except ConfigError:
        return None
    if path.suffix != ".json":
        try:
            return line_of(key_lines(text), loc)
        except (ValueError, IndexError, tomllib.TOMLDecodeError):  # not TOML after all: no line
            return None
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return None
    pattern = re.compile(rf'"{re.escape(names[-1])}"\s*:')
    hits = [i for i, row in enumerate(text.splitlines(), 1) if pattern.search(row)]
    return hits[0] if len(hits) == 1 else None


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that validates the table at `loc` of `model`'s data, if there is one."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None:
            return None
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def closest(name: str, known: list[str]) -> str | None:
    """The known name the user most likely meant: the same letters in another case first, else
    the one closest spelling (difflib), else None."""
    same = [k for k in known if k.casefold() == name.casefold()]
    if same:
        return same[0]
    scores = sorted(((difflib.SequenceMatcher(None, name, k).ratio(), k) for k in known), reverse=True)
    if not scores or scores[0][0] < 0.6 or (len(scores) > 1 and scores[1][0] == scores[0][0]):
        return None  # nothing close, or several as close (FAS9: FAS1 or FAS2?)
    return scores[0][1]


def unknown(what: str, name: str, known: list[str]) -> str:
    """'unknown type; did you mean T3?' or, with nothing close, 'unknown type; the line has T1, T2'."""
    close = closest(name, known)
    if close is not None:
        return f"unknown {what}; did you mean {close}?"
    return f"unknown {what}; the line has {', '.join(known)}"


def _unknown_key(model: type[BaseModel] | None, errors: list[Any], loc: tuple[int | str, ...]) -> str:
    """'unknown key; expected <the closest known key>' (a key missing beside it comes first)."""
    parent, typed = loc[:-1], str(loc[-1])
    missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
    where = _model_at(model, parent) if model is not None else None
    known = [f.alias or n for n, f in where.model_fields.items()] if where is not None else missing
    close = (
        [k for k in known if k.casefold() == typed.casefold()]
        or difflib.get_close_matches(typed, missing, n=1, cutoff=0.4)
        or difflib.get_close_matches(typed, known, n=1, cutoff=0.6)
    )
    if close:
        return f"unknown key; expected {close[0]}"
    return f"unknown key; expected one of {', '.join(known)}" if known else "unknown key"


def _kind(value: object) -> str:
    """What a value is, in the words of the files (TOML/JSON)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (dt.date, dt.time)):
        return "a date or time"
    return "null" if value is None else type(value).__name__


_RULES = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string (in quotes)",
    "list_type": "must be a list [...]",
    "tuple_type": "must be a list [...]",
    "set_type": "must be a list [...]",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "date_type": "must be a date YYYY-MM-DD",
    "date_parsing": "must be a date YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a date YYYY-MM-DD, without a time",
    "datetime_type": "must be a date and time YYYY-MM-DDTHH:MM:SS",
    "datetime_parsing": "must be a date and time YYYY-MM-DDTHH:MM:SS",
    "datetime_from_date_parsing": "must be a date and time YYYY-MM-DDTHH:MM:SS",
    "timezone_aware": "must have a UTC offset",
    "path_type": "must be a path (a string)",
    "missing": "missing key",
}


def field_problem(err: Any) -> str:
    """A pydantic error in the project's words ('must be a whole number, not a string'), for
    every file and settings loader; pydantic's own message where there is no rule."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind in _RULES:
        rule = _RULES[kind]
        said = kind.endswith("_parsing") and isinstance(value, str)  # the right kind, badly written
        return rule if said or kind == "missing" else f"{rule}, not {_kind(value)}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        return f"must be {words} {ctx.get(name)}"
    if kind in ("too_short", "too_long"):
        words, name = ("at least", "min_length") if kind == "too_short" else ("at most", "max_length")
        count = ctx.get(name)
        return f"must have {words} {count} entr{'y' if count == 1 else 'ies'}"
    if kind == "string_too_short":
        least = ctx.get("min_length")
        return "must not be empty" if least == 1 else f"must have at least {least} characters"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected')}"
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


_NOT_KEYS = ("function-after", "function-before", "function-wrap", "function-plain", "[key]")


def _lookup(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _raise_validation(
    path: Path, exc: ValidationError, data: Any, model: type[BaseModel] | None = None
) -> NoReturn:
    """The first error of `exc` as a ConfigError: file, line, key as the file writes it, the
    value there and the reason in the project's words."""
    errors = exc.errors()
    # a misspelt key is also a missing one: the key the user typed is the one to report
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if p not in _NOT_KEYS)
    value = err.get("input")
    cause = (err.get("ctx") or {}).get("error")
    entry = isinstance(cause, EntryError)
    if isinstance(cause, EntryError):  # (repeated: mypy narrows `cause` on isinstance only)
        loc += cause.at
        value = _lookup(data, loc) if cause.shown else None
    if err["type"] == "json_invalid":
        said = str((err.get("ctx") or {}).get("error", err["msg"]))
        at = _JSON_AT.search(said)
        detail = f"{said[: at.start()].rstrip()} (column {at[2]})" if at else said
        raise ConfigError(path, "", None, f"malformed JSON: {detail}", line=int(at[1]) if at else None)
    if err["type"] == "extra_forbidden":
        reason = _unknown_key(model, list(errors), loc)
    else:
        reason = field_problem(err)
    a_table = isinstance(value, dict) and not entry and not (loc and isinstance(loc[-1], int))
    if err["type"] == "missing" or a_table:
        value = None  # a whole table: its line and key say where
    raise ConfigError(path, _key_path(loc), _plain(value), reason, line=_line_in(path, loc))


def _plain(value: Any) -> Any:
    """A value as the file writes it: dates and times in ISO form, not as Python objects."""
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def default_config_dir() -> Path:
    """The folder of embedded defaults: $LINETWIN_CONFIG, else the repository's `config/`."""
    return Path(os.environ.get(CONFIG_ENV_VAR, Path(__file__).resolve().parents[1] / "config"))


def load_toml_model(path: Path | str, model: type[M]) -> M:
    """Read a TOML file into `model`; every error names the file, the line, the key and the bad value."""
    path = Path(path)
    data = _read_toml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _raise_validation(path, exc, data, model)


def load_json_model(path: Path | str, model: type[M]) -> M:
    """Read a JSON file (a run's config.json, a model card) into `model`; every error names the
    file, the line, the key and the bad value on one line."""
    path = Path(path)
    text = _read_text(path)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        _raise_validation(path, exc, data, model)


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
        raise ConfigError(path, "", None, f"empty file, expected header {','.join(header)}", line=1) from None
    except csv.Error as exc:
        raise ConfigError(path, "", None, f"malformed CSV: {exc}", line=1) from None
    unknown = [c for c in columns if c not in header + optional]
    missing = [c for c in header if c not in columns]
    if unknown or missing or len(set(columns)) != len(columns):
        expected = ",".join(header) + (f" (optional: {','.join(optional)})" if optional else "")
        separator = next((s for s in (";", "\t", "|") if len(columns) == 1 and s in columns[0]), None)
        if separator is not None:
            raise ConfigError(
                path,
                "",
                columns[0],
                f"fields are separated by {separator!r}; expected ',' (header {expected})",
                line=1,
            )
        raise ConfigError(path, "", ",".join(columns), f"header must be {expected}", line=1)
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(columns):
                raise ConfigError(
                    path, "", ",".join(row), f"expected {len(columns)} fields, got {len(row)}", line=line
                )
            yield line, {c: v.strip() for c, v in zip(columns, row, strict=True)}
    except csv.Error as exc:
        raise ConfigError(path, "", None, f"malformed CSV: {exc}", line=reader.line_num) from None


_DIGITS = re.compile(r"[0-9]+")


def _positive_int(path: Path, line: int, field: str, value: str) -> int:
    """A CSV cell as a whole number: ASCII digits only (int() would take `1_0`, `+5` and `١٠`)."""
    if not _DIGITS.fullmatch(value):
        raise ConfigError(path, field, value, "must be a whole number (digits 0-9)", line=line)
    number = int(value)
    if number < 1:
        raise ConfigError(path, field, value, "must be at least 1", line=line)
    return number


def _in_order(path: Path, rows: dict[int, tuple[int, Any]], what: str) -> list[Any]:
    """Items keyed by position 1..n -> list; gaps are reported with the line of the next row."""
    items = []
    for expected, position in enumerate(sorted(rows), 1):
        line, item = rows[position]
        if position != expected:
            raise ConfigError(
                path, "position", position, f"{what}: position {expected} is missing", line=line
            )
        items.append(item)
    return items


def load_plan(
    path: Path | str,
    line_cfg: LineConfig,
    max_units: int | None = None,
    horizon_s: int | None = None,
    down_s: dict[str, int] | None = None,
) -> dict[str, list[Order]]:
    """Read a `plan.csv` into orders per FAS of the line (stations without rows get none);
    `max_units`: the most units all orders together may ask for (what the PAS can build);
    `horizon_s`: the working seconds each FAS has for its orders, less its `down_s` (downtime)."""
    path = Path(path)
    down_s = down_s or {}
    total = 0
    work_s = dict.fromkeys(line_cfg.station_ids, 0)
    unit_s = {f.id: f.unit_time_s for f in line_cfg.fas}
    per_station: dict[str, dict[int, tuple[int, Order]]] = {s: {} for s in line_cfg.station_ids}
    for line, row in _csv_rows(path, ("station", "position", "type", "quantity")):
        station = row["station"]
        if station not in per_station:
            raise ConfigError(
                path, "station", station, unknown("station", station, line_cfg.station_ids), line=line
            )
        position = _positive_int(path, line, "position", row["position"])
        if row["type"] not in line_cfg.types:
            reason = unknown("type", row["type"], line_cfg.types)
            raise ConfigError(path, "type", row["type"], reason, line=line)
        quantity = _positive_int(path, line, "quantity", row["quantity"])
        total += quantity
        if max_units is not None and total > max_units:
            raise ConfigError(
                path,
                "quantity",
                quantity,
                f"the orders so far total {total} units, more than the PAS can build by a week after "
                f"the week's end ({max_units}"
                + (f", after {down_s[PAS_STATION]:,} s of downtime" if down_s.get(PAS_STATION) else "")
                + ")",
                line=line,
            )
        work_s[station] += quantity * unit_s[station]
        free_s = None if horizon_s is None else horizon_s - down_s.get(station, 0)
        if free_s is not None and work_s[station] > free_s:
            after = f", after {down_s[station]:,} s of downtime" if down_s.get(station) else ""
            raise ConfigError(
                path,
                "quantity",
                quantity,
                f"the orders of {station} so far take {work_s[station]:,} s, more than {station} can work "
                f"by a week after the week's end ({free_s:,} s{after}, {free_s // unit_s[station]} units)",
                line=line,
            )
        if position in per_station[station]:
            first = per_station[station][position][0]
            raise ConfigError(
                path,
                "position",
                position,
                f"duplicate position of {station} (also line {first})",
                line=line,
            )
        per_station[station][position] = (line, Order(type=row["type"], quantity=quantity))
    if not any(per_station.values()):  # a week with nothing to build has nothing to plan or compare
        reason = "no orders: a week needs at least one row station,position,type,quantity"
        raise ConfigError(path, "", None, reason, line=1)
    return {s: _in_order(path, rows, s) for s, rows in per_station.items()}


def load_week(folder: Path | str, line_cfg: LineConfig) -> WeekConfig:
    """Read a week folder (`week.toml` + `plan.csv`) and check it against the line."""
    return _load_week(Path(folder), line_cfg, calendar_only=False)


NOT_CALENDAR = ("initial_stock", "initial_setup")
"""What of `week.toml` is not its calendar (`load_calendar` leaves it unread; an unknown key is
still an error)."""


def load_calendar(folder: Path | str, line_cfg: LineConfig) -> WeekConfig:
    """The calendar of a week folder (its week start, time zone, holidays and downtime) as a week
    without plans, stock or setup, checked against the line: the template of generated weeks.
    Its `initial_stock`, `initial_setup` and `plan.csv` are not read, and downtime of a station the
    line lacks is left out (`calendar_left_out` says which), so a week of any line gives the
    calendar of any line."""
    return calendar_left_out(folder, line_cfg)[0]


def calendar_left_out(folder: Path | str, line_cfg: LineConfig) -> tuple[WeekConfig, tuple[Downtime, ...]]:
    """`load_calendar`'s week and the downtime it left out (of stations the line lacks)."""
    left_out: list[Downtime] = []
    return _load_week(Path(folder), line_cfg, calendar_only=True, left_out=left_out), tuple(left_out)


def _load_week(
    folder: Path, line_cfg: LineConfig, calendar_only: bool, left_out: list[Downtime] | None = None
) -> WeekConfig:
    if not folder.is_dir():
        raise ConfigError(folder, "", None, f"week folder not found{_from_env(folder)}")
    toml_path = folder / "week.toml"
    data = _read_toml(toml_path)
    if "plans" in data:
        reason = "unknown key (plans live in plan.csv)"
        raise ConfigError(toml_path, "plans", None, reason, line=_line_in(toml_path, ("plans",)))
    if calendar_only:
        data = {k: v for k, v in data.items() if k not in NOT_CALENDAR}
    try:
        week = WeekConfig.model_validate(data)
    except ValidationError as exc:
        _raise_validation(toml_path, exc, data, WeekConfig)
    if left_out is not None:  # a template of another line: its stations' downtime is not this line's
        stations = {PAS_STATION, *line_cfg.station_ids}
        left_out += [d for d in week.downtime if d.station not in stations]
        week = week.model_copy(update={"downtime": [d for d in week.downtime if d.station in stations]})
    _check_week_against_line(toml_path, week, line_cfg)
    from twin.calendar import OVERTIME_WEEKS, WorkCalendar  # the calendar module builds on this one

    try:
        calendar = WorkCalendar(line_cfg.calendar, week)
    except ValueError as exc:  # a shutdown week: nothing to plan, so say so instead of planning overtime
        key, value = ("holidays", [str(d) for d in week.holidays]) if week.holidays else ("week_start", None)
        raise ConfigError(toml_path, key, value, str(exc), line=_line_in(toml_path, (key,))) from None
    _check_downtime_span(toml_path, week, OVERTIME_WEEKS)
    down_s = _downtime_work_s(toml_path, week, calendar, OVERTIME_WEEKS)
    if calendar_only:
        return week
    horizon_s = calendar.horizon_work_s
    buildable = (horizon_s - down_s.get(PAS_STATION, 0)) // line_cfg.pas.unit_time_s
    plans = load_plan(folder / "plan.csv", line_cfg, buildable, horizon_s, down_s)
    return week.model_copy(update={"plans": plans})


def _check_week_against_line(path: Path, week: WeekConfig, line_cfg: LineConfig) -> None:
    if week.initial_setup and week.initial_setup not in line_cfg.types:
        raise ConfigError(
            path,
            "initial_setup",
            week.initial_setup,
            unknown("type", week.initial_setup, line_cfg.types),
            line=_line_in(path, ("initial_setup",)),
        )
    for name, units in week.initial_stock.items():
        if name not in line_cfg.types:
            raise ConfigError(
                path,
                _key_path(("initial_stock", name)),
                units,
                unknown("type", name, line_cfg.types),
                line=_line_in(path, ("initial_stock", name)),
            )
    total = sum(week.initial_stock.values())
    if total > line_cfg.buffer.capacity:
        raise ConfigError(
            path,
            "initial_stock",
            None,
            f"initial stock exceeds the buffer capacity {line_cfg.buffer.capacity} ({total} units in all)",
            line=_line_in(path, ("initial_stock",)),
        )
    stations = [PAS_STATION, *line_cfg.station_ids]
    for i, down in enumerate(week.downtime):
        if down.station not in stations:
            raise ConfigError(
                path,
                f"downtime[{i}].station",
                down.station,
                unknown("station", down.station, stations),
                line=_line_in(path, ("downtime", i, "station")),
            )


def _check_downtime_span(path: Path, week: WeekConfig, overtime_weeks: int) -> None:
    """Every downtime ends inside the time a week's plan may use (the week and `overtime_weeks`
    after it): a stop before the week would be ignored without a word, one far past it never ends."""
    monday = dt.datetime.combine(week.week_start, dt.time())
    start = first_instant(monday, week.tz)
    end = first_instant(monday + dt.timedelta(days=7 * (1 + overtime_weeks)), week.tz)
    for i, down in enumerate(week.downtime):
        last = first_instant(down.end, week.tz)
        if not start < last <= end:
            raise ConfigError(
                path,
                f"downtime[{i}].end",
                down.end.isoformat(),
                f"a downtime must end between the week's start {start.isoformat()} and "
                f"{end.isoformat()} (the week and {overtime_weeks} week of overtime)",
                line=_line_in(path, ("downtime", i, "end")),
            )


def _downtime_work_s(
    path: Path, week: WeekConfig, calendar: WorkCalendar, overtime_weeks: int
) -> dict[str, int]:
    """Working seconds each station loses to its downtime within the horizon (the week and its
    overtime: `calendar.horizon_work_s`), overlaps counted once. The horizon bounds what a plan may
    ask of a station, so a downtime that leaves a station no working time in it is an error."""
    horizon = calendar.horizon_work_s
    spans: dict[str, list[tuple[int, int, int]]] = {}
    for i, down in enumerate(week.downtime):
        lo = min(horizon, calendar.work_at_datetime(down.start))
        hi = min(horizon, calendar.work_at_datetime(down.end))
        spans.setdefault(down.station, []).append((lo, hi, i))
    lost: dict[str, int] = {}
    for station, found in spans.items():
        total, reach = 0, 0
        for lo, hi, i in sorted(found):
            total += max(0, hi - max(lo, reach))
            reach = max(reach, hi)
            if total >= horizon:
                monday = dt.datetime.combine(week.week_start, dt.time())
                end = first_instant(monday + dt.timedelta(days=7 * (1 + overtime_weeks)), week.tz)
                raise ConfigError(
                    path,
                    f"downtime[{i}].end",
                    _plain(week.downtime[i].end),
                    f"leaves {station} no working time in the week and its {overtime_weeks} week of "
                    f"overtime (to {end.isoformat()})",
                    line=_line_in(path, ("downtime", i, "end")),
                )
        lost[station] = total
    return lost


def load_sequence(path: Path | str, line_cfg: LineConfig) -> list[SequenceEntry]:
    """Read a `sequence.csv` (`position,type[,quantity]`)."""
    path = Path(path)
    rows: dict[int, tuple[int, SequenceEntry]] = {}
    for line, row in _csv_rows(path, ("position", "type"), ("quantity",)):
        position = _positive_int(path, line, "position", row["position"])
        if row["type"] not in line_cfg.types:
            reason = unknown("type", row["type"], line_cfg.types)
            raise ConfigError(path, "type", row["type"], reason, line=line)
        quantity = row.get("quantity", "")
        entry = SequenceEntry(
            type=row["type"], quantity=_positive_int(path, line, "quantity", quantity) if quantity else None
        )
        capacity = line_cfg.buffer.capacity
        if entry.quantity is not None and entry.quantity > capacity:
            reason = f"batch {position} is larger than the buffer capacity {capacity}: it can never enter it"
            raise ConfigError(path, "quantity", entry.quantity, reason, line=line)
        if position in rows:
            raise ConfigError(
                path,
                "position",
                position,
                f"duplicate position (also line {rows[position][0]})",
                line=line,
            )
        rows[position] = (line, entry)
    return _in_order(path, rows, "sequence")


def sequence_line(path: Path | str, position: int) -> int | None:
    """The line of `position` in the sequence file at `path` (None: no such file or row), for an
    error found while the sequence is replayed."""
    try:
        rows = _csv_rows(Path(path), ("position", "type"), ("quantity",))
        return next((line for line, row in rows if row["position"] == str(position)), None)
    except ConfigError:
        return None


def write_sequence(
    path: Path | str, entries: list[SequenceEntry], made_for: SequenceOrigin | None = None
) -> None:
    """Write a `sequence.csv` with explicit quantities, and what it was made for into its sidecar
    `<name>.meta.json` (a stale sidecar is removed when `made_for` is None)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["position", "type", "quantity"])
        for i, entry in enumerate(entries, 1):
            writer.writerow([i, entry.type, entry.quantity if entry.quantity is not None else ""])
    meta = sequence_meta_path(path)
    if made_for is None:
        meta.unlink(missing_ok=True)
    else:
        meta.write_text(made_for.model_dump_json(indent=2) + "\n", encoding="utf-8")


class SequenceOrigin(BaseModel):
    """What a `sequence.csv` was made for, kept in its sidecar `<name>.meta.json` (the CSV's
    format stays `position,type[,quantity]`): the line, the week (folder as given, first day and a
    digest of its content) and the batch size. Read strictly, like every file: an unknown key or
    a number in quotes is an error naming the sidecar's line."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    line: str
    week: str
    week_start: dt.date
    week_digest: str
    batch_size: int

    @classmethod
    def of(cls, line: str, week_folder: Path | str, week: WeekConfig, batch_size: int) -> SequenceOrigin:
        return cls(
            line=line,
            week=str(week_folder),
            week_start=week.week_start,
            week_digest=week_digest(week),
            batch_size=batch_size,
        )


def week_digest(week: WeekConfig) -> str:
    """A short digest of a week's content (calendar, stock, downtime, plans): equal for the same
    week wherever its folder lies, different when anything in it differs."""
    return hashlib.sha256(week.model_dump_json().encode("utf-8")).hexdigest()[:16]


def sequence_meta_path(path: Path | str) -> Path:
    """The sidecar of a sequence file: `sequence.csv` -> `sequence.meta.json`."""
    path = Path(path)
    return path.with_name(path.stem + ".meta.json")


def check_sequence(
    path: Path | str,
    entries: list[SequenceEntry],
    origin: SequenceOrigin | None,
    made_for: SequenceOrigin,
) -> list[str]:
    """Before a sequence is replayed for `made_for`: a sequence made for another line is an error
    (ConfigError naming the sidecar's `line`); another week, another batch size and quantities that
    differ from the batch size are returned as warnings (the sequence is replayed as written)."""
    path = Path(path)
    warnings = []
    if origin is not None:
        if origin.line != made_for.line:
            raise ConfigError(
                sequence_meta_path(path),
                "line",
                origin.line,
                f"the sequence was made for another line than '{made_for.line}' (remove the file to "
                f"replay it anyway)",
                line=_line_in(sequence_meta_path(path), ("line",)),
            )
        if origin.week_digest != made_for.week_digest:
            warnings.append(
                f"{path}: made for week {origin.week} of {origin.week_start}, not for this week "
                f"({made_for.week} of {made_for.week_start}, other content): expect a deadlock or idle time"
            )
    size = made_for.batch_size
    odd = sorted({e.quantity for e in entries if e.quantity not in (None, size)}, key=int)
    if odd:
        n = sum(e.quantity not in (None, size) for e in entries)
        warnings.append(
            f"{path}: {n} of {len(entries)} batches have a quantity other than the batch size {size} "
            f"({', '.join(map(str, odd))}); they are replayed as written"
        )
    elif origin is not None and origin.batch_size != size:
        warnings.append(f"{path}: made for batch size {origin.batch_size}, replayed with batch size {size}")
    return warnings


def sequence_quantities(entries: list[SequenceEntry], batch_size: int) -> dict[str, int]:
    """Batches per quantity as a sequence gives them (an entry without quantity: the batch size)."""
    counts: dict[str, int] = {}
    for e in entries:
        key = str(e.quantity if e.quantity is not None else batch_size)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))


def load_sequence_origin(path: Path | str) -> SequenceOrigin | None:
    """What the sequence file at `path` was made for, from its sidecar; None without one (a
    sequence written by hand or by another tool)."""
    meta = sequence_meta_path(path)
    if not meta.exists():  # a folder of that name is read (and refused), not ignored
        return None
    return load_json_model(meta, SequenceOrigin)  # strict: dates as JSON writes them


def write_week(folder: Path | str, week: WeekConfig, types: list[str]) -> None:
    """Write a week folder (`week.toml` + `plan.csv`) that `load_week` reads back unchanged (TOML
    by tomli-w: a type name such as `T1.5` is a quoted key, not a table)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "week_start": week.week_start.isoformat(),
        "timezone": week.timezone,
        "holidays": [d.isoformat() for d in week.holidays],
        "initial_setup": week.initial_setup,
        "initial_stock": {t: week.stock_of(t) for t in types},
    }
    if week.downtime:
        data["downtime"] = [
            {"station": d.station, "start": d.start.isoformat(), "end": d.end.isoformat()}
            for d in week.downtime
        ]
    (folder / "week.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    with (folder / "plan.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["station", "position", "type", "quantity"])
        for station, orders in week.plans.items():
            for i, order in enumerate(orders, 1):
                writer.writerow([station, i, order.type, order.quantity])
