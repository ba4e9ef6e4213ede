"""Thread count chosen by measurement; it changes speed, not results."""

import time

import pytest
import torch

from badger_graph import BadgerModule, ExpertPolicy
from badger_graph.tasks import GuessingGame
from badger_graph.threads import ThreadChooser
from badger_graph.topologies import FullyConnected


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _run(chooser, batches, slow_threads):
    for _ in range(batches):
        chooser.before_batch()
        time.sleep(0.02 if torch.get_num_threads() == slow_threads else 0.002)
        chooser.after_batch()


@pytest.mark.parametrize("slow", [1, 2])
def test_auto_keeps_the_faster_count_and_rechecks(slow):
    chooser = ThreadChooser("auto", candidates=[1, 2], trials=2, recheck_every=10, warmup=1)
    _run(chooser, 6, slow)  # warm-up + 2 trials of each
    assert chooser.current == 3 - slow
    assert [h[1] for h in chooser.history] == [3 - slow]
    _run(chooser, 10, 3 - slow)  # the load changed: the next measurement switches
    assert chooser.current == slow
    assert len(chooser.history) == 2


def test_pinned_count_never_changes():
    chooser = ThreadChooser(1, candidates=[1, 2])
    _run(chooser, 8, 1)
    assert torch.get_num_threads() == 1
    assert chooser.history == []
    with pytest.raises(ValueError, match="threads must be 'auto' or an int >= 1, got 0"):
        ThreadChooser(0)


def test_thread_count_does_not_change_training():
    def train(threads):
        torch.manual_seed(0)
        m = BadgerModule(ExpertPolicy(), FullyConnected(), GuessingGame(3), inner_steps=10)
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        for i, t in enumerate(threads):
            torch.set_num_threads(t)
            loss = m.lifetime(i, 64).errors[-1].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return torch.nn.utils.parameters_to_vector(m.parameters()).detach()

    most = max(2, torch.get_num_threads())
    assert torch.equal(train([1] * 4), train([most] * 4))
    assert torch.equal(train([1] * 4), train([1, most, 1, most]))
