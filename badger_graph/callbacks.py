"""Callbacks that make long runs safe to interrupt, with checkpoints in the run directory."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from badger_graph.runfolder import (  # noqa: F401 (imported from here by users)
    RunLock,
    check_checkpoint_file,
    check_run_dir,
    newest_checkpoint,
    run_folder,
)


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
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Save every ``every_n_train_steps`` batches, after the batch's validation if one is due.

        A checkpoint written between a batch and its validation counts the batch but not
        the validation: a run killed during the validation and resumed from it would skip
        the validation and lose its row. Such a save waits for the validation's end.
        """
        if self._every_n_train_steps >= 1 and _validation_due(trainer):
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


class ElapsedTime(Callback):
    """Log the training's wall-clock seconds as ``train/seconds`` (learning curves over time).

    Counted over every process of the run: the seconds of an interrupted run are saved in
    its checkpoints and go on from there on resume, so a curve against seconds is the
    run's, not the last process's. Logged with the training rows (``log_every_n_steps``).
    """

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self._before = 0.0  # seconds of the earlier processes of this run
        self._start: float | None = None

    @property
    def seconds(self) -> float:
        """Training seconds so far."""
        return self._before + (0.0 if self._start is None else self._clock() - self._start)

    def on_train_start(self, trainer, pl_module) -> None:
        """Start the clock."""
        self._start = self._clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Log the seconds so far with the batch's row."""
        pl_module.log("train/seconds", self.seconds, on_step=True, batch_size=1)

    def state_dict(self) -> dict:
        """The seconds so far (saved in checkpoints)."""
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        """Go on from a checkpoint's seconds."""
        self._before = float(state_dict.get("seconds", 0.0))


