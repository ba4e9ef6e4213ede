import math

import networkx as nx
import pytest
import torch
from helpers import random_graph

from badger_graph import ExpertGraph
from badger_graph.topologies import (
    Attention,
    Chain,
    CommNet,
    EdgeList,
    ErdosRenyi,
    FromNetworkx,
    FullyConnected,
    Layered,
    RandomInDegree,
    RandomOutDegree,
    Ring,
    Star,
    TarMAC,
)

SIZES = [1, 4, 6, 2, 5]


def _state(sizes=SIZES, hidden=8, seed=0):
    return random_graph(sizes, hidden, identity=2, seed=seed)


def _local_edges(state, ei, agent):
    lo = int(state.ptr[agent])
    keep = state.batch[ei[1]] == agent
    return {(int(a) - lo, int(b) - lo) for a, b in ei[:, keep].t()}


ALL = [
    FullyConnected(),
    FullyConnected(self_loops=True),
    Ring(),
    Ring(bidirectional=False),
    Chain(),
    Layered(width=2),
    Star(),
    EdgeList([[0, 1], [1, 2], [2, 0], [4, 0]]),
    ErdosRenyi(0.5, seed=1),
    RandomOutDegree(0, seed=1),
    RandomInDegree(3, seed=1),
    Attention(8, 4),
    Attention(8, 4, top_k=2),
]


@pytest.mark.parametrize("topo", ALL, ids=repr)
def test_never_connects_agents(topo):
    s = _state()
    ei, w = topo(s)
    assert ei.dtype == torch.long
    assert ei.dim() == 2
    assert ei.size(0) == 2
    assert torch.equal(s.batch[ei[0]], s.batch[ei[1]])
    if w is not None:
        assert w.shape == (ei.size(1),)


def test_fully_connected_matches_networkx():
    s = _state()
    ei, _ = FullyConnected()(s)
    for b, n in enumerate(SIZES):
        ref = set(nx.complete_graph(n, nx.DiGraph).edges)
        assert _local_edges(s, ei, b) == ref


def test_ring_chain_star_layered_patterns():
    s = _state([5])
    assert _local_edges(s, Ring(False)(s)[0], 0) == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)}
    assert _local_edges(s, Chain(False)(s)[0], 0) == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert _local_edges(s, Star()(s)[0], 0) == {(0, i) for i in range(1, 5)} | {
        (i, 0) for i in range(1, 5)
    }
    assert _local_edges(s, Layered(2, False)(s)[0], 0) == {
        (0, 2),
        (0, 3),
        (1, 2),
        (1, 3),
        (2, 4),
        (3, 4),
    }
    ring = nx.cycle_graph(5)
    assert _local_edges(s, Ring()(s)[0], 0) == set(ring.to_directed().edges)


def test_edge_list_and_networkx():
    g = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
    s = _state([3, 2])
    ei, _ = FromNetworkx(g)(s)
    assert _local_edges(s, ei, 0) == {(0, 1), (1, 2), (2, 0)}
    assert _local_edges(s, ei, 1) == {(0, 1)}  # edges past the agent's size are dropped
    ei2, _ = EdgeList(torch.tensor([[0, 1, 2], [1, 2, 0]]))(s)
    assert torch.equal(ei, ei2)


def test_random_reproducible_and_new_each_step():
    s = _state([6] * 4)
    a = RandomOutDegree(3, seed=7)
    b = RandomOutDegree(3, generator=torch.Generator().manual_seed(7))
    e1, e2 = a(s)[0], a(s)[0]
    assert torch.equal(e1, b(s)[0])
    assert torch.equal(e2, b(s)[0])
    assert not torch.equal(e1, e2)
    er = ErdosRenyi(0.5, seed=3)
    f1, f2 = er(s)[0], er(s)[0]
    assert not torch.equal(f1, f2)
    er.reseed(3)
    assert torch.equal(er(s)[0], f1)


def test_random_out_degree_is_exact_and_distinct():
    s = _state([4, 7, 5])
    ei, _ = RandomOutDegree(3, seed=0)(s)
    deg = torch.bincount(ei[0], minlength=s.num_nodes)
    assert (deg == 3).all()
    assert (ei[0] != ei[1]).all()
    assert len({tuple(e) for e in ei.t().tolist()}) == ei.size(1)


