"""Online few-shot regression: predict y = w·x from observations, the label shown after."""

from __future__ import annotations

from collections.abc import Sequence

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


def input_range(name: str, value: int | Sequence[int], low: int = 1) -> tuple[int, int]:
    """``m`` or ``[low, high]`` as an inclusive range, checked."""
    lo, hi = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if lo < low or hi < lo:
        raise ValueError(f"{name} must be an int >= {low} or [low, high], got {value!r}")
    return lo, hi


class RegressionEpisode(Episode):
    """B hidden linear teachers; every step a fresh input ``x_t`` is shown."""

    def __init__(
        self,
        w: Tensor,
        noise: float,
        outcomes: torch.Generator,
        dims: Tensor | None,
        feedback: str,
    ) -> None:
        self.w = w  # [B, m] (zero beyond an agent's m)
        self.noise = noise
        self.feedback = feedback
        self.num_agents, self.num_inputs = w.shape
        self.num_outputs = 1
        self.input_dims = dims
        if dims is None:
            self.mask = torch.ones_like(w)
        else:
            cols = torch.arange(self.num_inputs, device=w.device)
            self.mask = (cols < dims.unsqueeze(1)).to(w.dtype)
        self._gen = outcomes
        self.x = self._draw_x()

    def _draw_x(self) -> Tensor:
        x = torch.randn(self.num_agents, self.num_inputs, generator=self._gen)
        return x.to(self.w.device) * self.mask

    def first(self) -> StepResult:
        """The first input; nothing to score yet."""
        zeros = self.w.new_zeros(self.num_agents)
        return StepResult(error=zeros, feedback=zeros, observation=self.x)

    def step(self, action: Tensor) -> StepResult:
        """Score the prediction for the shown ``x``; reveal ``y`` and show the next ``x``."""
        if action.shape != (self.num_agents, 1):
            raise ValueError(
                f"action must have shape [{self.num_agents}, 1] (one prediction per agent), "
                f"got {list(action.shape)}"
            )
        eps = torch.randn(self.num_agents, generator=self._gen).to(self.w.device)
        y = (self.w * self.x).sum(1) + self.noise * eps
        error = (action[:, 0] - y).pow(2) / (1.0 + self.noise**2)
        self.y = y
        self.x = self._draw_x()
        # the output's own node sees the signed miss y - a; the scalar feedback is the error
        # or (feedback="miss") the signed miss too
        miss = y - action[:, 0]
        feedback = miss if self.feedback == "miss" else error
        return StepResult(
            error=error, feedback=feedback, signal=miss.unsqueeze(1), observation=self.x
        )


