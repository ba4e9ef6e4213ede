import pytest
import torch
from helpers import tiny_policy

from badger_graph import ExpertGraph, ExpertPolicy
from badger_graph.topologies import FullyConnected


def _inputs(policy, sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = ExpertGraph.create(sizes, 1, policy.hidden_channels, policy.identity_channels)
    s = s.replace(h=torch.randn(s.num_nodes, policy.hidden_channels, generator=g))
    x = torch.randn(s.num_nodes, policy.node_features, generator=g)
    return s, x


def test_repr():
    p = tiny_policy(aggr="sum")
    assert repr(p) == (
        "ExpertPolicy(hidden=16, message=8, input=8, identity=4, aggr='sum', receiver_term=False)"
    )


def test_parameter_count_independent_of_graph():
    p = tiny_policy()
    n = sum(q.numel() for q in p.parameters())
    for sizes in ([1], [3, 3], [50] * 7):
        s, x = _inputs(p, sizes)
        ei, _ = FullyConnected()(s)
        out = p(s.h, p.encode(x), ei)
        assert out.shape == s.h.shape
        assert sum(q.numel() for q in p.parameters()) == n


@pytest.mark.parametrize("aggr", ["mean", "sum", "weighted"])
@pytest.mark.parametrize("receiver_term", [False, True])
def test_propagate_matches_dense(aggr, receiver_term):
    torch.manual_seed(0)
    p = tiny_policy(aggr=aggr, receiver_term=receiver_term)
    s, x = _inputs(p, [4])
    ei, _ = FullyConnected()(s)
    w = torch.rand(ei.size(1))
    u = p.encode(x)
    out = p(s.h, u, ei, w)
    # dense reference: message from j to i for every pair, masked by adjacency
    send = p.lin_send(s.h)
    pre = send.unsqueeze(0).expand(4, 4, -1)  # [i, j, M]
    if receiver_term:
        pre = pre + p.lin_recv(s.h).unsqueeze(1)
    m = torch.tanh(pre)
    W = torch.zeros(4, 4)
    W[ei[1], ei[0]] = w if aggr == "weighted" else 1.0
    agg = (W.unsqueeze(-1) * m).sum(1)
    if aggr == "mean":
        agg = agg / 3
    ref = p.rnn(torch.cat([u, agg], -1), s.h)
    torch.testing.assert_close(out, ref)
    # the recording path gives the same states and per-edge messages
    out2, msg = p(s.h, u, ei, w, return_messages=True)
    torch.testing.assert_close(out2, out)
    assert msg.shape == (ei.size(1), 8)


def test_empty_edges_and_single_node():
    p = tiny_policy()
    s, x = _inputs(p, [1])
    ei = torch.empty(2, 0, dtype=torch.long)
    out = p(s.h, p.encode(x), ei)
    ref = p.rnn(torch.cat([p.encode(x), torch.zeros(1, 8)], -1), s.h)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_channels": 0}, "hidden_channels"),
        ({"message_channels": -1}, "message_channels"),
        ({"aggr": "max"}, "aggr"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExpertPolicy(**kwargs)


def test_weighted_needs_weights():
    p = tiny_policy(aggr="weighted")
    s, x = _inputs(p, [3])
    ei, _ = FullyConnected()(s)
    with pytest.raises(ValueError, match="weighted"):
        p(s.h, p.encode(x), ei)


def test_wrong_feature_width():
    p = tiny_policy()
    with pytest.raises(ValueError, match="columns"):
        p.encode(torch.zeros(3, 5))


def test_update_bias_shifts_only_the_update_gate_and_survives_a_reset():
    from badger_graph import ExpertPolicy

    torch.manual_seed(0)
    plain = ExpertPolicy(16, 8, 8, 4)
    torch.manual_seed(0)
    biased = ExpertPolicy(16, 8, 8, 4, update_bias=2.0)
    H = 16
    torch.testing.assert_close(biased.rnn.bias_ih[H : 2 * H], plain.rnn.bias_ih[H : 2 * H] + 2.0)
    torch.testing.assert_close(biased.rnn.bias_ih[:H], plain.rnn.bias_ih[:H])
    torch.testing.assert_close(biased.rnn.bias_ih[2 * H :], plain.rnn.bias_ih[2 * H :])
    assert sum(p.numel() for p in biased.parameters()) == sum(p.numel() for p in plain.parameters())
    biased.reset_parameters()
    assert biased.rnn.bias_ih[H : 2 * H].min() > 2.0 - 1 / H**0.5 - 1e-6  # still shifted
    assert "update_bias=2" in repr(biased)
    # the state keeps more of itself through a round: z = sigmoid(2 + ...) is near 0.88
    h = torch.randn(5, H)
    u = torch.zeros(5, 8)
    agg = torch.zeros(5, 8)
    kept = (biased.gru_update(u, agg, h) - h).abs().mean() < (
        plain.gru_update(u, agg, h) - h
    ).abs().mean()
    assert kept
    for bad in (float("nan"), "2", True):
        with pytest.raises(ValueError, match="update_bias must be"):
            ExpertPolicy(16, update_bias=bad)
