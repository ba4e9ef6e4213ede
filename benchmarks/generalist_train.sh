#!/usr/bin/env bash
# Train the models of docs/generalist.md: the generalist on all six families, its variants
# (family code, 12 experts, twice the budget, easy-to-hard curriculum) and the six
# leave-one-family-out models, two at a time, one thread each (the same machine share for
# all). Checkpoints go to runs/generalist/<name>/checkpoints/, logs to runs/generalist/<name>.log.
# Usage: benchmarks/generalist_train.sh [name ...]   (default: all of configs/generalist/)
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(long all_six family_code experts12 curriculum without_guessing without_moving_target
    without_optimization without_bandits without_regression without_classification)
fi
mkdir -p runs/generalist
printf '%s\n' "${names[@]}" | xargs -P 2 -I{} sh -c \
  'OMP_NUM_THREADS=1 badger fit --config configs/generalist/{}.yaml --threads 1 \
     --trainer.enable_progress_bar false > runs/generalist/{}.log 2>&1; echo "{} done: $(date +%T)"'
