"""Train on some task families, test on all: errors relative to each family's best baseline."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

from badger_graph.evaluation import play
from badger_graph.runner import EpisodeRunner
from badger_graph.tasks import (
    BernoulliBandits,
    GuessingGame,
    HotColdOptimization,
    MovingTarget,
    OnlineClassification,
    OnlineRegression,
    Task,
    TaskMixture,
)


def default_families() -> dict[str, Task]:
    """The six test families (d and k at most 3; regression: the signed miss to every node)."""
    return {
        "guessing": GuessingGame(3, feedback_to="all"),
        "moving_target": MovingTarget(3),
        "optimization": HotColdOptimization(3),
        "bandits": BernoulliBandits(3),
        "regression": OnlineRegression([2, 4]),
        "classification": OnlineClassification(3, 2),
    }


def task_from_spec(spec: str) -> Task:
    """A task family from the command line: a class path or a config file.

    ``my_pkg.Forecasting`` (default arguments), ``my_pkg.Forecasting:{"horizon": 3}``
    (JSON init arguments), or ``configs/my_task.yaml`` (its ``model.task``).

    Raises:
        ValueError: naming the spec, when it names no importable :class:`Task`.
    """
    import importlib
    import json

    import yaml

    if spec.endswith((".yaml", ".yml")):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"family config {spec!r} does not exist")
        task = (yaml.safe_load(path.read_text()) or {}).get("model", {}).get("task")
        if not isinstance(task, dict) or "class_path" not in task:
            raise ValueError(f"{spec!r} has no model.task with a class_path")
        class_path, kwargs = task["class_path"], task.get("init_args") or {}
    else:
        class_path, _, args = spec.partition(":")
        try:
            kwargs = json.loads(args) if args else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"init arguments of {spec!r} are not JSON: {e}") from None
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(f"family {class_path!r} cannot be imported: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ValueError(f"family {class_path!r} is not a badger_graph Task")
    return cls(**kwargs)


def evaluate(
    runner: EpisodeRunner,
    families: dict[str, Task],
    episodes: int,
    batch: int = 500,
) -> list[dict]:
    """Mean error over the lifetime of the agent and of each family's best baseline.

    Each family is played by a runner of the same agent (:meth:`EpisodeRunner.replace`;
    its weights never change); agent and baselines play the same episodes, drawn from the
    ``"compare"`` seed stream. Without output ports expert i owns output i, so a model
    trained with fewer experts than a family has outputs (a one-expert regression model on
    three arms) plays that family with one expert per output (the shared policy runs on any
    number of experts); the row's ``experts`` says how many. A model trained on a
    :class:`~badger_graph.tasks.TaskMixture` plays each family as the mixture showed it
    (:meth:`TaskMixture.view`: its feedback convention, and its family code, zeros for a
    family it never saw).
    """
    rows = []
    for f, (name, task) in enumerate(families.items()):
        if isinstance(runner.task, TaskMixture):
            task = runner.task.view(task)
        experts = runner.agent.experts_for(task.num_outputs, runner.num_experts)
        try:  # the runner of this family checks that the agent can play it
            family = runner.replace(task=task, num_experts=experts)
        except ValueError as e:  # e.g. a monolithic learner narrower than the family
            nan = float("nan")
            rows.append(
                {
                    "family": name,
                    "agent": nan,
                    "best_baseline": None,
                    "baseline": nan,
                    "relative": nan,
                    "chance": task.chance_level(),
                    "experts": experts,
                    "note": f"cannot play: {e}",
                }
            )
            continue
        errors = play(family, episodes, batch, key=(100 * f,), baselines=True)
        agent_error = float(errors.pop("learner").mean())
        for b in [b for b, e in errors.items() if e is None]:
            warnings.warn(f"{name}: baseline {b} left out (not computable here)", stacklevel=2)
        scores = {b: float(e.mean()) for b, e in errors.items() if e is not None}
        best = min(scores, key=scores.get) if scores else None
        rows.append(
            {
                "family": name,
                "agent": agent_error,
                "best_baseline": best,
                "baseline": scores.get(best, float("nan")),
                "relative": agent_error / scores[best] if best else float("nan"),
                "chance": task.chance_level(),
                "experts": experts,
                "note": "",
            }
        )
    return rows


def write_csv(rows: list[dict], out: str | Path) -> Path:
    """One line per (trained model, test family)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out
