"""What a training run does about bad batches: NaN/inf skips with a cap, and divergence.

Kept out of the LightningModule: :class:`TrainingGuard` counts and decides;
:class:`GuardHooks` is the module's side (skip a batch, drop non-finite gradients, stop on
divergence).
"""

from __future__ import annotations

import math

from torch import nn

from badger_graph.errors import DivergenceError, NonFiniteError, check_choice, check_int


class TrainingGuard:
    """Skip or raise on non-finite batches, cap skips in a row, stop a diverging run.

    Args:
        nonfinite (str): ``"raise"`` the :class:`NonFiniteError` or ``"skip"`` the batch.
        max_skipped (int): with ``"skip"``, raise once more batches than this in a row were
            skipped.
        diverged_after (int): raise :class:`DivergenceError` when the training error stays
            above ``diverged_at`` × chance for this many batches in a row (0: never).
        diverged_at (float): see ``diverged_after``.
        chance (float): the task's chance level.
    """

    def __init__(
        self,
        nonfinite: str = "raise",
        max_skipped: int = 10,
        diverged_after: int = 100,
        diverged_at: float = 100.0,
        chance: float = 1.0,
    ) -> None:
        check_choice("nonfinite", nonfinite, ("raise", "skip"))
        check_int("max_skipped", max_skipped, 0)
        check_int("diverged_after", diverged_after, 0)
        if not float(diverged_at) > 0:
            raise ValueError(f"diverged_at must be > 0, got {diverged_at!r}")
        self.nonfinite, self.max_skipped = nonfinite, max_skipped
        self.diverged_after, self.diverged_at, self.chance = diverged_after, diverged_at, chance
        self.skipped = 0  # all skipped batches (saved in checkpoints)
        self._in_a_row = 0
        self._diverged = 0

    @classmethod
    def for_task(
        cls,
        task,
        nonfinite: str = "raise",
        max_skipped: int = 10,
        diverged_after: int = 100,
        diverged_at: float = 100.0,
    ) -> TrainingGuard:
        """The guard of a training run on ``task`` (its chance level, checked)."""
        chance = float(task.chance_level())
        if diverged_after and not (math.isfinite(chance) and chance > 0):
            raise ValueError(
                f"{type(task).__name__}.chance_level() returned {chance!r}: the divergence "
                f"guard compares the training error with it, so it must be finite and > 0 "
                f"(or set diverged_after=0 to turn the guard off)"
            )
        return cls(nonfinite, max_skipped, diverged_after, diverged_at, chance)

    def skip_or_raise(self, err: NonFiniteError, batch: int) -> None:
        """Raise ``err`` (``"raise"``), or count a skip and raise past ``max_skipped``."""
        if self.nonfinite == "raise":
            raise err
        self.skipped += 1
        self._in_a_row += 1
        if self._in_a_row > self.max_skipped:
            raise NonFiniteError(
                f"{self._in_a_row} batches in a row (max_skipped={self.max_skipped}); last: {err}",
                None,
                step=batch,
                where="training batch",
            )

    def passed(self) -> None:
        """A batch went through: the run of skips is over."""
        self._in_a_row = 0

    def check_error(self, error: float, batch: int) -> None:
        """Stop when the training error stays far above chance (a finite blow-up)."""
        limit = self.diverged_at * self.chance
        self._diverged = self._diverged + 1 if error > limit else 0
        if self.diverged_after and self._diverged >= self.diverged_after:
            raise DivergenceError(
                f"training error {error:.4g} has been above diverged_at={self.diverged_at} x "
                f"chance ({limit:.4g}) for {self._diverged} batches in a row at batch {batch} "
                f"(since batch {batch - self._diverged + 1}): lower the learning rate or the "
                f"gradient clip; no checkpoint was written while the error was above the limit",
                batch - self._diverged + 1,
            )

    @property
    def diverging(self) -> bool:
        """Whether the last training error was above the limit (a blow-up may be starting).

        Checkpoints are not written then, so the newest one is from before the blow-up.
        Always ``False`` with the guard off (``diverged_after=0``).
        """
        return bool(self.diverged_after) and self._diverged > 0

    @staticmethod
    def nonfinite_gradients(module: nn.Module) -> list[str]:
        """Names of the parameters whose gradient holds NaN or inf."""
        return [
            n
            for n, p in module.named_parameters()
            if p.grad is not None and not p.grad.isfinite().all()
        ]


class GuardHooks:
    """The bad-batch side of :class:`~badger_graph.BadgerModule` (a LightningModule mixin).

    Needs ``self.guard`` (a :class:`TrainingGuard`) and ``self.train_batches``.
    """

    def _skip(self, err: NonFiniteError) -> None:
        from lightning.pytorch.utilities import rank_zero_warn

        self.guard.skip_or_raise(err, self.train_batches)
        rank_zero_warn(f"skipping training batch {self.train_batches}: {err}")
        self.log("train/skipped", float(self.guard.skipped), on_step=True, batch_size=1)

    def check_divergence(self, error: float) -> None:
        """Stop when the training error stays far above chance (see :class:`TrainingGuard`)."""
        self.guard.check_error(error, self.train_batches)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Non-finite gradients: raise, or drop them all so the optimizer skips the step."""
        bad = self.guard.nonfinite_gradients(self)
        if bad:
            err = NonFiniteError(
                f"gradients of {bad[:3]}", None, step=self.global_step, where="training batch"
            )
            self._skip(err)
            for p in self.parameters():
                p.grad = None  # torch optimizers skip parameters without gradient
