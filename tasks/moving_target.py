"""Moving target: the guessing game, but the hidden target jumps once mid-lifetime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from badger_graph.tasks.base import Episode, StepResult, check_batch_size, play
from badger_graph.tasks.guessing_game import GuessingGame, guessing_error

#: steps after the jump that the ``after_jump_error`` metric averages
AFTER_JUMP = 5


class MovingTargetEpisode(Episode):
    """B targets that move to fresh ones at step ``jump`` ``[B]`` (0-based)."""

    def __init__(self, first: Tensor, second: Tensor, jump: Tensor, feedback: str) -> None:
        self.targets = (first, second)
        self.jump = jump
        self.feedback_mode = feedback
        self.num_agents, self.num_outputs = first.shape

    def target_at(self, step: int) -> Tensor:
        """The targets ``[B, d]`` that the action of inner step ``step`` is scored against."""
        moved = (step >= self.jump).unsqueeze(1)
        return torch.where(moved, self.targets[1], self.targets[0])

    def first(self) -> StepResult:
        """Nothing known before the first guess: zero feedback."""
        zeros = self.targets[0].new_zeros(self.num_agents)
        signal = torch.zeros_like(self.targets[0]) if self.feedback_mode == "vector" else None
        return StepResult(error=zeros, feedback=zeros, signal=signal)

    def step(self, action: Tensor) -> StepResult:
        """Error of ``action`` against the target of this step (``step_index``)."""
        if action.shape != self.targets[0].shape:
            raise ValueError(
                f"action must have shape {list(self.targets[0].shape)} (agents × d), "
                f"got {list(action.shape)}"
            )
        target = self.target_at(self.step_index)
        error = guessing_error(action, target)
        signal = target - action if self.feedback_mode == "vector" else None
        return StepResult(error=error, feedback=error, signal=signal)


def after_jump_error(life) -> Tensor:
    """Mean error of the first :data:`AFTER_JUMP` guesses scored against the new target."""
    errors, jump = life.errors, life.episode.jump.to(life.errors.device)
    steps = torch.arange(errors.size(0), device=errors.device).unsqueeze(1)
    window = (steps >= jump) & (steps < jump + AFTER_JUMP)
    return (errors * window).sum() / window.sum().clamp(min=1)


class MovingTarget(GuessingGame):
    r"""Non-stationary guessing: the target jumps to a fresh one at a random step.

    As :class:`GuessingGame` (targets uniform in :math:`[-1, 1]^d`, error
    :math:`3\,\overline{(a - t)^2}` fed back every step), but each agent's target is
    replaced by a new one at a step drawn uniformly from ``jump`` (inclusive, 0-based, per
    agent); the agent is not told when. The episode knows its step from ``step_index``.

    Args:
        num_outputs (int, optional): dimensions :math:`d`. (default: :obj:`3`)
        jump (list of two ints, optional): range of the jump step. (default: ``[8, 12]``)
        feedback (str, optional): ``"scalar"`` or ``"vector"``. (default: ``"scalar"``)
        feedback_to (list of int or "all", optional): experts that get the error.
            (default: ``"all"``)
    """

    def __init__(
        self,
        num_outputs: int = 3,
        jump: Sequence[int] = (8, 12),
        feedback: Literal["scalar", "vector"] = "scalar",
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(num_outputs, feedback, feedback_to)
        jump = tuple(int(j) for j in jump)
        if len(jump) != 2 or jump[0] < 1 or jump[1] < jump[0]:
            raise ValueError(f"jump must be [low, high] with 1 <= low <= high, got {list(jump)}")
        self.jump = jump

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> MovingTargetEpisode:
        """Draw the first and second targets and the jump step of every agent."""
        d = self.num_outputs if num_outputs is None else num_outputs
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"num_outputs (d) must be an int >= 1, got {d!r}")
        check_batch_size(batch_size)
        first = torch.rand(batch_size, d, generator=generator) * 2 - 1
        second = torch.rand(batch_size, d, generator=generator) * 2 - 1
        jump = torch.randint(self.jump[0], self.jump[1] + 1, (batch_size,), generator=generator)
        return MovingTargetEpisode(
            first.to(device), second.to(device), jump.to(device), self.feedback
        )

    def metrics(self) -> dict:
        """Error in the steps after the jump, and of the 5th guess."""
        return {"after_jump_error": after_jump_error, **super().metrics()}

    def baselines(self) -> dict:
        """Probe-and-solve (re-probes when its solved guess stops scoring 0) and stale."""
        return {**super().baselines(), "stale": stale}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(d={self.num_outputs}, jump={list(self.jump)})"


def stale(episode: MovingTargetEpisode, steps: int) -> Tensor:
    """An agent that knows the first target and never notices the jump."""
    return play(episode, steps, lambda result, t: episode.targets[0])
