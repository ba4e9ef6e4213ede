"""Property-based tests (hypothesis) over topologies, growth, batching and fast paths.

Each property runs on ``MAX_EXAMPLES`` generated cases (agent counts and sizes, generator
parameters, growth counts and modes, edge lists). ``pytest tests/reliability
--hypothesis-show-statistics`` prints how many cases ran and passed.
"""

import torch
from helpers import random_graph, tiny_policy
from hypothesis import given, settings
from hypothesis import strategies as st

from badger_graph import Agent, ExpertGraph
from badger_graph.adjacency import CSRAdjacency
from badger_graph.execution import Execution
from badger_graph.growth import grow, remove
from badger_graph.records import LifetimeCall
from badger_graph.state import Role
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import (
    Attention,
    Chain,
    ErdosRenyi,
    FullyConnected,
    RandomOutDegree,
    Ring,
    Star,
)
from badger_graph.topologies.base import check_topology_output

MAX_EXAMPLES = 150
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True)

sizes_st = st.lists(st.integers(1, 9), min_size=1, max_size=5)


def _state(sizes, hidden=16, seed=0):
    return random_graph(sizes, hidden, seed=seed)


def _topology(kind: str, param: float, sizes):
    smallest = min(sizes)
    if kind == "full":
        return FullyConnected(self_loops=param > 0.5)
    if kind == "ring":
        return Ring(bidirectional=param > 0.5)
    if kind == "chain":
        return Chain()
    if kind == "star":
        return Star()
    if kind == "er":
        return ErdosRenyi(param, seed=int(param * 1000))
    if kind == "outdeg":
        return RandomOutDegree(max(0, min(smallest - 1, 1 + int(param * 3))), seed=3)
    return Attention(16, 4, top_k=1 + int(param * 4))


@SETTINGS
@given(
    sizes=sizes_st,
    kind=st.sampled_from(["full", "ring", "chain", "star", "er", "outdeg", "attn"]),
    param=st.floats(0.0, 1.0),
)
def test_generated_edges_are_valid_and_stay_within_agents(sizes, kind, param):
    state = _state([s + 1 for s in sizes])  # +1: the output port-free agents need >= 2 nodes
    topo = _topology(kind, param, [s + 1 for s in sizes])
    edge_index, weight = check_topology_output(topo(state), state, topo)  # raises if invalid
    src, dst = edge_index
    if not (kind == "full" and param > 0.5):
        assert bool((src != dst).all())  # no self loops unless asked for
    if kind == "outdeg":
        k = topo.k
        assert torch.equal(
            torch.bincount(src, minlength=state.num_nodes), torch.full((state.num_nodes,), k)
        )
    if weight is not None:
        sums = torch.zeros(state.num_nodes).index_add_(0, dst, weight)
        has_in = torch.bincount(dst, minlength=state.num_nodes) > 0
        torch.testing.assert_close(sums[has_in], torch.ones(int(has_in.sum())))


@SETTINGS
@given(
    sizes=sizes_st,
    count=st.integers(1, 6),
    mode=st.sampled_from(["fresh", "clone"]),
    pick=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_growth_keeps_states_and_other_agents(sizes, count, mode, pick):
    state = _state(sizes)
    agents = [b for b in range(len(sizes)) if pick[b]]
    grown = grow(state, count, mode, agents=agents)
    for b, n in enumerate(sizes):
        old = state.h[state.ptr[b] : state.ptr[b + 1]]
        new = grown.h[grown.ptr[b] : grown.ptr[b + 1]]
        expected = n + (count if b in agents else 0)
        assert new.size(0) == expected
        assert torch.equal(new[:n], old)  # bit for bit, positions unchanged
        if mode == "fresh" and b in agents:
            assert bool((new[n:] == 0).all())
    # removing the grown experts again restores every agent's size and states
    shrunk = grown
    for b in agents:
        local = torch.arange(sizes[b], sizes[b] + count).tolist()
        shrunk = remove(shrunk, b, local)
    assert torch.equal(shrunk.sizes, state.sizes)
    assert torch.equal(shrunk.h, state.h)


@SETTINGS
@given(sizes=st.lists(st.integers(3, 7), min_size=1, max_size=4), seed=st.integers(0, 10**6))
def test_batch_equals_each_agent_alone(sizes, seed):
    torch.manual_seed(0)
    agent = Agent(tiny_policy(), FullyConnected(), rounds=2, execution=Execution(dense="never"))
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(len(sizes), 3, generator=g) * 2 - 1
    game = GuessingGame(3)
    together = agent(
        LifetimeCall(game, GuessingEpisode(target, "scalar"), agent.init_state(sizes, 3), 4)
    )
    for b, n in enumerate(sizes):
        alone = agent(
            LifetimeCall(
                game, GuessingEpisode(target[b : b + 1], "scalar"), agent.init_state([n], 3), 4
            )
        )
        torch.testing.assert_close(together.actions[:, b], alone.actions[:, 0])


@SETTINGS
@given(
    n=st.integers(1, 30),
    e=st.integers(0, 120),
    seed=st.integers(0, 10**6),
    aggr=st.sampled_from(["mean", "sum", "weighted"]),
)
def test_csr_aggregation_equals_scatter(n, e, seed, aggr):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    s = torch.randn(n, 5, generator=g, dtype=torch.double)
    w = torch.rand(e, generator=g, dtype=torch.double)
    src, dst = edge_index
    msg = s[src] * (w.unsqueeze(1) if aggr == "weighted" else 1)
    ref = torch.zeros(n, 5, dtype=torch.double).index_add_(0, dst, msg)
    if aggr == "mean":
        ref = ref / torch.bincount(dst, minlength=n).clamp(min=1).unsqueeze(1)
    out = CSRAdjacency.from_edge_index(edge_index, n).aggregate(
        s, w if aggr == "weighted" else None, aggr
    )
    torch.testing.assert_close(out, ref)


def test_roles_of_generated_states():
    """A deterministic companion: every created state has experts first, then ports."""
    state = ExpertGraph.create([3, 4], 2, 8, 4, output_ports=True)
    for b in range(2):
        roles = state.role[state.ptr[b] : state.ptr[b + 1]]
        assert (roles[:-2] == int(Role.EXPERT)).all()
