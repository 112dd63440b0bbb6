"""The live commands: `serve` (mirror + agent), `emulate` (a virtual line), `record` and `replay`."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.cli.flags import count, natural, not_negative, path_arg, positive
from agent.cli.inputs import DEFAULT_LINE, DEFAULT_WEEK, common_options, load_scenario, policy_options
from agent.cli.outputs import check_out, force_option, plot_window, run_header, write_run, zoom_options
from agent.errors import ModelError, UsageError
from agent.live.emulator import (
    DISPATCH_TIMEOUT_S,
    PROGRESS_EVERY_S,
    TWIN_TIMEOUT_S,
    EmulatorTimeout,
    LineEmulator,
)
from agent.live.journal import Journal, JournalError, LineEntry, check_line
from agent.live.listeners import JournalListener, PointsListener, ServiceListener, TapeListener
from agent.live.plant import load_plant
from agent.live.replanner import Replanner, ReplanSettings
from agent.live.service import AgentService, Mode
from agent.planners.policies import Policy
from agent.planners.registry import BEST, CPSAT, DEFAULT_MODEL, RL, RL_ROLLOUT, SEARCHES, make_policy
from agent.planners.run import PlannedRun
from bridge.admission import ClockRules
from bridge.bus import MemoryBus
from bridge.errors import BridgeError
from bridge.influx import (
    InfluxSettings,
    InfluxWriter,
    Ledger,
    MetricsRefused,
    check_server,
    load_influx_settings,
)
from bridge.messages import StatusMsg
from bridge.mqtt import MqttBus, read_retained, read_retained_many
from bridge.recording import Recorder, SeqGaps, read_recording
from bridge.settings import BusSettings, load_bus_settings
from bridge.topics import Topics, inbound_root
from twin import Scenario, load_line, load_week
from twin.errors import TwinError
from twin.files import not_regular
from twin.results import HEADLINE, headline, kpi_text
from twin.tape import Tape

if TYPE_CHECKING:
    from twin.plots import Window


RETAINED_WAIT_S = 1.0
"""How long `serve` waits at start for the retained last dispatch (its decision_seq is the floor)."""
FLUSH_TIMEOUT_S = 30.0
"""How long a command waits at its end for the broker to acknowledge what it published."""


def _settings(args: argparse.Namespace) -> BusSettings:
    return load_bus_settings(host=args.host, port=args.port, root=args.root)


def _topics(settings: BusSettings) -> Topics:
    try:
        return Topics(settings.root)
    except ValueError as exc:
        raise UsageError(f"--root: {exc}") from None


def _status(status: str) -> bytes:
    return StatusMsg(ts=dt.datetime.now(dt.UTC), status=status).dump()  # type: ignore[arg-type]


def _online() -> bytes:
    return _status("online")


def _clock(args: argparse.Namespace) -> ClockRules:
    if args.clock_tolerance is None:
        return ClockRules(trust_receipt=args.clock == "wall")
    if args.clock != "wall":
        raise UsageError("--clock-tolerance: only --clock wall compares timestamps with the receipt time")
    return ClockRules(tolerance_s=args.clock_tolerance)


def _until_signal() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _print_kpis(title: str, kpis: dict[str, Any]) -> None:
    """The headline KPIs first, in their order, then the others; each as a table cell shows it."""
    print(title)
    for key in sorted(kpis, key=lambda k: list(HEADLINE).index(k) if k in HEADLINE else len(HEADLINE)):
        print(f"  {key:<18} {kpi_text(key, kpis[key])}")


def checked_influx() -> InfluxSettings:
    """The settings of `$LINETWIN_INFLUX_*`, with the server asked first: settings or a server that
    cannot take the points end a one-shot command before its run (`check_server`)."""
    settings = load_influx_settings()
    check_server(settings)
    return settings


def write_points(lines: list[str], line: str, settings: InfluxSettings) -> int:
    """Deliver points to the InfluxDB of `settings`; exit code 1 if some could not be, an error
    (exit code 2) if the server refuses access."""
    writer = InfluxWriter(settings, line=line)
    writer.write(lines)
    delivered = writer.close(timeout_s=writer.settings.timeout_s * 3)
    _print_writer(writer)
    if writer.failure is not None:
        raise MetricsRefused(writer.failure)
    return 0 if delivered and not writer.stats.rejected else 1


def _serve_writer(journal_path: Path, line: str, who: str = "serve") -> InfluxWriter:
    """`serve`'s writer: it retries while access is refused, and its ledger next to the journal
    keeps what it delivered across restarts (a ledger without its journal is stale: removed)."""
    settings = load_influx_settings()
    path = journal_path.with_suffix(".influx.json")
    ledger_exists = path.exists() or path.with_suffix(".kept.lp").exists()
    if ledger_exists and not journal_path.exists():
        path.unlink(missing_ok=True)
        path.with_suffix(".kept.lp").unlink(missing_ok=True)
        print(f"{who}: --influx: removed the metrics ledger {path} of a journal that is gone", flush=True)
    ledger = Ledger(path, settings.url, settings.bucket)
    return InfluxWriter(settings, line=line, ledger=ledger, retry_refused=True)


def _print_writer(writer: InfluxWriter) -> None:
    s, settings = writer.stats, writer.settings
    print(
        f"influx: {s.written} points written to {settings.url} (bucket {settings.bucket}), "
        f"{writer.queued} undelivered, {s.dropped} dropped (queue full), {s.rejected} refused"
        + (f", {s.skipped} delivered before a restart" if s.skipped else "")
    )
    if writer.refused is not None:
        print(f"influx: {writer.refused}")


def _start(bus: MqttBus) -> None:
    try:
        bus.start()
    except BridgeError as exc:
        raise UsageError(str(exc)) from None


def _retained(settings: BusSettings, role: str, topic: str, timeout_s: float) -> bytes | None:
    try:
        return read_retained(settings, role, topic, timeout_s)
    except BridgeError as exc:
        raise UsageError(str(exc)) from None


def _default_journal(topics: Topics, scenario: Scenario) -> Path:
    """One journal per topic root and week: a restart of `serve` resumes it."""
    root = hashlib.sha1(topics.root.encode()).hexdigest()[:8]
    return Path("runs") / "serve" / f"{root}-{scenario.week.week_start:%Y%m%d}.jsonl"


def _no_plan_policy(policy: str) -> None:
    """A planner given as `--policy`: it plans, it does not decide."""
    if policy.partition(":")[0] in (*SEARCHES, BEST, CPSAT, RL_ROLLOUT):
        raise UsageError(
            f"plans the rest of the week, it is no policy: dispatch from its plan with --planner "
            f"{policy} (--policy answers where the plan does not cover the line's state)",
            "policy",
            policy,
        )


@dataclass
class _Served:
    """One line that `serve` serves: its service and what it holds open."""

    who: str
    """How its lines begin: `serve`, or `serve NAME` for a line of a plant."""
    service: AgentService
    bus: MqttBus
    journal: Journal
    topics: Topics
    writer: InfluxWriter | None
    replanner: Replanner | None
    failure: BaseException | None = None
    """What ended its loop, if not a stop (a journal that cannot be written: JournalError)."""

    def run(self, stop: threading.Event, idle_timeout_s: float | None) -> None:
        """Serve until `stop` (or idle, or another client took the session), then say goodbye."""
        service, bus = self.service, self.bus
        service.run(stop, idle_timeout_s=idle_timeout_s)
        service.finish_points()
        if not bus.taken_over.is_set():  # no connection to say goodbye on
            service.publish_state()
            if not bus.flush(timeout_s=FLUSH_TIMEOUT_S):
                print(f"{self.who}: warning: the broker did not acknowledge the last messages", flush=True)

    def run_in_thread(self, stop: threading.Event, idle_timeout_s: float | None) -> threading.Thread:
        """`run` in a thread of its own; an exception ends this line and sets `stop` for the others."""

        def target() -> None:
            try:
                self.run(stop, idle_timeout_s)
            except BaseException as exc:  # reported by the plant once every line stopped
                self.failure = exc
                stop.set()

        thread = threading.Thread(target=target, name=f"serve-{self.topics.root}", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if self.replanner is not None:
            self.replanner.close()
        self.bus.stop(last=(self.topics.status, _status("offline")))
        self.journal.close()
        if self.writer is not None:
            self.writer.close()

    def taken_over(self) -> bool:
        """Say so (exit code 1) if another client took over this line's MQTT session."""
        if not self.bus.taken_over.is_set():
            return False
        print(
            f"{self.who}: error: another client connected with this service's client id "
            f"{self.bus.client_id!r} and took over its MQTT session; stopped rather than take it back "
            "(give every service its own LINETWIN_MQTT_CLIENT_ID)",
            file=sys.stderr,
            flush=True,
        )
        return True


