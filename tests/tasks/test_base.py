"""Helpers of tasks.base for writing a task: random draws from a task's generator."""

import pytest
import torch


def test_gamma_and_dirichlet_from_a_generator():
    from badger_graph.tasks.base import dirichlet, gamma

    for a in (0.3, 1.0, 2.5, 20.0):
        x = gamma(torch.full((40_000,), a), torch.Generator().manual_seed(0))
        assert (x > 0).all()
        assert abs(float(x.mean()) - a) < 0.03 * a + 0.01  # mean a, variance a
        assert abs(float(x.var()) - a) < 0.06 * a + 0.01
    g = torch.Generator().manual_seed(1)
    p = dirichlet(torch.tensor([[1.0, 2.0, 7.0]]).expand(20_000, 3), g)
    torch.testing.assert_close(p.sum(1), torch.ones(20_000))
    torch.testing.assert_close(p.mean(0), torch.tensor([0.1, 0.2, 0.7]), atol=0.01, rtol=0)
    same = dirichlet(torch.tensor([[1.0, 2.0, 7.0]]).expand(20_000, 3),
                     torch.Generator().manual_seed(1))  # fmt: skip
    assert torch.equal(p, same)  # a function of the generator's seed
    with pytest.raises(ValueError, match=r"positive and finite, got \[1.0, 0.0\]"):
        gamma([1.0, 0.0])
