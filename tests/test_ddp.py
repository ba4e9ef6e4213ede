"""Lightning DDP with 2 CPU processes (gloo): the same run as one process.

Backprop: the global batch of episodes is split across the processes (each draws the
whole batch from the seed and keeps its share). ES: the population is split and the
losses are gathered. Both must end with the weights of the one-process run.
"""

import csv
from pathlib import Path

import pytest
import torch
from helpers import badger

CONFIG = str(Path(__file__).parent / "reliability" / "tiny.yaml")
COMMON = [
    "--model.topology",
    "badger_graph.topologies.FullyConnected",  # deterministic edges: exact comparison
    "--trainer.max_steps",
    "12",
    "--trainer.val_check_interval",
    "6",
    "--trainer.accelerator",
    "cpu",
]


def _fit(cwd: Path, *args: str) -> dict:
    out = badger(cwd, "fit", "--config", CONFIG, *COMMON, *args, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = torch.load(
        cwd / "runs/tiny/checkpoints/last.ckpt", map_location="cpu", weights_only=False
    )
    with (cwd / "runs/tiny/logs/version_0/metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    return {"weights": ckpt["state_dict"], "loss": [float(r["train/loss"]) for r in rows]}


@pytest.mark.parametrize("outer", ["backprop", "es"])  # ~12 s each: in the default run
def test_two_processes_match_one(tmp_path, outer):
    extra = []
    if outer == "es":
        extra = [
            "--model.outer_loop",
            "badger_graph.outer.EvolutionStrategy",
            "--model.outer_loop.population",
            "8",
            "--model.outer_loop.gradient_clip_val",
            "null",
        ]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _fit(tmp_path / "one", "--trainer.devices", "1", *extra)
    two = _fit(tmp_path / "two", "--trainer.devices", "2", "--trainer.strategy", "ddp", *extra)
    assert len(one["loss"]) == len(two["loss"]) > 0
    torch.testing.assert_close(
        torch.tensor(two["loss"]), torch.tensor(one["loss"]), rtol=1e-4, atol=1e-5
    )
    for k in one["weights"]:
        torch.testing.assert_close(two["weights"][k], one["weights"][k], rtol=1e-4, atol=1e-5)
