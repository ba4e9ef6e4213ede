#!/usr/bin/env bash
# Train the models of docs/datasets.md: the synthetic-trained BADGER and RL2 learners, then
# the leave-one-dataset-out BADGER models, two at a time, one thread each (the same machine
# share for all). Checkpoints go to runs/datasets/<name>/checkpoints/, logs to
# runs/datasets/<name>.log.  Usage: benchmarks/datasets_train.sh [name ...]
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(synthetic_badger synthetic_rnn real_without_iris
  real_without_wine real_without_breast_cancer real_without_digits)
exec benchmarks/fit_two_at_a_time.sh configs/datasets runs/datasets "${names[@]}"
