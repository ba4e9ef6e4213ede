"""A mixture of task families: one family drawn per batch of episodes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from badger_graph.tasks.base import Episode, Task


class TaskMixture(Task):
    """Draw a task family per batch (from the batch's generator), then its episodes.

    Every family must fit the agent: with addressed output ports any number of outputs
    works; without, the agent needs at least as many experts as the widest family has
    outputs. The drawn episode carries ``family`` (the family's index). Feedback goes to
    the experts the mixture names (the families' own ``feedback_to`` are not used).

    Args:
        tasks (list of Task): the families.
        weights (list of float, optional): how often each is drawn. (default: equal)
        feedback_to (list of int, "all" or "nodes", optional): who gets the scalar
            feedback, for every family (see :class:`~badger_graph.tasks.Task`).
            (default: ``"all"``)
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        weights: Sequence[float] | None = None,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(feedback_to)
        tasks = list(tasks)
        if not tasks or not all(isinstance(t, Task) for t in tasks):
            raise ValueError(f"tasks must be a non-empty list of Task, got {tasks!r}")
        weights = [1.0] * len(tasks) if weights is None else [float(w) for w in weights]
        if len(weights) != len(tasks) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"weights must be {len(tasks)} non-negative numbers with a positive sum, "
                f"got {weights}"
            )
        self.tasks = tasks
        self.weights = torch.tensor(weights) / sum(weights)
        self.num_outputs = max(t.num_outputs for t in tasks)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> Episode:
        """Draw a family, then ``batch_size`` of its episodes from the same generator."""
        family = int(torch.multinomial(self.weights, 1, generator=generator))
        episode = self.tasks[family].reset(batch_size, generator, num_outputs, device)
        episode.family = family
        return episode

    def chance_level(self, num_outputs: int | None = None) -> float:
        """The largest chance level of the families (used to spot a diverging run)."""
        return max(t.chance_level() for t in self.tasks)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({', '.join(map(repr, self.tasks))})"
