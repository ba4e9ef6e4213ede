r"""The state of B agents as one batched graph of experts and ports.

An :class:`ExpertGraph` is the disjoint union of B agents, laid out like a PyG
:class:`~torch_geometric.data.Batch`: node rows are grouped by agent, ``batch`` maps each
node to its agent and ``ptr`` holds the first node of each agent. It is an immutable value:
every inner step returns a new one (``dataclasses.replace``), so nothing derived from
edges can leak from one step to the next.

It is a plain dataclass rather than a ``Batch`` because the inner loop touches its fields
hundreds of times per training batch and ``Batch`` attribute access goes through a storage
dictionary; :meth:`ExpertGraph.to_pyg` and :meth:`ExpertGraph.from_pyg` convert both ways.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from enum import IntEnum

import torch
from torch import Tensor


class Role(IntEnum):
    """What a node is in an agent."""

    EXPERT = 0
    INPUT = 1
    OUTPUT = 2


#: Layout of the per-node input features written by :meth:`badger_graph.Agent.write`
#: (before the identity columns). The width is fixed, so no parameter depends on the
#: number of experts, ports or output dimensions.
FEATURES = (
    "feedback",  # scalar feedback (e.g. the error of the last guess), 0 where not received
    "receives_feedback",  # 1 for nodes that receive the scalar feedback
    "signal",  # the node's own value: signed error of the output it owns / input port value
    "owns_output",  # 1 if the node's state is read out into an output dimension
    "is_expert",
    "is_input",
    "is_output",
    "time",  # t / T
)
NUM_FEATURES = len(FEATURES)


def index_identity(index: Tensor, channels: int) -> Tensor:
    r"""Deterministic identity vectors of a node's index within its agent.

    A sinusoidal code (as a transformer's position code) so any index, also ones never seen
    in training, has an identity of fixed width ``channels``:

    .. math::
        \mathrm{id}(i)_{2k} = \sin\left(\tfrac{\pi}{2}\, i\,\omega_k\right),\quad
        \mathrm{id}(i)_{2k+1} = \cos\left(\tfrac{\pi}{2}\, i\,\omega_k\right),\quad
        \omega_k = 100^{-k/\lceil \mathrm{channels}/2 \rceil}

    (the last column is dropped for an odd ``channels``).

    Args:
        index (torch.Tensor): local node indices, shape ``[N]``.
        channels (int): width of the identity.

    Returns:
        torch.Tensor: ``[N, channels]`` identities.
    """
    if channels == 0:
        return index.new_zeros((index.numel(), 0), dtype=torch.float)
    half = (channels + 1) // 2
    freq = torch.exp(
        -math.log(100.0) * torch.arange(half, device=index.device, dtype=torch.float) / half
    )
    angle = index.float()[:, None] * freq[None, :] * (math.pi / 2)
    code = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)
    return code[:, :channels]


@dataclasses.dataclass(frozen=True)
class ExpertGraph:
    r"""Batched state of B agents (experts and ports are nodes).

    Attributes:
        h (torch.Tensor): internal states, ``[N, H]``.
        batch (torch.Tensor): agent of each node, ``[N]`` (long, sorted).
        ptr (torch.Tensor): first node of each agent, ``[B + 1]``.
        role (torch.Tensor): :class:`Role` of each node, ``[N]``.
        local_index (torch.Tensor): index of each node within its agent, ``[N]``.
        identity (torch.Tensor): per-node identity, ``[N, I]``.
        output_index (torch.Tensor): which output dimension a node's state is read into,
            ``-1`` for none, ``[N]``.
        num_outputs (int): number of output dimensions ``d`` of every agent.
        step (int): inner-loop step this state belongs to.
        address (torch.Tensor, optional): per-node address (ports), ``[N, A]``; zero rows
            for experts.
        value (torch.Tensor, optional): current value of each output port, ``[N]``.
        agent_size (int, optional): the common number of nodes of every agent, ``0`` when
            agents differ in size, ``None`` when not known yet. Set where the structure is
            made (creation, growth, removal), so that an inner step never reads the sizes
            back from the device (see :func:`common_size`).
    """

    h: Tensor
    batch: Tensor
    ptr: Tensor
    role: Tensor
    local_index: Tensor
    identity: Tensor
    output_index: Tensor
    num_outputs: int
    step: int = 0
    address: Tensor | None = None
    value: Tensor | None = None
    agent_size: int | None = None

    # -- construction --------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        num_experts: int | Sequence[int],
        num_outputs: int | Sequence[int],
        hidden_channels: int,
        identity_channels: int,
        num_agents: int | None = None,
        output_ports: bool = False,
        identity: str = "index",
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        addresses: Tensor | None = None,
        num_inputs: int | Sequence[int] = 0,
    ) -> ExpertGraph:
        """Build the initial state of a batch of agents.

        Args:
            num_experts (int or list of int): experts per agent; a list gives each agent its
                own count.
            num_outputs (int or list of int): output dimensions ``d``; a list gives each agent
                its own ``d`` (the state's ``num_outputs`` is then the largest).
            hidden_channels (int): width ``H`` of the internal state.
            identity_channels (int): width of the per-node identity.
            num_agents (int, optional): number of agents B when ``num_experts`` is an int.
            output_ports (bool, optional): if ``True`` every agent gets ``d`` output port
                nodes that are read out; otherwise expert ``i`` owns output ``i``.
                (default: ``False``)
            identity (str, optional): ``"index"`` (deterministic code of the local index)
                or ``"random"`` (Gaussian, drawn from ``generator``). (default: ``"index"``)
            generator (torch.Generator, optional): source of randomness.
            device (torch.device, optional): where the tensors live.
            addresses (torch.Tensor, optional): port addresses ``[B, d, A]`` (needs
                ``output_ports``); the state then carries ``address`` and zero port values.
            num_inputs (int or list of int, optional): input port nodes per agent (``m``,
                the width of the task's observation; a list gives each agent its own ``m``).
                They come after an agent's experts and output ports, have the role
                :attr:`Role.INPUT`, show the observation in their ``signal`` input, and are
                known by a random code in their identity columns (their address), never by
                their index, so nothing depends on ``m`` or on the order of the inputs.
                (default: :obj:`0`)
        """
        if isinstance(num_experts, int):
            if num_agents is None:
                raise ValueError("num_agents is required when num_experts is an int")
            if num_agents < 0:
                raise ValueError(f"num_agents must be >= 0, got {num_agents}")
            counts = [num_experts] * num_agents
        else:
            counts = [int(n) for n in num_experts]
        for n in counts:
            if n < 1:
                raise ValueError(f"num_experts must be >= 1 for every agent, got {n}")
        if isinstance(num_outputs, int):
            dims = [num_outputs] * len(counts)
        else:
            dims = [int(d) for d in num_outputs]
            if len(dims) != len(counts):
                raise ValueError(
                    f"num_outputs has {len(dims)} entries but there are {len(counts)} agents"
                )
        checked = dims if dims else [num_outputs if isinstance(num_outputs, int) else 1]
        for d in checked:
            if d < 1:
                raise ValueError(f"num_outputs (d) must be >= 1, got {d}")
        d_max = max(checked)
        if hidden_channels < 1:
            raise ValueError(f"hidden_channels must be >= 1, got {hidden_channels}")
        if identity not in ("index", "random"):
            raise ValueError(f"identity must be 'index' or 'random', got {identity!r}")
        short = [(n, d) for n, d in zip(counts, dims, strict=True) if n < d]
        if not output_ports and short:
            raise ValueError(
                f"without output ports expert i owns output i, so every agent needs at least "
                f"d experts; got an agent with {short[0][0]} experts and d={short[0][1]} "
                f"(use output_ports)"
            )
        if isinstance(num_inputs, int):
            inputs = [num_inputs] * len(counts)
        else:
            inputs = [int(m) for m in num_inputs]
            if len(inputs) != len(counts):
                raise ValueError(
                    f"num_inputs has {len(inputs)} entries but there are {len(counts)} agents"
                )
        if any(m < 0 for m in inputs):
            raise ValueError(f"num_inputs (m) must be >= 0 for every agent, got {inputs}")
        device = torch.device(device) if device is not None else torch.device("cpu")
        n_exp = torch.tensor(counts, dtype=torch.long, device=device)
        n_out = torch.tensor(dims, dtype=torch.long, device=device)
        n_in = torch.tensor(inputs, dtype=torch.long, device=device)
        sizes = (n_exp + n_out if output_ports else n_exp) + n_in
        B = len(counts)
        ptr = torch.zeros(B + 1, dtype=torch.long, device=device)
        ptr[1:] = torch.cumsum(sizes, 0)
        N = int(ptr[-1]) if B else 0
        batch = torch.repeat_interleave(torch.arange(B, device=device), sizes)
        local = torch.arange(N, device=device) - ptr[batch]
        n_exp_node = n_exp[batch]
        is_input = local >= sizes[batch] - n_in[batch]
        is_port = (local >= n_exp_node) & ~is_input
        role = torch.where(
            is_port, torch.full_like(local, int(Role.OUTPUT)), torch.full_like(local, 0)
        )
        role = role.masked_fill(is_input, int(Role.INPUT))
        if output_ports:
            output_index = torch.where(is_port, local - n_exp_node, torch.full_like(local, -1))
        else:
            owns = (local < n_out[batch]) & ~is_input
            output_index = torch.where(owns, local, torch.full_like(local, -1))
        ident = _make_identity(local, identity_channels, identity, generator, device)
        h = torch.zeros(N, hidden_channels, device=device)
        address = value = None
        if addresses is not None:
            if not output_ports:
                raise ValueError("addresses need output_ports=True")
            if addresses.dim() != 3 or addresses.shape[:2] != (B, d_max):
                raise ValueError(
                    f"addresses must have shape [B={B}, d={d_max}, A], got {list(addresses.shape)}"
                )
            addresses = addresses.to(device=device, dtype=h.dtype)
            address = h.new_zeros(N, addresses.size(-1))
            port = is_port.nonzero().squeeze(1)
            address[port] = addresses[batch[port], output_index[port]]
            value = h.new_zeros(N)
            # a port is known by its address only: no index code that would tie it to d's order
            ident = ident.masked_fill(is_port.unsqueeze(1), 0.0)
        if bool(is_input.any()):  # an input is known by a random code (its address)
            code = torch.randn(int(is_input.sum()), identity_channels, generator=generator)
            ident = ident.masked_scatter(is_input.unsqueeze(1), code.to(ident))
        return cls(
            h=h,
            batch=batch,
            ptr=ptr,
            role=role,
            local_index=local,
            identity=ident,
            output_index=output_index,
            num_outputs=d_max,
            address=address,
            value=value,
            agent_size=common_size(ptr),
        )

    # -- views ---------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        """Total number of nodes N over all agents."""
        return self.h.size(0)

    @property
    def num_agents(self) -> int:
        """Number of agents B."""
        return self.ptr.numel() - 1

    @property
    def sizes(self) -> Tensor:
        """Number of nodes of each agent, ``[B]``."""
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def is_input(self) -> Tensor:
        """Boolean mask of input port nodes, ``[N]``."""
        return self.role == int(Role.INPUT)

    @property
    def input_index(self) -> Tensor:
        """Which observation column each input node shows (``-1`` for other nodes), ``[N]``.

        The inputs of an agent are numbered in node order; growth and removal of experts
        keep that order.
        """
        is_input = self.is_input.long()
        before = torch.cumsum(is_input, 0) - is_input  # inputs before each node
        first = before[self.ptr[:-1].clamp(max=max(self.num_nodes - 1, 0))]
        index = before - first[self.batch]
        return torch.where(is_input.bool(), index, torch.full_like(index, -1))

    @property
    def is_expert(self) -> Tensor:
        """Boolean mask of expert nodes, ``[N]``."""
        return self.role == int(Role.EXPERT)

    def num_experts(self) -> Tensor:
        """Number of experts of each agent, ``[B]``."""
        return torch.zeros(self.num_agents, dtype=torch.long, device=self.h.device).index_add_(
            0, self.batch, self.is_expert.long()
        )

    def output_owners(self) -> tuple[Tensor, Tensor, Tensor]:
        """Nodes that own an output, their agents and output columns (fixed between growths)."""
        owner = (self.output_index >= 0).nonzero().squeeze(1)
        return owner, self.batch[owner], self.output_index[owner]

    def input_nodes(self) -> tuple[Tensor, Tensor, Tensor]:
        """Input nodes, their agents and observation columns (fixed between growths)."""
        node = self.is_input.nonzero().squeeze(1)
        return node, self.batch[node], self.input_index[node]

    def constant_columns(self, feedback_to: Sequence[int] | str) -> dict[str, Tensor]:
        """Node input columns that do not change within a lifetime, by feature name.

        ``feedback_to`` names the nodes that receive the scalar feedback: ``"all"``
        experts, every node (``"nodes"``) or the experts of the given local indices.
        """
        dtype = self.h.dtype
        is_expert = self.is_expert
        if feedback_to == "all":
            receives = is_expert
        elif feedback_to == "nodes":
            receives = torch.ones_like(is_expert)
        else:
            targets = torch.tensor(feedback_to, device=self.role.device, dtype=torch.long)
            receives = is_expert & torch.isin(self.local_index, targets)
        return {
            "receives_feedback": receives.to(dtype),
            "owns_output": (self.output_index >= 0).to(dtype),
            "is_expert": is_expert.to(dtype),
            "is_input": self.is_input.to(dtype),
            "is_output": (self.role == int(Role.OUTPUT)).to(dtype),
        }

    def agent_range(self, start: int, stop: int) -> ExpertGraph:
        """The agents ``start..stop-1`` as a batch of their own (nodes re-indexed)."""
        if not 0 <= start <= stop <= self.num_agents:
            raise ValueError(
                f"agent range [{start}, {stop}) out of bounds for {self.num_agents} agents"
            )
        lo, hi = int(self.ptr[start]), int(self.ptr[stop])
        nodes = {name: t[lo:hi] for name, t in self.node_tensors().items()}
        nodes["batch"] = nodes["batch"] - start
        size = self.agent_size or None  # a share of equal agents is equal; else re-measured
        return self.replace(ptr=self.ptr[start : stop + 1] - lo, agent_size=size, **nodes)

    def node_tensors(self) -> dict[str, Tensor]:
        """Every per-node field (one row per node) that the state holds, by name."""
        fields = (
            "h",
            "batch",
            "role",
            "local_index",
            "identity",
            "output_index",
            "address",
            "value",
        )
        return {f: getattr(self, f) for f in fields if getattr(self, f) is not None}

    def replace(self, **changes) -> ExpertGraph:
        """Return a copy with some fields replaced (the state is immutable)."""
        return dataclasses.replace(self, **changes)

    def detach(self) -> ExpertGraph:
        """The same state cut from the autograd graph (between truncated-BPTT chunks)."""
        value = None if self.value is None else self.value.detach()
        return self.replace(h=self.h.detach(), value=value)

    def to(self, device: torch.device | str) -> ExpertGraph:
        """Move every tensor to ``device``."""
        changes = {name: t.to(device) for name, t in self.node_tensors().items()}
        return self.replace(ptr=self.ptr.to(device), **changes)

    # -- PyG interop ---------------------------------------------------------------------
    def to_pyg(self, edge_index: Tensor | None = None, edge_weight: Tensor | None = None):
        """Convert to a :class:`torch_geometric.data.Batch` (optionally with edges)."""
        from torch_geometric.data import Batch, Data

        data_list = []
        for b in range(self.num_agents):
            lo, hi = int(self.ptr[b]), int(self.ptr[b + 1])
            d = Data(
                h=self.h[lo:hi],
                role=self.role[lo:hi],
                identity=self.identity[lo:hi],
                output_index=self.output_index[lo:hi],
                num_nodes=hi - lo,
            )
            if edge_index is not None:
                keep = (edge_index[1] >= lo) & (edge_index[1] < hi)
                d.edge_index = edge_index[:, keep] - lo
                if edge_weight is not None:
                    d.edge_weight = edge_weight[keep]
            data_list.append(d)
        return Batch.from_data_list(data_list)

    @classmethod
    def from_pyg(cls, batch, num_outputs: int, step: int = 0) -> ExpertGraph:
        """Build a state from a :class:`torch_geometric.data.Batch` made by :meth:`to_pyg`."""
        ptr = batch.ptr
        local = torch.arange(batch.num_nodes, device=ptr.device) - ptr[batch.batch]
        return cls(
            h=batch.h,
            batch=batch.batch,
            ptr=ptr,
            role=batch.role,
            local_index=local,
            identity=batch.identity,
            output_index=batch.output_index,
            num_outputs=num_outputs,
            step=step,
            agent_size=common_size(ptr),
        )


def common_size(ptr: Tensor) -> int:
    """Number of nodes of every agent given the offsets ``ptr`` ``[B + 1]``, ``0`` if they differ.

    One read-back from the device; done where the structure is made, not per inner step.
    """
    B = ptr.numel() - 1
    if B <= 0:
        return 0
    n = int(ptr[-1] - ptr[0]) // B
    sizes = ptr[1:] - ptr[:-1]
    return n if bool((sizes == n).all()) else 0


def _make_identity(
    local: Tensor,
    channels: int,
    mode: str,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    if mode == "index":
        return index_identity(local, channels)
    noise = torch.randn(local.numel(), channels, generator=generator, device="cpu")
    return noise.to(device)
