"""Command-line mistakes (issue 14, part 4): every one is exit code 2 and one line naming the flag
or file, line, key and value; nothing is written before every input is checked."""

from __future__ import annotations

import http.server
import json
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from broker import Mosquitto
from paho.mqtt import publish
from streams import week_messages

from agent.cli.main import build_parser, main
from agent.planners.compare import CPSAT
from agent.planners.registry import PlannerSpec, parse_planners
from bridge.bus import Received
from bridge.recording import Recorder, read_recording
from twin import LineConfig, Scenario, load_line, load_plan, load_sequence, load_week

ROOT = "test/mistakes/line1"


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("linetwin: error: ") and "Traceback" not in err
    return err.removeprefix("linetwin: error: ")


# -- validated before anything is written -------------------------------------------------------
def test_train_with_a_batch_larger_than_the_buffer_writes_no_run_folder(
    tmp_path: Path, ref_line: LineConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["train", "--batch-size", "600", "--steps", "64", "--out", str(out)]) == 2
    capacity = ref_line.buffer.capacity
    assert (
        _one_line(capsys)
        == f"--batch-size: batch size 600 must be between 1 and the buffer capacity {capacity}"
    )
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--batch-sizes", "--batch-size"])
def test_study_checks_every_batch_size_before_it_trains_any(
    tmp_path: Path, ref_line: LineConfig, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    out = tmp_path / "study"
    assert main(["study", flag, "50,600", "--steps", "64", "--seeds", "1", "--out", str(out)]) == 2
    capacity = ref_line.buffer.capacity
    expected = f"--batch-sizes: batch size 600 must be between 1 and the buffer capacity {capacity}"
    assert _one_line(capsys) == expected
    assert not out.exists()


def test_study_takes_batch_size_singular_as_a_grid_of_one_size() -> None:
    args = build_parser().parse_args(["study", "--batch-size", "30", "--steps", "9"])
    assert args.batch_sizes == "30"


def test_a_week_mistake_in_training_writes_no_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    week = tmp_path / "week"
    week.mkdir()
    (week / "week.toml").write_text(
        'week_start = "2026-03-23"\ntimezone = "Europe/Berlin"\n', encoding="utf-8"
    )
    (week / "plan.csv").write_text("station,position,type,quantity\nFAS9,1,T1,5\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--week", str(week), "--steps", "64", "--out", str(out)]) == 2
    assert "FAS9" in _one_line(capsys)
    assert not out.exists()


# -- numbers a command cannot use: argparse refuses them ---------------------------------------------
NUMBERS = [
    (["train", "--steps", "0"], "train --steps 0: must be at least 1"),
    (["train", "--steps", "1", "--envs", "0"], "train --envs 0: must be at least 1"),
    (["train", "--steps", "1", "--checkpoint-steps", "0"], "train --checkpoint-steps 0: must be at least 1"),
    (["train", "--steps", "ten"], "train --steps ten: not a whole number"),
    (["study", "--seeds", "0"], "study --seeds 0: must be at least 1"),
    (["study", "--jobs", "0"], "study --jobs 0: must be at least 1"),
    (["simulate", "--policy", "random", "--batch-size", "0"], "simulate --batch-size 0: must be at least 1"),
    (["simulate", "--policy", "random", "--seed", "-1"], "simulate --seed -1: must be at least 0"),
    (["plan", "--planner", "cpsat", "--workers", "0"], "plan --workers 0: must be at least 1"),
    (
        ["plan", "--planner", "cpsat", "--time-limit", "-1"],
        "plan --time-limit -1: must be a finite number, at least 0",
    ),
    (["compare", "--plans", "0"], "compare --plans 0: must be at least 1"),
    (["evaluate", "--model", "m.zip", "--plans", "0"], "evaluate --plans 0: must be at least 1"),
    (["generate-week", "--seed", "1", "--order-min", "0"], "generate-week --order-min 0: must be at least 1"),
    (
        ["generate-week", "--seed", "1", "--fill", "nan"],
        "generate-week --fill nan: must be a finite number above 0",
    ),
    (
        ["generate-week", "--seed", "1", "--initial-stock", "-5"],
        "generate-week --initial-stock -5: must be at least 0",
    ),
    (["record", "--count", "0"], "record --count 0: must be at least 1"),
]


