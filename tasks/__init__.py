"""Tasks an agent's lifetime runs against (one module per task family).

Installed as ``badger_graph.tasks``; the source lives in the repository's top-level
``tasks/`` folder (next to ``badger_graph/``), one module per family.
"""

from badger_graph.tasks.bandits import BernoulliBandits
from badger_graph.tasks.base import Episode, StepResult, Task, play
from badger_graph.tasks.classification import MLPClassification, OnlineClassification
from badger_graph.tasks.datasets import DatasetClassification
from badger_graph.tasks.guessing_game import GuessingEpisode, GuessingGame, guessing_error
from badger_graph.tasks.mixture import TaskMixture
from badger_graph.tasks.moving_target import MovingTarget
from badger_graph.tasks.optimization import HotColdOptimization
from badger_graph.tasks.regression import OnlineRegression
from badger_graph.tasks.sinusoid import SinusoidRegression

__all__ = [
    "BernoulliBandits",
    "DatasetClassification",
    "Episode",
    "GuessingEpisode",
    "GuessingGame",
    "HotColdOptimization",
    "MLPClassification",
    "MovingTarget",
    "OnlineClassification",
    "OnlineRegression",
    "SinusoidRegression",
    "StepResult",
    "Task",
    "TaskMixture",
    "guessing_error",
    "play",
]
