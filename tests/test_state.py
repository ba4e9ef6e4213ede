import pytest
import torch

from badger_graph import ExpertGraph, Role
from badger_graph.state import index_identity


def test_create_variable_sizes():
    s = ExpertGraph.create([3, 5, 4], num_outputs=2, hidden_channels=6, identity_channels=4)
    assert s.num_agents == 3
    assert s.num_nodes == 12
    assert s.ptr.tolist() == [0, 3, 8, 12]
    assert s.batch.tolist() == [0] * 3 + [1] * 5 + [2] * 4
    assert s.local_index.tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert s.output_index.tolist() == [0, 1, -1, 0, 1, -1, -1, -1, 0, 1, -1, -1]
    assert s.num_experts().tolist() == [3, 5, 4]
    assert s.h.shape == (12, 6)
    assert s.identity.shape == (12, 4)


def test_output_ports_are_nodes():
    s = ExpertGraph.create(
        2, num_outputs=3, hidden_channels=4, identity_channels=2, num_agents=2, output_ports=True
    )
    assert s.num_nodes == 10
    assert (s.role == int(Role.OUTPUT)).sum() == 6
    assert s.output_index.tolist() == [-1, -1, 0, 1, 2] * 2
    assert s.num_experts().tolist() == [2, 2]


def test_identity_distinct_and_fixed_width():
    ids = index_identity(torch.arange(200), 8)
    assert ids.shape == (200, 8)
    assert torch.cdist(ids, ids).add(torch.eye(200) * 10).min() > 1e-3


def test_empty_batch():
    s = ExpertGraph.create([], num_outputs=1, hidden_channels=4, identity_channels=2)
    assert s.num_agents == 0
    assert s.num_nodes == 0


def test_pyg_round_trip():
    s = ExpertGraph.create([2, 3], num_outputs=1, hidden_channels=4, identity_channels=2)
    s = s.replace(h=torch.randn(5, 4))
    b = s.to_pyg()
    assert b.num_graphs == 2
    back = ExpertGraph.from_pyg(b, num_outputs=1)
    assert torch.equal(back.h, s.h)
    assert torch.equal(back.batch, s.batch)
    assert torch.equal(back.local_index, s.local_index)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_experts": 0, "num_agents": 1}, "num_experts"),
        ({"num_experts": 3, "num_agents": 1, "num_outputs": 0}, "num_outputs"),
        ({"num_experts": 3, "num_agents": 1, "hidden_channels": 0}, "hidden_channels"),
        ({"num_experts": 2, "num_agents": 1, "num_outputs": 3}, "at least"),
        ({"num_experts": 3, "num_agents": 1, "identity": "bogus"}, "bogus"),
    ],
)
def test_bad_input(kwargs, match):
    base = {"num_outputs": 1, "hidden_channels": 4, "identity_channels": 2}
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ExpertGraph.create(**base)
