import pytest
import torch
from helpers import random_states

from badger_graph import Agent
from badger_graph.curriculum import GrowthCurriculum
from badger_graph.growth import GrowthEvent, grow, remove
from badger_graph.ports import AddressedPorts
from badger_graph.records import LifetimeCall
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import FullyConnected


def _state(agent, sizes=(3, 5), d=2):
    return random_states(agent.init_state(list(sizes), d))


@pytest.mark.parametrize("mode", ["fresh", "clone"])
@pytest.mark.parametrize("ports", [False, True])
def test_grow_keeps_old_states_and_other_agents(mode, ports, small_policy):
    agent = Agent(small_policy, FullyConnected(), ports=AddressedPorts(16, 4) if ports else None)
    s = _state(agent)
    g = grow(s, 2, mode, agents=[1])
    assert g.sizes.tolist() == [int(s.sizes[0]), int(s.sizes[1]) + 2]
    assert g.num_experts().tolist() == [3, 7]
    # agent 0 untouched, agent 1's old nodes identical, new ones at the end
    n0 = int(s.sizes[0])
    assert torch.equal(g.h[:n0], s.h[:n0])
    old1 = s.h[n0:]
    assert torch.equal(g.h[n0 : n0 + old1.size(0)], old1)
    assert torch.equal(g.identity[: s.num_nodes], s.identity)
    assert torch.equal(g.output_index[: s.num_nodes], s.output_index)
    new = g.h[-2:]
    if mode == "fresh":
        assert (new == 0).all()
    else:
        experts1 = s.h[n0:][s.is_expert[n0:]]
        assert torch.equal(new, experts1[:2])
    assert not torch.equal(g.identity[-1], g.identity[-2])  # fresh identities
    assert g.output_index[-2:].tolist() == [-1, -1]


def test_remove_then_readd_restores_shapes(small_policy):
    agent = Agent(small_policy, FullyConnected())
    s = _state(agent, (4, 4))
    r = remove(s, 1, [1, 3])
    assert r.sizes.tolist() == [4, 2]
    assert torch.equal(r.h[:4], s.h[:4])
    assert torch.equal(r.h[4:], s.h[[4, 6]])
    back = grow(r, 2, "fresh", agents=[1])
    assert back.sizes.tolist() == s.sizes.tolist()
    assert back.h.shape == s.h.shape
    assert back.local_index.tolist() == s.local_index.tolist()


def test_growth_mid_lifetime_equals_plain_lifetime_up_to_step(small_policy, game):
    agent = Agent(small_policy, FullyConnected())
    target = torch.rand(3, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ep = GuessingEpisode(target, "scalar")
    s = agent.init_state(4, 3, num_agents=3)
    plain = agent(LifetimeCall(game, ep, s, 8))
    grown = agent(LifetimeCall(game, ep, s, 8, growth=[GrowthEvent(5, 4, "clone")]))
    torch.testing.assert_close(grown.actions[:5], plain.actions[:5])
    assert not torch.allclose(grown.actions[5:], plain.actions[5:])
    assert grown.state.num_experts().tolist() == [8, 8, 8]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: grow(s, 0), "at least 1"),
        (lambda s: grow(s, 2, "twin"), "mode"),
        (lambda s: grow(s, 1, agents=[7]), "out of range"),
        (lambda s: remove(s, 0, [0, 1, 2]), "at least one"),
        (lambda s: remove(s, 0, [9]), "no expert"),
        (lambda s: remove(s, 5, [0]), "out of range"),
        (lambda s: GrowthEvent(-1, 2), "step"),
    ],
)
def test_bad_growth(call, match, small_policy):
    s = _state(Agent(small_policy, FullyConnected()))
    with pytest.raises(ValueError, match=match):
        call(s)


def test_growth_curriculum_draws_bounded_events():
    cur = GrowthCurriculum(probability=1.0, factor=[2.0, 4.0], steps=[2, 5], modes=["fresh"])
    capped = GrowthCurriculum(probability=1.0, factor=[2.0, 4.0], steps=[2, 5], max_experts=30)
    for seed in range(50):
        (event,) = cur.draw(torch.Generator().manual_seed(seed), 10, 20)
        assert 2 <= event.step <= 5
        assert 10 <= event.count <= 30  # 10 experts grown x2 .. x4
        assert event.mode == "fresh"
        (event,) = capped.draw(torch.Generator().manual_seed(seed), 10, 20)
        assert 10 <= event.count <= 20  # never beyond 30 experts
        assert capped.draw(torch.Generator().manual_seed(seed), 30, 20) == []  # full already
    never = GrowthCurriculum(probability=0.0)
    assert never.draw(torch.Generator().manual_seed(0), 10, 20) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"probability": 1.5}, "probability"),
        ({"factor": [1.0, 2.0]}, "factor"),
        ({"steps": [0, 3]}, "steps"),
        ({"modes": ["copy"]}, "modes"),
        ({"max_experts": 0}, "max_experts"),
    ],
)
def test_bad_growth_curriculum(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GrowthCurriculum(**kwargs)
