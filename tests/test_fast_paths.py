"""Fast paths give the plain path's results (forward and gradients)."""

import pytest
import torch

from badger_graph import Agent, ExpertPolicy
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import Attention, FullyConnected


def _lifetime_and_grads(agent, sizes, d=3, steps=5):
    target = torch.rand(len(sizes), d, generator=torch.Generator().manual_seed(0)) * 2 - 1
    game = GuessingGame(d, feedback_to="all")
    state = agent.init_state(sizes, d)
    life = agent(game, GuessingEpisode(target, "scalar"), state, steps)
    agent.zero_grad()
    life.errors.mean().backward()
    grads = {n: p.grad.clone() for n, p in agent.named_parameters() if p.grad is not None}
    return life, grads


CASES = [
    ("mean", lambda: FullyConnected()),
    ("sum", lambda: FullyConnected()),
    ("mean", lambda: FullyConnected(self_loops=True)),
    ("weighted", lambda: Attention(16, 4)),
    ("weighted", lambda: Attention(16, 4, top_k=2)),
]


@pytest.mark.parametrize(("aggr", "make_topology"), CASES)
@pytest.mark.parametrize("output_ports", [False, True])
def test_dense_equals_sparse(aggr, make_topology, output_ports):
    torch.manual_seed(0)
    policy = ExpertPolicy(16, 8, 8, 4, aggr=aggr)
    topo = make_topology()
    dense = Agent(policy, topo, rounds=2, output_ports=output_ports, dense="auto")
    sparse = Agent(policy, topo, rounds=2, output_ports=output_ports, dense="never")
    sparse.load_state_dict(dense.state_dict())
    sizes = [5, 5, 5]
    state = dense.init_state(sizes, 3)
    assert dense._dense_adjacency(state) is not None  # the dense path is really taken
    assert sparse._dense_adjacency(state) is None
    a, ga = _lifetime_and_grads(dense, sizes)
    b, gb = _lifetime_and_grads(sparse, sizes)
    torch.testing.assert_close(a.actions, b.actions, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.state.h, b.state.h, rtol=1e-4, atol=1e-5)
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-3, atol=1e-5)


def test_unequal_sizes_fall_back_to_sparse():
    agent = Agent(ExpertPolicy(16, 8, 8, 4), FullyConnected())
    assert agent._dense_adjacency(agent.init_state([3, 4], 3)) is None
    assert agent._dense_adjacency(agent.init_state([300], 3)) is None  # above dense_max_nodes


def test_bad_dense_mode():
    with pytest.raises(ValueError, match="dense"):
        Agent(ExpertPolicy(16, 8, 8, 4), FullyConnected(), dense="sometimes")
