"""Errors of badger_graph that callers may want to catch by type."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def check_choice(name: str, value, choices: Sequence) -> None:
    """Raise ``ValueError`` naming ``name`` and ``value`` unless ``value`` is in ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_int(name: str, value, low: int, optional: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int ``>= low`` (or ``None`` if optional)."""
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


class NonFiniteError(FloatingPointError):
    """NaN or inf in a named tensor, at a given training batch or inner step and round.

    Attributes:
        tensor (str): what held the NaN / inf (``"messages"``, ``"expert states"``, ...).
        step (int): the inner step (or training batch, for ``where="training batch"``).
        round (int): the communication round within the inner step, when it applies.
    """

    def __init__(
        self,
        tensor: str,
        value: Tensor | None,
        step: int | None = None,
        round: int | None = None,
        where: str = "",
    ) -> None:
        self.tensor, self.step, self.round = tensor, step, round
        msg = f"NaN or inf in {tensor}"
        if step is not None:
            msg += f" at {where or 'step'} {step}"
        if round is not None:
            msg += f", round {round}"
        if value is not None:
            v = value.detach()
            msg += f" ({int((~v.isfinite()).sum())} of {v.numel()} values non-finite)"
        super().__init__(msg)


class DivergenceError(ArithmeticError):
    """Training error far above chance for many batches in a row (a finite blow-up).

    Attributes:
        since (int, optional): the training batch from which the error stayed above the limit.
    """

    def __init__(self, message: str, since: int | None = None) -> None:
        super().__init__(message)
        self.since = since


class RunFolderError(RuntimeError):
    """A run folder cannot be used as asked: it holds another run, or a run is writing there.

    The command line prints its message without a traceback (exit status 2): it names the
    folder and the choices (resume with ``--ckpt_path last``, another
    ``--trainer.default_root_dir``, or how to clear a stale lock).
    """


class RunFolderNotWritable(RunFolderError, PermissionError):
    """The run folder cannot be created or written (read-only, no permission, not a folder)."""


class ConfigError(ValueError):
    """A setting of the command line or the config that cannot run, named with its value.

    The command line prints it as one line (exit status 2), like a parser error.
    """


class TaskTooWideError(ValueError):
    """A fixed-width learner asked to play a task wider than it was built for.

    ``d`` / ``m``: the task's outputs and inputs; ``max_outputs`` / ``max_inputs``: the
    learner's. An evaluation that sweeps widths reports the point as "cannot run".
    """

    def __init__(self, message: str, d: int = 0, m: int = 0, max_outputs=0, max_inputs=0):
        super().__init__(message)
        self.d, self.m, self.max_outputs, self.max_inputs = d, m, max_outputs, max_inputs


class NoExpertsAxisError(ValueError):
    """A point of an evaluation that adds experts, asked of a learner without experts.

    A comparison table shows the point as "—" for that learner.
    """


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, unsafe, foreign, or not fitting."""


def all_finite(value: Tensor) -> bool:
    """No NaN / inf in ``value``: one sum (NaN and inf propagate), exact check if it is not."""
    return bool(value.sum().isfinite()) or bool(value.isfinite().all())


def check_finite(name: str, value: Tensor, step: int, round: int | None = None) -> None:
    """Raise a :class:`NonFiniteError` naming ``name``, the step and round, on NaN or inf."""
    if not all_finite(value):
        raise NonFiniteError(name, value, step=step, round=round, where="inner step")
