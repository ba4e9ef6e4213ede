"""The guessing game (paper Fig. 6, 7, 9): errors, baselines, metrics, bad input."""

from types import SimpleNamespace

import pytest
import torch

from badger_graph.tasks import GuessingGame
from badger_graph.tasks.base import Task


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"num_outputs": 0}, "num_outputs"),
        ({"feedback": "loud"}, "feedback"),
        ({"feedback_to": "some"}, "feedback_to"),
        ({"feedback_to": [-1]}, "feedback_to"),
    ],
)
def test_bad_task(kw, match):
    with pytest.raises(ValueError, match=match):
        GuessingGame(**kw)


def test_guessing_game_baselines_match_simulation():
    game = GuessingGame(5)
    ep = game.reset(200_000, torch.Generator().manual_seed(0))
    zero = ep.step(torch.zeros(200_000, 5)).error.mean()
    assert abs(float(zero) - game.chance_level()) < 0.01
    mean_guess = ep.target.mean(1, keepdim=True).expand(-1, 5)
    assert abs(float(ep.step(mean_guess).error.mean()) - game.mean_baseline()) < 0.01
    with pytest.raises(ValueError, match="shape"):
        ep.step(torch.zeros(3, 5))


def test_task_declares_its_metrics():
    errors = torch.arange(20.0).unsqueeze(1).expand(20, 4)  # error t at step t (0-based)
    metrics = GuessingGame(3).metrics()
    assert set(metrics) == {"step5_error", "step6_error"}
    life = SimpleNamespace(errors=errors)
    assert float(metrics["step5_error"](life)) == 4.0
    assert (
        float(metrics["step6_error"](SimpleNamespace(errors=errors[:3]))) == 2.0
    )  # short lifetime: the last step


def test_base_task_defaults():
    class Minimal(Task):
        num_outputs = 1

        def reset(self, batch_size, generator=None, num_outputs=None, device=None):
            raise NotImplementedError

        def chance_level(self, num_outputs=None):
            return 1.0

    task = Minimal()
    assert task.metrics() == {}
    assert task.mean_baseline() != task.mean_baseline()  # nan: no such baseline
