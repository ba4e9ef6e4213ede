"""The three forms of one step's edges, each with the same ``aggregate(s, edge_weight, aggr)``.

When a message depends on its sender only (``Policy.sender_only``), a round's aggregate
is ``A @ s``: the adjacency ``A`` (``A[i, j]`` for edge ``j → i``: 1, the edge weight, or
``1 / in-degree`` for the mean) times the ``[N, M]`` sender messages. Every form computes
it with one call, so a policy's round is written once (PyG's ``message_and_aggregate``
pattern):

- :class:`EdgeAdjacency`: the edge list; gathers one message per edge (``[E, M]``) and
  scatters them into the receivers (small or uneven graphs; the only form that has the
  per-edge messages a record keeps);
- :class:`CSRAdjacency`: a sparse-matrix product that never builds the ``[E, M]``
  intermediate (large graphs; built once per inner step: one sort by receiver, one by
  sender for the backward, reused by all rounds of the step);
- :class:`DenseAdjacency`: one batched ``[B, n, n]`` product (small agents of equal size).

:func:`badger_graph.execution.adjacency` picks the form; measured speed-ups are in
``docs/performance.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.utils import scatter


def _sort_by(key: Tensor) -> Tensor:
    """Permutation that sorts ``key`` (identity when it already is, checked in O(E))."""
    if key.numel() < 2 or bool((key[1:] >= key[:-1]).all()):
        return torch.arange(key.numel(), device=key.device)
    return torch.sort(key, stable=True).indices


def _crow(sorted_rows: Tensor, num_rows: int) -> Tensor:
    return torch._convert_indices_from_coo_to_csr(sorted_rows, num_rows)


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


@dataclass(frozen=True)
class EdgeAdjacency:
    """Edges of one inner step as an edge list: a gather per edge, a scatter per receiver.

    Attributes:
        edge_index (torch.Tensor): ``[2, E]`` (sender, receiver), as the topology drew them.
        num_nodes (int): N.
    """

    edge_index: Tensor
    num_nodes: int

    def messages(self, s: Tensor, edge_weight: Tensor | None, aggr: str) -> Tensor:
        """Per-edge messages ``[E, M]``: the sender's ``s_j``, times ``w_ji`` (``"weighted"``)."""
        # index_select, not s[index]: its backward is index_add (advanced indexing's is an
        # accumulating index_put, 1.8x slower for a whole round on the CPU)
        msg = s.index_select(0, self.edge_index[0])
        if aggr == "weighted":
            if edge_weight is None:
                raise ValueError("aggr='weighted' needs edge weights from the topology")
            msg = msg * edge_weight.unsqueeze(-1)
        return msg

    def reduce(self, messages: Tensor, aggr: str) -> Tensor:
        """Per-edge ``messages`` into their receivers ``[N, M]`` (sum, or mean for ``"mean"``)."""
        reduce = "mean" if aggr == "mean" else "sum"
        return scatter(messages, self.edge_index[1], 0, dim_size=self.num_nodes, reduce=reduce)

    def aggregate(self, s: Tensor, edge_weight: Tensor | None, aggr: str) -> Tensor:
        """``sum_j w_ji s_j`` (``"weighted"``), ``sum_j s_j`` or the mean over senders."""
        return self.reduce(self.messages(s, edge_weight, aggr), aggr)


@dataclass(frozen=True)
class CSRAdjacency:
    """Edges of one inner step in compressed-sparse-row form, both directions.

    Attributes:
        num_nodes (int): N.
        edge_index (torch.Tensor): the topology's ``[2, E]`` (sender, receiver), unchanged.
        crow, col, perm (torch.Tensor): receiver-major CSR (``A[i, j]`` = edge ``j → i``);
            ``perm`` maps CSR position to edge position.
        crow_t, col_t, perm_t (torch.Tensor): sender-major CSR (``A^T``) for the backward.
        inv_degree (torch.Tensor): ``1 / max(in-degree, 1)`` of each edge's receiver, in
            edge order: the mean is the weighted sum with these weights (one pass, no
            division of the ``[N, M]`` result).
    """

    num_nodes: int
    edge_index: Tensor
    crow: Tensor
    col: Tensor
    perm: Tensor
    crow_t: Tensor
    col_t: Tensor
    perm_t: Tensor
    inv_degree: Tensor

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> CSRAdjacency:
        """Sort the ``[2, E]`` edges (sender, receiver) by receiver and by sender."""
        src, dst = edge_index
        perm = _sort_by(dst)
        perm_t = _sort_by(src)
        crow = _crow(dst[perm], num_nodes)
        degree = (crow[1:] - crow[:-1]).clamp(min=1)
        return cls(
            num_nodes=num_nodes,
            edge_index=edge_index,
            crow=crow,
            col=src[perm],
            perm=perm,
            crow_t=_crow(src[perm_t], num_nodes),
            col_t=dst[perm_t],
            perm_t=perm_t,
            inv_degree=degree.reciprocal()[dst],
        )

    @property
    def num_edges(self) -> int:
        """E."""
        return self.col.numel()

    def edge_values(self, edge_weight: Tensor | None, aggr: str) -> Tensor | None:
        """Per-edge values of ``A`` in edge order for ``aggr``.

        The edge weights (``"weighted"``), ``1 / in-degree`` (``"mean"``) or ``None`` for
        ones (``"sum"``).
        """
        if aggr == "weighted":
            if edge_weight is None:
                raise ValueError("aggr='weighted' needs edge weights")
            return edge_weight
        return self.inv_degree if aggr == "mean" else None

    def csr_order(self, values: Tensor | None, dtype: torch.dtype) -> Tensor:
        """Per-edge ``values`` (``None``: ones) in receiver-major CSR order."""
        if values is None:
            return torch.ones(self.num_edges, dtype=dtype, device=self.col.device)
        return values.to(dtype)[self.perm]

    def csr_values(self, edge_weight: Tensor | None, aggr: str, dtype: torch.dtype) -> Tensor:
        """Values of ``A`` in CSR order for ``aggr`` (see :meth:`edge_values`)."""
        return self.csr_order(self.edge_values(edge_weight, aggr), dtype)

    def rows(self, start: int, end: int, values: Tensor) -> Tensor:
        """Rows ``start:end`` of ``A`` (receivers) as a ``[end - start, N]`` CSR tensor."""
        e0, e1 = int(self.crow[start]), int(self.crow[end])
        crow = self.crow[start : end + 1] - e0
        return _csr(crow, self.col[e0:e1], values[e0:e1], (end - start, self.num_nodes))

    def aggregate(self, s: Tensor, edge_weight: Tensor | None, aggr: str) -> Tensor:
        """``sum_j w_ji s_j`` (``"weighted"``), ``sum_j s_j`` or the mean over senders."""
        return _CSRWeightedSum.apply(s, self.edge_values(edge_weight, aggr), self)


