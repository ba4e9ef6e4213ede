"""The compared families: which episodes a learner plays and how a lifetime is scored.

A :class:`Family` is a score (errors ``[T, B]`` → one number per episode) and the
:class:`Point` objects it is measured at: in distribution (the trained task) and out of it
(a wider task, a longer lifetime, more experts). :func:`play_point` plays a runner at a
point on the fresh episodes of a key, so every learner and baseline faces the same ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import Tensor

from badger_graph.errors import NoExpertsAxisError
from badger_graph.evaluation import play
from badger_graph.learner import FixedWidthLearner
from badger_graph.runner import EpisodeRunner
from badger_graph.tasks import (
    BernoulliBandits,
    GuessingGame,
    OnlineClassification,
    OnlineRegression,
    SinusoidRegression,
)

#: the learners compared, each from ``configs/compare/<family>_<learner>.yaml`` if it exists
LEARNERS = {
    "badger": "BADGER",
    "rnn": "monolithic (RL2)",
    "transformer": "Transformer (in-context)",
    "rnn_wide": "RL2, width-agnostic",
    "transformer_wide": "Transformer, width-agnostic",
    "maml": "MAML",
}


@dataclasses.dataclass
class Point:
    """One column of a family's table: a task (None: the trained one), T, experts for d."""

    label: str
    task: object | None = None
    steps: int | None = None
    experts: int | None = None  # BADGER's own axis: more experts than in training
    judge: Callable[[Tensor], Tensor] | None = None  # another score (e.g. another shot)


@dataclasses.dataclass
class Family:
    """A family's score (``judge``: errors ``[T, B]`` → per-episode score ``[B]``), its points."""

    score: str
    judge: Callable[[Tensor], Tensor]
    points: list[Point]

    def judge_of(self, point: Point) -> Callable[[Tensor], Tensor]:
        """The score at ``point``: its own judge, else the family's."""
        return point.judge or self.judge


FAMILIES = {
    "guessing": Family(
        "final error (last step)",
        lambda e: e[-1],
        [
            Point("in distribution (d=3, T=20)"),
            Point("T=40", steps=40),
            Point("d=5", GuessingGame(5, feedback="scalar", feedback_to=[0])),
        ],
    ),
    "fig7": Family(
        "final error (last step)",
        lambda e: e[-1],
        [
            Point("in distribution (d=3, 20 experts)"),
            Point("d=6", GuessingGame(6, feedback="scalar", feedback_to="all")),
            Point("d=10", GuessingGame(10, feedback="scalar", feedback_to="all")),
            Point("d=20", GuessingGame(20, feedback="scalar", feedback_to="all")),
            Point("T=40", steps=40),
            Point("d=3, 100 experts", experts=100),
        ],
    ),
    "sinusoid": Family(
        "squared error after K shots (step K)",
        lambda e: e[5],
        [
            Point("5-shot (T=20)"),
            Point("10-shot (T=20)", judge=lambda e: e[10]),
            Point(
                "10-shot, amplitude in [5, 10]",
                SinusoidRegression(amplitude=(5.0, 10.0)),
                judge=lambda e: e[10],
            ),
            Point("30-shot (T=40)", steps=40, judge=lambda e: e[30]),
        ],
    ),
    "bandits": Family(
        "cumulative regret",
        lambda e: e.sum(0),
        [
            Point("in distribution (k=3..5, T=20)"),
            Point("k=3, T=20", BernoulliBandits(3)),
            Point("k=5, T=10", BernoulliBandits(5), steps=10),
            Point("k=5, T=100", BernoulliBandits(5), steps=100),
            Point("k=10, T=10", BernoulliBandits(10), steps=10),
            Point("k=10, T=100", BernoulliBandits(10), steps=100),
        ],
    ),
    "regression": Family(
        "error after 10 observations",
        lambda e: e[10],
        [
            Point("in distribution (m=2..4, T=20)"),
            Point("m=1", OnlineRegression(1)),
            Point("m=8", OnlineRegression(8)),
            Point("T=40", steps=40),
        ],
    ),
    "classification": Family(
        "mean cross-entropy / log c",
        lambda e: e.mean(0),
        [
            Point("in distribution (c=3, m=2, T=20)"),
            Point("T=40", steps=40),
            Point("c=5", OnlineClassification(5, 2, 0.5)),
            Point("c=6", OnlineClassification(6, 2, 0.5)),
        ],
    ),
}


def point_key(families: dict[str, Family], name: str, index: int) -> int:
    """The episode key of point ``index`` of family ``name``: one key, one set of episodes."""
    return 1000 * list(families).index(name) + index


def play_point(
    trained: EpisodeRunner,
    point: Point,
    episodes: int,
    batch: int,
    key: int,
    learner: bool = True,
    baselines: bool | set[str] = False,
) -> dict[str, Tensor | None]:
    """Errors ``[T, N]`` at ``point`` of the runner's learner and/or the task's baselines.

    A runner of this point is derived (``trained`` is left as it is); the episodes are those
    of :func:`~badger_graph.evaluation.play` under ``key``. A baseline that cannot be
    computed at the point is ``None``.

    Raises:
        NoExpertsAxisError: a point that adds experts, asked of a learner without experts.
        TaskTooWideError: a fixed-width learner asked to play a wider task.
    """
    task = point.task if point.task is not None else trained.task
    experts = trained.agent.experts_for(task.num_outputs, point.experts or trained.num_experts)
    if learner and point.experts and isinstance(trained.agent, FixedWidthLearner):
        raise NoExpertsAxisError(f"{type(trained.agent).__name__} has no experts to add")
    runner = trained.replace(
        task=task, num_experts=experts, inner_steps=point.steps or trained.inner_steps
    )
    return play(runner, episodes, batch, (key,), learner=learner, baselines=baselines)


def family_of(families: dict[str, Family], name: str) -> Family:
    """``families[name]``.

    Raises:
        ValueError: naming the unknown family and the known ones.
    """
    if name not in families:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(families)}")
    return families[name]
