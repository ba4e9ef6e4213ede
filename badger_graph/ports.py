r"""Addressed output ports: experts write to and read from outputs by attention (Fig. 7)."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from badger_graph.state import ExpertGraph, Role


def random_addresses(
    num_agents: int,
    num_outputs: int,
    channels: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Random port addresses ``[B, d, A]``.

    Unit-norm Gaussian directions scaled by :math:`\sqrt{A}`.
    """
    a = torch.randn(num_agents, num_outputs, channels, generator=generator)
    return a / a.norm(dim=-1, keepdim=True).clamp(min=1e-12) * math.sqrt(channels)


def _equal_blocks(state: ExpertGraph, num_pairs: int):
    """``(experts, ports, B, experts per agent, ports per agent)`` when all agents are alike."""
    B = state.num_agents
    if B == 0 or num_pairs == 0:
        return None
    experts = (state.role == int(Role.EXPERT)).nonzero().squeeze(1)
    ports = (state.role == int(Role.OUTPUT)).nonzero().squeeze(1)
    n_e, d = experts.numel() // B, ports.numel() // B
    if n_e * d * B != num_pairs or n_e * B != experts.numel() or d * B != ports.numel():
        return None
    counts = torch.stack(
        [
            torch.bincount(state.batch[experts], minlength=B),
            torch.bincount(state.batch[ports], minlength=B),
        ]
    )
    if not bool((counts == torch.tensor([[n_e], [d]], device=counts.device)).all()):
        return None
    return experts, ports, B, n_e, d


@dataclasses.dataclass(frozen=True)
class PortLinks:
    """Expert-port pairs of a batch of agents, from :meth:`AddressedPorts.links`.

    Attributes:
        pairs (torch.Tensor): ``[2, E]`` (expert, port), sorted by port, then expert.
        blocks (tuple, optional): ``(experts, ports, B, experts per agent, ports per agent)``
            when all agents have the same numbers of experts and ports (the attention then
            runs as one batched product), else ``None``.
    """

    pairs: Tensor
    blocks: tuple | None


