"""Throughput of Lightning DDP with 2 CPU processes against 1 process, same global batch.

    python benchmarks/ddp_speed.py [--config configs/guessing_game.yaml] [--steps 300]

Runs ``badger fit`` for ``--steps`` training batches once with 1 process and once with
``--trainer.strategy ddp --trainer.devices 2`` (gloo, CPU) in fresh temporary folders, and
prints the wall time of the training loop (from the CSV log's first to last step is not
available, so the whole command is timed; startup is reported separately by a 1-step run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from badger_graph.timing import once


def _run(config: str, steps: int, devices: int) -> float:
    args = [
        sys.executable, "-m", "badger_graph.cli", "fit", "--config", str(Path(config).resolve()),
        "--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps),
        "--data.val_episodes", "256", "--trainer.accelerator", "cpu",
        "--trainer.devices", str(devices), "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    if devices > 1:
        args += ["--trainer.strategy", "ddp"]
    with tempfile.TemporaryDirectory() as d:
        return once(lambda: subprocess.run(args, cwd=d, check=True, capture_output=True))[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default="configs/guessing_game.yaml")
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args()
    rows = []
    for devices in (1, 2):
        startup = _run(a.config, 1, devices)
        total = _run(a.config, a.steps + 1, devices)
        per_batch = (total - startup) / a.steps
        rows.append((devices, total, startup, per_batch))
    print(f"\n{a.config}, {a.steps} batches, global batch as configured\n")
    print("| processes | wall s | startup s (1-batch run) | s / batch | batches / s |")
    print("|---|---|---|---|---|")
    for devices, total, startup, per_batch in rows:
        print(
            f"| {devices} | {total:.1f} | {startup:.1f} | {per_batch:.4f} | {1 / per_batch:.1f} |"
        )
    print(f"\nthroughput ratio 2 processes / 1 process: {rows[0][3] / rows[1][3]:.2f}")


if __name__ == "__main__":
    main()
