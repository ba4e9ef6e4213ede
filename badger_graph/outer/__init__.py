"""Outer loops: how a training batch of lifetimes changes the shared policy's weights.

One small object per method, chosen in YAML by class path (``model.outer_loop``):
:class:`Backprop` (through the whole unrolled lifetime, the default),
:class:`TruncatedBPTT` (chunks of the lifetime, memory independent of its length) and
:class:`EvolutionStrategy` (no backprop at all). A new one subclasses :class:`OuterLoop`
and talks to training through :class:`TrainingContext`.
"""

from badger_graph.outer.backprop import Backprop
from badger_graph.outer.base import (
    ObjectiveSchedule,
    OuterLoop,
    TrainingContext,
    objective_loss,
)
from badger_graph.outer.es import EvolutionStrategy, population_losses
from badger_graph.outer.truncated import TruncatedBPTT

__all__ = [
    "Backprop",
    "EvolutionStrategy",
    "ObjectiveSchedule",
    "OuterLoop",
    "TrainingContext",
    "TruncatedBPTT",
    "objective_loss",
    "population_losses",
]
