"""How the agent's observation stays compact as lines get more types: the figure of
docs/training.md#many-types (docs/observation_size.png).

Left: observation length against the number of types for each `EnvSettings.observation` (basic
4n + 3, deadlines 6n + 3, runs 7n + 3, compact 8 top_k + 6 families + 4 = 104 with the defaults),
the shipped lines marked. Right: measured milliseconds per decision to assess and observe (the
forecast, the deadline slack, the features) on the reference line and the two plant lines, for
`runs` (the imitation agent's settings: deadlines over the whole week) and `compact` (the plant
agent's: config/plant/env.toml, deadlines 4 h ahead), over decisions sampled from the first 600
of test week 3,000,000,000 under setup-aware. It prints both tables.

    python scripts/observation_figure.py [--out docs/observation_size.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from agent.planners.policies import SetupAwarePolicy
from twin import EnvSettings, Observer, Scenario, WeekGenerator, load_calendar, load_env_settings, load_line
from twin.config import default_config_dir
from twin.line import Line

KINDS = ("basic", "deadlines", "runs", "compact")


def decision_ms(line_path: Path, settings: EnvSettings, decisions: int = 600, every: int = 20) -> float:
    """Mean milliseconds of `Observer.assess` + `observe` over every `every`-th of the first
    `decisions` decisions of test week 3e9 under setup-aware."""
    config = default_config_dir()
    line = load_line(line_path)
    week = WeekGenerator(line, load_calendar(config / "weeks" / "w1", line)).generate(3_000_000_000)
    scenario = Scenario.build(line, week, line.pas.batch_size)
    observer = Observer(scenario, settings)
    twin = Line(scenario)
    request = twin.start()
    rule = SetupAwarePolicy()
    spent, count = 0.0, 0
    for i in range(decisions):
        if request is None:
            break
        if i % every == 0:
            start = time.perf_counter()
            observer.observe(request, observer.assess(request))
            spent += time.perf_counter() - start
            count += 1
        request = twin.decide(rule(request))
    return 1000 * spent / max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/observation_size.png"))
    args = parser.parse_args()
    config = default_config_dir()
    plant = load_env_settings(config / "plant" / "env.toml")
    runs = load_env_settings(config / "imitation" / "env.toml")
    lines = {
        "reference 4 FAS x 8": config / "line.toml",
        "plant 16 x 16": config / "lines" / "plant-16x16.toml",
        "plant 40 x 24": config / "lines" / "plant-40x24.toml",
    }
    types = list(range(2, 65))
    settings = {
        kind: plant if kind == "compact" else EnvSettings.model_validate({"observation": kind})
        for kind in KINDS
    }
    print("observation length (features) by number of types")
    print(f"{'types':>6} " + " ".join(f"{k:>10}" for k in KINDS))
    for n in (8, 16, 24, 48, 64):
        print(f"{n:>6} " + " ".join(f"{Observer.size(n, settings[k]):>10}" for k in KINDS))
    timing: dict[str, dict[str, float]] = {}
    for name, path in lines.items():
        timing[name] = {"runs": decision_ms(path, runs), "compact": decision_ms(path, plant)}
    print("\nms per decision (assess + observe)")
    print(f"{'line':>22} {'runs':>10} {'compact':>10}")
    for name, row in timing.items():
        print(f"{name:>22} {row['runs']:>10.2f} {row['compact']:>10.2f}")

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in KINDS:
        left.plot(types, [Observer.size(n, settings[kind]) for n in types], label=kind)
    for name, path in lines.items():
        n = len(load_line(path).types)
        left.axvline(n, color="grey", lw=0.6, ls=":")
        left.text(n + 0.5, 5, name, rotation=90, fontsize=7, va="bottom", color="grey")
    left.set(xlabel="types on the line", ylabel="observation length (features)", title="Observation length")
    left.legend(title="EnvSettings.observation", loc="upper left", fontsize=8)
    x = range(len(lines))
    width = 0.38
    right.bar(
        [i - width / 2 for i in x], [timing[n]["runs"] for n in lines], width, label="runs (whole week)"
    )
    right.bar(
        [i + width / 2 for i in x], [timing[n]["compact"] for n in lines], width, label="compact (4 h ahead)"
    )
    right.set_xticks(list(x), list(lines), fontsize=8)
    right.set(ylabel="ms per decision", title="Assess + observe, per decision")
    right.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
