"""Curricula: what the training episodes look like at each training batch.

A curriculum is a small object with one method, :meth:`Curriculum.apply`, that takes the
:class:`EpisodeSpec` of a training batch and returns it with its own settings filled in.
The spec of batch ``step`` is :func:`episode_spec` of the model's curricula: it starts from
an empty spec every batch, so a curriculum that stops applying leaves nothing behind, and
it is a pure function of the step, so a resumed run follows the same curriculum. The
episodes draw the batch's ``d`` and number of experts from the batch's own seed.

YAML (under ``model:``)::

    curriculum:
      - class_path: badger_graph.curriculum.RangeCurriculum
        init_args: {num_outputs: [3, 6], start_step: 3000}
      - class_path: badger_graph.curriculum.AddressCurriculum
        init_args: {fixed_steps: 3000}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """How the episodes of one training batch are drawn (empty: the model's defaults).

    Attributes:
        num_outputs (tuple of two ints, optional): inclusive range of ``d``.
        per_agent (bool): draw ``d`` for every agent separately.
        num_experts (tuple of two ints, optional): inclusive range of experts per agent.
        experts_scale (str): how the number of experts is drawn from its range:
            ``"uniform"`` or ``"log"`` (log-uniform: as many batches with 5..9 experts as
            with 20..39).
        address_seed (int, optional): one set of port addresses for the whole batch, drawn
            from this seed (``None``: fresh addresses per episode).
        growth (GrowthCurriculum, optional): draws mid-lifetime growth events.
        family_weights (tuple of float, optional): how often a
            :class:`~badger_graph.tasks.TaskMixture` draws each family in this batch
            (``None``: the mixture's own weights).
        rounds (tuple of two ints, optional): inclusive range of communication rounds per
            inner step for this batch (``None``: the agent's own ``rounds``).
    """

    num_outputs: tuple[int, int] | None = None
    per_agent: bool = False
    num_experts: tuple[int, int] | None = None
    experts_scale: str = "uniform"
    address_seed: int | None = None
    growth: GrowthCurriculum | None = None
    family_weights: tuple[float, ...] | None = None
    rounds: tuple[int, int] | None = None


class Curriculum:
    """Base class: fill in the settings of a training batch's :class:`EpisodeSpec`."""

    def apply(self, spec: EpisodeSpec, step: int) -> EpisodeSpec:  # pragma: no cover
        """``spec`` with this curriculum's settings for training batch ``step``."""
        raise NotImplementedError

    def check(self, task) -> None:
        """Raise ``ValueError`` if this curriculum cannot drive ``task`` (called at init)."""


def episode_spec(curricula: Sequence[Curriculum], step: int) -> EpisodeSpec:
    """The spec of training batch ``step``: each curriculum applied in order to an empty spec."""
    spec = EpisodeSpec()
    for curriculum in curricula:
        spec = curriculum.apply(spec, step)
    return spec


def _check_range(name: str, value: Sequence[int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    if len(value) != 2:
        raise ValueError(f"{name} must be [low, high], got {list(value)}")
    lo, hi = int(value[0]), int(value[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got [{lo}, {hi}] (empty range)")
    return lo, hi


class RangeCurriculum(Curriculum):
    """Sample ``d``, the number of experts and/or of rounds from a range per training batch.

    A curriculum on the number of hops: fewer experts (every expert near the one that hears
    the error) or fewer rounds per step early in training, then the model's own.

    Args:
        num_outputs (list of two ints, optional): ``[low, high]`` of ``d`` (inclusive).
        num_experts (list of two ints, optional): ``[low, high]`` of experts (inclusive).
        rounds (list of two ints, optional): ``[low, high]`` of communication rounds per
            inner step (inclusive; BADGER agents only). Validation and test play the
            model's ``rounds``.
        start_step (int, optional): first training batch it applies to. (default: :obj:`0`)
        end_step (int, optional): first batch it no longer applies to. (default: never)
        per_agent (bool, optional): draw ``d`` for every agent of the batch separately
            (agents of one batch then have different numbers of ports). (default: ``False``)
        experts_scale (str, optional): draw the number of experts ``"uniform"`` over its
            range or ``"log"``-uniform (equal shares of batches per factor of two, so small
            and large agents are trained alike). (default: ``"uniform"``)
    """

    def __init__(
        self,
        num_outputs: Sequence[int] | None = None,
        num_experts: Sequence[int] | None = None,
        start_step: int = 0,
        end_step: int | None = None,
        per_agent: bool = False,
        experts_scale: str = "uniform",
        rounds: Sequence[int] | None = None,
    ) -> None:
        if experts_scale not in ("uniform", "log"):
            raise ValueError(f"experts_scale must be 'uniform' or 'log', got {experts_scale!r}")
        self.experts_scale = experts_scale
        self.per_agent = per_agent
        self.num_outputs = _check_range("num_outputs", num_outputs)
        self.num_experts = _check_range("num_experts", num_experts)
        self.rounds = _check_range("rounds", rounds)
        if start_step < 0 or (end_step is not None and end_step <= start_step):
            raise ValueError(
                f"need 0 <= start_step < end_step, got start_step={start_step}, end_step={end_step}"
            )
        self.start_step = start_step
        self.end_step = end_step

    def active(self, step: int) -> bool:
        """Whether this range applies at training batch ``step``."""
        return self.start_step <= step and (self.end_step is None or step < self.end_step)

    def apply(self, spec: EpisodeSpec, step: int) -> EpisodeSpec:
        """Set the ranges while active; outside its steps the spec stays as it is."""
        if not self.active(step):
            return spec
        changes = {"per_agent": self.per_agent}
        for key in ("num_outputs", "num_experts", "rounds"):
            value = getattr(self, key)
            if value is not None:
                changes[key] = value
        if self.num_experts is not None:
            changes["experts_scale"] = self.experts_scale
        return dataclasses.replace(spec, **changes)


class FamilyCurriculum(Curriculum):
    """Train on a task mixture's families in stages, e.g. from easy to hard.

    Each stage is ``[start_step, weights]``: from that training batch on, the
    :class:`~badger_graph.tasks.TaskMixture` draws its families with these weights (a zero
    leaves a family out) until the next stage starts. Validation and tests use the
    mixture's own weights.

    YAML::

        curriculum:
        - class_path: badger_graph.curriculum.FamilyCurriculum
          init_args: {stages: [[0, [1, 1, 0, 0]], [1000, [1, 1, 1, 1]]]}

    Args:
        stages (list of [int, list of float]): start steps (increasing, the first 0) and
            the weights from each.
    """

    def __init__(self, stages: Sequence[Sequence]) -> None:
        stages = [(int(start), tuple(float(w) for w in weights)) for start, weights in stages]
        starts = [start for start, _ in stages]
        if not stages or starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError(f"stages must start at step 0 in increasing order, got {starts}")
        widths = {len(w) for _, w in stages}
        if len(widths) != 1:
            raise ValueError(f"every stage needs one weight per family, got lengths {widths}")
        for start, weights in stages:
            if min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(
                    f"stage at step {start}: weights must be >= 0 with a positive sum, "
                    f"got {list(weights)}"
                )
        self.stages = stages

    def check(self, task) -> None:
        """Raise unless ``task`` is a mixture of as many families as each stage weighs."""
        from badger_graph.tasks.mixture import TaskMixture

        if not isinstance(task, TaskMixture):
            raise ValueError(
                f"a FamilyCurriculum needs a TaskMixture, the task is {type(task).__name__}"
            )
        width = len(self.stages[0][1])
        if width != len(task.tasks):
            raise ValueError(
                f"the FamilyCurriculum gives {width} weights for a mixture of "
                f"{len(task.tasks)} families"
            )

    def apply(self, spec: EpisodeSpec, step: int) -> EpisodeSpec:
        """The weights of the last stage started at ``step``."""
        weights = [w for start, w in self.stages if start <= step][-1]
        return dataclasses.replace(spec, family_weights=weights)


class AddressCurriculum(Curriculum):
    """Fixed port addresses first, random addresses per episode afterwards.

    For the first ``fixed_steps`` batches every episode of a batch shares one set of
    addresses, re-drawn every ``redraw_every`` batches.

    Args:
        fixed_steps (int, optional): batches with fixed addresses. (default: :obj:`3000`)
        redraw_every (int, optional): batches between re-draws. (default: :obj:`600`)
        seed (int, optional): seed of the fixed addresses. (default: :obj:`0`)
    """

    def __init__(self, fixed_steps: int = 3000, redraw_every: int = 600, seed: int = 0) -> None:
        if fixed_steps < 0:
            raise ValueError(f"fixed_steps must be >= 0, got {fixed_steps}")
        if redraw_every < 1:
            raise ValueError(f"redraw_every must be >= 1, got {redraw_every}")
        self.fixed_steps = fixed_steps
        self.redraw_every = redraw_every
        self.seed = seed

    def address_seed(self, step: int) -> int | None:
        """Seed of the fixed addresses at training batch ``step`` (``None``: random)."""
        if step >= self.fixed_steps:
            return None
        return self.seed * 1_000_003 + step // self.redraw_every

    def apply(self, spec: EpisodeSpec, step: int) -> EpisodeSpec:
        """Fix or free the addresses for this batch."""
        return dataclasses.replace(spec, address_seed=self.address_seed(step))


class GrowthCurriculum(Curriculum):
    """Grow the agents mid-lifetime in some training batches (teaches growth at inference).

    In each training batch from ``start_step`` on, with probability ``probability`` (drawn
    from the batch's seed), every agent of the batch grows once: before a step drawn from
    ``steps``, by ``round(n * (factor - 1))`` experts (at least 1) with ``factor`` drawn
    from ``factor`` and ``n`` the batch's number of experts, cloned or fresh (drawn from
    ``modes``).

    Args:
        probability (float, optional): share of batches that grow. (default: :obj:`0.5`)
        factor (list of two floats, optional): ``[low, high]`` size after / before.
            (default: ``[1.5, 4.0]``)
        steps (list of two ints, optional): ``[low, high]`` inner step of the growth
            (inclusive). (default: ``[1, 15]``)
        modes (list of str, optional): growth modes to draw from.
            (default: ``["clone", "fresh"]``)
        start_step (int, optional): first training batch it applies to. (default: :obj:`0`)
        max_experts (int, optional): never grow an agent beyond this many experts (the
            growth is cut to fit, or skipped). (default: :obj:`None`: no limit)
    """

    def __init__(
        self,
        probability: float = 0.5,
        factor: Sequence[float] = (1.5, 4.0),
        steps: Sequence[int] = (1, 15),
        modes: Sequence[str] = ("clone", "fresh"),
        start_step: int = 0,
        max_experts: int | None = None,
    ) -> None:
        from badger_graph.growth import MODES

        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if len(factor) != 2 or not 1.0 < float(factor[0]) <= float(factor[1]):
            raise ValueError(f"factor must be [low, high] with 1 < low <= high, got {factor}")
        if len(steps) != 2 or not 1 <= int(steps[0]) <= int(steps[1]):
            raise ValueError(f"steps must be [low, high] with 1 <= low <= high, got {steps}")
        bad = [m for m in modes if m not in MODES]
        if not modes or bad:
            raise ValueError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}")
        if start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if max_experts is not None and (not isinstance(max_experts, int) or max_experts < 1):
            raise ValueError(f"max_experts must be None or an int >= 1, got {max_experts!r}")
        self.max_experts = max_experts
        self.probability = float(probability)
        self.factor = (float(factor[0]), float(factor[1]))
        self.steps = (int(steps[0]), int(steps[1]))
        self.modes = tuple(modes)
        self.start_step = start_step

    def apply(self, spec: EpisodeSpec, step: int) -> EpisodeSpec:
        """Grow in this batch's lifetimes from ``start_step`` on."""
        if step < self.start_step:
            return spec
        return dataclasses.replace(spec, growth=self)

    def draw(self, generator, num_experts: int, inner_steps: int) -> list:
        """The growth events of one batch, drawn from the batch's generator."""
        import torch

        from badger_graph.growth import GrowthEvent

        u = torch.rand(3, generator=generator).tolist()
        step = int(torch.randint(self.steps[0], self.steps[1] + 1, (1,), generator=generator))
        mode = self.modes[int(torch.randint(len(self.modes), (1,), generator=generator))]
        if u[0] >= self.probability or step >= inner_steps:
            return []
        factor = self.factor[0] + (self.factor[1] - self.factor[0]) * u[1]
        count = max(1, round(num_experts * (factor - 1)))
        if self.max_experts is not None:
            count = min(count, self.max_experts - num_experts)
            if count < 1:
                return []
        return [GrowthEvent(step, count, mode)]
