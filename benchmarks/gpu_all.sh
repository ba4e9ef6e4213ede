#!/usr/bin/env bash
# Every GPU check of badger_graph in one run, most important first, each writing its log
# into OUT as it goes (a run cut short keeps what finished):
#   1. benchmarks/gpu_check.py     1M / 10M-expert rounds, device draws, 1M-expert lifetime,
#                                  Fig. 6 / 7 training batches eager and captured (+ CPU rows)
#   2. pytest -m gpu               CUDA == CPU per path, captured == eager, 20-batch fits
#   3. badger fit                  configs/guessing_game_gpu.yaml, 300 batches, timed
#   4. benchmarks/speed.py         its training table on the device
#
#   benchmarks/gpu_all.sh OUT            # on a machine with CUDA
#   benchmarks/gpu_all.sh OUT --small    # the same steps on the CPU with small sizes
#
# Needs badger_graph importable (installed); runs from a scratch folder so that the
# installed package, not the source folder, is imported.
set -uo pipefail
out=$(mkdir -p "${1:?usage: gpu_all.sh OUT [--small]}" && cd "$1" && pwd)
small=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
device=cuda
steps=300
if [ "$small" = "--small" ]; then
  device=cpu
  steps=3
fi
scratch=$(mktemp -d)
cd "$scratch" || exit 1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  | tee "$out/env.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/env.log" 2>&1

echo "== 1. gpu_check.py"
python3 "$repo/benchmarks/gpu_check.py" --device "$device" $small --out "$out" 2>&1 \
  | grep -v "^W[0-9]" | tee "$out/gpu_check.log"

echo "== 2. pytest -m gpu"
BADGER_TEST_DEVICE=$device python3 -m pytest -m gpu -q -p no:cacheprovider \
  -c "$repo/pyproject.toml" --rootdir "$repo" "$repo/tests/test_gpu.py" 2>&1 \
  | tail -30 | tee "$out/pytest_gpu.log"

echo "== 3. badger fit configs/guessing_game_gpu.yaml ($steps batches)"
accelerator=gpu
[ "$device" = cpu ] && accelerator=cpu
start=$(date +%s.%N)
python3 -m badger_graph.cli fit --config "$repo/configs/guessing_game_gpu.yaml" \
  --trainer.accelerator "$accelerator" --trainer.max_steps "$steps" \
  --trainer.val_check_interval "$steps" --trainer.default_root_dir "$scratch/fit" \
  > "$scratch/fit.log" 2>&1
rc=$?
end=$(date +%s.%N)
tr '\r' '\n' < "$scratch/fit.log" | grep -a "Epoch" | tail -1 | cut -c1-200 > "$out/fit_gpu.log"
echo "rc $rc, $(python3 -c "print(round($end - $start, 1))") s wall incl. start-up" \
  >> "$out/fit_gpu.log"
cp "$scratch/fit/logs/version_0/metrics.csv" "$out/fit_gpu_metrics.csv" 2>/dev/null
cat "$out/fit_gpu.log"

echo "== 4. speed.py --sections train"
quick=
[ "$small" = "--small" ] && quick=--quick
python3 "$repo/benchmarks/speed.py" --device "$device" --sections train $quick --out "$out" \
  2>&1 | grep "^|" | tee "$out/speed_train.log"
rm -rf "$scratch"