def _open_line(
    args: argparse.Namespace,
    who: str,
    scenario: Scenario,
    policy: Policy,
    settings: BusSettings,
    mode: Mode,
    journal_path: Path,
    current: bytes | None,
    replanner: Replanner | None = None,
    name: str | None = None,
) -> _Served:
    """Lock and resume the line's journal, connect nothing yet: the service ready to start.
    `current`: the retained last dispatch (its decision_seq is the floor); `name`: the line's `line`
    tag in the metrics (default: the line file's name)."""
    topics = Topics(settings.root)
    journal = Journal(journal_path)
    journal.lock()  # before anything touches the file: another serve may be using it
    if args.fresh and journal_path.exists():
        kept = journal_path.with_suffix(f".{dt.datetime.now():%Y%m%dT%H%M%S}.jsonl")
        journal_path.rename(kept)
        print(f"{who}: --fresh: the previous journal is kept as {kept}", flush=True)
    writer = _serve_writer(journal_path, name or scenario.line.name, who) if args.influx else None
    bus = MqttBus(
        settings,
        "serve",
        subscriptions=[*topics.inbound_filters, topics.dispatch_current],
        will=(topics.status, _status("offline")),
        birth=(topics.status, _online),  # online again after every reconnect
        clean_first=args.fresh,  # starting over: nothing the broker queued for the old run
        others_on=[topics.dispatch] if mode == Mode.ACTIVE else [],  # a second agent on the line
    )
    listeners: list[ServiceListener] = [JournalListener(journal)]
    if writer is not None:
        listeners.append(PointsListener(writer.write, keep=writer.keep, name=name, arm=True))
    service = AgentService(
        scenario,
        policy,
        policy.name,  # `rl`, not the model's path: the contract's `policy` names the policy
        topics,
        bus,
        mode=mode,
        plan_known=not args.plan_from_bus,
        clock=_clock(args),
        listeners=listeners,
        replanner=replanner,
    )
    if (cut := journal.repair()) is not None:  # a power cut tore the last entry: never appended to
        print(f"{who}: {cut}", flush=True)
    resumed = service.resume(journal.entries())
    if not journal_path.exists() or journal_path.stat().st_size == 0:
        journal.line(LineEntry.of(scenario.line))  # a new journal says which line it is for
    service.deliver_points()  # the replay's points: the writer skips what it delivered before
    planner = f"planner {args.planner} (fallback {args.policy})" if replanner else f"policy {policy.name}"
    print(
        f"{who}: {mode.value} mode, {planner}, root {topics.root}, journal {journal_path}"
        + (f" (resumed {resumed} entries)" if resumed else ""),
        flush=True,
    )
    if service.skipped_entries > resumed / 2:
        raise UsageError(
            f"{journal_path}: {service.skipped_entries} of {resumed} journal entries do not fit week "
            f"{scenario.week.week_start} of --week: use that week's journal, or --fresh"
        )
    if service.skipped_entries:
        print(
            f"{who}: warning: {service.skipped_entries} journal entries could not be applied and were "
            "skipped (see the log above)",
            flush=True,
        )
    if service.mirror.kpis().completion >= 1.0:
        print(
            f"{who}: the journal holds a finished week: events of a new run of it would be rejected "
            "as out of order; start over with --fresh",
            flush=True,
        )
    if current is not None:  # before any decision: queued events may reach the session before it
        service.note_current(current)
    if replanner is not None:
        retained = _retained(settings, "serve-plan", topics.pas_plan, RETAINED_WAIT_S)
        replanner.continue_after(retained)
        replanner.start()  # the worker imports the planners while the service starts
    return _Served(who, service, bus, journal, topics, writer, replanner)


