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
exec benchmarks/fit_two_at_a_time.sh configs/generalist runs/generalist "${names[@]}"
