#!/usr/bin/env bash
# Command 2: set up and run the whole test suite (lint, types, tests).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests need: a real MQTT broker (and its command-line clients), and a real
# server that accepts InfluxDB's /api/v2/write (VictoriaMetrics) and an InfluxQL engine (InfluxDB 1.x).
APT_PACKAGES=(mosquitto mosquitto-clients victoria-metrics influxdb)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
EXTRAS=dev bash scripts/setup.sh
ruff check .
ruff format --check .
mypy
# The tests run in one pytest-xdist worker per logical core (-n logical; -n auto counts physical cores
# once psutil is installed, half as many where cores are hyperthreads); the tests of one xdist_group
# (the Ray cluster's module) share one worker. `bash scripts/test.sh -n 0` runs them all in this process.
exec python3 -m pytest -n logical --dist loadgroup "$@"
