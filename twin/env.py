"""The gymnasium env on the twin: each step is one PAS decision of `problem.md`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from twin.config import LineConfig, WeekConfig, default_config_dir, load_calendar, load_line, load_week
from twin.decision import Decision, DecisionRequest
from twin.env_settings import EnvSettings, Task
from twin.errors import ConfigError, InvalidDecision, SimulationError
from twin.line import Engine, Line
from twin.observation import OBS_HIGH, OBS_LOW, Assessment, Observer
from twin.registration import register
from twin.results import Results, Trace, headline
from twin.reward import decision_reward
from twin.scenario import Scenario
from twin.weekgen import WeekGenerator

WeekSource = Sequence[WeekConfig] | WeekGenerator


def episode_kpis(results: Results) -> dict[str, Any]:
    """The KPIs an episode reports in `info["kpis"]` when it ends: the headline KPIs, and what a
    curriculum reads (the work a deadlock lost, the batch size)."""
    return headline(results, "batches", "shortfall_s", "makespan_s", "batch_size")


class LineEnv(gym.Env[np.ndarray, np.int64]):
    """
    ## Description
    The PAS of a two-stage line (`problem.md`) chooses the type of its next batch. The twin runs
    from one decision point (start of the week, or a batch entering the buffer) to the next; the
    FAS follow their weekly plans and starve when their type is missing.

    ## Action Space
    `Discrete(n)`: the index of the next batch's type in the line's `types` (with
    `EnvSettings.observation = "compact"`: `Discrete(top_k)`, a slot of the candidate list,
    `twin.observation`). `action_masks()`
    returns the allowed types: those with a positive remaining requirement; with
    `EnvSettings.mask = "deadlines"` only those after which every zero-idle deadline can still be
    met (`twin.slack`; all of them when none can); with `Task.mask_top_k = k` the k most urgent of
    these (earliest range, then largest requirement).
    An action outside the mask raises `InvalidDecision`; it is never repaired.

    ## Observation Space
    `Box(-1, 2, (4n + 3,), float32)`, n = number of types (`(6n + 3,)` with
    `EnvSettings.observation = "deadlines"`, `(7n + 3,)` with `"runs"`):

    | index      | feature                                                     | scale             |
    |------------|-------------------------------------------------------------|-------------------|
    | 0..n-1     | units required in the demand window (24 h), net of stock    | / buffer capacity |
    | n..2n-1    | units required until the end of the plans, net of stock     | / window capacity |
    | 2n..3n-1   | range: working time until the type's stock runs out         | / range scale, ≤1 |
    | 3n..4n-1   | one-hot of the type the PAS is set up for (all 0: none)     |                   |
    | 4n         | buffer fill                                                 | / capacity        |
    | 4n+1       | working time elapsed                                        | / working week    |
    | 4n+2       | batch size                                                  | / capacity        |
    | 4n+3..5n+2 | `deadlines`, `runs`: positions of freedom left in the demand   | × batch size      |
    |            | window if the type is built now (< 0: a deadline is missed) | / capacity        |
    | 5n+3..6n+2 | `deadlines`, `runs`: position of the type's next deadline      | × batch size      |
    |            |                                                             | / capacity, ≤ 2   |
    | 6n+3..7n+2 | `runs` only: batches of the type the PAS can build in a row | × batch size      |
    |            | from now and still meet every deadline                      | / capacity, ≤ 2   |

    `compact`: `(8 top_k + 6 families + 4,)` whatever n: per candidate slot, per setup family
    and global features (`Observer.observe_compact`).

    Window capacity = units all FAS can take in the window at their unit times. Values are
    clipped to [-1, 2].

    ## Rewards
    Per decision `r = r_crit + r_safe + beta * r_setup` (`twin.reward.decision_reward`; the
    constants and their units in `EnvSettings`):
    `r_crit = -criticality_weight * sum_k required_24h(k) / range_h(k)` and
    `r_safe = safety_penalty * #{k : range(k) < safety_time_s}`, both on the state the decision
    leads to and scaled by `batch_size / reference_batch_size`; `r_setup = -S[prev][next]` with
    `beta = setup_weight * Task.setup_weight_scale`. An episode that ends in deadlock adds
    `deadlock_penalty * (1 - completion)`.

    ## Starting State
    A week drawn with the env's `np_random` from its list (or generated from a seed it draws),
    initial stock and setup as the week defines; the FAS start, then the first decision.

    ## Episode End
    Terminated when no type is valid (the PAS stops; the twin runs the FAS to the end of their
    plans) or in deadlock. Never truncated. The last step's `info["kpis"]` holds the run's KPIs
    and `info["task"]` the task it was played under.

    ## Arguments
    `line` (LineConfig or path; default the embedded reference line), `weeks` (weeks, week
    folders, or a `WeekGenerator`; default the embedded week w1, or for a line it is no week of,
    weeks generated on its calendar), `batch_size` (default the
    line's), `settings` (`EnvSettings`), `task` (`Task`; change it with `set_task`, effective at
    the next reset). `reset(options={"week": i})` picks week i of the list.

    ## Version History
    * v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's class attribute

    def __init__(
        self,
        line: LineConfig | Path | str | None = None,
        weeks: WeekSource | Sequence[Path | str] | None = None,
        batch_size: int | None = None,
        settings: EnvSettings | None = None,
        task: Task | None = None,
    ) -> None:
        super().__init__()
        config = default_config_dir()
        self.line = line if isinstance(line, LineConfig) else load_line(line or config / "line.toml")
        self.weeks = self._week_source(weeks, config)
        self.batch_size = batch_size or self.line.pas.batch_size
        self.settings = settings or EnvSettings()
        self.task = task or Task()
        self._next_task = self.task
        n = len(self.line.types)
        self.action_space = spaces.Discrete(Observer.actions(n, self.settings))
        self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, (Observer.size(n, self.settings),), np.float32)
        self._scenarios: dict[tuple[int, int], Scenario] = {}
        self._engine = Engine()
        self._line: Line | None = None
        self._observer: Observer | None = None
        self._request: DecisionRequest | None = None
        self._assessment: Assessment | None = None
        self._obs = np.zeros(self.observation_space.shape, np.float32)

    def _week_source(self, weeks: WeekSource | Sequence[Path | str] | None, config: Path) -> WeekSource:
        if weeks is None:
            w1 = config / "weeks" / "w1"
            try:
                return [load_week(w1, self.line)]
            except ConfigError:  # a week of another line: its calendar is this line's too
                return WeekGenerator(self.line, load_calendar(w1, self.line))
        if isinstance(weeks, WeekGenerator):
            return weeks
        loaded = [w if isinstance(w, WeekConfig) else load_week(w, self.line) for w in weeks]
        if not loaded:
            raise ValueError("weeks: give at least one week")
        return loaded

    # -- curriculum ----------------------------------------------------------------------------
    def set_task(self, task: Task) -> None:
        """Switch to another curriculum task from the next reset on."""
        self._next_task = task

    @property
    def current_batch_size(self) -> int:
        return self.task.batch_size or self.batch_size

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.task = self._next_task
        scenario = self._draw_scenario(options or {})
        self._line = Line(scenario, self._engine)
        self._observer = Observer(scenario, self.settings)
        request = self._line.start()
        if request is None:
            raise SimulationError("the week needs no PAS batch at all: nothing to decide")
        self._enter(request)
        return self._obs, {}

    def _draw_scenario(self, options: dict[str, Any]) -> Scenario:
        size = self.current_batch_size
        if isinstance(self.weeks, WeekGenerator):
            week = self.weeks.generate(int(self.np_random.integers(2**31)))
            return Scenario.build(self.line, week, size)
        index = options.get("week")
        if index is None:
            index = int(self.np_random.integers(len(self.weeks)))
        elif not 0 <= index < len(self.weeks):
            raise ValueError(f"options['week'] = {index}: the env has {len(self.weeks)} weeks")
        key = (index, size)
        if key not in self._scenarios:
            self._scenarios[key] = Scenario.build(self.line, self.weeks[index], size)
        return self._scenarios[key]

    def _enter(self, request: DecisionRequest) -> Assessment:
        assert self._observer is not None
        self._request = request
        self._assessment = self._observer.assess(request, self.task.mask_top_k)
        self._obs = self._observer.observe(request, self._assessment)
        return self._assessment

    def action_masks(self) -> np.ndarray:
        """The types the agent may choose now (sb3-contrib's MaskablePPO reads this)."""
        if self._assessment is None or self._observer is None:
            raise SimulationError("call reset() before action_masks()")
        return self._observer.mask(self._assessment)

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        line, request, assessment = self._line, self._request, self._assessment
        if line is None or request is None or assessment is None:
            raise SimulationError("the episode has ended; call reset()")
        chosen = Observer.chosen(assessment, int(action))
        if chosen is None:
            names = [self.line.types[c] for c in assessment.allowed]
            raise InvalidDecision(
                f"action {int(action)} is outside the action mask at decision {request.index} ({names})"
            )
        k = chosen
        following = line.decide(Decision(k))
        info: dict[str, Any] = {}
        if following is None:
            self._request = None
            results = line.results()
            info["kpis"] = episode_kpis(results)
            info["task"] = self.task
            outcome: Assessment | Results = results
        else:
            outcome = self._enter(following)
        effort = line.trace.batches[-1].setup_effort
        terms = decision_reward(self.settings, self.task, effort, request.batch_size, outcome)
        info["reward_terms"] = terms
        return self._obs, terms.total, following is None, False, info

    @property
    def request(self) -> DecisionRequest | None:
        """The pending decision request (None after the episode ended)."""
        return self._request

    def results(self) -> tuple[Results, Trace]:
        """KPIs and trace of the finished episode."""
        if self._line is None:
            raise SimulationError("no episode has run")
        return self._line.results(), self._line.trace


register()  # `import twin.env` (or `twin.LineEnv`) makes `gym.make("linetwin/Line-v0")` work
