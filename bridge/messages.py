"""Typed payloads of every MQTT message of the contract (`v: 1`).

Inbound models ignore fields they do not know (the contract grows by optional fields only) but
reject unknown `event` values, missing fields and bad values, with strict types: an integer field
takes a JSON integer only (not `"7"`, `7.0` or `true`), `v` is the integer 1. Outbound models are
what this product publishes; `dump()` gives the compact JSON bytes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from twin.results import Kpis

STRICT = ConfigDict(extra="ignore", frozen=True, strict=True)
"""Inbound payloads: no coercion (JSON strings stay strings, numbers numbers)."""


def _integer(value: Any) -> Any:
    if type(value) is not int:  # `true` and `1.0` equal 1 in Python, and a Literal takes them
        raise ValueError(f"must be the integer 1, not {type(value).__name__} {value!r}")
    return value


Version = Annotated[Literal[1], BeforeValidator(_integer)]


class Message(BaseModel):
    """Every message: the contract version and when it happened (ISO 8601 with offset)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Version = 1
    ts: AwareDatetime

    def dump(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


class Event(Message):
    """A line event: `seq` increases by one per publisher topic."""

    model_config = STRICT
    v: Version  # required inbound: every message carries it

    seq: Annotated[int, Field(ge=0)]


TypeName = Annotated[str, Field(min_length=1, max_length=64)]
Quantity = Annotated[int, Field(ge=1)]


class BatchStartedMsg(Event):
    event: Literal["batch_started"]
    type: TypeName
    quantity: Quantity


class BatchStoredMsg(Event):
    event: Literal["batch_stored"]
    type: TypeName
    quantity: Quantity


class DownMsg(Event):
    event: Literal["down"]
    reason: str = ""


class UpMsg(Event):
    event: Literal["up"]


class UnitStartedMsg(Event):
    event: Literal["unit_started"]
    type: TypeName


class UnitFinishedMsg(Event):
    event: Literal["unit_finished"]
    type: TypeName


class StockMsg(Event):
    event: Literal["stock"]
    stock: dict[TypeName, Annotated[int, Field(ge=0)]]


class OrderMsg(BaseModel):
    model_config = STRICT

    station: str
    position: Annotated[int, Field(ge=1)]
    type: TypeName
    quantity: Quantity


class PlanMsg(Message):
    """A plan revision (retained): every station's orders from position 1."""

    model_config = STRICT
    v: Version

    event: Literal["plan"]
    seq: Annotated[int, Field(ge=0)] | None = None
    week_start: dt.date
    revision: Annotated[int, Field(ge=0)]
    orders: list[OrderMsg]


PasEventMsg = Annotated[BatchStartedMsg | BatchStoredMsg | DownMsg | UpMsg, Field(discriminator="event")]
FasEventMsg = Annotated[UnitStartedMsg | UnitFinishedMsg | DownMsg | UpMsg, Field(discriminator="event")]


# -- outbound --------------------------------------------------------------------------------
class ForecastMsg(BaseModel):
    """What the twin expects from now to the end of the week with the active policy."""

    idle_s: int
    setup_effort: float
    setups: int | None = None
    deadlock: bool | None = None
    end_ts: AwareDatetime | None = None
    """When the last FAS finishes (or the deadlock)."""


class DispatchMsg(Message):
    """The next PAS batch."""

    decision_seq: int
    decision_id: str
    type: str
    quantity: int
    policy: str
    based_on: int | None
    """`seq` of the `batch_stored` it answers (None: the first decision of the week)."""
    forecast: ForecastMsg | None
    position: int | None = None
    """1-based position of the batch in the week's PAS sequence (as in the timed plan)."""


class PlannedBatchMsg(BaseModel):
    """One batch of the timed PAS plan (local ISO times with the offset in force then)."""

    position: int
    """1-based position in the week's PAS sequence (the decision point it answers + 1)."""
    type: str
    quantity: int
    start: AwareDatetime
    """When the PAS is expected to begin it (its changeover included)."""
    end: AwareDatetime | None
    """When its last unit is expected to be built (None: never, the plan deadlocks first)."""
    changeover: bool


class PlanProvenanceMsg(BaseModel):
    """Who made a PAS plan, why, and what the planner knows about it."""

    planner: str
    """The planner `serve --planner` runs (e.g. `best`)."""
    source: str
    """Who found this plan within it (e.g. `dp (exact)`, `lns window 3-12`, `setup-aware`)."""
    reason: str
    """Why the service planned again (`week start`, `PAS down`, `plan revision`, `improve`, ...)."""
    bound: float | None
    """Lower bound on the rest of the week's setup effort at zero idle (None: not known)."""
    gap: float | None
    """(effort - bound) / effort (0: proved optimal)."""
    stopped: str
    """Why the planner stopped (`optimal`, `time limit`, `done`)."""
    planning_s: float
    """Wall seconds the planner worked on it."""
    from_position: int
    """1-based position of the first batch it planned (the decision point it was made for + 1)."""


class PasPlanMsg(Message):
    """The timed PAS plan for the rest of the week (retained on `{root}/twin/plan/pas`)."""

    revision: int
    """Increases by one with every plan the service adopts (also across restarts)."""
    week_start: dt.date
    plan_revision: int
    """The revision of the week's plan (`{root}/plan`) it was made for."""
    provenance: PlanProvenanceMsg
    forecast: ForecastMsg | None
    """What the twin expects from the plan's first batch to the end of the week."""
    gain: float | None
    """Setup effort this plan saves against the one it replaced, from the same decision point on
    (None: the first plan, or the previous one no longer applied)."""
    batches: list[PlannedBatchMsg]
    week: ForecastMsg | None = None
    """The whole week if the plan is followed: the KPIs when planning began plus the twin's
    forecast from then (the batch then in progress included)."""


class PlanRefMsg(BaseModel):
    """Where the current timed PAS plan is (`twin/state` points to it)."""

    topic: str
    revision: int
    next_position: int | None = None
    """The position of the next batch not dispatched yet: the plan's batches before it are done."""


class KpiMsg(BaseModel):
    """The contract's part of the mirrored week's KPIs (`twin.results.Kpis`, same names and types)."""

    idle_s: int
    idle_s_by_station: dict[str, int]
    setup_effort: float
    setups: int
    batches: int
    units_consumed: int
    completion: float

    @classmethod
    def of(cls, kpis: Kpis) -> KpiMsg:
        return cls.model_validate(kpis, from_attributes=True)


class BatchMsg(BaseModel):
    type: str
    quantity: int


class PasStateMsg(BaseModel):
    status: str
    batch: BatchMsg | None
    last_type: str | None


class FasStateMsg(BaseModel):
    position: int
    """1-based position of its current order in the plan (orders + 1 when done)."""
    taken: int
    state: str


class ShadowMsg(BaseModel):
    decisions: int
    compared: int
    agreed: int
    agreement: float | None


class StateMsg(Message):
    """The retained snapshot of the mirrored line."""

    stock: dict[str, int]
    fill: int
    capacity: int
    fill_ratio: float
    pas: PasStateMsg
    fas: dict[str, FasStateMsg]
    kpis: KpiMsg
    forecast: ForecastMsg | None
    shadow: ShadowMsg | None
    plan_revision: int
    events_accepted: int
    events_rejected: int
    events_restamped: int = 0
    """Accepted events applied at their receipt time: their `ts` lay too far ahead of it."""
    pas_plan: PlanRefMsg | None = None
    """The timed PAS plan the dispatches follow (`serve --planner`; None without one)."""


class AlertMsg(Message):
    """A predicted shortage."""

    type: str
    station: str
    at: AwareDatetime


TOPIC_EXCERPT = 256
"""An error names at most this many characters of the topic it answers (a broker may limit packets)."""


def _topic_excerpt(topic: str) -> str:
    return topic if len(topic) <= TOPIC_EXCERPT else topic[:TOPIC_EXCERPT] + "…"


class ErrorMsg(Message):
    """A rejected inbound message (or, with `accepted`, a notice such as a gap in `seq`)."""

    topic: Annotated[str, AfterValidator(_topic_excerpt)]
    reason: str
    payload: str
    accepted: bool = False


class StatusMsg(Message):
    status: Literal["online", "offline"]
