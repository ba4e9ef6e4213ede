"""Could several training seeds share one process faster than one after another?

Training S seeds in one process (stacked weights under ``torch.func.vmap``) runs S batches
of B agents as one computation, the same work as ONE batch of S * B agents with shared
weights, and no faster than it. This prints, for a config, the time of one training batch
(lifetime, backward, Adam) of S * B agents against S batches of B agents, measured
interleaved in one run (so the machine's load hits both alike). A ratio near 1 means the
stacked run can save nothing on this machine and separate runs stay.

    python benchmarks/multi_seed_bound.py --config guessing_game --seeds 3
"""

from __future__ import annotations

import argparse

import torch

from badger_graph.cli import _lightning_cli
from badger_graph.timing import interleaved


def _batch(module, opt, seed: int, agents: int) -> None:
    opt.zero_grad()
    loss = module.lifetime(seed, agents, train=False).errors[-1].mean()
    loss.backward()
    opt.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="guessing_game")
    p.add_argument("--seeds", type=int, default=3, help="S, seeds trained together")
    p.add_argument("--batch_size", type=int, default=None, help="B (default: the config's)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cli = _lightning_cli(["--config", a.config], run=False)
    module = cli.model
    module.train()
    B = a.batch_size or cli.datamodule.hparams.batch_size
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    S = a.seeds
    _batch(module, opt, 0, B)  # warm-up

    def apart():
        for s in range(S):
            _batch(module, opt, s, B)

    med = interleaved({"apart": apart, "together": lambda: _batch(module, opt, 50, S * B)},
                      reps=a.reps, warmup=0)  # fmt: skip
    a_med, t_med = med["apart"], med["together"]
    print(f"| config | S x B | {S} batches of {B} agents (s) | one batch of {S * B} agents (s) "
          "| saving bound |")  # fmt: skip
    print("|---|---|---|---|---|")
    print(f"| {a.config} | {S} x {B} | {a_med:.3f} | {t_med:.3f} | {a_med / t_med:.2f}x |")
    print(f"threads {torch.get_num_threads()}, median of {a.reps} interleaved repetitions")


if __name__ == "__main__":
    main()
