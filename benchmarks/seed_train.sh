#!/usr/bin/env bash
# Train configs of configs/compare/ with several training seeds: seed s sets both the
# initial weights (--seed_everything s) and the training episode stream (--data.seed s);
# the validation episodes are the same for every seed. Two runs at a time, one thread each,
# so every run sees the same machine load (start an even number of runs). Run folders:
# runs/compare/seeds/<name>_s<seed>/ (checkpoints, logs/version_0/metrics.csv).
# Usage: SEEDS="0 1 2" benchmarks/seed_train.sh NAME [NAME ...]   (configs/compare/NAME.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 NAME [NAME ...]" >&2; exit 2; }
mkdir -p runs/compare/seeds
for name in "$@"; do
  [ -f "configs/compare/${name}.yaml" ] || { echo "no configs/compare/${name}.yaml" >&2; exit 2; }
done
for seed in ${SEEDS:-0 1 2}; do
  for name in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "${PARALLEL:-2}" ]; do wait -n || true; done
    run="runs/compare/seeds/${name}_s${seed}"
    OMP_NUM_THREADS=1 badger fit --config "configs/compare/${name}.yaml" --threads 1 \
      --seed_everything "$seed" --data.seed "$seed" --trainer.default_root_dir "$run" \
      --trainer.enable_progress_bar false > "${run}.log" 2>&1 &
    echo "started ${name} seed ${seed}: $(date +%T)"
  done
done
wait || true
echo "done: $(date +%T)"
