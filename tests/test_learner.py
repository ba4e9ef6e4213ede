"""The monolithic learner behind the Learner seam, and the optimal baselines it is compared to."""

from __future__ import annotations

import itertools
import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from badger_graph import BadgerModule
from badger_graph.errors import TaskTooWideError
from badger_graph.learner import Learner, MAMLLearner, RecurrentLearner
from badger_graph.matrix import evaluate
from badger_graph.records import LifetimeCall
from badger_graph.runner import EpisodeRunner
from badger_graph.tasks import (
    BernoulliBandits,
    GuessingGame,
    HotColdOptimization,
    MovingTarget,
    OnlineClassification,
    OnlineRegression,
    SinusoidRegression,
)
from badger_graph.tasks.bandits import _BetaBernoulliDP, bayes_optimal, gittins_indices
from badger_graph.tasks.regression import posterior_mean
from badger_graph.tasks.sinusoid import oracle_least_squares

ROOT = Path(__file__).resolve().parents[1]

FAMILIES = {
    "guessing": GuessingGame(3, feedback_to="all"),
    "moving_target": MovingTarget(3),
    "optimization": HotColdOptimization(3),
    "bandits": BernoulliBandits([3, 5]),
    "regression": OnlineRegression([2, 4]),
    "classification": OnlineClassification(3, 2),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_recurrent_learner_plays_every_family_through_the_runner(family):
    task = FAMILIES[family]
    torch.manual_seed(0)
    learner = RecurrentLearner(max_outputs=5, max_inputs=4, hidden_channels=16)
    assert isinstance(learner, Learner)
    runner = EpisodeRunner(learner, task, num_experts=3, inner_steps=6)
    life = runner.run(seed=1, batch_size=8)
    d = task.num_outputs
    assert life.actions.shape == (6, 8, d)
    assert life.errors.shape == (6, 8)
    assert torch.isfinite(life.errors).all()
    life.errors.mean().backward()  # the outer loop's gradient reaches every weight
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.parameters())
    # the same seed gives the same episodes and the same lifetime
    again = runner.run(seed=1, batch_size=8)
    assert torch.equal(again.errors.detach(), life.errors.detach())


def test_recurrent_learner_refuses_a_wider_task_naming_it():
    learner = RecurrentLearner(max_outputs=3, hidden_channels=8)
    with pytest.raises(ValueError, match=r"at most 3 outputs.*d=5"):
        EpisodeRunner(learner, GuessingGame(5), num_experts=5, inner_steps=4)
    runner = EpisodeRunner(learner, OnlineRegression(2), num_experts=1, inner_steps=4)
    with pytest.raises(TaskTooWideError, match=r"0 inputs, got d=1, m=2") as e:
        runner.run(0, 2)
    assert (e.value.d, e.value.m, e.value.max_outputs, e.value.max_inputs) == (1, 2, 3, 0)


def test_matched_parameter_counts():
    for target, d, m in ((35_873, 5, 0), (35_873, 1, 4), (180_129, 3, 2)):
        learner = RecurrentLearner.matched(target, d, m)
        n = sum(p.numel() for p in learner.parameters())
        assert n == RecurrentLearner.parameters_for(learner.hidden_channels, d, m)
        assert abs(n - target) / target < 0.01


@pytest.mark.parametrize(
    "family", ["guessing", "bandits", "regression", "classification", "fig7", "sinusoid"]
)
def test_compare_configs_state_their_parameter_counts(family):
    """configs/compare: the counts in the headers are the models' real counts."""
    from badger_graph.cli import build_from_config

    counts = {}
    for path in sorted((ROOT / "configs" / "compare").glob(f"{family}_*.yaml")):
        stated = re.search(r"\(([\d,]+) weights\)", path.read_text().splitlines()[0])
        model = build_from_config(str(path))
        real = sum(p.numel() for p in model.parameters())
        assert int(stated.group(1).replace(",", "")) == real, path.name
        counts[path.stem[len(family) + 1 :]] = real
    # every monolithic learner is matched to BADGER within 1 % (MAML keeps its paper's MLP;
    # the state axis's GRUs are matched to BADGER's state instead)
    assert {"badger", "rnn", "transformer"} <= set(counts)
    for learner, n in counts.items():
        if learner != "maml" and not learner.startswith("rnn_state"):
            assert abs(counts["badger"] - n) / counts["badger"] < 0.01, learner


