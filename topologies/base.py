"""Base class and helpers shared by the topology generators."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from badger_graph.memory import check_pairs_fit
from badger_graph.state import ExpertGraph, common_size

EdgeSet = tuple[Tensor, Tensor | None]


class Topology(nn.Module):
    """A generator of communication channels, called every inner step.

    ``forward(state)`` returns ``(edge_index, edge_weight)`` for the whole batch of agents:
    ``edge_index[0]`` are senders and ``edge_index[1]`` receivers (PyG's flow), indexing
    the rows of ``state.h``; ``edge_weight`` is ``None`` or one weight per edge. An edge
    never joins two agents. Nothing is cached across calls.
    """

    #: whether ``edge_weight`` is ``None`` (hardwired/random) or meaningful (attention)
    weighted: bool = False
    #: whether :meth:`dense` can return a ``[B, n, n]`` block (the agent then may take the
    #: dense path for small agents of equal size)
    supports_dense: bool = False
    #: ``"others"`` / ``"all"``: every node hears every other node of its agent (and
    #: itself); the dense path then aggregates by a sum over the agent, not an n² product
    complete: str | None = None
    #: the policy aggregation of the published method a generator is named after (CommNet:
    #: ``"mean"``); :class:`~badger_graph.Agent` refuses a policy with another. ``None``: any
    aggregation: str | None = None
    #: whether the edges depend only on the graph's structure (which nodes each agent has),
    #: never on the states: the same in every step of a lifetime (hardwired generators).
    #: A captured lifetime (:attr:`~badger_graph.Execution.capture`) then builds them once.
    fixed_edges: bool = False
    #: whether a step with this topology can run as one compiled graph
    #: (:attr:`~badger_graph.Execution.capture`); random draws with a private generator
    #: and host-side checks cannot, and run eagerly
    capturable: bool = True
    #: the private random generator of a random topology (saved in live-agent snapshots)
    generator: torch.Generator | None = None
    #: the expert-state width a learned topology reads (must equal the policy's);
    #: ``None``: it reads no states
    hidden_channels: int | None = None
    #: whether its edges and dense blocks are trusted to have the right form (the
    #: library's generators, tested); every other topology's output is validated every
    #: step. Not inherited: a subclass is validated unless its own body sets it.
    trusted: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        """A subclass that writes its own ``forward`` does not inherit the fast paths.

        ``dense``, ``complete`` and ``fixed_edges`` describe the edges of the ``forward``
        they were written with: a subclass that overrides ``forward`` alone (e.g. of
        :class:`~badger_graph.topologies.FullyConnected`) would otherwise train on its
        parent's edges while ``badger analyze`` records its own. Such a subclass runs its
        ``forward`` every step, unless it declares these attributes (or ``dense``) itself.
        """
        super().__init_subclass__(**kwargs)
        if "trusted" not in cls.__dict__:
            cls.trusted = False
        if "forward" in cls.__dict__ and "dense" not in cls.__dict__:
            for name, plain in (("supports_dense", False), ("complete", None)):
                if name not in cls.__dict__:
                    setattr(cls, name, plain)
        if "forward" in cls.__dict__ and "fixed_edges" not in cls.__dict__:
            cls.fixed_edges = False

    def set_generator_state(self, state: Tensor) -> None:
        """Continue the random draws from ``state`` (a live-agent snapshot's)."""
        if self.generator is None:
            raise ValueError(f"{self!r} has no random generator to restore")
        self.generator.set_state(state)

    def reseed(self, seed: int) -> None:
        """Re-seed the random draws from a training or evaluation batch's seed.

        Called once per batch before the lifetime starts, so that a batch's edges are a
        function of its seed alone. Deterministic topologies ignore it.
        """

    def check(self, num_nodes: int) -> None:
        """Raise ``ValueError`` if agents of ``num_nodes`` nodes cannot use this topology."""

    def forward(self, state: ExpertGraph) -> EdgeSet:  # pragma: no cover - abstract
        """Return ``(edge_index, edge_weight)`` for ``state``."""
        raise NotImplementedError

    def expected_edges(self, num_nodes: int) -> float | None:
        """Edges (or, for attention, scored pairs) per agent of ``num_nodes`` nodes.

        Lets the agent choose between the dense and the sparse path by cost; ``None``:
        unknown. Topologies with a dense form override it.
        """
        return None

    def dense(self, state: ExpertGraph) -> Tensor | None:
        """The same edges as a dense ``[B, n, n]`` adjacency (receiver, sender), or ``None``.

        Only for batches whose agents all have ``n`` nodes; generators that can produce it
        cheaply override this, and :class:`~badger_graph.Agent` then uses the dense path.
        """
        return None


def equal_sizes(state: ExpertGraph) -> int | None:
    """The common agent size if every agent has the same number of nodes, else ``None``.

    Known from ``state.agent_size`` without a read-back from the device, else measured.
    """
    size = state.agent_size if state.agent_size is not None else common_size(state.ptr)
    return size or None


def all_pairs(state: ExpertGraph, self_loops: bool = False) -> Tensor:
    """All ordered pairs (sender, receiver) of nodes of the same agent, ``[2, E]``.

    Vectorized over agents of different sizes: no Python loop over agents or nodes.

    Raises:
        MemoryError: before allocating, when the pairs cannot fit in the device's memory.
    """
    sizes = state.sizes
    check_pairs_fit(int((sizes * sizes).sum()), state.batch.device, "all pairs of nodes")
    batch = state.batch
    n_node = sizes[batch]  # size of each receiver's agent
    recv = torch.repeat_interleave(torch.arange(state.num_nodes, device=batch.device), n_node)
    # offset of each pair within its receiver's block
    starts = torch.cumsum(n_node, 0) - n_node
    within = torch.arange(recv.numel(), device=batch.device) - starts[recv]
    send = state.ptr[batch[recv]] + within
    edge_index = torch.stack([send, recv])
    if not self_loops:
        edge_index = edge_index[:, send != recv]
    return edge_index


def offset_pattern(state: ExpertGraph, pattern: Tensor, num_pattern_nodes: int) -> Tensor:
    """Apply one agent's local edge pattern ``[2, e]`` to every agent of the batch.

    Edges whose endpoints are beyond an agent's size are dropped for that agent.
    """
    B = state.num_agents
    if pattern.numel() == 0 or B == 0:
        return torch.empty(2, 0, dtype=torch.long, device=state.batch.device)
    pattern = pattern.to(state.batch.device)
    sizes = state.sizes
    offs = state.ptr[:-1]
    full = pattern.unsqueeze(0) + offs.view(B, 1, 1)  # [B, 2, e]
    valid = pattern.max(0).values.unsqueeze(0) < sizes.unsqueeze(1)  # [B, e]
    return full.permute(1, 0, 2)[:, valid]


def check_edge_index(edge_index: Tensor, num_nodes: int, name: str = "edge_index") -> Tensor:
    """Validate a user-given edge index: long dtype, shape ``[2, E]``, in range."""
    if not isinstance(edge_index, Tensor):
        edge_index = torch.as_tensor(edge_index)
    if edge_index.dtype not in (torch.long, torch.int, torch.int32, torch.int64):
        raise ValueError(f"{name} must hold integers, got dtype {edge_index.dtype}")
    edge_index = edge_index.long()
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ValueError(
            f"{name} holds node indices in [{int(edge_index.min())}, {int(edge_index.max())}] "
            f"but only {num_nodes} nodes exist"
        )
    return edge_index


def check_topology_output(out, state: ExpertGraph, topology: Topology) -> EdgeSet:
    """Validate what a (user-written) topology returned for ``state``.

    Raises:
        ValueError: not an ``(edge_index, edge_weight)`` pair; edge index of the wrong
            dtype or shape or out of range; an edge joining two agents; weights of the
            wrong shape — each naming the topology and the values.
        NonFiniteError: weights holding NaN / inf, naming the topology and the step.
    """
    name = type(topology).__name__
    if not isinstance(out, tuple) or len(out) != 2:
        raise ValueError(f"{name} must return (edge_index, edge_weight), got {type(out).__name__}")
    edge_index, edge_weight = out
    edge_index = check_edge_index(edge_index, state.num_nodes, f"{name} edge_index")
    if edge_index.numel():
        src, dst = edge_index
        across = state.batch[src] != state.batch[dst]
        if bool(across.any()):
            i = int(across.nonzero()[0])
            raise ValueError(
                f"{name} returned {int(across.sum())} edges between different agents, e.g. "
                f"{int(src[i])} (agent {int(state.batch[src[i]])}) -> {int(dst[i])} "
                f"(agent {int(state.batch[dst[i]])}); an edge must stay within one agent"
            )
    if edge_weight is not None:
        if not isinstance(edge_weight, Tensor) or edge_weight.shape != (edge_index.size(1),):
            shape = list(edge_weight.shape) if isinstance(edge_weight, Tensor) else edge_weight
            raise ValueError(
                f"{name} edge_weight must have shape [E] = [{edge_index.size(1)}], got {shape}"
            )
        if not edge_weight.is_floating_point():
            raise ValueError(f"{name} edge_weight must be floating point, got {edge_weight.dtype}")
        if not bool(edge_weight.isfinite().all()):
            from badger_graph.errors import NonFiniteError

            raise NonFiniteError(
                f"edge weights of {name}", edge_weight, step=state.step, where="inner step"
            )
    return edge_index, edge_weight
