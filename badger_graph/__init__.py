"""badger_graph: BADGER agents as graphs of experts sharing one MessagePassing policy.

The inner-loop core (state, policy, agent, ports, growth, snapshots, runner, topologies,
tasks) imports no Lightning; :class:`BadgerModule` and :class:`EpisodeData` (the outer loop
with Lightning) are imported on first use. ``badger_graph.topologies`` and
``badger_graph.tasks`` live in the repository's ``topologies/`` and ``tasks/`` folders.
"""

from badger_graph.agent import Agent, Lifetime, StepRecord
from badger_graph.execution import Execution
from badger_graph.outer.base import objective_loss
from badger_graph.policy import ExpertPolicy
from badger_graph.records import LifetimeCall
from badger_graph.runner import EpisodeRunner
from badger_graph.state import ExpertGraph, Role

__version__ = "0.3.0"

_LIGHTNING = {"BadgerModule": "badger_graph.module", "EpisodeData": "badger_graph.data"}


def __getattr__(name: str):
    """Import the Lightning classes only when they are asked for."""
    if name in _LIGHTNING:
        import importlib

        return getattr(importlib.import_module(_LIGHTNING[name]), name)
    raise AttributeError(f"module 'badger_graph' has no attribute {name!r}")


__all__ = [
    "Agent",
    "BadgerModule",
    "EpisodeData",
    "EpisodeRunner",
    "Execution",
    "ExpertGraph",
    "ExpertPolicy",
    "Lifetime",
    "LifetimeCall",
    "Role",
    "StepRecord",
    "objective_loss",
]