def cmd_serve(args: argparse.Namespace) -> int:
    stop = _until_signal()  # first: a SIGTERM during start-up ends serve as cleanly as later
    if args.plant is not None:
        return _serve_plant(args, stop)
    scenario = load_scenario(args.line, args.week, args.batch_size)
    _no_plan_policy(args.policy)
    policy = make_policy(args.policy, args.seed, args.model)
    try:
        _fits(policy, scenario)
    except ModelError as exc:
        raise UsageError(str(exc), "model" if args.model else "policy", args.model or args.policy) from None
    replanner = _replanner(args, policy, scenario)
    settings = _settings(args)
    topics = _topics(settings)
    _clock(args)  # every flag is checked before the journal is touched (--fresh renames it)
    journal_path = args.journal or _default_journal(topics, scenario)
    if not args.fresh:
        check_line(journal_path, scenario.line)
    mode = Mode(args.mode or Mode.ACTIVE)
    current = _retained(settings, "serve-start", topics.dispatch_current, RETAINED_WAIT_S)
    served = _open_line(args, "serve", scenario, policy, settings, mode, journal_path, current, replanner)
    _start(served.bus)
    try:
        served.run(stop, args.exit_after_idle)
    finally:
        served.close()
    service = served.service
    _print_kpis("KPIs of the mirrored week so far:", service.state().kpis.model_dump())
    if service.planning is not None:
        print(f"serve: {service.planning.summary()}", flush=True)
    if served.writer is not None:
        _print_writer(served.writer)
    return 1 if served.taken_over() else 0


PLANT_FIXED = {
    "root": "--root",
    "journal": "--journal",
    "mode": "--mode",
    "batch_size": "--batch-size",
    "planner": "--planner",
}
"""Flags a plant file sets per line (or that a plant does not take): refused with --plant."""


