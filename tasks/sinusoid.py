r"""Few-shot sinusoid regression (MAML's benchmark, Finn et al. 2017), played online.

Each episode draws :math:`y = A \sin(x + \varphi)` with amplitude :math:`A \in [0.1, 5]` and
phase :math:`\varphi \in [0, \pi]`; every step shows a fresh :math:`x \in [-5, 5]` on the
input node, the learner predicts :math:`\hat y`, then the label is revealed (the signed miss
on the output node and as the scalar feedback). After ``K`` steps the learner has seen ``K``
labelled points: the error of the steps that follow is the ``K``-shot error.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from badger_graph.tasks.base import (
    Episode,
    StepResult,
    Task,
    check_batch_size,
    outcome_generator,
    play,
)


class SinusoidEpisode(Episode):
    """B sinusoids with hidden amplitude ``A`` ``[B]`` and phase ``phase`` ``[B]``."""

    num_outputs = 1
    num_inputs = 1

    def __init__(
        self, amplitude: Tensor, phase: Tensor, x_range: float, outcomes: torch.Generator
    ) -> None:
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range
        self.num_agents = amplitude.numel()
        self._gen = outcomes
        self.x = self._draw_x()

    def _draw_x(self) -> Tensor:
        u = torch.rand(self.num_agents, 1, generator=self._gen).to(self.amplitude.device)
        return (2 * u - 1) * self.x_range

    def target_of(self, x: Tensor) -> Tensor:
        """``A sin(x + phase)`` for ``x`` ``[B, n]``."""
        return self.amplitude.unsqueeze(1) * torch.sin(x + self.phase.unsqueeze(1))

    def first(self) -> StepResult:
        """The first ``x``; nothing to score yet."""
        zeros = self.amplitude.new_zeros(self.num_agents)
        return StepResult(
            error=zeros, feedback=zeros, signal=zeros.unsqueeze(1), observation=self.x
        )

    def step(self, action: Tensor) -> StepResult:
        """Score the prediction for the shown ``x``; reveal ``y``, show the next ``x``."""
        if action.shape != (self.num_agents, 1):
            raise ValueError(
                f"action must have shape [{self.num_agents}, 1], got {list(action.shape)}"
            )
        y = self.target_of(self.x)[:, 0]
        miss = y - action[:, 0]
        self.y = y
        self.x = self._draw_x()
        return StepResult(
            error=miss.pow(2), feedback=miss, signal=miss.unsqueeze(1), observation=self.x
        )


class SinusoidRegression(Task):
    r"""Few-shot regression of sinusoids, online: MAML's setup as a lifetime.

    The error is the squared miss :math:`(\hat y - y)^2` (MAML's mean squared error);
    predicting 0 scores :math:`E[A^2]/2` (chance).

    Args:
        amplitude (list of two floats, optional): range of ``A``. (default: ``[0.1, 5]``)
        phase (list of two floats, optional): range of the phase. (default: ``[0, π]``)
        x_range (float, optional): ``x`` uniform in ``[-x_range, x_range]``. (default: 5)
        feedback_to (list of int, "all" or "nodes", optional): who gets the signed miss.
            (default: ``"nodes"``)
    """

    num_outputs = 1

    def __init__(
        self,
        amplitude: tuple[float, float] = (0.1, 5.0),
        phase: tuple[float, float] = (0.0, math.pi),
        x_range: float = 5.0,
        feedback_to="nodes",
    ) -> None:
        super().__init__(feedback_to)
        for name, (lo, hi) in (("amplitude", amplitude), ("phase", phase)):
            if not lo <= hi:
                raise ValueError(f"{name} must be [low, high] with low <= high, got {[lo, hi]}")
        if x_range <= 0:
            raise ValueError(f"x_range must be > 0, got {x_range}")
        self.amplitude, self.phase = tuple(map(float, amplitude)), tuple(map(float, phase))
        self.x_range = float(x_range)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> SinusoidEpisode:
        """Draw ``batch_size`` sinusoids."""
        if num_outputs not in (None, 1):
            raise ValueError(f"SinusoidRegression has one output, got num_outputs={num_outputs}")
        check_batch_size(batch_size)
        (a0, a1), (p0, p1) = self.amplitude, self.phase
        amplitude = a0 + (a1 - a0) * torch.rand(batch_size, generator=generator)
        phase = p0 + (p1 - p0) * torch.rand(batch_size, generator=generator)
        outcomes = outcome_generator(generator)
        return SinusoidEpisode(amplitude.to(device), phase.to(device), self.x_range, outcomes)

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Predicting 0: E[A^2] / 2 for A uniform in the amplitude range."""
        a0, a1 = self.amplitude
        return (a0 * a0 + a0 * a1 + a1 * a1) / 6

    def baselines(self) -> dict:
        """The oracle: least squares on [sin x, cos x] of the points seen so far."""
        return {"oracle_least_squares": oracle_least_squares}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(amplitude={list(self.amplitude)}, "
            f"phase={[round(p, 3) for p in self.phase]}, x_range={self.x_range})"
        )


def oracle_least_squares(episode: SinusoidEpisode, steps: int) -> Tensor:
    """Knows the function family: ``y = a sin x + b cos x``, fitted to the points so far.

    Exact from two points on (noise-free labels); the floor no learner can beat.
    """
    seen: dict = {"f": [], "y": []}

    def act(result: StepResult, t: int) -> Tensor:
        x = result.observation
        if t > 0:
            seen["y"].append(seen["pred"] + result.signal[:, 0])
        feats = torch.cat([torch.sin(x), torch.cos(x)], 1)  # [B, 2]
        if seen["y"]:
            F = torch.stack(seen["f"], 1)  # [B, t, 2]
            y = torch.stack(seen["y"], 1).unsqueeze(2)
            ridge = 1e-6 * torch.eye(2, dtype=F.dtype, device=F.device)
            w = torch.linalg.solve(F.transpose(1, 2) @ F + ridge, F.transpose(1, 2) @ y)[..., 0]
            pred = (w * feats).sum(1)
        else:
            pred = feats.new_zeros(feats.size(0))
        seen["f"].append(feats)
        seen["pred"] = pred
        return pred.unsqueeze(1)

    return play(episode, steps, act)
