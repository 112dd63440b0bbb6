"""Expert data: the portfolio's best plans of generated weeks, replayed through the gym env.

A folder of expert data holds one compressed `s<seed>_b<size>.npz` per (week seed, batch size) --
per decision the observation (float32), the action mask (bool), the expert's action, the env's
reward and whether the action lay outside the env's mask (then the mask kept is the full valid
one) -- and `manifest.json`: what makes the weeks again (line, template week, generator spec,
seeds), the planner's and the env's settings, and per plan its KPIs and provenance.

Plans are made as Ray tasks (a local Ray or a cluster: `agent.distributed`) and each file is
written under a temporary name, then renamed: a folder is resumed by making only the plans whose
file is missing or unreadable (a retried task, whose worker died, makes its plan again)."""

from __future__ import annotations

import math
import os
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.distributed import Executor
from agent.errors import UsageError
from agent.folders import make_folder
from twin import (
    Assessment,
    Decision,
    EnvSettings,
    Line,
    LineConfig,
    LineEnv,
    Observer,
    Results,
    Scenario,
    Task,
    WeekConfig,
    WeekGenerator,
    WeekSpec,
    episode_kpis,
    load_calendar,
    load_line,
)
from twin.line import Engine
from twin.reward import decision_reward

MANIFEST = "manifest.json"
ARRAYS = ("obs", "masks", "actions", "rewards", "outside")
"""Per-decision arrays of a plan's file (beside `sequence` and `meta`)."""


