"""Every outer loop runs against a plain ``nn.Module`` that implements TrainingContext.

No Lightning here: the loops may use only the members the protocol declares.
"""

from unittest import mock

import pytest
import torch
from helpers import tiny_policy
from torch import nn

from badger_graph import Agent, BadgerModule
from badger_graph.curriculum import EpisodeSpec
from badger_graph.execution import finite_checks_off
from badger_graph.outer import Backprop, EvolutionStrategy, TrainingContext, TruncatedBPTT
from badger_graph.runner import EpisodeRunner
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import FullyConnected


class PlainContext(nn.Module):
    """The members of TrainingContext, with plain torch: Adam, norm clipping, a dict log."""

    def __init__(self, loop, objective: str = "last") -> None:
        super().__init__()
        self.agent = Agent(tiny_policy(), FullyConnected())
        self.task = GuessingGame(3)
        self.runner = EpisodeRunner(self.agent, self.task, num_experts=3, inner_steps=4)
        self.curriculum, self.spec = [], EpisodeSpec()
        self.global_step = self.train_batches = self.global_rank = 0
        self.world_size = 1
        self.objective = objective
        self.opt = torch.optim.Adam(self.parameters(), lr=1e-2)
        self.logged: dict[str, float] = {}
        self.checked: list[float] = []
        self.unchecked_calls = 0
        loop.check(self)

    @property
    def device(self) -> torch.device:
        return self.agent.device

    def forward(self, seed: int, batch_size: int, train: bool = False) -> torch.Tensor:
        return self.lifetime(seed, batch_size, train=train).errors

    def lifetime(self, seed, batch_size, train=False, **kwargs):
        if train:
            kwargs["spec"] = self.spec
        return self.runner.run(seed, batch_size, **kwargs)

    def current_objective(self, stage: str = "train") -> str:
        return self.objective

    def log_errors(self, errors, loss, stage, B, life=None) -> None:
        self.logged[f"{stage}/loss"] = float(loss.detach())

    def log(self, name, value, **kwargs) -> None:
        self.logged[name] = float(value)

    def log_dict(self, values, **kwargs) -> None:
        for name, value in values.items():
            self.log(name, value)

    def check_divergence(self, error: float) -> None:
        self.checked.append(error)

    def optimizers(self):
        return self.opt

    def lr_schedulers(self):
        return None

    def manual_backward(self, loss) -> None:
        loss.backward()

    def clip_gradients(self, optimizer, gradient_clip_val=None) -> None:
        nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

    def all_gather(self, data):
        return data

    def unchecked(self):
        self.unchecked_calls += 1
        return finite_checks_off(self.agent)


LOOPS = [
    pytest.param(Backprop(), "last", id="backprop"),
    pytest.param(TruncatedBPTT(steps=2), "mean", id="truncated-mean"),
    pytest.param(TruncatedBPTT(steps=3), "last", id="truncated-last"),
    pytest.param(EvolutionStrategy(population=4, sigma=0.05), "last", id="es"),
]


@pytest.mark.parametrize(("loop", "objective"), LOOPS)
def test_every_outer_loop_trains_a_plain_context(loop, objective):
    torch.manual_seed(0)
    ctx = PlainContext(loop, objective)
    assert isinstance(ctx, TrainingContext)
    before = [p.detach().clone() for p in ctx.parameters()]
    ctx.opt.zero_grad()
    loss = loop.training_step(ctx, seed=3, batch_size=8)
    if loop.automatic_optimization:  # what Lightning does with the returned loss
        assert loss is not None
        assert loss.requires_grad
        loss.backward()
        loop.apply_gradients(ctx)
    else:
        assert loss is None
    changed = [not torch.equal(b, p) for b, p in zip(before, ctx.parameters(), strict=True)]
    assert sum(changed) >= len(changed) // 2  # the step moved the weights
    assert 0.0 < ctx.logged["train/loss"] < 10.0
    if isinstance(loop, EvolutionStrategy):
        assert ctx.unchecked_calls == 1
        assert ctx.checked
        assert ctx.agent.execution.check_finite  # the checks are back afterwards


def test_badger_module_is_a_training_context():
    module = BadgerModule(tiny_policy(), FullyConnected(), GuessingGame(3), num_experts=3)
    assert isinstance(module, TrainingContext)
    assert module.world_size == 1
    assert module.global_rank == 0
    with module.unchecked():
        assert not module.agent.execution.check_finite
    assert module.agent.execution.check_finite


def test_warmup_ramp_blends_the_objectives_linearly():
    from badger_graph.outer import objective_loss

    module = BadgerModule(
        tiny_policy(), FullyConnected(), GuessingGame(3), num_experts=3,
        objective="mean", warmup_objective="last", warmup_steps=10, warmup_ramp=4,
    )  # fmt: skip
    seen = {}
    for step in (0, 9, 10, 11, 13, 14, 100):
        with mock.patch.object(BadgerModule, "global_step", new_callable=mock.PropertyMock) as g:
            g.return_value = step
            seen[step] = module.current_objective()
    assert seen[0] == seen[9] == "last"
    assert seen[10] == pytest.approx({"last": 0.8, "mean": 0.2})
    assert seen[13] == pytest.approx({"last": 0.2, "mean": 0.8})
    assert seen[14] == seen[100] == "mean"
    errors = torch.tensor([[1.0, 3.0], [2.0, 6.0]])  # [T, B]: last 4, mean 3
    assert float(objective_loss(errors, seen[10])) == pytest.approx(0.8 * 4 + 0.2 * 3)
    with pytest.raises(ValueError, match="warmup_ramp=5 .* set warmup_objective"):
        BadgerModule(tiny_policy(), FullyConnected(), GuessingGame(3), warmup_ramp=5)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_truncated_chunks_follow_a_blended_objective(weight):
    """A blend's gradient from chunks equals the blend of the two pure objectives' gradients."""
    grads = {}
    for objective in ("last", "mean", {"last": 1 - weight, "mean": weight}):
        torch.manual_seed(0)
        ctx = PlainContext(TruncatedBPTT(steps=3), objective)
        ctx.opt.zero_grad()
        TruncatedBPTT(steps=3).backward_lifetime(ctx, seed=5, batch_size=6)
        key = objective if isinstance(objective, str) else "blend"
        grads[key] = torch.cat([p.grad.flatten() for p in ctx.parameters()])
    expected = (1 - weight) * grads["last"] + weight * grads["mean"]
    torch.testing.assert_close(grads["blend"], expected, rtol=1e-4, atol=1e-6)
