"""Honest learning checks on fresh test seeds: a short one in every run, longer ones behind
the `slow` marker (`pytest -m slow`, not in CI)."""

import pytest
import torch

from badger_graph import BadgerModule, ExpertPolicy
from badger_graph.seeds import episode_seed
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import FullyConnected


def test_guessing_game_learns_below_chance():
    torch.manual_seed(0)
    model = BadgerModule(
        ExpertPolicy(hidden_channels=32, message_channels=16, input_channels=16),
        FullyConnected(),
        GuessingGame(3, feedback="vector", feedback_to="all"),
        num_experts=3,
        inner_steps=6,
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate():
        with torch.no_grad():
            return float(model.lifetime(episode_seed("test", 0), 1024).final_error.mean())

    before = evaluate()
    for i in range(250):
        loss = model.lifetime(i, 64).final_error.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    after = evaluate()
    chance = model.task.chance_level()
    assert before > 0.5 * chance
    assert after < 0.25 * chance, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("learner", ["badger", "rnn"])
def test_both_learners_learn_bandits_beyond_thompson(learner):
    """Long check (``pytest -m slow``): each learner, trained briefly through the same module,
    beats Thompson sampling on fresh episodes (seeds training never draws)."""
    from badger_graph.learner import RecurrentLearner
    from badger_graph.tasks import BernoulliBandits

    torch.manual_seed(0)
    task = BernoulliBandits(3)
    if learner == "badger":
        model = BadgerModule(
            ExpertPolicy(32, 32, 16, 8), FullyConnected(), task, num_experts=3, inner_steps=20
        )
    else:
        model = BadgerModule(learner=RecurrentLearner(3, hidden_channels=48), task=task,
                             inner_steps=20)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for i in range(600):
        loss = model.lifetime(i, 64).errors.mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seed = episode_seed("test", 0)
    with torch.no_grad():
        regret = float(model.lifetime(seed, 2000).errors.sum(0).mean())
    thompson = float(model.runner.baselines(seed, 2000)["thompson"].sum(0).mean())
    assert regret < thompson, (regret, thompson)