def _serve_plant(args: argparse.Namespace, stop: threading.Event) -> int:
    """`serve --plant FILE`: every line of the plant file in this process, one service (and MQTT
    connection, journal, metrics writer) per line, each in its own thread."""
    given = [flag for key, flag in PLANT_FIXED.items() if getattr(args, key) is not None]
    given += [flag for flag, default in (("--line", DEFAULT_LINE), ("--week", DEFAULT_WEEK))
              if getattr(args, flag[2:]) != default]  # fmt: skip
    given += [f"--plan-{name}" for name in PLAN_FLAGS if getattr(args, f"plan_{name}") is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)}: the plant file {args.plant} names each line's root, week, line, "
            "mode, batch size and journal (one `serve --planner` per line plans)"
        )
    plant = load_plant(args.plant)
    _no_plan_policy(args.policy)
    _clock(args)
    base = load_bus_settings(host=args.host, port=args.port)
    lines = []
    for line in plant.lines:  # every line is checked before any journal is touched
        try:
            config = load_line(line.line or DEFAULT_LINE)
        except TwinError as exc:
            raise plant.problem(line, "line", str(line.line), str(exc)) from None
        try:
            scenario = Scenario.build(config, load_week(line.week, config), line.batch_size)
        except TwinError as exc:
            raise plant.problem(line, "week", str(line.week), str(exc)) from None
        except ValueError as exc:  # a batch size the week cannot take
            raise plant.problem(line, "batch_size", line.batch_size, str(exc)) from None
        name = line.policy or args.policy
        policy: Policy | None = None
        try:
            _no_plan_policy(name)
            policy = make_policy(name, args.seed, None if line.policy else args.model)
            _fits(policy, scenario)
        except (UsageError, ModelError) as exc:
            if line.policy is None and isinstance(exc, ModelError) and policy is not None:
                at = f"{exc} ({args.plant} lines[{line.index}], line {line.line or DEFAULT_LINE})"
                raise UsageError(at, "model" if args.model else "policy", args.model or name) from None
            if line.policy is None:
                raise  # --policy's (or --model's) mistake: said as the flag's
            reason = exc.reason if isinstance(exc, UsageError) else str(exc)
            raise plant.problem(line, "policy", name, reason) from None
        client_id = base.client_id and f"{base.client_id}-{hashlib.sha1(line.root.encode()).hexdigest()[:8]}"
        settings = base.model_copy(update={"root": line.root, "client_id": client_id})
        journal = line.journal or _default_journal(Topics(line.root), scenario)
        if not args.fresh:
            try:
                check_line(journal, scenario.line)
            except JournalError as exc:
                raise JournalError(f"{plant.path} lines[{line.index}]: {exc}") from None
        lines.append((line, scenario, policy, settings, journal))
    print(f"serve: plant {args.plant}: {plant.summary()}", flush=True)
    wanted = [Topics(line.root).dispatch_current for line in plant.lines]
    try:  # every line's retained last dispatch, read at once
        retained = read_retained_many(base, "serve-start", wanted, RETAINED_WAIT_S)
    except BridgeError as exc:
        raise UsageError(str(exc)) from None
    served: list[_Served] = []
    try:
        for (line, scenario, policy, settings, journal), topic in zip(lines, wanted, strict=True):
            who, mode, current = f"serve {line.name}", Mode(line.mode), retained.get(topic)
            served.append(
                _open_line(args, who, scenario, policy, settings, mode, journal, current, name=line.name)
            )
        for one in served:
            _start(one.bus)
        threads = [one.run_in_thread(stop, args.exit_after_idle) for one in served]
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
    finally:
        for one in served:
            one.close()
    for one in served:
        kpis = one.service.state().kpis
        print(
            f"{one.who}: {one.service.mode.value}: idle {kpis.idle_s} s, setup effort {kpis.setup_effort:g}, "
            f"{kpis.setups} setups, {kpis.completion:.1%} of the week, {one.service.accepted} events "
            f"accepted, {one.service.rejected} rejected",
            flush=True,
        )
        if one.writer is not None:
            _print_writer(one.writer)
    for one in served:
        if isinstance(one.failure, JournalError):  # the first line that failed ends the plant
            raise JournalError(f"{one.who}: {one.failure}") from one.failure
        if one.failure is not None:
            raise one.failure
    taken = [one.taken_over() for one in served]
    return 1 if any(taken) else 0


def _fits(policy: Policy, scenario: Scenario) -> None:
    """Raise ModelError when `policy` is a trained agent made for another line (it would fail at
    every decision): checked at start-up, as simulate does."""
    if policy.name == RL:
        from agent.planners.rl import RLPolicy

        if isinstance(policy, RLPolicy):
            policy.check(scenario)


def _replanner(args: argparse.Namespace, fallback: Policy, scenario: Scenario) -> Replanner | None:
    """`--planner NAME` and its settings (None without it; a `--plan-*` flag then is an error). An
    agent the planner searches with is loaded and checked against the line now, not at its first
    plan (ModelError naming the model)."""
    given = {name: getattr(args, f"plan_{name}") for name in PLAN_FLAGS}
    if args.planner is None:
        for name, value in given.items():
            if value is not None:
                raise UsageError("only with --planner", f"plan_{name}", f"{value:g}")
        return None
    chosen = {PLAN_FLAGS[name]: value for name, value in given.items() if value is not None}
    settings = ReplanSettings(planner=args.planner, seed=args.seed, model=args.model, **chosen)
    spec = settings.spec()
    if RL in (spec.kind, spec.base):
        from agent.planners.rl import RLPolicy

        RLPolicy.from_file(spec.model or DEFAULT_MODEL).check(scenario)
    return Replanner(settings, fallback)


PLAN_FLAGS = {
    "share": "share",
    "max": "max_s",
    "keep": "keep",
    "margin": "margin",
    "tolerance": "tolerance_s",
}
"""`--plan-<flag>` -> the `ReplanSettings` field it sets."""


