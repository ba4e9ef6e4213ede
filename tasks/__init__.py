"""Tasks an agent's lifetime runs against (one module per task family).

Installed as ``badger_graph.tasks``; the source lives in the repository's top-level
``tasks/`` folder (next to ``badger_graph/``), one module per family.
"""

from badger_graph.tasks.base import Episode, StepResult, Task
from badger_graph.tasks.guessing_game import GuessingEpisode, GuessingGame, guessing_error

__all__ = ["Episode", "GuessingEpisode", "GuessingGame", "StepResult", "Task", "guessing_error"]
