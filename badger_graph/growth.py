"""Grow and shrink agents at any step of a lifetime, without retraining.

New experts are appended at the end of their agent's block of nodes, so every existing
node keeps its position within the agent, its identity and its state bit-for-bit; the other
agents of the batch are copied unchanged. Edges are not stored in the state: the topology
builds them for the new node set at the next step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from badger_graph.state import ExpertGraph, Role, common_size, index_identity

MODES = ("fresh", "clone")


@dataclasses.dataclass(frozen=True)
class GrowthEvent:
    """Add (``count > 0``) experts to agents before inner step ``step``.

    Attributes:
        step (int): the inner step before which the agent grows.
        count (int): experts to add to each agent.
        mode (str): ``"fresh"`` (zero state) or ``"clone"`` (state copied from existing
            experts, round-robin, with fresh identities).
    """

    step: int
    count: int
    mode: str = "fresh"

    def __post_init__(self) -> None:
        if self.step < 0:
            raise ValueError(f"growth step must be >= 0, got {self.step}")
        _check(self.count, self.mode)


def _check(count: int, mode: str) -> None:
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"grow by at least 1 expert, got count={count!r}")
    if mode not in MODES:
        raise ValueError(f"growth mode must be one of {MODES}, got {mode!r}")


def _agents(state: ExpertGraph, agents: Sequence[int] | None) -> Tensor:
    B = state.num_agents
    if agents is None:
        return torch.arange(B)
    idx = torch.as_tensor(list(agents), dtype=torch.long)
    if idx.numel() and (idx.min() < 0 or idx.max() >= B):
        raise ValueError(f"agent indices {idx.tolist()} out of range for {B} agents")
    return idx


def grow(
    state: ExpertGraph,
    count: int,
    mode: str = "fresh",
    agents: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    identity: str = "index",
) -> ExpertGraph:
    """Add ``count`` experts to each agent in ``agents`` (default: all).

    Args:
        state (ExpertGraph): the current state.
        count (int): experts to add per agent (>= 1).
        mode (str, optional): ``"fresh"`` (zero state) or ``"clone"`` (copy the state of the
            agent's experts round-robin). New experts get fresh identities either way.
        agents (list of int, optional): which agents grow.
        generator (torch.Generator, optional): for random identities.
        identity (str, optional): ``"index"`` (the code of the new node's index, one never
            used in the agent unless experts were removed) or ``"random"``.
    """
    _check(count, mode)
    grow_agents = _agents(state, agents).to(state.batch.device)
    B = state.num_agents
    add = torch.zeros(B, dtype=torch.long, device=state.batch.device)
    add[grow_agents] = count
    old_sizes = state.sizes
    new_sizes = old_sizes + add
    new_ptr = torch.zeros_like(state.ptr)
    new_ptr[1:] = torch.cumsum(new_sizes, 0)
    N_new = int(new_ptr[-1])
    # position of every old node in the new layout
    old_pos = new_ptr[state.batch] + state.local_index
    # new nodes: for each growing agent, `count` positions after its old nodes
    new_batch_of_added = torch.repeat_interleave(torch.arange(B, device=add.device), add)
    k = torch.arange(new_batch_of_added.numel(), device=add.device)
    k = k - torch.repeat_interleave(torch.cumsum(add, 0) - add, add)
    new_local = old_sizes[new_batch_of_added] + k
    new_pos = new_ptr[new_batch_of_added] + new_local

    def place(old: Tensor, added: Tensor) -> Tensor:
        out = old.new_empty((N_new, *old.shape[1:]))
        out[old_pos] = old
        out[new_pos] = added
        return out

    n_added = new_pos.numel()
    if mode == "clone":
        # the j-th new expert of an agent copies the agent's (j mod n_experts)-th expert
        expert_nodes = state.is_expert.nonzero().squeeze(1)
        exp_count = state.num_experts()
        first_exp = torch.full((B,), -1, dtype=torch.long, device=add.device)
        order = torch.arange(expert_nodes.numel(), device=add.device)
        first_exp.scatter_reduce_(0, state.batch[expert_nodes], order, "amin", include_self=False)
        src = expert_nodes[first_exp[new_batch_of_added] + k % exp_count[new_batch_of_added]]
        h_add = state.h[src]
    else:
        h_add = state.h.new_zeros(n_added, state.h.size(1))
    if identity == "random":
        ident = torch.randn(n_added, state.identity.size(1), generator=generator)
        ident_add = ident.to(state.identity)
    else:
        ident_add = index_identity(new_local, state.identity.size(1)).to(state.identity)
    added = {
        "h": h_add,
        "batch": new_batch_of_added,
        "role": torch.full_like(new_local, int(Role.EXPERT)),
        "local_index": new_local,
        "identity": ident_add,
        "output_index": torch.full_like(new_local, -1),
    }
    changes = {
        name: place(old, added[name] if name in added else old.new_zeros(n_added, *old.shape[1:]))
        for name, old in state.node_tensors().items()
    }  # address and port value: zero for new experts
    return state.replace(ptr=new_ptr, agent_size=common_size(new_ptr), **changes)


def remove(state: ExpertGraph, agent: int, experts: Sequence[int]) -> ExpertGraph:
    """Remove experts (by local index) from one agent; the other nodes keep their states.

    The remaining nodes of the agent are renumbered ``0..n-1`` in their old order (their
    identities are kept).
    """
    B = state.num_agents
    if not 0 <= agent < B:
        raise ValueError(f"agent {agent} out of range for {B} agents")
    experts = sorted({int(e) for e in experts})
    lo, hi = int(state.ptr[agent]), int(state.ptr[agent + 1])
    n_exp = int(state.is_expert[lo:hi].sum())
    if len(experts) >= n_exp:
        raise ValueError(
            f"cannot remove {len(experts)} experts from agent {agent}: it has {n_exp} "
            f"and must keep at least one"
        )
    drop = torch.zeros(state.num_nodes, dtype=torch.bool, device=state.h.device)
    for e in experts:
        if not 0 <= e < hi - lo or not bool(state.is_expert[lo + e]):
            raise ValueError(f"agent {agent} has no expert at local index {e}")
        drop[lo + e] = True
    keep = ~drop
    sizes = state.sizes.clone()
    sizes[agent] -= len(experts)
    ptr = torch.zeros_like(state.ptr)
    ptr[1:] = torch.cumsum(sizes, 0)
    changes = {name: t[keep] for name, t in state.node_tensors().items()}
    batch = changes["batch"]
    changes["local_index"] = torch.arange(batch.numel(), device=batch.device) - ptr[batch]
    return state.replace(ptr=ptr, agent_size=common_size(ptr), **changes)


def growth_events(events, inner_steps: int) -> list[GrowthEvent]:
    """``GrowthEvent`` s from events or their dicts (YAML), checked against the lifetime.

    Raises:
        ValueError: an event at a step the lifetime does not reach.
    """
    out = [g if isinstance(g, GrowthEvent) else GrowthEvent(**g) for g in (events or [])]
    for g in out:
        if g.step >= inner_steps:
            raise ValueError(f"growth at step {g.step} but lifetimes have {inner_steps} steps")
    return out
