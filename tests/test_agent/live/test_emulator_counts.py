"""`emulate --decide own` counts its own decisions (issue 14: it said 0 own decisions)."""

from __future__ import annotations

import pytest
from builders import make_line, make_scenario, make_week

from agent.live.emulator import EmulatorTimeout, LineEmulator
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


def test_with_no_dispatch_the_fallback_rule_decides_each_point_and_counts_it() -> None:
    line = make_line(types=2)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 30)]]))
    emulator = LineEmulator(
        scenario,
        Topics("test/own/line1"),
        MemoryBus(),
        own_policy=make_rule("setup-aware", 0),
        fallback_after_s=0.0,  # nobody dispatches on this bus: the rule answers at once
    )
    results = emulator.run()
    assert results.batches == 5
    assert (emulator.own_decisions, emulator.dispatched, emulator.fallbacks) == (5, 0, 5)


def test_with_no_dispatch_and_no_fallback_the_emulator_gives_up_naming_the_point() -> None:
    line = make_line(types=2)
    scenario = make_scenario(line, make_week(line, [[(0, 20), (1, 30)]]))
    emulator = LineEmulator(scenario, Topics("test/own/line1"), MemoryBus(), dispatch_timeout_s=0.2)
    said = r"^no dispatch for decision point 0 on test/own/line1/dispatch/pas within 0.2 s "
    with pytest.raises(EmulatorTimeout, match=said):
        emulator.run()
