"""Benchmark of the metrics writer against a real server that accepts `/api/v2/write` (Debian's
VictoriaMetrics, started here on a free port).

    python benchmarks/bench_metrics.py [--weeks 10] [--batch-size 5000] [--outage-s 30]

1. Throughput: the points of simulated weeks (w1 on past Mondays, setup-aware; VictoriaMetrics drops
   samples more than two days ahead), written with batching; points/s from the first write to the
   last acknowledged batch.
2. Ledger: the same weeks through `serve`'s ledger (after every batch the newest timestamp per series
   is written to a file, synced and renamed): points/s and the time per ledger write; then all of them
   given again, as a restart's journal replay does: how fast they are skipped.
3. Outage: one week written while the server is stopped for `--outage-s`, then started again; every
   point must arrive exactly once (read back through the export API).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tsdb import VictoriaMetrics  # the tests' helper: one server on a free port

from agent.planners.registry import make_policy
from bridge.influx import InfluxSettings, InfluxWriter, Ledger, load_influx_settings
from bridge.points import simulated_points
from twin import Scenario, load_line, load_week
from twin.config import default_config_dir


def week_points(weeks: int) -> list[list[str]]:
    config = default_config_dir()
    line = load_line(config / "line.toml")
    week = load_week(config / "weeks" / "w1", line)
    out = []
    for i in range(weeks):
        monday = dt.date(2025, 1, 6) + dt.timedelta(weeks=i)
        scenario = Scenario.build(line, week.model_copy(update={"week_start": monday}))
        out.append(simulated_points(scenario, make_policy("setup-aware", 0), "setup-aware", line.name))
    return out


class TimedLedger(Ledger):
    """A ledger that times its writes."""

    writes = 0
    seconds = 0.0

    def record(self, points: list[str]) -> None:
        started = time.perf_counter()
        super().record(points)
        self.writes += 1
        self.seconds += time.perf_counter() - started


def ledger_throughput(server: VictoriaMetrics, settings: InfluxSettings, weeks: list[list[str]]) -> None:
    total = sum(len(w) for w in weeks)
    path = Path(server.folder) / "bench.influx.json"
    ledger = TimedLedger(path, settings.url, settings.bucket)
    writer = InfluxWriter(settings, line="bench", ledger=ledger)
    started = time.perf_counter()
    for points in weeks:
        writer.write(points)
    assert writer.flush(timeout_s=600)
    elapsed = time.perf_counter() - started
    writer.close()
    print(
        f"with serve's ledger: {total} points in {elapsed:.2f} s = {total / elapsed:,.0f} points/s; "
        f"{ledger.writes} ledger writes (synced, renamed), "
        f"{ledger.seconds / ledger.writes * 1000:.1f} ms each"
    )
    writer = InfluxWriter(settings, line="bench", ledger=Ledger(path, settings.url, settings.bucket))
    started = time.perf_counter()
    for points in weeks:
        writer.write(points)
    elapsed = time.perf_counter() - started
    skipped = writer.stats.skipped
    writer.close()
    print(
        f"after a restart: the {total} points given again, {skipped} skipped as delivered in {elapsed:.2f} s "
        f"= {total / elapsed:,.0f} points/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--weeks", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--outage-s", type=float, default=30.0)
    args = parser.parse_args()
    weeks = week_points(args.weeks)
    total = sum(len(w) for w in weeks)
    print(f"{args.weeks} simulated weeks: {total} points")
    with tempfile.TemporaryDirectory() as folder:
        server = VictoriaMetrics(Path(folder) / "vm")
        server.start()
        try:
            settings = load_influx_settings(url=server.url, batch_size=args.batch_size)
            writer = InfluxWriter(settings, line="bench")
            started = time.perf_counter()
            for points in weeks:
                writer.write(points)
            assert writer.flush(timeout_s=600)
            elapsed = time.perf_counter() - started
            print(
                f"throughput: {total} points in {elapsed:.2f} s = {total / elapsed:,.0f} points/s "
                f"(batches of {args.batch_size}; target >= 50,000/s)"
            )
            writer.close()
            own_series = [[p.replace("linetwin_", "ledger_", 1) for p in w] for w in weeks]
            ledger_throughput(server, settings, own_series)

            outage = week_points(1)[0]
            outage = [p.replace("linetwin_", "outage_", 1) for p in outage]  # its own series
            writer = InfluxWriter(load_influx_settings(url=server.url, flush_interval_s=0.2, timeout_s=2))
            server.stop()
            down_at = time.perf_counter()
            writer.write(outage)
            time.sleep(args.outage_s)
            server.start()
            back_at = time.perf_counter()
            delivered = writer.close(timeout_s=120)
            caught_up = time.perf_counter() - back_at
            stored = server.export('{__name__=~"outage_.*"}')
            samples = sum(len(v) for v in stored.values())
            fields = sum(len(p.split(" ")[1].split(",")) for p in outage)  # it keeps one sample per field
            s = writer.stats
            print(
                f"outage of {back_at - down_at:.0f} s: {len(outage)} points queued, {s.retries} retries, "
                f"all delivered: {delivered}, {s.dropped} dropped, done {caught_up:.2f} s after the server "
                f"returned; {samples} samples stored for {fields} fields written (export: none twice)"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