class OnlineRegression(Task):
    r"""Online few-shot regression with a hidden linear teacher per episode.

    Each episode draws :math:`w \sim \mathcal N(0, I_m / m)`; every step the agent sees
    :math:`x_t \sim \mathcal N(0, I_m)` on its ``m`` input port nodes, predicts
    :math:`\hat y_t` (one output), and is then told its error and the signed miss
    :math:`y_t - \hat y_t` with :math:`y_t = w^\top x_t + \sigma\epsilon`. The error is
    :math:`(\hat y_t - y_t)^2 / (1 + \sigma^2)`: predicting 0 scores 1 (chance).

    Args:
        num_inputs (int or list of two ints, optional): ``m``, or ``[low, high]`` drawn per
            agent. (default: :obj:`2`)
        noise (float, optional): :math:`\sigma`. (default: :obj:`0.1`)
        feedback (str, optional): the scalar feedback: ``"miss"`` (the signed miss
            :math:`y_t - \hat y_t`) or ``"error"`` (the squared error). (default: ``"miss"``)
        feedback_to (list of int, "all" or "nodes", optional): who gets the scalar feedback:
            those experts, every expert, or every node (input ports included, so an input
            node can learn its own weight from its previous value and the miss, as in
            least mean squares). (default: ``"nodes"``)
    """

    num_outputs = 1

    def __init__(
        self,
        num_inputs: int | Sequence[int] = 2,
        noise: float = 0.1,
        feedback: str = "miss",
        feedback_to: Sequence[int] | str = "nodes",
    ) -> None:
        super().__init__(feedback_to)
        if feedback not in ("error", "miss"):
            raise ValueError(f"feedback must be 'error' or 'miss', got {feedback!r}")
        self.feedback = feedback
        self.num_inputs = input_range("num_inputs (m)", num_inputs)
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> RegressionEpisode:
        """Draw ``batch_size`` teachers (and input widths when ``m`` is a range)."""
        if num_outputs not in (None, 1):
            raise ValueError(f"OnlineRegression has one output, got num_outputs={num_outputs}")
        check_batch_size(batch_size)
        lo, hi = self.num_inputs
        dims = None
        if lo != hi:
            dims = torch.randint(lo, hi + 1, (batch_size,), generator=generator)
        m = hi if dims is not None else lo
        w = torch.randn(batch_size, m, generator=generator)
        scale = (dims if dims is not None else torch.full((batch_size,), m)).float()
        if dims is not None:
            w = w * (torch.arange(m) < dims.unsqueeze(1))
        w = w / scale.sqrt().unsqueeze(1)
        outcomes = outcome_generator(generator)
        return RegressionEpisode(
            w.to(device),
            self.noise,
            outcomes,
            None if dims is None else dims.to(device),
            self.feedback,
        )

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Predicting 0 always: 1."""
        return 1.0

    def baselines(self) -> dict:
        """The Bayes posterior mean (the optimum), RLS, LMS and normalized LMS.

        All play the same data as the agent.
        """
        return {"posterior_mean": posterior_mean, "rls": rls, "lms": lms, "nlms": nlms}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(m={list(self.num_inputs)}, noise={self.noise}, "
            f"feedback={self.feedback!r})"
        )


def _learner(update, prior: Tensor | None = None):
    """A linear predictor that learns from ``(x, y)`` after each prediction.

    ``prior``: ``[B]`` initial ``P = prior · I`` of recursive least squares (default 100).
    """
    state: dict = {}

    def act(result: StepResult, t: int) -> Tensor:
        x = result.observation
        if t > 0:  # the previous prediction's label is known now
            y = state["pred"] + result.signal[:, 0]
            update(state, state["x"], y)
        if "w" not in state:
            state["w"] = x.new_zeros(x.shape)
            scale = x.new_full((x.size(0),), 100.0) if prior is None else prior.to(x)
            eye = torch.eye(x.size(1), dtype=x.dtype, device=x.device)
            state["P"] = eye.expand(x.size(0), -1, -1) * scale.view(-1, 1, 1)
        pred = (state["w"] * x).sum(1)
        state["x"], state["pred"] = x, pred
        return pred.unsqueeze(1)

    return act


def _rls_update(state: dict, x: Tensor, y: Tensor) -> None:
    P, w = state["P"], state["w"]
    Px = torch.bmm(P, x.unsqueeze(2)).squeeze(2)
    gain = Px / (1.0 + (x * Px).sum(1, keepdim=True))
    state["w"] = w + gain * (y - (w * x).sum(1)).unsqueeze(1)
    state["P"] = P - gain.unsqueeze(2) * Px.unsqueeze(1)


def _lms_update(state: dict, x: Tensor, y: Tensor, lr: float = 0.1) -> None:
    w = state["w"]
    state["w"] = w + lr * (y - (w * x).sum(1)).unsqueeze(1) * x


def _nlms_update(state: dict, x: Tensor, y: Tensor, step: float = 0.7) -> None:
    w = state["w"]
    miss = (y - (w * x).sum(1)).unsqueeze(1)
    state["w"] = w + step * miss * x / ((x * x).sum(1, keepdim=True) + 1e-3)


def rls(episode: Episode, steps: int) -> Tensor:
    """Recursive least squares (ridge prior 0.01, the exact online least-squares fit)."""
    return play(episode, steps, _learner(_rls_update))


def lms(episode: Episode, steps: int) -> Tensor:
    """Least mean squares (normalized inputs would help; learning rate 0.1)."""
    return play(episode, steps, _learner(_lms_update))


def nlms(episode: Episode, steps: int) -> Tensor:
    """Normalized least mean squares (step 0.7: the best of 0.3, 0.5, 0.7, 1 at m = 2..4)."""
    return play(episode, steps, _learner(_nlms_update))


def posterior_mean(episode: RegressionEpisode, steps: int) -> Tensor:
    r"""The Bayes-optimal predictor: the posterior mean of :math:`w` under the task's prior.

    With :math:`w \sim \mathcal N(0, I_m / m)` and noise :math:`\sigma`, the posterior after
    the labelled points so far is Gaussian; its mean is recursive least squares started
    from :math:`P_0 = I / (m \sigma^2)` (the Kalman filter of a constant :math:`w`). No
    predictor has a lower expected squared error on these episodes.
    """
    m = episode.input_dims if episode.input_dims is not None else episode.num_inputs
    m = torch.as_tensor(m, dtype=torch.float32).expand(episode.num_agents)
    prior = 1.0 / (m * max(episode.noise, 1e-4) ** 2)
    return play(episode, steps, _learner(_rls_update, prior))
