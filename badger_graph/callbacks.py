"""The callbacks every ``badger fit`` has.

Timing and threads here; checkpoints in :mod:`badger_graph.saving`, safe stops and exact
resumes in :mod:`badger_graph.resume` (importable from here too:
``badger_graph.callbacks.RunCheckpoint`` keeps working).
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from badger_graph.resume import ExactResume, StopAtSafePoint  # noqa: F401
from badger_graph.runfolder import (  # noqa: F401 (imported from here by users)
    RunLock,
    check_checkpoint_file,
    check_run_dir,
    newest_checkpoint,
    run_folder,
)
from badger_graph.saving import (  # noqa: F401
    AtomicCheckpointIO,
    RunCheckpoint,
    SaveOnInterrupt,
    use_atomic_writes,
)


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
