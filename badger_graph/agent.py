r"""The agent: shared policy + topology + read-out, and the inner loop (a lifetime)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from badger_graph.errors import NonFiniteError
from badger_graph.growth import GrowthEvent, grow
from badger_graph.policies import RolePolicies
from badger_graph.policy import ExpertPolicy
from badger_graph.ports import AddressedPorts, random_addresses
from badger_graph.sparse import CSRAdjacency
from badger_graph.state import FEATURES, ExpertGraph, Role
from badger_graph.tasks.base import Episode, StepResult, Task
from badger_graph.topologies.base import Topology, check_topology_output

_SIGNAL = FEATURES.index("signal")


def _all_finite(value: Tensor) -> bool:
    """No NaN / inf in ``value``: one sum (NaN and inf propagate), exact check if it is not."""
    return bool(value.sum().isfinite()) or bool(value.isfinite().all())


def _check_finite(name: str, value: Tensor, step: int, round: int | None = None) -> None:
    if not _all_finite(value):
        raise NonFiniteError(name, value, step=step, round=round, where="inner step")


def _check_result(result, episode: Episode, state: ExpertGraph) -> StepResult:
    """A task's answer must be a StepResult with ``[B]`` error/feedback and ``[B, d]`` signal."""
    name = type(episode).__name__
    if not isinstance(result, StepResult):
        raise ValueError(f"{name}.step must return a StepResult, got {type(result).__name__}")
    B, d = state.num_agents, state.num_outputs
    for field, want in (("error", (B,)), ("feedback", (B,)), ("signal", (B, d))):
        value = getattr(result, field)
        if value is None:
            if field == "error":
                raise ValueError(f"{name}.step returned no error")
            continue
        if not isinstance(value, Tensor) or tuple(value.shape) != want:
            got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{name}: StepResult.{field} must have shape {list(want)}, got {got}")
    return result


@dataclasses.dataclass
class StepRecord:
    """Communication of one inner step (recorded only on request).

    Attributes:
        step (int): inner step ``t``.
        edge_index (torch.Tensor): ``[2, E]`` edges used in this step.
        edge_weight (torch.Tensor, optional): ``[E]`` weights (attention), or ``None``.
        messages (list of torch.Tensor): per round, the ``[E, M]`` messages sent on each edge.
        states (list of torch.Tensor): per round, the ``[N, H]`` states after the round.
        batch (torch.Tensor): agent of each node at this step.
        role (torch.Tensor): role of each node at this step.
        output_index (torch.Tensor): output each node owns (``-1``: none).
        action (torch.Tensor): ``[B, d]`` outputs read after this step.
    """

    step: int
    edge_index: Tensor
    edge_weight: Tensor | None
    messages: list[Tensor]
    states: list[Tensor]
    batch: Tensor
    role: Tensor
    output_index: Tensor | None = None
    action: Tensor | None = None


@dataclasses.dataclass
class Lifetime:
    """Record of a lifetime of T inner steps of B agents.

    Attributes:
        actions (torch.Tensor): ``[T, B, d]`` outputs of every step.
        errors (torch.Tensor): ``[T, B]`` error of every step's output.
        state (ExpertGraph): final state.
        records (list of StepRecord): per-step communication, empty unless recorded.
        episode (Episode): the episodes the lifetime ran against (holds e.g. the targets).
        last_result (StepResult): the task's answer to the last action (to continue).
    """

    actions: Tensor
    errors: Tensor
    state: ExpertGraph
    records: list[StepRecord] = dataclasses.field(default_factory=list)
    episode: Episode | None = None
    last_result: StepResult | None = None

    @property
    def final_error(self) -> Tensor:
        """Error of the last step per agent, ``[B]``."""
        return self.errors[-1]

    @property
    def mean_error(self) -> Tensor:
        """Mean error over all steps per agent, ``[B]``."""
        return self.errors.mean(0)


