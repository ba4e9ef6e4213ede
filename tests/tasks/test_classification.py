import pytest
import torch
from helpers import episode

from badger_graph.tasks import OnlineClassification
from badger_graph.tasks.classification import (
    late_accuracy,
    logistic_regression,
    nearest_centroid,
)


def _episode(B=4000, seed=0):
    return episode(OnlineClassification(3, 2), B, seed)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_inputs": 0}, "num_inputs"),
        ({"spread": 0.0}, "spread"),
    ],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        OnlineClassification(**kw)


def test_chance_level_label_signal_and_accuracy():
    ep = _episode()
    r = ep.step(torch.zeros(4000, 3))
    torch.testing.assert_close(r.error, torch.ones(4000))  # uniform scores: 1
    assert (r.signal.argmax(1) == ep.labels[0]).all()  # the label, revealed
    with pytest.raises(ValueError, match=r"action must have shape \[4000, 3\]"):
        ep.step(torch.zeros(4000, 2))
    ep = _episode(B=10)
    answers = []
    for _ in range(6):
        answers.append(torch.nn.functional.one_hot(ep.y, 3).float())  # always right
        ep.step(answers[-1])
    life = type("L", (), {"actions": torch.stack(answers), "episode": ep})
    assert float(late_accuracy(life)) == 1.0


def test_baselines_learn_the_classes():
    nc = nearest_centroid(_episode(), 20).mean(1)
    lr = logistic_regression(_episode(), 20).mean(1)
    assert nc[-1] < 0.5
    assert lr[-1] < 0.8
    assert nc[-1] < nc[2]