def test_erdos_renyi_probability():
    s = _state([30] * 20)
    p_hat = ErdosRenyi(0.3, seed=0)(s)[0].size(1) / (20 * 30 * 29)
    assert abs(p_hat - 0.3) < 0.02
    assert ErdosRenyi(0.0)(s)[0].size(1) == 0
    assert ErdosRenyi(1.0)(s)[0].size(1) == 20 * 30 * 29


def test_attention_follows_states_and_has_gradients():
    torch.manual_seed(0)
    att = Attention(8, 4, uniform_start=False)
    s = _state([5, 3])
    ei, w = att(s)
    # weights sum to one per receiver
    sums = torch.zeros(s.num_nodes).index_add_(0, ei[1], w)
    torch.testing.assert_close(sums, torch.ones(s.num_nodes))
    s2 = s.replace(h=torch.randn_like(s.h))
    _, w2 = att(s2)
    assert not torch.allclose(w, w2)
    (w * torch.randn_like(w)).sum().backward()
    assert att.lin_query.weight.grad.abs().sum() > 0
    assert att.lin_key.weight.grad.abs().sum() > 0


def test_attention_uniform_start_is_the_mean_and_learns():
    torch.manual_seed(0)
    att = Attention(8, 4)  # dense softmax: starts uniform (CommNet's mean over senders)
    assert att.uniform_start
    assert not Attention(8, 4, top_k=2).uniform_start
    s = _state([5, 3])
    ei, w = att(s)
    torch.testing.assert_close(w, 1.0 / (s.sizes[s.batch[ei[1]]] - 1).float())
    (w * torch.randn_like(w)).sum().backward()
    assert att.lin_query.weight.grad.abs().sum() > 0  # the query leaves zero at once


def test_attention_log_scale_sharpens_with_agent_size():
    torch.manual_seed(0)
    plain = Attention(8, 4, uniform_start=False)
    scaled = Attention(8, 4, uniform_start=False, log_scale=True)
    scaled.load_state_dict(plain.state_dict())
    s = _state([6])
    ei, _ = plain(s)
    torch.testing.assert_close(scaled.scores(s, ei), plain.scores(s, ei) * math.log(6))
    dense = scaled.dense(s)[0]
    _, w = scaled(s)
    torch.testing.assert_close(dense[ei[1], ei[0]], w)


