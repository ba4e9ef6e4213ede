"""Backprop through the whole unrolled lifetime (the paper's outer loop)."""

from __future__ import annotations

from torch import Tensor

from badger_graph.errors import NonFiniteError
from badger_graph.outer.base import (
    OuterLoop,
    TrainingContext,
    check_differentiable,
    objective_loss,
)


class Backprop(OuterLoop):
    """The gradient of the objective through every inner step of the lifetime.

    Memory grows with the lifetime length; see :class:`TruncatedBPTT` for long lifetimes.

    Args:
        gradient_clip_val (float, optional): gradient-norm clip. (default: :obj:`1.0`)
    """

    def training_step(self, module: TrainingContext, seed: int, batch_size: int) -> Tensor:
        """Loss of one batch of lifetimes; Lightning does the rest."""
        life = module.lifetime(seed, batch_size, train=True)
        loss = objective_loss(life.errors, module.current_objective())
        if not loss.isfinite():
            raise NonFiniteError("loss", loss, step=module.global_step, where="train batch")
        check_differentiable(loss, module)
        module.log_errors(life.errors, loss, "train", batch_size)
        return loss
