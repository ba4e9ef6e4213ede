"""Episodes from seeds, and an agent's lifetimes on them: no Lightning needed.

:class:`EpisodeRunner` is what evaluation, analysis, figures and every outer loop share:
a seed and a batch size in, a :class:`~badger_graph.Lifetime` out. The same seed always
gives the same episodes, node identities, port addresses and random edges, whatever ran
before. The LightningModule is one user of it; a script can build one from an agent and a
task directly::

    runner = EpisodeRunner(agent, GuessingGame(num_outputs=3), num_experts=3, inner_steps=20)
    life = runner.run(seed=123, batch_size=64)
    life.final_error.mean()
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from badger_graph.agent import Agent, Lifetime
from badger_graph.curriculum import EpisodeSpec
from badger_graph.growth import GrowthEvent
from badger_graph.ports import random_addresses
from badger_graph.seeds import derive, generator
from badger_graph.state import ExpertGraph, Role
from badger_graph.tasks.base import Episode, Task
from badger_graph.topologies.base import available_memory

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


_EMPTY = EpisodeSpec()


class EpisodeRunner:
    """Draw episodes of ``task`` from seeds and run ``agent``'s lifetimes on them.

    Args:
        agent (Agent): the agent (its weights are used as they are; nothing is trained).
        task (Task): the task family.
        num_experts (int): experts per agent unless a call says otherwise.
        inner_steps (int): lifetime length :math:`T`.
        detach_feedback (bool, optional): no gradient through feedback values.
            (default: ``False``)
    """

    def __init__(
        self,
        agent: Agent,
        task: Task,
        num_experts: int,
        inner_steps: int,
        detach_feedback: bool = False,
    ) -> None:
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be an int >= 1, got {num_experts!r}")
        if not isinstance(inner_steps, int) or inner_steps < 1:
            raise ValueError(f"inner_steps (T) must be an int >= 1, got {inner_steps!r}")
        task.check_experts(num_experts)
        agent.topology.check(num_experts + (task.num_outputs if agent.output_ports else 0))
        if not agent.output_ports and num_experts < task.num_outputs:
            raise ValueError(
                f"num_experts={num_experts} < d={task.num_outputs}: expert i owns output i; "
                f"add experts or set output_ports=true"
            )
        self.agent = agent
        self.task = task
        self.num_experts = num_experts
        self.inner_steps = inner_steps
        self.detach_feedback = detach_feedback

    def begin(
        self,
        seed: int,
        batch_size: int,
        num_experts: int | None = None,
        num_outputs: int | Sequence[int] | None = None,
        spec: EpisodeSpec | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[Episode, ExpertGraph]:
        """Episodes and initial state of ``batch_size`` fresh agents drawn from ``seed``.

        ``spec`` (a training batch's curriculum) sets ranges of ``d`` and of the number of
        experts, drawn from the same seed, and fixed port addresses.
        """
        spec = spec or _EMPTY
        if device is None:
            device = self.agent.readout.weight.device
        g = generator(seed)
        if num_outputs is None and spec.num_outputs is not None:
            lo, hi = spec.num_outputs
            if spec.per_agent:
                num_outputs = torch.randint(lo, hi + 1, (batch_size,), generator=g).tolist()
            else:
                num_outputs = int(torch.randint(lo, hi + 1, (1,), generator=g))
        if num_experts is None and spec.num_experts is not None:
            lo, hi = spec.num_experts
            if spec.experts_scale == "log":
                # log-uniform over [lo, hi + 1): floor(exp(u)), u ~ U(log lo, log(hi + 1))
                u = torch.rand(1, generator=g, dtype=torch.float64)
                n = math.exp(math.log(lo) + float(u) * (math.log(hi + 1) - math.log(lo)))
                num_experts = min(hi, int(n))
            else:
                num_experts = int(torch.randint(lo, hi + 1, (1,), generator=g))
        if num_experts is None:
            num_experts = self.num_experts
        elif not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be an int >= 1, got {num_experts!r}")
        check_nodes_fit(batch_size, num_experts, self.agent.policy.hidden_channels, device)
        self.agent.topology.reseed(derive(seed, "topology", bits=32))
        episode = self.task.reset(batch_size, generator=g, num_outputs=num_outputs, device=device)
        addresses = None
        ports = self.agent.ports
        if ports is not None and spec.address_seed is not None:
            fixed = generator(spec.address_seed, "addresses")
            addresses = random_addresses(
                1, episode.num_outputs, ports.address_channels, fixed
            ).expand(batch_size, -1, -1)
        if self.agent.rounds < 2 and getattr(episode, "num_inputs", 0):
            warnings.warn(
                f"{type(self.task).__name__} shows observations on input nodes but the agent "
                f"runs rounds={self.agent.rounds}: an input node reads the observation in the "
                "step's first round, after its message has left, so the outputs of a step "
                "cannot depend on that step's observation; use rounds >= 2",
                stacklevel=2,
            )
        dims = episode.dims
        state = self.agent.init_state(
            num_experts,
            episode.num_outputs if dims is None else dims.tolist(),
            num_agents=batch_size,
            generator=g,
            device=device,
            addresses=addresses,
            num_inputs=_inputs(episode),
        )
        return episode, state

    def baselines(
        self,
        seed: int,
        batch_size: int,
        num_outputs: int | None = None,
        num_experts: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Errors ``[T, B]`` of each of the task's baselines on the episodes of ``seed``.

        The episodes are drawn exactly as :meth:`run` draws them for the agent (before the
        agent's state, so ``num_experts`` does not change them), so the agent and every
        baseline face the same hidden parameters and random outcomes.
        """
        out = {}
        for name, play in self.task.baselines().items():
            episode, _ = self.begin(seed, batch_size, num_experts, num_outputs, device="cpu")
            out[name] = play(episode, self.inner_steps)
        return out

    def growth_events(
        self, seed: int, state: ExpertGraph, spec: EpisodeSpec | None
    ) -> list[GrowthEvent]:
        """Growth events of a training batch from its spec's ``GrowthCurriculum`` (if any)."""
        if spec is None or spec.growth is None:
            return []
        g = generator(seed, "growth")
        experts = int((state.role[state.batch == 0] == int(Role.EXPERT)).sum())
        return spec.growth.draw(g, experts, self.inner_steps)

    def run(
        self,
        seed: int,
        batch_size: int,
        num_experts: int | None = None,
        num_outputs: int | Sequence[int] | None = None,
        record: bool = False,
        growth: Sequence[GrowthEvent] = (),
        spec: EpisodeSpec | None = None,
        device: torch.device | str | None = None,
        agents: tuple[int, int] | None = None,
    ) -> Lifetime:
        """Run ``batch_size`` fresh lifetimes drawn from ``seed``.

        Args:
            seed (int): episode seed.
            batch_size (int): agents B.
            num_experts (int, optional): experts per agent (default: the runner's).
            num_outputs (int, optional): d (default: the task's).
            record (bool, optional): keep every step's edges, messages and states.
            growth (list of GrowthEvent, optional): grow every agent mid-lifetime.
            spec (EpisodeSpec, optional): a training batch's curriculum settings.
            device (torch.device, optional): where the episodes live (default: the agent's).
            agents (tuple of two ints, optional): run only agents ``start..stop-1`` of the
                batch (data parallel: each process its share of the same episodes).
        """
        episode, state = self.begin(seed, batch_size, num_experts, num_outputs, spec, device)
        if agents is not None:
            episode, state = episode.agent_range(*agents), state.agent_range(*agents)
        growth = [*growth, *self.growth_events(seed, state, spec)]
        return self.agent(
            self.task,
            episode,
            state,
            self.inner_steps,
            record=record,
            detach_feedback=self.detach_feedback,
            growth=growth,
            generator=generator(seed, "identities"),
        )


def _inputs(episode: Episode) -> int | list[int]:
    """Input port nodes per agent that ``episode`` declares (``m``, or one per agent)."""
    m = getattr(episode, "num_inputs", 0)
    if not isinstance(m, int) or m < 0:
        raise ValueError(f"{type(episode).__name__}.num_inputs must be an int >= 0, got {m!r}")
    dims = getattr(episode, "input_dims", None)
    return m if dims is None else [int(x) for x in dims.tolist()]
