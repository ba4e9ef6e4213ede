"""Fast paths give the plain path's results (forward and gradients)."""

import pytest
import torch
from helpers import grads, tiny_policy

from badger_graph import Agent, ExpertPolicy
from badger_graph.adjacency import CSRAdjacency, DenseAdjacency, EdgeAdjacency
from badger_graph.execution import Execution, adjacency
from badger_graph.records import LifetimeCall
from badger_graph.state import NUM_FEATURES
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies import (
    Attention,
    CommNet,
    ErdosRenyi,
    FullyConnected,
    RandomInDegree,
    RandomOutDegree,
    TarMAC,
)


def _lifetime_and_grads(agent, sizes, d=3, steps=5):
    target = torch.rand(len(sizes), d, generator=torch.Generator().manual_seed(0)) * 2 - 1
    game = GuessingGame(d, feedback_to="all")
    state = agent.init_state(sizes, d)
    life = agent(LifetimeCall(game, GuessingEpisode(target, "scalar"), state, steps))
    agent.zero_grad()
    life.errors.mean().backward()
    return life, grads(agent)


def _assert_same_lifetimes(x, y, sizes, tol, grad_tol):
    """Agents ``x`` and ``y`` give the same actions and gradients (rtol, atol pairs)."""
    a, ga = _lifetime_and_grads(x, sizes)
    b, gb = _lifetime_and_grads(y, sizes)
    torch.testing.assert_close(a.actions, b.actions, rtol=tol[0], atol=tol[1])
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=grad_tol[0], atol=grad_tol[1])


CASES = [
    ("mean", lambda: FullyConnected()),
    ("sum", lambda: FullyConnected()),
    ("mean", lambda: FullyConnected(self_loops=True)),
    ("weighted", lambda: Attention(16, 4)),
    ("weighted", lambda: Attention(16, 4, top_k=2)),
    ("weighted", lambda: Attention(16, 4, uniform_start=False, log_scale=True)),
    ("weighted", lambda: Attention(16, 4, top_k=2, log_scale=True)),
    ("weighted", lambda: TarMAC(16, 4)),
    ("mean", lambda: CommNet()),
]


@pytest.mark.parametrize(("aggr", "make_topology"), CASES)
@pytest.mark.parametrize("output_ports", [False, True])
def test_dense_equals_sparse(aggr, make_topology, output_ports):
    torch.manual_seed(0)
    policy = tiny_policy(aggr=aggr)
    topo = make_topology()
    dense = Agent(
        policy, topo, rounds=2, output_ports=output_ports, execution=Execution(dense="auto")
    )
    sparse = Agent(
        policy, topo, rounds=2, output_ports=output_ports, execution=Execution(dense="never")
    )
    sparse.load_state_dict(dense.state_dict())
    sizes = [5, 5, 5]
    state = dense.init_state(sizes, 3)
    assert _path(dense, state) is DenseAdjacency  # the dense path is really taken
    assert _path(sparse, state) is not DenseAdjacency
    a, ga = _lifetime_and_grads(dense, sizes)
    b, gb = _lifetime_and_grads(sparse, sizes)
    torch.testing.assert_close(a.actions, b.actions, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.state.h, b.state.h, rtol=1e-4, atol=1e-5)
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-3, atol=1e-5)


def _path(agent, state, record=False):
    """Type of the adjacency the agent's step would use for ``state``."""
    adj = adjacency(agent.policy, agent.topology, state, agent.execution, record)[0]
    return type(adj)


def test_unequal_sizes_fall_back_to_sparse():
    agent = Agent(tiny_policy(), FullyConnected())
    assert _path(agent, agent.init_state([3, 4], 3)) is not DenseAdjacency
    capped = Agent(tiny_policy(), FullyConnected(), execution=Execution(dense_max_nodes=256))
    assert _path(capped, capped.init_state([300], 3)) is not DenseAdjacency  # > dense_max_nodes
    assert _path(agent, agent.init_state([300], 3)) is DenseAdjacency  # by cost: all pairs
    tight = Agent(tiny_policy(), FullyConnected(), execution=Execution(dense_max_bytes=10**5))
    assert _path(tight, tight.init_state([300], 3)) is not DenseAdjacency  # block too big
    sparse = Agent(tiny_policy(), RandomInDegree(3, seed=0))
    assert _path(sparse, sparse.init_state([20, 20], 3)) is DenseAdjacency  # 400 <= 8 * 60
    assert _path(sparse, sparse.init_state([30, 30], 3)) is not DenseAdjacency  # 900 > 8 * 90


def test_bad_dense_mode():
    with pytest.raises(ValueError, match="dense"):
        Agent(tiny_policy(), FullyConnected(), execution=Execution(dense="sometimes"))


