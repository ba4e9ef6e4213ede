#!/usr/bin/env bash
# Train BADGER and the monolithic learner of every family in configs/compare/ on the same
# wall-clock budget: the two of a family run at the same time, one thread each, so both see
# the same machine. Checkpoints go to runs/compare/<family>_<learner>/checkpoints/.
# Usage: benchmarks/compare_train.sh [family ...]   (default: every family)
set -euo pipefail
cd "$(dirname "$0")/.."
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(guessing bandits regression classification)
mkdir -p runs/compare
for f in "${families[@]}"; do
  for learner in badger rnn; do
    OMP_NUM_THREADS=1 badger fit --config "configs/compare/${f}_${learner}.yaml" --threads 1 \
      --trainer.enable_progress_bar false > "runs/compare/${f}_${learner}.log" 2>&1 &
  done
  wait
  echo "$f done: $(date +%T)"
done
