"""Input port nodes: observations shown to the agent, for any number of inputs m."""

import warnings

import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, ExpertGraph
from badger_graph.growth import grow
from badger_graph.records import LifetimeCall
from badger_graph.state import Role
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.base import Episode, StepResult
from badger_graph.topologies import Attention, FullyConnected


class _Echo(Episode):
    """Shows a fixed observation; the error is how far output 0 is from its column sum."""

    def __init__(self, obs: torch.Tensor, m: int | None = None) -> None:
        self.obs = obs
        self.num_agents, self.num_outputs = obs.size(0), 1
        self.num_inputs = obs.size(1) if m is None else m
        self.seen: list[int] = []

    def first(self):
        self.seen.append(self.step_index)
        return StepResult(error=self.obs.new_zeros(self.num_agents), observation=self.obs)

    def step(self, action):
        self.seen.append(self.step_index)
        error = (action[:, 0] - self.obs.sum(1)).pow(2)
        return StepResult(error=error, feedback=error.detach(), observation=self.obs)


def test_input_nodes_layout_and_index():
    s = ExpertGraph.create([3, 2], [2, 1], 8, 4, num_inputs=[2, 3], output_ports=True)
    assert s.role.tolist() == [0, 0, 0, 2, 2, 1, 1, 0, 0, 2, 1, 1, 1]
    assert s.input_index.tolist() == [-1] * 5 + [0, 1] + [-1] * 3 + [0, 1, 2]
    assert s.output_index[s.is_input].eq(-1).all()
    # an input is known by a random code, not by an index code shared with the experts
    codes = s.identity[s.is_input]
    assert codes.abs().sum(1).gt(0).all()
    assert not torch.allclose(codes[0], codes[2])
    grown = grow(s, 2)  # experts are added; the inputs keep their order and index
    assert grown.input_index[grown.is_input].tolist() == [0, 1, 0, 1, 2]
    assert int((grown.role == int(Role.EXPERT)).sum()) == 9
    with pytest.raises(ValueError, match="num_inputs"):
        ExpertGraph.create([3], 1, 8, 4, num_inputs=[-1])


def test_observation_reaches_the_input_nodes_and_the_experts():
    torch.manual_seed(0)
    agent = Agent(tiny_policy(), FullyConnected())
    obs = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, 0.0]])
    episode = _Echo(obs)
    state = agent.init_state(2, 1, num_agents=2, num_inputs=3)
    x = agent.write(state, episode.first(), agent.constant_features(state, GuessingGame(1)), 0.0)
    signal = x[:, 2]  # FEATURES: feedback, receives_feedback, signal, ...
    torch.testing.assert_close(signal[state.is_input], obs.reshape(-1))
    assert signal[~state.is_input].eq(0).all()
    episode.seen.clear()
    life = agent(LifetimeCall(GuessingGame(1), episode, state, 4))
    assert episode.seen == [0, 0, 1, 2, 3]  # first(), then the step of each scored action
    other = agent(LifetimeCall(GuessingGame(1), _Echo(-obs), state, 4))
    assert not torch.allclose(life.actions, other.actions)  # the experts heard the inputs


@pytest.mark.parametrize("topology", [FullyConnected(), Attention(16, 4)])
def test_parameter_count_independent_of_m_and_any_m_runs(topology):
    policy = tiny_policy(aggr="weighted" if topology.weighted else "mean")
    agent = Agent(policy, topology)
    count = sum(p.numel() for p in agent.parameters())
    for m in (1, 2, 5, 10):
        obs = torch.randn(3, m, generator=torch.Generator().manual_seed(m))
        state = agent.init_state(4, 1, num_agents=3, num_inputs=m)
        life = agent(LifetimeCall(GuessingGame(1), _Echo(obs), state, 3))
        assert life.actions.shape == (3, 3, 1)
        assert torch.isfinite(life.errors).all()
    assert sum(p.numel() for p in agent.parameters()) == count


def test_bad_observations_are_named():
    agent = Agent(tiny_policy(), FullyConnected())
    obs = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="no input nodes"):
        agent(LifetimeCall(GuessingGame(1), _Echo(obs), agent.init_state(2, 1, num_agents=2), 2))
    with pytest.raises(ValueError, match=r"observation must have shape \[2, 4\]"):
        agent(
            LifetimeCall(
                GuessingGame(1),
                _Echo(obs, m=4),
                agent.init_state(2, 1, num_agents=2, num_inputs=4),
                2,
            )
        )


@pytest.mark.parametrize("rounds", [1, 2])
def test_a_steps_output_depends_on_its_observation_from_two_rounds_on(rounds):
    """Round 1 sends the messages of the states before the observation was read."""
    torch.manual_seed(0)
    agent = Agent(tiny_policy(), FullyConnected(), rounds=rounds)
    state = agent.init_state(3, 1, num_agents=1, num_inputs=2)
    state = state.replace(h=torch.randn_like(state.h))
    obs = torch.tensor([[0.5, -1.0]], requires_grad=True)
    result = StepResult(error=torch.zeros(1), observation=obs)
    x = agent.write(state, result, agent.constant_features(state, GuessingGame(1)), 0.0)
    new, _ = agent.step(state, x)
    (grad,) = torch.autograd.grad(agent.read(new).sum(), obs, allow_unused=True)
    reaches = grad is not None and bool(grad.abs().sum() > 0)
    assert reaches == (rounds >= 2)


def test_one_round_with_observations_warns():
    from badger_graph import BadgerModule
    from badger_graph.tasks import OnlineRegression

    for rounds, expect in ((1, True), (2, False)):
        model = BadgerModule(tiny_policy(), FullyConnected(), OnlineRegression(2), rounds=rounds)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.lifetime(0, 2)
        hits = [w for w in caught if "rounds >= 2" in str(w.message)]
        assert bool(hits) == expect, [str(w.message) for w in caught]
