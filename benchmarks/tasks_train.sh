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
exec benchmarks/fit_two_at_a_time.sh configs runs "${names[@]}"
