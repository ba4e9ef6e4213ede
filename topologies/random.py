"""Random topologies, redrawn every inner step from a seeded ``torch.Generator``."""

from __future__ import annotations

import torch
from torch import Tensor

from badger_graph.state import ExpertGraph
from badger_graph.topologies.base import EdgeSet, Topology, all_pairs, equal_sizes


def _random_offsets(
    generator: torch.Generator, size: Tensor, n_max: int, k: int, exclude: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``k`` distinct random offsets in ``[1, size - 1]`` per node (small agents).

    Random scores over all offsets ``1..n_max-1``; offsets at or beyond the node's agent
    ``size`` and those marked in ``exclude`` ``[N, n_max - 1]`` score -1; the top ``k`` win.
    Returns the offsets ``[N, k]`` and which of them are valid (all of them when every node
    has ``k`` valid offsets).
    """
    device = generator.device
    scores = torch.rand(size.numel(), max(n_max - 1, 1), generator=generator, device=device)
    invalid = torch.arange(1, scores.size(1) + 1, device=device).unsqueeze(0) >= size.unsqueeze(1)
    if exclude is not None:
        invalid |= exclude
    scores[invalid] = -1.0
    top = scores.topk(k, dim=1)
    return top.indices + 1, top.values >= 0


class _Seeded(Topology):
    """A topology with a private seeded CPU generator, and one per accelerator it meets.

    Draws are made on the state's device. On the CPU they come from :attr:`generator`; on
    another device from a generator of that device seeded from the CPU one at its first use
    after a (re)seed, so a batch's edges stay a function of its seed on every device (the
    numbers differ between devices, as their random streams do).
    """

    trusted = True  # the library's own: its output is not re-validated every step

    capturable = False  # draws from a private generator, with host-side size checks

    def __init__(self, seed: int | None, generator: torch.Generator | None) -> None:
        super().__init__()
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(0 if seed is None else seed)
        elif seed is not None:
            generator.manual_seed(seed)
        if generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU generator, got one on {generator.device}")
        self.generator = generator
        self._on_device: dict[str, torch.Generator] = {}

    def reseed(self, seed: int) -> None:
        """Restart the edge sequence from ``seed``."""
        self.generator.manual_seed(seed)
        self._on_device.clear()

    def set_generator_state(self, state: Tensor) -> None:
        """Continue the CPU stream from ``state`` (a snapshot); device streams follow it."""
        self.generator.set_state(state)
        self._on_device.clear()

    def generator_on(self, device: torch.device) -> torch.Generator:
        """The generator that draws on ``device`` (the CPU one on the CPU)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.generator
        key = str(device)
        if key not in self._on_device:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            self._on_device[key] = torch.Generator(device=device).manual_seed(seed)
        return self._on_device[key]


class ErdosRenyi(_Seeded):
    """Each ordered pair of nodes of an agent is an edge with probability ``p``, new every step.

    Args:
        p (float): edge probability in ``[0, 1]``.
        seed (int, optional): seed of the private generator. (default: :obj:`0`)
        generator (torch.Generator, optional): a CPU generator the caller owns and seeds.
    """

    trusted = True  # the library's own: its output is not re-validated every step

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
        device = pairs.device
        keep = torch.rand(pairs.size(1), generator=self.generator_on(device), device=device)
        return pairs[:, keep < self.p], None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p})"


class RandomOutDegree(_Seeded):
    """Every node sends to ``k`` distinct other nodes of its agent, drawn anew every step.

    Args:
        k (int): out-degree; must be smaller than the number of nodes of every agent.
        seed (int, optional): seed of the private generator. (default: :obj:`0`)
        generator (torch.Generator, optional): a CPU generator the caller owns and seeds.
    """

    trusted = True  # the library's own: its output is not re-validated every step

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
        n_equal = equal_sizes(state)  # known without a read-back from the device
        self.check(n_equal or int(sizes.min()))
        local = state.local_index
        size = sizes[state.batch]
        n_max = n_equal or int(sizes.max())
        generator = self.generator_on(device)
        if n_max - 1 <= max(64, 4 * self.k):
            off, _ = _random_offsets(generator, size, n_max, self.k)  # all valid: k < n
        else:
            off = self._offsets_rejection(generator, N, size)
        # offsets in [1, size - 1] from the sender, wrapped: never the sender itself
        dst_local = (local.unsqueeze(1) + off) % size.unsqueeze(1)
        nodes = torch.arange(N, device=device)
        base = (nodes - local).unsqueeze(1)
        src = nodes.unsqueeze(1).expand(-1, self.k)
        ei = torch.stack([src.reshape(-1), (base + dst_local).reshape(-1)])
        return ei, None

    def _offsets_rejection(self, generator: torch.Generator, N: int, size: Tensor) -> Tensor:
        # large agents (k << n): draw k offsets, redraw duplicates until none are left;
        # O(N k) memory instead of O(N n)
        device = size.device
        span = (size - 1).unsqueeze(1).double()
        off = torch.rand(N, self.k, generator=generator, dtype=torch.double, device=device)
        off = off * span
        off = off.long() + 1
        while True:
            srt, order = off.sort(dim=1)
            dup = torch.zeros_like(off, dtype=torch.bool)
            dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
            if not bool(dup.any()):
                return off
            rows, cols = dup.nonzero(as_tuple=True)
            redraw = torch.rand(
                rows.numel(), generator=generator, dtype=torch.double, device=device
            )
            srt[rows, cols] = (redraw * span[rows, 0]).long() + 1
            off = srt

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k})"


