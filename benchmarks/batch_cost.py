"""Seconds per training batch of several configs, timed in turn in one run.

What a batch costs each learner of a comparison on this machine: for every config, one
batch of its lifetimes (its own batch size), the mean error over the lifetime backpropagated
and an Adam step, timed interleaved with the others (:func:`badger_graph.timing.interleaved`,
so a slow phase of the machine hits every config alike); the ratio to the first config is
the figure to quote. Seeded training runs on a shared machine log seconds that depend on
what else ran; this ratio does not.

    python benchmarks/batch_cost.py compare/sinusoid_badger_tuned compare/sinusoid_rnn_tuned \
        compare/sinusoid_transformer_tuned --threads 1 --reps 10
"""

from __future__ import annotations

import argparse

import torch

from badger_graph.cli import _lightning_cli
from badger_graph.timing import interleaved


def batch_fn(config: str):
    """A function that trains one batch of ``config``'s model, and its weight count."""
    cli = _lightning_cli(["--config", config], run=False)
    module = cli.model
    module.train()
    size = cli.datamodule.hparams.batch_size
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    seeds = iter(range(10**9))

    def step() -> None:
        opt.zero_grad()
        module.lifetime(next(seeds), size).errors.mean().backward()
        opt.step()

    return step, sum(p.numel() for p in module.parameters()), size


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="+", help="shipped config names or files")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.reps < 1:
        p.error(f"--reps must be >= 1, got {a.reps}")
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.threads:
        torch.set_num_threads(a.threads)
    built = {c: batch_fn(c) for c in a.configs}
    med = interleaved({c: b[0] for c, b in built.items()}, reps=a.reps, warmup=1)
    first = med[a.configs[0]]
    rows = []
    print("| config | weights | batch size | seconds per batch (median) | relative |")
    print("|---|---|---|---|---|")
    for c in a.configs:
        _, weights, size = built[c]
        rel = med[c] / first
        rows.append({"config": c, "weights": weights, "seconds": med[c], "relative": rel})
        print(f"| {c} | {weights:,} | {size} | {med[c]:.4f} | {rel:.2f}x |")
    print(f"threads {torch.get_num_threads()}, median of {a.reps} interleaved repetitions")
    return rows


if __name__ == "__main__":
    main()
