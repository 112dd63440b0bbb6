"""Many lines in one `serve --plant` process: the plant file (its mistakes named as every file's),
the deterministic rollout of the active arm, each line served in its arm through a real Mosquitto,
and the arm on the line's points."""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Mosquitto

from agent.cli import main
from agent.live.emulator import LineEmulator
from agent.live.journal import Journal, LineEntry, written_for
from agent.live.listeners import PointsListener
from agent.live.plant import ACTIVE, SHADOW, arm_of, load_plant
from agent.live.service import AgentService, Mode
from agent.planners.registry import make_policy
from bridge.bus import MemoryBus, Received
from bridge.messages import StateMsg
from bridge.metrics import series_of
from bridge.mqtt import MqttBus
from bridge.settings import load_bus_settings
from bridge.topics import Topics
from twin import LineConfig, Scenario, load_line, load_week
from twin.config import default_config_dir
from twin.errors import ConfigError

W1 = default_config_dir() / "weeks" / "w1"
AGENT_40X24 = default_config_dir() / "agents" / "plant-40x24.zip"
ROOTS = ("test/plant/line-a", "test/plant/line-b")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    mosquitto.start()
    try:
        yield mosquitto
    finally:
        mosquitto.stop()


@pytest.fixture(scope="module")
def tiny_week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """w1 with one order of 50 units per FAS (four batches: a week of about 500 events)."""
    folder = tmp_path_factory.mktemp("tiny") / "week"
    folder.mkdir()
    shutil.copy(W1 / "week.toml", folder / "week.toml")
    rows = [f"FAS{i},1,T{2 * i},50" for i in range(1, 5)]
    (folder / "plan.csv").write_text("station,position,type,quantity\n" + "\n".join(rows) + "\n")
    return folder


