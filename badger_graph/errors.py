"""Errors of badger_graph that callers may want to catch by type."""

from __future__ import annotations

from torch import Tensor


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
