#!/usr/bin/env bash
# Train the specialist models of docs/tasks.md (one per family, configs/task_*.yaml), two at
# a time, one thread each (the same machine share for all). Checkpoints go to
# runs/task_<family>/checkpoints/, logs to runs/task_<family>.log.
# Usage: benchmarks/tasks_train.sh [task_name ...]
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(task_regression task_classification task_moving_target
  task_optimization task_bandits task_mixture)
mkdir -p runs
i=0
for n in "${names[@]}"; do
  OMP_NUM_THREADS=1 badger fit --config "configs/$n.yaml" --threads 1 \
    --trainer.enable_progress_bar false > "runs/$n.log" 2>&1 &
  i=$((i + 1))
  if [ $((i % 2)) -eq 0 ]; then wait; echo "pair done: $(date +%T)"; fi
done
wait
echo "all done: $(date +%T)"