class ExpertSettings(BaseModel):
    """What a folder of expert data was made with; every plan in it shares these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: Path
    template_week: Path
    """Calendar of the generated weeks (`WeekGenerator`'s template)."""
    week_spec: WeekSpec = Field(default_factory=WeekSpec)
    types: list[str]
    env_settings: EnvSettings = Field(default_factory=EnvSettings)
    time_limit_s: float
    """The portfolio's wall seconds per plan."""
    windows: int
    """Neighbourhood windows per plan (fixed work: the same seed gives the same plan)."""
    cpsat_s: float | None = None
    """CP-SAT's deterministic seconds per plan (None: the portfolio's share of the time limit)."""
    planner: str = "best"
    """`best` (the planning portfolio) or a rule by name: `slack-greedy` plans a plant-size week
    in seconds, where the portfolio's exact planners do not scale."""


class PlanRecord(BaseModel):
    """One plan of the data: its week, its KPIs in the twin, its provenance and its trajectory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    """The week's seed (`WeekGenerator.generate`), also the portfolio's seed."""
    batch_size: int
    setup_effort: float
    idle_s: float
    source: str
    bound: float | None
    gap: float | None
    stopped: str
    """Why the search ended (`time limit`: the plan may differ on a faster machine)."""
    stages_s: dict[str, float] = Field(default_factory=dict)
    steps: int
    wall_s: float
    outside_mask: int
    """Expert actions the env's mask did not allow (the step keeps the full valid mask)."""
    file: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settings: ExpertSettings
    seeds: list[int] = Field(default_factory=list)
    batch_sizes: list[int] = Field(default_factory=list)
    plans: list[PlanRecord] = Field(default_factory=list)


@dataclass(frozen=True)
class Trajectory:
    """A plan replayed through the env: one row per decision."""

    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    outside: np.ndarray
    kpis: dict[str, Any]


def plan_file(seed: int, batch_size: int) -> str:
    return f"s{seed}_b{batch_size}.npz"


def generator(settings: ExpertSettings) -> WeekGenerator:
    line = load_line(settings.line)
    return WeekGenerator(line, load_calendar(settings.template_week, line), settings.week_spec)


def expert_week(settings: ExpertSettings, seed: int) -> WeekConfig:
    """The generated week of `seed`, as the data was made from it."""
    key = settings.model_dump_json()
    if key not in _GENERATORS:
        _GENERATORS[key] = generator(settings)
    return _GENERATORS[key].generate(seed)


_GENERATORS: dict[str, WeekGenerator] = {}
"""The generator of each settings this process made weeks with (a worker makes many)."""


def _stepping(settings: EnvSettings) -> EnvSettings:
    """`settings` with the mask of every type still needed, so that an expert action the chosen
    mask refuses can still be played (the observation and mask recorded are `settings`' own)."""
    if "mask" in EnvSettings.model_fields and getattr(settings, "mask", None) != "remaining":
        return settings.model_copy(update={"mask": "remaining"})
    return settings


def replay(
    sequence: Sequence[int], week: WeekConfig, line: LineConfig, batch_size: int, settings: EnvSettings
) -> Trajectory:
    """Play `sequence` (type indices) through `LineEnv(line, [week], batch_size, settings)` and
    record per decision the observation, the mask, the action and the reward. An action outside
    the mask is counted in `outside` and its step keeps the full valid mask; the replay goes on
    until the sequence or the week ends."""
    if settings.observation == "compact":
        return _replay_slots(sequence, week, line, batch_size, settings)
    stepping = _stepping(settings)
    env = LineEnv(line, [week], batch_size, stepping)
    observation, _ = env.reset(options={"week": 0})
    own = None if stepping is settings else Observer(Scenario.build(line, week, batch_size), settings)
    n = len(line.types)
    obs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    rewards: list[float] = []
    outside: list[bool] = []
    kpis: dict[str, Any] = {}
    for k in sequence:
        request = env.request
        assert request is not None
        if own is not None:
            assessment = own.assess(request)
            observation, mask = own.observe(request, assessment), own.mask(assessment)
        else:
            mask = env.action_masks()
        valid = np.zeros(n, dtype=bool)
        valid[list(request.valid)] = True
        refused = not mask[k]
        obs.append(np.asarray(observation, dtype=np.float32).copy())
        masks.append(valid if refused else np.asarray(mask, dtype=bool).copy())
        outside.append(refused)
        observation, reward, terminated, truncated, info = env.step(k)
        rewards.append(float(reward))
        if terminated or truncated:
            kpis = info["kpis"]
            break
    steps = len(obs)
    return Trajectory(
        obs=np.array(obs, dtype=np.float32).reshape(steps, -1),
        masks=np.array(masks, dtype=bool).reshape(steps, n),
        actions=np.array(sequence[:steps], dtype=np.int64),
        rewards=np.array(rewards, dtype=np.float32),
        outside=np.array(outside, dtype=bool),
        kpis=kpis,
    )


def _replay_slots(
    sequence: Sequence[int], week: WeekConfig, line: LineConfig, batch_size: int, settings: EnvSettings
) -> Trajectory:
    """`replay` for slot actions (the `compact` observation): the twin steps with the types, each
    row records the slot of the expert's type; a type outside the slots is recorded as action -1
    (counted in `outside`; imitation learns nothing from it). The rewards are the env's."""
    scenario = Scenario.build(line, week, batch_size)
    observer = Observer(scenario, settings)
    twin = Line(scenario, Engine())
    request = twin.start()
    task = Task()
    obs: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    actions: list[int] = []
    rewards: list[float] = []
    kpis: dict[str, Any] = {}
    assessment = None if request is None else observer.assess(request)
    for k in sequence:
        if request is None or assessment is None:
            break
        action = Observer.action_of(assessment, k)
        obs.append(observer.observe(request, assessment))
        masks.append(observer.mask(assessment))
        actions.append(-1 if action is None else action)
        following = twin.decide(Decision(k))
        outcome: Assessment | Results
        if following is None:
            outcome = results = twin.results()
            kpis = episode_kpis(results)
        else:
            outcome = assessment = observer.assess(following)
        effort = twin.trace.batches[-1].setup_effort
        rewards.append(decision_reward(settings, task, effort, request.batch_size, outcome).total)
        request = following
    steps = len(obs)
    chosen = np.array(actions, dtype=np.int64)
    return Trajectory(
        obs=np.array(obs, dtype=np.float32).reshape(steps, -1),
        masks=np.array(masks, dtype=bool).reshape(steps, settings.top_k),
        actions=chosen,
        rewards=np.array(rewards, dtype=np.float32),
        outside=chosen < 0,
        kpis=kpis,
    )


def make_plan(settings: ExpertSettings, seed: int, batch_size: int, out: Path) -> PlanRecord:
    """The best plan of week `seed` at `batch_size` (or the rule's: `settings.planner`), replayed
    and written to `out` (atomically)."""
    from agent.planners.policies import make_rule
    from agent.planners.portfolio import BestSettings, plan_best  # the planners: in the worker only
    from agent.planners.run import run_planner

    start = time.perf_counter()
    line = load_line(settings.line)
    week = expert_week(settings, seed)
    scenario = Scenario.build(line, week, batch_size)
    if settings.planner == "best":
        best = BestSettings(
            time_limit_s=settings.time_limit_s, windows=settings.windows, seed=seed, cpsat_s=settings.cpsat_s
        )
        run, plan = plan_best(scenario, best)
        source, bound, gap, stopped = plan.source, plan.bound, plan.gap, plan.stopped
        stages = {k: round(v, 2) for k, v in plan.stages.items()}
    else:
        run = run_planner(scenario, make_rule(settings.planner, seed))
        source, bound, gap, stopped = settings.planner, None, None, "rule"
        stages = {settings.planner: round(run.wall_s, 2)}
    sequence = [b.type for b in run.trace.batches]
    trajectory = replay(sequence, week, line, batch_size, settings.env_settings)
    name = plan_file(seed, batch_size)
    record = PlanRecord(
        seed=seed,
        batch_size=batch_size,
        setup_effort=run.results.setup_effort,
        idle_s=run.results.idle_s,
        source=source,
        bound=bound,
        gap=gap,
        stopped=stopped,
        stages_s=stages,
        steps=len(trajectory.actions),
        wall_s=round(time.perf_counter() - start, 3),
        outside_mask=int(trajectory.outside.sum()),
        file=name,
    )
    _write_plan(out, record, trajectory, sequence)
    return record


def _write_plan(out: Path, record: PlanRecord, trajectory: Trajectory, sequence: Sequence[int]) -> None:
    """The plan's file, under a temporary name until it is whole."""
    arrays = {key: getattr(trajectory, key) for key in ARRAYS}
    tmp = out / f".{record.file}.tmp"
    with tmp.open("wb") as fh:
        np.savez_compressed(
            fh, **arrays, sequence=np.array(sequence, dtype=np.int64), meta=np.array(record.model_dump_json())
        )
    os.replace(tmp, out / record.file)


def rerecord(source: Path, env_settings: EnvSettings, out: Path) -> Manifest:
    """The plans of `source` replayed under other env settings (an observation or mask to compare)
    into `out`: the same weeks and sequences, the observations and masks of `env_settings`."""
    manifest = read_manifest(source, "replay_from")
    settings = manifest.settings.model_copy(update={"env_settings": env_settings})
    if out.resolve() == source.resolve():
        raise UsageError("is the data replayed: give another folder", "out", out)
    if (out / MANIFEST).exists():
        raise UsageError("already holds expert data: give a new folder (nothing was replayed)", "out", out)
    make_folder(out)
    line = load_line(settings.line)
    made = Manifest(settings=settings, seeds=manifest.seeds, batch_sizes=manifest.batch_sizes)
    for record in manifest.plans:
        found = read_plan(source / record.file)
        if found is None:
            raise UsageError(f"{record.file} is missing or unreadable", "data", source)
        sequence = found[1]["sequence"].tolist()
        week = expert_week(settings, record.seed)
        trajectory = replay(sequence, week, line, record.batch_size, env_settings)
        again = record.model_copy(update={"outside_mask": int(trajectory.outside.sum())})
        _write_plan(out, again, trajectory, sequence)
        made.plans.append(again)
    _write_manifest(out, made)
    return made


def read_plan(path: Path) -> tuple[PlanRecord, dict[str, np.ndarray]] | None:
    """A plan's record and arrays, or None when the file is missing, half-written or not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in (*ARRAYS, "sequence")}
            record = PlanRecord.model_validate_json(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return record, arrays


def read_manifest(folder: Path, flag: str = "data") -> Manifest:
    """A folder's manifest; UsageError naming `flag` when the folder holds no expert data (the
    first field that is wrong, with its value, when the manifest is broken)."""
    path = folder / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"no expert data ({MANIFEST}: {exc.strerror})", flag, folder) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(the file)"
        reason = f"{where}: {error['msg']} (value {str(error.get('input'))[:60]!r})"
        raise UsageError(f"{MANIFEST} is not an expert manifest: {reason}", flag, folder) from None


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    manifest.plans.sort(key=lambda p: (p.seed, p.batch_size))
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def check_settings(settings: ExpertSettings, batch_sizes: Iterable[int]) -> None:
    """Every input readable and every batch size one the template week can take, before any work."""
    gen = generator(settings)
    for size in batch_sizes:
        try:
            Scenario.build(gen.line, gen.template, size)
        except ValueError as exc:
            raise UsageError(str(exc), "batch_sizes", size) from None


def _progress(done: int, total: int, started: float, record: PlanRecord) -> str:
    elapsed = time.perf_counter() - started
    rate = done / elapsed if elapsed > 0 else math.inf
    eta = (total - done) / rate if rate > 0 else 0.0
    quality = f"effort {record.setup_effort:g}, idle {record.idle_s:g} s, {record.source}"
    if record.outside_mask:
        quality += f", {record.outside_mask} outside the mask"
    return (
        f"expert: {done}/{total} plans (seed {record.seed}, b={record.batch_size}: {quality}, "
        f"{record.wall_s:.1f} s), {rate * 60:.1f} plans/min, ETA {eta / 60:.1f} min"
    )


def _init_worker() -> None:
    import torch  # plan_best may play the shipped agent: one thread per process

    torch.set_num_threads(1)


def make_expert_data(
    settings: ExpertSettings,
    seeds: Sequence[int],
    batch_sizes: Sequence[int],
    out: Path,
    jobs: int = 2,
    say: Callable[[str], None] | None = None,
    ray_address: str | None = None,
) -> Manifest:
    """Make the plans of `seeds` x `batch_sizes` missing in `out` as Ray tasks (`agent.distributed`:
    a local Ray of `jobs` CPUs, the cluster at `ray_address`; one job and no cluster: here) and
    return the folder's manifest. A folder made with other settings is refused."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    check_settings(settings, batch_sizes)
    make_folder(out)
    manifest = Manifest(settings=settings)
    if (out / MANIFEST).exists():
        manifest = read_manifest(out, "out")
        if manifest.settings != settings:
            old, new = manifest.settings.model_dump(), settings.model_dump()
            key = next(k for k in new if old.get(k) != new[k])
            raise UsageError(
                f"holds expert data made with {key} = {old.get(key)}, not {new[key]}: give another folder",
                "out",
                out,
            )
    manifest.seeds = sorted({*manifest.seeds, *seeds})
    manifest.batch_sizes = sorted({*manifest.batch_sizes, *batch_sizes})
    kept = {(p.seed, p.batch_size): p for p in manifest.plans}
    todo: list[tuple[int, int]] = []
    for seed in seeds:
        for size in batch_sizes:
            found = read_plan(out / plan_file(seed, size))
            if found is not None and (found[0].seed, found[0].batch_size) == (seed, size):
                kept[(seed, size)] = found[0]
            else:
                kept.pop((seed, size), None)
                todo.append((seed, size))
    manifest.plans = list(kept.values())
    _write_manifest(out, manifest)
    total = len(seeds) * len(batch_sizes)
    say(f"expert: {total - len(todo)} of {total} plans already made; {len(todo)} to make")
    started = time.perf_counter()
    done = total - len(todo)

    def finished(record: PlanRecord) -> None:
        nonlocal done
        done += 1
        manifest.plans.append(record)
        _write_manifest(out, manifest)
        say(_progress(done - (total - len(todo)), len(todo), started, record))

    calls = [(settings, seed, size, out) for seed, size in todo]
    with Executor[PlanRecord](jobs, ray_address, setup=_init_worker) as executor:
        if todo and not executor.here:
            say(f"planning on {executor.where()}")
        for event in executor.run(make_plan, calls):
            if event is not None:
                finished(event[1])
    return manifest


