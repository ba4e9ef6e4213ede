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
