import pytest
import torch

from badger_graph import EpisodeData, ExpertPolicy, objective_loss
from badger_graph.data import train_seed
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import Attention, RandomOutDegree, Star


def test_objectives():
    errors = torch.tensor([[4.0, 2.0], [1.0, 3.0]])
    assert objective_loss(errors, "last") == 2.0
    assert objective_loss(errors, "mean") == 2.5
    with pytest.raises(ValueError, match="objective"):
        objective_loss(errors, "median")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"inner_steps": 0}, "inner_steps"),
        ({"rounds": 0}, "rounds"),
        ({"num_experts": 0}, "num_experts"),
        ({"objective": "median"}, "objective"),
        ({"task": GuessingGame(3, feedback_to=[5])}, r"expert\(s\) \[5\]"),
        ({"num_experts": 2}, "num_experts=2 < d=3"),
        ({"topology": RandomOutDegree(3)}, "out-degree k=3"),
        ({"topology": Star(center=4)}, "center=4"),
        ({"topology": Attention(16)}, "aggr='weighted'"),
        (
            {"topology": Attention(32), "policy": ExpertPolicy(16, aggr="weighted")},
            "hidden_channels=32",
        ),
    ],
)
def test_bad_input(make_module, kw, match):
    with pytest.raises(ValueError, match=match):
        make_module(**kw)


def test_seed_lists():
    data = EpisodeData(batch_size=4, val_episodes=10, test_episodes=10, eval_batch_size=4)
    batch = next(iter(data.train_dataloader()))
    seeds = [train_seed(batch["stream"], i) for i in range(100)]
    assert len(set(seeds)) == 100
    assert seeds == [train_seed(0, i) for i in range(100)]  # a pure function of the index
    val = [b["seed"] for b in data.val_dataloader()]
    test = [b["seed"] for b in data.test_dataloader()]
    assert [b["batch_size"] for b in data.val_dataloader()] == [4, 4, 2]
    assert len(set(val) | set(test) | set(seeds)) == len(val) + len(test) + len(seeds)
    with pytest.raises(ValueError, match="batch_size"):
        EpisodeData(batch_size=0)


def test_same_seed_same_lifetime(make_module):
    m = make_module(topology=RandomOutDegree(1, seed=0))
    a = m.lifetime(123, 5)
    b = m.lifetime(123, 5)
    torch.testing.assert_close(a.actions, b.actions)
    c = m.lifetime(124, 5)
    assert not torch.allclose(a.actions, c.actions)
