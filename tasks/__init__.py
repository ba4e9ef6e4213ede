"""Tasks an agent's lifetime runs against (one module per task family)."""

from badger_graph.tasks.base import Episode, StepResult, Task
from badger_graph.tasks.guessing_game import GuessingEpisode, GuessingGame, guessing_error

__all__ = ["Episode", "GuessingEpisode", "GuessingGame", "StepResult", "Task", "guessing_error"]
