"""The outer-loop protocol shared by backprop, truncated BPTT and evolution strategies.

An outer loop talks to training through :class:`TrainingContext` only (implemented by
:class:`~badger_graph.BadgerModule`): it imports nothing from Lightning and touches no
private member, so a loop runs against any object with these members (tests run every
loop against a plain ``nn.Module``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

if TYPE_CHECKING:
    from badger_graph.curriculum import Curriculum, EpisodeSpec
    from badger_graph.learner import Learner
    from badger_graph.records import Lifetime
    from badger_graph.runner import EpisodeRunner
    from badger_graph.tasks.base import Task

OBJECTIVES = ("last", "mean")


def objective_loss(errors: Tensor, objective: str | Mapping[str, float]) -> Tensor:
    """Outer-loop loss from ``[T, B]`` errors: last-step (Fig. 6) or mean over steps (Fig. 9).

    ``objective`` may be a blend ``{"last": w, "mean": 1 - w}`` (a warm-up ramp).
    """
    if isinstance(objective, Mapping):
        return sum(w * objective_loss(errors, name) for name, w in objective.items())
    if objective == "last":
        return errors[-1].mean()
    if objective == "mean":
        return errors.mean()
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def objective_weights(objective: str | Mapping[str, float]) -> dict[str, float]:
    """``{"last": w_last, "mean": w_mean}`` of an objective or a blend."""
    weights = {"last": 0.0, "mean": 0.0}
    if isinstance(objective, Mapping):
        for name, w in objective.items():
            weights[name] += float(w)
    elif objective in OBJECTIVES:
        weights[objective] = 1.0
    else:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return weights


@dataclasses.dataclass(frozen=True)
class ObjectiveSchedule:
    """The training objective of every batch: a warm-up objective, a ramp, the objective.

    Attributes:
        objective (str): ``"last"`` or ``"mean"``; validation and test always use it.
        warmup_objective (str, optional): objective of the first ``warmup_steps`` batches.
        warmup_steps (int): length of the warm-up in batches.
        warmup_ramp (int): batches after the warm-up over which the loss moves linearly
            from the warm-up objective to ``objective``.
    """

    objective: str = "last"
    warmup_objective: str | None = None
    warmup_steps: int = 0
    warmup_ramp: int = 0

    def __post_init__(self) -> None:
        from badger_graph.errors import check_choice, check_int

        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("warmup_objective", self.warmup_objective, (*OBJECTIVES, None))
        check_int("warmup_steps", self.warmup_steps, 0)
        check_int("warmup_ramp", self.warmup_ramp, 0)
        if self.warmup_ramp and not self.warmup_objective:
            raise ValueError(
                f"warmup_ramp={self.warmup_ramp} moves from warmup_objective to objective: "
                f"set warmup_objective too"
            )

    def at(self, step: int) -> str | dict[str, float]:
        """The objective of training batch ``step``: a name, or a blend ``{name: weight}``."""
        if not self.warmup_objective:
            return self.objective
        step -= self.warmup_steps
        if step < 0:
            return self.warmup_objective
        if step >= self.warmup_ramp or self.warmup_objective == self.objective:
            return self.objective
        weight = (step + 1) / (self.warmup_ramp + 1)
        return {self.warmup_objective: 1.0 - weight, self.objective: weight}


def check_differentiable(loss: Tensor, module: TrainingContext) -> None:
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


@runtime_checkable
class TrainingContext(Protocol):
    """What an outer loop may ask of training: run lifetimes, backward, step, clip, log.

    :class:`~badger_graph.BadgerModule` implements it (most members are Lightning's own);
    it is also an ``nn.Module`` whose ``forward(seed, batch_size, train)`` returns the
    ``[T, B]`` errors (the ES evaluates it with ``torch.func.functional_call``).

    Attributes:
        agent (Learner): the learner being trained.
        runner (EpisodeRunner): draws episodes and runs lifetimes of ``agent``.
        task (Task): the training task.
        curriculum (list of Curriculum): the training curricula.
        spec (EpisodeSpec): this training batch's episode settings.
        global_step (int): optimizer steps so far.
        train_batches (int): training batches so far (skipped ones included).
        world_size (int): data-parallel processes (1 without them).
        global_rank (int): this process' rank.
    """

    agent: Learner
    runner: EpisodeRunner
    task: Task
    curriculum: list[Curriculum]
    spec: EpisodeSpec
    global_step: int
    train_batches: int
    world_size: int
    global_rank: int

    @property
    def device(self) -> torch.device:
        """Where the weights live."""

    def lifetime(self, seed: int, batch_size: int, train: bool = False, **kwargs) -> Lifetime:
        """``batch_size`` fresh lifetimes from ``seed`` (``train``: this batch's settings)."""

    def current_objective(self, stage: str = "train") -> str | dict[str, float]:
        """The objective in force (``"last"``, ``"mean"`` or a blend of the two)."""

    def log_errors(
        self, errors: Tensor, loss: Tensor, stage: str, B: int, life: Lifetime | None = None
    ) -> None:
        """Log a batch's loss and errors."""

    def log(self, name: str, value: Any, **kwargs) -> None:
        """Log one value."""

    def log_dict(self, values: dict, **kwargs) -> None:
        """Log several values."""

    def check_divergence(self, error: float) -> None:
        """Raise when the training error has blown up (the model's divergence guard)."""

    def optimizers(self) -> Any:
        """The optimizer (``zero_grad()``, ``step()``)."""

    def lr_schedulers(self) -> Any:
        """The learning-rate scheduler, or ``None``."""

    def manual_backward(self, loss: Tensor) -> None:
        """Backpropagate ``loss`` (manual optimization)."""

    def clip_gradients(self, optimizer: Any, gradient_clip_val: float | None = None) -> None:
        """Clip the gradient norm."""

    def all_gather(self, data: Tensor) -> Tensor:
        """``data`` of every process, stacked (data-parallel training)."""

    def unchecked(self) -> contextlib.AbstractContextManager:
        """A context in which lifetimes skip their finite checks (vmapped populations)."""

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The trained weights."""

    def named_parameters(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """The trained weights by name (``functional_call``'s keys)."""


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

    def check(self, module: TrainingContext) -> None:
        """Raise ``ValueError`` if this loop cannot train ``module`` (called at init)."""

    def training_step(self, module: TrainingContext, seed: int, batch_size: int) -> Tensor | None:
        """Run and learn from one batch of ``batch_size`` lifetimes drawn from ``seed``."""
        raise NotImplementedError

    # -- data parallel -------------------------------------------------------------------
    @staticmethod
    def share(module: TrainingContext, n: int) -> tuple[int, int]:
        """This process' contiguous share ``[lo, hi)`` of ``n`` items (agents, members)."""
        world = module.world_size
        if n % world:
            raise ValueError(f"{n} must be divisible by the number of processes ({world})")
        rank = module.global_rank
        return rank * n // world, (rank + 1) * n // world

    def batch_share(self, module: TrainingContext, batch_size: int) -> tuple[int, int] | None:
        """Agents of a training batch this process runs (``None``: all of them).

        Every process draws the whole batch from the same seed and keeps its share, so W
        processes see exactly the episodes one process would.
        """
        if module.world_size == 1 or not self.splits_batch:
            return None
        return self.share(module, batch_size)

    def apply_gradients(self, module: TrainingContext) -> None:
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
