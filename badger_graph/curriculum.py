"""Curricula as Lightning callbacks: what the training episodes look like at each step.

Each callback writes into ``BadgerModule.curriculum`` before every training batch, as a
pure function of ``trainer.global_step`` (so a resumed run follows the same curriculum).
The module draws the batch's ``d`` and number of experts from the batch's own seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.callbacks import Callback


def _check_range(name: str, value: Sequence[int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    if len(value) != 2:
        raise ValueError(f"{name} must be [low, high], got {list(value)}")
    lo, hi = int(value[0]), int(value[1])
    if lo < 1 or hi < lo:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got [{lo}, {hi}] (empty range)")
    return lo, hi


class RangeCurriculum(Callback):
    """Sample ``d`` and/or the number of experts uniformly from a range per training batch.

    Args:
        num_outputs (list of two ints, optional): ``[low, high]`` of ``d`` (inclusive).
        num_experts (list of two ints, optional): ``[low, high]`` of experts (inclusive).
        start_step (int, optional): first training batch it applies to. (default: :obj:`0`)
        end_step (int, optional): first batch it no longer applies to. (default: never)
        per_agent (bool, optional): draw ``d`` for every agent of the batch separately
            (agents of one batch then have different numbers of ports). (default: ``False``)
    """

    def __init__(
        self,
        num_outputs: Sequence[int] | None = None,
        num_experts: Sequence[int] | None = None,
        start_step: int = 0,
        end_step: int | None = None,
        per_agent: bool = False,
    ) -> None:
        self.per_agent = per_agent
        self.num_outputs = _check_range("num_outputs", num_outputs)
        self.num_experts = _check_range("num_experts", num_experts)
        if start_step < 0 or (end_step is not None and end_step <= start_step):
            raise ValueError(
                f"need 0 <= start_step < end_step, got start_step={start_step}, end_step={end_step}"
            )
        self.start_step = start_step
        self.end_step = end_step

    def active(self, step: int) -> bool:
        """Whether this range applies at training batch ``step``."""
        return self.start_step <= step and (self.end_step is None or step < self.end_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Set (or clear) the ranges for this batch."""
        if not self.active(trainer.global_step):
            return
        for key in ("num_outputs", "num_experts"):
            value = getattr(self, key)
            if value is not None:
                pl_module.curriculum[key] = value
        pl_module.curriculum["per_agent"] = self.per_agent


class AddressCurriculum(Callback):
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

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Fix or free the addresses for this batch."""
        pl_module.curriculum["address_seed"] = self.address_seed(trainer.global_step)


class GrowthCurriculum(Callback):
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

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Put (or remove) the growth settings for this batch."""
        if trainer.global_step >= self.start_step:
            pl_module.curriculum["growth"] = self
        else:
            pl_module.curriculum.pop("growth", None)

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
