#!/usr/bin/env bash
# Command 1: set up and run the main job on the embedded defaults (no broker, no database).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec linetwin demo "$@"
