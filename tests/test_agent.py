import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, ExpertGraph
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.base import Episode, StepResult
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import Attention, FullyConnected, RandomOutDegree, Ring


def _run(agent, game, sizes, target, steps=6, record=False):
    state = agent.init_state(sizes, target.size(1))
    return agent(
        LifetimeCall(game, GuessingEpisode(target, game.feedback), state, steps, record=record)
    )


def _target(B, d=3, seed=0):
    return torch.rand(B, d, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _perturb(module):
    # non-trivial weights so differences would show
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize("topology", [FullyConnected(), Ring()])
@pytest.mark.parametrize("feedback", ["scalar", "vector"])
def test_batch_equals_each_agent_alone(small_policy, topology, feedback):
    agent = Agent(small_policy, topology)
    _perturb(agent)
    game = GuessingGame(3, feedback=feedback)
    sizes = [3, 7, 4, 5]
    target = _target(len(sizes))
    together = _run(agent, game, sizes, target)
    for b, n in enumerate(sizes):
        alone = _run(agent, game, [n], target[b : b + 1])
        torch.testing.assert_close(together.actions[:, b : b + 1], alone.actions)
        torch.testing.assert_close(together.errors[:, b : b + 1], alone.errors)


def test_permuting_experts_permutes_states(small_policy, game):
    agent = Agent(small_policy, FullyConnected())
    _perturb(agent)
    target = _target(2)
    state = agent.init_state([5, 4], 3)
    ep = GuessingEpisode(target, "scalar")
    ref = agent(LifetimeCall(game, ep, state, 6))
    # permute the nodes of each agent, carrying every per-node field with them
    perm = torch.tensor([3, 0, 4, 1, 2, 8, 6, 5, 7])
    fields = ("h", "role", "local_index", "identity", "output_index")
    permuted = state.replace(**{f: getattr(state, f)[perm] for f in fields})
    out = agent(LifetimeCall(game, ep, permuted, 6))
    torch.testing.assert_close(out.actions, ref.actions)
    torch.testing.assert_close(out.state.h, ref.state.h[perm])


def test_identity_matters(small_policy, game):
    # same policy, different identities -> experts behave differently
    agent = Agent(small_policy, FullyConnected())
    _perturb(agent)
    life = _run(agent, game, [3], _target(1))
    h = life.state.h
    assert not torch.allclose(h[1], h[2])


def test_lifetime_changes_no_parameter(small_policy, game):
    policy = tiny_policy(aggr="weighted")
    agent = Agent(policy, Attention(16, 4), rounds=2)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    life = _run(agent, game, [4, 6], _target(2))
    life.errors[-1].mean().backward()  # gradients exist, but the lifetime itself updated nothing
    for k, v in agent.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_parameter_count_independent_of_experts_and_batch(small_policy, game):
    agent = Agent(small_policy, RandomOutDegree(2, seed=0))
    n = sum(p.numel() for p in agent.parameters())
    for sizes in ([3], [3] * 16, [40, 3, 9]):
        _run(agent, game, sizes, _target(len(sizes)))
        assert sum(p.numel() for p in agent.parameters()) == n
    ports = Agent(small_policy, FullyConnected(), output_ports=True)
    for d in (1, 5, 12):
        life = _run(ports, game, [3, 2], _target(2, d))
        assert life.actions.shape == (6, 2, d)
    assert sum(p.numel() for p in ports.parameters()) == n


def test_output_ports_permutation(small_policy):
    agent = Agent(small_policy, FullyConnected(), output_ports=True)
    _perturb(agent)
    game = GuessingGame(4)
    target = _target(1, 4)
    state = agent.init_state([3], 4)
    ref = agent(LifetimeCall(game, GuessingEpisode(target, "scalar"), state, 5))
    # port p now owns output perm[old output of p]; targets are permuted the same way
    perm = torch.tensor([2, 0, 3, 1])
    oi = state.output_index.clone()
    oi[3:] = perm[oi[3:]]
    new_target = torch.empty_like(target)
    new_target[:, perm] = target
    out = agent(
        LifetimeCall(game, GuessingEpisode(new_target, "scalar"), state.replace(output_index=oi), 5)
    )
    torch.testing.assert_close(out.actions[:, :, perm], ref.actions)
    torch.testing.assert_close(out.errors, ref.errors)


def test_single_expert_no_edges_empty_batch(small_policy):
    agent = Agent(small_policy, FullyConnected())
    game = GuessingGame(1)
    life = _run(agent, game, [1, 1], _target(2, 1))
    assert life.actions.shape == (6, 2, 1)
    assert torch.isfinite(life.errors).all()
    empty = _run(agent, game, [], torch.zeros(0, 1))
    assert empty.actions.shape == (6, 0, 1)


def test_record(small_policy, game):
    agent = Agent(small_policy, FullyConnected(), rounds=3)
    life = _run(agent, game, [3, 4], _target(2), steps=4, record=True)
    assert len(life.records) == 4
    rec = life.records[0]
    assert len(rec.messages) == 3
    assert len(rec.states) == 3
    assert rec.messages[0].shape == (rec.edge_index.size(1), 8)
    torch.testing.assert_close(life.records[-1].states[-1], life.state.h)
    off = _run(agent, game, [3, 4], _target(2), steps=4)
    assert off.records == []
    torch.testing.assert_close(off.actions, life.actions)


class _NaNEpisode(Episode):
    def __init__(self, B):
        self.num_agents, self.num_outputs = B, 3

    def first(self):
        return StepResult(error=torch.zeros(self.num_agents), feedback=torch.zeros(self.num_agents))

    def step(self, action):
        err = torch.full((self.num_agents,), float("nan"))
        return StepResult(error=err, feedback=err)


def test_nan_feedback_is_named(agent, game):
    state = agent.init_state(3, 3, num_agents=2)
    with pytest.raises(FloatingPointError, match="step 1"):
        agent(LifetimeCall(game, _NaNEpisode(2), state, 4))


def test_bad_agent_input(small_policy, game):
    with pytest.raises(ValueError, match="rounds"):
        Agent(small_policy, FullyConnected(), rounds=0)
    with pytest.raises(ValueError, match="aggr='weighted'"):
        Agent(small_policy, Attention(16))
    agent = Agent(small_policy, FullyConnected())
    state = agent.init_state(3, 3, num_agents=1)
    with pytest.raises(ValueError, match="steps"):
        agent(LifetimeCall(game, GuessingEpisode(_target(1), "scalar"), state, 0))
    with pytest.raises(ValueError, match="d=2"):
        agent(LifetimeCall(game, GuessingEpisode(_target(1, 2), "scalar"), state, 3))


def test_state_is_immutable(agent, game):
    state = agent.init_state(3, 3, num_agents=1)
    h0 = state.h.clone()
    agent(LifetimeCall(game, GuessingEpisode(_target(1), "scalar"), state, 3))
    assert torch.equal(state.h, h0)
    assert state.step == 0
    assert isinstance(state, ExpertGraph)


def test_silent_edge_cases_are_errors(monkeypatch):
    from badger_graph import BadgerModule, Execution, memory
    from badger_graph.growth import GrowthEvent

    ex = Execution(dense="never")  # the edge list, not the dense block, is what cannot fit
    model = BadgerModule(tiny_policy(), FullyConnected(), GuessingGame(3), execution=ex)
    with pytest.raises(ValueError, match="num_experts must be an int >= 1, got 0"):
        model.lifetime(0, 2, num_experts=0)
    with pytest.raises(ValueError, match=r"growth at step\(s\) \[20\]"):
        model.lifetime(0, 2, growth=[GrowthEvent(20, 1)])
    # all-pairs edges that cannot fit are refused before allocating, naming the size
    monkeypatch.setattr(memory, "available_memory", lambda device: 10**6)
    with pytest.raises(MemoryError, match=r"250,000 edges need at least 0\.0 GiB"):
        model.lifetime(0, 1, num_experts=500)


def test_readout_norm_reads_the_normalised_state(small_policy, game):
    plain = Agent(small_policy, FullyConnected())
    normed = Agent(small_policy, FullyConnected(), readout_norm=True)
    H = small_policy.hidden_channels
    assert isinstance(normed.readout_norm, torch.nn.LayerNorm)
    assert plain.readout_norm is None
    count = sum(p.numel() for p in normed.parameters()) - sum(p.numel() for p in plain.parameters())
    assert count == 2 * H  # the norm's gain and bias, whatever the number of experts
    normed.readout.load_state_dict(plain.readout.state_dict())
    state = plain.init_state([4, 3], 3)
    state = state.replace(h=torch.randn(state.h.shape, generator=torch.Generator().manual_seed(0)))
    owner, _, _ = state.output_owners()
    h = state.h[owner]
    expected = plain.readout(torch.nn.functional.layer_norm(h, (H,))).squeeze(-1)
    torch.testing.assert_close(normed.read(state)[state.output_owners()[1:]], expected)
    assert not torch.allclose(plain.read(state), normed.read(state))
    assert "readout_norm=True" in repr(normed)


def test_readout_norm_is_refused_for_another_learner():
    from badger_graph.learner import RecurrentLearner, build_learner

    with pytest.raises(ValueError, match="readout_norm=True is a BADGER agent's option"):
        build_learner(learner=RecurrentLearner(3, hidden_channels=8), readout_norm=True)
