"""What learners output and learn at initialisation: a look at the start of a plateau.

For every config: the untrained model plays fresh lifetimes (``--episodes``) and prints the
scale of its outputs, their spread over the outputs (a learner whose class scores do not
differ scores exactly chance), their change over a lifetime, the error, and the norm of the
weight gradient of the mean error (mean over ``--batches`` batches of the config's size)
with its signal-to-noise ratio (norm of the mean gradient over the mean norm of a batch's
deviation from it), and the RMS of an internal state unit at the lifetime's end (BADGER's
experts; a GRU's bound is ±1). ``CONFIG:CKPT`` probes trained weights instead, e.g. a run
sitting on a plateau.

    python benchmarks/init_probe.py compare/classification_badger compare/classification_rnn
    python benchmarks/init_probe.py compare/classification_badger_tuned:run/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from badger_graph.checkpoint import safe_load
from badger_graph.cli import _lightning_cli


def probe(spec: str, episodes: int, batches: int) -> dict:
    """The row of ``CONFIG`` or ``CONFIG:CKPT`` (seeded: the same numbers every run)."""
    config, _, ckpt = spec.partition(":")
    torch.manual_seed(0)
    cli = _lightning_cli(["--config", config], run=False)
    module = cli.model
    if ckpt:
        module.load_state_dict(safe_load(ckpt)["state_dict"])
    with torch.no_grad():
        out = module.lifetime(5, episodes)
    a = out.actions  # [T, B, d]
    size = cli.datamodule.hparams.batch_size
    grads = []
    for b in range(batches):
        module.zero_grad()
        module.lifetime(1000 + b, size).errors.mean().backward()
        grads.append(
            torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])
        )
    g = torch.stack(grads)
    mean = g.mean(0)
    h = getattr(out.state, "h", None)  # BADGER's expert states; a learner's are not kept
    return {
        "config": spec if not ckpt else f"{config} ({Path(ckpt).stem})",
        "output scale": float(a.abs().mean()),
        "spread over outputs": float(a.std(-1).mean()),
        "change over the lifetime": float(a.std(0).mean()),
        "error": float(out.errors.mean()),
        "gradient norm": float(g.norm(dim=1).mean()),
        "gradient SNR": float(mean.norm() / (g - mean).norm(dim=1).mean()),
        "state RMS": float(h.pow(2).mean().sqrt()) if isinstance(h, torch.Tensor) else float("nan"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("configs", nargs="+", help="shipped config names or files")
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    for flag in ("episodes", "batches", "threads"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    torch.set_num_threads(a.threads)
    rows = [probe(c, a.episodes, a.batches) for c in a.configs]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|---" * len(keys) + "|")
    for r in rows:
        print("| " + " | ".join(r[k] if k == "config" else f"{r[k]:.3g}" for k in keys) + " |")


if __name__ == "__main__":
    main()
