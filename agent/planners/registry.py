"""Every planner by name, as Gymnasium keeps its registry beside its envs.

Names: a rule (`random`, `first-fit`, `earliest-runout`, `setup-aware`), `rules` (all of them,
for comparisons), `cpsat` (the exact planner), `rl` or `rl:MODEL` (a trained agent; `rl` alone
is the shipped one), `rollout:BASE` and `beam:BASE` (searches with the twin over a base policy:
`rollout:setup-aware`, `rollout:rl`, `beam:rl:MODEL`), `rl+rollout` or `rl+rollout:MODEL` (search at
decision time: a rollout over the trained agent with a budget per decision, `DECISION_TIME_S`) and
`best` (the planning portfolio). `ppo`/`ppo:MODEL` are the old spelling of `rl`, still accepted.

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
DEFAULT_MODEL = default_config_dir() / "agents" / "imitation.zip"
"""The shipped agent, `rl` (override the folder with $LINETWIN_CONFIG): imitation of the best plans
then PPO, on the deadline observation and mask (docs/training.md#the-shipped-agent)."""
REFERENCE_MODEL = default_config_dir() / "agents" / "reference.zip"
"""The paper's agent (MaskablePPO, curriculum A, the basic observation): `rl:` this path."""
RL = "rl"
"""The trained agent's name, `rl` or `rl:MODEL`."""
ROLLOUT = "rollout"
BEAM = "beam"
SEARCHES = (ROLLOUT, BEAM)
"""Searches with the twin over a base policy (`agent.planners.rollout`): `rollout:BASE`, `beam:BASE`."""
RL_ROLLOUT = "rl+rollout"
"""Search at decision time, `rl+rollout[:MODEL]`: a rollout over the agent, `DECISION_TIME_S` a decision."""
DECISION_TIME_S = 0.5
"""The per-decision budget of `rl+rollout` (measured: benchmarks/bench_rl_rollout.py)."""
BEST = "best"
"""The planning portfolio's name (`agent.planners.portfolio`): the best plan any planner finds in time."""
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


def _split_search(name: str, param: str, value: str) -> tuple[str, str, Path | None] | None:
    """`rollout:BASE` / `beam:BASE` -> (search, base policy's kind, its model or None); None for
    any other name. A missing or unknown base raises UsageError naming `param` and `value`."""
    kind, _, base = name.partition(":")
    if kind not in SEARCHES:
        return None
    if not base:
        raise UsageError(
            f"{name!r}: name the base policy after the colon, e.g. {kind}:setup-aware", param, value
        )
    base_kind, model = _split(base, param, value)
    if base_kind not in RULES and base_kind != RL:
        hint = suggest(base, [*RULES, RL]) or f"; choose one of {POLICIES}"
        raise UsageError(f"{name!r}: the base policy {base!r} is not a policy{hint}", param, value)
    return kind, base_kind, model


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
        if kind.partition(":")[0] in (*SEARCHES, BEST, CPSAT, RL_ROLLOUT):
            raise UsageError(
                f"{name!r} plans a whole week, it is no policy: plan with it (linetwin plan)", "policy"
            )
        hint = suggest(name, [*RULES, RL]) or f"; choose one of {POLICIES}"
        raise UsageError(f"unknown policy {name!r}{hint}", "policy")
    if model is not None:
        raise UsageError(f"only for the trained agent ({RL}), not for the rule {name!r}", "model", model)
    return make_rule(kind, seed)


@dataclass(frozen=True)
class PlannerSpec:
    """One planner to run: its kind (a rule name, `cpsat`, `rl`, `best`, `rollout` or `beam`),
    for a search the kind of its base policy (a rule or `rl`), and for `rl` (or a base `rl`) the model."""

    kind: str
    model: Path | None = None
    base: str | None = None
    decision_time_s: float | None = None
    """A rollout's budget per decision (`rl+rollout`); None: none."""

    @property
    def policy_label(self) -> str:
        """The decision policy's label: the rule, `rl:MODEL`, or a search's base policy's."""
        kind = self.base if self.kind in SEARCHES and self.base is not None else self.kind
        return f"{RL}:{self.model}" if kind == RL else kind

    @property
    def label(self) -> str:
        if self.decision_time_s is not None and self.kind == ROLLOUT and self.base == RL:
            return RL_ROLLOUT if self.model == DEFAULT_MODEL else f"{RL_ROLLOUT}:{self.model}"
        return f"{self.kind}:{self.policy_label}" if self.kind in SEARCHES else self.policy_label


def _rl_rollout(name: str, param: str, value: str) -> tuple[Path | None] | None:
    """`rl+rollout` / `rl+rollout:MODEL` -> (MODEL or None,); None for any other name."""
    kind, sep, path = name.partition(":")
    if kind != RL_ROLLOUT:
        return None
    if sep and not path:
        raise UsageError(f"{name!r}: name the model after the colon, e.g. rl+rollout:agent.zip", param, value)
    return (Path(path) if path else None,)


def parse_planners(text: str, default_model: Path = DEFAULT_MODEL) -> list[PlannerSpec]:
    """`rules,cpsat,rl:MODEL` -> planner specs in that order (`rules` expands to every rule).
    Raises UsageError (naming `planners`) for an unknown, missing or repeated name."""
    if not text.strip():
        raise UsageError("name at least one planner", "planners")
    specs: list[PlannerSpec] = []
    for item in (s.strip() for s in text.split(",")):
        at_decisions = _rl_rollout(item, "planners", text)
        if at_decisions is not None:
            specs.append(PlannerSpec(ROLLOUT, at_decisions[0] or default_model, RL, DECISION_TIME_S))
            continue
        search = _split_search(item, "planners", text)
        if search is not None:
            kind, base, model = search
            specs.append(PlannerSpec(kind, (model or default_model) if base == RL else None, base))
            continue
        kind, model = _split(item, "planners", text) if item else ("", None)
        if kind == RULES_ALIAS:
            specs.extend(PlannerSpec(name) for name in RULES)
        elif kind in RULES or kind in (CPSAT, BEST):
            specs.append(PlannerSpec(kind))
        elif kind == RL:
            specs.append(PlannerSpec(RL, model or default_model))
        else:
            names = [RULES_ALIAS, *RULES, CPSAT, BEST, RL, RL_ROLLOUT]
            searches = ", ".join(f"{s}:POLICY" for s in SEARCHES)
            hint = suggest(item, names) or (
                f"; choose from {', '.join(names[:-2])}, {RL}[:MODEL], {RL_ROLLOUT}[:MODEL], {searches}"
            )
            raise UsageError(f"unknown planner {item!r}{hint}", "planners", text)
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UsageError(f"a planner is named twice in {text!r}", "planners")
    return specs
