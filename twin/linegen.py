"""Random lines like the reference one (`config/line.toml`) at any size: the line generator.

A generated line has the reference calendar (Mon-Fri, two shifts, 75 working hours) and:

- types `T1..TN` in `families` setup families (contiguous blocks, sizes as equal as possible): a
  changeover within a family costs 1-3, across families 5-10, drawn per ordered pair (asymmetric,
  like the reference matrix);
- `fas` stations `FAS1..FASM`, unit times drawn within +-`fas_spread` of `fas_unit_time_s`;
- a PAS whose unit time makes its planned load `load` of its working time when every FAS plan
  fills `fill` of the week: load = fill x pas_unit_time x sum(1 / fas_unit_time). Unit times are
  whole seconds, so the PAS time is the whole number nearest to the exact one (at least 1 s) and
  the FAS times are then scaled by the rounding ratio, which keeps the load within about 1 %;
- the reference batch size (50 units: orders keep their sizes, so a batch stays the same share of
  an order) and a buffer that covers the reference's time of FAS consumption (500 units at 4 FAS of
  90 s: 11,250 s), in whole batches, at least one per type and one more (room for the type a
  FAS waits for: a smaller buffer deadlocks on small lines).

Same spec and seed, same line."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.config import MAX_TIME_S, LineConfig
from twin.names import Name

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
MAX_TYPES = 500
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
    fill: Annotated[float, Field(gt=0, le=1.5)] = 0.97
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
        exact = spec.load / (spec.fill * float(np.sum(1 / fas_times)))
        pas_time = max(1, round(exact))
        fas_times = np.maximum(1, np.rint(fas_times * pas_time / exact)).astype(int)
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
            raise ValueError(
                f"batch_size {spec.batch_size}: a buffer of {capacity:,} units takes the PAS "
                f"{capacity * pas_time:,} s to fill, more than a week ({MAX_TIME_S:,} s)"
            )
        if int(fas_times.max()) > MAX_TIME_S:
            raise ValueError(f"load {spec.load:g}: a FAS unit time would exceed a week ({MAX_TIME_S:,} s)")
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
