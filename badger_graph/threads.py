"""Intra-op thread count chosen by measurement, so training survives a busy machine.

Small agents (the paper's configs) gain little from a second thread, and lose much as soon
as another process keeps a core busy (torch's threads wait for each other at every
operation; figures in ``docs/performance.md``). :class:`ThreadChooser` times a few batches
with each candidate count, keeps the faster one, and measures again every ``recheck_every``
batches, so a run adapts when other work starts or stops.

The thread count changes how fast a batch runs, not what it computes for the paper's
configs: training with 1, 2 or alternating threads gives bit-identical weights on the
reference CPU (``tests/test_threads.py``). Pin a count (``--threads 2``) to rule out any
dependence of the float results on the machine's load.
"""

from __future__ import annotations

import statistics
import time

import torch


class ThreadChooser:
    """Choose torch's intra-op thread count per batch by timing the candidates.

    Call :meth:`before_batch` before and :meth:`after_batch` after each batch; everything
    between the two calls is timed.

    Args:
        threads (int or "auto"): ``"auto"`` to measure, or a count to pin.
        candidates (list of int, optional): counts to try (default: 1 and the count torch
            uses when the chooser is made).
        trials (int): timed batches per candidate in each measurement. (default: :obj:`3`)
        recheck_every (int): batches between measurements. (default: :obj:`200`)
        warmup (int): batches before the first measurement (allocation, caches).
            (default: :obj:`2`)
    """

    def __init__(
        self,
        threads: int | str = "auto",
        candidates: list[int] | None = None,
        trials: int = 3,
        recheck_every: int = 200,
        warmup: int = 2,
    ) -> None:
        if threads != "auto" and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be 'auto' or an int >= 1, got {threads!r}")
        for name, value, low in (("trials", trials, 1), ("recheck_every", recheck_every, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        most = torch.get_num_threads()
        self.candidates = sorted(set(candidates or [1, most]))
        if any(c < 1 for c in self.candidates):
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        self.pinned = None if threads == "auto" else threads
        self.trials, self.recheck_every, self.warmup = trials, recheck_every, warmup
        self.current = self.pinned or most
        self.batch = 0
        self._plan: list[int] = []  # thread counts of the pending trial batches
        self._times: dict[int, list[float]] = {}
        self._start = 0.0
        self._trial: int | None = None
        #: (batch, chosen count, {count: median seconds}) of every measurement
        self.history: list[tuple[int, int, dict[int, float]]] = []

    def before_batch(self) -> None:
        """Set the thread count of the coming batch (a trial count while measuring)."""
        if self.pinned is None and len(self.candidates) > 1:
            due = self.batch >= self.warmup and (self.batch - self.warmup) % self.recheck_every == 0
            if due and not self._plan:
                # interleaved, so a change of load hits every candidate alike
                self._plan = [c for _ in range(self.trials) for c in self.candidates]
                self._times = {c: [] for c in self.candidates}
        self._trial = self._plan.pop(0) if self._plan else None
        threads = self._trial or self.current
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self._start = time.perf_counter()

    def after_batch(self) -> None:
        """Record the batch's time; choose when a measurement is complete."""
        elapsed = time.perf_counter() - self._start
        if self._trial is not None:
            self._times[self._trial].append(elapsed)
            if not self._plan:
                medians = {c: statistics.median(t) for c, t in self._times.items()}
                self.current = min(medians, key=medians.get)
                self.history.append((self.batch, self.current, medians))
        self.batch += 1