def test_module_trains_the_recurrent_learner_and_matrix_takes_it():
    import lightning.pytorch as pl

    from badger_graph import EpisodeData

    torch.manual_seed(0)
    module = BadgerModule(
        learner=RecurrentLearner(3, hidden_channels=16), task=BernoulliBandits(3), inner_steps=5
    )
    before = [p.detach().clone() for p in module.parameters()]
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, EpisodeData(batch_size=8, val_episodes=8))
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    rows = evaluate(module.runner, {"bandits": BernoulliBandits(3)}, episodes=16, batch=8)
    assert rows[0]["family"] == "bandits"
    assert rows[0]["best_baseline"] in ("bayes_optimal", "gittins")
    with pytest.raises(ValueError, match="policy and topology, or another learner"):
        BadgerModule(task=BernoulliBandits(3))
    with pytest.raises(ValueError, match="task is required"):
        BadgerModule(learner=RecurrentLearner(3, hidden_channels=4))


def _brute_force_value(k: int, T: int) -> Fraction:
    """Best expected reward over EVERY deterministic policy tree (uniform priors), exactly."""
    histories = [()]
    # a policy maps each history (tuple of (arm, reward)) of length < T to an arm
    for _ in range(T - 1):
        histories += [
            h + ((a, r),)
            for h in histories
            if len(h) == len(histories[-1])
            for a in range(k)
            for r in (0, 1)
        ]
    histories = sorted(set(histories), key=len)

    def value(policy: dict, h: tuple) -> Fraction:
        if len(h) == T:
            return Fraction(0)
        a = policy[h]
        s = sum(r for (b, r) in h if b == a)
        n = sum(1 for (b, _) in h if b == a)
        p = Fraction(s + 1, n + 2)  # Beta-Bernoulli predictive probability of a reward
        return p * (1 + value(policy, h + ((a, 1),))) + (1 - p) * value(policy, h + ((a, 0),))

    best = Fraction(0)
    for arms in itertools.product(range(k), repeat=len(histories)):
        best = max(best, value(dict(zip(histories, arms, strict=True)), ()))
    return best


@pytest.mark.parametrize(("k", "T"), [(2, 2), (3, 2)])
def test_bayes_optimal_equals_brute_force_over_all_policies(k, T):
    dp = _BetaBernoulliDP().value(tuple([(0, 0)] * k), T)
    assert dp == pytest.approx(float(_brute_force_value(k, T)), abs=1e-12)


def test_bayes_optimal_plays_its_value():
    T, k, B = 8, 3, 6000
    dp = _BetaBernoulliDP().value(tuple([(0, 0)] * k), T)
    expected_regret = T * k / (k + 1) - dp  # E[max p] = k / (k + 1) under uniform priors
    ep = BernoulliBandits(k).reset(B, generator=torch.Generator().manual_seed(0))
    regret = bayes_optimal(ep, T).sum(0)
    se = float(regret.std()) / B**0.5
    assert abs(float(regret.mean()) - expected_regret) < 4 * se


def test_gittins_indices_are_sane():
    G = gittins_indices(0.9, depth=40)
    assert 0.5 < G[1, 1] < 0.8  # more than the mean: the value of information
    assert G[2, 1] > G[1, 1] > G[1, 2]  # a success raises it, a failure lowers it
    myopic = gittins_indices(0.01, depth=40)
    assert myopic[3, 2] == pytest.approx(3 / 5, abs=2e-3)  # no future: the posterior mean


def test_posterior_mean_is_the_closed_form_posterior():
    task = OnlineRegression(3, noise=0.3)
    ep = task.reset(5, generator=torch.Generator().manual_seed(2))
    w_true, xs, ys = ep.w.clone(), [], []
    preds = []

    first, step = ep.first, ep.step

    def spy_step(action):
        xs.append(ep.x.clone())
        preds.append(action[:, 0].clone())
        r = step(action)
        ys.append(ep.y.clone())
        return r

    ep.first, ep.step = first, spy_step
    posterior_mean(ep, 6)
    for t in range(1, 6):
        X = torch.stack(xs[:t], 1)  # [B, t, m]
        y = torch.stack(ys[:t], 1)
        A = 3 * torch.eye(3) + X.transpose(1, 2) @ X / 0.09  # prior precision m I
        mean = torch.linalg.solve(A, (X.transpose(1, 2) @ y.unsqueeze(2)) / 0.09)[..., 0]
        torch.testing.assert_close(preds[t], (mean * xs[t]).sum(1), rtol=1e-4, atol=1e-5)
    assert w_true.shape == (5, 3)


