"""Random topologies, redrawn every inner step from a seeded ``torch.Generator``."""

from __future__ import annotations

import torch

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
        """Draw ``k`` receivers per sender without replacement (random keys + top-k)."""
        N = state.num_nodes
        device = state.batch.device
        if N == 0 or self.k == 0:
            return torch.empty(2, 0, dtype=torch.long, device=device), None
        sizes = state.sizes
        n_min = int(sizes.min())
        self.check(n_min)
        local = state.local_index.cpu()
        size = sizes[state.batch].cpu()
        # sample k distinct offsets in [1, size-1] per node: random scores over the largest
        # agent's offsets, invalid offsets masked out, top-k
        n_max = int(sizes.max())
        scores = torch.rand(N, n_max - 1, generator=self.generator)
        offsets = torch.arange(1, n_max)
        scores[offsets.unsqueeze(0) >= size.unsqueeze(1)] = -1.0
        off = scores.topk(self.k, dim=1).indices + 1  # [N, k]
        dst_local = (local.unsqueeze(1) + off) % size.unsqueeze(1)
        base = (torch.arange(N) - local).unsqueeze(1)
        src = torch.arange(N).unsqueeze(1).expand(-1, self.k)
        ei = torch.stack([src.reshape(-1), (base + dst_local).reshape(-1)])
        return ei.to(device), None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k})"
