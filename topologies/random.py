"""Random topologies, redrawn every inner step from a seeded ``torch.Generator``."""

from __future__ import annotations

import torch
from torch import Tensor

from badger_graph.state import ExpertGraph
from badger_graph.topologies.base import EdgeSet, Topology, all_pairs


class _Seeded(Topology):
    def __init__(self, seed: int | None, generator: torch.Generator | None) -> None:
        super().__init__()
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(0 if seed is None else seed)
        elif seed is not None:
            generator.manual_seed(seed)
        self.generator = generator

    def reseed(self, seed: int) -> None:
        """Restart the edge sequence from ``seed``."""
        self.generator.manual_seed(seed)


class ErdosRenyi(_Seeded):
    """Each ordered pair of nodes of an agent is an edge with probability ``p``, new every step.

    Args:
        p (float): edge probability in ``[0, 1]``.
        seed (int, optional): seed of the private generator. (default: :obj:`0`)
        generator (torch.Generator, optional): a CPU generator the caller owns and seeds.
    """

    def __init__(
        self, p: float, seed: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        super().__init__(seed, generator)
        self.p = float(p)

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Draw this step's edges (a Bernoulli mask over all pairs within each agent)."""
        pairs = all_pairs(state)
        keep = torch.rand(pairs.size(1), generator=self.generator) < self.p
        return pairs[:, keep.to(pairs.device)], None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p})"


class RandomOutDegree(_Seeded):
    """Every node sends to ``k`` distinct other nodes of its agent, drawn anew every step.

    Args:
        k (int): out-degree; must be smaller than the number of nodes of every agent.
        seed (int, optional): seed of the private generator. (default: :obj:`0`)
        generator (torch.Generator, optional): a CPU generator the caller owns and seeds.
    """

    def __init__(
        self, k: int, seed: int | None = None, generator: torch.Generator | None = None
    ) -> None:
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"out-degree k must be an int >= 0, got {k!r}")
        super().__init__(seed, generator)
        self.k = k

    def check(self, num_nodes: int) -> None:
        """Out-degree must be below the agent size."""
        if self.k >= num_nodes:
            raise ValueError(
                f"out-degree k={self.k} must be < the number of nodes per agent ({num_nodes})"
            )

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Draw ``k`` distinct receivers per sender (never itself), anew every call."""
        N = state.num_nodes
        device = state.batch.device
        if N == 0 or self.k == 0:
            return torch.empty(2, 0, dtype=torch.long, device=device), None
        sizes = state.sizes
        self.check(int(sizes.min()))
        local = state.local_index.cpu()
        size = sizes[state.batch].cpu()
        n_max = int(sizes.max())
        if n_max - 1 <= max(64, 4 * self.k):
            off = self._offsets_dense(N, n_max, size)
        else:
            off = self._offsets_rejection(N, size)
        # offsets in [1, size - 1] from the sender, wrapped: never the sender itself
        dst_local = (local.unsqueeze(1) + off) % size.unsqueeze(1)
        base = (torch.arange(N) - local).unsqueeze(1)
        src = torch.arange(N).unsqueeze(1).expand(-1, self.k)
        ei = torch.stack([src.reshape(-1), (base + dst_local).reshape(-1)])
        return ei.to(device), None

    def _offsets_dense(self, N: int, n_max: int, size: Tensor) -> Tensor:
        # small agents: random scores over all offsets, invalid ones masked, top-k
        scores = torch.rand(N, n_max - 1, generator=self.generator)
        offsets = torch.arange(1, n_max)
        scores[offsets.unsqueeze(0) >= size.unsqueeze(1)] = -1.0
        return scores.topk(self.k, dim=1).indices + 1

    def _offsets_rejection(self, N: int, size: Tensor) -> Tensor:
        # large agents (k << n): draw k offsets, redraw duplicates until none are left;
        # O(N k) memory instead of O(N n)
        span = (size - 1).unsqueeze(1).double()
        off = torch.rand(N, self.k, generator=self.generator, dtype=torch.double) * span
        off = off.long() + 1
        while True:
            srt, order = off.sort(dim=1)
            dup = torch.zeros_like(off, dtype=torch.bool)
            dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
            if not bool(dup.any()):
                return off
            rows, cols = dup.nonzero(as_tuple=True)
            redraw = torch.rand(rows.numel(), generator=self.generator, dtype=torch.double)
            srt[rows, cols] = (redraw * span[rows, 0]).long() + 1
            off = srt

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k})"
