"""Learned attention topology: who listens to whom is computed from the current states."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import softmax, to_dense_batch

from badger_graph.state import ExpertGraph
from badger_graph.topologies.base import EdgeSet, Topology, all_pairs, equal_sizes


class Attention(Topology):
    r"""Keys and queries from the current states; edges weighted by softmax over senders.

    .. math::
        \alpha_{j \to i} = \mathrm{softmax}_{j \in S(i)}
            \left(\frac{(W_q h_i)^\top (W_k h_j)}{\sqrt{K}}\right)

    where :math:`S(i)` is every other node of ``i``'s agent (dense) or the ``top_k``
    highest-scoring ones (sparse). Rebuilt every step; gradients flow into :math:`W_q, W_k`
    through the weights (use the policy with ``aggr="weighted"``).

    Args:
        hidden_channels (int): width of the states it reads (the policy's ``hidden_channels``).
        key_channels (int, optional): width :math:`K` of keys and queries. (default: :obj:`16`)
        top_k (int, optional): keep the ``top_k`` best senders per receiver; ``None`` keeps
            all. (default: ``None``)
        self_loops (bool, optional): a node may attend to itself. (default: ``False``)
        uniform_start (bool, optional): start from uniform attention (the query projection
            starts at zero, so every sender gets the same weight: the mean over senders,
            CommNet's aggregation) and learn to depart from it; gradients then reach every
            pair from the first batch. ``None``: on for dense softmax (``top_k=None``), off
            for top-k, where equal scores would pick the same senders for every receiver.
            (default: ``None``)
        log_scale (bool, optional): multiply the scores by :math:`\log n` (``n`` the agent's
            size), so that a softmax over more senders is not flatter than the one seen in
            training (as in length-generalizing transformers). (default: ``False``)
    """

    trusted = True  # the library's own: its output is not re-validated every step

    supports_dense = True

    weighted = True

    def __init__(
        self,
        hidden_channels: int,
        key_channels: int = 16,
        top_k: int | None = None,
        self_loops: bool = False,
        uniform_start: bool | None = None,
        log_scale: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError(f"hidden_channels must be an int >= 1, got {hidden_channels!r}")
        if not isinstance(key_channels, int) or key_channels < 1:
            raise ValueError(f"key_channels must be an int >= 1, got {key_channels!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
        self.hidden_channels = hidden_channels
        self.key_channels = key_channels
        self.top_k = top_k
        self.self_loops = self_loops
        self.lin_query = nn.Linear(hidden_channels, key_channels)
        self.lin_key = nn.Linear(hidden_channels, key_channels, bias=False)
        self.uniform_start = top_k is None if uniform_start is None else bool(uniform_start)
        self.log_scale = bool(log_scale)
        if self.uniform_start:
            nn.init.zeros_(self.lin_query.weight)
            nn.init.zeros_(self.lin_query.bias)

    def scores(self, state: ExpertGraph, edge_index: Tensor) -> Tensor:
        """Scaled dot-product score of every edge (query of the receiver, key of the sender)."""
        q = self.lin_query(state.h)
        k = self.lin_key(state.h)
        src, dst = edge_index
        pair = q.index_select(0, dst) * k.index_select(0, src)  # index_add in the backward
        return pair.sum(-1) * self._scale(state.sizes[state.batch[dst]])

    def _scale(self, size: Tensor | int) -> Tensor | float:
        """Score scale for agents of ``size`` nodes: one over the root of K, times log n."""
        base = 1.0 / math.sqrt(self.key_channels)
        if not self.log_scale:
            return base
        if isinstance(size, Tensor):
            return base * torch.log(size.to(torch.get_default_dtype()).clamp(min=1))
        return base * math.log(max(size, 1))

    def forward(self, state: ExpertGraph) -> EdgeSet:
        """Edges and attention weights for this step."""
        if state.h.size(-1) != self.hidden_channels:
            raise ValueError(
                f"Attention has hidden_channels={self.hidden_channels} but states have "
                f"{state.h.size(-1)} columns"
            )
        if self.top_k is None:
            edge_index = all_pairs(state, self.self_loops)
            alpha = self.scores(state, edge_index)
        else:
            edge_index, alpha = self._top_k(state)
        weight = softmax(alpha, edge_index[1], num_nodes=state.num_nodes)
        return edge_index, weight

    def expected_edges(self, num_nodes: int) -> float:
        """Every pair is scored on either path (top-k keeps fewer edges afterwards)."""
        return num_nodes * num_nodes

    def dense(self, state: ExpertGraph) -> Tensor | None:
        """Attention weights as ``[B, n, n]`` (receiver, sender) when agents have equal size."""
        n = equal_sizes(state)
        if n is None or state.h.size(-1) != self.hidden_channels:
            return None
        B = state.num_agents
        q = self.lin_query(state.h).view(B, n, -1)
        k = self.lin_key(state.h).view(B, n, -1)
        s = torch.bmm(q, k.transpose(1, 2)) * self._scale(n)
        mask = torch.ones(n, n, dtype=torch.bool, device=s.device)
        if not self.self_loops:
            mask.fill_diagonal_(False)
        s = s.masked_fill(~mask, float("-inf"))
        if self.top_k is not None and self.top_k < n:
            # the same top-k (ties included) as the sparse path: mask from topk indices
            keep = torch.zeros_like(s, dtype=torch.bool)
            keep.scatter_(-1, s.topk(self.top_k, dim=-1).indices, True)
            s = s.masked_fill(~keep, float("-inf"))
        w = torch.softmax(s, dim=-1)
        return torch.nan_to_num(w, nan=0.0)  # a 1-node agent has no sender

    def _top_k(self, state: ExpertGraph) -> tuple[Tensor, Tensor]:
        # dense [N, n_max] scores of every receiver against the senders of its agent
        N = state.num_nodes
        device = state.h.device
        if N == 0:
            return torch.empty(2, 0, dtype=torch.long, device=device), state.h.new_empty(0)
        n_equal = equal_sizes(state)  # known without a read-back from the device
        n_max = n_equal or int(state.sizes.max())
        q = self.lin_query(state.h)
        k = self.lin_key(state.h)
        base = state.ptr[state.batch]  # first node of each receiver's agent
        size = state.sizes[state.batch]
        cols = torch.arange(n_max, device=device)
        send = base.unsqueeze(1) + cols  # [N, n_max] (global sender index, may overflow)
        valid = cols.unsqueeze(0) < size.unsqueeze(1)
        if not self.self_loops:
            valid &= cols.unsqueeze(0) != state.local_index.unsqueeze(1)
        send = torch.where(valid, send, torch.zeros_like(send))
        # scores of every receiver against its agent's senders by one batched product per
        # agent ([B, n, n]); never an [N, n, K] intermediate
        qd, _ = to_dense_batch(q, state.batch, max_num_nodes=n_max, batch_size=state.num_agents)
        kd, _ = to_dense_batch(k, state.batch, max_num_nodes=n_max, batch_size=state.num_agents)
        s = torch.bmm(qd, kd.transpose(1, 2))[state.batch, state.local_index]
        scale = self._scale(size)
        s = s * (scale.unsqueeze(1) if isinstance(scale, Tensor) else scale)
        s = s.masked_fill(~valid, float("-inf"))
        kk = min(self.top_k, n_max)
        top, idx = s.topk(kk, dim=1)
        src = send.gather(1, idx)
        dst = torch.arange(N, device=device).unsqueeze(1).expand(-1, kk)
        if n_equal is not None and kk <= n_equal - (0 if self.self_loops else 1):
            # every receiver has kk valid senders: no mask, no read-back of its size
            return torch.stack([src.reshape(-1), dst.reshape(-1)]), top.reshape(-1)
        keep = torch.isfinite(top)
        return torch.stack([src[keep], dst[keep]]), top[keep]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(hidden={self.hidden_channels}, "
            f"key={self.key_channels}, top_k={self.top_k}, log_scale={self.log_scale})"
        )


class TarMAC(Attention):
    r"""TarMAC's targeted communication (Das et al., 2019) as a topology.

    Every receiver attends over all experts of its agent, itself included, with a softmax of
    its query against the senders' learned signatures (keys), both computed from the
    current states; the policy's messages are the values (``aggr="weighted"``). This is
    :class:`Attention` with ``top_k=None`` and ``self_loops=True``, started from the usual
    random initialization as in the paper (``uniform_start=False``).

    Args:
        hidden_channels (int): width of the states it reads (the policy's ``hidden_channels``).
        key_channels (int, optional): width of signatures and queries. (default: :obj:`16`)
        uniform_start (bool, optional): start from uniform attention instead.
            (default: ``False``)
    """

    trusted = True  # the library's own: its output is not re-validated every step

    aggregation = "weighted"

    def __init__(
        self, hidden_channels: int, key_channels: int = 16, uniform_start: bool = False
    ) -> None:
        super().__init__(
            hidden_channels,
            key_channels,
            top_k=None,
            self_loops=True,
            uniform_start=uniform_start,
        )
