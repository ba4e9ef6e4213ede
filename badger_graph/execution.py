"""How an agent's rounds run: execution settings and the one place where a path is chosen.

Model settings (policy, topology, rounds, ports, identities) say *what* an agent computes;
:class:`Execution` says *how*: dense blocks, CSR products or per-edge gathers, compiled or
not, activation checkpointing, finite checks. Every path gives the same results (to float
tolerance, tested), so execution settings never change what a checkpoint means.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from torch import Tensor

from badger_graph.sparse import Adjacency, CSRAdjacency, DenseAdjacency
from badger_graph.state import ExpertGraph


@dataclasses.dataclass(frozen=True)
class Execution:
    """Execution settings of an :class:`~badger_graph.Agent` (no effect on results).

    Args:
        dense (str, optional): ``"auto"`` uses one batched dense product per round when
            every agent has the same size ``n <= dense_max_nodes`` and the topology
            :attr:`~badger_graph.topologies.Topology.supports_dense`; ``"never"`` always
            uses the sparse path. (default: ``"auto"``)
        dense_max_nodes (int, optional): largest agent for the automatic dense path.
            (default: :obj:`256`)
        sparse (str, optional): how the sparse path aggregates: ``"csr"`` (sparse-matrix
            product over a CSR adjacency built once per step; no ``[E, M]`` per-edge
            messages), ``"edges"`` (PyG gather / scatter) or ``"auto"`` (CSR from
            ``csr_min_edges`` edges on). Recording always uses the edge index.
            (default: ``"auto"``)
        csr_min_edges (int, optional): fewest edges for the automatic CSR path; below it
            the per-step CSR build (two sorts) costs more than it saves. (default: :obj:`50000`)
        compile (bool, optional): run the dense and per-edge rounds through
            ``torch.compile(dynamic=True)`` (compiled once per agent on first use).
            (default: :obj:`False`)
        checkpoint (bool, optional): activation checkpointing of each step's rounds
            (``torch.utils.checkpoint``): a step keeps only its input state for the
            backward pass and recomputes the rounds there (same gradients, less memory,
            about one more forward pass of time). The topology is drawn outside the
            recomputed part, so random edges are not redrawn. (default: :obj:`False`)
        check_finite (bool, optional): check node inputs, edge weights, messages, states
            and port values for NaN / inf after every round and raise
            :class:`~badger_graph.errors.NonFiniteError` naming the tensor, step and round
            (one sum per checked tensor; ~1 % of a Fig. 6 batch). (default: :obj:`True`)
    """

    dense: Literal["auto", "never"] = "auto"
    dense_max_nodes: int = 256
    sparse: Literal["auto", "csr", "edges"] = "auto"
    csr_min_edges: int = 50_000
    compile: bool = False
    checkpoint: bool = False
    check_finite: bool = True

    def __post_init__(self) -> None:
        if self.dense not in ("auto", "never"):
            raise ValueError(f"dense must be 'auto' or 'never', got {self.dense!r}")
        if self.sparse not in ("auto", "csr", "edges"):
            raise ValueError(f"sparse must be 'auto', 'csr' or 'edges', got {self.sparse!r}")
        for name in ("dense_max_nodes", "csr_min_edges"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")


def adjacency(
    policy, topology, state: ExpertGraph, execution: Execution, record: bool = False
) -> tuple[Adjacency, Tensor | None, Tensor | None]:
    """This step's edges in the form the round will use: ``(adj, edge_weight, edge_index)``.

    The one place where the path is chosen, from what the policy (``policy.fused``: messages
    depend on the sender only) and the topology (``topology.supports_dense``) declare and
    from the execution settings:

    1. a :class:`~badger_graph.sparse.DenseAdjacency` for small agents of equal size;
    2. a :class:`~badger_graph.sparse.CSRAdjacency` for large graphs;
    3. the edge index otherwise, and always when the step is recorded.

    ``edge_index`` is ``None`` on the dense path (the topology's edge list is not drawn).
    User-written topologies are validated here every step.
    """
    from badger_graph.topologies.base import check_topology_output

    fused = bool(getattr(policy, "fused", False))
    user = not type(topology).__module__.startswith("badger_graph.")
    if (
        not record
        and fused
        and execution.dense == "auto"
        and topology.supports_dense
        and state.num_agents > 0
        and state.num_nodes <= state.num_agents * execution.dense_max_nodes
    ):
        block = topology.dense(state)
        if block is not None:
            n = state.num_nodes // state.num_agents
            if user and tuple(block.shape) != (state.num_agents, n, n):
                raise ValueError(
                    f"{type(topology).__name__}.dense must return [B, n, n] = "
                    f"[{state.num_agents}, {n}, {n}], got {list(block.shape)}"
                )
            return DenseAdjacency(block), None, None
    out = topology(state)
    if user:
        out = check_topology_output(out, state, topology)
    edge_index, edge_weight = out
    if (
        not record
        and fused
        and execution.sparse != "edges"
        and (execution.sparse == "csr" or edge_index.size(1) >= execution.csr_min_edges)
    ):
        return CSRAdjacency.from_edge_index(edge_index, state.num_nodes), edge_weight, edge_index
    return edge_index, edge_weight, edge_index
