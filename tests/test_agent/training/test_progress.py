"""Progress on long work: an emulated week at a slow speed says where it is (local line time and
share of the week's working time), also while it sleeps until its next event."""

from __future__ import annotations

import datetime as dt
import re
from itertools import pairwise
from pathlib import Path

from builders import make_line, make_scenario, make_week

from agent.live.emulator import LineEmulator
from agent.planners.policies import make_rule
from agent.training.study import logged_steps, progress_line
from agent.training.train import TrainConfig
from bridge.bus import MemoryBus
from bridge.topics import Topics

LINE = re.compile(
    r"emulate: line time \w{3} (\d\d\.\d\d\.) (\d\d:\d\d:\d\d) ([+-]\d{4}), ([\d.]+)% of the week's "
    r"working time; (\d+) events, 0 dispatches"
)


def test_a_slow_emulated_week_says_where_it_is_every_interval_of_wall_time() -> None:
    # one FAS, four units of 300 s: 1200 working seconds at 1200 per wall second, an event every 0.25 s
    line = make_line(types=1, fas_units=(300,), batch_size=4, capacity=4)
    scenario = make_scenario(line, make_week(line, [[(0, 4)]], timezone="Europe/Berlin"))
    said: list[str] = []
    emulator = LineEmulator(
        scenario,
        Topics("plant"),
        MemoryBus(),
        speed=1200,
        own_policy=make_rule("first-fit", 0),
        progress=said.append,
        progress_every_s=0.1,
    )
    emulator.run()
    assert len(said) >= 5
    cal = scenario.calendar
    shares, events = [], []
    for text in said:
        match = LINE.fullmatch(text)
        assert match is not None, text
        day, clock, offset, share, published = match.groups()
        moment = dt.datetime.strptime(f"{day}{cal.start.year} {clock} {offset}", "%d.%m.%Y %H:%M:%S %z")
        assert moment.utcoffset() == cal.start.utcoffset()
        assert float(share) == round(100 * cal.work_at_datetime(moment) / cal.week_work_s, 1)
        shares.append(float(share))
        events.append(int(published))
    assert shares == sorted(shares) and shares[-1] > shares[0]
    # the line time moves on between two events: said while the week sleeps until the next one
    assert any(a == b for a, b in pairwise(events))


def test_study_progress_reads_how_far_each_run_is_from_its_tensorboard_events(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter  # what stable-baselines3 logs with

    base = TrainConfig(line=Path("line.toml"), weeks=[], template_week=Path("w1"), curriculum="A",
                       batch_size=50, seed=0, steps=4096, envs=1, out=tmp_path / "b50_s0")  # fmt: skip
    other = base.model_copy(update={"batch_size": 30, "out": tmp_path / "b30_s0"})
    assert logged_steps(base.out) is None
    writer = SummaryWriter(str(base.out / "tb" / "ppo_1"))
    for step in (1024, 2048):
        writer.add_scalar("rollout/ep_rew_mean", -1.0, step)
    writer.flush()
    assert logged_steps(base.out) == 2048
    line = progress_line([base, other], pending=3)
    assert (
        line == "training: b=50 seed 0 2048/4096 steps (50%), b=30 seed 0 starting; 1 waiting for a process"
    )
    writer.add_scalar("rollout/ep_rew_mean", -1.0, 3072)
    writer.close()
    assert logged_steps(base.out) == 3072
