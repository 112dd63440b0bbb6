"""Random lines like the reference one (`config/line.toml`) at any size: the line generator.

A generated line has the reference calendar (Mon-Fri, two shifts, 75 working hours) and:

- types `T1..TN` in `families` setup families (contiguous blocks, sizes as equal as possible): a
  changeover within a family costs 1-3, across families 5-10, drawn per ordered pair (asymmetric,
  like the reference matrix);
- `fas` stations `FAS1..FASM`, unit times drawn within +-`fas_spread` of `fas_unit_time_s`;
- a PAS whose unit time makes its planned load `load` of its working time when every FAS plan
  fills `fill` of the week: load = fill x pas_unit_time x sum(1 / fas_unit_time). Unit times are
  whole seconds, so the PAS time is the whole number nearest to the exact one (at least 1 s) and
  the FAS times are then scaled by the rounding ratio, which keeps the load within about 1 %. A FAS
  unit time is at most fill x 270,000 s / 20, so that at `fill` every FAS's plan of a week holds an
  order of generate-week's smallest size (20 units): a longer `fas_unit_time_s`, or a `load` so low
  that the PAS's 1 s per unit makes the FAS slower, is refused (SpecError naming the setting);
- the reference batch size (50 units: orders keep their sizes, so a batch stays the same share of
  an order) and a buffer that covers the reference's time of FAS consumption (500 units at 4 FAS of
  90 s: 11,250 s), in whole batches, at least one per type and one more (room for the type a
  FAS waits for: a smaller buffer deadlocks on small lines).

Same spec and seed, same line."""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.config import MAX_TIME_S, LineConfig
from twin.names import Name
from twin.weekgen import SpecError, WeekSpec

COVER_S = 500 / (4 / 90)
"""Seconds of FAS consumption the reference buffer holds (500 units, 4 FAS at 90 s): 11,250."""
WITHIN = (1, 3)
"""Effort range of a changeover within a setup family (the reference's: 1-3)."""
ACROSS = (5, 10)
"""Effort range of a changeover across families (the reference's: 5-10)."""
CALENDAR = """\
[calendar]
# Mon-Fri, two 8 h shifts with a 30 min break each: 75 working hours per week.
shifts = [
  { days = "Mon-Fri", start = "06:00", end = "14:00" },
  { days = "Mon-Fri", start = "14:00", end = "22:00" },
]
breaks = [
  { days = "Mon-Fri", start = "10:00", end = "10:30" },
  { days = "Mon-Fri", start = "18:00", end = "18:30" },
]
"""
WEEK_WORK_S = 75 * 3600
"""The calendar's working seconds per week (270,000)."""
MAX_TYPES = 500
FILL_MAX = 1.5
MAX_FAS = 500