def _plant(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


LINE = f'[[lines]]\nroot = "a/l1"\nweek = "{W1}"\n'


# -- the file ------------------------------------------------------------------------------------
IDS = [
    "unknown key",
    "bad mode",
    "share above 1",
    "negative seed",
    "root under another",
    "same root",
    "root with #",
    "same name",
    "no week",
    "unknown policy",
    "a planner as policy",
    "batch too large",
    "batch 0",
    "no lines",
    "malformed TOML",
    "line not found",
    "agent of other types",
    "one journal spelled twice",
]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (LINE + 'mod = "active"\n', ":4: lines[0].mod: unknown key; expected mode (value 'active')"),
        (LINE + 'mode = "on"\n', ":4: lines[0].mode: must be 'active' or 'shadow' (value 'on')"),
        (
            "[rollout]\nactive_share = 1.5\n" + LINE,
            ":2: rollout.active_share: must be at most 1.0 (value 1.5)",
        ),
        ("[rollout]\nseed = -1\n" + LINE, ":2: rollout.seed: must be at least 0 (value -1)"),
        (
            LINE + LINE.replace('"a/l1"', '"a/l1/x"'),
            ":5: lines[1].root: lies under or over the root of lines[0]",
        ),
        (LINE + LINE, ":5: lines[1].root: lies under or over the root of lines[0] (a/l1)"),
        (LINE.replace("a/l1", "a/#"), ":2: lines[0].root: topic root 'a/#' must be non-empty, without '#'"),
        (
            LINE + 'name = "x"\n' + LINE.replace("l1", "l2") + 'name = "x"\n',
            ":8: lines[1].name: is the metrics name",
        ),
        (LINE.replace(str(W1), "no/such/week"), ":3: lines[0].week: "),
        (LINE + 'policy = "fifo"\n', ":4: lines[0].policy: unknown policy 'fifo'"),
        (LINE + 'policy = "best"\n', ":4: lines[0].policy: plans the rest of the week, it is no policy"),
        (LINE + "batch_size = 600\n", ":4: lines[0].batch_size: batch size 600 "),
        (LINE + "batch_size = 0\n", ":4: lines[0].batch_size: must be at least 1 (value 0)"),
        ("[rollout]\n", ": lines: missing key"),
        ("[[lines]\n", ":1: malformed TOML"),
        (LINE + 'line = "nope.toml"\n', ":4: lines[0].line: "),
        (
            LINE + f'policy = "rl:{AGENT_40X24}"\n',
            ":4: lines[0].policy: the model was trained for types ['T1', ",
        ),
        (
            LINE + 'journal = "j.jsonl"\n' + LINE.replace("l1", "l2") + 'journal = "./j.jsonl"\n',
            ":8: lines[1].journal: is the journal of lines[0] too (j.jsonl)",
        ),
    ],
    ids=IDS,
)
def test_a_plant_file_mistake_is_one_line_naming_file_line_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    path = _plant(tmp_path / "plant.toml", text)
    journal = tmp_path / "runs"
    code = main(["serve", "--plant", str(path), "--policy", "setup-aware", "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"linetwin: error: {path}{where}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not journal.exists()  # nothing was touched, no broker asked (port 1)
    assert not list(tmp_path.glob("*.jsonl"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[fas\n", ":1: malformed TOML"),
        ("name = 'x'\n", ": types: missing key"),
        (None, ": not a regular file (a folder)"),
    ],
    ids=["malformed TOML", "no types", "a folder"],
)
def test_a_mistake_in_a_line_s_line_file_names_its_line_key_not_its_week(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, reason: str
) -> None:
    line = tmp_path / "line.toml"
    if text is None:
        line.mkdir()
    else:
        line.write_text(text)
    path = _plant(tmp_path / "plant.toml", LINE + 'line = "line.toml"\n')
    assert main(["serve", "--plant", str(path), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"linetwin: error: {path}:4: lines[0].line: {line}{reason}"), err
    assert err.endswith(f"(value '{line}')\n") and err.count("\n") == 1


def test_a_plant_names_each_line_s_root_week_and_mode_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _plant(tmp_path / "plant.toml", LINE)
    flags = ["--root", "x/y", "--mode", "shadow", "--batch-size", "20", "--port", "1"]
    assert main(["serve", "--plant", str(path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"linetwin: error: --root, --mode, --batch-size: the plant file {path} names each")
    assert err.count("\n") == 1
    assert main(["serve", "--plant", str(path), "--policy", "fifo", "--port", "1"]) == 2
    assert capsys.readouterr().err.startswith("linetwin: error: --policy: unknown policy 'fifo'")


def test_the_rollout_is_deterministic_nested_and_takes_its_share(tmp_path: Path) -> None:
    roots = [f"acme/site/assembly/line{i}" for i in range(2000)]
    shares = (0.0, 0.1, 0.5, 1.0)
    active = {s: {r for r in roots if arm_of(r, s, seed=7) == ACTIVE} for s in shares}
    assert active[0.0] == set() and active[1.0] == set(roots)
    assert active[0.1] <= active[0.5]  # raising the share only adds lines
    assert 150 <= len(active[0.1]) <= 250 and 900 <= len(active[0.5]) <= 1100  # 10 % and 50 %, +-5 sigma
    assert active[0.5] == {r for r in roots if arm_of(r, 0.5, seed=7) == ACTIVE}  # the same every time
    assert active[0.5] != {r for r in roots if arm_of(r, 0.5, seed=8) == ACTIVE}  # another seed, other lines
    lines = "".join(f'[[lines]]\nroot = "{r}"\nweek = "w"\n' for r in roots[:20])
    plant = load_plant(_plant(tmp_path / "p.toml", "[rollout]\nactive_share = 0.5\nseed = 7\n" + lines))
    assert [line.mode for line in plant.lines] == [arm_of(r, 0.5, 7) for r in roots[:20]]
    reversed_lines = "".join(f'[[lines]]\nroot = "{r}"\nweek = "w"\n' for r in reversed(roots[:20]))
    again = load_plant(
        _plant(tmp_path / "q.toml", "[rollout]\nactive_share = 0.5\nseed = 7\n" + reversed_lines)
    )
    assert {line.root: line.mode for line in again.lines} == {line.root: line.mode for line in plant.lines}
    chosen = load_plant(
        _plant(tmp_path / "r.toml", "[rollout]\nactive_share = 1.0\n" + LINE + 'mode = "shadow"\n')
    )
    assert chosen.lines[0].mode == SHADOW  # the line's own mode wins over the rollout
    assert load_plant(_plant(tmp_path / "s.toml", LINE)).lines[0].mode == SHADOW  # no rollout: shadow


def test_a_plant_file_s_paths_are_relative_to_its_folder(tmp_path: Path) -> None:
    text = '[[lines]]\nroot = "a/b"\nweek = "w"\njournal = "j.jsonl"\npolicy = "ppo:agent.zip"\n'
    (line,) = load_plant(_plant(tmp_path / "p.toml", text)).lines
    assert (line.week, line.journal, line.name, line.policy) == (
        tmp_path / "w", tmp_path / "j.jsonl", "a/b", f"rl:{tmp_path / 'agent.zip'}")  # fmt: skip
    with pytest.raises(ConfigError, match=r"p.toml:2: rollout.extra: unknown key"):
        load_plant(_plant(tmp_path / "p.toml", "[rollout]\nextra = 1\n" + LINE))


# -- live ----------------------------------------------------------------------------------------
def test_a_plant_serves_each_line_in_its_arm_and_answers_a_bad_message_on_that_line_only(
    broker: Mosquitto,
    tiny_week: Path,
    ref_line: LineConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Line a is active: its dispatches on dispatch/pas, the line follows them. Line b is shadow: its
    recommendations on shadow/dispatch/pas only, the line decides itself. A malformed event on line b
    is answered on b's error topic; both mirrors end at the week their line built."""
    a, b = ROOTS
    plant = _plant(
        tmp_path / "plant.toml",
        f'[rollout]\nactive_share = 0.0\n[[lines]]\nroot = "{a}"\nweek = "{tiny_week}"\nmode = "active"\n'
        f'journal = "a.jsonl"\n[[lines]]\nroot = "{b}"\nweek = "{tiny_week}"\njournal = "b.jsonl"\n'
        'name = "line b"\n',
    )
    scenario = Scenario.build(ref_line, load_week(tiny_week, ref_line))
    settings = load_bus_settings(port=broker.port, root=a)
    recorder = MqttBus(settings, "record", subscriptions=[f"{root}/#" for root in ROOTS], persistent=False)
    seen: list[Received] = []
    recording = threading.Event()

    def record() -> None:  # acknowledged as they come: the broker sends a client only so many unacked
        while recording.is_set() or not recorder.inbox.empty():
            try:
                message = recorder.inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            recorder.ack(message)
            seen.append(message)

    recording.set()
    recorder.start()
    threading.Thread(target=record, daemon=True).start()
    emulators, results, failures = {}, {}, []
    for root in ROOTS:
        topics = Topics(root)
        bus = MqttBus(settings.model_copy(update={"root": root}), "emulate", persistent=False,
                      subscriptions=[topics.dispatch, topics.dispatch_current, topics.status])  # fmt: skip
        own = make_policy("earliest-runout", 0) if root == b else None
        emulators[root] = (LineEmulator(scenario, topics, bus, own_policy=own), bus)

    def emulate(root: str) -> None:
        emulator, bus = emulators[root]
        bus.start()
        try:
            emulator.wait_for_twin(30)
            if root == b:  # a malformed event first: answered, nothing else changes
                bus.publish(Topics(b).pas_events, b'{"v": 1, "event": "batch_stored"}')
            results[root] = emulator.run()
            bus.flush()
        except Exception as exc:
            failures.append(exc)
        finally:
            bus.stop()

    threads = [threading.Thread(target=emulate, args=(root,)) for root in ROOTS]
    for thread in threads:
        thread.start()
    code = main(["serve", "--plant", str(plant), "--port", str(broker.port), "--policy", "setup-aware",
                 "--clock", "line", "--exit-after-idle", "0.5"])  # fmt: skip
    for thread in threads:
        thread.join(timeout=30)
    recorder.flush()
    time.sleep(0.2)  # what the broker still sends the recorder
    recording.clear()
    recorder.stop()
    assert code == 0 and not failures
    out = capsys.readouterr().out
    assert "serve: plant" in out and "2 lines: 1 active (0 by the rollout of 0%, seed 0), 1 shadow" in out

    def on(topic: str) -> list[bytes]:
        return [m.payload for m in seen if m.topic == topic]

    ta, tb = Topics(a), Topics(b)
    decisions_a = emulators[a][0].dispatched
    assert decisions_a == results[a].batches > 0  # every batch line a built was dispatched
    assert len(on(ta.dispatch)) == decisions_a and not on(ta.shadow_dispatch)
    assert not on(tb.dispatch) and not on(tb.dispatch_current)  # the shadow line is never commanded
    assert len(on(tb.shadow_dispatch)) >= emulators[b][0].own_decisions - 1 > 0
    assert not on(ta.errors) and len(on(tb.errors)) == 1 and tb.pas_events.encode() in on(tb.errors)[0]
    for root, topics in ((a, ta), (b, tb)):
        state = StateMsg.model_validate_json(on(topics.state)[-1])
        assert (state.kpis.idle_s, state.kpis.setup_effort) == (
            results[root].idle_s,
            results[root].setup_effort,
        )
        assert (state.shadow is not None) == (root == b)
    for journal in ("a.jsonl", "b.jsonl"):  # each journal says which line it was written for
        assert written_for(tmp_path / journal) == LineEntry.of(ref_line)


@pytest.mark.parametrize("mode", [Mode.ACTIVE, Mode.SHADOW])
def test_the_line_s_buffer_and_kpi_points_carry_its_name_and_arm(
    tiny_week: Path, ref_line: LineConfig, mode: Mode
) -> None:
    from streams import week_messages

    scenario = Scenario.build(ref_line, load_week(tiny_week, ref_line))
    points: list[str] = []
    listener = PointsListener(points.extend, name="line a", arm=True)
    policy = make_policy("setup-aware", 0)
    topics = Topics(ROOTS[0])
    service = AgentService(scenario, policy, "setup-aware", topics, MemoryBus(), mode, listeners=[listener])
    for message in week_messages(scenario, ROOTS[0]):
        service.handle(message)
    service.deliver_points(final=True)
    tagged = [series_of(p) for p in points if p.startswith(("linetwin_kpi", "linetwin_buffer"))]
    assert tagged and all(t.endswith(f",line=line\\ a,mode={mode.value}") for t in tagged)
    decisions = [series_of(p) for p in points if p.startswith("linetwin_decision")]
    assert decisions and all(f"mode={mode.value}" in d for d in decisions)


def test_serve_s_policy_a_plant_line_takes_is_checked_against_that_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _plant(tmp_path / "plant.toml", LINE + 'journal = "j.jsonl"\n')
    policy = f"rl:{AGENT_40X24}"
    assert main(["serve", "--plant", str(path), "--policy", policy, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"linetwin: error: --policy {policy}: the model was trained for types"), err
    assert err.endswith(f"({path} lines[0], line {default_config_dir() / 'line.toml'})\n"), err
    assert err.count("\n") == 1 and not (tmp_path / "j.jsonl").exists()


def test_a_journal_written_for_another_line_is_refused_before_it_is_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = load_line(default_config_dir() / "lines" / "plant-16x16.toml")
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.line(LineEntry.of(other))
    journal.close()
    written = path.read_bytes()
    plant = _plant(tmp_path / "plant.toml", LINE + 'journal = "j.jsonl"\n')
    for argv, where in (
        (["serve", "--journal", str(path)], f"{path}: "),
        (["serve", "--plant", str(plant)], f"{plant} lines[0]: {path}: "),
    ):
        assert main([*argv, "--port", "1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"linetwin: error: {where}written for line {other.name} (16 types, setup "), err
        assert ", this is line appliance-reference (8 types, setup " in err and err.count("\n") == 1
        assert path.read_bytes() == written and not list(tmp_path.glob("*.lock"))