# -- CSR aggregation (sparse-matrix product) vs PyG gather/scatter -----------------------
def _edges_cases():
    g = torch.Generator().manual_seed(1)
    n = 40
    unsorted = torch.randint(0, n, (2, 300), generator=g)  # duplicates, isolated receivers
    sorted_src = unsorted[:, torch.argsort(unsorted[0])]
    return n, {
        "unsorted": unsorted,
        "sorted_by_sender": sorted_src,
        "empty": torch.empty(2, 0, dtype=torch.long),
        "one_receiver": torch.stack([torch.arange(n), torch.zeros(n, dtype=torch.long)]),
    }


@pytest.mark.parametrize("aggr", ["mean", "sum", "weighted"])
@pytest.mark.parametrize("case", ["unsorted", "sorted_by_sender", "empty", "one_receiver"])
def test_csr_equals_edges_forward_and_gradients(aggr, case):
    from badger_graph.adjacency import CSRAdjacency

    torch.manual_seed(0)
    n, cases = _edges_cases()
    edge_index = cases[case]
    policy = ExpertPolicy(16, 8, 8, 0, aggr=aggr).double()
    h = torch.randn(n, 16, dtype=torch.double, requires_grad=True)
    u = torch.randn(n, 8, dtype=torch.double)
    w = torch.rand(edge_index.size(1), dtype=torch.double, requires_grad=True)
    w_arg = w if aggr == "weighted" else None
    adj = CSRAdjacency.from_edge_index(edge_index, n)
    inputs = [h, w, *policy.parameters()]
    a = policy(h, u, edge_index, w_arg)
    b = policy(h, u, adj, w_arg)
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad(a.pow(2).sum(), inputs, allow_unused=True)
    gb = torch.autograd.grad(b.pow(2).sum(), inputs, allow_unused=True)
    for x, y in zip(ga, gb, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            torch.testing.assert_close(x, y)
    if aggr == "weighted" and edge_index.numel():
        assert gb[1].abs().sum() > 0  # the attention weights get their gradient


@pytest.mark.parametrize("aggr", ["mean", "sum", "weighted"])
@pytest.mark.parametrize("case", ["unsorted", "empty", "one_receiver"])
def test_edge_list_aggregate_is_propagate(aggr, case):
    """One ``aggregate`` for every form: on the edge list it is PyG's ``propagate`` of the
    same messages, bit for bit, and a RolePolicies of one policy rounds exactly the same."""
    from badger_graph.policies import RolePolicies

    torch.manual_seed(0)
    n, cases = _edges_cases()
    edge_index = cases[case]
    policy = ExpertPolicy(16, 8, 8, 0, aggr=aggr)
    h, x = torch.randn(n, 16), torch.randn(n, NUM_FEATURES)
    w = torch.rand(edge_index.size(1)) if aggr == "weighted" else None
    u = policy.encode(x)
    sent = policy.send(h)
    adj = EdgeAdjacency(edge_index, n)
    propagated = policy.propagate(edge_index, s=sent, r=None, w=w)
    assert torch.equal(adj.aggregate(sent, w, aggr), propagated)
    per_edge = policy._edge_round(h, u, edge_index, w, return_messages=False)
    assert torch.equal(policy(h, u, adj, w), per_edge)
    assert torch.equal(policy(h, u, edge_index, w), per_edge)  # an edge index is an edge list
    roles = RolePolicies([policy])
    assert torch.equal(roles(h, x, adj, w), per_edge)
    recorded, msg = roles(h, x, adj, w, return_messages=True)
    assert torch.equal(recorded, per_edge)
    assert torch.equal(msg, policy._edge_round(h, u, edge_index, w, True)[1])


@pytest.mark.parametrize("aggr", ["mean", "weighted"])
def test_csr_gradcheck(aggr):
    from badger_graph.adjacency import CSRAdjacency

    n, cases = _edges_cases()
    adj = CSRAdjacency.from_edge_index(cases["unsorted"], n)
    s = torch.randn(n, 3, dtype=torch.double, requires_grad=True)
    w = torch.rand(adj.num_edges, dtype=torch.double, requires_grad=aggr == "weighted")
    assert torch.autograd.gradcheck(
        lambda s, w: adj.aggregate(s, w if aggr == "weighted" else None, aggr), (s, w)
    )


@pytest.mark.parametrize("make_topology", [lambda: Attention(16, 4, top_k=3), "random"])
def test_agent_csr_equals_edges(make_topology):
    from badger_graph.topologies import RandomOutDegree

    torch.manual_seed(0)
    if make_topology == "random":
        policy, topo = tiny_policy(), RandomOutDegree(3, seed=5)
    else:
        policy, topo = tiny_policy(aggr="weighted"), make_topology()
    csr = Agent(policy, topo, rounds=2, execution=Execution(dense="never", sparse="csr"))
    edges = Agent(policy, topo, rounds=2, execution=Execution(dense="never", sparse="edges"))
    edges.load_state_dict(csr.state_dict())
    sizes = [4, 7, 5]  # unequal: the dense path cannot serve them
    if hasattr(topo, "reseed"):
        topo.reseed(5)
    a, ga = _lifetime_and_grads(csr, sizes)
    if hasattr(topo, "reseed"):
        topo.reseed(5)
    b, gb = _lifetime_and_grads(edges, sizes)
    torch.testing.assert_close(a.actions, b.actions, rtol=1e-5, atol=1e-6)
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-4, atol=1e-6)