def cmd_emulate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.line, args.week, args.batch_size)
    own = make_policy(args.policy, args.seed, args.model) if args.policy else None
    if args.decide == "own" and own is None:
        raise UsageError("--decide own needs --policy")
    if args.fallback_after is not None and own is None:
        raise UsageError("--fallback-after needs --policy (the rule that decides then)")
    settings = _settings(args)
    topics = _topics(settings)
    subscriptions = [topics.dispatch, topics.dispatch_current, topics.status]
    bus = MqttBus(settings, "emulate", subscriptions=subscriptions)
    own_decides = args.decide == "own"
    emulator = LineEmulator(
        scenario,
        topics,
        bus,
        speed=args.speed,
        own_policy=own if own_decides or args.fallback_after is not None else None,
        fallback_after_s=None if own_decides else args.fallback_after,
        dispatch_timeout_s=args.dispatch_timeout,
        progress=_say if args.progress_every > 0 else None,
        progress_every_s=args.progress_every,
    )
    _start(bus)  # a broker that cannot be reached: one line, before anything else is said
    _warn_if_ahead(scenario, args.speed)
    try:
        if emulator.follows_dispatch and not args.no_wait:
            print(f"emulate: waiting up to {args.wait_twin:g} s for the twin on {topics.status}", flush=True)
            emulator.wait_for_twin(args.wait_twin)
        started = time.monotonic()
        results = emulator.run()
        if not bus.flush():
            print("emulate: warning: the broker did not acknowledge every event", flush=True)
    except EmulatorTimeout as exc:
        print(f"emulate: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        bus.stop()
    elapsed = time.monotonic() - started
    print(
        f"emulate: {emulator.published} events, {emulator.dispatched} dispatches applied, "
        f"{emulator.own_decisions} own decisions ({emulator.fallbacks} by fallback), {elapsed:.1f} s"
    )
    if emulator.dispatch_waits_s:
        waits = np.array(emulator.dispatch_waits_s) * 1000
        print(
            f"emulate: waited for a dispatch {np.median(waits):.1f} ms (median), "
            f"{np.percentile(waits, 99):.1f} ms (p99), {waits.max():.1f} ms (max)"
        )
    _print_kpis("KPIs of the emulated week:", headline(results, "batches", "makespan_at"))
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _warn_if_ahead(scenario: Scenario, speed: float) -> None:
    """An emulated week that runs faster than real time stamps events ahead of the wall clock; a
    `serve` that trusts the receipt time takes them for a clock running ahead."""
    calendar = scenario.calendar
    if speed != 1 and calendar.start + dt.timedelta(days=7) > dt.datetime.now(dt.UTC):
        print(
            f"emulate: note: the week {calendar.week_start} has not ended yet and runs faster than real "
            "time, so its events are stamped ahead of the wall clock: start serve with --clock line",
            flush=True,
        )


def cmd_status(args: argparse.Namespace) -> int:
    """Print the twin's retained status; exit code 0 only when it is online (a healthcheck)."""
    settings = _settings(args)
    topics = _topics(settings)
    payload = _retained(settings, "status", topics.status, args.timeout)
    status = "unknown"
    if payload is not None:
        try:
            status = StatusMsg.model_validate_json(payload).status
        except ValueError:
            status = "unreadable"
    print(f"{topics.status}: {status}")
    return 0 if status == "online" else 1


def _check_record_target(path: Path, append: bool) -> None:
    """A file that already holds messages is refused unless `--append`: two runs in one file replay
    as one week seen twice (every message of the second a duplicate or out of order)."""
    if (kind := not_regular(path)) is not None:  # a FIFO would block the recorder, a device lose all
        raise UsageError(f"--out {path}: {kind}")
    if append or not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        messages = sum(1 for raw in fh if raw.strip())
    raise UsageError(
        f"--out {path}: already holds a recording ({messages} messages): "
        "give a new file, or --append to add to it"
    )


def cmd_record(args: argparse.Namespace) -> int:
    _check_record_target(args.out, args.append)  # before the broker: nothing is connected or written
    settings = _settings(args)
    topics = _topics(settings)
    bus = MqttBus(
        settings, "record", subscriptions=[topics.everything], persistent=False, retain_as_published=True
    )
    stop = _until_signal()
    _start(bus)  # nothing is written while the broker cannot be reached
    try:
        recorder = Recorder(args.out)
    except OSError as exc:
        bus.stop()
        raise UsageError(f"--out {args.out}: cannot write: {exc.strerror or exc}") from None
    print(f"record: {topics.everything} -> {args.out}", flush=True)
    last = time.monotonic()
    gaps, said, due = SeqGaps(), 0, 0.0
    try:
        while not stop.is_set():
            try:
                message = bus.inbox.get(timeout=0.1)
            except queue.Empty:
                if args.exit_after_idle is not None and time.monotonic() - last > args.exit_after_idle:
                    break
                continue
            recorded = recorder.write(message)
            bus.ack(message)
            last = time.monotonic()
            if topics.parse_inbound(message.topic) is not None:
                gaps.see(message.topic, recorded.payload)
            if gaps.missing > said and last >= due:
                print(f"record: warning: {_missing(gaps, 'so far')}", flush=True)
                said, due = gaps.missing, last + GAP_NOTICE_S
            if args.count is not None and recorder.count >= args.count:
                break
    finally:
        bus.stop()
        recorder.close()
    print(f"record: {recorder.count} messages" + (f", {_missing(gaps)}" if gaps.missing else ""))
    return 0


GAP_NOTICE_S = 5.0
"""`record` says at most this often that messages are missing."""


def _missing(gaps: SeqGaps, when: str = "") -> str:
    topics = f"{len(gaps.topics)} topic{'s' if len(gaps.topics) > 1 else ''}"
    return (
        f"{gaps.missing} missing{' ' + when if when else ''} (gaps in seq on {topics}): the broker "
        "dropped messages queued for the recorder; raise the broker's max_queued_messages or emulate "
        "at a slower --speed"
    )


def cmd_replay(args: argparse.Namespace) -> int:
    if args.to_broker and (args.out is not None or args.plot_from is not None or args.plot_to is not None):
        raise UsageError("--out, --from and --to are for a replay through the mirror, not --to-broker")
    settings = _settings(args)
    topics = _topics(settings)
    clock = _clock(args)
    messages = list(read_recording(args.file))
    _check_recorded_root(args, messages, topics)
    if args.to_broker:
        if not args.all_topics:  # the twin's own messages of then would speak for the twin of now
            messages = [m for m in messages if topics.parse_inbound(m.topic) is not None]
        return _replay_to_broker(settings, messages, args.speed)
    scenario = load_scenario(args.line, args.week, args.batch_size)
    window = plot_window(scenario, args.plot_from, args.plot_to)
    policy = make_policy(args.policy, args.seed, args.model) if args.policy else None
    if args.out is not None:
        check_out(args.out, [args.file, args.json], args.force)
    influx = checked_influx() if args.influx else None  # before the run, as every check
    _check_recorded_week(args, messages, topics, scenario)
    bus = MemoryBus()
    points: list[str] = []
    listeners: list[ServiceListener] = [PointsListener(points.extend)] if args.influx else []
    taping = TapeListener() if args.out is not None else None
    if taping is not None:
        listeners.append(taping)
    service = AgentService(
        scenario,
        policy,
        policy.name if policy is not None else "none",
        topics,
        bus,
        mode=Mode.SHADOW,
        clock=clock,
        listeners=listeners,
    )
    started = time.perf_counter()
    inbound = [m for m in messages if topics.parse_inbound(m.topic) is not None]
    for recorded in inbound:
        service.handle(recorded.received())
    elapsed = time.perf_counter() - started
    state = service.state()
    print(
        f"replay: {len(inbound)} line messages of {len(messages)} in {elapsed:.2f} s, "
        f"{service.rejected} rejected"
    )
    if service.rejected > service.accepted:
        first = next((m.payload.get("ts") for m in inbound if isinstance(m.payload, dict)), None)
        print(
            f"replay: warning: most line messages were rejected: is the recording (its first event "
            f"stamped {first}) of week {scenario.week.week_start} (--week {args.week})?",
            flush=True,
        )
    _print_kpis("KPIs of the recorded week:", state.kpis.model_dump())
    if policy is not None and state.shadow is not None:
        print(
            f"shadow: {state.shadow.decisions} decisions, agreement with the line "
            f"{state.shadow.agreed}/{state.shadow.compared}"
            + (f" = {state.shadow.agreement:.1%}" if state.shadow.agreement is not None else "")
        )
    if args.json:
        args.json.write_text(json.dumps(state.model_dump(mode="json"), indent=2))
    if taping is not None:
        _write_replay(args, taping.tape, elapsed, window, service.accepted, service.rejected)
    if influx is not None:
        service.deliver_points(final=True)
        return write_points(points, scenario.line.name, influx)
    return 0


def _write_replay(
    args: argparse.Namespace, tape: Tape, wall_s: float, window: Window | None, accepted: int, rejected: int
) -> None:
    """`--out`: results.json, sequence.csv, schedule and plots of the recorded week, as `simulate`
    writes them (KPIs as the twin computes them from the rebuilt trace)."""
    scenario, trace, results = tape.finish()
    run = PlannedRun("recorded", results, trace, wall_s)
    meta = {
        "recording": str(args.file),
        **run_header(args, scenario, seeded=False),  # the recorded week drew on no seed
        "messages_accepted": accepted,
        "messages_rejected": rejected,
    }
    files = write_run(args.out, scenario, run, meta, window)
    print(f"wrote {', '.join(p.name for p in files)} to {args.out}")


def _check_recorded_root(args: argparse.Namespace, messages: list[Any], topics: Topics) -> None:
    """An empty recording, or one whose line messages are all under another root than --root
    (the mirror would see none of them), is refused before anything is replayed or written."""
    if not messages:
        raise UsageError(f"{args.file}: empty recording (no message in it)")
    if (args.to_broker and args.all_topics) or any(
        topics.parse_inbound(m.topic) is not None for m in messages
    ):
        return
    roots = sorted({root for m in messages if (root := inbound_root(m.topic)) is not None})
    where = (
        f"the recording's line topics are under {', '.join(roots)} (give --root)"
        if roots
        else "it holds no line topic (pas/events, fas/<station>/events, buffer/events, plan)"
    )
    raise UsageError(f"{args.file}: no line message under {topics.root}; {where}")


def _check_recorded_week(
    args: argparse.Namespace, messages: list[Any], topics: Topics, scenario: Scenario
) -> None:
    """A recording of another week than --week (its first line event's stamp, in the week's time
    zone, falls in another week) is refused before anything is replayed."""
    for message in messages:
        if topics.parse_inbound(message.topic) is None or not isinstance(message.payload, dict):
            continue
        try:
            stamp = dt.datetime.fromisoformat(str(message.payload["ts"]))
        except (KeyError, ValueError):
            continue
        if stamp.tzinfo is None:
            return  # the mirror rejects it and says why
        local = stamp.astimezone(scenario.week.tz).date()
        monday = local - dt.timedelta(days=local.weekday())
        if monday != scenario.week.week_start:
            raise UsageError(
                f"{args.file}: a recording of the week of {monday} (its first line event is stamped "
                f"{stamp.isoformat()}), but --week {args.week} is the week of {scenario.week.week_start}: "
                "give --week the recorded week"
            )
        return


def _replay_to_broker(settings: BusSettings, messages: list[Any], speed: float) -> int:
    bus = MqttBus(settings, "replay", persistent=False)
    _start(bus)
    start_wall = time.monotonic()
    first = messages[0].t.timestamp() if messages else 0.0
    try:
        for recorded in messages:
            if speed > 0:
                due = start_wall + (recorded.t.timestamp() - first) / speed
                time.sleep(max(0.0, due - time.monotonic()))
            bus.publish(recorded.topic, recorded.payload_bytes(), qos=recorded.qos, retain=recorded.retain)
        delivered = bus.flush(timeout_s=FLUSH_TIMEOUT_S)
    finally:
        bus.stop()
    print(f"replay: republished {len(messages)} messages in {time.monotonic() - start_wall:.1f} s")
    if not delivered:
        print(
            f"replay: error: the broker did not acknowledge every message within {FLUSH_TIMEOUT_S:g} s",
            file=sys.stderr,
        )
        return 1
    return 0


def add_live_commands(sub: Any) -> None:
    """serve, emulate, status, record and replay, on the subparsers `sub` of `linetwin`."""
    common = common_options

    def bus_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default=None, help="broker host (default $LINETWIN_MQTT_HOST or localhost)")
        p.add_argument(
            "--port", type=int, default=None, help="broker port (default $LINETWIN_MQTT_PORT or 1883)"
        )
        p.add_argument(
            "--root", default=None, help="topic root (default $LINETWIN_MQTT_ROOT or linetwin/demo/line1)"
        )

    def line_options(p: argparse.ArgumentParser, policy_default: str | None, what: str) -> None:
        common(p, out=None)
        policy_options(p, policy_default, what)
        bus_options(p)

    def clock_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--clock",
            choices=["wall", "line"],
            default="wall",
            help="wall (default): the receipt time is a trusted clock; an event stamped more than "
            "--clock-tolerance after it is applied at its receipt time and reported. line: the line's "
            "timestamps are the only clock (a line emulated or replayed faster than real time)",
        )
        p.add_argument(
            "--clock-tolerance",
            type=not_negative,
            default=None,
            help=f"with --clock wall: seconds an event's ts may lie after its receipt (default "
            f"{ClockRules().tolerance_s:g})",
        )

    serve = sub.add_parser("serve", help="live mirror + agent service on the MQTT bus")
    line_options(
        serve,
        "rl",
        "policy that decides; with --planner, that answers where the plan does not cover the line's "
        "state (default rl, the shipped agent)",
    )
    serve.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=None,
        help="active (default) dispatches; shadow only recommends",
    )
    serve.add_argument(
        "--plant",
        type=path_arg,
        default=None,
        help="serve every line of this plant file (root, week, line, mode per line; see docs/live.md) "
        "in this one process",
    )
    serve.add_argument(
        "--journal",
        type=path_arg,
        default=None,
        help="journal to resume from (default runs/serve/<root hash>-<week start>.jsonl)",
    )
    serve.add_argument(
        "--influx", action="store_true", help="write the line's points to InfluxDB ($LINETWIN_INFLUX_*)"
    )
    serve.add_argument(
        "--fresh", action="store_true", help="start the week over (the old journal is kept, renamed)"
    )
    serve.add_argument(
        "--plan-from-bus", action="store_true", help="accept events only once a plan arrives on {root}/plan"
    )
    serve.add_argument(
        "--exit-after-idle",
        type=not_negative,
        default=None,
        help="stop after this many seconds without messages",
    )
    clock_options(serve)
    planning = ReplanSettings()
    serve.add_argument(
        "--planner",
        default=None,
        help="dispatch from a plan of the rest of the week that a background worker keeps improving: "
        f"a planner of the portfolio ({BEST}, {CPSAT}, rollout:RULE, beam:RULE, {RL_ROLLOUT}; see `plan`); "
        "--policy answers where the plan does not cover the state (default: --policy decides alone)",
    )
    serve.add_argument(
        "--plan-share",
        type=positive,
        default=None,
        help="with --planner: a re-plan's budget as a share of the current batch's expected wall "
        f"duration (default {planning.share:g})",
    )
    serve.add_argument(
        "--plan-max",
        type=positive,
        default=None,
        help=f"with --planner: at most this many wall seconds per re-plan (default {planning.max_s:g})",
    )
    serve.add_argument(
        "--plan-keep",
        type=natural,
        default=None,
        help="with --planner: the plan's next dispatches that a better plan changes only when it saves "
        f"more than --plan-margin (default {planning.keep})",
    )
    serve.add_argument(
        "--plan-margin",
        type=not_negative,
        default=None,
        help="with --planner: the share of the current plan's setup effort to the week's end that a "
        f"better plan must save to change the next --plan-keep dispatches (default {planning.margin:g})",
    )
    serve.add_argument(
        "--plan-tolerance",
        type=natural,
        default=None,
        help="with --planner: working seconds (line time) a decision point may be off the plan's and "
        f"still be answered from it (default {planning.tolerance_s})",
    )
    serve.set_defaults(func=cmd_serve)

    emu = sub.add_parser("emulate", help="a virtual line: the twin in accelerated time on the bus")
    line_options(emu, None, "own rule (with --decide own or --fallback-after)")
    emu.add_argument(
        "--speed",
        type=not_negative,
        default=0.0,
        help="working seconds per wall second (default 0: as fast as possible)",
    )
    emu.add_argument(
        "--decide",
        choices=["dispatch", "own"],
        default="dispatch",
        help="follow dispatches (default) or decide with --policy",
    )
    emu.add_argument(
        "--fallback-after",
        type=not_negative,
        default=None,
        help="seconds to wait for a dispatch before --policy decides",
    )
    emu.add_argument("--no-wait", action="store_true", help="start without waiting for the twin to be online")
    emu.add_argument(
        "--wait-twin",
        type=not_negative,
        default=TWIN_TIMEOUT_S,
        help="seconds to wait for the twin to be online (default %(default)g)",
    )
    emu.add_argument(
        "--dispatch-timeout",
        type=not_negative,
        default=DISPATCH_TIMEOUT_S,
        help="seconds to wait for a dispatch before giving up (default %(default)g; see --fallback-after)",
    )
    emu.add_argument(
        "--progress-every",
        type=not_negative,
        default=PROGRESS_EVERY_S,
        help="wall seconds between lines saying where the week is (default %(default)g; 0: none)",
    )
    emu.set_defaults(func=cmd_emulate)

    status = sub.add_parser("status", help="the twin's status on the bus; exit code 0 when online")
    status.add_argument(
        "--timeout", type=not_negative, default=3.0, help="seconds to wait for it (default 3)"
    )
    bus_options(status)
    status.set_defaults(func=cmd_status)

    rec = sub.add_parser("record", help="record {root}/# as JSON Lines")
    rec.add_argument(
        "--out", type=path_arg, required=True, help="file to write (a new or empty one, see --append)"
    )
    rec.add_argument(
        "--append",
        action="store_true",
        help="add to a file that already holds a recording (default: refused)",
    )
    rec.add_argument("--count", type=count, default=None, help="stop after this many messages")
    rec.add_argument(
        "--exit-after-idle",
        type=not_negative,
        default=None,
        help="stop after this many seconds without messages",
    )
    bus_options(rec)
    rec.set_defaults(func=cmd_record)

    rep = sub.add_parser("replay", help="run a recorded week through the mirror (or republish it)")
    rep.add_argument("file", type=path_arg, help="recording (.jsonl)")
    line_options(rep, None, "also decide in shadow and report agreement with the line")
    rep.add_argument("--json", type=path_arg, default=None, help="write the final twin state here")
    rep.add_argument(
        "--out",
        type=path_arg,
        default=None,
        help="write results.json, sequence.csv, schedule and plots of the recorded week here",
    )
    zoom_options(rep)
    force_option(rep)
    rep.add_argument(
        "--influx", action="store_true", help="write the week's points to InfluxDB ($LINETWIN_INFLUX_*)"
    )
    rep.add_argument(
        "--to-broker",
        action="store_true",
        help="republish the line's messages to the broker with the recorded timing",
    )
    rep.add_argument(
        "--all-topics",
        action="store_true",
        help="with --to-broker: also the twin's own recorded messages (dispatches, state, status, plans)",
    )
    rep.add_argument(
        "--speed",
        type=not_negative,
        default=1.0,
        help="with --to-broker: time factor (0: as fast as possible)",
    )
    clock_options(rep)
    rep.set_defaults(func=cmd_replay)
