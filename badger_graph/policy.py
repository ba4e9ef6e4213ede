r"""The expert policy: ONE message-passing layer shared by every expert of every agent."""

from __future__ import annotations

import math
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from badger_graph.adjacency import (
    Adjacency,
    CSRAdjacency,
    DenseAdjacency,
    EdgeAdjacency,
    as_adjacency,
)
from badger_graph.execution import blocked_rows
from badger_graph.state import NUM_FEATURES

Aggregation = Literal["mean", "sum", "weighted"]
AGGREGATIONS = ("mean", "sum", "weighted")


def _is_vmapped(t: Tensor) -> bool:
    return torch._C._functorch.is_batchedtensor(t)


def _gru_cell(x: Tensor, h: Tensor, rnn: nn.GRUCell) -> Tensor:
    """``nn.GRUCell`` written out (PyTorch's gate order r, z, n)."""
    gi = nn.functional.linear(x, rnn.weight_ih, rnn.bias_ih)
    gh = nn.functional.linear(h, rnn.weight_hh, rnn.bias_hh)
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)


def _linear_into(x: Tensor, weight_t: Tensor, bias: Tensor | None, out: Tensor) -> Tensor:
    """``x @ weight_t + bias`` written into ``out``."""
    if bias is None:
        return torch.mm(x, weight_t, out=out)
    return torch.addmm(bias, x, weight_t, out=out)


@runtime_checkable
class Policy(Protocol):
    """What an :class:`~badger_graph.Agent` reads of its expert policy.

    :class:`ExpertPolicy` and :class:`~badger_graph.policies.RolePolicies` implement it; a
    user's policy that does too runs every execution path.

    Attributes:
        hidden_channels (int): width of an expert's state.
        identity_channels (int): node identity columns it expects after the features.
        aggregation (str): how a node combines its messages: ``"sum"``, ``"mean"`` or
            ``"weighted"`` (by the topology's edge weights); ``AGGREGATIONS`` lists them.
        sender_only (bool): whether a message depends on its sender only; then rounds may
            aggregate with a matrix product (CSR or dense adjacency) instead of per edge.
    """

    hidden_channels: int
    identity_channels: int
    aggregation: str
    sender_only: bool

    def encode(self, x: Tensor) -> Tensor:
        """Node inputs ``[N, F]`` to what every round of the step reads."""

    def __call__(
        self,
        h: Tensor,
        u: Tensor,
        adj,
        edge_weight: Tensor | None = None,
        return_messages: bool = False,
    ):
        """One round: new states ``[N, H]`` (and the messages with ``return_messages``)."""


@runtime_checkable
class MessagePolicy(Protocol):
    """A sender and an update: what :class:`~badger_graph.policies.RolePolicies` combines.

    :class:`ExpertPolicy` and the handcrafted policies of :mod:`badger_graph.policies`
    implement it: ``send(h)`` gives each node's outgoing message ``[N, M]`` from its state,
    ``update_from_input(x, agg, h)`` the new state from the raw node inputs ``x``, the
    aggregated messages ``agg`` and the state. Rounds name non-finite messages with
    ``send`` when a policy has it.
    """

    hidden_channels: int
    message_channels: int

    def send(self, h: Tensor) -> Tensor:
        """Messages ``[N, M]`` of every node, from its state ``[N, H]``."""

    def update_from_input(self, x: Tensor, agg: Tensor, h: Tensor) -> Tensor:
        """New states ``[N, H]`` from node inputs, aggregated messages and states."""


def check_compatible(policy: Policy, topology, ports=None) -> None:
    """Raise if ``topology`` (and addressed ``ports``) cannot run with ``policy``.

    A topology with edge weights needs ``aggr="weighted"``; one defined for an aggregation
    needs that one; hidden widths that the topology or ports declare must be the policy's.
    """
    if topology.weighted and policy.aggregation != "weighted":
        raise ValueError(
            f"{topology!r} produces attention weights; use the policy with "
            f"aggr='weighted' (got aggr={policy.aggregation!r}) or the weights are ignored"
        )
    if topology.aggregation is not None and policy.aggregation != topology.aggregation:
        raise ValueError(
            f"{topology!r} is defined with the policy's aggr={topology.aggregation!r}, "
            f"got aggr={policy.aggregation!r}"
        )
    for name, part in (("topology", topology), ("ports", ports)):
        hidden = None if part is None else part.hidden_channels
        if hidden is not None and hidden != policy.hidden_channels:
            raise ValueError(
                f"{name} hidden_channels={hidden} must equal the policy's "
                f"hidden_channels={policy.hidden_channels}"
            )


