"""Hot/cold optimization: minimize a hidden convex quadratic from its values alone."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from badger_graph.tasks.base import Episode, StepResult, Task, check_batch_size, play


class QuadraticEpisode(Episode):
    """B hidden quadratics ``f(x) = (x - c)ᵀ A (x - c)`` over ``[-1, 1]^d``."""

    def __init__(self, A: Tensor, c: Tensor, scale: Tensor) -> None:
        self.A, self.c, self.scale = A, c, scale
        self.num_agents, self.num_outputs = c.shape

    def value(self, x: Tensor) -> Tensor:
        """``f(x) / scale`` ``[B]`` (the guess is clipped to the box first)."""
        z = x.clamp(-1, 1) - self.c
        return torch.einsum("bi,bij,bj->b", z, self.A, z) / self.scale

    def first(self) -> StepResult:
        """Nothing evaluated yet."""
        zeros = self.c.new_zeros(self.num_agents)
        return StepResult(error=zeros, feedback=zeros)

    def step(self, action: Tensor) -> StepResult:
        """The value at the guess is both the error and the only feedback."""
        if action.shape != self.c.shape:
            raise ValueError(
                f"action must have shape {list(self.c.shape)} (agents × d), "
                f"got {list(action.shape)}"
            )
        f = self.value(action)
        return StepResult(error=f, feedback=f)


class HotColdOptimization(Task):
    r"""Find the minimum of a hidden random convex quadratic, told only its value.

    Each episode draws a minimum :math:`c` uniform in :math:`[-1, 1]^d` and a curvature
    :math:`A = Q\,\mathrm{diag}(\lambda)\,Q^\top` with a random rotation :math:`Q` and
    eigenvalues :math:`\lambda` log-uniform in ``[1, condition]``. The error (and the
    only feedback) of a guess :math:`x` is :math:`f(x) = (x - c)^\top A (x - c)`, scaled so
    that guessing 0 scores 1 in expectation. With ``condition=1`` this is the guessing game.

    Args:
        num_outputs (int, optional): dimensions :math:`d`. (default: :obj:`3`)
        condition (float, optional): largest / smallest curvature. (default: :obj:`10.0`)
        feedback_to (list of int or "all", optional): experts that get the value.
            (default: ``"all"``)
    """

    def __init__(
        self,
        num_outputs: int = 3,
        condition: float = 10.0,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(feedback_to)
        if not isinstance(num_outputs, int) or num_outputs < 1:
            raise ValueError(f"num_outputs (d) must be an int >= 1, got {num_outputs!r}")
        if condition < 1:
            raise ValueError(f"condition must be >= 1, got {condition}")
        self.num_outputs = num_outputs
        self.condition = float(condition)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> QuadraticEpisode:
        """Draw ``batch_size`` quadratics."""
        d = self.num_outputs if num_outputs is None else num_outputs
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"num_outputs (d) must be an int >= 1, got {d!r}")
        check_batch_size(batch_size)
        c = torch.rand(batch_size, d, generator=generator) * 2 - 1
        Q, _ = torch.linalg.qr(torch.randn(batch_size, d, d, generator=generator))
        u = torch.rand(batch_size, d, generator=generator)
        lam = self.condition**u
        A = Q @ torch.diag_embed(lam) @ Q.transpose(1, 2)
        # E over c of cᵀAc = tr(A) / 3: guessing 0 scores 1 in expectation
        scale = torch.diagonal(A, dim1=1, dim2=2).sum(1) / 3
        return QuadraticEpisode(A.to(device), c.to(device), scale.to(device))

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Guessing 0 always: 1 (by the scaling)."""
        return 1.0

    def baselines(self) -> dict:
        """Random search and finite-difference descent with one evaluation per step."""
        return {"random_search": random_search, "finite_differences": finite_differences}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(d={self.num_outputs}, condition={self.condition})"


def random_search(episode: QuadraticEpisode, steps: int, seed: int = 2**31 - 1) -> Tensor:
    """Evaluate uniform random points; the error of a step is the best value so far.

    (The strategy would answer with the best point found, so its error at step t is the
    running minimum.)
    """
    gen = torch.Generator().manual_seed(seed)
    B, d = episode.c.shape
    errors = play(
        episode, steps, lambda r, t: (torch.rand(B, d, generator=gen) * 2 - 1).to(episode.c)
    )
    return errors.cummin(0).values


def finite_differences(episode: QuadraticEpisode, steps: int, lr: float = 0.1) -> Tensor:
    """Forward-difference gradient descent: d + 1 evaluations per move, one per step.

    Evaluates the current point, then the point moved by ``h`` along each axis; with the
    gradient estimate it moves by ``-lr · ĝ`` (clipped to the box). The error of a step is
    the value of the current point (the probes of a round report the last centre).
    """
    B, d = episode.c.shape
    h = 0.05
    state = {"x": episode.c.new_zeros(B, d), "f0": None, "g": episode.c.new_zeros(B, d)}
    errors = []

    def act(result: StepResult, t: int) -> Tensor:
        phase = t % (d + 1)
        if t > 0:
            prev = (t - 1) % (d + 1)
            if prev == 0:
                state["f0"] = result.feedback
            else:
                state["g"][:, prev - 1] = (result.feedback - state["f0"]) / h
            if phase == 0:  # a round is complete: move
                state["x"] = (state["x"] - lr * state["g"] * episode.scale.unsqueeze(1)).clamp(
                    -1, 1
                )
        x = state["x"].clone()
        if phase > 0:
            x[:, phase - 1] += h
        errors.append(episode.value(state["x"]))
        return x

    play(episode, steps, act)
    return torch.stack(errors)