class RandomInDegree(_Seeded):
    """Every node hears ``k`` distinct other nodes of its agent, drawn anew every step.

    A node of an agent with ``n <= k`` nodes hears all ``n - 1`` others. With the mean
    aggregation, a node's input is then a mean over ``min(k, n - 1)`` messages for any
    number of experts: its statistics do not change when an agent grows beyond ``k + 1``
    nodes (a fully connected agent averages ``n - 1`` messages, whose spread shrinks with
    ``n``). Offers a dense ``[B, n, n]`` adjacency for agents of equal size, drawn from the
    same random numbers as the edge list (same results on both paths).

    Args:
        k (int): in-degree (>= 1).
        experts_only (bool, optional): only experts send and receive (port and input nodes
            take no part in message passing), so the share of port messages in an expert's
            input does not shrink as the agent grows. (default: :obj:`False`)
        seed (int, optional): seed of the private generator. (default: :obj:`0`)
        generator (torch.Generator, optional): a CPU generator the caller owns and seeds.
    """

    trusted = True  # the library's own: its output is not re-validated every step

    supports_dense = True

    def __init__(
        self,
        k: int,
        experts_only: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"in-degree k must be an int >= 1, got {k!r}")
        super().__init__(seed, generator)
        self.k = k
        self.experts_only = experts_only

    def _senders(self, state: ExpertGraph) -> tuple[Tensor, Tensor]:
        """Local sender indices ``[N, k']`` of every receiver and which of them are real."""
        device = state.batch.device
        size = state.sizes[state.batch]
        n_max = int(state.sizes.max())
        local = state.local_index.unsqueeze(1)
        wrap = size.unsqueeze(1).clamp(min=1)
        exclude = None
        if self.experts_only:  # neither a non-expert receiver nor a non-expert sender
            expert = state.is_expert
            base = torch.arange(state.num_nodes, device=device).unsqueeze(1) - local
            every = (local + torch.arange(1, max(n_max, 2), device=device).unsqueeze(0)) % wrap
            exclude = ~expert[base + every] | ~expert.unsqueeze(1)
        k = min(self.k, max(n_max - 1, 1))
        # the senders are the receiver's offsets, wrapped within its agent: never itself
        off, real = _random_offsets(self.generator_on(device), size, n_max, k, exclude)
        return (local + off) % wrap, real

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Draw ``min(k, n - 1)`` distinct senders per receiver, anew every call."""
        device = state.batch.device
        if state.num_nodes == 0:
            return torch.empty(2, 0, dtype=torch.long, device=device), None
        senders, real = self._senders(state)
        nodes = torch.arange(state.num_nodes, device=device)
        base = (nodes - state.local_index).unsqueeze(1)
        dst = nodes.unsqueeze(1).expand_as(senders)
        return torch.stack([(base + senders)[real], dst[real]]), None

    def expected_edges(self, num_nodes: int) -> float:
        """``k`` senders per node."""
        return self.k * num_nodes

    def dense(self, state: ExpertGraph) -> Tensor | None:
        """The same draw as ``[B, n, n]`` (receiver, sender) ones, for equal-size agents."""
        n = equal_sizes(state)
        if n is None:
            return None
        senders, real = self._senders(state)
        B, device = state.num_agents, state.h.device
        adj = torch.zeros(B * n, n, dtype=state.h.dtype, device=device)
        # padding picks point at the receiver itself (its diagonal entry stays 0)
        own = state.local_index.unsqueeze(1).expand_as(senders)
        adj.scatter_(1, torch.where(real, senders, own), real.to(adj.dtype))
        return adj.view(B, n, n)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k}, experts_only={self.experts_only})"
