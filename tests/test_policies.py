"""Several shared policies selected by role, and handcrafted policies."""

import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, ExpertPolicy
from badger_graph.adjacency import CSRAdjacency, DenseAdjacency
from badger_graph.execution import Execution, adjacency
from badger_graph.policies import RelayFeedback, RolePolicies
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import FullyConnected


def _policies(roles):
    torch.manual_seed(0)
    a, b = tiny_policy(), tiny_policy()
    return a, b, RolePolicies([a, b], roles)


def test_each_node_updated_by_its_roles_policy():
    a, b, multi = _policies({"feedback": 1})
    agent = Agent(multi, FullyConnected(), execution=Execution(dense="never", sparse="edges"))
    state = agent.init_state([4, 4], 3)
    state = state.replace(h=torch.randn(state.num_nodes, 16))
    x = agent.write(
        state,
        GuessingEpisode(torch.zeros(2, 3), "scalar").first(),
        agent.constant_features(state, GuessingGame(3)),
        0.0,
    )
    which = multi.assignment(x)
    assert which.tolist() == [1, 0, 0, 0, 1, 0, 0, 0]  # expert 0 of each agent gets feedback
    edge_index, _ = agent.topology(state)
    out = multi(state.h, x, edge_index)
    # recompute by hand: messages from each sender's own policy, updates by each receiver's
    send = torch.where(which.unsqueeze(1) == 1, b.send(state.h), a.send(state.h))
    src, dst = edge_index
    agg = torch.zeros(8, 8).index_add_(0, dst, send[src]) / torch.bincount(
        dst, minlength=8
    ).unsqueeze(1)
    expected = torch.where(
        which.unsqueeze(1) == 1,
        b.update_from_input(x, agg, state.h),
        a.update_from_input(x, agg, state.h),
    )
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("path", ["dense", "edges", "csr"])
def test_all_round_paths_agree(path):
    _, _, multi = _policies({"feedback": 1})
    kw = {"dense": "auto"} if path == "dense" else {"dense": "never", "sparse": path}
    agent = Agent(multi, FullyConnected(), rounds=2, execution=Execution(**kw))
    probe = agent.init_state([4, 4, 4], 3)
    adj = adjacency(multi, agent.topology, probe, agent.execution)[0]
    taken = {DenseAdjacency: "dense", CSRAdjacency: "csr"}.get(type(adj), "edges")
    assert taken == path  # the path under test is really taken
    ref = Agent(
        multi, FullyConnected(), rounds=2, execution=Execution(dense="never", sparse="edges")
    )
    ref.load_state_dict(agent.state_dict())
    target = torch.rand(3, 3) * 2 - 1
    game = GuessingGame(3)
    a = agent(
        LifetimeCall(game, GuessingEpisode(target, "scalar"), agent.init_state([4, 4, 4], 3), 4)
    )
    b = ref(LifetimeCall(game, GuessingEpisode(target, "scalar"), ref.init_state([4, 4, 4], 3), 4))
    torch.testing.assert_close(a.actions, b.actions)


def test_handcrafted_relay_has_no_parameters_and_relays_feedback():
    relay = RelayFeedback(16, 8)
    assert sum(p.numel() for p in relay.parameters()) == 0
    torch.manual_seed(0)
    multi = RolePolicies([tiny_policy(), relay], {"feedback": 1})
    agent = Agent(multi, FullyConnected())
    game = GuessingGame(3)
    target = torch.full((1, 3), 0.5)
    life = agent(LifetimeCall(game, GuessingEpisode(target, "scalar"), agent.init_state([4], 3), 3))
    # after the last step the relay expert (node 0) holds the feedback of that step
    fb = life.errors[-2]  # feedback written at the last step = error of the step before
    assert torch.allclose(life.state.h[0, 0], fb[0])
    assert (life.state.h[0, 1:] == 0).all()
    # gradients flow to the learned policy only
    life.errors[-1].mean().backward()
    assert multi.policies[0].lin_send.weight.grad is not None


@pytest.mark.parametrize(
    ("policies", "roles", "match"),
    [
        ([tiny_policy()], {"feedback": 1}, "role 'feedback' has no policy"),
        ([tiny_policy()], {"boss": 0}, "unknown roles"),
        ([], None, "at least one policy"),
        ([tiny_policy(), ExpertPolicy(32, 8, 8, 4)], None, "same hidden_channels"),
        ([tiny_policy(), torch.nn.Linear(2, 2)], None, "is not a policy"),
    ],
)
def test_bad_role_policies(policies, roles, match):
    with pytest.raises(ValueError, match=match):
        RolePolicies(policies, roles)
