"""Evolution strategies: the estimate, seeded members, batched population, bad input."""

import pytest
import torch
from helpers import tiny_policy

from badger_graph import BadgerModule
from badger_graph.execution import Execution
from badger_graph.outer import EvolutionStrategy, population_losses
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import FullyConnected


@pytest.mark.parametrize("rank_shaping", [True, False])
def test_es_gradient_on_a_quadratic_points_downhill(rank_shaping):
    torch.manual_seed(0)
    D = 50
    c = torch.randn(D)
    theta = torch.zeros(D)
    es = EvolutionStrategy(population=4000, sigma=0.05, rank_shaping=rank_shaping, seed=1)
    noise = es.noise(0, D)
    members = theta + es.sigma * noise
    losses = ((members - c) ** 2).sum(1)
    g = es.gradient(losses, noise)
    analytic = 2 * (theta - c)
    cosine = torch.nn.functional.cosine_similarity(g, analytic, dim=0)
    assert cosine > 0.9  # the same direction
    assert (torch.sign(g) == torch.sign(analytic)).float().mean() > 0.9  # and signs
    # a step against the estimate lowers the loss
    step = theta - 0.01 * g / g.norm()
    assert ((step - c) ** 2).sum() < ((theta - c) ** 2).sum()


def test_member_recreated_exactly_from_its_seed():
    es = EvolutionStrategy(population=6, sigma=0.1, seed=3)
    all_noise = es.noise(17, 11)
    for m in range(6):
        assert torch.equal(es.member_noise(17, m, 11), all_noise[m])
    assert torch.equal(all_noise[0], -all_noise[1])  # antithetic pairs
    assert not torch.equal(es.noise(18, 11), all_noise)  # fresh noise every batch
    plain = EvolutionStrategy(population=3, antithetic=False)
    assert not torch.equal(plain.member_noise(0, 0, 5), -plain.member_noise(0, 1, 5))


def test_nonfinite_member_ranked_worst():
    es = EvolutionStrategy(population=4)
    u = es.shape(torch.tensor([0.5, float("nan"), 0.1, 0.3]))
    assert u[1] == u.max()
    assert u[2] == u.min()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"population": 1}, "population must be an int >= 2"),
        ({"population": 5}, "even with antithetic"),
        ({"sigma": 0.0}, "sigma must be > 0"),
        ({"sigma": -1.0}, "sigma must be > 0"),
    ],
)
def test_bad_es_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        EvolutionStrategy(**kw)


def _module(**kw):
    torch.manual_seed(0)
    return BadgerModule(tiny_policy(), FullyConnected(), GuessingGame(3), inner_steps=5, **kw)


def test_batched_population_equals_one_call_per_member():
    model = _module()
    model.agent.execution = Execution(check_finite=False)
    es = EvolutionStrategy(population=4, sigma=0.1)
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    noise = es.noise(0, theta.numel())

    def loss_fn(p):
        return torch.func.functional_call(model, p, (7, 8))[-1].mean()

    with torch.no_grad():
        batched = population_losses(model, theta, noise, es.sigma, loss_fn)
        for m in range(4):
            torch.nn.utils.vector_to_parameters(theta + es.sigma * noise[m], model.parameters())
            alone = model(7, 8)[-1].mean()
            torch.testing.assert_close(batched[m], alone, rtol=1e-5, atol=1e-6)
        torch.nn.utils.vector_to_parameters(theta, model.parameters())


def test_es_training_step_updates_weights_without_backprop(tmp_path):
    import lightning.pytorch as pl

    from badger_graph import EpisodeData

    model = _module(outer_loop=EvolutionStrategy(population=4, sigma=0.05, gradient_clip_val=None))
    before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, EpisodeData(batch_size=8, val_episodes=8))
    after = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    assert not torch.equal(before, after)
    assert torch.isfinite(after).all()
    assert model.train_batches == 3
    assert model.agent.execution.check_finite  # restored after the vmapped population


def test_written_out_gru_equals_gru_cell():
    from badger_graph.policy import _gru_cell

    torch.manual_seed(0)
    rnn = torch.nn.GRUCell(12, 16)
    x, h = torch.randn(7, 12), torch.randn(7, 16)
    torch.testing.assert_close(_gru_cell(x, h, rnn), rnn(x, h))
