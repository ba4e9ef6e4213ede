#!/usr/bin/env bash
# badger fit of configs CONFIG_DIR/NAME.yaml for every NAME, two at a time, one thread each
# (the same machine share for all), progress bars off; NAME's log goes to LOG_DIR/NAME.log,
# its checkpoints to the config's default_root_dir. Used by the *_train.sh scripts.
# Usage: benchmarks/fit_two_at_a_time.sh CONFIG_DIR LOG_DIR NAME [NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 CONFIG_DIR LOG_DIR NAME [NAME ...]" >&2; exit 2; }
configs=$1 logs=$2
shift 2
mkdir -p "$logs"
printf '%s\n' "$@" | CONFIGS="$configs" LOGS="$logs" xargs -P 2 -I{} sh -c \
  'OMP_NUM_THREADS=1 badger fit --config "$CONFIGS/{}.yaml" --threads 1 \
     --trainer.enable_progress_bar false > "$LOGS/{}.log" 2>&1; echo "{} done: $(date +%T)"'