def test_attention_top_k_picks_best():
    torch.manual_seed(0)
    att = Attention(8, 4, top_k=2)
    s = _state([6])
    ei, w = att(s)
    assert (torch.bincount(ei[1], minlength=6) == 2).all()
    dense_ei, _ = Attention.forward(Attention(8, 4), s)  # structure only
    scores = att.scores(s, dense_ei)
    for i in range(6):
        mine = scores[dense_ei[1] == i]
        top = mine.topk(2).values
        chosen = att.scores(s, ei[:, ei[1] == i])
        torch.testing.assert_close(chosen.sort().values, top.sort().values)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ErdosRenyi(1.5), "p must be in"),
        (lambda: ErdosRenyi(-0.1), "p must be in"),
        (lambda: RandomOutDegree(-1), "out-degree"),
        (lambda: RandomInDegree(0), "in-degree"),
        (lambda: Attention(8, top_k=0), "top_k"),
        (lambda: Layered(width=0), "width"),
        (lambda: EdgeList([[0, -1]]), "node indices"),
        (lambda: EdgeList(torch.tensor([[0.5, 1.0]])), "integers"),
        (lambda: EdgeList(torch.zeros(3, 3, dtype=torch.long)), "shape"),
    ],
)
def test_bad_input(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_out_degree_too_large():
    with pytest.raises(ValueError, match="out-degree k=3"):
        RandomOutDegree(3).check(3)
    with pytest.raises(ValueError, match="out-degree k=3"):
        RandomOutDegree(3)(_state([3, 5]))


def test_empty_batch():
    s = ExpertGraph.create([], 1, 8, 2)
    for topo in ALL:
        ei, _ = topo(s)
        assert ei.size(1) == 0


def test_random_out_degree_large_agents_use_sparse_sampler():
    s = _state([300, 500])
    topo = RandomOutDegree(8, seed=0)
    ei, _ = topo(s)
    assert (torch.bincount(ei[0], minlength=s.num_nodes) == 8).all()
    assert (ei[0] != ei[1]).all()
    assert torch.equal(s.batch[ei[0]], s.batch[ei[1]])
    assert len({tuple(e) for e in ei.t().tolist()}) == ei.size(1)
    # receivers are spread over the whole agent
    recv_local = s.local_index[ei[1][s.batch[ei[1]] == 1]]
    assert recv_local.min() < 20
    assert recv_local.max() > 480


def test_random_in_degree_is_exact_distinct_and_capped_by_agent_size():
    s = _state()  # agents of 1, 4, 6, 2 and 5 nodes
    ei, _ = RandomInDegree(3, seed=0)(s)
    deg = torch.bincount(ei[1], minlength=s.num_nodes)
    assert torch.equal(deg, (s.sizes[s.batch] - 1).clamp(max=3))
    assert (ei[0] != ei[1]).all()
    assert len({tuple(e) for e in ei.t().tolist()}) == ei.size(1)
    topo = RandomInDegree(3, seed=0)
    assert not torch.equal(topo(s)[0], topo(s)[0])  # new senders every step


def test_random_in_degree_dense_is_the_same_draw():
    s = _state([7] * 3)
    ei, _ = RandomInDegree(4, seed=5)(s)
    adj = RandomInDegree(4, seed=5).dense(s)
    assert adj.shape == (3, 7, 7)
    b, recv, send = adj.nonzero(as_tuple=True)
    dense_edges = {(int(x), int(y)) for x, y in zip(b * 7 + send, b * 7 + recv, strict=True)}
    assert dense_edges == {tuple(e) for e in ei.t().tolist()}
    assert (adj.sum(-1) == 4).all()
    small = _state([3] * 2)  # fewer nodes than k: everyone hears all others
    torch.testing.assert_close(
        RandomInDegree(5, seed=0).dense(small), FullyConnected().dense(small).contiguous()
    )
    assert RandomInDegree(2).dense(_state([3, 4])) is None  # unequal sizes: edge list only


def test_random_in_degree_experts_only_leaves_ports_out():
    s = ExpertGraph.create([4, 6, 6], 2, 8, 2, output_ports=True)  # 2 port nodes per agent
    ei, _ = RandomInDegree(3, experts_only=True, seed=0)(s)
    assert s.is_expert[ei].all()  # no port sends or receives
    deg = torch.bincount(ei[1], minlength=s.num_nodes)
    experts = s.num_experts()[s.batch]
    torch.testing.assert_close(deg[s.is_expert], (experts - 1).clamp(max=3)[s.is_expert])
    same = ExpertGraph.create([6, 6], 2, 8, 2, output_ports=True)
    ei, _ = RandomInDegree(3, experts_only=True, seed=1)(same)
    adj = RandomInDegree(3, experts_only=True, seed=1).dense(same)
    b, recv, send = adj.nonzero(as_tuple=True)
    n = 8
    dense_edges = {(int(x), int(y)) for x, y in zip(b * n + send, b * n + recv, strict=True)}
    assert dense_edges == {tuple(e) for e in ei.t().tolist()}


def test_named_baselines_pin_their_aggregation():
    from badger_graph import Agent, ExpertPolicy

    with pytest.raises(ValueError, match="aggr='mean'"):
        Agent(ExpertPolicy(8, 8, 8, 4, aggr="sum"), CommNet())
    with pytest.raises(ValueError, match="aggr='weighted'"):
        Agent(ExpertPolicy(8, 8, 8, 4, aggr="mean"), TarMAC(8))
    s = _state([4, 3])
    ei, w = CommNet()(s)
    assert w is None
    assert torch.equal(ei, FullyConnected()(s)[0])
    ei, w = TarMAC(8)(s)  # every expert of the agent, itself included, softmax weights
    assert ei.size(1) == 4 * 4 + 3 * 3
    sums = torch.zeros(s.num_nodes).index_add_(0, ei[1], w)
    torch.testing.assert_close(sums, torch.ones(s.num_nodes))
    assert not torch.allclose(w, 1.0 / s.sizes[s.batch[ei[1]]].float())  # not uniform


def test_only_the_librarys_own_topologies_skip_validation():
    """``trusted`` is not inherited: a user's subclass of a built-in is validated."""
    from badger_graph import Agent, EpisodeRunner, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import Attention, RandomOutDegree

    assert FullyConnected.trusted
    assert RandomOutDegree.trusted
    assert Attention.trusted

    class WrongBlock(FullyConnected):
        def dense(self, state):
            return torch.ones(1, 2, 2)  # not [B, n, n]

    assert not WrongBlock.trusted
    runner = EpisodeRunner(Agent(ExpertPolicy(), WrongBlock()), GuessingGame(3), 3, 2)
    with pytest.raises(ValueError, match=r"WrongBlock.dense must return \[B, n, n\]"):
        runner.run(0, 4)