@pytest.mark.parametrize(("argv", "message"), NUMBERS, ids=[" ".join(a) for a, _ in NUMBERS])
def test_a_number_a_command_cannot_use_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    assert _one_line(capsys) == message
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fill", "2"], "--fill 2.0: must be at most 1.5"),
        (["--order-min", "200", "--order-max", "100"], "--order-min 200 exceeds --order-max 100"),
        (["--shares", "T1=inf,T2=1"], "--shares inf: must be a finite number"),
    ],
)
def test_generate_week_names_the_flag_and_value_not_a_pydantic_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "week"
    assert main(["generate-week", "--seed", "1", *argv, "--out", str(out)]) == 2
    assert _one_line(capsys) == message
    assert not out.exists()


# -- names: no prefix matching, the closest name suggested --------------------------------------
NAMES = [
    (["simulat"], "unknown command 'simulat'; did you mean simulate?"),
    (
        ["simulate", "--polcy", "random"],
        "simulate: unrecognized arguments: --polcy random; did you mean --policy?",
    ),
    (
        ["simulate", "--policy", "setupaware"],
        "--policy: unknown policy 'setupaware'; did you mean setup-aware?",
    ),
    (
        ["train", "--check", "5", "--steps", "9"],
        "train: unrecognized arguments: --check 5; did you mean --checkpoint-steps?",
    ),
    (["plan", "--planner", "cp-sta"], "--planner cp-sta: unknown planner 'cp-sta'; did you mean cpsat?"),
    (
        ["compare", "--planner", "cpsat,magic"],
        "--planner cpsat,magic: unknown planner 'magic'; choose from "
        "rules, random, first-fit, earliest-runout, setup-aware, slack-greedy, cpsat, best, rl[:MODEL], "
        "rl+rollout[:MODEL], rollout:POLICY, beam:POLICY",
    ),
    (["serve", "--clock", "walll"], "serve --clock: unknown value 'walll'; did you mean wall?"),
]


@pytest.mark.parametrize(("argv", "message"), NAMES, ids=[" ".join(a) for a, _ in NAMES])
def test_a_misspelt_name_is_one_line_with_the_closest_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert _one_line(capsys) == message


def test_cp_sat_is_taken_for_cpsat(config_dir: Path) -> None:
    model = config_dir / "agents" / "reference.zip"
    assert parse_planners("cp-sat", model) == [PlannerSpec(CPSAT)]


# -- files: the key the user typed, the line, the encoding ----------------------------------------
def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("capacity = ", "capacity_units = ", "buffer.capacity_units", "unknown key; expected capacity"),
        ("[buffer]", "[bufer]", "bufer", "unknown key; expected buffer"),
        ("unit_time_s = ", "unit_time = ", "pas.unit_time", "unknown key; expected unit_time_s"),
    ],
)
def test_a_renamed_key_is_reported_as_typed_with_its_line_and_the_closest_key(
    tmp_path: Path,
    config_dir: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    key: str,
    reason: str,
) -> None:
    text = (config_dir / "line.toml").read_text(encoding="utf-8")
    first = text.index(old)
    line = tmp_path / "line.toml"
    line.write_text(text[:first] + new + text[first + len(old) :], encoding="utf-8")
    assert main(["simulate", "--policy", "random", "--line", str(line), "--out", str(tmp_path / "out")]) == 2
    number = _line_of(line, new)
    typed = line.read_text(encoding="utf-8").splitlines()[number - 1]
    value = f" (value {int(typed.split('=')[1].split('#')[0])})" if "=" in new else ""  # a key: its value
    assert _one_line(capsys) == f"{line}:{number}: {key}: {reason}{value}"


