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
from collections.abc import Collection, Sequence

import torch

from badger_graph.agent import Agent
from badger_graph.curriculum import EpisodeSpec
from badger_graph.growth import GrowthEvent
from badger_graph.learner import Learner
from badger_graph.records import Lifetime, LifetimeCall
from badger_graph.seeds import derive, generator
from badger_graph.state import ExpertGraph
from badger_graph.tasks.base import BaselineUnavailable, Episode, Task

_EMPTY = EpisodeSpec()


class EpisodeRunner:
    """Draw episodes of ``task`` from seeds and run ``agent``'s lifetimes on them.

    Args:
        agent (Learner): the learned learner: a BADGER :class:`~badger_graph.Agent` or another
            :class:`~badger_graph.learner.Learner` such as
            :class:`~badger_graph.learner.RecurrentLearner` (its weights are used as they
            are; nothing is trained).
        task (Task): the task family.
        num_experts (int): experts per agent unless a call says otherwise.
        inner_steps (int): lifetime length :math:`T`.
        detach_feedback (bool, optional): no gradient through feedback values.
            (default: ``False``)
    """

    def __init__(
        self,
        agent: Learner,
        task: Task,
        num_experts: int,
        inner_steps: int,
        detach_feedback: bool = False,
    ) -> None:
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be an int >= 1, got {num_experts!r}")
        if not isinstance(inner_steps, int) or inner_steps < 1:
            raise ValueError(f"inner_steps (T) must be an int >= 1, got {inner_steps!r}")
        agent.check_task(task, num_experts)
        self.agent = agent
        self.task = task
        self.num_experts = num_experts
        self.inner_steps = inner_steps
        self.detach_feedback = detach_feedback

    def replace(self, **changes) -> EpisodeRunner:
        """A runner of the same agent (shared, not copied) with some arguments changed.

        ``runner.replace(task=OnlineRegression(8), inner_steps=40)`` plays another task or
        lifetime without touching ``runner``; the agent is checked against the new task
        (a fixed-width learner refuses a wider one: :class:`~badger_graph.errors.TaskTooWideError`).
        """
        unknown = sorted(set(changes) - {"task", "num_experts", "inner_steps", "detach_feedback"})
        if unknown:
            raise TypeError(f"EpisodeRunner.replace: unknown arguments {unknown}")
        args = {
            "task": self.task,
            "num_experts": self.num_experts,
            "inner_steps": self.inner_steps,
            "detach_feedback": self.detach_feedback,
            **changes,
        }
        return type(self)(self.agent, **args)

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
            device = self.agent.device
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
        self.agent.reseed(derive(seed, "topology", bits=32))
        if spec.family_weights is None:
            episode = self.task.reset(batch_size, g, num_outputs, device)
        else:  # a FamilyCurriculum (checked against the mixture by BadgerModule)
            episode = self.task.reset(batch_size, g, num_outputs, device, spec.family_weights)
        state = self.agent.begin(episode, num_experts, g, device, spec.address_seed)
        return episode, state

    def baselines(
        self,
        seed: int,
        batch_size: int,
        num_outputs: int | None = None,
        num_experts: int | None = None,
        names: Collection[str] | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """Errors ``[T, B]`` of the task's baselines (all, or ``names``) on ``seed``'s episodes.

        The episodes are drawn exactly as :meth:`run` draws them for the agent (before the
        agent's state, so ``num_experts`` does not change them), so the agent and every
        baseline face the same hidden parameters and random outcomes. A baseline the task
        cannot compute here (:class:`~badger_graph.tasks.base.BaselineUnavailable`, e.g. an
        exact optimum too large) is ``None``.
        """
        out: dict[str, torch.Tensor | None] = {}
        for name, play in self.task.baselines().items():
            if names is not None and name not in names:
                continue
            episode, _ = self.begin(seed, batch_size, num_experts, num_outputs, device="cpu")
            try:
                out[name] = play(episode, self.inner_steps)
            except BaselineUnavailable:
                out[name] = None
        return out

    def growth_events(
        self, seed: int, state: ExpertGraph, spec: EpisodeSpec | None
    ) -> list[GrowthEvent]:
        """Growth events of a training batch from its spec's ``GrowthCurriculum`` (if any)."""
        if spec is None or spec.growth is None:
            return []
        g = generator(seed, "growth")
        experts = int(state.num_experts()[0])  # the agents of a batch start alike
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
        call = LifetimeCall(
            self.task,
            episode,
            state,
            self.inner_steps,
            record=record,
            detach_feedback=self.detach_feedback,
            growth=growth,
            generator=generator(seed, "identities"),
        )
        return self.learner_for(seed, spec)(call)

    def learner_for(self, seed: int, spec: EpisodeSpec | None) -> Learner:
        """The learner that plays a batch: the agent, with the spec's rounds if it sets them."""
        if spec is None or spec.rounds is None:
            return self.agent
        if not isinstance(self.agent, Agent):
            raise ValueError(
                f"a curriculum on rounds needs a BADGER Agent, not {type(self.agent).__name__}"
            )
        lo, hi = spec.rounds
        rounds = (
            lo
            if lo == hi
            else int(torch.randint(lo, hi + 1, (1,), generator=generator(seed, "rounds")))
        )
        return self.agent.with_rounds(rounds)
