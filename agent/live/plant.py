"""A plant file: the lines one `linetwin serve --plant` serves, each under its own MQTT root, and
which of them the agent steers (`active`) or only advises (`shadow`).

    [rollout]                     # optional: the share of lines that are active (default 0: none)
    active_share = 0.1
    seed = 0

    [[lines]]
    root = "acme/plant1/assembly/line1"
    week = "weeks/w1"             # paths relative to the plant file's folder
    line = "line.toml"            # optional (default: the reference line)
    mode = "active"               # optional: overrides the rollout for this line
    policy = "setup-aware"        # optional (default: serve's --policy; rl:MODEL as well)
    batch_size = 50               # optional (default: the line's)
    name = "line1"                # optional: the `line` tag of its metrics (default: the root)
    journal = "journals/l1.jsonl" # optional (default: runs/serve/<root hash>-<week start>.jsonl)

Gradual deployment (shadow, then A/B, then all): a line without `mode` is active when the seeded
hash of its root falls below `active_share`, so the assignment never depends on the order of the
lines or on the other lines, and raising the share only adds active lines (10 % -> 50 % -> 100 %
keeps the first 10 % active).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from agent.planners.registry import RL, canonical
from bridge.topics import Topics
from twin.config import decode_text, load_toml_model
from twin.errors import ConfigError, EntryError
from twin.keylines import key_lines, line_of

ACTIVE = "active"
SHADOW = "shadow"
Arm = Literal["active", "shadow"]


def _root(root: str) -> str:
    Topics(root)  # its ValueError states the rule
    return root


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Rollout(_Strict):
    """Which lines without their own `mode` are active."""

    active_share: float = Field(0.0, ge=0.0, le=1.0, description="share of the lines that are active")
    seed: int = Field(0, ge=0, description="seed of the assignment (another seed, another sample of lines)")


class PlantLine(_Strict):
    """One line of the plant: its root, its files and how the agent serves it."""

    root: Annotated[str, AfterValidator(_root)] = Field(description="its MQTT topic root")
    week: str = Field(min_length=1, description="week folder")
    line: str | None = Field(None, min_length=1, description="line.toml (default: the reference line)")
    mode: Arm | None = Field(None, description="active or shadow (default: by [rollout])")
    policy: str | None = Field(None, min_length=1, description="the deciding policy (default: --policy)")
    batch_size: int | None = Field(None, ge=1, description="units per batch (default: the line's)")
    name: str | None = Field(None, min_length=1, description="its `line` tag in the metrics (default: root)")
    journal: str | None = Field(None, min_length=1, description="its journal (default: per root and week)")


class PlantConfig(_Strict):
    """A `plant.toml`."""

    rollout: Rollout = Rollout(active_share=0.0, seed=0)
    lines: list[PlantLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> PlantConfig:
        roots: dict[str, int] = {}
        names: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            for other, j in roots.items():
                if (
                    line.root == other
                    or line.root.startswith(other + "/")
                    or other.startswith(line.root + "/")
                ):
                    raise EntryError(
                        ("lines", i, "root"),
                        f"lies under or over the root of lines[{j}] ({other}): one line's topics would "
                        "be read as the other's; give every line a root of its own",
                    )
            roots[line.root] = i
            name = line.name or line.root
            if name in names:
                raise EntryError(("lines", i, "name"), f"is the metrics name of lines[{names[name]}] too")
            names[name] = i
        return self


def arm_of(root: str, active_share: float, seed: int = 0) -> str:
    """`active` when the seeded hash of `root` (uniform in [0, 1)) falls below `active_share`."""
    digest = hashlib.sha256(f"{seed}:{root}".encode()).digest()
    return ACTIVE if int.from_bytes(digest[:8], "big") / 2**64 < active_share else SHADOW


def _policy_in(folder: Path, policy: str | None) -> str | None:
    """A line's policy, the model of `rl:MODEL` relative to the plant file's folder."""
    if policy is None:
        return None
    kind, _, model = canonical(policy).partition(":")
    if kind == RL and model:
        return f"{RL}:{folder / model}"
    return policy


@dataclass(frozen=True)
class ServedLine:
    """One line of a plant file, its paths resolved and its arm decided."""

    index: int
    root: str
    week: Path
    line: Path | None
    mode: str
    policy: str | None
    batch_size: int | None
    name: str
    journal: Path | None
    chosen: bool
    """Whether the plant file named its mode (else the rollout chose it)."""


class Plant:
    """A loaded plant file: `lines` in the file's order; `problem` turns an error about one line's
    key into a file error naming the plant file, the line and the key."""

    def __init__(self, path: Path, config: PlantConfig) -> None:
        self.path = path
        self.config = config
        self._lines = key_lines(decode_text(path, path.read_bytes()))
        folder = path.parent
        rollout = config.rollout
        self.lines = [
            ServedLine(
                index=i,
                root=entry.root,
                week=folder / entry.week,
                line=folder / entry.line if entry.line is not None else None,
                mode=entry.mode or arm_of(entry.root, rollout.active_share, rollout.seed),
                policy=_policy_in(folder, entry.policy),
                batch_size=entry.batch_size,
                name=entry.name or entry.root,
                journal=folder / entry.journal if entry.journal is not None else None,
                chosen=entry.mode is not None,
            )
            for i, entry in enumerate(config.lines)
        ]
        journals: dict[Path, ServedLine] = {}
        for served in self.lines:  # one file however spelled (j.jsonl, ./j.jsonl, ../plant/j.jsonl)
            if served.journal is None:
                continue
            other = journals.setdefault(served.journal.resolve(), served)
            if other is not served:
                raise self.problem(
                    served,
                    "journal",
                    config.lines[served.index].journal,
                    f"is the journal of lines[{other.index}] too ({config.lines[other.index].journal}): "
                    "two services would write one file; give every line a journal of its own",
                )

    def problem(self, line: ServedLine, key: str, value: object, reason: str) -> ConfigError:
        """A ConfigError about `key` of the plant file's line `line`."""
        at = line_of(self._lines, ("lines", line.index, key))
        return ConfigError(self.path, f"lines[{line.index}].{key}", value, reason, line=at)

    def summary(self) -> str:
        """`30 lines: 3 active (2 by the rollout of 10 %, seed 0), 27 shadow`."""
        active = [line for line in self.lines if line.mode == ACTIVE]
        rollout = self.config.rollout
        by_share = sum(not line.chosen for line in active)
        return (
            f"{len(self.lines)} lines: {len(active)} active ({by_share} by the rollout of "
            f"{rollout.active_share:.0%}, seed {rollout.seed}), {len(self.lines) - len(active)} shadow"
        )


def load_plant(path: Path | str) -> Plant:
    """Read and check a plant file; every error names the file, the line, the key and the value."""
    path = Path(path)
    return Plant(path, load_toml_model(path, PlantConfig))
