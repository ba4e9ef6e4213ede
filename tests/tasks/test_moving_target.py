import pytest
import torch
from helpers import episode

from badger_graph.tasks import MovingTarget
from badger_graph.tasks.guessing_game import probe_and_solve
from badger_graph.tasks.moving_target import after_jump_error, stale


def _episode(B=4000, seed=0, **kw):
    return episode(MovingTarget(3, **kw), B, seed)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"jump": [0, 3]}, "jump"), ({"jump": [5, 4]}, "jump"), ({"num_outputs": 0}, "num_outputs")],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        MovingTarget(**kw)


def test_target_moves_at_the_jump_step():
    ep = _episode(B=8, jump=[3, 5])
    assert ep.jump.min() >= 3
    assert ep.jump.max() <= 5
    for t in range(8):
        want = torch.where((t >= ep.jump).unsqueeze(1), ep.targets[1], ep.targets[0])
        assert torch.equal(ep.target_at(t), want)
    with pytest.raises(ValueError, match=r"action must have shape \[8, 3\]"):
        ep.step(torch.zeros(8, 2))


def test_baselines_on_the_same_episodes():
    T = 20
    solve = probe_and_solve(_episode(), T)
    old = stale(_episode(), T)
    assert solve[4:8].abs().max() < 1e-6  # solved exactly after d + 1 = 4 probes
    assert solve[-3:].abs().max() < 1e-6  # and again after the jump
    assert old[:8].abs().max() < 1e-6  # knows the first target
    life = type("L", (), {"errors": old, "episode": _episode()})
    # after the jump the stale answer scores 3 E[(t1 - t2)^2] = 2 on average
    assert abs(float(after_jump_error(life)) - 2.0) < 0.1
    stale_after = float(after_jump_error(life))
    life.errors = solve
    # it notices the jump at once but needs d + 1 more guesses: better, not by much
    assert 1.0 < float(after_jump_error(life)) < stale_after
