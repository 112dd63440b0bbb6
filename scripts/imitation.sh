#!/usr/bin/env bash
# The imitation agent from scratch (docs/training.md#the-imitation-agent): the portfolio's best
# plans of generated weeks, behaviour cloning with DAgger on the cost-to-go tables, then PPO
# fine-tuning on the twin. Usage: bash scripts/imitation.sh [OUT] (default runs/imitation).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/imitation}
env=config/imitation/env.toml
start=$SECONDS
linetwin expert --weeks 400 --first-seed 1000 --batch-sizes 50 --env-settings "$env" --jobs 2 \
  --out "$out/expert"
linetwin imitate --data "$out/expert" --epochs 30 --dagger-rounds 2 --dagger-weeks 100 \
  --dagger-plays 2 --seed 0 --out "$out/clone"
linetwin train --init-from "$out/clone/model.zip" --weeks generated --env-settings "$env" \
  --curriculum config/imitation/finetune.toml --ppo config/imitation/ppo.toml --steps 200000 \
  --best-every 20000 --best-weeks 10 --seed 0 --no-progress --out "$out/finetune"
echo "imitation: $(((SECONDS - start) / 60)) min in all; the agent: $out/finetune/best.zip"
