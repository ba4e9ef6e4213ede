import pytest
import torch

from badger_graph.tasks import GuessingGame, OnlineRegression, TaskMixture


def test_mixture_draws_families_from_the_seed():
    mix = TaskMixture([GuessingGame(3), OnlineRegression(2)])
    drawn = [mix.reset(4, torch.Generator().manual_seed(s)).family for s in range(40)]
    assert set(drawn) == {0, 1}
    again = [mix.reset(4, torch.Generator().manual_seed(s)).family for s in range(40)]
    assert drawn == again
    assert mix.num_outputs == 3


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"tasks": []}, "non-empty"), ({"tasks": [GuessingGame()], "weights": [1, 2]}, "weights")],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        TaskMixture(**kw)
