"""How an agent's rounds run: execution settings, and the choice of a round's form.

Here a round's form is chosen (dense block, CSR product or per-edge gathers, from the
policy, the topology and these settings); the lifetime chooses between captured and eager
steps, and the policy between its fused and per-edge kernels, from the same settings.

Model settings (policy, topology, rounds, ports, identities) say *what* an agent computes;
:class:`Execution` says *how*: dense blocks, CSR products or per-edge gathers, compiled or
not, activation checkpointing, finite checks. Every path gives the same results (to float
tolerance, tested), so execution settings never change what a checkpoint means.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import Tensor

from badger_graph.adjacency import Adjacency, CSRAdjacency, DenseAdjacency, EdgeAdjacency
from badger_graph.state import ExpertGraph
from badger_graph.topologies.base import check_topology_output, equal_sizes


@dataclasses.dataclass(frozen=True)
class Execution:
    """Execution settings of an :class:`~badger_graph.Agent` (no effect on results).

    Args:
        dense (str, optional): ``"auto"`` uses one batched dense product per round when
            every agent has the same size, the topology
            :attr:`~badger_graph.topologies.Topology.supports_dense`, and the dense block is
            cheaper than the edges (see :func:`dense_pays`); ``"never"`` always uses the
            sparse path. (default: ``"auto"``)
        dense_max_nodes (int, optional): a fixed cap on the agent size for the dense path
            instead of the cost model. (default: ``None``: by cost)
        dense_max_bytes (int, optional): largest ``[B, n, n]`` block of one step.
            (default: 256 MiB)
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
        capture (bool, optional): run each inner step as one compiled graph
            (``torch.compile(fullgraph=True)`` of the whole step: inputs, edges, rounds,
            ports, read-out; the task's answer stays eager; a static topology's edges
            are built once per lifetime). On a GPU the graph is replayed as a CUDA graph
            (``mode="reduce-overhead"``), so a small agent's step costs one launch
            instead of hundreds. Applies to lifetimes without recording, without growth
            and outside ``torch.func`` transforms (the ES population runs eagerly);
            finite checks then run once per lifetime and name the first bad step. The
            first lifetime of each new shape compiles (seconds to a minute). Random
            topologies, and steps that cannot be traced whole (e.g. a user topology
            that reads values back to the host), warn once and run eagerly.
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
    dense_max_nodes: int | None = None
    dense_max_bytes: int = 256 * 2**20
    sparse: Literal["auto", "csr", "edges"] = "auto"
    csr_min_edges: int = 50_000
    compile: bool = False
    capture: bool = False
    checkpoint: bool = False
    check_finite: bool = True

    def __post_init__(self) -> None:
        if self.dense not in ("auto", "never"):
            raise ValueError(f"dense must be 'auto' or 'never', got {self.dense!r}")
        if self.sparse not in ("auto", "csr", "edges"):
            raise ValueError(f"sparse must be 'auto', 'csr' or 'edges', got {self.sparse!r}")
        for name in ("dense_max_nodes", "csr_min_edges", "dense_max_bytes"):
            value = getattr(self, name)
            if name == "dense_max_nodes" and value is None:
                continue
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")


#: time of one edge on the CSR path over one pair of the dense block, measured on fully
#: connected agents (``benchmarks/dense_crossover.py``)
CSR_EDGE_COST = 8.0
#: agent size up to which the dense path is taken when the topology's edge count is unknown
DEFAULT_DENSE_NODES = 256


@contextlib.contextmanager
def using_execution(learner, **changes) -> Iterator[None]:
    """Within the block, ``learner`` runs with its execution settings changed by ``changes``.

    ``with using_execution(agent, dense="never", sparse="csr"): ...`` times or checks one
    path; the learner's own settings are back after the block, also after an error.
    """
    execution = learner.execution
    learner.execution = dataclasses.replace(execution, **changes)
    try:
        yield
    finally:
        learner.execution = execution


def finite_checks_off(learner) -> contextlib.AbstractContextManager[None]:
    """Within the block, ``learner`` runs without its finite checks (then they are back).

    For computations that cannot branch on values, e.g. a population under ``vmap``.
    """
    return using_execution(learner, check_finite=False)


