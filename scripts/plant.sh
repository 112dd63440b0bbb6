#!/usr/bin/env bash
# The plant agent from scratch (docs/training.md#many-types-the-plant-agent): slack-greedy plans of
# generated weeks of config/lines/plant-40x24.toml recorded with the compact observation (slot
# actions), then behaviour cloning. Usage: bash scripts/plant.sh [OUT] (default runs/plant); the
# agent: OUT/clone/model.zip (shipped as config/agents/plant-40x24.zip). A PPO fine-tune on top
# (`linetwin train --init-from OUT/clone/model.zip --env-settings config/plant/env.toml ...`) changed
# none of its plans (docs).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/plant}
start=$SECONDS
linetwin expert --line config/lines/plant-40x24.toml --planner slack-greedy --weeks 30 --first-seed 1000 \
  --batch-sizes 50 --env-settings config/plant/env.toml --jobs 2 --out "$out/expert"
linetwin imitate --data "$out/expert" --epochs 5 --seed 0 --out "$out/clone"
echo "plant: $(((SECONDS - start) / 60)) min in all; the agent: $out/clone/model.zip"
