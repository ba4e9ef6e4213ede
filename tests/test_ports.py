import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, BadgerModule, ExpertGraph
from badger_graph.curriculum import AddressCurriculum, EpisodeSpec, RangeCurriculum
from badger_graph.execution import Execution
from badger_graph.ports import AddressedPorts, random_addresses
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import FullyConnected


def _agent(dense="auto"):
    torch.manual_seed(0)
    policy = tiny_policy()
    agent = Agent(
        policy, FullyConnected(), ports=AddressedPorts(16, 4), execution=Execution(dense=dense)
    )
    with torch.no_grad():
        for p in agent.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.3)
    return agent


def _model():
    return BadgerModule(
        tiny_policy(),
        FullyConnected(),
        GuessingGame(3, feedback_to="all"),
        num_experts=6,
        ports=AddressedPorts(16, 4),
    )


def _run(agent, target, addresses, experts=5, steps=6):
    game = GuessingGame(target.size(1), feedback_to="all")
    state = agent.init_state(
        experts, target.size(1), num_agents=target.size(0), addresses=addresses
    )
    return agent(LifetimeCall(game, GuessingEpisode(target, "scalar"), state, steps))


def test_parameter_count_independent_of_d_and_experts():
    agent = _agent()
    n = sum(p.numel() for p in agent.parameters())
    for d, e in ((1, 3), (4, 7), (20, 2)):
        target = torch.rand(2, d) * 2 - 1
        life = _run(agent, target, random_addresses(2, d, 4), experts=e)
        assert life.actions.shape == (6, 2, d)
        assert life.actions.abs().max() <= 1.5  # bounded port values
    assert sum(p.numel() for p in agent.parameters()) == n