class Agent(nn.Module):
    r"""A BADGER agent: experts (graph nodes) that share one :class:`ExpertPolicy`.

    One inner step writes the task's feedback into the nodes, asks the topology for this
    step's edges, applies the policy for ``rounds`` rounds with the same weights, and reads
    the output dimensions out of the nodes that own them through one shared linear head.
    No parameter is changed during a lifetime.

    Args:
        policy (ExpertPolicy): the shared expert policy.
        topology (Topology): edge generator, called every inner step.
        rounds (int, optional): communication rounds per inner step :math:`k`.
            (default: :obj:`1`)
        output_ports (bool, optional): read outputs from ``d`` dedicated port nodes instead of
            from experts ``0..d-1``. (default: ``False``)
        identity (str, optional): ``"index"`` or ``"random"`` node identities.
            (default: ``"index"``)
        dense (str, optional): ``"auto"`` uses batched dense products instead of per-edge
            gathers when every agent has the same size ``n <= dense_max_nodes`` and the
            topology provides a dense adjacency (same results, faster for small agents);
            ``"never"`` always uses the sparse path. (default: ``"auto"``)
        dense_max_nodes (int, optional): largest agent for the automatic dense path.
            (default: :obj:`256`)
        ports (AddressedPorts, optional): addressed output ports (Fig. 7): outputs are port
            values that experts write and read by attention over random port addresses;
            implies ``output_ports``. (default: ``None``)
        sparse (str, optional): how the sparse path aggregates messages: ``"csr"`` with a
            sparse-matrix product over a CSR adjacency built once per step (no ``[E, M]``
            per-edge messages; needs ``receiver_term=False``), ``"edges"`` with PyG's
            gather/scatter ``propagate``, ``"auto"`` CSR from ``csr_min_edges`` edges on.
            Same results; recording always uses ``"edges"``. (default: ``"auto"``)
        csr_min_edges (int, optional): fewest edges for the automatic CSR path.
            (default: :obj:`50000`: below it the per-step CSR build (two sorts) costs more
            than it saves with one round and a backward pass)
        compile (bool, optional): run the policy's dense and per-edge rounds through
            ``torch.compile(dynamic=True)`` (compiled once per process on first use; results
            equal eager to float tolerance). (default: :obj:`False`)
        check_finite (bool, optional): check node inputs, edge weights, messages, states
            and port values for NaN / inf after every round and raise
            :class:`~badger_graph.errors.NonFiniteError` naming the tensor, step and round
            (one sum per checked tensor; ~1 % of a Fig. 6 batch). (default: :obj:`True`)
        checkpoint (bool, optional): activation checkpointing of each step's rounds
            (``torch.utils.checkpoint``): when gradients are recorded, a step keeps only its
            input state for the backward pass and recomputes the rounds' messages and gates
            there (same gradients, less memory, ~1 more forward pass of time). The topology
            is drawn outside the recomputed part, so random edges are not redrawn.
            (default: :obj:`False`)
    """

    def __init__(
        self,
        policy: ExpertPolicy | RolePolicies,
        topology: Topology,
        rounds: int = 1,
        output_ports: bool = False,
        identity: str = "index",
        dense: str = "auto",
        dense_max_nodes: int = 256,
        ports: AddressedPorts | None = None,
        sparse: str = "auto",
        csr_min_edges: int = 50_000,
        compile: bool = False,
        check_finite: bool = True,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if sparse not in ("auto", "csr", "edges"):
            raise ValueError(f"sparse must be 'auto', 'csr' or 'edges', got {sparse!r}")
        if dense not in ("auto", "never"):
            raise ValueError(f"dense must be 'auto' or 'never', got {dense!r}")
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds (k) must be an int >= 1, got {rounds!r}")
        if identity not in ("index", "random"):
            raise ValueError(f"identity must be 'index' or 'random', got {identity!r}")
        if getattr(topology, "weighted", False) and policy.aggregation != "weighted":
            raise ValueError(
                f"{topology!r} produces attention weights; use the policy with "
                f"aggr='weighted' (got aggr={policy.aggregation!r}) or the weights are ignored"
            )
        self.policy = policy
        self.topology = topology
        self.rounds = rounds
        self.output_ports = output_ports
        self.identity = identity
        self.dense = dense
        self.dense_max_nodes = dense_max_nodes
        self.sparse = sparse
        self.csr_min_edges = csr_min_edges
        self.compile = compile
        self.check_finite = check_finite
        self.checkpoint = checkpoint
        # topologies of this library are tested; user-written ones are checked every step
        self._validate_topology = not type(topology).__module__.startswith("badger_graph.")
        if ports is not None:
            if ports.hidden_channels != policy.hidden_channels:
                raise ValueError(
                    f"ports hidden_channels={ports.hidden_channels} must equal the policy's "
                    f"hidden_channels={policy.hidden_channels}"
                )
            self.output_ports = True
        self.ports = ports
        self.readout = nn.Linear(policy.hidden_channels, 1)

    # -- state ---------------------------------------------------------------------------
    def init_state(
        self,
        num_experts: int | Sequence[int],
        num_outputs: int | Sequence[int],
        num_agents: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        addresses: Tensor | None = None,
    ) -> ExpertGraph:
        """Fresh state of a batch of agents (zero internal states).

        With addressed ports, ``addresses`` ``[B, d, A]`` fixes the port addresses; by
        default fresh random ones are drawn from ``generator``.
        """
        if self.ports is not None and addresses is None:
            B = num_agents if isinstance(num_experts, int) else len(num_experts)
            d = num_outputs if isinstance(num_outputs, int) else max(num_outputs, default=1)
            addresses = random_addresses(B, d, self.ports.address_channels, generator)
        return ExpertGraph.create(
            num_experts,
            num_outputs,
            self.policy.hidden_channels,
            self.policy.identity_channels,
            num_agents=num_agents,
            output_ports=self.output_ports,
            identity=self.identity,
            generator=generator,
            device=device if device is not None else self.readout.weight.device,
            addresses=addresses,
        )

    def static_features(self, state: ExpertGraph, task: Task) -> Tensor:
        """Node inputs that do not change within a lifetime: roles, identity, masks."""
        role = state.role
        is_expert = role == int(Role.EXPERT)
        if task.feedback_to == "all":
            receives = is_expert
        else:
            targets = torch.tensor(task.feedback_to, device=role.device, dtype=torch.long)
            receives = is_expert & torch.isin(state.local_index, targets)
        owns = state.output_index >= 0
        one_hot = torch.nn.functional.one_hot(role, 3).to(state.h.dtype)
        return torch.cat(
            [
                receives.unsqueeze(1).to(state.h.dtype),
                owns.unsqueeze(1).to(state.h.dtype),
                one_hot,
                state.identity.to(state.h.dtype),
            ],
            dim=1,
        )

    def write(
        self,
        state: ExpertGraph,
        result: StepResult,
        static: Tensor,
        time: float,
    ) -> Tensor:
        """Node inputs ``[N, F]`` for this step: feedback into the nodes that receive it.

        Raises:
            FloatingPointError: if the task's feedback holds NaN or inf.
        """
        N = state.num_nodes
        receives = static[:, 0]
        if result.feedback is not None:
            if self.check_finite:
                _check_finite("task feedback", result.feedback, state.step)
            feedback = result.feedback[state.batch] * receives
        else:
            feedback = state.h.new_zeros(N)
        signal = state.h.new_zeros(N)
        if result.signal is not None:
            if self.check_finite:
                _check_finite("task signal", result.signal, state.step)
            owner = state.output_index >= 0
            signal = signal.masked_scatter(
                owner, result.signal[state.batch[owner], state.output_index[owner]]
            )
        dyn = torch.stack([feedback, signal, feedback.new_full((N,), time)], dim=1)
        # layout of state.FEATURES: feedback, receives, signal, owns, roles(3), time, identity
        x = torch.cat([dyn[:, :1], static[:, :1], dyn[:, 1:2], static[:, 1:5], dyn[:, 2:]], 1)
        return torch.cat([x, static[:, 5:]], 1)

    def read(self, state: ExpertGraph) -> Tensor:
        """Outputs ``[B, d]``: port values, or the shared head on each output's owner node."""
        owner = (state.output_index >= 0).nonzero().squeeze(1)
        if self.ports is not None:
            values = state.value[owner]
        else:
            values = self.readout(state.h[owner]).squeeze(-1)
        action = state.h.new_zeros(state.num_agents, state.num_outputs)
        return action.index_put((state.batch[owner], state.output_index[owner]), values)

    # -- inner loop ----------------------------------------------------------------------
    def step(
        self, state: ExpertGraph, x: Tensor, record: bool = False
    ) -> tuple[ExpertGraph, StepRecord | None]:
        """One inner step: new edges, ``rounds`` rounds of the shared policy.

        Raises:
            NonFiniteError: (``check_finite``) NaN or inf in the node inputs, the edge
                weights, the messages or the new states, naming the step and round.
        """
        u = self.policy.encode(x)
        if self.check_finite:
            _check_finite("node inputs", u, state.step)
        adj = None if record else self._dense_adjacency(state)
        edge_index = edge_weight = None
        if adj is not None:
            round_fn, args = self._policy_fn("forward_dense"), (adj,)
        else:
            edge_index, edge_weight = self._edges(state)
            if self.check_finite and edge_weight is not None:
                _check_finite("edge weights (attention)", edge_weight, state.step)
            if not record and self._use_csr(edge_index):
                csr = CSRAdjacency.from_edge_index(edge_index, state.num_nodes)
                round_fn, args = self.policy.forward_csr, (csr, edge_weight)
            else:
                round_fn, args = self._policy_fn("forward"), (edge_index, edge_weight)
        messages, states = [], []

        def rounds(h: Tensor, u: Tensor, *args) -> Tensor:
            for r in range(self.rounds):
                prev = h
                if record:
                    h, msg = self.policy(h, u, edge_index, edge_weight, return_messages=True)
                    messages.append(msg.detach())
                    states.append(h.detach())
                else:
                    h = round_fn(h, u, *args)
                if self.check_finite and not _all_finite(h):
                    # name the first non-finite tensor of the round: messages, else states
                    sent = self.policy.send(prev) if isinstance(self.policy, ExpertPolicy) else prev
                    _check_finite("messages", sent, state.step, r)
                    _check_finite("expert states", h, state.step, r)
            return h

        if self.checkpoint and not record and torch.is_grad_enabled():
            h = torch.utils.checkpoint.checkpoint(rounds, state.h, u, *args, use_reentrant=False)
        else:
            h = rounds(state.h, u, *args)
        rec = None
        if record:
            rec = StepRecord(
                step=state.step,
                edge_index=edge_index,
                edge_weight=None if edge_weight is None else edge_weight.detach(),
                messages=messages,
                states=states,
                batch=state.batch,
                role=state.role,
                output_index=state.output_index,
            )
        return state.replace(h=h, step=state.step + 1), rec

    def _edges(self, state: ExpertGraph):
        out = self.topology(state)
        if self._validate_topology:
            out = check_topology_output(out, state, self.topology)
        return out

    def _policy_fn(self, name: str):
        """The policy's round ``name``, compiled on first use when ``compile=True``."""
        fn = getattr(self.policy, name)
        if not self.compile:
            return fn
        compiled = self.__dict__.setdefault("_compiled", {})  # per instance, not saved
        key = (name, id(self.policy))
        if key not in compiled:
            compiled[key] = torch.compile(fn, dynamic=True)
        return compiled[key]

    def _use_csr(self, edge_index: Tensor) -> bool:
        if self.sparse == "edges" or self.policy.lin_recv is not None:
            return False
        return self.sparse == "csr" or edge_index.size(1) >= self.csr_min_edges

    def _dense_adjacency(self, state: ExpertGraph) -> Tensor | None:
        if self.dense == "never" or self.policy.lin_recv is not None:
            return None
        if state.num_agents == 0 or state.num_nodes > state.num_agents * self.dense_max_nodes:
            return None
        adj = self.topology.dense(state)
        if adj is not None and self._validate_topology:
            n = state.num_nodes // state.num_agents
            if tuple(adj.shape) != (state.num_agents, n, n):
                raise ValueError(
                    f"{type(self.topology).__name__}.dense must return [B, n, n] = "
                    f"[{state.num_agents}, {n}, {n}], got {list(adj.shape)}"
                )
        return adj

    def forward(
        self,
        task: Task,
        episode: Episode,
        state: ExpertGraph,
        steps: int,
        record: bool = False,
        detach_feedback: bool = False,
        total_steps: int | None = None,
        result: StepResult | None = None,
        growth: Sequence[GrowthEvent] = (),
        generator: torch.Generator | None = None,
    ) -> Lifetime:
        """Run ``steps`` inner steps of ``state`` against ``episode``.

        A whole lifetime by default; with ``total_steps`` and ``result`` (the previous
        chunk's ``last_result``) a chunk of a longer one that starts at ``state.step``.

        Args:
            task (Task): the task (tells which experts receive feedback).
            episode (Episode): the batch of hidden task instances.
            state (ExpertGraph): initial state (see :meth:`init_state`).
            steps (int): lifetime length :math:`T`.
            record (bool, optional): keep every step's edges, messages and states.
            detach_feedback (bool, optional): stop gradients through the feedback values.
            total_steps (int, optional): length of the whole lifetime (sets ``t / T``).
            result (StepResult, optional): the feedback to write first (default: the
                episode's ``first()``).
            growth (list of GrowthEvent, optional): add experts to every agent before the
                given steps (existing states are kept bit-for-bit).
            generator (torch.Generator, optional): for random identities of grown experts.
        """
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps (T) must be an int >= 1, got {steps!r}")
        if state.num_outputs != episode.num_outputs:
            raise ValueError(
                f"state has d={state.num_outputs} outputs but the episode has "
                f"d={episode.num_outputs}"
            )
        total = steps if total_steps is None else total_steps
        static = self.static_features(state, task)
        if result is None:
            result = _check_result(episode.first(), episode, state)
        actions, errors, records = [], [], []
        for _ in range(steps):
            events = [g for g in growth if g.step == state.step]
            for event in events:
                state = grow(state, event.count, event.mode, None, generator, self.identity)
            if events:
                static = self.static_features(state, task)
            if detach_feedback:
                result = result.detach()
            x = self.write(state, result, static, state.step / total)
            if self.ports is not None:
                pairs = self.ports.pairs(state)
                # experts read the current port values back into their signal input
                x[:, _SIGNAL] = x[:, _SIGNAL] + self.ports.read(state, pairs)
            state, rec = self.step(state, x, record)
            if self.ports is not None:
                state = state.replace(value=self.ports.write(state, pairs))
                if self.check_finite:
                    _check_finite("port values", state.value, state.step - 1)
            action = self.read(state)
            if rec is not None:
                rec.action = action.detach()
            result = _check_result(episode.step(action), episode, state)
            actions.append(action)
            errors.append(result.error)
            if rec is not None:
                records.append(rec)
        return Lifetime(torch.stack(actions), torch.stack(errors), state, records, episode, result)

    def extra_repr(self) -> str:
        """Hyperparameters shown in ``repr``."""
        return (
            f"rounds={self.rounds}, output_ports={self.output_ports}, "
            f"identity={self.identity!r}, dense={self.dense!r}, checkpoint={self.checkpoint}"
        )
