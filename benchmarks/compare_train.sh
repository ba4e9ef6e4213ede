#!/usr/bin/env bash
# Train the learners of every family in configs/compare/ (<family>_badger, _rnn and, where
# it exists, _maml) on the same wall-clock budget: the learners of a family run at the same
# time, one thread each, so all see the same machine. Checkpoints go to
# runs/compare/<family>_<learner>/checkpoints/, logs to runs/compare/<family>_<learner>.log.
# Usage: benchmarks/compare_train.sh [family ...]   (default: every family)
#        LEARNERS="transformer" benchmarks/compare_train.sh ...   (only these learners)
#        PAIRS=1 LEARNERS="transformer" benchmarks/compare_train.sh   (two families at a time)
set -euo pipefail
cd "$(dirname "$0")/.."
families=("$@")
[ ${#families[@]} -gt 0 ] || families=(guessing bandits regression classification fig7 sinusoid)
mkdir -p runs/compare
step=1; [ -z "${PAIRS:-}" ] || step=2
for ((i = 0; i < ${#families[@]}; i += step)); do
  for f in "${families[@]:i:step}"; do
    for learner in ${LEARNERS:-badger rnn maml transformer}; do
      config="configs/compare/${f}_${learner}.yaml"
      [ -f "$config" ] || continue
      OMP_NUM_THREADS=1 badger fit --config "$config" --threads 1 \
        --trainer.enable_progress_bar false > "runs/compare/${f}_${learner}.log" 2>&1 &
    done
  done
  wait
  echo "${families[*]:i:step} done: $(date +%T)"
done
