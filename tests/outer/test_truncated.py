import pytest
import torch
from helpers import grads

from badger_graph import objective_loss
from badger_graph.outer import TruncatedBPTT


def test_truncated_bptt_full_chunk_equals_backprop(make_module):
    torch.manual_seed(0)
    full = make_module(inner_steps=6, objective="mean")
    tb = make_module(inner_steps=6, objective="mean", outer_loop=TruncatedBPTT(6))
    tb.load_state_dict(full.state_dict())
    objective_loss(full.lifetime(3, 4).errors, "mean").backward()
    errors = tb.outer_loop.backward_lifetime(tb, 3, 4)
    assert errors.shape == (6, 4)
    g1, g2 = grads(full), grads(tb)
    assert g1.keys() == g2.keys()
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k])


@pytest.mark.parametrize("objective", ["last", "mean"])
def test_truncated_bptt_chunks_same_forward(make_module, objective):
    torch.manual_seed(0)
    model = make_module(inner_steps=7, objective=objective, outer_loop=TruncatedBPTT(3))
    errors = model.outer_loop.backward_lifetime(model, 5, 4)
    with torch.no_grad():
        ref = model.lifetime(5, 4).errors
    torch.testing.assert_close(errors, ref)  # chunking changes gradients, not the lifetime
    assert all(p.grad is not None for p in model.agent.policy.parameters())


@pytest.mark.parametrize("kind", ["rl2", "transformer", "rl2_wide", "maml", "ports"])
def test_every_learner_runs_in_chunks_with_the_same_forward(make_module, kind):
    """RL2 carries its last action and MAML its points across chunk borders, so chunked
    lifetimes equal whole ones; a ports agent's values are cut from the graph too."""
    from badger_graph.learner import MAMLLearner, RecurrentLearner, TransformerLearner
    from badger_graph.ports import AddressedPorts
    from badger_graph.tasks import OnlineRegression, SinusoidRegression

    torch.manual_seed(0)
    if kind == "rl2":
        kw = {"task": OnlineRegression(2), "learner": RecurrentLearner(1, 2, 16)}
    elif kind == "rl2_wide":
        learner = RecurrentLearner(2, 3, 16, width_agnostic=True)
        kw = {"task": OnlineRegression(2), "learner": learner}
    elif kind == "transformer":
        kw = {"task": OnlineRegression(2), "learner": TransformerLearner(1, 2, 16, heads=2)}
    elif kind == "maml":
        kw = {"task": SinusoidRegression(), "learner": MAMLLearner(1, 1, inner_steps=1)}
    else:
        kw = {"ports": AddressedPorts(16, address_channels=4), "identity": "random"}
    if "learner" in kw:
        kw.update(policy=None, topology=None)
    model = make_module(inner_steps=7, objective="mean", outer_loop=TruncatedBPTT(3), **kw)
    errors = model.outer_loop.backward_lifetime(model, 5, 4)
    with torch.no_grad():
        ref = model.lifetime(5, 4).errors
    torch.testing.assert_close(errors, ref)
    learned = model.agent.policy if kind == "ports" else model.agent  # ports: no read-out head
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in learned.parameters())


def test_truncated_bptt_bad_value():
    with pytest.raises(ValueError, match="steps"):
        TruncatedBPTT(0)
    with pytest.raises(ValueError, match="gradient_clip_val"):
        TruncatedBPTT(3, gradient_clip_val=0)


def test_truncated_bptt_refuses_a_growth_curriculum_at_init(make_module):
    from badger_graph.curriculum import GrowthCurriculum

    with pytest.raises(ValueError, match="GrowthCurriculum does not support TruncatedBPTT"):
        make_module(outer_loop=TruncatedBPTT(5), curriculum=[GrowthCurriculum()])
    make_module(outer_loop=TruncatedBPTT(5))  # no curriculum: fine