def test_auto_sparse_switches_on_edge_count():
    ex = Execution(dense="never", csr_min_edges=12)
    agent = Agent(tiny_policy(), FullyConnected(), execution=ex)
    assert _path(agent, agent.init_state([3, 3], 3)) is CSRAdjacency  # 12 edges
    assert _path(agent, agent.init_state([3, 2], 2)) is EdgeAdjacency  # 8 edges
    recv = Agent(
        tiny_policy(receiver_term=True),
        FullyConnected(),
        execution=Execution(sparse="csr"),
    )
    assert _path(recv, recv.init_state([3, 3], 3)) is EdgeAdjacency  # needs per-edge messages
    assert _path(agent, agent.init_state([3, 3], 3), record=True) is EdgeAdjacency
    with pytest.raises(ValueError, match="sparse"):
        Agent(tiny_policy(), FullyConnected(), execution=Execution(sparse="fast"))


def test_blocked_inference_update_equals_one_call():
    torch.manual_seed(0)
    policy = tiny_policy()
    h, u, agg = torch.randn(50, 16), torch.randn(50, 8), torch.randn(50, 8)
    with torch.no_grad():
        whole = policy.gru_update(u, agg, h)
        policy.update_chunk = 7  # instance attribute: blocks of 7 rows, last one partial
        blocked = policy.gru_update(u, agg, h)
    torch.testing.assert_close(whole, blocked)


@pytest.mark.parametrize("aggr", ["mean", "sum", "weighted"])
def test_blocked_inference_csr_round_equals_per_edge_round(aggr):
    """Inference on large graphs aggregates and updates block by block: same states."""
    n, _ = _edges_cases()
    ei = _edges_cases()[1]["unsorted"]  # duplicates and receivers without senders
    g = torch.Generator().manual_seed(3)
    h, u = torch.randn(n, 16, generator=g), torch.randn(n, 8, generator=g)
    w = torch.rand(ei.size(1), generator=g) if aggr == "weighted" else None
    torch.manual_seed(0)
    policy = tiny_policy(aggr=aggr)
    with torch.no_grad():
        ref = policy(h, u, ei, w)
        policy.update_chunk = 7  # blocks of 7 receivers, the last one partial
        assert policy._blocked(h)
        blocked = policy(h, u, CSRAdjacency.from_edge_index(ei, n), w)
    torch.testing.assert_close(blocked, ref, rtol=1e-5, atol=1e-6)


def test_row_blocks_only_on_cpu_inference():
    """Row blocks are a CPU-cache trick: never with autograd, never on another device."""
    from badger_graph.execution import blocked_rows

    big, small = torch.empty(5000, 4), torch.empty(100, 4)
    with torch.no_grad():
        assert blocked_rows(big, 4096)
        assert not blocked_rows(small, 4096)
        assert not blocked_rows(torch.empty(5000, 4, device="meta"), 4096)
    assert not blocked_rows(big, 4096)  # autograd on


@pytest.mark.parametrize("dense", ["auto", "never"])
def test_compiled_equals_eager(dense):
    """torch.compile(dynamic=True) of the policy's rounds: same lifetime and gradients."""
    torch.manual_seed(0)
    policy = tiny_policy()
    eager = Agent(
        policy, FullyConnected(), rounds=2, execution=Execution(dense=dense, sparse="edges")
    )
    compiled = Agent(
        policy,
        FullyConnected(),
        rounds=2,
        execution=Execution(dense=dense, sparse="edges", compile=True),
    )
    compiled.load_state_dict(eager.state_dict())  # the same readout too
    for sizes in ([5, 5, 5], [5, 5, 5, 5]):  # a second batch size reuses the dynamic graph
        a, ga = _lifetime_and_grads(eager, sizes)
        b, gb = _lifetime_and_grads(compiled, sizes)
        torch.testing.assert_close(a.actions, b.actions, rtol=1e-4, atol=1e-5)
        for k in ga:
            torch.testing.assert_close(ga[k], gb[k], rtol=1e-3, atol=1e-5)
    assert compiled.runtime.rounds  # the compiled path was really taken