class ExpertPolicy(MessagePassing):
    r"""Shared expert policy of `BADGER <https://arxiv.org/abs/1912.01513>`_.

    Every node (expert or port) runs the same weights; nodes differ only through their
    internal state :math:`h_i`, their identity and what is written into them. One call is
    one communication round:

    .. math::
        m_{j \to i} &= \tanh\left(W_s h_j + W_r h_i + b\right) \\
        a_i &= \bigoplus_{j \in \mathcal{N}(i)} w_{ji}\, m_{j \to i} \\
        h_i' &= \mathrm{GRU}\left([\,\mathrm{relu}(W_x x_i),\ a_i\,],\ h_i\right)

    where :math:`\bigoplus` is the mean, the sum or the edge-weighted sum (``"weighted"``,
    e.g. attention weights that sum to one per receiver). The linear maps are applied to the
    :math:`N` nodes before propagation and only gathered per edge (``A h_i + B h_j``), so a
    round costs :math:`O(N H^2 + E M)`. With ``receiver_term=False`` the message depends on
    the sender only (:math:`\tanh(W_s h_j)`, the paper's Fig. 6 setup).

    The parameter count depends on the channel sizes only, never on the number of experts,
    edges, agents or ports.

    Args:
        hidden_channels (int, optional): width :math:`H` of the internal state (GRU memory).
            (default: :obj:`64`)
        message_channels (int, optional): width :math:`M` of a message. (default: :obj:`64`)
        input_channels (int, optional): width of the projected node input. (default: :obj:`32`)
        identity_channels (int, optional): width of the node identity fed into the input.
            (default: :obj:`8`)
        aggr (str, optional): ``"mean"``, ``"sum"`` or ``"weighted"``. (default: ``"mean"``)
        receiver_term (bool, optional): add :math:`W_r h_i` to the message.
            (default: :obj:`False`)
        update_bias (float, optional): added to the bias of the GRU's update gate :math:`z`
            at initialisation (and at every :meth:`reset_parameters`). With :math:`k` rounds
            a step the state passes through :math:`kT` updates a lifetime, and at the default
            :math:`z \approx 0.5` it keeps :math:`0.5^{kT}` of its start; a positive bias
            makes experts remember longer from the first batch (as an LSTM's forget-gate
            bias; "chrono" initialisation, Tallec & Ollivier 2018). (default: :obj:`0.0`)

    Shapes:
        - **input:** states :math:`(N, H)`, node inputs :math:`(N, F)`, edge index
          :math:`(2, E)`, edge weights :math:`(E)` *(optional)*
        - **output:** new states :math:`(N, H)`
    """

    update_chunk = 4096  # rows per block of the inference-time GRU update (cache-sized)

    def __init__(
        self,
        hidden_channels: int = 64,
        message_channels: int = 64,
        input_channels: int = 32,
        identity_channels: int = 8,
        aggr: Aggregation = "mean",
        receiver_term: bool = False,
        update_bias: float = 0.0,
    ) -> None:
        if isinstance(update_bias, bool) or not isinstance(update_bias, (int, float)):
            raise ValueError(f"update_bias must be a number, got {update_bias!r}")
        if not math.isfinite(update_bias):
            raise ValueError(f"update_bias must be finite, got {update_bias!r}")
        for name, value, lo in (
            ("hidden_channels", hidden_channels, 1),
            ("message_channels", message_channels, 1),
            ("input_channels", input_channels, 1),
            ("identity_channels", identity_channels, 0),
        ):
            if not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
        if aggr not in AGGREGATIONS:
            raise ValueError(f"aggr must be one of {AGGREGATIONS}, got {aggr!r}")
        super().__init__(aggr="mean" if aggr == "mean" else "sum")
        self.hidden_channels = hidden_channels
        self.message_channels = message_channels
        self.input_channels = input_channels
        self.identity_channels = identity_channels
        self.aggregation = aggr
        self.receiver_term = receiver_term
        self.update_bias = float(update_bias)
        self.node_features = NUM_FEATURES + identity_channels

        self.lin_in = nn.Linear(self.node_features, input_channels)
        self.lin_send = nn.Linear(hidden_channels, message_channels)
        if receiver_term:
            self.lin_recv = nn.Linear(hidden_channels, message_channels, bias=False)
        else:
            self.register_parameter("lin_recv", None)
        self.rnn = nn.GRUCell(input_channels + message_channels, hidden_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize all weights."""
        super().reset_parameters()
        self.lin_in.reset_parameters()
        self.lin_send.reset_parameters()
        if self.lin_recv is not None:
            self.lin_recv.reset_parameters()
        self.rnn.reset_parameters()
        if self.update_bias:
            H = self.hidden_channels
            with torch.no_grad():  # gate order r, z, n: the z chunk of the input bias
                self.rnn.bias_ih[H : 2 * H].add_(self.update_bias)

    def encode(self, x: Tensor) -> Tensor:
        """Project node inputs ``[N, F]`` once per inner step (shared by its rounds)."""
        if x.size(-1) != self.node_features:
            raise ValueError(
                f"node inputs must have {self.node_features} columns "
                f"({NUM_FEATURES} features + identity_channels={self.identity_channels}), "
                f"got {x.size(-1)}"
            )
        return torch.relu(self.lin_in(x))

    @property
    def sender_only(self) -> bool:
        """Whether rounds can aggregate with a matrix product (CSR or dense adjacency).

        True when a message depends on its sender only (``receiver_term=False``): the
        aggregate is then ``A @ tanh(W_s h)`` and no ``[E, M]`` per-edge messages exist.
        """
        return self.lin_recv is None

    def forward(
        self,
        h: Tensor,
        u: Tensor,
        adj: Adjacency,
        edge_weight: Tensor | None = None,
        return_messages: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """One communication round.

        The adjacency comes in one of three forms with the same meaning (results equal to
        float tolerance; :mod:`badger_graph.adjacency`), chosen by
        :func:`badger_graph.execution.adjacency`. A round is computed one of three ways:

        - per edge (PyG's ``propagate`` over the edge list): when a message depends on its
          receiver (``receiver_term=True``) or the per-edge messages are returned;
        - ``adj.aggregate`` of the ``[N, M]`` sender messages, one call for every form:
          the edge list's gather and scatter, the CSR product, the dense block;
        - a CSR adjacency on a CPU without autograd and for more than :attr:`update_chunk`
          nodes: aggregation and GRU in cache-sized row blocks.

        Args:
            h (torch.Tensor): internal states ``[N, H]``.
            u (torch.Tensor): encoded node inputs ``[N, input_channels]`` from :meth:`encode`.
            adj (Tensor, EdgeAdjacency, CSRAdjacency or DenseAdjacency): this step's edges
                (an edge index ``[2, E]``, sender → receiver, is an edge list).
            edge_weight (torch.Tensor, optional): ``[E]`` per-edge weights of an edge list or
                CSR adjacency; required for ``aggr="weighted"`` (a dense adjacency carries its
                weights itself).
            return_messages (bool, optional): also return the per-edge messages ``[E, M]``
                (edge list only).
        """
        adj = as_adjacency(adj, h.size(0))
        if isinstance(adj, EdgeAdjacency) and (return_messages or not self.sender_only):
            return self._edge_round(h, u, adj.edge_index, edge_weight, return_messages)
        if return_messages:
            raise ValueError("per-edge messages are only recorded on an edge list [2, E]")
        if not self.sender_only:
            raise ValueError(
                f"a {type(adj).__name__} needs receiver_term=False (messages that depend on "
                f"the sender only); pass the edge index instead"
            )
        if (
            self.aggregation == "weighted"
            and edge_weight is None
            and not isinstance(adj, DenseAdjacency)
        ):
            raise ValueError("aggr='weighted' needs edge weights from the topology")
        sent = self.send(h)
        if isinstance(adj, CSRAdjacency) and self._blocked(h):
            # inference on a large graph: aggregate and update one block of receivers at a
            # time (no [N, M] aggregate; docs/performance.md)
            values = adj.csr_values(edge_weight, self.aggregation, sent.dtype)
            return self._blocked_update(
                u, h, lambda start, end, out: torch.mm(adj.rows(start, end, values), sent, out=out)
            )
        return self.gru_update(u, adj.aggregate(sent, edge_weight, self.aggregation), h)

    def _edge_round(
        self,
        h: Tensor,
        u: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None,
        return_messages: bool,
    ) -> Tensor | tuple[Tensor, Tensor]:
        if self.aggregation == "weighted" and edge_weight is None:
            raise ValueError("aggr='weighted' needs edge weights from the topology")
        if self.aggregation != "weighted":
            edge_weight = None
        send = self.lin_send(h)
        recv = self.lin_recv(h) if self.lin_recv is not None else None
        if recv is None:
            # message depends on the sender only: apply tanh on N nodes, not on E edges
            send = torch.tanh(send)
        if return_messages:
            # the same :meth:`message`, with the per-edge messages kept for the record
            src, dst = edge_index
            receiver = None if recv is None else recv.index_select(0, dst)
            msg = self.message(send.index_select(0, src), receiver, edge_weight)
            agg = self.aggr_module(msg, dst, dim_size=h.size(0))
        else:
            agg = self.propagate(edge_index, s=send, r=recv, w=edge_weight)
        h_new = self.gru_update(u, agg, h)
        if return_messages:
            return h_new, msg
        return h_new

    def send(self, h: Tensor) -> Tensor:
        """Sender messages ``tanh(W_s h)`` ``[N, M]`` (``receiver_term=False``)."""
        return self.lin_send(h).tanh_()  # in place: no second [N, M] buffer

    def update_from_input(self, x: Tensor, agg: Tensor, h: Tensor) -> Tensor:
        """``GRU([relu(W_x x), a], h)`` from raw node inputs (used by :class:`RolePolicies`)."""
        return self.gru_update(self.encode(x), agg, h)

    def _blocked(self, h: Tensor) -> bool:
        """Row blocks for this round (:func:`~badger_graph.execution.blocked_rows`), not in vmap."""
        return not _is_vmapped(self.rnn.weight_ih) and blocked_rows(h, self.update_chunk)

    def _blocked_update(self, u: Tensor, h: Tensor, fill_aggregate) -> Tensor:
        """The GRU update in cache-sized blocks of rows with buffers reused across blocks.

        ``fill_aggregate(start, end, out)`` writes the aggregated messages of receivers
        ``start:end`` into ``out``. Same arithmetic as ``nn.GRUCell`` (gate order r, z, n).
        """
        n, c = h.size(0), self.update_chunk
        H, n_in = h.size(1), u.size(1)
        rnn = self.rnn
        x = h.new_empty(c, rnn.input_size)
        gi, gh = h.new_empty(c, 3 * H), h.new_empty(c, 3 * H)
        w_ih, w_hh = rnn.weight_ih.t(), rnn.weight_hh.t()
        out = torch.empty_like(h)
        for start in range(0, n, c):
            end = min(start + c, n)
            k = end - start
            xb, hb = x[:k], h[start:end]
            xb[:, :n_in].copy_(u[start:end])
            fill_aggregate(start, end, xb[:, n_in:])
            i_g, h_g = (
                _linear_into(xb, w_ih, rnn.bias_ih, gi[:k]),
                _linear_into(hb, w_hh, rnn.bias_hh, gh[:k]),
            )
            r = i_g[:, :H].add_(h_g[:, :H]).sigmoid_()
            z = i_g[:, H : 2 * H].add_(h_g[:, H : 2 * H]).sigmoid_()
            cand = i_g[:, 2 * H :].addcmul_(r, h_g[:, 2 * H :]).tanh_()
            ob = out[start:end]
            torch.sub(hb, cand, out=ob)
            ob.mul_(z).add_(cand)  # n + z * (h - n)
        return out

    def gru_update(self, u: Tensor, agg: Tensor, h: Tensor) -> Tensor:
        """GRU update ``h' = GRU([u, a], h)``.

        On a CPU without autograd (inference) and for more than :attr:`update_chunk` nodes,
        the update runs in blocks of rows that stay in the CPU cache (faster at large
        graphs, ``docs/performance.md``; same results). With autograd or on a GPU one call
        (:func:`~badger_graph.execution.blocked_rows`).
        """
        if _is_vmapped(self.rnn.weight_ih):
            # under torch.func.vmap (ES populations): the same GRU from batched matmuls,
            # as aten::gru_cell has no batching rule and would loop over the members
            return _gru_cell(torch.cat([u, agg], dim=-1), h, self.rnn)
        if not self._blocked(h):
            return self.rnn(torch.cat([u, agg], dim=-1), h)
        return self._blocked_update(u, h, lambda start, end, out: out.copy_(agg[start:end]))

    def message(self, s_j: Tensor, r_i: Tensor | None = None, w: Tensor | None = None) -> Tensor:
        """Per-edge message from gathered per-node projections."""
        m = torch.tanh(s_j + r_i) if r_i is not None else s_j
        return m if w is None else m * w.unsqueeze(-1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(hidden={self.hidden_channels}, "
            f"message={self.message_channels}, input={self.input_channels}, "
            f"identity={self.identity_channels}, aggr={self.aggregation!r}, "
            f"receiver_term={self.receiver_term}"
            + (f", update_bias={self.update_bias:g})" if self.update_bias else ")")
        )
