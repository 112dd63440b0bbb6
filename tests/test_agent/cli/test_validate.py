"""`linetwin validate`: the files checked by the same loaders as every command, and the week's
demand, capacity and load per station printed without running the twin."""

from __future__ import annotations

import csv
import shutil
import tomllib
from pathlib import Path

import pytest

from agent.cli import main


def _table(out: str, head: str) -> dict[str, list[str]]:
    """The rows of the table whose header starts with `head`, by their first cell."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


def test_validate_prints_demand_capacity_and_load_of_the_reference_week(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    line = tomllib.loads((config_dir / "line.toml").read_text(encoding="utf-8"))
    week_dir = config_dir / "weeks" / "w1"
    week = tomllib.loads((week_dir / "week.toml").read_text(encoding="utf-8"))
    with (week_dir / "plan.csv").open(encoding="utf-8", newline="") as fh:
        orders = list(csv.DictReader(fh))
    b = line["pas"]["batch_size"]
    # the reference calendar: Mon-Fri 06:00-22:00 with two 30 min breaks, no holidays, no downtime
    assert not week["holidays"] and "downtime" not in week
    work_h = 5 * (16 - 1)
    assert f"working time: {work_h:.1f} h in the week" in out
    demand = _table(out, "type ")
    to_build_total = batches_total = 0
    for name in line["types"]:
        planned = sum(int(o["quantity"]) for o in orders if o["type"] == name)
        to_build = max(0, planned - week["initial_stock"][name])
        batches = -(-to_build // b)
        assert demand[name] == [str(planned), str(week["initial_stock"][name]), str(to_build), str(batches)]
        to_build_total += to_build
        batches_total += batches
    load = _table(out, "station ")
    for fas in line["fas"]:
        units = sum(int(o["quantity"]) for o in orders if o["station"] == fas["id"])
        needed_h = units * fas["unit_time_s"] / 3600
        assert load[fas["id"]] == [
            str(fas["unit_time_s"]),
            str(units),
            f"{needed_h:.1f}",
            f"{work_h:.1f}",
            f"{needed_h / work_h:.0%}",
            str(work_h * 3600 // fas["unit_time_s"]),
        ]
    pas_units = batches_total * b
    pas_h = pas_units * line["pas"]["unit_time_s"] / 3600  # setup time is 0 on the reference line
    assert line["pas"]["setup_time_s"] == 0
    assert load["PAS"][:5] == [
        str(line["pas"]["unit_time_s"]),
        str(pas_units),
        f"{pas_h:.1f}",
        f"{work_h:.1f}",
        f"{pas_h / work_h:.0%}",
    ]
    assert "over capacity" not in out


def test_validate_reports_an_overloaded_station_and_a_broken_file(
    tmp_path: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    week = tmp_path / "week"
    shutil.copytree(config_dir / "weeks" / "w1", week)
    line = tmp_path / "line.toml"
    text = (config_dir / "line.toml").read_text(encoding="utf-8")
    line.write_text(text.replace("unit_time_s = 90", "unit_time_s = 100", 1), encoding="utf-8")
    assert main(["validate", "--line", str(line), "--week", str(week)]) == 0
    out = capsys.readouterr().out
    with (week / "plan.csv").open(encoding="utf-8", newline="") as fh:
        units = sum(int(o["quantity"]) for o in csv.DictReader(fh) if o["station"] == "FAS1")
    load = units * 100 / (5 * 15 * 3600)
    assert load > 1 and _table(out, "station ")["FAS1"][4] == f"{load:.0%}"
    assert f"over capacity: FAS1 {load:.0%}: the week needs overtime" in out
    line.write_text(text.replace("unit_time_s = 90", "unit_time_s = -90", 1), encoding="utf-8")
    assert main(["validate", "--line", str(line), "--week", str(week)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("linetwin: error: ")
    assert "line.toml" in captured.err and "-90" in captured.err
    plan = (week / "plan.csv").read_text(encoding="utf-8")
    (week / "plan.csv").write_text(plan.replace(",T5,", ",T9,", 1), encoding="utf-8")
    line.write_text(text, encoding="utf-8")
    assert main(["validate", "--line", str(line), "--week", str(week)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plan.csv" in err and "T9" in err
