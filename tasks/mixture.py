"""A mixture of task families: one family drawn per batch of episodes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from badger_graph.tasks.base import Episode, StepResult, Task


class CodedEpisode(Episode):
    """An episode whose observation starts with a code of its family (``F`` columns).

    Every :class:`~badger_graph.tasks.StepResult` of ``inner`` gets the code prepended to
    its observation (the family's own observation, if any, follows), so the agent has
    ``F`` more input port nodes. The family's own attributes (hidden parameters, labels)
    stay on ``inner``: a :class:`FamilyView`'s metrics and baselines read that episode.
    """

    def __init__(self, inner: Episode, code: Tensor) -> None:
        self.inner = inner
        self.code = code  # [F]
        self.num_agents, self.num_outputs = inner.num_agents, inner.num_outputs
        self.dims = inner.dims
        self.num_inputs = len(code) + inner.num_inputs
        self.input_dims = None if inner.input_dims is None else inner.input_dims + len(code)
        self.feedback_to = inner.feedback_to
        self.target = inner.target  # what `badger rollout` draws, where the family has one

    def _coded(self, result: StepResult) -> StepResult:
        B = self.num_agents
        code = self.code.to(result.error.device).expand(B, -1)
        obs = code if result.observation is None else torch.cat([code, result.observation], 1)
        return StepResult(result.error, result.feedback, result.signal, obs)

    def first(self) -> StepResult:
        """The inner episode's first result, coded."""
        self.inner.step_index = self.step_index
        return self._coded(self.inner.first())

    def step(self, action: Tensor) -> StepResult:
        """The inner episode's step, coded."""
        self.inner.step_index = self.step_index
        return self._coded(self.inner.step(action))


def family_episode(episode: Episode) -> Episode:
    """The family's own episode: ``inner`` of a :class:`CodedEpisode`, else ``episode``."""
    return episode.inner if isinstance(episode, CodedEpisode) else episode


class TaskMixture(Task):
    """Draw a task family per batch (from the batch's generator), then its episodes.

    Every family must fit the agent: with addressed output ports any number of outputs
    works; without, the agent needs at least as many experts as the widest family has
    outputs. The drawn episode carries ``family`` (the family's index).

    Args:
        tasks (list of Task): the families.
        weights (list of float, optional): how often each is drawn. (default: equal)
        feedback_to (list of int, "all", "nodes" or "each", optional): who gets the scalar
            feedback: the same experts for every family, or ``"each"``: every family its
            own ``feedback_to`` (a bandit's reward to its experts, a regression's signed
            miss to every node). (default: ``"all"``)
        family_code (bool, optional): show every episode a one-hot code of its family
            (``F`` = number of families) on ``F`` extra input port nodes, before the
            family's own observation. (default: :obj:`False`)
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        weights: Sequence[float] | None = None,
        feedback_to: Sequence[int] | str = "all",
        family_code: bool = False,
    ) -> None:
        each = feedback_to == "each"
        super().__init__("all" if each else feedback_to)
        self.each = each
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
        self.family_code = bool(family_code)
        self.num_outputs = max(t.num_outputs for t in tasks)

    def check_experts(self, num_experts: int) -> None:
        """Raise if a family (or the mixture) sends feedback to an expert that does not exist."""
        super().check_experts(num_experts)
        if self.each:
            for task in self.tasks:
                task.check_experts(num_experts)

    def code(self, family: int | None) -> Tensor:
        """The one-hot code of family ``family`` (zeros for ``None``: a family not in the mix)."""
        code = torch.zeros(len(self.tasks))
        if family is not None:
            code[family] = 1.0
        return code

    def _episode(self, task: Task, family: int | None, episode: Episode) -> Episode:
        if not self.each:
            episode.feedback_to = self.feedback_to
        elif episode.feedback_to is None:
            episode.feedback_to = task.feedback_to
        if self.family_code:
            episode = CodedEpisode(episode, self.code(family))
        episode.family = -1 if family is None else family
        return episode

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
        weights: Sequence[float] | None = None,
    ) -> Episode:
        """Draw a family (with ``weights``, default the mixture's), then its episodes."""
        w = self.weights if weights is None else torch.tensor(weights, dtype=torch.float)
        family = int(torch.multinomial(w, 1, generator=generator))
        task = self.tasks[family]
        return self._episode(task, family, task.reset(batch_size, generator, num_outputs, device))

    def view(self, task: Task) -> Task:
        """``task`` as this mixture shows it (its feedback convention, its family code).

        With ``family_code``, a task that is not one of the families gets zeros. Used to
        test a model trained on the mixture on one family (``badger matrix``).
        """
        family = next((i for i, t in enumerate(self.tasks) if repr(t) == repr(task)), None)
        return FamilyView(self, task, family)

    def chance_level(self, num_outputs: int | None = None) -> float:
        """The largest chance level of the families (used to spot a diverging run)."""
        return max(t.chance_level() for t in self.tasks)

    def __repr__(self) -> str:
        extra = ", feedback_to='each'" if self.each else ""
        extra += ", family_code=True" if self.family_code else ""
        return f"{self.__class__.__name__}({', '.join(map(repr, self.tasks))}{extra})"


class FamilyView(Task):
    """One family as a :class:`TaskMixture` shows it (see :meth:`TaskMixture.view`).

    Its episodes are the family's, drawn from the same generator, with the mixture's
    feedback convention and family code; its baselines play the family's own episodes.
    """

    def __init__(self, mixture: TaskMixture, task: Task, family: int | None) -> None:
        super().__init__(task.feedback_to)
        self.mixture, self.task, self.family = mixture, task, family
        self.num_outputs = task.num_outputs

    def check_experts(self, num_experts: int) -> None:
        """The family's check (and the mixture's, when it names the experts)."""
        self.task.check_experts(num_experts)
        if not self.mixture.each:
            self.mixture.check_experts(num_experts)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> Episode:
        """The family's episodes, as the mixture shows them."""
        episode = self.task.reset(batch_size, generator, num_outputs, device)
        return self.mixture._episode(self.task, self.family, episode)

    def chance_level(self, num_outputs: int | None = None) -> float:
        """The family's."""
        return self.task.chance_level(num_outputs)

    def mean_baseline(self, num_outputs: int | None = None) -> float:
        """The family's."""
        return self.task.mean_baseline(num_outputs)

    def metrics(self) -> dict:
        """The family's, on the family's own (uncoded) episodes."""

        def unwrapped(metric):
            def on_family(life) -> Tensor:
                return metric(dataclasses.replace(life, episode=family_episode(life.episode)))

            return on_family

        return {name: unwrapped(metric) for name, metric in self.task.metrics().items()}

    def baselines(self) -> dict:
        """The family's, on the family's own (uncoded) episodes."""

        def unwrapped(play):
            def baseline(episode: Episode, steps: int) -> Tensor:
                return play(family_episode(episode), steps)

            return baseline

        return {name: unwrapped(play) for name, play in self.task.baselines().items()}

    def __repr__(self) -> str:
        return f"{self.task!r} as in {type(self.mixture).__name__}"
