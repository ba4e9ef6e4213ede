"""EpisodeRunner: runners of other tasks and lifetimes share the agent."""

import pytest

from badger_graph import EpisodeRunner


def test_replace_plays_another_task_without_touching_the_runner():
    from badger_graph import Agent, ExpertPolicy
    from badger_graph.errors import TaskTooWideError
    from badger_graph.learner import RecurrentLearner
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    runner = EpisodeRunner(Agent(ExpertPolicy(), FullyConnected()), GuessingGame(3), 3, 5)
    wide = runner.replace(task=GuessingGame(5), num_experts=5, inner_steps=7)
    assert wide.agent is runner.agent  # the same weights
    assert (runner.task.num_outputs, runner.num_experts, runner.inner_steps) == (3, 3, 5)
    assert wide.run(0, 2).errors.shape == (7, 2)
    gru = EpisodeRunner(RecurrentLearner(3, hidden_channels=8), GuessingGame(3), 3, 5)
    with pytest.raises(TaskTooWideError):
        gru.replace(task=GuessingGame(5))
    with pytest.raises(TypeError, match="unknown arguments"):
        runner.replace(agent=None)


def test_play_pairs_the_learner_and_the_baselines_on_the_same_fresh_episodes():
    """evaluation.play: batch i from episode_seed("compare", *key, i), as a manual loop."""
    import torch
    from helpers import tiny_policy

    from badger_graph import Agent
    from badger_graph.evaluation import play
    from badger_graph.seeds import episode_seed
    from badger_graph.tasks import OnlineRegression
    from badger_graph.topologies import FullyConnected

    torch.manual_seed(0)
    agent = Agent(tiny_policy(), FullyConnected(), rounds=2)
    runner = EpisodeRunner(agent, OnlineRegression(2), num_experts=1, inner_steps=4)
    got = play(runner, 5, 2, key=(7,), baselines=["rls"])
    assert set(got) == {"learner", "rls"}
    assert got["learner"].shape == (4, 5)
    with torch.no_grad():
        seeds = [(episode_seed("compare", 7, i), n) for i, n in enumerate([2, 2, 1])]
        want = torch.cat([runner.run(s, n).errors for s, n in seeds], 1)
        rls = torch.cat([runner.baselines(s, n)["rls"] for s, n in seeds], 1)
    torch.testing.assert_close(got["learner"], want)
    torch.testing.assert_close(got["rls"], rls)
    assert set(play(runner, 3, 3, learner=False, baselines=True)) == set(runner.task.baselines())
