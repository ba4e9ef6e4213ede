"""Hardwired topologies: the same pattern in every agent, rebuilt from sizes every step."""

from __future__ import annotations

import networkx as nx
import torch
from torch import Tensor

from badger_graph.state import ExpertGraph
from badger_graph.topologies.base import (
    EdgeSet,
    Topology,
    all_pairs,
    check_edge_index,
    equal_sizes,
    offset_pattern,
)


def _node_range(state: ExpertGraph) -> tuple[Tensor, Tensor, Tensor]:
    """Global index, local index and agent size of every node."""
    idx = torch.arange(state.num_nodes, device=state.batch.device)
    return idx, state.local_index, state.sizes[state.batch]


def _both_ways(edge_index: Tensor, bidirectional: bool) -> Tensor:
    return torch.cat([edge_index, edge_index.flip(0)], 1) if bidirectional else edge_index


class FullyConnected(Topology):
    """Every node of an agent talks to every other node of the same agent.

    Args:
        self_loops (bool, optional): also connect each node to itself. (default: ``False``)
    """

    trusted = True  # the library's own: its output is not re-validated every step

    fixed_edges = True  # the same edges every step

    supports_dense = True

    def __init__(self, self_loops: bool = False) -> None:
        super().__init__()
        self.self_loops = self_loops

    @property
    def complete(self) -> str:
        """Every node hears all others (and itself with ``self_loops``)."""
        return "all" if self.self_loops else "others"

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """All ordered pairs within each agent."""
        return all_pairs(state, self.self_loops), None

    def expected_edges(self, num_nodes: int) -> float:
        """All ordered pairs."""
        return num_nodes * (num_nodes - 1) + (num_nodes if self.self_loops else 0)

    def dense(self, state: ExpertGraph) -> Tensor | None:
        """Ones everywhere (but the diagonal unless ``self_loops``)."""
        n = equal_sizes(state)
        if n is None:
            return None
        kw = {"dtype": state.h.dtype, "device": state.h.device}
        adj = torch.ones(n, n, **kw)
        if not self.self_loops:
            adj = adj - torch.eye(n, **kw)  # not in place: stays cheap under torch.func.vmap
        return adj.expand(state.num_agents, n, n)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(self_loops={self.self_loops})"


