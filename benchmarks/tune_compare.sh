#!/usr/bin/env bash
# Equal tuning of the learned learners of one family: for each learner, two `badger tune`
# workers (one thread each) share the study in runs/tune/<family>_<learner>/study.db
# (Optuna's distributed mode), so every learner gets the same trials and per-trial budget
# on the same machine load. Then `best.yaml` of each study is the tuned overlay.
# Usage: benchmarks/tune_compare.sh [family] [learner ...]   (default: bandits, all three)
# PRUNE_AFTER=N: no trial is pruned before batch N (default 0; regression: 1000, as BADGER
# sits at chance until about then).
set -euo pipefail
cd "$(dirname "$0")/.."
family="${1:-bandits}"; shift || true
learners=("$@")
[ ${#learners[@]} -gt 0 ] || learners=(badger rnn transformer)
mkdir -p runs/tune
for learner in "${learners[@]}"; do
  space="configs/tune/compare_${family}_${learner}.yaml"
  study="runs/tune/${family}_${learner}"
  for w in 1 2; do
    OMP_NUM_THREADS=1 badger tune --space "$space" --study_dir "$study" \
      --warmup_steps "${PRUNE_AFTER:-0}" \
      > "runs/tune/${family}_${learner}.worker${w}.log" 2>&1 &
    sleep 5  # the first worker creates the database
  done
  wait
  echo "${family}_${learner} tuned: $(date +%T)"
done