@dataclass(frozen=True)
class DenseAdjacency:
    """Edges of B agents of equal size ``n`` as one dense ``[B, n, n]`` block.

    ``adj[b, i, j]`` is the weight of edge ``j → i`` of agent ``b`` (0: no edge; for the
    ``"mean"`` and ``"sum"`` aggregations any non-zero is an edge). Aggregation is one
    batched matrix product: faster than per-edge gathers for small, densely connected agents.
    """

    adj: Tensor
    #: every node hears every other node of its agent (``"others"``) or every node including
    #: itself (``"all"``): the aggregate is then a sum over the agent, no ``n²`` product
    complete: str | None = None
    #: ``adj`` holds edge multiplicities (or summed weights) from drawn edges: they weigh
    #: the sum and the mean as repeated edges do on the edge path
    counts: bool = False

    def aggregate(self, s: Tensor, edge_weight: Tensor | None, aggr: str) -> Tensor:
        """Aggregate sender messages ``s`` ``[B * n, M]`` (``edge_weight`` is in ``adj``)."""
        adj = self.adj
        B, n, _ = adj.shape
        if self.complete is not None:
            s3 = s.view(B, n, -1)
            total = s3.sum(1, keepdim=True)
            out = total - s3 if self.complete == "others" else total.expand_as(s3)
            if aggr == "mean":
                out = out / max(n - 1 if self.complete == "others" else n, 1)
            return out.reshape(B * n, -1)
        if aggr == "weighted":
            a = adj
        else:
            a = adj.to(s.dtype) if self.counts else (adj != 0).to(s.dtype)
            if aggr == "mean":
                a = a / a.sum(-1, keepdim=True).clamp(min=1)
        return torch.bmm(a, s.view(B, n, -1)).reshape(B * n, -1)


#: the forms of one step's edges that a policy round accepts (an edge index ``[2, E]`` is
#: read as an :class:`EdgeAdjacency`)
Adjacency = Tensor | EdgeAdjacency | CSRAdjacency | DenseAdjacency


def as_adjacency(adj: Adjacency, num_nodes: int) -> EdgeAdjacency | CSRAdjacency | DenseAdjacency:
    """``adj`` itself, or an edge index ``[2, E]`` as an :class:`EdgeAdjacency`."""
    return EdgeAdjacency(adj, num_nodes) if isinstance(adj, Tensor) else adj


class _CSRWeightedSum(torch.autograd.Function):
    """``out = A(w) @ s`` with gradients for ``s`` (via ``A^T``) and for the edge weights."""

    @staticmethod
    def forward(s: Tensor, w: Tensor | None, adj: CSRAdjacency) -> Tensor:
        values = adj.csr_order(w, s.dtype)
        return _csr(adj.crow, adj.col, values, (adj.num_nodes, adj.num_nodes)) @ s

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        s, w, adj = inputs
        ctx.adj = adj
        ctx.save_for_backward(s, w if w is not None else s.new_empty(0))
        ctx.has_w = w is not None

    @staticmethod
    def backward(ctx, grad: Tensor):
        s, w = ctx.saved_tensors
        adj: CSRAdjacency = ctx.adj
        grad_s = grad_w = None
        if ctx.needs_input_grad[0]:
            values = grad.new_ones(adj.num_edges) if not ctx.has_w else w.to(grad.dtype)[adj.perm_t]
            grad_s = _csr(adj.crow_t, adj.col_t, values, (adj.num_nodes, adj.num_nodes)) @ grad
        if ctx.has_w and ctx.needs_input_grad[1]:
            src, dst = adj.edge_index
            grad_w = torch.empty(adj.num_edges, dtype=grad.dtype, device=grad.device)
            chunk = 1 << 18  # bound the [chunk, M] gathers
            for start in range(0, adj.num_edges, chunk):
                end = start + chunk
                grad_w[start:end] = (grad[dst[start:end]] * s[src[start:end]]).sum(-1)
            grad_w = grad_w.to(w.dtype)
        return grad_s, grad_w, None