class LineSpec(BaseModel):
    """How a generated line looks (defaults: the reference line's size and load)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    types: Annotated[int, Field(ge=1, le=MAX_TYPES)] = 8
    """Pre-product types."""
    families: Annotated[int, Field(ge=1)] | None = None
    """Setup families (at most `types`); None: one per four types, as in the reference."""
    fas: Annotated[int, Field(ge=1, le=MAX_FAS)] = 4
    """Final assembly stations."""
    load: Annotated[float, Field(gt=0, le=1)] = 0.86
    """Planned load of the PAS: the share of its working time the FAS plans need."""
    fill: Annotated[float, Field(gt=0, le=FILL_MAX)] = 0.97
    """Share of each FAS's working time a week's plan fills (generate-week's --fill)."""
    fas_unit_time_s: Annotated[int, Field(ge=1, le=MAX_TIME_S)] = 90
    """Typical FAS unit time in seconds."""
    fas_spread: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """FAS unit times are drawn within +- this share of `fas_unit_time_s`."""
    batch_size: Annotated[int, Field(ge=1)] = 50
    """Units per batch."""
    name: Name | None = None
    """The line's name; None: plant-<fas>x<types>."""

    @model_validator(mode="after")
    def _families_fit(self) -> LineSpec:
        if self.families is not None and self.families > self.types:
            raise ValueError(f"families {self.families}: more than the {self.types} types")
        return self

    @property
    def family_count(self) -> int:
        return self.families if self.families is not None else max(1, round(self.types / 4))

    @property
    def line_name(self) -> str:
        return self.name if self.name is not None else f"plant-{self.fas}x{self.types}"

    def command(self, seed: int, out: str) -> str:
        """The generate-line command that makes this line, every setting explicit."""
        flags = (
            f"--types {self.types} --families {self.family_count} --fas {self.fas} --load {self.load:g} "
            f"--fill {self.fill:g} --fas-unit-time {self.fas_unit_time_s} --fas-spread {self.fas_spread:g} "
            f"--batch-size {self.batch_size} --name {self.line_name} --seed {seed}"
        )
        return f"linetwin generate-line {flags} --out {out}"


class LineGenerator:
    """Draws lines from a spec."""

    def __init__(self, spec: LineSpec | None = None) -> None:
        self.spec = spec or LineSpec()

    def family_of(self) -> list[int]:
        """Each type's setup family: contiguous blocks, sizes as equal as possible."""
        n, f = self.spec.types, self.spec.family_count
        return [i * f // n for i in range(n)]

    def generate(self, seed: int) -> tuple[LineConfig, str]:
        """The line and its TOML text (loads back to the same line)."""
        spec = self.spec
        rng = np.random.default_rng(seed)
        drawn = spec.fas_unit_time_s * (1 + spec.fas_spread * rng.uniform(-1, 1, spec.fas))
        fas_times = np.maximum(1, np.rint(drawn))
        order = WeekSpec().order_min
        longest = int(spec.fill * WEEK_WORK_S / order)
        plans = (
            f"a week's plan at --fill {spec.fill:g} ({spec.fill * WEEK_WORK_S:,.0f} s) holds an order of "
            f"{order} units only at up to {longest:,} s per unit"
        )
        slowest = int(fas_times.max())
        if slowest > longest:
            fill = math.ceil(slowest * order / WEEK_WORK_S * 1e4) / 1e4
            remedy = f": give a shorter one, or --fill {fill:g}" if fill <= FILL_MAX else ""
            raise SpecError(
                "fas_unit_time_s", spec.fas_unit_time_s, f"FAS units of up to {slowest:,} s; {plans}{remedy}"
            )
        exact = spec.load / (spec.fill * float(np.sum(1 / fas_times)))
        pas_time = max(1, round(exact))
        scaled = fas_times * pas_time / exact  # the PAS rounded to whole seconds, the FAS with it
        if float(scaled.max()) > longest:
            least = slowest * spec.fill * float(np.sum(1 / fas_times)) / longest
            took = "more than a week" if scaled.max() > MAX_TIME_S else f"{float(scaled.max()):,.0f} s"
            raise SpecError(
                "load",
                f"{spec.load:g}",
                f"at the PAS's least 1 s per unit, the FAS would take {took} per unit; {plans}: give "
                f"--load {math.ceil(least * 1e4) / 1e4:g} or more",
            )
        fas_times = np.maximum(1, np.rint(scaled)).astype(int)
        family = self.family_of()
        n = spec.types
        matrix = [[0] * n for _ in range(n)]
        for i in range(n):
            for j in range(n):
                if i != j:
                    low, high = WITHIN if family[i] == family[j] else ACROSS
                    matrix[i][j] = int(rng.integers(low, high + 1))
        rate = float(np.sum(1 / fas_times))  # units per second the FAS take together
        batches = max(spec.types + 1, round(COVER_S * rate / spec.batch_size))
        capacity = batches * spec.batch_size
        if capacity * pas_time > MAX_TIME_S:
            raise SpecError(
                "batch_size",
                spec.batch_size,
                f"a buffer of {capacity:,} units takes the PAS {capacity * pas_time:,} s to fill, more "
                f"than a week ({MAX_TIME_S:,} s)",
            )
        planned = sum(int(spec.fill * WEEK_WORK_S // t) for t in fas_times)
        if planned < capacity // 2:  # generate-week's initial stock: half the buffer
            field, value, remedy = ("batch_size", str(spec.batch_size), "")
            if pas_time == 1:
                least = math.ceil(capacity / 2 / WEEK_WORK_S * 1e4) / 1e4
                field, value, remedy = ("load", f"{spec.load:g}", f": give --load {least:g} or more")
            raise SpecError(
                field,
                value,
                f"the FAS plans of a week at --fill {spec.fill:g} take {planned:,} units, less than half "
                f"the buffer of {capacity:,} (a week's initial stock){remedy}",
            )
        load = spec.fill * pas_time * rate
        text = self._toml(matrix, pas_time, [int(t) for t in fas_times], capacity, load)
        return LineConfig.model_validate(_parse(text)), text

    def _toml(
        self, matrix: list[list[int]], pas_time: int, fas_times: list[int], capacity: int, load: float
    ) -> str:
        spec = self.spec
        types = [f"T{i + 1}" for i in range(spec.types)]
        hours = capacity / sum(1 / t for t in fas_times) / 3600
        lines = [
            f'name = "{spec.line_name}"',
            "types = [" + ", ".join(f'"{t}"' for t in types) + "]",
            "",
            CALENDAR,
            "[pas]",
            f"unit_time_s = {pas_time}        # planned load {load:.3f} at fill {spec.fill:g}",
            f"batch_size = {spec.batch_size}",
            "setup_time_s = 0",
            "",
            "[buffer]",
            f"capacity = {capacity}        # {hours:.2f} h of FAS consumption",
            "",
        ]
        for k, t in enumerate(fas_times, 1):
            lines += ["[[fas]]", f'id = "FAS{k}"', f"unit_time_s = {t}", ""]
        family = self.family_of()
        lines += [
            "[setup_effort]",
            f"# {spec.family_count} families: "
            + "; ".join(
                " ".join(t for t, f in zip(types, family, strict=True) if f == k)
                for k in range(spec.family_count)
            ),
            "matrix = [",
            *("  [" + ", ".join(f"{e:2d}" for e in row) + "]," for row in matrix),
            "]",
        ]
        return "\n".join(lines) + "\n"


def _parse(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)
