"""The timing harness of the benchmarks: synchronised medians, and rivals timed in turn.

On a shared machine the speed drifts; two rivals timed one after the other can differ by
the drift alone. :func:`interleaved` times them in alternation, so a slow phase hits both
alike, and the ratio of their medians is the figure to quote. :func:`once` times an
operation too long to repeat (a sweep, a first compiled batch, a whole training run) and
keeps its result; :class:`PeakMemory` measures the memory an operation adds.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch


def sync(device: torch.device | str | None = None) -> None:
    """Wait for ``device`` to finish its queued work (a no-op on the CPU)."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)


T = TypeVar("T")


def once(fn: Callable[[], T], device=None) -> tuple[T, float]:
    """``fn()`` and the seconds it took, synchronised: one measurement, no warm-up.

    For operations too long to repeat or whose first call is the figure (a compile); a
    median of :func:`timeit` is the figure for anything short.
    """
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - start


def per_call(fn: Callable[[], object], seconds: float = 1.0, device=None) -> float:
    """Mean seconds per call of ``fn`` over a slice of as many calls as fit in ``seconds``.

    A slice of short calls measures what one timed call cannot (timer and launch overhead
    spread over many); take the median over several slices, rivals in turn.
    """
    sync(device)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - start) / n


def timeit(
    fn: Callable[[], object], device=None, reps: int = 5, warmup: int = 1, min_time: float = 0.0
) -> float:
    """Median seconds of ``reps`` synchronised calls of ``fn`` after ``warmup`` calls."""
    return interleaved({"fn": fn}, device, reps, warmup, min_time)["fn"]


def interleaved(
    fns: dict[str, Callable[[], object]],
    device=None,
    reps: int = 5,
    warmup: int = 1,
    min_time: float = 0.0,
) -> dict[str, float]:
    """Median seconds of each of ``fns``, called in turn ``reps`` times after ``warmup``.

    With ``min_time``, the turns go on past ``reps`` until that many seconds have passed.

    Raises:
        ValueError: when ``reps`` < 1 or ``warmup`` < 0.
    """
    if reps < 1 or warmup < 0:
        raise ValueError(f"reps must be >= 1 and warmup >= 0, got {reps!r} and {warmup!r}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    start_all, done = time.perf_counter(), 0
    while done < reps or time.perf_counter() - start_all < min_time:
        done += 1
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _status_bytes(field: str) -> int | None:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory (MB) from construction to :meth:`mb`, above the level before.

    CUDA: the device allocator's peak. The CPU on Linux: the process' resident high-water
    mark (``VmHWM``), reset to the current size at construction where the kernel allows
    (``/proc/self/clear_refs``), above the resident size then. Not ``ru_maxrss``: a process
    started by a bigger one inherits its parent's maximum, which hides the child's own peak
    below it. Elsewhere ``ru_maxrss``, which never falls (one measurement per fresh
    process, started by a small parent).
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device or "cpu")
        self.proc = False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the high-water mark starts again from the current size
        except OSError:
            pass  # not Linux, or not allowed: the mark stays the process' own peak so far
        rss = _status_bytes("VmRSS")
        if rss is not None:
            self.proc, self.base = True, rss
        else:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def mb(self) -> float:
        """Megabytes above the level at construction, at the highest point since."""
        if self.device.type == "cuda":
            return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
        if self.proc:
            return ((_status_bytes("VmHWM") or 0) - self.base) / 2**20
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.base) / 2**20
