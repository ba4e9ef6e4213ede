"""Stopping at a safe point and resuming exactly: the run continues as if never stopped.

:class:`StopAtSafePoint` turns Ctrl-C / SIGTERM into a stop between two batches;
:class:`ExactResume` edits the progress a checkpoint records (Lightning's loop state) so a
resumed run draws the same batches and validates at the same steps as one that never stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from lightning.pytorch.callbacks import Callback


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


def as_if_between_batches(checkpoint: dict, validated_after: int | None = None) -> None:
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


def validation_due(trainer) -> bool:
    """Whether the batch that just stepped is followed by a validation that has not started."""
    loop = trainer.fit_loop.epoch_loop
    total = loop.batch_progress.total
    if not (total.ready == total.started == total.processed == total.completed + 1):
        return False  # not between the optimizer step and the end of a batch
    try:
        # the fit loop's own decision (no public API says whether validation is due)
        return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
    except Exception:  # Lightning internals changed: leave the checkpoint to Lightning
        return False


def before_validation(checkpoint: dict) -> None:
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


# -- the process's signal handlers around a fit -----------------------------------------
def signal_handlers() -> dict:
    """The SIGINT / SIGTERM handlers in force (empty outside the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore_signal_handlers(handlers: dict) -> None:
    """Put back the handlers :func:`signal_handlers` returned."""
    for sig, handler in handlers.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def pass_on_sigterm(previous) -> None:
    """Hand a SIGTERM that stopped a fit (after its checkpoint) to the process's own handler.

    A scheduler's SIGTERM ends the process, not only the fit: with the default handler the
    signal is raised again (the process ends as if the library were not there: killed by
    SIGTERM, after the checkpoint and the lock are dealt with); a Python handler (a tuning
    loop's, a test runner's) is called; an ignored SIGTERM stays ignored (the fit stopped,
    :class:`SystemExit` 143 follows).
    """
    if previous in (signal.SIG_DFL, None):
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    elif callable(previous):
        previous(signal.SIGTERM, None)


def exit_143(signum, frame) -> None:
    """``badger``'s own SIGTERM handler: exit with status 143 (128 + SIGTERM)."""
    raise SystemExit(143)