class CommNet(FullyConnected):
    """CommNet's channel (Sukhbaatar et al., 2016): every expert hears the mean of all others.

    The fully connected topology without self loops, pinned to the policy's ``aggr="mean"``
    (an :class:`~badger_graph.Agent` with another aggregation is refused), so a
    configuration that names CommNet gets CommNet's communication step.
    """

    trusted = True  # the library's own: its output is not re-validated every step

    aggregation = "mean"

    def __init__(self) -> None:
        super().__init__(self_loops=False)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class Ring(Topology):
    """Node ``i`` sends to ``i + 1`` (mod agent size); both ways if ``bidirectional``."""

    trusted = True  # the library's own: its output is not re-validated every step

    fixed_edges = True  # the same edges every step

    def __init__(self, bidirectional: bool = True) -> None:
        super().__init__()
        self.bidirectional = bidirectional

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Ring edges of every agent."""
        idx, local, size = _node_range(state)
        keep = size > 1
        nxt = idx - local + (local + 1) % size
        ei = torch.stack([idx[keep], nxt[keep]])
        if self.bidirectional:
            # a ring of 2 nodes has one edge each way already
            rev = keep & (size > 2)
            ei = torch.cat([ei, torch.stack([nxt[rev], idx[rev]])], 1)
        return ei, None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(bidirectional={self.bidirectional})"


class Layered(Topology):
    """Layers of ``width`` consecutive nodes, each layer wired to the next.

    Every node of layer ``l`` sends to every node of layer ``l + 1`` (and back if
    ``bidirectional``). ``width=1`` is a chain.

    Args:
        width (int, optional): nodes per layer. (default: :obj:`1`)
        bidirectional (bool, optional): add the reverse edges. (default: ``True``)
    """

    trusted = True  # the library's own: its output is not re-validated every step

    fixed_edges = True  # the same edges every step

    def __init__(self, width: int = 1, bidirectional: bool = True) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an int >= 1, got {width!r}")
        self.width = width
        self.bidirectional = bidirectional

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Edges between consecutive layers of every agent."""
        idx, local, size = _node_range(state)
        w = self.width
        layer_start = (local // w + 1) * w  # first node of the next layer
        dst_local = layer_start.unsqueeze(1) + torch.arange(w, device=idx.device)  # [N, w]
        valid = dst_local < size.unsqueeze(1)
        dst = (idx - local).unsqueeze(1) + dst_local
        src = idx.unsqueeze(1).expand_as(dst)
        ei = torch.stack([src[valid], dst[valid]])
        return _both_ways(ei, self.bidirectional), None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(width={self.width}, bidirectional={self.bidirectional})"


class Chain(Layered):
    """A chain ``0 - 1 - ... - n-1`` (a :class:`Layered` topology of width 1)."""

    trusted = True  # the library's own: its output is not re-validated every step

    def __init__(self, bidirectional: bool = True) -> None:
        super().__init__(width=1, bidirectional=bidirectional)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(bidirectional={self.bidirectional})"


class Star(Topology):
    """Node ``center`` of each agent talks with every other node (both ways).

    Args:
        center (int, optional): local index of the hub. (default: :obj:`0`)
    """

    trusted = True  # the library's own: its output is not re-validated every step

    fixed_edges = True  # the same edges every step

    def __init__(self, center: int = 0) -> None:
        super().__init__()
        if not isinstance(center, int) or center < 0:
            raise ValueError(f"center must be an int >= 0, got {center!r}")
        self.center = center

    def check(self, num_nodes: int) -> None:
        """The hub must exist."""
        if self.center >= num_nodes:
            raise ValueError(f"Star center={self.center} but agents have {num_nodes} nodes")

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Hub ↔ spokes edges of every agent."""
        idx, local, size = _node_range(state)
        if state.num_nodes and int(size.min()) <= self.center:
            raise ValueError(
                f"Star center={self.center} but an agent has only {int(size.min())} nodes"
            )
        spoke = local != self.center
        hub = idx - local + self.center
        ei = torch.stack([hub[spoke], idx[spoke]])
        return _both_ways(ei, True), None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(center={self.center})"


class EdgeList(Topology):
    """A user-given pattern of one agent (local node indices), applied to every agent.

    Edges that point past an agent's size are dropped for that agent, so the same pattern
    serves agents of different sizes (and grown agents).

    Args:
        edges (list of [int, int] or torch.Tensor): sender → receiver pairs, ``[E, 2]`` or
            ``[2, E]``.
        num_nodes (int, optional): nodes the pattern spans (default: ``max index + 1``).
    """

    trusted = True  # the library's own: its output is not re-validated every step

    fixed_edges = True  # the same edges every step

    def __init__(self, edges: list[list[int]] | Tensor, num_nodes: int | None = None) -> None:
        super().__init__()
        ei = torch.as_tensor(edges)
        if ei.dim() == 2 and ei.size(0) != 2 and ei.size(1) == 2:
            ei = ei.t()
        if ei.numel() == 0:
            ei = ei.reshape(2, 0).long()
        n = num_nodes if num_nodes is not None else (int(ei.max()) + 1 if ei.numel() else 0)
        ei = check_edge_index(ei, n, "edges")
        self.num_pattern_nodes = n
        self.register_buffer("pattern", ei.contiguous(), persistent=False)

    @classmethod
    def from_networkx(cls, graph: nx.DiGraph | nx.Graph) -> EdgeList:
        """Build from a networkx graph whose nodes are ``0..n-1`` (undirected = both ways)."""
        nodes = sorted(graph.nodes)
        if nodes != list(range(len(nodes))):
            raise ValueError(f"graph nodes must be 0..n-1, got {nodes[:10]}")
        edges = list(graph.edges)
        if not graph.is_directed():
            edges = edges + [(v, u) for u, v in edges]
        return cls(edges if edges else torch.empty(2, 0, dtype=torch.long), len(nodes))

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """The pattern offset into every agent."""
        return offset_pattern(state, self.pattern, self.num_pattern_nodes), None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_edges={self.pattern.size(1)}, "
            f"num_nodes={self.num_pattern_nodes})"
        )


class FromNetworkx(EdgeList):
    """A :class:`networkx.DiGraph` (or a networkx generator's output) as the pattern.

    Args:
        graph (networkx.Graph): nodes ``0..n-1``; undirected edges go both ways.
    """

    trusted = True  # the library's own: its output is not re-validated every step

    def __init__(self, graph: nx.Graph) -> None:
        built = EdgeList.from_networkx(graph)
        super().__init__(built.pattern, built.num_pattern_nodes)
