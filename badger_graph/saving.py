"""Checkpoints written safely into the run folder: atomic writes, ``last``/``best``, on interrupt.

:class:`RunCheckpoint` (Lightning's ``ModelCheckpoint`` in ``<run>/checkpoints``) and
:class:`SaveOnInterrupt` (``interrupted.ckpt`` when a run stops on an error or a signal),
both through :class:`AtomicCheckpointIO` (a temporary file in the target folder, then a
rename: a full disk or a kill never leaves a truncated checkpoint).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from badger_graph.resume import as_if_between_batches, before_validation, validation_due
from badger_graph.runfolder import newest_checkpoint


class _InRunDir:
    """A checkpoint callback whose folder defaults to ``<default_root_dir>/checkpoints``."""

    dirpath: str | None

    def use_run_dir(self, root: str) -> None:
        """Write into ``root/checkpoints`` unless a ``dirpath`` was given."""
        if self.dirpath is None:
            self.dirpath = os.path.realpath(
                os.path.join(os.path.expanduser(str(root)), "checkpoints")
            )

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Resolve the folder from the trainer's run directory; write files atomically."""
        self.use_run_dir(trainer.default_root_dir)
        use_atomic_writes(trainer)
        super().setup(trainer, pl_module, stage)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing through :func:`~badger_graph.checkpoint.atomic_save`.

    A temporary file in the checkpoint's own folder, flushed, ``fsync``-ed and renamed over
    the old file: a full disk or a kill mid-write leaves the previous checkpoint whole, and
    the failure raises a :class:`~badger_graph.checkpoint.CheckpointWriteError` naming the
    file (Lightning's writer stages the file in ``$TMPDIR`` and moves it across file
    systems, overwriting the old checkpoint in place).
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        """Write ``checkpoint`` to ``path`` atomically."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        from badger_graph.checkpoint import atomic_save

        atomic_save(checkpoint, path)


def use_atomic_writes(trainer) -> None:
    """Give the trainer :class:`AtomicCheckpointIO` unless it was configured with another writer."""
    strategy = trainer.strategy
    io = getattr(strategy, "_checkpoint_io", None)
    if io is None or type(io) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()


class RunCheckpoint(_InRunDir, ModelCheckpoint):
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
        self._save_after_validation = False

    def _should_skip_saving_checkpoint(self, trainer) -> bool:
        """Lightning's rule, and no checkpoint while the training error is blowing up.

        While :attr:`~badger_graph.guards.TrainingGuard.diverging` holds, ``last.ckpt`` and
        ``best.ckpt`` keep the weights from before the blow-up (what a
        :class:`~badger_graph.errors.DivergenceError` tells the user to resume from).
        """
        guard = getattr(trainer.lightning_module, "guard", None)
        return super()._should_skip_saving_checkpoint(trainer) or bool(
            getattr(guard, "diverging", False)
        )

    def on_train_end(self, trainer, pl_module) -> None:
        """Write ``last.ckpt`` with the final weights when training stops between saves.

        Lightning's ``save_last`` only writes at a save point (every ``every_n_train_steps``
        or validation); a run stopped by ``max_time`` or ``max_steps`` in between would
        leave a ``last.ckpt`` up to ``every_n_train_steps`` batches old.
        """
        if trainer.fast_dev_run:
            return  # a smoke run writes no checkpoint (Lightning's on_train_end would)
        super().on_train_end(trainer, pl_module)
        if (
            self.save_last
            and not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            # ModelCheckpoint's own (protected) save of last.ckpt: it has no public one
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Save every ``every_n_train_steps`` batches, after the batch's validation if one is due.

        A checkpoint written between a batch and its validation counts the batch but not
        the validation: a run killed during the validation and resumed from it would skip
        the validation and lose its row. Such a save waits for the validation's end.
        """
        if self._every_n_train_steps >= 1 and validation_due(trainer):
            step = trainer.global_step
            if step % self._every_n_train_steps == 0 and not trainer.fast_dev_run:
                self._save_after_validation = True
                return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        """Lightning's save at a validation end, plus a periodic save that waited for it."""
        super().on_validation_end(trainer, pl_module)
        if self._save_after_validation and not trainer.sanity_checking:
            self._save_after_validation = False
            if self.save_last and not self._should_skip_saving_checkpoint(trainer):
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class SaveOnInterrupt(_InRunDir, Callback):
    """Save a resumable checkpoint when training stops early, never one that loses work.

    Written on Ctrl-C, SIGTERM and any other exception, as if the run had stopped between
    two batches (see :class:`StopAtSafePoint` for where signals stop a run). Nothing is
    written when this process has not finished a training batch (a run refused by the lock,
    a bad ``init_weights``, an unreadable checkpoint: the folder's earlier checkpoints stay
    the newest), in a ``fast_dev_run``, when the weights hold NaN or inf or training
    diverged, or when the stop came inside the optimizer step (half-updated weights; the
    periodic ``last.ckpt`` is then the state to resume). Resume with ``badger fit --config
    CFG --ckpt_path last`` (the checkpoint furthest in training, :func:`newest_checkpoint`).
    After a run that ends normally the file is removed. SIGKILL cannot be caught: pair this
    with a ``ModelCheckpoint(every_n_train_steps=..., save_last=True)``.

    Unlike Lightning's ``OnExceptionCheckpoint`` it does not make ``Trainer.fit`` without
    ``ckpt_path`` resume the last run.

    Args:
        dirpath (str, optional): folder of the checkpoint. (default:
            ``<trainer.default_root_dir>/checkpoints``)
        filename (str, optional): file name without ``.ckpt``. (default: ``"interrupted"``)
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | None = None, filename: str = "interrupted") -> None:
        if not filename:
            raise ValueError("filename must not be empty")
        self.dirpath = dirpath  # None: resolved from the run directory at setup
        self.filename = filename
        #: the exception that stopped the run (the CLI turns signals into exit codes)
        self.exception: BaseException | None = None
        self._validated_after: int | None = None  # training batches done at the last validation
        self._started_at: int | None = None  # training batches done when this process began
        self._in_step = 0  # > 0 inside the optimizer's step (its closure included)
        #: the weights' version counters of each optimizer (by id) when the step began
        self._versions: dict[int, list[int]] = {}
        self._hooks: list = []

    @property
    def ckpt_path(self) -> str:
        """Where the checkpoint is written."""
        return os.path.join(self.dirpath or ".", self.filename + self.FILE_EXTENSION)

    def on_train_start(self, trainer, pl_module) -> None:
        """Note where this process started and watch the optimizer steps."""
        self._started_at = _batches_done(pl_module)
        self._in_step = 0

        def before(opt, *_: Any) -> None:
            if not self._in_step:  # (steps may nest)
                self._versions = {id(o): _versions(o) for o in trainer.optimizers}
            self._in_step += 1

        def after(*_: Any) -> None:
            self._in_step -= 1

        for opt in trainer.optimizers:
            self._hooks += [opt.register_step_pre_hook(before), opt.register_step_post_hook(after)]

    def on_validation_end(self, trainer, pl_module) -> None:
        """Remember after which training batch the last validation ran."""
        if not trainer.sanity_checking:
            self._validated_after = trainer.fit_loop.epoch_loop.batch_progress.total.completed

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """A run that ended normally needs no interrupt checkpoint."""
        self._remove_hooks()
        if stage == "fit" and self.dirpath is not None and os.path.exists(self.ckpt_path):
            trainer.strategy.remove_checkpoint(self.ckpt_path)

    def _remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def on_exception(self, trainer, pl_module, exception: BaseException, *_: Any) -> None:
        """Write the checkpoint unless that would lose or taint work (see the class)."""
        self.exception = exception
        self._remove_hooks()
        from badger_graph.checkpoint import CheckpointWriteError
        from badger_graph.errors import DivergenceError

        if self.dirpath is None or self._started_at is None or trainer.fast_dev_run:
            return  # stopped before training started: nothing trained, nothing to save
        if isinstance(exception, DivergenceError):
            _name_the_checkpoint_before(exception, self.dirpath)
            return
        if _batches_done(pl_module) <= self._started_at:
            return  # no batch finished in this process: the earlier checkpoints stand

        if isinstance(exception, CheckpointWriteError):
            rank_zero_warn(
                f"not saving {self.ckpt_path}: writing a checkpoint failed ({exception}); "
                f"`--ckpt_path last` resumes from the last complete checkpoint"
            )
            return
        if self._in_step and any(
            _versions(opt) != self._versions.get(id(opt)) for opt in trainer.optimizers
        ):
            rank_zero_warn(
                f"stopped inside the optimizer step: not saving {self.ckpt_path} (the weights "
                f"may be half updated); `--ckpt_path last` resumes from the last periodic "
                f"checkpoint, which is exact"
            )
            return
        bad = [n for n, p in pl_module.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            rank_zero_warn(
                f"not saving {self.ckpt_path}: weights {bad[:3]} hold NaN or inf; "
                f"the last good checkpoint is kept"
            )
            return
        # the checkpoint as a dict, to edit before writing: Lightning has no public way to
        # get it (trainer.save_checkpoint writes it at once)
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if validation_due(trainer):
            before_validation(checkpoint)
        else:
            as_if_between_batches(checkpoint, self._validated_after)
        try:
            trainer.strategy.save_checkpoint(checkpoint, self.ckpt_path)
        except OSError as e:  # say it, but let the error that stopped the run be the one raised
            rank_zero_warn(f"could not save {self.ckpt_path}: {e}")


def _name_the_checkpoint_before(error, folder: str) -> None:
    """Finish a :class:`~badger_graph.errors.DivergenceError`'s message: which checkpoint to resume.

    No checkpoint is written during a blow-up (see
    :meth:`RunCheckpoint._should_skip_saving_checkpoint`), so the folder's newest one is from
    before it, or there is none.
    """
    try:
        newest = newest_checkpoint(folder)
    except ValueError:
        newest = None
    if newest is None:
        tail = (
            f"; no checkpoint from before the blow-up exists in {folder!r} (the run diverged "
            f"before its first checkpoint): start again with a lower learning rate"
        )
    else:
        from badger_graph.checkpoint import read_checkpoint

        ckpt = read_checkpoint(newest)
        done = int(ckpt.get("badger_graph_train_batches", ckpt.get("global_step", 0)))
        tail = (
            f"; {str(newest)!r} (after {done} batches) is from before the blow-up: resume it "
            f"with --ckpt_path last and a lower --model.optimizer.init_args.lr"
        )
    error.args = (str(error) + tail, *error.args[1:])


def _versions(optimizer) -> list[int]:
    """In-place version counters of an optimizer's parameters (they change on an update).

    Inside ``optimizer.step(closure)`` the closure (forward, backward) leaves them alone;
    a stop after the first parameter was updated shows as a changed counter.
    """
    return [p._version for group in optimizer.param_groups for p in group["params"]]


def _batches_done(pl_module) -> int:
    """Training batches done by ``pl_module`` (its ``train_batches``, else the global step)."""
    done = getattr(pl_module, "train_batches", None)
    return int(pl_module.global_step if done is None else done)
