import pytest
import torch
from helpers import episode

from badger_graph.tasks import BernoulliBandits
from badger_graph.tasks.bandits import thompson, ucb1
from badger_graph.tasks.base import play


def _episode(B=4000, seed=0, k=3):
    return episode(BernoulliBandits(k), B, seed)


@pytest.mark.parametrize(
    ("kw", "match"), [({"num_arms": 1}, "num_arms"), ({"sharpness": 0}, "sharpness")]
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        BernoulliBandits(**kw)


def test_regret_chance_and_signal():
    task = BernoulliBandits(3)
    ep = _episode()
    r = ep.step(torch.zeros(4000, 3))
    assert abs(float(r.error.mean()) - task.chance_level()) < 0.02
    assert ((r.signal != 0).sum(1) == 1).all()  # the pulled arm only
    assert set(r.feedback.unique().tolist()) <= {0.0, 1.0}
    best = torch.nn.functional.one_hot(ep.p.argmax(1), 3) * 100.0
    assert ep.step(best).error.abs().max() < 1e-6
    with pytest.raises(ValueError, match=r"action must have shape \[4000, 3\]"):
        ep.step(torch.zeros(4000, 4))


def test_arms_vary_per_agent():
    ep = BernoulliBandits([2, 4]).reset(500, torch.Generator().manual_seed(1))
    assert set(ep.dims.tolist()) == {2, 3, 4}
    pi = ep.policy(torch.randn(500, 4))
    assert pi[~ep.valid].abs().max() == 0  # padded arms are never pulled


def test_baselines_beat_uniform_pulls():
    T = 20
    uniform = play(_episode(), T, lambda r, t: torch.zeros(4000, 3)).sum(0).mean()
    assert ucb1(_episode(), T).sum(0).mean() < 0.75 * uniform
    assert thompson(_episode(), T).sum(0).mean() < 0.6 * uniform
