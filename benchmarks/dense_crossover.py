"""Where the dense path stops paying: fully connected agents of n experts, dense vs CSR.

    python benchmarks/dense_crossover.py [--train]

One inner-loop lifetime (T = 20, 1 round, hidden 64) of B agents with B * n ~ 16k nodes,
without autograd (evaluation) or with forward + backward (``--train``), on the dense
batched path (one [B, n, n] block product per round) and on the CSR path (n (n - 1) edges
per agent). Prints the median seconds per lifetime and episodes per second for each size.
"""

from __future__ import annotations

import argparse

import torch

from badger_graph import Agent, Execution, ExpertPolicy
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.timing import timeit
from badger_graph.topologies import FullyConnected


def lifetime_seconds(n: int, B: int, ex: Execution, train: bool) -> float:
    torch.manual_seed(0)
    agent = Agent(ExpertPolicy(), FullyConnected(), execution=ex)
    game = GuessingGame(3)

    def run() -> None:
        with torch.set_grad_enabled(train):
            ep = game.reset(B, torch.Generator().manual_seed(1))
            life = agent(LifetimeCall(game, ep, agent.init_state(n, 3, num_agents=B), 20))
            if train:
                life.errors[-1].mean().backward()

    return timeit(run, reps=2, warmup=1, min_time=2.0)  # median of >= 2 s of calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train", action="store_true", help="forward + backward")
    p.add_argument("--sizes", default="64,128,256,512,1024,2048")
    a = p.parse_args()
    print("| n | B | dense s | CSR s | dense episodes/s | CSR episodes/s | CSR / dense |")
    print("|---|---|---|---|---|---|---|")
    for n in map(int, a.sizes.split(",")):
        B = max(1, 16384 // n)
        dense = lifetime_seconds(n, B, Execution(dense_max_nodes=10**6), a.train)
        csr = lifetime_seconds(n, B, Execution(dense="never", sparse="csr"), a.train)
        print(
            f"| {n} | {B} | {dense:.3f} | {csr:.3f} | {B / dense:.1f} | {B / csr:.1f} | "
            f"{csr / dense:.1f} |"
        )


if __name__ == "__main__":
    main()
