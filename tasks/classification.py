"""Online few-shot classification: points shown one per step, the label revealed after.

:class:`LabelStream` is the episode protocol every classification stream shares (score the
class scores, reveal the label, show the next point); :class:`OnlineClassification` draws
Gaussian clusters, :class:`MLPClassification` labels from a random small network, and
:class:`~badger_graph.tasks.DatasetClassification` real datasets.
"""

from __future__ import annotations

import math
from abc import abstractmethod
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


class LabelStream(Episode):
    """B streams of labelled points: every step one point ``[B, m]`` and its class ``[B]``.

    Subclasses set ``num_agents``, ``num_outputs`` (classes c), ``num_inputs`` (m) and
    implement :meth:`_draw`, called once at the start and once after every scored step.
    """

    def _begin(self) -> None:
        self.x, self.y = self._draw()
        #: the label of every scored step, in order
        self.labels: list[Tensor] = []

    @abstractmethod
    def _draw(self) -> tuple[Tensor, Tensor]:
        """The next point of every stream ``[B, m]`` and its class ``[B]``."""

    def first(self) -> StepResult:
        """The first point; nothing to score yet."""
        zeros = self.x.new_zeros(self.num_agents)
        signal = self.x.new_zeros(self.num_agents, self.num_outputs)
        return StepResult(error=zeros, feedback=zeros, signal=signal, observation=self.x)

    def step(self, action: Tensor) -> StepResult:
        """Score the class scores for the shown point, reveal its label, show the next."""
        if action.shape != (self.num_agents, self.num_outputs):
            raise ValueError(
                f"action must have shape {[self.num_agents, self.num_outputs]} (agents × "
                f"classes), got {list(action.shape)}"
            )
        logp = torch.log_softmax(action, dim=1)
        y = self.y.to(action.device)
        # cross-entropy in units of log c: a uniform guess scores 1
        error = -logp.gather(1, y.unsqueeze(1)).squeeze(1) / math.log(self.num_outputs)
        self.labels.append(y)
        # the true class's output node sees +1, the others -1 / (c - 1) (the label, revealed)
        signal = torch.full_like(action, -1.0 / (self.num_outputs - 1))
        signal = signal.scatter(1, y.unsqueeze(1), 1.0)
        self.x, self.y = self._draw()
        return StepResult(error=error, feedback=error, signal=signal, observation=self.x)


class ClassificationEpisode(LabelStream):
    """B problems: ``c`` class means ``[B, c, m]`` and a spread ``[B]``; one point per step."""

    def __init__(self, means: Tensor, spread: Tensor, outcomes: torch.Generator) -> None:
        self.means = means
        self.spread = spread
        self.num_agents, self.num_outputs, self.num_inputs = means.shape
        self._gen = outcomes
        self._begin()

    def _draw(self) -> tuple[Tensor, Tensor]:
        B, c, m = self.means.shape
        y = torch.randint(0, c, (B,), generator=self._gen).to(self.means.device)
        noise = torch.randn(B, m, generator=self._gen).to(self.means.device)
        x = self.means[torch.arange(B, device=y.device), y] + self.spread.unsqueeze(1) * noise
        return x, y


class MLPEpisode(LabelStream):
    """B random networks ``m → h → c``; a point ``x ~ N(0, I)`` is labelled by its argmax."""

    def __init__(self, w1: Tensor, w2: Tensor, outcomes: torch.Generator) -> None:
        self.w1, self.w2 = w1, w2  # [B, h, m], [B, c, h]
        self.num_agents, self.num_outputs = w2.shape[:2]
        self.num_inputs = w1.size(2)
        self._gen = outcomes
        self._begin()

    def _draw(self) -> tuple[Tensor, Tensor]:
        B, m = self.num_agents, self.num_inputs
        x = torch.randn(B, m, generator=self._gen).to(self.w1.device)
        hidden = torch.tanh(torch.einsum("bhm,bm->bh", self.w1, x))
        return x, torch.einsum("bch,bh->bc", self.w2, hidden).argmax(1)


def class_range(value: int | Sequence[int]) -> tuple[int, int]:
    """``c`` or ``[low, high]`` classes, checked (c >= 2)."""
    if isinstance(value, bool) or not isinstance(value, (int, Sequence)) or isinstance(value, str):
        raise ValueError(f"num_classes (c) must be an int >= 2 or [low, high], got {value!r}")
    try:
        return input_range("num_classes (c)", value, low=2)
    except (TypeError, ValueError):
        raise ValueError(
            f"num_classes (c) must be an int >= 2 or [low, high], got {value!r}"
        ) from None


def _draw_classes(task: Task, num_outputs: int | None, generator: torch.Generator | None) -> int:
    """The batch's c: the one asked for, else drawn from the task's range."""
    if num_outputs is None:
        lo, hi = task.class_range
        return int(torch.randint(lo, hi + 1, (1,), generator=generator)) if hi > lo else lo
    if not isinstance(num_outputs, int) or num_outputs < 2:
        raise ValueError(f"num_outputs (classes) must be an int >= 2, got {num_outputs!r}")
    return num_outputs