def test_torch_scatter_equals_native_scatter(monkeypatch):
    """With the optional torch-scatter installed, PyG's aggregation gives the same numbers."""
    pytest.importorskip("torch_scatter")
    import torch_geometric.typing

    torch.manual_seed(0)
    policy = tiny_policy()
    agent = Agent(
        policy, FullyConnected(), rounds=2, execution=Execution(dense="never", sparse="edges")
    )
    a, ga = _lifetime_and_grads(agent, [4, 6])
    monkeypatch.setattr(torch_geometric.typing, "WITH_TORCH_SCATTER", False)
    b, gb = _lifetime_and_grads(agent, [4, 6])
    torch.testing.assert_close(a.actions, b.actions)
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k])


# -- activation checkpointing ---------------------------------------------------------
@pytest.mark.parametrize(
    ("aggr", "make_topology", "kwargs"),
    [
        ("mean", lambda: FullyConnected(), {"dense": "auto"}),
        ("weighted", lambda: Attention(16, 4, top_k=2), {"dense": "never", "sparse": "edges"}),
        ("weighted", lambda: Attention(16, 4, top_k=2), {"dense": "never", "sparse": "csr"}),
        ("mean", lambda: RandomOutDegree(3, seed=5), {"sparse": "csr"}),
    ],
)
def test_activation_checkpointing_gives_the_same_gradients(aggr, make_topology, kwargs):
    torch.manual_seed(0)
    policy = tiny_policy(aggr=aggr)
    plain = Agent(policy, make_topology(), rounds=2, execution=Execution(**kwargs))
    ckpt = Agent(policy, make_topology(), rounds=2, execution=Execution(checkpoint=True, **kwargs))
    ckpt.load_state_dict(plain.state_dict())
    sizes = [6, 6, 6]
    a, ga = _lifetime_and_grads(plain, sizes)
    b, gb = _lifetime_and_grads(ckpt, sizes)
    torch.testing.assert_close(a.actions, b.actions)
    assert ga.keys() == gb.keys()
    assert len(ga) > 0
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], rtol=1e-5, atol=1e-7)


def test_activation_checkpointing_keeps_less_for_backward():
    """The rounds' activations are not kept: fewer bytes saved for backward per step."""
    from torch.autograd.graph import saved_tensors_hooks

    def saved_bytes(agent):
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        with saved_tensors_hooks(pack, lambda t: t):
            _lifetime_and_grads(agent, [50, 50], steps=4)
        return total[0]

    torch.manual_seed(0)
    policy = ExpertPolicy(64, 64, 16, 8)
    plain = saved_bytes(
        Agent(policy, RandomOutDegree(8, seed=0), execution=Execution(sparse="csr"))
    )
    ckpt = saved_bytes(
        Agent(
            policy, RandomOutDegree(8, seed=0), execution=Execution(sparse="csr", checkpoint=True)
        )
    )
    assert ckpt < plain / 2, (plain, ckpt)


@pytest.mark.parametrize("output_ports", [False, True])
def test_random_in_degree_dense_path_equals_sparse_path(output_ports):
    """Both paths draw the same senders from equally seeded generators."""
    torch.manual_seed(0)
    policy = tiny_policy()
    kw = {"rounds": 2, "output_ports": output_ports}
    dense = Agent(policy, RandomInDegree(3, seed=2), execution=Execution(dense="auto"), **kw)
    sparse = Agent(policy, RandomInDegree(3, seed=2), execution=Execution(dense="never"), **kw)
    sparse.load_state_dict(dense.state_dict())
    probe = dense.init_state([6, 6], 3)
    assert isinstance(adjacency(policy, dense.topology, probe, dense.execution)[0], DenseAdjacency)
    dense.topology.reseed(2)  # the check above drew once
    _assert_same_lifetimes(dense, sparse, [6, 6, 6], (1e-4, 1e-5), (1e-3, 1e-5))


@pytest.mark.parametrize(
    ("make_topology", "aggr"),
    [
        (lambda: RandomOutDegree(3, seed=4), "mean"),
        (lambda: RandomOutDegree(2, seed=4), "sum"),
        (lambda: ErdosRenyi(0.4, seed=4), "mean"),
    ],
)
def test_random_edges_as_a_dense_block_equal_the_edge_path(make_topology, aggr):
    """Small agents of random topologies take the dense path from the same drawn edges."""
    torch.manual_seed(0)
    policy = tiny_policy(aggr=aggr)
    dense = Agent(policy, make_topology(), rounds=2)
    edges = Agent(
        policy, make_topology(), rounds=2, execution=Execution(dense="never", sparse="edges")
    )
    edges.load_state_dict(dense.state_dict())
    assert _path(dense, dense.init_state([8, 8], 3)) is DenseAdjacency
    dense.topology.reseed(4)  # the probe above drew once
    _assert_same_lifetimes(dense, edges, [8, 8, 8], (1e-5, 1e-6), (1e-4, 1e-6))
