"""The timing harness of the benchmarks: synchronised medians, and rivals timed in turn.

On a shared machine the speed drifts; two rivals timed one after the other can differ by
the drift alone. :func:`interleaved` times them in alternation, so a slow phase hits both
alike, and the ratio of their medians is the figure to quote.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device | str | None = None) -> None:
    """Wait for ``device`` to finish its queued work (a no-op on the CPU)."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