def test_a_misspelt_key_of_a_week_is_reported_with_the_closest_key(
    tmp_path: Path, config_dir: Path, ref_line: LineConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    week = _copy_week(config_dir, tmp_path)
    toml = week / "week.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("[initial_stock]", "[initial_stok]"), "utf-8")
    assert main(["simulate", "--policy", "random", "--week", str(week), "--out", str(tmp_path / "out")]) == 2
    assert (
        _one_line(capsys)
        == f"{toml}:{_line_of(toml, '[initial_stok]')}: initial_stok: unknown key; expected initial_stock"
    )


def _copy_week(config_dir: Path, tmp_path: Path) -> Path:
    week = tmp_path / "week"
    week.mkdir()
    for name in ("week.toml", "plan.csv"):
        (week / name).write_bytes((config_dir / "weeks" / "w1" / name).read_bytes())
    return week


def test_a_plan_with_semicolons_says_which_separator_it_found(
    tmp_path: Path, config_dir: Path, ref_line: LineConfig
) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(
        (config_dir / "weeks" / "w1" / "plan.csv").read_text(encoding="utf-8").replace(",", ";"), "utf-8"
    )
    with pytest.raises(Exception) as caught:
        load_plan(plan, ref_line)
    assert str(caught.value) == (
        f"{plan}:1: fields are separated by ';'; expected ',' (header station,position,type,quantity) "
        "(value 'station;position;type;quantity')"
    )


def test_a_sequence_header_names_its_optional_column_and_never_an_empty_tuple(
    tmp_path: Path, ref_line: LineConfig
) -> None:
    bad, semicolons = tmp_path / "bad.csv", tmp_path / "semi.csv"
    bad.write_text("pos,type\n1,T1\n", encoding="utf-8")
    semicolons.write_text("position;type;quantity\n1;T1;50\n", encoding="utf-8")
    with pytest.raises(Exception) as caught:
        load_sequence(bad, ref_line)
    assert (
        str(caught.value) == f"{bad}:1: header must be position,type (optional: quantity) (value 'pos,type')"
    )
    with pytest.raises(Exception) as caught:
        load_sequence(semicolons, ref_line)
    assert "separated by ';'; expected ','" in str(caught.value) and "()" not in str(caught.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "utf-32"])
def test_a_plan_saved_as_unicode_text_reads_the_same(
    tmp_path: Path, config_dir: Path, ref_line: LineConfig, encoding: str
) -> None:
    source = config_dir / "weeks" / "w1" / "plan.csv"
    plan = tmp_path / "plan.csv"
    plan.write_text(source.read_text(encoding="utf-8"), encoding=encoding)
    assert load_plan(plan, ref_line) == load_plan(source, ref_line)


