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
mkdir -p runs/datasets
i=0
for n in "${names[@]}"; do
  OMP_NUM_THREADS=1 badger fit --config "configs/datasets/$n.yaml" --threads 1 \
    --trainer.enable_progress_bar false > "runs/datasets/$n.log" 2>&1 &
  i=$((i + 1))
  if [ $((i % 2)) -eq 0 ]; then wait; echo "pair done: $(date +%T)"; fi
done
wait
echo "all done: $(date +%T)"
