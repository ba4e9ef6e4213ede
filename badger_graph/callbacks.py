"""Callbacks that make long runs safe to interrupt."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.utilities import rank_zero_warn


class SaveOnInterrupt(OnExceptionCheckpoint):
    """Save a resumable checkpoint when training stops early, never one with bad weights.

    Lightning's :class:`~lightning.pytorch.callbacks.OnExceptionCheckpoint` fires on
    Ctrl-C, on SIGTERM (Lightning turns it into an exception at the end of the current
    batch) and on any other exception; this subclass refuses to write when a weight holds
    NaN or inf, so the checkpoints written before stay the newest good state. Resume with
    ``badger fit --config CFG --ckpt_path last`` (Lightning picks the newest of this file
    and the ``ModelCheckpoint`` last checkpoints). After a run that ends normally the file
    is removed. SIGKILL cannot be caught: pair this with a
    ``ModelCheckpoint(every_n_train_steps=..., save_last=True)``.

    Args:
        dirpath (str): folder of the checkpoint.
        filename (str, optional): file name without ``.ckpt``. (default: ``"interrupted"``)
    """

    def __init__(self, dirpath: str, filename: str = "interrupted") -> None:
        super().__init__(dirpath, filename)

    def on_exception(self, trainer, pl_module, exception: BaseException, *_: Any) -> None:
        """Write the checkpoint unless the weights are non-finite."""
        bad = [n for n, p in pl_module.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            rank_zero_warn(
                f"not saving {self.ckpt_path}: weights {bad[:3]} hold NaN or inf; "
                f"the last good checkpoint is kept"
            )
            return
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        _as_if_between_batches(checkpoint)
        trainer.strategy.save_checkpoint(checkpoint, self.ckpt_path)


def _as_if_between_batches(checkpoint: dict) -> None:
    """Make a mid-batch checkpoint look like one taken at the end of the previous batch.

    Lightning's periodic checkpoints are taken at batch ends. The interrupted batch took
    no optimizer step, so weights, optimizer and global step already are those of the end
    of the previous batch; only the fit loop's batch counters ran ahead, and a resumed run
    would then validate and log one batch early. Leaves the checkpoint as it is when its
    layout is not the one expected.
    """
    try:
        epoch = checkpoint["loops"]["fit_loop"]
        progress = epoch["epoch_loop.batch_progress"]
        state = epoch["epoch_loop.state_dict"]
    except (KeyError, TypeError):
        return
    total, current = progress.get("total"), progress.get("current")
    if not total or not current or total["ready"] <= total["processed"]:
        return  # between batches already (e.g. SIGTERM, handled at a batch end)
    for counts in (total, current):
        done = counts["completed"]
        counts.update(ready=done, started=done, processed=done, completed=done - 1)
    if "_batches_that_stepped" in state:
        state["_batches_that_stepped"] -= 1
