"""Online few-shot classification: Gaussian clusters per episode, the label shown after."""

from __future__ import annotations

import math
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
from badger_graph.tasks.regression import input_range


class ClassificationEpisode(Episode):
    """B problems: ``c`` class means ``[B, c, m]``; every step one labelled point."""

    def __init__(self, means: Tensor, spread: float, outcomes: torch.Generator) -> None:
        self.means = means
        self.spread = spread
        self.num_agents, self.num_outputs, self.num_inputs = means.shape
        self._gen = outcomes
        self.x, self.y = self._draw()
        #: the label of every scored step, in order
        self.labels: list[Tensor] = []

    def _draw(self) -> tuple[Tensor, Tensor]:
        B, c, m = self.means.shape
        y = torch.randint(0, c, (B,), generator=self._gen).to(self.means.device)
        noise = torch.randn(B, m, generator=self._gen).to(self.means.device)
        x = self.means[torch.arange(B, device=y.device), y] + self.spread * noise
        return x, y

    def first(self) -> StepResult:
        """The first point; nothing to score yet."""
        zeros = self.means.new_zeros(self.num_agents)
        signal = self.means.new_zeros(self.num_agents, self.num_outputs)
        return StepResult(error=zeros, feedback=zeros, signal=signal, observation=self.x)

    def step(self, action: Tensor) -> StepResult:
        """Score the class scores for the shown point, reveal its label, show the next."""
        if action.shape != (self.num_agents, self.num_outputs):
            raise ValueError(
                f"action must have shape {[self.num_agents, self.num_outputs]} (agents × "
                f"classes), got {list(action.shape)}"
            )
        logp = torch.log_softmax(action, dim=1)
        # cross-entropy in units of log c: a uniform guess scores 1
        error = -logp.gather(1, self.y.unsqueeze(1)).squeeze(1) / math.log(self.num_outputs)
        self.labels.append(self.y)
        # the true class's output node sees +1, the others -1 / (c - 1) (the label, revealed)
        signal = torch.full_like(action, -1.0 / (self.num_outputs - 1))
        signal = signal.scatter(1, self.y.unsqueeze(1), 1.0)
        self.x, self.y = self._draw()
        return StepResult(error=error, feedback=error, signal=signal, observation=self.x)


class OnlineClassification(Task):
    r"""Classify points of Gaussian clusters drawn per episode, learning the classes online.

    Each episode draws ``c`` class means :math:`\mu_j \sim \mathcal N(0, I_m)`; every step
    shows a point :math:`x = \mu_y + s\,\epsilon` of a uniform random class on the input
    port nodes; the agent answers class scores (``c`` outputs), is scored by the
    cross-entropy in units of :math:`\log c` (uniform scores: 1), and is then shown the
    label on its output nodes (+1 on the true class). Metric ``accuracy``: how often the
    highest score is the true class.

    Args:
        num_classes (int, optional): ``c`` (>= 2). (default: :obj:`3`)
        num_inputs (int, optional): ``m``. (default: :obj:`2`)
        spread (float, optional): :math:`s`. (default: :obj:`0.5`)
        feedback_to (list of int or "all", optional): experts that get the error.
            (default: ``"all"``)
    """

    def __init__(
        self,
        num_classes: int = 3,
        num_inputs: int = 2,
        spread: float = 0.5,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(feedback_to)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes (c) must be an int >= 2, got {num_classes!r}")
        self.num_outputs = num_classes
        self.num_inputs = input_range("num_inputs (m)", num_inputs)[0]
        if spread <= 0:
            raise ValueError(f"spread must be > 0, got {spread}")
        self.spread = float(spread)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> ClassificationEpisode:
        """Draw ``batch_size`` sets of class means."""
        c = self.num_outputs if num_outputs is None else num_outputs
        if not isinstance(c, int) or c < 2:
            raise ValueError(f"num_outputs (classes) must be an int >= 2, got {c!r}")
        check_batch_size(batch_size)
        means = torch.randn(batch_size, c, self.num_inputs, generator=generator)
        outcomes = outcome_generator(generator)
        return ClassificationEpisode(means.to(device), self.spread, outcomes)

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Uniform scores: 1."""
        return 1.0

    def metrics(self) -> dict:
        """Accuracy of the last 5 answers (the highest score against the label)."""
        return {"late_accuracy": late_accuracy}

    def baselines(self) -> dict:
        """Nearest centroid and online logistic regression on the same points and labels."""
        return {"nearest_centroid": nearest_centroid, "logistic_regression": logistic_regression}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(c={self.num_outputs}, m={self.num_inputs}, "
            f"spread={self.spread})"
        )


def late_accuracy(life) -> Tensor:
    """Share of the last 5 answers whose highest score is the true class."""
    labels = torch.stack(life.episode.labels[-5:])  # [5, B]
    answers = life.actions[-5:].argmax(-1)
    return (answers == labels.to(answers.device)).float().mean()


def _labelled(score):
    """A strategy that keeps every (x, y) seen and scores the next point with ``score``."""
    state: dict = {"xs": [], "ys": []}

    def act(result: StepResult, t: int) -> Tensor:
        if t > 0:
            state["xs"].append(state["x"])
            state["ys"].append(result.signal.argmax(1))
        x = result.observation
        state["x"] = x
        return score(state, x, result.signal.size(1))

    return act


def _centroid_scores(state: dict, x: Tensor, c: int) -> Tensor:
    if not state["xs"]:
        return x.new_zeros(x.size(0), c)
    xs, ys = torch.stack(state["xs"], 1), torch.stack(state["ys"], 1)  # [B, t, m], [B, t]
    onehot = torch.nn.functional.one_hot(ys, c).to(x.dtype)  # [B, t, c]
    count = onehot.sum(1)  # [B, c]
    centroid = torch.einsum("btc,btm->bcm", onehot, xs) / count.clamp(min=1).unsqueeze(2)
    dist = (centroid - x.unsqueeze(1)).pow(2).sum(2)
    # closer is better; classes not seen yet get a neutral score
    score = -dist
    return torch.where(count > 0, score, score.new_full(score.shape, -1.0))


def nearest_centroid(episode: ClassificationEpisode, steps: int) -> Tensor:
    """Score each class by minus the squared distance to the mean of its points so far.

    (Minus the distance, not a Gaussian log-likelihood with the true spread: that one is
    overconfident after few points and scores a worse cross-entropy.)
    """
    return play(episode, steps, _labelled(_centroid_scores))


def logistic_regression(episode: ClassificationEpisode, steps: int, lr: float = 0.5) -> Tensor:
    """Multinomial logistic regression, one SGD step per revealed label."""
    B, c, m = episode.means.shape
    W = episode.means.new_zeros(B, c, m + 1)

    def act(result: StepResult, t: int) -> Tensor:
        nonlocal W
        if t > 0:
            xb = torch.cat([state["x"], state["x"].new_ones(B, 1)], 1)
            p = torch.softmax(torch.einsum("bcm,bm->bc", W, xb), 1)
            y = torch.nn.functional.one_hot(result.signal.argmax(1), c).to(p.dtype)
            W = W + lr * (y - p).unsqueeze(2) * xb.unsqueeze(1)
        state["x"] = result.observation
        xb = torch.cat([state["x"], state["x"].new_ones(B, 1)], 1)
        return torch.einsum("bcm,bm->bc", W, xb)

    state: dict = {}
    return play(episode, steps, act)
