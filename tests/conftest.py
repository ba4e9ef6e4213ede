import pytest
import torch
from helpers import tiny_policy

from badger_graph import Agent, ExpertPolicy
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import FullyConnected


@pytest.fixture
def small_policy():
    torch.manual_seed(0)
    return ExpertPolicy(
        hidden_channels=16, message_channels=8, input_channels=8, identity_channels=4
    )


@pytest.fixture
def agent(small_policy):
    return Agent(small_policy, FullyConnected())


@pytest.fixture
def game():
    return GuessingGame(num_outputs=3)


@pytest.fixture
def make_module():
    """A factory of small Fig. 6 BadgerModules; keyword arguments override the defaults."""
    from badger_graph import BadgerModule

    def make(**kw):
        args = {
            "policy": tiny_policy(),
            "topology": FullyConnected(),
            "task": GuessingGame(3),
        }
        args.update(kw)
        return BadgerModule(**args)

    return make
