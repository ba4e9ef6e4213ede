import pytest
import torch
from helpers import episode

from badger_graph.tasks import HotColdOptimization
from badger_graph.tasks.optimization import finite_differences, random_search


def _episode(B=4000, seed=0, **kw):
    return episode(HotColdOptimization(3, **kw), B, seed)


@pytest.mark.parametrize(
    ("kw", "match"), [({"condition": 0.5}, "condition"), ({"num_outputs": 0}, "num_outputs")]
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        HotColdOptimization(**kw)


def test_chance_level_and_minimum():
    ep = _episode()
    zero = ep.step(torch.zeros(4000, 3)).error.mean()
    assert abs(float(zero) - HotColdOptimization().chance_level()) < 0.05
    assert ep.step(ep.c).error.abs().max() < 1e-6
    assert (torch.linalg.eigvalsh(ep.A) > 0).all()  # convex
    with pytest.raises(ValueError, match="action must have shape"):
        ep.step(torch.zeros(4000, 2))


def test_condition_one_is_the_guessing_game():
    ep = _episode(condition=1.0)
    x = torch.rand(4000, 3)
    torch.testing.assert_close(ep.step(x).error, 3 * (x - ep.c).pow(2).mean(1))


def test_baselines_improve_on_chance():
    rs = random_search(_episode(), 20).mean(1)
    fd = finite_differences(_episode(), 20).mean(1)
    assert rs[-1] < 0.4
    assert fd[-1] < 0.1
    assert (rs[1:] <= rs[:-1] + 1e-6).all()  # the best point so far
