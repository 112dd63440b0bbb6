"""The contract messages of a simulated week, as a line running in real time sends them."""

from __future__ import annotations

from agent.planners.policies import make_rule
from bridge.bus import Received
from bridge.codec import encode, event_topic
from bridge.topics import Topics
from twin import Scenario
from twin.emission import EventTap
from twin.line import Line

LATENCY_S = 0.05
"""Each message arrives this long after it happened."""


def week_messages(scenario: Scenario, root: str, rule: str = "setup-aware") -> list[Received]:
    """Every message of a week whose PAS `rule` decides, in order, each received `LATENCY_S` after
    it happened (its `ts`)."""
    topics, policy, calendar = Topics(root), make_rule(rule, 0), scenario.calendar
    line = Line(scenario)
    tap, request = EventTap(line), line.start()
    seqs: dict[str, int] = {}
    out = []
    while True:
        for event in tap.collect():
            topic = event_topic(topics, event)
            seqs[topic] = seqs.get(topic, 0) + 1
            received = calendar.epoch_of(event.at_s) + LATENCY_S
            out.append(Received(topic, encode(event, seqs[topic], calendar), received_at=received))
        if request is None:
            return out
        request = line.decide(policy(request))