def dense_pays(num_agents: int, n: int, edges: float | None, execution: Execution) -> bool:
    """Whether one dense ``[B, n, n]`` block beats ``edges`` edges per agent of ``n`` nodes.

    The block must fit in ``dense_max_bytes``. With a fixed ``dense_max_nodes``: ``n`` at
    most that. Otherwise by cost: the dense block costs ``n²`` per agent, the sparse path
    ``CSR_EDGE_COST`` × the edges (agents up to 256 nodes when the edges are unknown).
    """
    if num_agents * n * n * 4 > execution.dense_max_bytes:
        return False
    if execution.dense_max_nodes is not None:
        return n <= execution.dense_max_nodes
    if edges is None:
        return n <= DEFAULT_DENSE_NODES
    return n * n <= CSR_EDGE_COST * edges


def blocked_rows(h: Tensor, chunk: int) -> bool:
    """Whether a round without autograd aggregates and updates its receivers in row blocks.

    Blocks of ``chunk`` rows keep the aggregate and the GRU gates of a block in the CPU
    cache (measured in ``docs/performance.md``). It is a CPU
    trick: on a GPU each block is a handful of kernel launches from a Python loop, so there
    the round is one fused pass (one sparse product and one GRU call). With autograd the
    round is always one pass (blocks would slow the backward down).
    """
    return h.device.type == "cpu" and not torch.is_grad_enabled() and h.size(0) > chunk


def _block_from_edges(
    state: ExpertGraph, edge_index: Tensor, edge_weight: Tensor | None, execution: Execution
) -> DenseAdjacency | None:
    """The drawn edges as a dense ``[B, n, n]`` block, when that is cheaper than the edges.

    For topologies without a dense form of their own (random out-degree, Erdős–Rényi, user
    edge lists): the edges are drawn once, so both paths see the same ones. Repeated edges
    count as often as they occur (as on the edge path).
    """
    B = state.num_agents
    n = equal_sizes(state)
    if n is None or not dense_pays(B, n, edge_index.size(1) / B, execution):
        return None
    src, dst = edge_index
    agent = state.batch[dst]
    start = state.ptr[agent]
    values = edge_weight if edge_weight is not None else torch.ones_like(src, dtype=state.h.dtype)
    block = state.h.new_zeros(B, n, n).index_put(
        (agent, dst - start, src - start), values.to(state.h.dtype), accumulate=True
    )
    return DenseAdjacency(block, counts=True)


