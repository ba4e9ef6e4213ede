"""What a lifetime leaves behind: per-step actions and errors, and opt-in communication."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from badger_graph.state import ExpertGraph
from badger_graph.tasks.base import Episode, StepResult, Task

if TYPE_CHECKING:
    import torch

    from badger_graph.growth import GrowthEvent


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

    @classmethod
    def of_step(
        cls,
        state: ExpertGraph,
        edge_index: Tensor,
        edge_weight: Tensor | None,
        messages: list[Tensor],
        states: list[Tensor],
    ) -> StepRecord:
        """The record of the step that starts from ``state`` (tensors detached)."""
        return cls(
            step=state.step,
            edge_index=edge_index,
            edge_weight=None if edge_weight is None else edge_weight.detach(),
            messages=messages,
            states=states,
            batch=state.batch,
            role=state.role,
            output_index=state.output_index,
        )


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


@dataclasses.dataclass(frozen=True)
class LifetimeCall:
    """One call of a learner: play ``steps`` inner steps of ``episode`` from ``state``.

    What every :class:`~badger_graph.learner.Learner` takes (``learner(call)``) and returns
    a :class:`Lifetime` for. A whole lifetime by default; a chunk of a longer one (truncated
    backpropagation, a snapshot resumed) is a call with ``total_steps`` and the previous
    chunk's ``result``: :meth:`next` builds it from the previous chunk's lifetime.

    Attributes:
        task (Task): the task the episodes come from.
        episode (Episode): the episodes, one per agent.
        state: where the learners start (what ``learner.begin`` returned, or a previous
            chunk's ``Lifetime.state``); its ``step`` is the first step played.
        steps (int): inner steps to play (``T`` of a whole lifetime).
        record (bool): keep every step's edges, messages and states (BADGER only).
        detach_feedback (bool): cut the task's answers from the autograd graph.
        total_steps (int, optional): the whole lifetime's ``T`` when this call is a chunk
            (the step time is ``t / total_steps``). (default: ``steps``)
        result (StepResult, optional): the task's answer to the previous action, to
            continue from (default: the episode's first answer).
        growth (list of GrowthEvent): experts added mid-lifetime (BADGER only).
        generator (torch.Generator, optional): draws the identities of grown experts.
    """

    task: Task
    episode: Episode
    state: Any
    steps: int
    record: bool = False
    detach_feedback: bool = False
    total_steps: int | None = None
    result: StepResult | None = None
    growth: Sequence[GrowthEvent] = ()
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise ValueError(f"steps (T) must be an int >= 1, got {self.steps!r}")
        total = self.total_steps
        if total is not None and (not isinstance(total, int) or total < self.steps):
            raise ValueError(f"total_steps must be an int >= steps ({self.steps}), got {total!r}")

    @property
    def total(self) -> int:
        """The whole lifetime's ``T`` (``total_steps``, else ``steps``)."""
        return self.steps if self.total_steps is None else self.total_steps

    def replace(self, **changes) -> LifetimeCall:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def next(self, life: Lifetime, steps: int) -> LifetimeCall:
        """The call that plays the ``steps`` steps after ``life`` (this call's lifetime)."""
        return self.replace(
            state=life.state, result=life.last_result, steps=steps, total_steps=self.total
        )
