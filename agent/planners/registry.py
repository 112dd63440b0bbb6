"""Every planner by name, as Gymnasium keeps its registry beside its envs.

Names: a rule (`random`, `first-fit`, `earliest-runout`, `setup-aware`), `rules` (all of them,
for comparisons), `cpsat` (the exact planner), and `rl` or `rl:MODEL` (a trained agent; `rl` alone
is the shipped one). `ppo`/`ppo:MODEL` are the old spelling of `rl`, still accepted.

`make_policy` builds a decision policy (what `simulate` and `serve` run); `parse_planners` reads
a list of planners for a comparison (`plan`, `compare`). Errors name the parameter, not a flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.errors import UsageError, suggest
from agent.planners.policies import RULES, Policy, make_rule
from twin.config import default_config_dir

CPSAT = "cpsat"
"""The exact planner's name (`agent.planners.cpsat`, loaded only when it plans: OR-Tools is heavy)."""
DEFAULT_MODEL = default_config_dir() / "agents" / "reference.zip"
"""The shipped agent (override the folder with $LINETWIN_CONFIG)."""
RL = "rl"
"""The trained agent's name, `rl` or `rl:MODEL`."""
RULES_ALIAS = "rules"
ALIASES = {"cp-sat": CPSAT, "cp_sat": CPSAT, "CP-SAT": CPSAT, "ppo": RL}
"""Other spellings of a planner's name that are taken for it."""
POLICIES = f"{', '.join(RULES)}, {RL}[:MODEL]"
"""Every decision policy by name, as help texts and errors list them."""


def canonical(name: str) -> str:
    """A planner's name in its one spelling (`ppo` -> `rl`, `ppo:M` -> `rl:M`, `cp-sat` -> `cpsat`);
    any other name as it is."""
    kind, sep, rest = name.partition(":")
    if ALIASES.get(kind, kind) == RL:
        return RL + sep + rest
    return ALIASES.get(name, name)


def _split(name: str, param: str, value: str) -> tuple[str, Path | None]:
    """`rl:MODEL` -> (`rl`, MODEL); any other name -> (its canonical spelling, None). An `rl:`
    without its model raises UsageError naming `param` and `value` (what the user gave)."""
    spelt = canonical(name)
    kind, sep, path = spelt.partition(":")
    if kind == RL and sep:
        if not path:
            raise UsageError(f"{name!r}: name the model after the colon, e.g. rl:agent.zip", param, value)
        return RL, Path(path)
    return spelt, None


def make_policy(name: str, seed: int, model: Path | None = None) -> Policy:
    """A decision policy by name: a rule, or `rl`/`rl:MODEL`, the trained agent of `model`
    (default: the shipped one), deterministic. Raises UsageError naming `name` or `model`."""
    kind, named_model = _split(name, "policy", name)
    if kind == RL:
        if named_model is not None and model is not None and named_model.resolve() != model.resolve():
            raise UsageError(f"{name!r} names the model {named_model} already: name it once", "model", model)
        from agent.planners.rl import RLPolicy  # torch only when an agent plans

        return RLPolicy.from_file(named_model or model or DEFAULT_MODEL, deterministic=True, seed=seed)
    if kind not in RULES:
        hint = suggest(name, [*RULES, RL]) or f"; choose one of {POLICIES}"
        raise UsageError(f"unknown policy {name!r}{hint}", "policy")
    if model is not None:
        raise UsageError(f"only for the trained agent ({RL}), not for the rule {name!r}", "model", model)
    return make_rule(kind, seed)


@dataclass(frozen=True)
class PlannerSpec:
    """One planner to run: its kind (a rule name, `cpsat` or `rl`) and, for `rl`, the model."""

    kind: str
    model: Path | None = None

    @property
    def label(self) -> str:
        return f"{RL}:{self.model}" if self.kind == RL else self.kind


def parse_planners(text: str, default_model: Path = DEFAULT_MODEL) -> list[PlannerSpec]:
    """`rules,cpsat,rl:MODEL` -> planner specs in that order (`rules` expands to every rule).
    Raises UsageError (naming `planners`) for an unknown, missing or repeated name."""
    if not text.strip():
        raise UsageError("name at least one planner", "planners")
    specs: list[PlannerSpec] = []
    for item in (s.strip() for s in text.split(",")):
        kind, model = _split(item, "planners", text) if item else ("", None)
        if kind == RULES_ALIAS:
            specs.extend(PlannerSpec(name) for name in RULES)
        elif kind in RULES or kind == CPSAT:
            specs.append(PlannerSpec(kind))
        elif kind == RL:
            specs.append(PlannerSpec(RL, model or default_model))
        else:
            names = [RULES_ALIAS, *RULES, CPSAT, RL]
            hint = suggest(item, names) or f"; choose from {', '.join(names[:-1])}, {RL}[:MODEL]"
            raise UsageError(f"unknown planner {item!r}{hint}", "planners", text)
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"a planner is named twice in {text!r}", "planners")
    return specs
