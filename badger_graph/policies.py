"""Several shared policies in one agent, selected by node role; handcrafted policies.

:class:`RolePolicies` holds P policies (P ≪ N). Every node's role picks the one that
computes its outgoing message and its state update; all nodes still exchange messages in
the same graph and the same round. A role is read from the node's own input features:

- ``"feedback"``: an expert that receives the task's scalar feedback;
- ``"expert"``: any other expert;
- ``"port"``: an input or output port node.

Any policy may be a learned :class:`~badger_graph.ExpertPolicy` or a handcrafted,
parameter-free module with the same two methods, ``send(h) -> [n, M]`` and
``update_from_input(x, agg, h) -> [n, H]`` (e.g. :class:`RelayFeedback`).

YAML::

    policy:
      class_path: badger_graph.policies.RolePolicies
      init_args:
        policies:
          - class_path: badger_graph.ExpertPolicy
          - class_path: badger_graph.policies.RelayFeedback
        roles: {feedback: 1}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from badger_graph.adjacency import Adjacency, EdgeAdjacency, as_adjacency
from badger_graph.policy import ExpertPolicy, MessagePolicy
from badger_graph.state import FEATURES

ROLES = ("expert", "feedback", "port")
_COL = {name: i for i, name in enumerate(FEATURES)}


class RelayFeedback(nn.Module):
    """Handcrafted expert: keeps the feedback it just received and sends it on channel 0.

    State: ``h = [feedback, 0, ..., 0]``; message: ``[h_0, 0, ..., 0]``. No parameters.

    Args:
        hidden_channels (int, optional): H of the agent. (default: :obj:`64`)
        message_channels (int, optional): M of the agent. (default: :obj:`64`)
    """

    def __init__(self, hidden_channels: int = 64, message_channels: int = 64) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.message_channels = message_channels

    def send(self, h: Tensor) -> Tensor:
        """``[h_0, 0, ..., 0]``."""
        return torch.cat([h[:, :1], h.new_zeros(h.size(0), self.message_channels - 1)], 1)

    def update_from_input(self, x: Tensor, agg: Tensor, h: Tensor) -> Tensor:
        """Store the feedback of this step in channel 0."""
        fb = x[:, _COL["feedback"]].unsqueeze(1)
        return torch.cat([fb, h.new_zeros(h.size(0), self.hidden_channels - 1)], 1)


class RolePolicies(nn.Module):
    """P shared policies; each node's role selects the one that updates it.

    Same interface as :class:`~badger_graph.ExpertPolicy` for :class:`~badger_graph.Agent`
    (sparse, CSR and dense rounds). Messages depend on the sender only.

    Args:
        policies (list of modules): the P policies; learned ones must share channel sizes
            and aggregation.
        roles (dict, optional): role → index into ``policies`` for ``"expert"``,
            ``"feedback"`` and ``"port"``; roles not given use policy 0.
    """

    def __init__(self, policies: Sequence[nn.Module], roles: Mapping[str, int] | None = None):
        super().__init__()
        policies = list(policies)
        if not policies:
            raise ValueError("RolePolicies needs at least one policy")
        roles = dict(roles or {})
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}; roles are {ROLES}")
        for role, idx in roles.items():
            if not isinstance(idx, int) or not 0 <= idx < len(policies):
                raise ValueError(
                    f"role {role!r} has no policy: index {idx!r} but only {len(policies)} "
                    f"policies (0..{len(policies) - 1})"
                )
        for p in policies:
            if not isinstance(p, MessagePolicy):
                raise ValueError(
                    f"{type(p).__name__} is not a policy: it needs send(h) and "
                    f"update_from_input(x, agg, h) (badger_graph.policy.MessagePolicy)"
                )
        learned = [p for p in policies if isinstance(p, ExpertPolicy)]
        ref = learned[0] if learned else policies[0]
        for p in policies:
            for attr in ("hidden_channels", "message_channels"):
                if getattr(p, attr) != getattr(ref, attr):
                    raise ValueError(
                        f"all policies must have the same {attr}: {type(p).__name__} has "
                        f"{getattr(p, attr)}, {type(ref).__name__} has {getattr(ref, attr)}"
                    )
        aggs = {p.aggregation for p in learned}
        if len(aggs) > 1:
            raise ValueError(f"learned policies must share one aggregation, got {sorted(aggs)}")
        if any(not p.sender_only for p in learned):
            raise ValueError("RolePolicies needs receiver_term=False in every learned policy")
        self.policies = nn.ModuleList(policies)
        self.roles = {r: int(roles.get(r, 0)) for r in ROLES}
        self.hidden_channels = ref.hidden_channels
        self.message_channels = ref.message_channels
        self.identity_channels = learned[0].identity_channels if learned else 0
        self.aggregation = aggs.pop() if aggs else "mean"

    def encode(self, x: Tensor) -> Tensor:
        """Raw node inputs pass through: each policy encodes them itself."""
        return x

    def assignment(self, x: Tensor) -> Tensor:
        """Policy index of every node ``[N]`` from its role features."""
        port = (x[:, _COL["is_input"]] > 0) | (x[:, _COL["is_output"]] > 0)
        feedback = ~port & (x[:, _COL["receives_feedback"]] > 0)
        idx = torch.full((x.size(0),), self.roles["expert"], dtype=torch.long, device=x.device)
        idx[feedback] = self.roles["feedback"]
        idx[port] = self.roles["port"]
        return idx

    def _per_policy(self, which: Tensor, width: int, like: Tensor, fn) -> Tensor:
        out = like.new_zeros(which.size(0), width)
        if torch.compiler.is_compiling():
            # inside a captured step (Execution.capture) node sets of data-dependent size
            # cannot be traced: every policy runs on every node, each node keeps its own
            # role's result (the same values, more arithmetic)
            every = torch.arange(which.size(0), device=which.device)
            for i, policy in enumerate(self.policies):
                out = torch.where((which == i).unsqueeze(1), fn(policy, every), out)
            return out
        for i, policy in enumerate(self.policies):
            nodes = (which == i).nonzero().squeeze(1)
            if nodes.numel():
                out = out.index_copy(0, nodes, fn(policy, nodes))
        return out

    def send_by_role(self, h: Tensor, x: Tensor) -> Tensor:
        """Each node's message from its own role's policy ``[N, M]``."""
        return self._send(h, self.assignment(x))

    def _send(self, h: Tensor, which: Tensor) -> Tensor:
        return self._per_policy(which, self.message_channels, h, lambda p, n: p.send(h[n]))

    def _update(self, x: Tensor, agg: Tensor, h: Tensor, which: Tensor) -> Tensor:
        return self._per_policy(
            which,
            self.hidden_channels,
            h,
            lambda p, n: p.update_from_input(x[n], agg[n], h[n]),
        )

    sender_only = True  # messages depend on the sender only: any adjacency form works

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        adj: Adjacency,
        edge_weight: Tensor | None = None,
        return_messages: bool = False,
    ):
        """One round (see :meth:`ExpertPolicy.forward` for the adjacency forms)."""
        which = self.assignment(x)
        sent = self._send(h, which)
        adj = as_adjacency(adj, h.size(0))
        if return_messages:
            if not isinstance(adj, EdgeAdjacency):
                raise ValueError("per-edge messages are only recorded on an edge list [2, E]")
            msg = adj.messages(sent, edge_weight, self.aggregation)
            agg = adj.reduce(msg, self.aggregation)
        else:
            agg = adj.aggregate(sent, edge_weight, self.aggregation)
        h_new = self._update(x, agg, h, which)
        return (h_new, msg) if return_messages else h_new

    def extra_repr(self) -> str:
        """Role → policy index, shown in ``repr``."""
        return f"roles={self.roles}"
