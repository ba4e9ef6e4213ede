"""1M experts x random out-degree 8: the blocked inference CSR round vs the previous path.

Both timed in one process, alternating, so that the VM's drift hits both alike
(``python benchmarks/blocked_round.py [--reps 6] [--experts 1000000]``). "old" is the
previous code path: the whole ``[N, M]`` aggregate divided by the in-degree, then the GRU
per block of 4,096 rows through ``nn.GRUCell``; "new" is ``ExpertPolicy.forward`` on a CSR
adjacency at inference.
"""

import argparse

import torch

from badger_graph import ExpertGraph, ExpertPolicy
from badger_graph.adjacency import CSRAdjacency
from badger_graph.timing import interleaved
from badger_graph.topologies import RandomOutDegree


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--experts", type=int, default=1_000_000)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    N = a.experts
    pol = ExpertPolicy(64, 64, 32, 8)
    s = ExpertGraph.create([N], 1, 64, 8)
    ei, _ = RandomOutDegree(8, seed=0)(s)
    adj = CSRAdjacency.from_edge_index(ei, N)
    h = torch.randn(N, 64)
    u = torch.randn(N, 32)
    ones = torch.ones(ei.size(1))
    degree = torch.zeros(N).index_add_(0, ei[1], ones).clamp(min=1).unsqueeze(1)

    def old():  # the previous code: whole aggregate, divide by degree, GRU per 4,096 rows
        sent = torch.tanh(pol.lin_send(h))
        agg = adj.aggregate(sent, None, "sum") / degree
        out = torch.empty_like(h)
        for st in range(0, N, 4096):
            out[st : st + 4096] = pol.rnn(
                torch.cat([u[st : st + 4096], agg[st : st + 4096]], -1), h[st : st + 4096]
            )
        return out

    def new():
        return pol(h, u, adj)

    with torch.no_grad():
        torch.testing.assert_close(old(), new(), rtol=1e-4, atol=1e-5)
        res = interleaved({"old": old, "new": new}, reps=a.reps, warmup=0)
    for k, v in res.items():
        print(k, "median", f"{v:.3f}")


if __name__ == "__main__":
    main()