class ThreadTuner(Callback):
    """Torch's intra-op thread count for training batches, measured or pinned.

    A :class:`~badger_graph.threads.ThreadChooser` times a few training batches with each
    candidate count (1 and all cores), keeps the faster and measures again every
    ``recheck_every`` batches; the count in force is logged as ``train/threads``.

    Args:
        threads (int or "auto"): ``"auto"`` or a count to pin. (default: ``"auto"``)
        recheck_every (int): batches between measurements. (default: :obj:`200`)
    """

    def __init__(self, threads: int | str = "auto", recheck_every: int = 200) -> None:
        from badger_graph.threads import ThreadChooser

        self.chooser = ThreadChooser(threads, recheck_every=recheck_every)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Set the batch's thread count and start its clock."""
        self.chooser.before_batch()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Stop the clock; log the count."""
        self.chooser.after_batch()
        pl_module.log("train/threads", float(torch.get_num_threads()), on_step=True, batch_size=1)


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
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if _validation_due(trainer):
            _before_validation(checkpoint)
        else:
            _as_if_between_batches(checkpoint, self._validated_after)
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


class StopAtSafePoint(Callback):
    """Ctrl-C and SIGTERM stop a run between two batches, never inside one.

    The first SIGINT or SIGTERM only asks the run to stop: it goes on to the end of the
    current batch (and of the validation and checkpoints due after it) and stops when the
    next batch would start, so the interrupt checkpoint is exact. A second Ctrl-C stops at
    once (saying that the resume may then not be exact). Installed from the sanity check
    on, in the main thread of a single-process run; under data-parallel training
    Lightning's own SIGTERM handling stays in force.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def _install(self, trainer) -> None:
        if self._previous or trainer.world_size > 1:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested is None:
            self.requested = signum
            print(
                f"\n{name} received: stopping after the current batch (and its validation "
                f"and checkpoints); press Ctrl-C again to stop at once (the resume may then "
                f"not be exact)",
                file=sys.stderr,
                flush=True,
            )
            return
        print(
            f"\n{name} received again: stopping at once; the resume may not be exact",
            file=sys.stderr,
            flush=True,
        )
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        self._restore()
        if signum == signal.SIGTERM:
            from lightning.pytorch.utilities.exceptions import SIGTERMException

            raise SIGTERMException
        raise KeyboardInterrupt

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        """Handle signals from the sanity check on."""
        self._install(trainer)

    def on_train_start(self, trainer, pl_module) -> None:
        """Handle signals (when no sanity check ran)."""
        self._install(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """The safe point: stop here, before the batch, when a signal asked for it."""
        if self.requested is not None:
            self._stop(self.requested)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """Give the signals back to their earlier handlers."""
        self._restore()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """Give the signals back to their earlier handlers."""
        self._restore()


class ExactResume(Callback):
    """A run resumed from any checkpoint logs the same steps as one uninterrupted run.

    Lightning writes the checkpoint of a run that ended (``max_steps``, ``max_time``) after
    its one endless epoch was marked complete; resumed for more batches (``--ckpt_path
    last`` with a larger ``max_steps``), Lightning then starts epoch 1 and counts the
    logger step once more, so every later row is labelled one step late (the validation
    after batch 30 as step 30, not 29) and the training rows hold the batch before the one
    their step names. Such a checkpoint is read here as the end of the last batch of a
    still running epoch, which is what it is.
    """

    def __init__(self) -> None:
        self._resumed = False

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """Rewind a finished epoch to its last batch (only when resuming a fit)."""
        if trainer.state.fn == "fit":
            self._resumed = _continue_the_epoch(checkpoint)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """The logger's step of the first batch after such a resume: the batches done.

        Lightning adds one to the saved step count on some restarts and not on others;
        in one endless epoch the step of a batch is the number of batches before it.
        """
        if not self._resumed:
            return
        self._resumed = False
        done = getattr(pl_module, "train_batches", None)
        loop = trainer.fit_loop.epoch_loop
        if isinstance(done, int) and trainer.accumulate_grad_batches == 1:
            loop._batches_that_stepped = done


def _continue_the_epoch(checkpoint: dict) -> bool:
    """Rewind a checkpoint's finished epoch to "running, all its batches done"; whether it did."""
    try:
        fit = checkpoint["loops"]["fit_loop"]
        epochs = fit["epoch_progress"]
        batches = fit["epoch_loop.batch_progress"]["current"]
    except (KeyError, TypeError):
        return False
    current = epochs.get("current") or {}
    if not current.get("ready") or current.get("completed") != current.get("ready"):
        return False  # the epoch is running: Lightning's own counting holds
    if not (batches["ready"] == batches["completed"] > 0):
        return False
    for counts in (epochs["total"], current):
        counts["processed"] -= 1
        counts["completed"] -= 1
    if isinstance(checkpoint.get("epoch"), int) and checkpoint["epoch"] > 0:
        checkpoint["epoch"] -= 1
    return True


def _as_if_between_batches(checkpoint: dict, validated_after: int | None = None) -> None:
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
    _validation_from_the_start(epoch.get("epoch_loop.val_loop.batch_progress"))
    total, current = progress.get("total"), progress.get("current")
    if not total or not current:
        return
    if total["ready"] <= total["processed"]:
        # between batches already (SIGTERM is handled at a batch end): written after the
        # batch's logger step was counted, while Lightning's own checkpoints of a batch that
        # validated are written before it and a resumed run counts it once more
        if validated_after == total["completed"] and "_batches_that_stepped" in state:
            state["_batches_that_stepped"] -= 1
        return
    for counts in (total, current):
        done = counts["completed"]
        counts.update(ready=done, started=done, processed=done, completed=done - 1)
    if "_batches_that_stepped" in state:
        state["_batches_that_stepped"] -= 1


def _validation_from_the_start(progress: dict | None) -> None:
    """Rewind an interrupted validation to its first batch.

    The metrics of the validation batches already run are not in the checkpoint, so
    Lightning's own restart (continue at the next batch) would log a mean over the remaining
    batches only, or no row at all. Rewound to "batch 0 started, nothing processed", a
    resumed run repeats the whole validation and logs the same row as an uninterrupted run.
    """
    if not progress or not progress.get("current"):
        return
    total, current = progress["total"], progress["current"]
    if current["ready"] == 0 or (current["completed"] == current["ready"] and not current["ready"]):
        return
    if current["completed"] == current["ready"] and progress.get("is_last_batch"):
        return  # the validation had finished
    for key in ("ready", "started", "processed", "completed"):
        total[key] -= current[key]
    current.update(ready=1, started=1, processed=0, completed=0)
    total.update(
        ready=total["ready"] + 1,
        started=total["started"] + 1,
    )
    progress["is_last_batch"] = False


def _validation_due(trainer) -> bool:
    """Whether the batch that just stepped is followed by a validation that has not started."""
    loop = trainer.fit_loop.epoch_loop
    total = loop.batch_progress.total
    if not (total.ready == total.started == total.processed == total.completed + 1):
        return False  # not between the optimizer step and the end of a batch
    try:
        return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
    except Exception:  # Lightning internals changed: leave the checkpoint to Lightning
        return False


def _before_validation(checkpoint: dict) -> None:
    """Make a checkpoint of a stepped batch resume with that batch's validation.

    Lightning resumes a batch-end checkpoint past the validation that was due; written as
    "batch done, its validation started at batch 0", a resumed run runs it in full.
    """
    try:
        epoch = checkpoint["loops"]["fit_loop"]
        batches = epoch["epoch_loop.batch_progress"]
        val = epoch["epoch_loop.val_loop.batch_progress"]
    except (KeyError, TypeError):
        return
    for counts in (batches["total"], batches["current"]):
        counts["completed"] = counts["processed"]
    val["total"].update(ready=val["total"]["ready"] + 1, started=val["total"]["started"] + 1)
    val["current"].update(ready=1, started=1, processed=0, completed=0)
    val["is_last_batch"] = False
