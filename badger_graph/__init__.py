"""badger_graph: BADGER agents as graphs of experts sharing one MessagePassing policy."""

from badger_graph.agent import Agent, Lifetime, StepRecord
from badger_graph.module import BadgerModule, EpisodeData, objective_loss
from badger_graph.policy import ExpertPolicy
from badger_graph.state import ExpertGraph, Role

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "BadgerModule",
    "EpisodeData",
    "ExpertGraph",
    "ExpertPolicy",
    "Lifetime",
    "Role",
    "StepRecord",
    "objective_loss",
]