@pytest.mark.parametrize(
    ("task", "kwargs"),
    [
        (SinusoidRegression(), {"max_outputs": 1, "max_inputs": 1}),
        (OnlineRegression([2, 4]), {"max_outputs": 1, "max_inputs": 4}),
        (OnlineClassification(3, 2), {"max_outputs": 3, "max_inputs": 2, "target": "label"}),
    ],
)
def test_maml_plays_the_supervised_families_and_adapts(task, kwargs):
    torch.manual_seed(0)
    maml = MAMLLearner(**kwargs, inner_steps=2, inner_lr=0.05)
    assert isinstance(maml, Learner)
    runner = EpisodeRunner(maml, task, num_experts=1, inner_steps=6)
    life = runner.run(seed=3, batch_size=16)
    assert life.errors.shape == (6, 16)
    life.errors.mean().backward()  # second order: through the inner SGD steps
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in maml.parameters())
    # the adapted weights fit the points seen better than the meta-weights
    state = life.state
    mask = torch.ones(16, maml.max_outputs)
    with torch.no_grad():
        meta = maml.adapt(state.x[:, :0], state.y[:, :0], mask)
    adapted = maml.adapt(state.x, state.y, mask)
    assert maml._loss(adapted, state.x, state.y, mask) < maml._loss(meta, state.x, state.y, mask)


def test_maml_without_inner_steps_does_not_adapt():
    maml = MAMLLearner(1, 1, inner_steps=0)
    runner = EpisodeRunner(maml, SinusoidRegression(), num_experts=1, inner_steps=5)
    life = runner.run(seed=0, batch_size=4)
    x = torch.stack([life.state.x[:, t, 0] for t in range(5)])
    with torch.no_grad():
        net = [maml.layers[i // 2].weight.t() if i % 2 == 0 else maml.layers[i // 2].bias
               for i in range(6)]  # fmt: skip
        expect = torch.relu(torch.relu(x.unsqueeze(2) @ net[0] + net[1]) @ net[2] + net[3])
        expect = expect @ net[4] + net[5]
    torch.testing.assert_close(life.actions, expect)


def test_maml_checks_its_actions_for_nan_when_asked():
    from badger_graph.errors import NonFiniteError
    from badger_graph.execution import Execution

    maml = MAMLLearner(1, 1, inner_steps=1, execution=Execution(check_finite=True))
    with torch.no_grad():
        maml.layers[-1].bias.fill_(float("nan"))
    runner = EpisodeRunner(maml, SinusoidRegression(), num_experts=1, inner_steps=3)
    with pytest.raises(NonFiniteError, match="actions"):
        runner.run(seed=0, batch_size=2)
    maml.execution = Execution(check_finite=False)
    assert runner.run(seed=0, batch_size=2).actions.isnan().all()  # not checked: NaN out


def test_sinusoid_oracle_is_exact_after_two_shots_and_chance_is_right():
    task = SinusoidRegression()
    runner_free = task.reset(20_000, generator=torch.Generator().manual_seed(0))
    e = oracle_least_squares(runner_free, 6)
    # y = a sin x + b cos x: two points determine it (unless nearly pi apart)
    assert float(e[2:].median()) < 1e-8
    assert float(e[4:].mean()) < 1e-3 * float(e[0].mean())
    zero = task.reset(20_000, generator=torch.Generator().manual_seed(1))
    errs = zero.step(torch.zeros(20_000, 1)).error
    assert float(errs.mean()) == pytest.approx(task.chance_level(), rel=0.03)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_transformer_learner_plays_every_family_through_the_runner(family):
    from badger_graph.learner import TransformerLearner

    task = FAMILIES[family]
    torch.manual_seed(0)
    learner = TransformerLearner(max_outputs=5, max_inputs=4, width=16, layers=2, heads=2)
    assert isinstance(learner, Learner)
    runner = EpisodeRunner(learner, task, num_experts=3, inner_steps=6)
    life = runner.run(seed=1, batch_size=8)
    assert life.actions.shape == (6, 8, task.num_outputs)
    assert life.state.tokens.shape == (8, 6, 16)  # one token per step played
    assert torch.isfinite(life.errors).all()
    life.errors.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.parameters())
    again = runner.run(seed=1, batch_size=8)
    assert torch.equal(again.errors.detach(), life.errors.detach())


def test_transformer_learner_is_causal():
    """Step t's output is position t of the whole lifetime's causal pass: a step never sees
    a later one (changing the last input changes no earlier output)."""
    from badger_graph.learner import TransformerLearner

    torch.manual_seed(0)
    learner = TransformerLearner(3, 2, width=16, layers=2, heads=4).eval()
    x = torch.randn(4, 7, learner.input_size)
    memory, outs = learner.initial_memory(4, "cpu"), []
    for t in range(7):
        out, memory = learner.advance(x[:, t], memory)
        outs.append(out)
    tokens = learner.embed(x)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(7)
    whole = learner.head(learner.norm(learner.encoder(tokens, mask=mask, is_causal=True)))
    torch.testing.assert_close(torch.stack(outs, 1), whole, atol=1e-5, rtol=1e-5)
    x2 = x.clone()
    x2[:, -1] += 1.0
    memory, changed = learner.initial_memory(4, "cpu"), []
    for t in range(7):
        out, memory = learner.advance(x2[:, t], memory)
        changed.append(out)
    torch.testing.assert_close(torch.stack(changed[:-1]), torch.stack(outs[:-1]))
    assert not torch.allclose(changed[-1], outs[-1])


