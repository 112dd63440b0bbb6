"""A recording replay cannot use (issue 14, part 4): an empty one, or one made under another
topic root than --root, is one line and exit code 2 before anything is replayed or written (was:
'0 line messages of 2040', completion 0.0, 126 plot warnings, exit 0 and a full --out folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streams import week_messages

from agent.cli import main
from bridge.recording import Recorder
from bridge.topics import inbound_root
from twin import LineConfig, Scenario, load_week

RECORDED_ROOT = "t/spring"


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("linetwin: error: ") and "Traceback" not in err
    return err.removeprefix("linetwin: error: ")


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, config_dir: Path, ref_line: LineConfig) -> Path:
    """The first messages of w1 recorded under `t/spring`."""
    path = tmp_path_factory.mktemp("rec") / "spring.jsonl"
    w1 = load_week(config_dir / "weeks" / "w1", ref_line)
    recorder = Recorder(path)
    for message in week_messages(Scenario.build(ref_line, w1), RECORDED_ROOT)[:30]:
        recorder.write(message)
    recorder.close()
    return path


@pytest.mark.parametrize("to_broker", [False, True])
def test_a_recording_under_another_root_names_the_root_it_was_made_under(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], to_broker: bool
) -> None:
    out = tmp_path / "replay"
    argv = ["replay", str(recording), "--root", "linetwin/demo/line1"]
    argv += ["--to-broker"] if to_broker else ["--out", str(out)]
    assert main(argv) == 2
    assert _one_line(capsys) == (
        f"{recording}: no line message under linetwin/demo/line1; the recording's line topics are "
        f"under {RECORDED_ROOT} (give --root)"
    )
    assert not out.exists()


def test_the_same_recording_under_its_root_replays(
    recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(recording), "--root", RECORDED_ROOT]) == 0
    assert "replay: 30 line messages of 30" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_an_empty_recording_is_one_line_and_writes_nothing(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text(text, encoding="utf-8")
    out = tmp_path / "replay"
    assert main(["replay", str(empty), "--out", str(out)]) == 2
    assert _one_line(capsys) == f"{empty}: empty recording (no message in it)"
    assert not out.exists()


def test_a_recording_of_no_line_topic_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(
        '{"t": "2026-01-05T06:00:00Z", "topic": "x/twin/state", "payload": {}}\n', encoding="utf-8"
    )
    assert main(["replay", str(other), "--root", "x"]) == 2
    assert _one_line(capsys).endswith(
        "; it holds no line topic (pas/events, fas/<station>/events, buffer/events, plan)"
    )


@pytest.mark.parametrize(
    ("topic", "root"),
    [
        ("t/spring/pas/events", "t/spring"),
        ("t/spring/fas/F1/events", "t/spring"),
        ("a/buffer/events", "a"),
        ("a/b/plan", "a/b"),
        ("pas/events", None),
        ("t/spring/twin/state", None),
        ("t/fas//events", None),
    ],
)
def test_the_root_of_an_inbound_topic(topic: str, root: str | None) -> None:
    assert inbound_root(topic) == root
