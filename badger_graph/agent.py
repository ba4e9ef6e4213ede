r"""The agent: shared policy + topology + read-out (its lifetimes: :mod:`.lifetime`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from badger_graph import lifetime
from badger_graph.errors import check_finite
from badger_graph.execution import CompiledFunctions, Execution, adjacency
from badger_graph.policy import Policy, check_compatible
from badger_graph.ports import AddressedPorts, PortLinks, random_addresses
from badger_graph.records import Lifetime, LifetimeCall, StepRecord
from badger_graph.rounds import run_rounds
from badger_graph.state import FEATURES, ExpertGraph
from badger_graph.tasks.base import Episode, StepResult, Task
from badger_graph.topologies.base import Topology


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
        readout_norm (bool, optional): layer-normalise an owner's state before the shared
            head, so class scores and bids start at unit scale whatever the state's size
            (docs/comparison.md measures what it does to training); not with ``ports``, whose
            outputs are port values. (default: ``False``)
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
        readout_norm: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds (k) must be an int >= 1, got {rounds!r}")
        if identity not in ("index", "random"):
            raise ValueError(f"identity must be 'index' or 'random', got {identity!r}")
        if readout_norm and ports is not None:
            raise ValueError(
                "readout_norm=True normalises the state an output's owner reads out, but with "
                "ports the outputs are the port values: there is no read-out to normalise"
            )
        check_compatible(policy, topology, ports)
        self.policy = policy
        self.topology = topology
        self.rounds = rounds
        self.identity = identity
        self.execution = execution if execution is not None else Execution()
        self.output_ports = output_ports or ports is not None
        self.ports = ports
        self.readout = nn.Linear(policy.hidden_channels, 1)
        #: the state's layer norm before the head (``readout_norm=True``), else ``None``
        self.readout_norm = nn.LayerNorm(policy.hidden_channels) if readout_norm else None
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

    def with_rounds(self, rounds: int) -> Agent:
        """This agent with ``rounds`` rounds per step: the same weights, topology and ports.

        A shallow copy (its parameters are this agent's, so gradients reach them) with its own
        compiled functions; ``self`` when ``rounds`` is already this agent's. What a
        :class:`~badger_graph.curriculum.RangeCurriculum` on ``rounds`` plays a batch with.
        """
        if not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds (k) must be an int >= 1, got {rounds!r}")
        if rounds == self.rounds:
            return self
        other = copy.copy(self)
        other.rounds = rounds
        other.runtime = CompiledFunctions()
        return other

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
        """The initial state of agents of ``num_experts`` experts: :func:`.lifetime.begin`."""
        return lifetime.begin(self, episode, num_experts, generator, device, address_seed)

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
        feedback_to = task.feedback_to
        if episode is not None and episode.feedback_to is not None:
            feedback_to = episode.feedback_to
        return state.constant_columns(feedback_to)

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
        ``owners`` and ``inputs`` (:meth:`ExpertGraph.output_owners`, ``input_nodes``) may
        be passed in when the graph has not changed; ``check`` overrides
        ``execution.check_finite``.

        Raises:
            NonFiniteError: if the task's feedback or signal holds NaN or inf.
        """
        N = state.num_nodes
        check = self.execution.check_finite if check is None else check
        if check:
            for name in ("feedback", "signal", "observation"):
                if getattr(result, name) is not None:
                    check_finite(f"task {name}", getattr(result, name), state.step)
        cols = dict(constant)
        feedback = result.feedback
        receives = constant["receives_feedback"]
        cols["feedback"] = (
            state.h.new_zeros(N) if feedback is None else feedback[state.batch] * receives
        )
        signal = state.h.new_zeros(N)
        if result.signal is not None:
            owner, agent, column = owners if owners is not None else state.output_owners()
            signal = signal.index_put((owner,), result.signal[agent, column])
        if self.ports is not None:
            # experts read the current port values back into their signal input
            links = self.ports.links(state) if links is None else links
            signal = signal + self.ports.read(state, links)
        if result.observation is not None:
            node, agent, column = inputs if inputs is not None else state.input_nodes()
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

        ``owners`` (:meth:`ExpertGraph.output_owners`) may be passed in when the graph has
        not changed.
        """
        owner, agent, column = owners if owners is not None else state.output_owners()
        if self.ports is not None:
            values = state.value[owner]
        else:
            h = state.h[owner]
            if self.readout_norm is not None:
                h = self.readout_norm(h)
            values = self.readout(h).squeeze(-1)
        action = state.h.new_zeros(state.num_agents, state.num_outputs)
        return action.index_put((agent, column), values)

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
        h, messages, states = run_rounds(
            self, state.h, u, adj, edge_weight, state.step, record, check
        )
        rec = (
            StepRecord.of_step(state, edge_index, edge_weight, messages, states) if record else None
        )
        return state.replace(h=h, step=state.step + 1), rec

    def forward(self, call: LifetimeCall) -> Lifetime:
        """Play ``call`` (:class:`~badger_graph.records.LifetimeCall`): :func:`.lifetime.run`.

        A whole lifetime by default; with ``total_steps`` and ``result`` (the previous
        chunk's ``last_result``: :meth:`LifetimeCall.next`) a chunk of a longer one that
        starts at ``call.state.step``.
        """
        return lifetime.run(self, call)

    def extra_repr(self) -> str:
        """Hyperparameters shown in ``repr``."""
        return (
            f"rounds={self.rounds}, output_ports={self.output_ports}, "
            f"identity={self.identity!r}, readout_norm={self.readout_norm is not None}, "
            f"execution={self.execution}"
        )