@dataclass(frozen=True)
class ExpertData:
    """The decisions of every plan in one or more folders, one row each."""

    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episodes: np.ndarray
    """The plan (0, 1, ...) each row belongs to; its rows are in decision order."""
    seeds: np.ndarray
    """The week seed of each row's plan (hold out weeks, not rows)."""
    batch_sizes: np.ndarray
    settings: ExpertSettings
    """The first folder's settings (all share the types and env settings)."""


def load_expert(folders: Path | Sequence[Path]) -> ExpertData:
    """Every plan of the folders' manifests. Raises UsageError naming `data` for a folder without
    expert data, a missing or broken plan file, or folders with other types or env settings."""
    folders = [folders] if isinstance(folders, Path) else list(folders)
    if not folders:
        raise UsageError("no folder of expert data given", "data")
    parts: dict[str, list[np.ndarray]] = {key: [] for key in (*ARRAYS, "episodes", "seeds", "sizes")}
    first: ExpertSettings | None = None
    episode = 0
    for folder in folders:
        manifest = read_manifest(folder)
        settings = manifest.settings
        if first is None:
            first = settings
        for key in ("types", "env_settings"):
            if getattr(settings, key) != getattr(first, key):
                raise UsageError(f"its {key} differ from those of {folders[0]}", "data", folder)
        for record in manifest.plans:
            found = read_plan(folder / record.file)
            if found is None:
                raise UsageError(f"{record.file} is missing or unreadable: make it again", "data", folder)
            arrays = found[1]
            for key in ARRAYS:
                parts[key].append(arrays[key])
            steps = len(arrays["actions"])
            parts["episodes"].append(np.full(steps, episode, dtype=np.int64))
            parts["seeds"].append(np.full(steps, record.seed, dtype=np.int64))
            parts["sizes"].append(np.full(steps, record.batch_size, dtype=np.int64))
            episode += 1
    assert first is not None
    if episode == 0:
        raise UsageError("holds no plan yet", "data", folders[0])
    joined = {key: np.concatenate(values) for key, values in parts.items()}
    return ExpertData(
        obs=joined["obs"],
        masks=joined["masks"],
        actions=joined["actions"],
        rewards=joined["rewards"],
        episodes=joined["episodes"],
        seeds=joined["seeds"],
        batch_sizes=joined["sizes"],
        settings=first,
    )
