"""Every MQTT topic of the contract, built and parsed here only."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from twin.names import check_name

INBOUND_BRANCHES = ("pas", "fas", "buffer", "plan")
"""First topic levels under the root that carry messages from the line to the twin."""


@dataclass(frozen=True, slots=True)
class InboundTopic:
    """What an inbound topic addresses: `pas`, `fas` (with its station), `buffer` or `plan`."""

    kind: str
    station: str | None = None


@dataclass(frozen=True)
class Topics:
    """The topics under one root, e.g. `acme/plant1/assembly/line1`; each is built once, at its
    first use."""

    root: str

    def __post_init__(self) -> None:
        if (
            not self.root
            or self.root.startswith(("/", "$"))
            or self.root.endswith("/")
            or any(c in self.root for c in "#+")
            or any(not c.isprintable() for c in self.root)
        ):
            raise ValueError(
                f"topic root {self.root!r} must be non-empty, without '#', '+', control characters, "
                "outer '/' or a leading '$' (the broker's own topics)"
            )

    @cached_property
    def pas_events(self) -> str:
        return f"{self.root}/pas/events"

    def fas_events(self, station: str) -> str:
        """A FAS's topic; a station id that is not a name (`twin.names`) never becomes a level."""
        try:
            check_name(station)
        except ValueError as exc:
            raise ValueError(f"station {station!r} cannot be a topic level: {exc}") from None
        return f"{self.root}/fas/{station}/events"

    @cached_property
    def buffer_events(self) -> str:
        return f"{self.root}/buffer/events"

    @cached_property
    def plan(self) -> str:
        return f"{self.root}/plan"

    @cached_property
    def dispatch(self) -> str:
        return f"{self.root}/dispatch/pas"

    @cached_property
    def dispatch_current(self) -> str:
        return f"{self.root}/dispatch/pas/current"

    @cached_property
    def shadow_dispatch(self) -> str:
        return f"{self.root}/shadow/dispatch/pas"

    @cached_property
    def pas_plan(self) -> str:
        """The retained timed PAS plan (under `twin/`: the `plan` branch carries the week's plan
        from the line's systems to the twin)."""
        return f"{self.root}/twin/plan/pas"

    @cached_property
    def state(self) -> str:
        return f"{self.root}/twin/state"

    @cached_property
    def alerts(self) -> str:
        return f"{self.root}/twin/alerts"

    @cached_property
    def errors(self) -> str:
        return f"{self.root}/twin/errors"

    @cached_property
    def status(self) -> str:
        return f"{self.root}/twin/status"

    @cached_property
    def everything(self) -> str:
        return f"{self.root}/#"

    @cached_property
    def _prefix(self) -> str:
        return self.root + "/"

    @property
    def inbound_filters(self) -> list[str]:
        """Subscriptions of the mirror: every topic of the inbound branches (`pas`, `fas`, `buffer`,
        `plan`), so that a message on a topic the contract does not know there is answered too; the
        other branches of the root belong to the twin's own outbound topics or to other systems."""
        return [f"{self.root}/{branch}/#" for branch in INBOUND_BRANCHES]

    @property
    def inbound_names(self) -> str:
        """The inbound topics under the root, for messages that name them."""
        return "pas/events, fas/<station>/events, buffer/events, plan"

    def in_inbound_branch(self, topic: str) -> bool:
        """Whether `topic` lies in a branch the line publishes to (where the twin answers every
        message); messages elsewhere under the root are the twin's own or other systems'."""
        prefix = self._prefix
        return topic.startswith(prefix) and topic[len(prefix) :].split("/", 1)[0] in INBOUND_BRANCHES

    def parse_inbound(self, topic: str) -> InboundTopic | None:
        """The inbound topic `topic` addresses, or None if it is not one."""
        prefix = self._prefix
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if parts == ["pas", "events"]:
            return InboundTopic("pas")
        if parts == ["buffer", "events"]:
            return InboundTopic("buffer")
        if parts == ["plan"]:
            return InboundTopic("plan")
        if len(parts) == 3 and parts[0] == "fas" and parts[2] == "events" and parts[1]:
            return InboundTopic("fas", parts[1])
        return None


def inbound_root(topic: str) -> str | None:
    """The root under which `topic` is an inbound topic (`t/spring` of `t/spring/fas/F1/events`),
    or None: what a recording made under another root than `--root` was made under."""
    parts = topic.split("/")
    for suffix in (["pas", "events"], ["buffer", "events"], ["plan"]):
        if len(parts) > len(suffix) and parts[-len(suffix) :] == suffix:
            return "/".join(parts[: -len(suffix)])
    if len(parts) > 3 and parts[-3] == "fas" and parts[-2] and parts[-1] == "events":
        return "/".join(parts[:-3])
    return None