class OnlineClassification(Task):
    r"""Classify points of Gaussian clusters drawn per episode, learning the classes online.

    Each episode draws ``c`` class means :math:`\mu_j \sim \mathcal N(0, I_m)`; every step
    shows a point :math:`x = \mu_y + s\,\epsilon` of a uniform random class on the input
    port nodes; the agent answers class scores (``c`` outputs), is scored by the
    cross-entropy in units of :math:`\log c` (uniform scores: 1), and is then shown the
    label on its output nodes (+1 on the true class). Metric ``late_accuracy``: how often
    the highest score is the true class over the last 5 answers.

    Args:
        num_classes (int or [low, high], optional): ``c`` (>= 2); a range draws ``c`` per
            batch. (default: :obj:`3`)
        num_inputs (int, optional): ``m``. (default: :obj:`2`)
        spread (float or [low, high], optional): :math:`s`; a range draws it per episode,
            uniformly. (default: :obj:`0.5`)
        feedback_to (list of int or "all", optional): experts that get the error.
            (default: ``"all"``)
    """

    def __init__(
        self,
        num_classes: int | Sequence[int] = 3,
        num_inputs: int = 2,
        spread: float | Sequence[float] = 0.5,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(feedback_to)
        self.class_range = class_range(num_classes)
        self.num_outputs = self.class_range[1]
        self.num_inputs = input_range("num_inputs (m)", num_inputs)[0]
        lo, hi = (spread, spread) if isinstance(spread, (int, float)) else tuple(spread)
        if not 0 < lo <= hi:
            raise ValueError(f"spread must be > 0 or [low, high], 0 < low <= high, got {spread}")
        self.spread = float(lo) if lo == hi else (float(lo), float(hi))

    def _spread(self, batch_size: int, generator: torch.Generator | None) -> Tensor:
        if isinstance(self.spread, float):
            return torch.full((batch_size,), self.spread)
        lo, hi = self.spread
        return lo + (hi - lo) * torch.rand(batch_size, generator=generator)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> ClassificationEpisode:
        """Draw ``batch_size`` sets of class means."""
        c = _draw_classes(self, num_outputs, generator)
        check_batch_size(batch_size)
        means = torch.randn(batch_size, c, self.num_inputs, generator=generator)
        spread = self._spread(batch_size, generator)
        outcomes = outcome_generator(generator)
        return ClassificationEpisode(means.to(device), spread.to(device), outcomes)

    def chance_level(self, num_outputs: int | None = None) -> float:
        """Uniform scores: 1."""
        return 1.0

    def metrics(self) -> dict:
        """Accuracy of the last 5 answers (the highest score against the label)."""
        return {"late_accuracy": late_accuracy}

    def baselines(self) -> dict:
        """Nearest centroid, 1-nearest-neighbour and online logistic regression."""
        return {
            "nearest_centroid": nearest_centroid,
            "nearest_neighbour": nearest_neighbour,
            "logistic_regression": logistic_regression,
        }

    def __repr__(self) -> str:
        lo, hi = self.class_range
        c = lo if lo == hi else [lo, hi]
        return f"{self.__class__.__name__}(c={c}, m={self.num_inputs}, spread={self.spread})"


class MLPClassification(OnlineClassification):
    r"""Classify points labelled by a random small network, learning the boundaries online.

    Each episode draws a network :math:`y = \arg\max_j W_2\,\tanh(g\,W_1 x)` with Gaussian
    weights (``hidden`` units, gain :math:`g`); points :math:`x \sim \mathcal N(0, I_m)`,
    so the class boundaries are curved, not only linear as between Gaussian clusters.
    Scored, revealed and measured like :class:`OnlineClassification`.

    Args:
        num_classes (int or [low, high], optional): ``c``. (default: :obj:`3`)
        num_inputs (int, optional): ``m``. (default: :obj:`2`)
        hidden (int, optional): hidden units of the labelling network. (default: :obj:`16`)
        gain (float, optional): :math:`g`; larger bends the boundaries more.
            (default: :obj:`1.0`)
        feedback_to (list of int or "all", optional): experts that get the error.
            (default: ``"all"``)
    """

    def __init__(
        self,
        num_classes: int | Sequence[int] = 3,
        num_inputs: int = 2,
        hidden: int = 16,
        gain: float = 1.0,
        feedback_to: Sequence[int] | str = "all",
    ) -> None:
        super().__init__(num_classes, num_inputs, 1.0, feedback_to)
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an int >= 1, got {hidden!r}")
        if not gain > 0:
            raise ValueError(f"gain must be > 0, got {gain!r}")
        self.hidden, self.gain = hidden, float(gain)

    def reset(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        num_outputs: int | None = None,
        device: torch.device | str | None = None,
    ) -> MLPEpisode:
        """Draw ``batch_size`` labelling networks."""
        c = _draw_classes(self, num_outputs, generator)
        check_batch_size(batch_size)
        m, h = self.num_inputs, self.hidden
        w1 = torch.randn(batch_size, h, m, generator=generator) * (self.gain / math.sqrt(m))
        w2 = torch.randn(batch_size, c, h, generator=generator)
        outcomes = outcome_generator(generator)
        return MLPEpisode(w1.to(device), w2.to(device), outcomes)

    def __repr__(self) -> str:
        lo, hi = self.class_range
        c = lo if lo == hi else [lo, hi]
        return (
            f"{self.__class__.__name__}(c={c}, m={self.num_inputs}, hidden={self.hidden}, "
            f"gain={self.gain})"
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


def _neighbour_scores(state: dict, x: Tensor, c: int) -> Tensor:
    if not state["xs"]:
        return x.new_zeros(x.size(0), c)
    xs, ys = torch.stack(state["xs"], 1), torch.stack(state["ys"], 1)  # [B, t, m], [B, t]
    dist = (xs - x.unsqueeze(1)).pow(2).sum(2)  # [B, t]
    onehot = torch.nn.functional.one_hot(ys, c).bool()  # [B, t, c]
    inf = dist.new_tensor(float("inf"))
    nearest = torch.where(onehot, dist.unsqueeze(2), inf).amin(1)  # [B, c]
    # the closest point of each class; classes not seen yet get a neutral score
    return torch.where(nearest.isfinite(), -nearest, nearest.new_full(nearest.shape, -1.0))


def nearest_centroid(episode: LabelStream, steps: int) -> Tensor:
    """Score each class by minus the squared distance to the mean of its points so far.

    (Minus the distance, not a Gaussian log-likelihood with the true spread: that one is
    overconfident after few points and scores a worse cross-entropy.)
    """
    return play(episode, steps, _labelled(_centroid_scores))


def nearest_neighbour(episode: LabelStream, steps: int) -> Tensor:
    """1-nearest-neighbour: score each class by minus the squared distance to its closest point."""
    return play(episode, steps, _labelled(_neighbour_scores))


def _logistic(episode: LabelStream, lr: float):
    B, c, m = episode.num_agents, episode.num_outputs, episode.num_inputs
    W = episode.x.new_zeros(B, c, m + 1)
    state: dict = {}

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

    return act


def logistic_regression(episode: LabelStream, steps: int, lr: float = 0.5) -> Tensor:
    """Multinomial logistic regression, one SGD step per revealed label."""
    return play(episode, steps, _logistic(episode, lr))


def scaled(score, temperature: float):
    """Scores for the seen classes divided by ``temperature``; unseen classes get their mean.

    Raw ``-distance`` scores in more than a few standardized dimensions are overconfident;
    a temperature tuned on meta-training streams (see ``benchmarks/real_datasets.py``)
    gives each hand-written learner its best cross-entropy (accuracy is unchanged). A
    class not seen yet scores the mean of the seen ones, whatever the distances' scale.
    """

    def wrapped(state: dict, x: Tensor, c: int) -> Tensor:
        raw = score(state, x, c)
        if not state["xs"]:
            return raw
        ys = torch.stack(state["ys"], 1)
        seen = torch.nn.functional.one_hot(ys, c).sum(1) > 0  # [B, c]
        raw = raw / temperature
        mean = (raw * seen).sum(1, keepdim=True) / seen.sum(1, keepdim=True)
        return torch.where(seen, raw, mean)

    return wrapped


#: the hand-written learners of :func:`tuned_strategies`
NAMES = ("nearest_centroid", "nearest_neighbour", "logistic_regression")


def tuned_strategies(episode: LabelStream, temperatures: dict[str, float] | None = None) -> dict:
    """Fresh strategies ``act(result, t)`` for ``episode``: nearest centroid, 1-NN, logistic.

    Scores are divided by the temperature ``temperatures`` gives each name (default 1);
    for nearest centroid and 1-NN see :func:`scaled`.
    """
    tau = dict.fromkeys(NAMES, 1.0) | (temperatures or {})
    logistic = _logistic(episode, 0.5)
    return {
        "nearest_centroid": _labelled(scaled(_centroid_scores, tau["nearest_centroid"])),
        "nearest_neighbour": _labelled(scaled(_neighbour_scores, tau["nearest_neighbour"])),
        "logistic_regression": lambda r, t: logistic(r, t) / tau["logistic_regression"],
    }


def tuned_baselines(temperatures: dict[str, float] | None = None) -> dict:
    """:func:`tuned_strategies` as baselines ``play(episode, steps)`` of a task."""

    def baseline(name):
        return lambda ep, steps: play(ep, steps, tuned_strategies(ep, temperatures)[name])

    return {name: baseline(name) for name in NAMES}