def adjacency(
    policy, topology, state: ExpertGraph, execution: Execution, record: bool = False
) -> tuple[Adjacency, Tensor | None, Tensor | None]:
    """This step's edges in the form the round will use: ``(adj, edge_weight, edge_index)``.

    The one place where the path is chosen (with :func:`blocked_rows`, which the policy
    asks per round), from what the policy (``policy.sender_only``: messages
    depend on the sender only) and the topology (``topology.supports_dense``) declare and
    from the execution settings:

    1. a :class:`~badger_graph.adjacency.DenseAdjacency` for agents of equal size when the
       block is cheaper than the edges: the topology's own dense form, or else the drawn
       edges scattered into a block (the same edges either way);
    2. a :class:`~badger_graph.adjacency.CSRAdjacency` for large graphs;
    3. an :class:`~badger_graph.adjacency.EdgeAdjacency` (the edge list) otherwise, and
       always when the step is recorded.

    ``edge_index`` is ``None`` when the topology's own dense form was used (no edge list drawn).
    User-written topologies are validated here every step.
    """
    fused = policy.sender_only
    user = not topology.trusted
    n_max = -(-state.num_nodes // max(state.num_agents, 1))  # the agent size if all are equal
    if (
        not record
        and fused
        and execution.dense == "auto"
        and topology.supports_dense
        and state.num_agents > 0
        and dense_pays(state.num_agents, n_max, topology.expected_edges(n_max), execution)
    ):
        block = topology.dense(state)
        if block is not None:
            n = state.num_nodes // state.num_agents
            if user and tuple(block.shape) != (state.num_agents, n, n):
                raise ValueError(
                    f"{type(topology).__name__}.dense must return [B, n, n] = "
                    f"[{state.num_agents}, {n}, {n}], got {list(block.shape)}"
                )
            return DenseAdjacency(block, topology.complete), None, None
    out = topology(state)
    if user:
        out = check_topology_output(out, state, topology)
    edge_index, edge_weight = out
    if not record and fused and execution.dense == "auto":
        weighted = policy.aggregation == "weighted"
        block = _block_from_edges(state, edge_index, edge_weight if weighted else None, execution)
        if block is not None:
            return block, None, edge_index
    if (
        not record
        and fused
        and execution.sparse != "edges"
        and (execution.sparse == "csr" or edge_index.size(1) >= execution.csr_min_edges)
    ):
        return CSRAdjacency.from_edge_index(edge_index, state.num_nodes), edge_weight, edge_index
    return EdgeAdjacency(edge_index, state.num_nodes), edge_weight, edge_index


class CompiledFunctions:
    """The compiled functions of one agent, built on first use.

    ``steps``: its captured inner steps by device type (:attr:`Execution.capture`);
    ``rounds``: its compiled rounds by adjacency kind (:attr:`Execution.compile`);
    ``warned``: whether it has said that its topology cannot be captured. A copy or a
    pickle of the agent starts empty: a copied compiled function would run the original's
    weights.
    """

    def __init__(self) -> None:
        self.steps: dict = {}
        self.rounds: dict = {}
        self.warned = False

    def round(self, policy, adj: Adjacency, execution: Execution):
        """The policy's round: compiled on first use with ``execution.compile`` (not for CSR)."""
        if not execution.compile or isinstance(adj, CSRAdjacency):
            return policy
        key = (type(adj).__name__, id(policy))
        if key not in self.rounds:
            self.rounds[key] = torch.compile(policy.forward, dynamic=True)
        return self.rounds[key]

    def __deepcopy__(self, memo) -> CompiledFunctions:
        return CompiledFunctions()

    def __reduce__(self):
        return (CompiledFunctions, ())


class CapturedStep:
    """An inner-step function compiled whole, with an eager fallback.

    On CUDA the compiled step is replayed as a CUDA graph (``mode="reduce-overhead"``:
    PyTorch's CUDA-graph trees, which also capture the backward pass and keep the graphs
    of successive steps of a lifetime apart); elsewhere it is a plain compiled graph. If
    the step cannot be traced as one graph, one warning names the reason and the step
    runs eagerly from then on (same results, no speed-up).
    """

    def __init__(self, fn: Callable, device: torch.device, backend=None) -> None:
        self.fn = fn
        self.device = torch.device(device)
        if backend is None:  # inductor; CUDA graphs on a GPU
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.compiled = torch.compile(fn, fullgraph=True, mode=mode)
        else:  # another torch.compile backend (e.g. a counting one in tests)
            self.compiled = torch.compile(fn, fullgraph=True, backend=backend)
        self.failed: str | None = None

    def __call__(self, *args):
        """Run the step compiled (eagerly once compiling has failed)."""
        if self.failed is not None:
            return self.fn(*args)
        try:
            return self.compiled(*args)
        except Exception as error:  # noqa: BLE001 - tracing and compiling raise many kinds
            out = self.fn(*args)  # a real error of the step raises here, as it would eagerly
            lines = str(error).strip().splitlines()
            self.failed = f"{type(error).__name__}: {lines[0] if lines else ''}"
            warnings.warn(
                f"execution.capture: the inner step cannot be compiled as one graph "
                f"({self.failed}); running it eagerly",
                stacklevel=3,
            )
            return out


def capture_step(fn: Callable, device: torch.device) -> CapturedStep:
    """The inner step ``fn`` compiled for ``device`` (see :attr:`Execution.capture`)."""
    return CapturedStep(fn, device)


def mark_step_begin(device: torch.device) -> None:
    """Start a new lifetime of captured steps: on CUDA, a new CUDA-graph generation.

    Outputs of the previous lifetime's replays may be overwritten from here on; the
    lifetime copies out what it returns.
    """
    if torch.device(device).type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()


def replays_reuse_outputs(device: torch.device) -> bool:
    """Whether a captured step's outputs may be overwritten by its next replay.

    On CUDA, PyTorch's CUDA-graph trees give the replays of one function the same output
    memory unless a backward pass is pending (without autograd every call is a new
    generation), so a lifetime copies what it keeps across steps: each step's action and
    finite flag, and without autograd the states it feeds to the next step.
    """
    return torch.device(device).type == "cuda"
