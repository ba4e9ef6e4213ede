"""What a lifetime leaves behind: per-step actions and errors, and opt-in communication."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from badger_graph.state import ExpertGraph
from badger_graph.tasks.base import Episode, StepResult


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
