"""`emulate --decide own` counts its own decisions (issue 14: it said 0 own decisions)."""

from __future__ import annotations

from builders import make_line, make_scenario, make_week

from agent.live.emulator import LineEmulator
from agent.planners.policies import make_rule
from bridge.bus import MemoryBus
from bridge.topics import Topics


def test_every_decision_of_the_own_rule_is_counted() -> None:
    line = make_line(types=2)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 30)]]))
    emulator = LineEmulator(
        scenario, Topics("test/own/line1"), MemoryBus(), own_policy=make_rule("setup-aware", 0)
    )
    results = emulator.run()
    assert results.batches == 5  # 50 units in batches of 10: one decision each
    assert (emulator.own_decisions, emulator.dispatched, emulator.fallbacks) == (5, 0, 0)
