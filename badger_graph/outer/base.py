"""The outer-loop protocol shared by backprop, truncated BPTT and evolution strategies."""

from __future__ import annotations

import torch
from torch import Tensor

OBJECTIVES = ("last", "mean")


def objective_loss(errors: Tensor, objective: str) -> Tensor:
    """Outer-loop loss from ``[T, B]`` errors: last-step (Fig. 6) or mean over steps (Fig. 9)."""
    if objective == "last":
        return errors[-1].mean()
    if objective == "mean":
        return errors.mean()
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def check_differentiable(loss: Tensor, module) -> None:
    """Raise, naming the task, when a loss that should carry a gradient does not.

    A task whose ``StepResult.error`` is detached (or computed outside torch) gives a loss
    without gradient; backprop would fail deep inside autograd.
    """
    if torch.is_grad_enabled() and not loss.requires_grad:
        raise ValueError(
            f"the errors of {type(module.task).__name__} carry no gradient (detached, or "
            f"computed outside torch), so backprop cannot train on them: make "
            f"StepResult.error differentiable with respect to the action, or use the "
            f"EvolutionStrategy outer loop, which needs no gradient"
        )


class OuterLoop:
    """How one training batch of lifetimes changes the weights of a :class:`BadgerModule`.

    Subclasses implement :meth:`training_step`. With ``automatic_optimization = True`` it
    returns the loss and Lightning runs backward, clipping (``gradient_clip_val``) and the
    optimizer step; otherwise it sets the gradients itself and calls :meth:`apply_gradients`.

    Args:
        gradient_clip_val (float, optional): clip the gradient norm to this value before
            each optimizer step (``None``: no clipping). (default: :obj:`1.0`)
    """

    automatic_optimization: bool = True
    #: whether the loop can split a batch of agents across data-parallel processes
    splits_batch: bool = True

    def __init__(self, gradient_clip_val: float | None = 1.0) -> None:
        if gradient_clip_val is not None and not float(gradient_clip_val) > 0:
            raise ValueError(f"gradient_clip_val must be None or > 0, got {gradient_clip_val!r}")
        self.gradient_clip_val = gradient_clip_val

    def check(self, module) -> None:
        """Raise ``ValueError`` if this loop cannot train ``module`` (called at init)."""

    def training_step(self, module, seed: int, batch_size: int) -> Tensor | None:
        """Run and learn from one batch of ``batch_size`` lifetimes drawn from ``seed``."""
        raise NotImplementedError

    # -- data parallel -------------------------------------------------------------------
    @staticmethod
    def share(module, n: int) -> tuple[int, int]:
        """This process' contiguous share ``[lo, hi)`` of ``n`` items (agents, members)."""
        world = module.trainer.world_size if module._trainer is not None else 1
        if n % world:
            raise ValueError(f"{n} must be divisible by the number of processes ({world})")
        rank = module.global_rank
        return rank * n // world, (rank + 1) * n // world

    def batch_share(self, module, batch_size: int) -> tuple[int, int] | None:
        """Agents of a training batch this process runs (``None``: all of them).

        Every process draws the whole batch from the same seed and keeps its share, so W
        processes see exactly the episodes one process would.
        """
        if module._trainer is None or module.trainer.world_size == 1 or not self.splits_batch:
            return None
        return self.share(module, batch_size)

    def apply_gradients(self, module) -> None:
        """Manual optimization's tail: clip, optimizer step, scheduler step (per batch)."""
        opt = module.optimizers()
        if self.gradient_clip_val is not None:
            module.clip_gradients(opt, gradient_clip_val=self.gradient_clip_val)
        opt.step()
        sched = module.lr_schedulers()
        if sched is not None:
            sched.step()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"