def test_permuting_ports_with_addresses_permutes_outputs():
    agent = _agent()
    target = torch.rand(3, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    addr = random_addresses(3, 4, 4, torch.Generator().manual_seed(3))
    ref = _run(agent, target, addr)
    perm = torch.tensor([2, 0, 3, 1])
    out = _run(agent, target[:, perm], addr[:, perm])
    torch.testing.assert_close(out.actions, ref.actions[:, :, perm], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.errors, ref.errors, rtol=1e-4, atol=1e-5)


def test_ports_dense_equals_sparse():
    target = torch.rand(3, 3) * 2 - 1
    addr = random_addresses(3, 3, 4)
    a = _run(_agent("auto"), target, addr)
    b = _run(_agent("never"), target, addr)
    torch.testing.assert_close(a.actions, b.actions, rtol=1e-4, atol=1e-5)


def test_changing_d_needs_no_new_module():
    model = _model()
    for d in (1, 3, 9):
        assert model.lifetime(0, 2, num_outputs=d).actions.shape == (20, 2, d)


def test_curriculum_sets_ranges_and_fixed_addresses():
    model = _model()
    cur = AddressCurriculum(fixed_steps=10, redraw_every=4)
    assert cur.address_seed(0) == cur.address_seed(3) != cur.address_seed(4)
    assert cur.address_seed(10) is None
    spec = EpisodeSpec(num_outputs=(2, 5), num_experts=(3, 8), address_seed=cur.address_seed(0))
    seen = set()
    for seed in range(30):
        ep, state = model.runner.begin(seed, 4, spec=spec)
        d = ep.num_outputs
        seen.add(d)
        assert 2 <= d <= 5
        assert 3 <= int(state.num_experts()[0]) <= 8
        ports = state.output_index >= 0
        addr = state.address[ports].view(4, d, -1)
        assert torch.equal(addr[0], addr[3])  # fixed: the same addresses in every episode
    assert seen == {2, 3, 4, 5}
    ep, state = model.runner.begin(0, 4)  # no spec (evaluation): the model's defaults
    assert ep.num_outputs == 3


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: RangeCurriculum(num_outputs=[4, 3]), "empty range"),
        (lambda: RangeCurriculum(num_outputs=[0, 3]), "empty range"),
        (lambda: RangeCurriculum(num_experts=[3]), r"\[low, high\]"),
        (lambda: RangeCurriculum(start_step=5, end_step=5), "start_step"),
        (lambda: AddressCurriculum(redraw_every=0), "redraw_every"),
        (lambda: AddressedPorts(16, 0), "address_channels"),
        (lambda: AddressedPorts(16, 4, temperature=0), "temperature"),
        (lambda: AddressedPorts(16, 4, reference_experts=0), "reference_experts"),
        (lambda: AddressedPorts(16, 4, push="sum"), "push must be"),
        (lambda: AddressedPorts(16, 4, reference_experts=5, push="mean"), "reference_experts=5"),
    ],
)
def test_bad_input(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_reference_experts_scales_the_port_damping():
    """Damping n / n_ref: equal to the default (1) at n = n_ref; per agent in a batch."""
    agent = _agent()
    target = torch.rand(3, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    addresses = random_addresses(3, 2, 4, torch.Generator().manual_seed(3))
    plain = _run(agent, target, addresses, experts=5)
    agent.ports.reference_experts = 5
    same = _run(agent, target, addresses, experts=5)
    torch.testing.assert_close(same.actions, plain.actions)
    # per port, the damping is its own agent's expert count / n_ref
    state = agent.init_state([4, 8], 2, addresses=addresses[:2])
    state = state.replace(h=torch.randn(state.h.shape, generator=torch.Generator().manual_seed(4)))
    links = agent.ports.links(state)
    pairs = links.pairs
    e, port = pairs
    w = agent.ports._attention(agent.ports.lin_write(state.h), state, links)
    v = torch.tanh(agent.ports.lin_value(state.h)).squeeze(-1)
    push = torch.zeros(state.num_nodes).index_add_(0, port, w * v[e])
    mass = torch.zeros(state.num_nodes).index_add_(0, port, w)
    damping = torch.tensor([4.0, 8.0])[state.batch] / 5
    want = (state.value + push / (mass + damping)).clamp(-1.5, 1.5)
    is_port = state.output_index >= 0
    torch.testing.assert_close(agent.ports.write(state, links)[is_port], want[is_port])


def test_mean_push_is_the_same_when_every_expert_is_cloned():
    """push='mean': a port moves by the weighted mean of the pushes, for any expert count."""
    agent = _agent()
    agent.ports.push = "mean"
    addresses = random_addresses(1, 2, 4, torch.Generator().manual_seed(3))
    small = agent.init_state([4], 2, addresses=addresses)
    big = agent.init_state([8], 2, addresses=addresses)
    h = torch.randn(4, 16, generator=torch.Generator().manual_seed(4))
    small_h, big_h = small.h.clone(), big.h.clone()
    small_h[small.is_expert] = h
    big_h[big.is_expert] = h.repeat(2, 1)  # every expert twice
    small, big = small.replace(h=small_h), big.replace(h=big_h)
    one = agent.ports.write(small, agent.ports.links(small))[small.output_index >= 0]
    two = agent.ports.write(big, agent.ports.links(big))[big.output_index >= 0]
    torch.testing.assert_close(one, two)
    agent.ports.push = "damped"  # the default's damping 1 does not have this property
    three = agent.ports.write(big, agent.ports.links(big))[big.output_index >= 0]
    assert not torch.allclose(
        three, agent.ports.write(small, agent.ports.links(small))[small.output_index >= 0]
    )


def test_bad_addresses():
    with pytest.raises(ValueError, match="addresses must have shape"):
        ExpertGraph.create(
            3, 2, 8, 2, num_agents=2, output_ports=True, addresses=torch.zeros(2, 3, 4)
        )
    with pytest.raises(ValueError, match="output_ports"):
        ExpertGraph.create(3, 2, 8, 2, num_agents=2, addresses=torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="num_outputs"):
        GuessingGame(3).reset(2, num_outputs=0)


@pytest.mark.parametrize("ports", [True, False])
def test_agents_with_different_d_in_one_batch_equal_each_alone(ports):
    torch.manual_seed(0)
    policy = tiny_policy()
    agent = Agent(policy, FullyConnected(), ports=AddressedPorts(16, 4) if ports else None)
    game = GuessingGame(3, feedback_to="all")
    dims = [1, 3, 5]
    ep = game.reset(3, torch.Generator().manual_seed(4), num_outputs=dims)
    assert ep.target.shape == (3, 5)
    assert (ep.target[0, 1:] == 0).all()
    addr = random_addresses(3, 5, 4, torch.Generator().manual_seed(5))
    state = agent.init_state(6, dims, num_agents=3, addresses=addr if ports else None)
    together = agent(LifetimeCall(game, ep, state, 5))
    for b, d in enumerate(dims):
        alone_ep = GuessingEpisode(ep.target[b : b + 1, :d], "scalar")
        alone_state = agent.init_state(
            6, d, num_agents=1, addresses=addr[b : b + 1, :d] if ports else None
        )
        alone = agent(LifetimeCall(game, alone_ep, alone_state, 5))
        torch.testing.assert_close(together.errors[:, b], alone.errors[:, 0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            together.actions[:, b, :d], alone.actions[:, 0], rtol=1e-4, atol=1e-5
        )
        assert (together.actions[:, b, d:] == 0).all()


def test_per_agent_curriculum():
    model = _model()
    model.spec = EpisodeSpec(num_outputs=(1, 6), per_agent=True)
    ep, state = model.runner.begin(3, 16, spec=model.spec)
    counts = torch.bincount(state.batch[state.output_index >= 0], minlength=16)
    assert torch.equal(counts, ep.dims)
    assert len(set(ep.dims.tolist())) > 1
    life = model.lifetime(3, 16, train=True)
    assert torch.isfinite(life.errors).all()


def test_pairs_are_expert_port_pairs_in_all_pairs_order():
    from badger_graph.growth import grow
    from badger_graph.state import Role
    from badger_graph.topologies.base import all_pairs

    agent = _agent()
    state = grow(agent.init_state([4, 6, 3], [2, 3, 1]), 2, "fresh", agents=[1])
    ei = all_pairs(state)
    keep = (state.role[ei[0]] == int(Role.EXPERT)) & (state.role[ei[1]] == int(Role.OUTPUT))
    assert torch.equal(agent.ports.pairs(state), ei[:, keep])


def test_batched_port_attention_equals_per_pair_attention():
    """Equal agents use one batched product for the port scores; same weights as per pair."""
    import math

    from torch_geometric.utils import softmax

    agent = _agent()
    ports = agent.ports
    state = agent.init_state(5, 3, num_agents=4)
    state = state.replace(h=torch.randn_like(state.h))
    links = ports.links(state)
    assert links.blocks is not None  # equal agents: the batched product is what is tested
    q = ports.lin_write(state.h)
    e, p = links.pairs
    score = (q[e] * state.address[p]).sum(-1) * (ports.temperature / math.sqrt(4))
    expected = softmax(score, e, num_nodes=state.num_nodes)
    torch.testing.assert_close(ports._attention(q, state, links), expected)
