import pytest
import torch
from helpers import episode, tiny_policy

from badger_graph import Agent
from badger_graph.records import LifetimeCall
from badger_graph.tasks import OnlineRegression
from badger_graph.tasks.regression import lms, nlms, rls
from badger_graph.topologies import FullyConnected


def _episode(B=4000, seed=0, m=3):
    return episode(OnlineRegression(m), B, seed)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"num_inputs": 0}, "num_inputs"),
        ({"num_inputs": [3, 2]}, "num_inputs"),
        ({"noise": -1.0}, "noise"),
        ({"feedback": "sign"}, "feedback must be 'error' or 'miss', got 'sign'"),
        ({"feedback_to": "inputs"}, "feedback_to must be .* got 'inputs'"),
    ],
)
def test_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        OnlineRegression(**kw)


def test_chance_level_and_observations():
    ep = _episode()
    x = ep.first().observation
    assert x.shape == (4000, 3)
    r = ep.step(torch.zeros(4000, 1))
    assert abs(float(r.error.mean()) - 1.0) < 0.06
    assert not torch.equal(r.observation, x)  # a fresh input every step
    with pytest.raises(ValueError, match=r"action must have shape \[4000, 1\]"):
        ep.step(torch.zeros(4000, 2))


def test_same_seed_same_inputs_for_agent_and_baselines():
    a, b = _episode(B=5), _episode(B=5)
    assert torch.equal(a.first().observation, b.first().observation)
    assert torch.equal(a.step(torch.ones(5, 1)).observation, b.step(torch.zeros(5, 1)).observation)


def test_rls_reaches_the_noise_floor_and_beats_lms():
    e_rls, e_lms = rls(_episode(), 20).mean(1), lms(_episode(), 20).mean(1)
    e_nlms = nlms(_episode(), 20).mean(1)
    floor = 0.01 / 1.01
    assert e_rls[10] < 2 * floor
    assert e_rls[10] < e_nlms[10] < e_lms[10]
    assert set(OnlineRegression().baselines()) == {"posterior_mean", "rls", "lms", "nlms"}


def test_input_width_varies_per_agent_and_the_agent_runs():
    task = OnlineRegression([1, 10])
    ep = task.reset(64, torch.Generator().manual_seed(2))
    assert ep.num_inputs == 10
    assert ep.input_dims.min() >= 1
    assert (ep.first().observation[ep.mask == 0] == 0).all()
    agent = Agent(tiny_policy(), FullyConnected())
    state = agent.init_state(4, 1, num_agents=64, num_inputs=ep.input_dims.tolist())
    life = agent(LifetimeCall(task, ep, state, 3))
    assert torch.isfinite(life.errors).all()


def test_miss_feedback_reaches_every_node_with_feedback_to_nodes():
    task = OnlineRegression(3, feedback="miss", feedback_to="nodes")
    ep = task.reset(5, torch.Generator().manual_seed(1))
    ep.first()
    action = torch.randn(5, 1)
    y = (ep.w * ep.x).sum(1)
    r = ep.step(action)
    miss = y - action[:, 0]
    assert torch.allclose(r.feedback, miss, atol=0.5)  # noise 0.1 on top
    assert torch.equal(r.feedback, r.signal[:, 0])
    assert torch.allclose(r.error, r.feedback.pow(2) / 1.01)

    agent = Agent(tiny_policy(), FullyConnected())
    state = agent.init_state(4, 1, num_agents=5, num_inputs=3)
    static = agent.constant_features(state, task)
    assert static["receives_feedback"].tolist() == [1.0] * state.num_nodes
    x = agent.write(state, r, static, 0.0)
    col = x[:, 0].view(5, -1)  # the feedback column, one row of nodes per agent
    assert torch.equal(col, r.feedback.unsqueeze(1).expand_as(col))
    experts_only = agent.constant_features(state, OnlineRegression(3, feedback_to="all"))
    assert experts_only["receives_feedback"].sum() == 5 * 4
