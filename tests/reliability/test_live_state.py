"""A running agent saved mid-lifetime continues identically after loading."""

import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, ExpertPolicy
from badger_graph.growth import grow
from badger_graph.ports import AddressedPorts
from badger_graph.records import LifetimeCall
from badger_graph.snapshot import Snapshot, load_snapshot, save_snapshot
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import Attention, RandomOutDegree


def _agent(kind: str) -> Agent:
    torch.manual_seed(0)
    if kind == "random":
        return Agent(tiny_policy(), RandomOutDegree(2, seed=11), rounds=2)
    return Agent(
        tiny_policy(aggr="weighted"),
        Attention(16, 4, top_k=3),
        ports=AddressedPorts(16, address_channels=4),
    )


@pytest.mark.parametrize("kind", ["random", "ports"])
def test_saved_agent_continues_identically(tmp_path, kind):
    T, t = 10, 4
    game = GuessingGame(3, feedback_to="all")
    agent = _agent(kind)
    g = torch.Generator().manual_seed(5)
    episode = game.reset(6, generator=g)
    state0 = agent.init_state(5, 3, num_agents=6, generator=g)
    full = agent(LifetimeCall(game, episode, state0, T))

    if kind == "random":
        agent.topology.reseed(11)
    first = agent(LifetimeCall(game, episode, state0, t, total_steps=T))
    save_snapshot(tmp_path / "live.pt", Snapshot.of(agent, first, total_steps=T))

    other = _agent(kind)  # a fresh process would build the agent and load its weights
    other.load_state_dict(agent.state_dict())
    if kind == "random":
        other.topology.reseed(999)  # a different generator position: restore must fix it
    snap = load_snapshot(tmp_path / "live.pt")
    snap.restore(other)
    assert snap.state.step == t
    rest = other(
        LifetimeCall(game, snap.episode, snap.state, T - t, result=snap.result, total_steps=T)
    )
    assert torch.equal(rest.actions, full.actions[t:])
    assert torch.equal(rest.state.h, full.state.h)
    assert torch.equal(rest.errors, full.errors[t:])


def test_loaded_snapshot_grows_into_more_experts(tmp_path):
    game = GuessingGame(3, feedback_to="all")
    agent = _agent("random")
    episode = game.reset(2, generator=torch.Generator().manual_seed(1))
    life = agent(
        LifetimeCall(game, episode, agent.init_state(5, 3, num_agents=2), 3, total_steps=8)
    )
    save_snapshot(tmp_path / "s.pt", Snapshot.of(agent, life, total_steps=8))
    snap = load_snapshot(tmp_path / "s.pt")
    bigger = grow(snap.state, 4, "clone")
    assert bigger.num_nodes == snap.state.num_nodes + 8
    rest = agent(LifetimeCall(game, snap.episode, bigger, 5, result=snap.result, total_steps=8))
    assert rest.actions.shape == (5, 2, 3)
    assert torch.isfinite(rest.actions).all()


def test_bad_snapshot_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_snapshot(tmp_path / "none.pt")
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a badger_graph snapshot"):
        load_snapshot(tmp_path / "x.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable snapshot"):
        load_snapshot(tmp_path / "junk.pt")
    game = GuessingGame(3)
    agent = _agent("random")
    episode = game.reset(1, generator=torch.Generator().manual_seed(1))
    life = agent(LifetimeCall(game, episode, agent.init_state(5, 3, num_agents=1), 2))
    snap = Snapshot.of(agent, life)
    narrow = Agent(ExpertPolicy(8, 8, 8, 4), RandomOutDegree(2))
    with pytest.raises(ValueError, match="hidden_channels=8"):
        snap.restore(narrow)
