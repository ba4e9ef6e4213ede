r"""The agent: shared policy + topology + read-out (its lifetimes: :mod:`.lifetime`)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from badger_graph import lifetime
from badger_graph.adjacency import CSRAdjacency
from badger_graph.errors import all_finite, check_finite
from badger_graph.execution import CompiledFunctions, Execution, adjacency
from badger_graph.growth import GrowthEvent
from badger_graph.policy import ExpertPolicy, Policy
from badger_graph.ports import AddressedPorts, PortLinks, random_addresses
from badger_graph.records import Lifetime, StepRecord
from badger_graph.seeds import generator as seeded
from badger_graph.state import FEATURES, ExpertGraph, Role
from badger_graph.tasks.base import Episode, StepResult, Task
from badger_graph.topologies.base import Topology, available_memory

#: bytes per node per hidden channel a lifetime needs at least (states, inputs, messages
#: and the GRU's gates of a step, in float32)
BYTES_PER_NODE_CHANNEL = 4 * 8


def check_nodes_fit(batch_size: int, num_experts: int, hidden: int, device) -> None:
    """Refuse up front a batch of agents whose states cannot fit in memory, naming it.

    Raises:
        MemoryError: before allocating, naming the agents, the experts and the memory.
    """
    need = batch_size * num_experts * hidden * BYTES_PER_NODE_CHANNEL
    free = available_memory(torch.device(device))
    if free is not None and need > free:
        raise MemoryError(
            f"{batch_size:,} agents of {num_experts:,} experts (hidden {hidden}) need at least "
            f"{need / 2**30:.1f} GiB, but only {free / 2**30:.1f} GiB are available on "
            f"{device}; run fewer agents at once (--data.eval_batch_size, --data.batch_size, "
            f"--episodes) or fewer experts"
        )


def _inputs(episode: Episode) -> int | list[int]:
    """Input port nodes per agent that ``episode`` declares (``m``, or one per agent)."""
    m = episode.num_inputs
    if not isinstance(m, int) or m < 0:
        raise ValueError(f"{type(episode).__name__}.num_inputs must be an int >= 0, got {m!r}")
    dims = episode.input_dims
    return m if dims is None else [int(x) for x in dims.tolist()]


class Agent(nn.Module):
    r"""A BADGER agent: experts (graph nodes) that share one :class:`ExpertPolicy`.

    One inner step writes the task's feedback into the nodes, asks the topology for this
    step's edges, applies the policy for ``rounds`` rounds with the same weights, and reads
    the output dimensions out of the nodes that own them through one shared linear head.
    No parameter is changed during a lifetime.

    Args:
        policy (Policy): the shared expert policy (an :class:`ExpertPolicy`, a
            :class:`~badger_graph.policies.RolePolicies`, or a user's :class:`Policy`).
        topology (Topology): edge generator, called every inner step.
        rounds (int, optional): communication rounds per inner step :math:`k`.
            (default: :obj:`1`)
        output_ports (bool, optional): read outputs from ``d`` dedicated port nodes instead of
            from experts ``0..d-1``. (default: ``False``)
        identity (str, optional): ``"index"`` or ``"random"`` node identities.
            (default: ``"index"``)
        ports (AddressedPorts, optional): addressed output ports (Fig. 7): outputs are port
            values that experts write and read by attention over random port addresses;
            implies ``output_ports``. (default: ``None``)
        execution (Execution, optional): how the rounds run (dense / CSR / per-edge paths,
            compile, activation checkpointing, finite checks); never changes results.
            (default: ``Execution()``)
    """

    def __init__(
        self,
        policy: Policy,
        topology: Topology,
        rounds: int = 1,
        output_ports: bool = False,
        identity: str = "index",
        ports: AddressedPorts | None = None,
        execution: Execution | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds (k) must be an int >= 1, got {rounds!r}")
        if identity not in ("index", "random"):
            raise ValueError(f"identity must be 'index' or 'random', got {identity!r}")
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
        self.policy = policy
        self.topology = topology
        self.rounds = rounds
        self.output_ports = output_ports
        self.identity = identity
        self.execution = execution if execution is not None else Execution()
        if ports is not None:
            self.output_ports = True
        self.ports = ports
        self.readout = nn.Linear(policy.hidden_channels, 1)
        #: this agent's compiled steps and rounds (built on first use, never copied)
        self.runtime = CompiledFunctions()

    # -- the Learner interface (see badger_graph.learner) ---------------------------------
    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.readout.weight.device

    def check_task(self, task: Task, num_experts: int) -> None:
        """Raise if agents of ``num_experts`` experts cannot play ``task``."""
        task.check_experts(num_experts)
        self.topology.check(num_experts + (task.num_outputs if self.output_ports else 0))
        if not self.output_ports and num_experts < task.num_outputs:
            raise ValueError(
                f"num_experts={num_experts} < d={task.num_outputs}: expert i owns output i; "
                f"add experts or set output_ports=true"
            )

    def experts_for(self, num_outputs: int, num_experts: int) -> int:
        """Experts to play ``num_outputs`` outputs (without ports expert i owns output i)."""
        return num_experts if self.output_ports else max(num_experts, num_outputs)

    def reseed(self, seed: int) -> None:
        """Re-seed the random topology (a function of the batch's seed)."""
        self.topology.reseed(seed)

    def begin(
        self,
        episode: Episode,
        num_experts: int,
        generator: torch.Generator,
        device: torch.device | str,
        address_seed: int | None = None,
    ) -> ExpertGraph:
        """The initial state of agents of ``num_experts`` experts for ``episode``.

        ``address_seed`` (a curriculum's) fixes the port addresses for the whole batch.

        Raises:
            MemoryError: before allocating, when the agents' states cannot fit in memory.
        """
        B = episode.num_agents
        check_nodes_fit(B, num_experts, self.policy.hidden_channels, device)
        addresses = None
        if self.ports is not None and address_seed is not None:
            fixed = seeded(address_seed, "addresses")
            addresses = random_addresses(
                1, episode.num_outputs, self.ports.address_channels, fixed
            ).expand(B, -1, -1)
        if self.rounds < 2 and episode.num_inputs:
            warnings.warn(
                f"{type(episode).__name__} shows observations on input nodes but the agent "
                f"runs rounds={self.rounds}: an input node reads the observation in the "
                "step's first round, after its message has left, so the outputs of a step "
                "cannot depend on that step's observation; use rounds >= 2",
                stacklevel=3,
            )
        dims = episode.dims
        return self.init_state(
            num_experts,
            episode.num_outputs if dims is None else dims.tolist(),
            num_agents=B,
            generator=generator,
            device=device,
            addresses=addresses,
            num_inputs=_inputs(episode),
        )

    # -- state ---------------------------------------------------------------------------
    def init_state(
        self,
        num_experts: int | Sequence[int],
        num_outputs: int | Sequence[int],
        num_agents: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        addresses: Tensor | None = None,
        num_inputs: int | Sequence[int] = 0,
    ) -> ExpertGraph:
        """Fresh state of a batch of agents (zero internal states).

        With addressed ports, ``addresses`` ``[B, d, A]`` fixes the port addresses; by
        default fresh random ones are drawn from ``generator``. ``num_inputs`` adds that
        many input port nodes per agent (see :meth:`ExpertGraph.create`).
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
            num_inputs=num_inputs,
        )

    def constant_features(
        self, state: ExpertGraph, task: Task, episode: Episode | None = None
    ) -> dict[str, Tensor]:
        """Node input columns that do not change within a lifetime, by feature name.

        The nodes that receive feedback are the episode's ``feedback_to`` if it names them
        (a mixture's family), else the task's.
        """
        role = state.role
        dtype = state.h.dtype
        is_expert = role == int(Role.EXPERT)
        feedback_to = task.feedback_to
        if episode is not None and episode.feedback_to is not None:
            feedback_to = episode.feedback_to
        if feedback_to == "all":
            receives = is_expert
        elif feedback_to == "nodes":
            receives = torch.ones_like(is_expert)
        else:
            targets = torch.tensor(feedback_to, device=role.device, dtype=torch.long)
            receives = is_expert & torch.isin(state.local_index, targets)
        return {
            "receives_feedback": receives.to(dtype),
            "owns_output": (state.output_index >= 0).to(dtype),
            "is_expert": is_expert.to(dtype),
            "is_input": (role == int(Role.INPUT)).to(dtype),
            "is_output": (role == int(Role.OUTPUT)).to(dtype),
        }

    def write(
        self,
        state: ExpertGraph,
        result: StepResult,
        constant: dict[str, Tensor],
        time: float | Tensor,
        links: PortLinks | None = None,
        owners: tuple[Tensor, Tensor, Tensor] | None = None,
        inputs: tuple[Tensor, Tensor, Tensor] | None = None,
        check: bool | None = None,
    ) -> Tensor:
        """Node inputs ``[N, F]`` for this step: the columns of :data:`FEATURES` by name.

        The task's feedback goes into the nodes that receive it and each output's signal
        into the node that owns the output (plus, with addressed ports, the port values
        the expert reads over ``links``, see :meth:`AddressedPorts.links`); the node
        identities follow. ``time`` is the step's ``t / T`` (a float or a 0-d tensor);
        ``owners`` and ``inputs`` (from :meth:`owners` and :meth:`inputs`) may be passed in
        when the graph has not changed; ``check`` overrides ``execution.check_finite``.

        Raises:
            NonFiniteError: if the task's feedback or signal holds NaN or inf.
        """
        N = state.num_nodes
        check = self.execution.check_finite if check is None else check
        cols = dict(constant)
        if result.feedback is not None:
            if check:
                check_finite("task feedback", result.feedback, state.step)
            cols["feedback"] = result.feedback[state.batch] * constant["receives_feedback"]
        else:
            cols["feedback"] = state.h.new_zeros(N)
        signal = state.h.new_zeros(N)
        if result.signal is not None:
            if check:
                check_finite("task signal", result.signal, state.step)
            owner, agent, column = owners if owners is not None else self.owners(state)
            signal = signal.index_put((owner,), result.signal[agent, column])
        if self.ports is not None:
            # experts read the current port values back into their signal input
            links = self.ports.links(state) if links is None else links
            signal = signal + self.ports.read(state, links)
        if result.observation is not None:
            if check:
                check_finite("task observation", result.observation, state.step)
            node, agent, column = inputs if inputs is not None else self.inputs(state)
            signal = signal.index_put((node,), result.observation[agent, column])
        cols["signal"] = signal
        if isinstance(time, Tensor):
            cols["time"] = time.to(state.h.dtype).expand(N)
        else:
            cols["time"] = state.h.new_full((N,), time)
        x = torch.stack([cols[name] for name in FEATURES], dim=1)
        return torch.cat([x, state.identity.to(x.dtype)], dim=1)

    def read(
        self, state: ExpertGraph, owners: tuple[Tensor, Tensor, Tensor] | None = None
    ) -> Tensor:
        """Outputs ``[B, d]``: port values, or the shared head on each output's owner node.

        ``owners`` (from :meth:`owners`) may be passed in when the graph has not changed.
        """
        owner, agent, column = owners if owners is not None else self.owners(state)
        if self.ports is not None:
            values = state.value[owner]
        else:
            values = self.readout(state.h[owner]).squeeze(-1)
        action = state.h.new_zeros(state.num_agents, state.num_outputs)
        return action.index_put((agent, column), values)

    @staticmethod
    def owners(state: ExpertGraph) -> tuple[Tensor, Tensor, Tensor]:
        """Nodes that own an output, their agents and output columns (fixed between growths)."""
        owner = (state.output_index >= 0).nonzero().squeeze(1)
        return owner, state.batch[owner], state.output_index[owner]

    @staticmethod
    def inputs(state: ExpertGraph) -> tuple[Tensor, Tensor, Tensor]:
        """Input nodes, their agents and observation columns (fixed between growths)."""
        node = state.is_input.nonzero().squeeze(1)
        return node, state.batch[node], state.input_index[node]

    # -- inner loop ----------------------------------------------------------------------
    def step(
        self,
        state: ExpertGraph,
        x: Tensor,
        record: bool = False,
        check: bool | None = None,
        edges: tuple | None = None,
    ) -> tuple[ExpertGraph, StepRecord | None]:
        """One inner step: this step's edges, then ``rounds`` rounds of the shared policy.

        ``check`` overrides ``execution.check_finite``; ``edges`` is this step's
        ``(adj, edge_weight, edge_index)`` when already built (a fixed-edges topology's edges,
        once per lifetime), else the topology is asked.

        Raises:
            NonFiniteError: (``check_finite``) NaN or inf in the node inputs, the edge
                weights, the messages or the new states, naming the step and round.
        """
        ex = self.execution
        check = ex.check_finite if check is None else check
        u = self.policy.encode(x)
        if check:
            check_finite("node inputs", u, state.step)
        if edges is None:
            edges = adjacency(self.policy, self.topology, state, ex, record)
        adj, edge_weight, edge_index = edges
        if check and edge_weight is not None:
            name = f"edge weights of {type(self.topology).__name__}"
            check_finite(name, edge_weight, state.step)
        round_fn = self._round_fn(adj)
        messages, states = [], []

        def rounds(h: Tensor, u: Tensor, edge_weight: Tensor | None) -> Tensor:
            for r in range(self.rounds):
                prev = h
                if record:
                    h, msg = round_fn(h, u, adj, edge_weight, return_messages=True)
                    messages.append(msg.detach())
                    states.append(h.detach())
                else:
                    h = round_fn(h, u, adj, edge_weight)
                if check and not all_finite(h):
                    # name the first non-finite tensor of the round: messages, else states
                    sent = self.policy.send(prev) if isinstance(self.policy, ExpertPolicy) else prev
                    check_finite("messages", sent, state.step, r)
                    check_finite("expert states", h, state.step, r)
            return h

        if ex.checkpoint and not record and torch.is_grad_enabled():
            h = torch.utils.checkpoint.checkpoint(
                rounds, state.h, u, edge_weight, use_reentrant=False
            )
        else:
            h = rounds(state.h, u, edge_weight)
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

    def _round_fn(self, adj):
        """The policy's round, compiled on first use with ``compile`` (not for CSR)."""
        if not self.execution.compile or isinstance(adj, CSRAdjacency):
            return self.policy
        compiled = self.runtime.rounds
        key = (type(adj).__name__, id(self.policy))
        if key not in compiled:
            compiled[key] = torch.compile(self.policy.forward, dynamic=True)
        return compiled[key]

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
        """Run ``steps`` inner steps of ``state`` against ``episode`` (:func:`.lifetime.run`).

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
        return lifetime.run(
            self,
            task,
            episode,
            state,
            steps,
            record,
            detach_feedback,
            total_steps,
            result,
            growth,
            generator,
        )

    def extra_repr(self) -> str:
        """Hyperparameters shown in ``repr``."""
        return (
            f"rounds={self.rounds}, output_ports={self.output_ports}, "
            f"identity={self.identity!r}, execution={self.execution}"
        )