class AddressedPorts(nn.Module):
    r"""Output ports addressed by random vectors, written and read by attention.

    Each output dimension is a port node with an address :math:`a_p` (fresh per episode or
    fixed by a curriculum) and a value :math:`o_p`. After the policy's rounds, every expert
    :math:`e` of the agent picks ports by attention and pushes a bounded value:

    .. math::
        w_{ep} = \mathrm{softmax}_p\left(\tau\,\frac{(W_q h_e)^\top a_p}{\sqrt{A}}\right),
        \qquad
        o_p \leftarrow \mathrm{clip}\left(o_p + \frac{\sum_e w_{ep}\tanh(w_v^\top h_e)}
        {\sum_e w_{ep} + 1},\ \pm o_{\max}\right)

    and reads the current values back the same way,
    :math:`r_e = \sum_p \mathrm{softmax}_p(\tau (W_r h_e)^\top a_p / \sqrt{A})\, o_p`,
    which the agent writes into the expert's ``signal`` input for the next step. No
    parameter depends on the number of ports or experts.

    Args:
        hidden_channels (int): width of the expert states.
        address_channels (int, optional): width :math:`A` of an address. (default: :obj:`16`)
        temperature (float, optional): :math:`\tau`. (default: :obj:`2.5`)
        max_value (float, optional): :math:`o_{\max}`. (default: :obj:`1.5`)
        reference_experts (int, optional): if set, the damping term :math:`1` of the push
            becomes :math:`n / n_{\mathrm{ref}}` for an agent of :math:`n` experts, so the
            share of the pushed mean that reaches a port,
            :math:`\sum_e w_{ep} / (\sum_e w_{ep} + n / n_{\mathrm{ref}})`, no longer grows
            with the number of experts (it equals the default's at
            :math:`n = n_{\mathrm{ref}}`). (default: :obj:`None`: damping :math:`1`)
        push (str, optional): ``"damped"``: the update above; ``"mean"``: a port moves by the
            attention-weighted mean of the pushes, :math:`\sum_e w_{ep} v_e / \sum_e w_{ep}`
            (mean-field: the same for any number of experts, and unchanged when every
            expert is cloned). (default: ``"damped"``)
    """

    def __init__(
        self,
        hidden_channels: int,
        address_channels: int = 16,
        temperature: float = 2.5,
        max_value: float = 1.5,
        reference_experts: int | None = None,
        push: str = "damped",
    ) -> None:
        super().__init__()
        if not isinstance(address_channels, int) or address_channels < 1:
            raise ValueError(f"address_channels must be an int >= 1, got {address_channels!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if max_value <= 0:
            raise ValueError(f"max_value must be > 0, got {max_value}")
        if reference_experts is not None and (
            not isinstance(reference_experts, int) or reference_experts < 1
        ):
            raise ValueError(
                f"reference_experts must be None or an int >= 1, got {reference_experts!r}"
            )
        if push not in ("damped", "mean"):
            raise ValueError(f"push must be 'damped' or 'mean', got {push!r}")
        if push == "mean" and reference_experts is not None:
            raise ValueError(
                f"reference_experts={reference_experts} sets the damping of push='damped'; "
                f"push='mean' has none"
            )
        self.push = push
        self.reference_experts = reference_experts
        self.hidden_channels = hidden_channels
        self.address_channels = address_channels
        self.temperature = float(temperature)
        self.max_value = float(max_value)
        self.lin_write = nn.Linear(hidden_channels, address_channels)
        self.lin_value = nn.Linear(hidden_channels, 1)
        self.lin_read = nn.Linear(hidden_channels, address_channels)

    def pairs(self, state: ExpertGraph) -> Tensor:
        """All (expert, port) pairs of the same agent, ``[2, E]``, sorted by port, then expert.

        Built directly from the experts and ports of each agent (``experts × ports`` pairs,
        not the ``n²`` pairs of all nodes).
        """
        role, batch = state.role, state.batch
        experts = (role == int(Role.EXPERT)).nonzero().squeeze(1)
        ports = (role == int(Role.OUTPUT)).nonzero().squeeze(1)
        per_agent = torch.bincount(batch[experts], minlength=state.num_agents)
        first = torch.cumsum(per_agent, 0) - per_agent  # position of each agent's experts
        count = per_agent[batch[ports]]
        port = torch.repeat_interleave(ports, count)
        starts = torch.cumsum(count, 0) - count
        within = torch.arange(port.numel(), device=port.device) - torch.repeat_interleave(
            starts, count
        )
        expert = experts[torch.repeat_interleave(first[batch[ports]], count) + within]
        return torch.stack([expert, port])

    def links(self, state: ExpertGraph) -> PortLinks:
        """The expert-port pairs of ``state`` and their block layout.

        Computed once per lifetime: they change only when agents grow.
        """
        pairs = self.pairs(state)
        return PortLinks(pairs, _equal_blocks(state, pairs.size(1)))

    def _attention(self, q: Tensor, state: ExpertGraph, links: PortLinks) -> Tensor:
        """Attention weight of every (expert, port) pair, softmax over each expert's ports."""
        e, p = links.pairs
        scale = self.temperature / math.sqrt(self.address_channels)
        blocks = links.blocks
        if blocks is not None:
            # equal agents: [B, experts, ports] scores by one batched product, no [E, A]
            # gathers; pairs are ordered by agent, port, expert
            experts, ports, B, n_e, d = blocks
            Q = q[experts].view(B, n_e, -1)
            P = state.address[ports].view(B, d, -1)
            w = torch.softmax(torch.bmm(Q, P.transpose(1, 2)) * scale, dim=-1)
            return w.transpose(1, 2).reshape(-1)
        score = (q[e] * state.address[p]).sum(-1) * scale
        return softmax(score, e, num_nodes=state.num_nodes)  # over the ports of each expert

    def write(self, state: ExpertGraph, links: PortLinks) -> Tensor:
        """New port values ``[N]`` after every expert's push."""
        e, p = links.pairs
        w = self._attention(self.lin_write(state.h), state, links)
        v = torch.tanh(self.lin_value(state.h)).squeeze(-1)
        push = scatter(w * v[e], p, 0, dim_size=state.num_nodes, reduce="sum")
        mass = scatter(w, p, 0, dim_size=state.num_nodes, reduce="sum")
        if self.push == "mean":  # weighted mean of the pushes; no expert pushing: no move
            return (state.value + push / mass.clamp(min=1e-6)).clamp(
                -self.max_value, self.max_value
            )
        if self.reference_experts is None:
            damping = 1.0
        else:  # n / n_ref of each port's agent
            damping = state.num_experts()[state.batch].to(mass.dtype) / self.reference_experts
        value = state.value + push / (mass + damping)
        return value.clamp(-self.max_value, self.max_value)

    def read(self, state: ExpertGraph, links: PortLinks) -> Tensor:
        """What each expert reads back from the ports, ``[N]`` (0 for non-experts)."""
        e, p = links.pairs
        w = self._attention(self.lin_read(state.h), state, links)
        return scatter(w * state.value[p], e, 0, dim_size=state.num_nodes, reduce="sum")

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(address={self.address_channels}, "
            f"temperature={self.temperature}, max_value={self.max_value}, "
            f"reference_experts={self.reference_experts}, push={self.push!r})"
        )
