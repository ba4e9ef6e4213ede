"""Callbacks that make long runs safe to interrupt, with checkpoints in the run directory."""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, OnExceptionCheckpoint
from lightning.pytorch.utilities import rank_zero_warn


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
        """Resolve the folder from the trainer's run directory."""
        self.use_run_dir(trainer.default_root_dir)
        super().setup(trainer, pl_module, stage)


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

    def on_train_end(self, trainer, pl_module) -> None:
        """Write ``last.ckpt`` with the final weights when training stops between saves.

        Lightning's ``save_last`` only writes at a save point (every ``every_n_train_steps``
        or validation); a run stopped by ``max_time`` or ``max_steps`` in between would
        leave a ``last.ckpt`` up to ``every_n_train_steps`` batches old.
        """
        super().on_train_end(trainer, pl_module)
        if (
            self.save_last
            and not self._should_skip_saving_checkpoint(trainer)
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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


class RunLock(Callback):
    """One training run per run directory, and a writable one, checked before training.

    At the start of ``fit`` it creates ``<default_root_dir>`` and writes ``run.lock`` with the
    process id; a second run into the same folder while the first is alive stops at once
    with an error naming the folder and the other process (a lock left by a killed run is
    taken over). The lock is removed when the run ends.
    """

    def __init__(self) -> None:
        self.path: str | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        """Check the folder is writable and take the lock (rank 0 only)."""
        if stage != "fit" or trainer.global_rank != 0:
            return
        root = check_run_dir(trainer.default_root_dir)
        path = os.path.join(root, "run.lock")
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                other = _lock_owner(path)
                if other is not None and other != os.getpid():
                    raise RuntimeError(
                        f"another training run (process {other}) is writing into {root!r}; "
                        f"wait for it or give this run its own --trainer.default_root_dir"
                    ) from None
                os.remove(path)  # left by a run that was killed
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.path = path
            return

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """Release the lock."""
        if self.path is not None and _lock_owner(self.path) == os.getpid():
            os.remove(self.path)
        self.path = None


def check_run_dir(root: str) -> str:
    """Create the run directory (and its ``checkpoints``) and check it is writable.

    Raises:
        PermissionError: naming the folder, when it cannot be created or written.
    """
    root = os.path.realpath(os.path.expanduser(str(root)))
    try:
        os.makedirs(os.path.join(root, "checkpoints"), exist_ok=True)
        probe = os.path.join(root, "checkpoints", f".write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise PermissionError(
            f"the run directory {root!r} is not writable ({e.strerror}); choose another "
            f"with --trainer.default_root_dir"
        ) from e
    return root


def _lock_owner(path: str) -> int | None:
    """Process id in a lock file if that process is alive, else ``None``."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class SaveOnInterrupt(_InRunDir, OnExceptionCheckpoint):
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
        self.dirpath = dirpath  # None: resolved from the run directory at setup
        #: the exception that stopped the run (the CLI turns signals into exit codes)
        self.exception: BaseException | None = None
        self._validated_after: int | None = None  # training batches done at the last validation

    def on_validation_end(self, trainer, pl_module) -> None:
        """Remember after which training batch the last validation ran."""
        if not trainer.sanity_checking:
            self._validated_after = trainer.fit_loop.epoch_loop.batch_progress.total.completed

    def on_exception(self, trainer, pl_module, exception: BaseException, *_: Any) -> None:
        """Write the checkpoint unless the weights are non-finite."""
        self.exception = exception
        if self.dirpath is None:
            return  # stopped before the run directory was set up: nothing trained yet
        from badger_graph.errors import DivergenceError

        if isinstance(exception, DivergenceError):
            rank_zero_warn(
                f"not saving {self.ckpt_path}: training diverged; the last good checkpoint is kept"
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
        trainer.strategy.save_checkpoint(checkpoint, self.ckpt_path)


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
