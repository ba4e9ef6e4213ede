"""The benchmarks' timing harness: medians of synchronised calls, rivals in turn."""

import pytest

from badger_graph.timing import interleaved, timeit


def test_interleaved_calls_each_rival_in_turn_after_the_warmup():
    calls = []
    med = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3)
    assert calls == ["a", "b"] * 4  # one warm-up turn, then three
    assert set(med) == {"a", "b"}
    assert all(t >= 0 for t in med.values())


def test_min_time_goes_on_past_reps():
    n = []
    timeit(lambda: n.append(1), reps=1, warmup=0, min_time=0.02)
    assert len(n) > 1


@pytest.mark.parametrize(("reps", "warmup"), [(0, 1), (2, -1)])
def test_bad_counts_are_named(reps, warmup):
    with pytest.raises(ValueError, match="reps must be >= 1"):
        interleaved({"a": lambda: None}, reps=reps, warmup=warmup)


def test_once_returns_the_result_and_its_seconds():
    import time

    from badger_graph.timing import once

    result, seconds = once(lambda: time.sleep(0.02) or 7)
    assert result == 7
    assert 0.015 < seconds < 1.0


def test_per_call_spreads_a_slice_over_its_calls():
    import time

    from badger_graph.timing import per_call

    calls = []
    t = per_call(lambda: calls.append(time.sleep(0.005)), seconds=0.05)
    assert len(calls) >= 2
    assert 0.004 < t < 0.05  # per call, not the whole slice


def test_peak_memory_sees_an_allocation_above_the_level_before():
    import torch

    from badger_graph.timing import PeakMemory

    peak = PeakMemory("cpu")
    block = torch.ones(64 * 2**20 // 4)  # 64 MB, touched
    assert peak.mb() > 32
    del block


def test_peak_memory_is_measured_again_from_each_start():
    """Two measurements in one process: the second is not hidden by the first's peak."""
    import sys

    import torch

    from badger_graph.timing import PeakMemory

    if not sys.platform.startswith("linux"):
        pytest.skip("the resident high-water mark is reset through /proc on Linux")
    first = PeakMemory("cpu")
    block = torch.ones(96 * 2**20 // 4)
    assert first.mb() > 64
    del block
    second = PeakMemory("cpu")
    block = torch.ones(48 * 2**20 // 4)
    assert second.mb() > 32  # with ru_maxrss this would read 0 (below the earlier peak)
    del block