def test_transformer_matched_parameter_counts_and_bad_sizes():
    from badger_graph.learner import TransformerLearner

    for target, d, m in ((35_873, 5, 0), (35_873, 1, 4), (180_129, 3, 2)):
        learner = TransformerLearner.matched(target, d, m)
        n = sum(p.numel() for p in learner.parameters())
        assert n == TransformerLearner.parameters_for(
            learner.width, d, m, learner.layers, learner.ff_width
        )
        assert abs(n - target) / target < 0.01
    with pytest.raises(ValueError, match="width must be a multiple of heads"):
        TransformerLearner(3, width=10, heads=4)
    with pytest.raises(ValueError, match="layers must be an int >= 1, got 0"):
        TransformerLearner(3, layers=0)
    with pytest.raises(ValueError, match=r"at most 3 outputs.*d=5"):
        EpisodeRunner(TransformerLearner(3), GuessingGame(5), num_experts=5, inner_steps=4)


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
def test_width_agnostic_learners_play_wider_tasks_through_random_maps(kind):
    from badger_graph.learner import TransformerLearner
    from badger_graph.tasks import BernoulliBandits, OnlineClassification

    torch.manual_seed(0)
    if kind == "rnn":
        learner = RecurrentLearner(10, 2, 16, width_agnostic=True)
    else:
        learner = TransformerLearner(10, 2, 16, heads=2, width_agnostic=True)
    # trained on 3..5 arms, it plays 10 arms and 8 inputs: a projection and 10 slots
    for task in (BernoulliBandits([3, 5]), BernoulliBandits(10), OnlineRegression(8)):
        life = EpisodeRunner(learner, task, num_experts=1, inner_steps=5).run(2, 6)
        assert life.actions.shape == (5, 6, task.num_outputs)
        assert torch.isfinite(life.errors).all()
    runner = EpisodeRunner(learner, OnlineClassification(6, 2, 0.5), 1, 4)
    _, state = runner.begin(7, 32, 1)
    slots = state.io.slots
    assert slots.shape == (32, 6)
    assert all(len(set(row.tolist())) == 6 for row in slots)  # distinct slots per agent
    assert len({tuple(row.tolist()) for row in slots}) > 20  # drawn anew per episode
    _, again = runner.begin(7, 32, 1)
    assert torch.equal(again.io.slots, slots)  # a function of the seed
    assert torch.equal(again.io.projection, state.io.projection)
    with pytest.raises(ValueError, match="has 10 output slots, got d=12"):
        EpisodeRunner(learner, BernoulliBandits(12), 1, 4)


def test_width_agnostic_outputs_follow_their_slots():
    """The action an episode's output j gets is the learner's slot ``slots[j]``: the same
    network with the slots permuted gives the same actions permuted."""
    from badger_graph.learner import WidthMap

    torch.manual_seed(0)
    learner = RecurrentLearner(6, 3, 16, width_agnostic=True)
    task = OnlineClassification(4, 3, 0.5)
    runner = EpisodeRunner(learner, task, 1, 4)
    episode, state = runner.begin(5, 8, 1)
    flipped = state.io.slots.flip(1)
    other = state.replace(io=WidthMap(state.io.projection, flipped))
    a = learner(LifetimeCall(task, episode, state, 1)).actions[0]
    episode2, _ = runner.begin(5, 8, 1)
    b = learner(LifetimeCall(task, episode2, other, 1)).actions[0]
    # the first step sees no signal: the outputs are the network's slots, read in two orders
    torch.testing.assert_close(a.flip(1), b)


def test_a_weight_budget_fixes_the_widths():
    from badger_graph.learner import TransformerLearner

    for layers, heads in ((1, 2), (2, 4), (3, 4)):
        t = TransformerLearner(5, 0, layers=layers, heads=heads, parameters=35_873)
        assert abs(sum(p.numel() for p in t.parameters()) - 35_873) / 35_873 < 0.01
        assert t.width % heads == 0
    r = RecurrentLearner(5, 0, hidden_channels=7, parameters=35_873)
    assert r.hidden_channels == RecurrentLearner.matched(35_873, 5, 0).hidden_channels
    with pytest.raises(ValueError, match="no Transformer of 3 layers"):
        TransformerLearner(5, 0, layers=3, parameters=50)
