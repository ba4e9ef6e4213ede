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
