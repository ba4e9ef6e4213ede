"""Callbacks that make long runs safe to interrupt, with checkpoints in the run directory."""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from lightning.pytorch.utilities import rank_zero_warn


def _checkpoint_dir(root: str) -> str:
    return os.path.realpath(os.path.join(os.path.expanduser(str(root)), "checkpoints"))


class RunCheckpoint(ModelCheckpoint):
    """A :class:`~lightning.pytorch.callbacks.ModelCheckpoint` that lives in the run directory.

    Without ``dirpath`` it writes into ``<trainer.default_root_dir>/checkpoints`` (not into
    a versioned logger folder), so one flag moves a whole run and ``--ckpt_path last``
    finds the newest file of the previous run of the same directory. File names carry no
    version counter: a re-run overwrites ``best.ckpt`` / ``last.ckpt``.
    Takes every argument of ``ModelCheckpoint``.
    """

    def __init__(self, dirpath: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(dirpath=dirpath, **kwargs)

    def use_run_dir(self, root: str) -> None:
        """Write into ``root/checkpoints`` unless a ``dirpath`` was given."""
        if self.dirpath is None:
            self.dirpath = _checkpoint_dir(root)

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Resolve the folder from the trainer's run directory."""
        self.use_run_dir(trainer.default_root_dir)
        super().setup(trainer, pl_module, stage)


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
        dirpath (str, optional): folder of the checkpoint. (default:
            ``<trainer.default_root_dir>/checkpoints``)
        filename (str, optional): file name without ``.ckpt``. (default: ``"interrupted"``)
    """

    def __init__(self, dirpath: str | None = None, filename: str = "interrupted") -> None:
        super().__init__(dirpath or ".", filename)
        self._given = dirpath is not None

    def use_run_dir(self, root: str) -> None:
        """Write into ``root/checkpoints`` unless a ``dirpath`` was given."""
        if not self._given:
            self.dirpath = _checkpoint_dir(root)
            self._given = True

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Resolve the folder from the trainer's run directory."""
        self.use_run_dir(trainer.default_root_dir)
        super().setup(trainer, pl_module, stage)

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
