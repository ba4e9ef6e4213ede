"""Bad input from user code (topologies, tasks) gets a clear error naming the bad value."""

import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent
from badger_graph.records import LifetimeCall
from badger_graph.tasks import GuessingGame
from badger_graph.tasks.base import StepResult
from badger_graph.tasks.guessing_game import GuessingEpisode
from badger_graph.topologies.base import Topology


class UserTopology(Topology):
    """A user-written topology that returns whatever the test asks for."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def forward(self, state):
        return self.make(state)


def _run(topology_output, sizes=(3, 3)):
    agent = Agent(tiny_policy(), UserTopology(topology_output))
    target = torch.zeros(len(sizes), 3)
    return agent(
        LifetimeCall(
            GuessingGame(3), GuessingEpisode(target, "scalar"), agent.init_state(list(sizes), 3), 2
        )
    )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda s: (torch.tensor([[0, 1], [1, 99]]), None), r"\[0, 99\] but only 6 nodes"),
        (lambda s: (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), None), "must hold integers"),
        (lambda s: (torch.tensor([0, 1, 2]), None), r"shape \[2, E\]"),
        (lambda s: (torch.tensor([[0], [4]]), None), "between different agents.*agent 0.*agent 1"),
        (lambda s: (torch.tensor([[0, 1], [1, 0]]), torch.ones(3)), r"edge_weight must have shape"),
        (lambda s: torch.tensor([[0, 1], [1, 0]]), r"must return \(edge_index, edge_weight\)"),
    ],
)
def test_bad_user_topology(make, match):
    with pytest.raises(ValueError, match=match):
        _run(make)


def test_good_user_topology_runs():
    life = _run(lambda s: (torch.tensor([[0, 1, 3], [1, 0, 4]]), None))
    assert torch.isfinite(life.actions).all()


class BadEpisode(GuessingEpisode):
    def __init__(self, target, what) -> None:
        super().__init__(target, "scalar")
        self.what = what

    def step(self, action):
        r = super().step(action)
        if self.what == "error":
            return StepResult(r.error.unsqueeze(1), r.feedback)
        if self.what == "feedback":
            return StepResult(r.error, r.feedback[:1])
        return (r.error, r.feedback)


@pytest.mark.parametrize(
    ("what", "match"),
    [
        ("error", r"StepResult.error must have shape \[2\], got \[2, 1\]"),
        ("feedback", r"StepResult.feedback must have shape \[2\], got \[1\]"),
        ("tuple", "must return a StepResult, got tuple"),
    ],
)
def test_task_output_of_wrong_shape(what, match):
    agent = Agent(
        tiny_policy(),
        UserTopology(lambda s: (torch.empty(2, 0, dtype=torch.long), None)),
    )
    episode = BadEpisode(torch.zeros(2, 3), what)
    with pytest.raises(ValueError, match=match):
        agent(LifetimeCall(GuessingGame(3), episode, agent.init_state([3, 3], 3), 3))
