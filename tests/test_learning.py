"""One short honest learning check: fixed seed, well under a minute, fresh test seeds."""

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