def test_a_cp1252_plan_or_week_names_the_line_of_the_first_byte_that_is_not_utf8(
    tmp_path: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    week = _copy_week(config_dir, tmp_path)
    plan = week / "plan.csv"
    rows = plan.read_text(encoding="utf-8").splitlines()
    rows[4] += ",Größe"
    plan.write_bytes("\n".join(rows).encode("cp1252"))
    assert main(["simulate", "--policy", "random", "--week", str(week), "--out", str(tmp_path / "out")]) == 2
    assert _one_line(capsys) == _one_line_expected(
        plan, 5, 0xF6, rows[4].replace("ö", "\ufffd").replace("ß", "\ufffd")
    )
    toml = week / "week.toml"
    toml.write_bytes(b"# Woche f\xfcr Werk 1\n" + (config_dir / "weeks" / "w1" / "week.toml").read_bytes())
    assert main(["simulate", "--policy", "random", "--week", str(week), "--out", str(tmp_path / "out")]) == 2
    assert _one_line(capsys) == _one_line_expected(toml, 1, 0xFC, "# Woche f\ufffdr Werk 1")


def _one_line_expected(path: Path, line: int, byte: int, shown: str) -> str:
    return (
        f"{path}:{line}: not UTF-8: byte 0x{byte:02x} cannot be read (save the file as UTF-8) "
        f"(value {shown[:60]!r})"
    )


def test_a_run_config_or_model_card_that_does_not_fit_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"line": "l.toml", "steps": 0}', encoding="utf-8")
    assert main(["train", "--resume", str(run)]) == 2
    assert _one_line(capsys).startswith(f"{run / 'config.json'}:")
    (tmp_path / "m.zip").write_bytes(b"PK")
    (tmp_path / "m.json").write_text('{"types": 5}', encoding="utf-8")
    assert (
        main(["simulate", "--policy", "rl", "--model", str(tmp_path / "m.zip"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert _one_line(capsys).startswith(
        f"{tmp_path / 'm.json'}:1: types: must be a list [...], not a whole number (value 5)"
    )


# -- output into a closed pipe ------------------------------------------------------------------
def test_simulate_into_a_closed_pipe_ends_quietly_like_other_programs_in_a_pipeline(tmp_path: Path) -> None:
    """`linetwin simulate ... | head`: the reader is gone before the table is printed."""
    argv = ["simulate", "--policy", "setup-aware", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports `yes | head`
    assert err == ""


# -- replay of another week -------------------------------------------------------------------------
def test_replay_of_a_recording_of_another_week_is_refused_up_front(
    tmp_path: Path, config_dir: Path, ref_line: LineConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    w2 = load_week(config_dir / "weeks" / "w2", ref_line)
    messages: list[Received] = week_messages(Scenario.build(ref_line, w2), ROOT)[:40]
    recording = tmp_path / "w2.jsonl"
    recorder = Recorder(recording)
    for message in messages:
        recorder.write(message)
    recorder.close()
    first = json.loads(messages[0].payload)["ts"]
    w1 = load_week(config_dir / "weeks" / "w1", ref_line)
    assert main(["replay", str(recording), "--root", ROOT]) == 2  # --week: w1 by default
    assert _one_line(capsys) == (
        f"{recording}: a recording of the week of {w2.week_start} (its first line event is stamped "
        f"{_iso(first)}), but --week {config_dir / 'weeks' / 'w1'} is the week of {w1.week_start}: "
        "give --week the recorded week"
    )
    assert main(["replay", str(recording), "--root", ROOT, "--week", str(config_dir / "weeks" / "w2")]) == 0
    assert f"replay: {len(messages)} line messages" in capsys.readouterr().out


def _iso(stamp: str) -> str:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp).isoformat()


def test_a_recording_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recording = tmp_path / "r.jsonl"
    recording.write_bytes(b'{"t": "2026-01-05T06:00:00+00:00", "topic": "x", "payload": "\xe4"}\n')
    assert main(["replay", str(recording), "--root", ROOT]) == 2
    assert _one_line(capsys) == f"{recording}:1: not UTF-8 (byte 0xe4)"


def test_config_files_of_the_checks_above_still_load(config_dir: Path) -> None:
    """The shipped files pass the stricter readers unchanged."""
    line = load_line(config_dir / "line.toml")
    for week in ("w1", "w2", "w3"):
        load_week(config_dir / "weeks" / week, line)


def test_a_run_folder_with_only_its_config_is_started_over_not_a_dead_end(
    tmp_path: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that stopped before its first checkpoint left only config.json: --resume starts it over
    (and a new run may take the folder)."""
    from agent.training.train import PPOSettings, TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    tiny = PPOSettings(n_steps=64, batch_size=64, n_epochs=1)
    config = TrainConfig(
        line=config_dir / "line.toml",
        weeks=[config_dir / "weeks" / "w1"],
        template_week=config_dir / "weeks" / "w1",
        curriculum="A",
        batch_size=50,
        steps=64,
        out=run,
        ppo=tiny,
        eval_plans=1,
        progress=False,
    )
    (run / "config.json").write_text(config.model_dump_json(), encoding="utf-8")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert f"train: --resume {run}: no checkpoint yet; the run starts over" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text(encoding="utf-8"))["steps_done"] >= 64


def test_a_flag_the_command_would_not_use_is_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--sequence", "s.csv", "--model", "m.zip", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert _one_line(capsys) == "--model is for --policy rl; --sequence replays the file as it is"


class _NoBucket(http.server.BaseHTTPRequestHandler):
    """An InfluxDB 2.x that lacks the bucket: every write is HTTP 404 naming it."""

    status_body = json.dumps({"code": "not found", "message": 'bucket "linetwin" not found'}).encode()
    content_type = "application/json"
    posts = 0

    def do_POST(self) -> None:
        type(self).posts += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(404)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.status_body)))
        self.end_headers()
        self.wfile.write(self.status_body)

    def log_message(self, *args: object) -> None:
        pass


class _NoEndpoint(_NoBucket):
    """A server without /api/v2/write (InfluxDB 1.x before 1.8 answers as Go's router does)."""

    status_body = b"404 page not found\n"
    content_type = "text/plain; charset=utf-8"
    posts = 0


NO_BUCKET = (
    "404 not found (bucket \"linetwin\" not found) for bucket 'linetwin': check LINETWIN_INFLUX_URL and "
    "that LINETWIN_INFLUX_BUCKET exists"
)
NO_ENDPOINT = (
    "404 not found (404 page not found) for bucket 'linetwin': the server has no /api/v2/write (InfluxDB "
    "1.8 or later, 2.x, 3.x or VictoriaMetrics take it): check LINETWIN_INFLUX_URL and the server's version"
)


@pytest.mark.parametrize(
    ("handler", "answer"),
    [(_NoBucket, NO_BUCKET), (_NoEndpoint, NO_ENDPOINT)],
    ids=["no-bucket", "no-endpoint"],
)
@pytest.mark.parametrize("command", ["simulate", "replay"])
def test_influx_to_a_server_that_refuses_the_points_is_one_line_before_anything_is_written(
    handler: type[_NoBucket],
    answer: str,
    command: str,
    tmp_path: Path,
    config_dir: Path,
    ref_line: LineConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 404 with the endpoint there but not the bucket, and without the endpoint (a real InfluxDB 1.6
    in test_metrics.py): the server is asked before the run, so no run folder is left behind."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("LINETWIN_INFLUX_URL", url)
    out = tmp_path / "out"
    recording = tmp_path / "w1.jsonl"  # the start of a week w1 under ROOT: replay's inputs are right
    recorder = Recorder(recording)
    w1 = load_week(config_dir / "weeks" / "w1", ref_line)
    for message in week_messages(Scenario.build(ref_line, w1), ROOT)[:40]:
        recorder.write(message)
    recorder.close()
    replay = ["replay", str(recording), "--root", ROOT]
    argv = ["simulate", "--policy", "setup-aware"] if command == "simulate" else replay
    handler.posts = 0
    try:
        code = main([*argv, "--influx", "--out", str(out)])
    finally:
        server.shutdown()
    assert code == 2
    assert _one_line(capsys) == f"metrics: {url}/api/v2/write answered HTTP {answer}"
    assert not out.exists()
    assert handler.posts == 1  # asked once, before the run; no point sent


def test_a_missing_agent_ends_compare_before_any_planner_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "none.zip"
    argv = ["compare", "--planners", f"cpsat,rl:{model}", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "planning with" not in captured.out  # CP-SAT did not spend its minute first
    assert captured.err == f"linetwin: error: {model}: model file not found\n"
    assert not (tmp_path / "out").exists()


def test_a_missing_key_is_reported_at_the_line_of_its_table(
    tmp_path: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = tmp_path / "line.toml"
    kept = [
        r
        for r in (config_dir / "line.toml").read_text(encoding="utf-8").splitlines()
        if not r.startswith("capacity =")
    ]
    line.write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert main(["simulate", "--policy", "random", "--line", str(line), "--out", str(tmp_path / "out")]) == 2
    number = kept.index("[buffer]") + 1
    assert _one_line(capsys) == f"{line}:{number}: buffer.capacity: missing key"


def test_record_refuses_a_file_that_holds_a_recording_unless_append(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recording a week twice into one file made its replay reject every message of the second run:
    a file with messages is refused (before the broker is asked) unless --append adds to it."""
    path = tmp_path / "week.jsonl"
    recorder = Recorder(path)
    for message in (
        Received("t/fas/F1/events", b"{}", 1, False, 1.0),
        Received("t/pas/events", b"{}", 1, False, 2.0),
    ):
        recorder.write(message)
    recorder.close()
    before = path.read_bytes()
    bus = ["record", "--port", str(mosquitto.port), "--root", "t", "--count", "1", "--exit-after-idle", "10"]
    argv = [*bus, "--out", str(path)]
    assert main(argv) == 2
    assert _one_line(capsys) == (
        f"--out {path}: already holds a recording (2 messages): give a new file, or --append to add to it"
    )
    assert path.read_bytes() == before
    publish.single("t/status", b"online", qos=1, retain=True, port=mosquitto.port)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main([*argv, "--append"]) == 0  # the retained message, added after the two
        (tmp_path / "empty.jsonl").touch()  # an empty file (made by touch) is a new one
        assert main([*bus, "--out", str(tmp_path / "empty.jsonl")]) == 0
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert [m.topic for m in read_recording(path)] == ["t/fas/F1/events", "t/pas/events", "t/status"]
    assert [m.topic for m in read_recording(tmp_path / "empty.jsonl")] == ["t/status"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan"], "plan: the following arguments are required: --planner"),
        (["replay"], "replay: the following arguments are required: file"),
        (["plan", "--planner", "rl", "--model", "m.zip"], "plan: unrecognized arguments: --model m.zip; "
         "plan and compare name an agent's model in the planner: rl:MODEL"),
        (["validate", "--hel"], "validate: unrecognized arguments: --hel"),  # --help is never suggested
        (["compare", "--planners", "rl:,rules"], "--planners rl:,rules: 'rl:': name the model after the "
         "colon, e.g. rl:agent.zip"),  # the flag typed, the whole list
        (["simulate", "--policy", "ppo:"], "--policy rl:: 'rl:': name the model after the colon, e.g. "
         "rl:agent.zip"),
    ],
    ids=["required-flag", "required-file", "model-in-plan", "no-help-hint", "rl-colon-list", "rl-colon"],
)  # fmt: skip
def test_a_missing_or_foreign_flag_is_one_line_naming_the_command(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert _one_line(capsys) == message


@pytest.mark.parametrize("command", ["train", "study"])
def test_training_refuses_an_out_that_is_a_file_a_week_or_cannot_be_made(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], config_dir: Path
) -> None:
    """As plan and compare do: one line, exit 2, nothing written (it was a traceback, or a run
    written into the week's folder)."""
    grid = ["--batch-sizes", "50", "--seeds", "1"] if command == "study" else []
    week = tmp_path / "w1"
    shutil.copytree(config_dir / "weeks" / "w1", week)
    taken = tmp_path / "a-file"
    taken.write_text("mine\n", encoding="utf-8")
    blocked = taken / "run"  # under a file: cannot be made
    for out, said in [
        (taken, f"--out {taken}: a file, not a folder"),
        (week, f"--out {week}: holds week.toml and plan.csv, the inputs of a run, not a place for its "
               "outputs: give another folder"),
        (blocked, f"--out {blocked}: cannot create the folder: Not a directory"),
    ]:  # fmt: skip
        assert main([command, *grid, "--steps", "64", "--out", str(out)]) == 2
        assert _one_line(capsys) == said
    assert sorted(p.name for p in week.iterdir()) == sorted(
        p.name for p in (config_dir / "weeks" / "w1").iterdir()
    )
    assert taken.read_text(encoding="utf-8") == "mine\n"


def test_serve_checks_the_agent_its_planner_searches_with_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.jsonl"
    planner = f"rl+rollout:{tmp_path / 'm.zip'}"
    argv = ["serve", "--port", "1", "--journal", str(journal), "--planner", planner]
    assert main(argv) == 2
    assert "m.zip: model file not found" in _one_line(capsys) and not journal.exists()


def test_serve_checks_its_trained_agent_against_the_line_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config_dir: Path
) -> None:
    journal = tmp_path / "journal.jsonl"
    policy = f"rl:{config_dir / 'agents' / 'plant-40x24.zip'}"
    assert main(["serve", "--port", "1", "--journal", str(journal), "--policy", policy]) == 2
    err = _one_line(capsys)
    assert err.startswith(f"--policy {policy}: the model was trained for types ['T1', "), err
    assert (
        err.endswith("the line has ['T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'T8']") and not journal.exists()
    )
