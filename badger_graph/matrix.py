"""Train on some task families, test on all: errors relative to each family's best baseline."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from badger_graph.runner import EpisodeRunner
from badger_graph.seeds import episode_seed
from badger_graph.tasks import (
    BernoulliBandits,
    GuessingGame,
    HotColdOptimization,
    MovingTarget,
    OnlineClassification,
    OnlineRegression,
    Task,
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


def evaluate(
    runner: EpisodeRunner,
    families: dict[str, Task],
    episodes: int,
    batch: int = 500,
) -> list[dict]:
    """Mean error over the lifetime of the agent and of each family's best baseline.

    The agent's task is swapped for each family in turn (its weights never change); both
    play the same episodes, drawn from the ``"compare"`` seed stream. Without output ports
    expert i owns output i, so a model trained with fewer experts than a family has outputs
    (a one-expert regression model on three arms) plays that family with one expert per
    output (the shared policy runs on any number of experts); the row's ``experts`` says
    how many.
    """
    trained = runner.task
    rows = []
    try:
        for f, (name, task) in enumerate(families.items()):
            runner.task = task
            experts = runner.agent.experts_for(task.num_outputs, runner.num_experts)
            agent, base = [], {}
            with torch.no_grad():
                for i in range(-(-episodes // batch)):
                    seed = episode_seed("compare", 100 * f, i)
                    size = min(batch, episodes - i * batch)
                    life = runner.run(seed, size, num_experts=experts)
                    agent.append(life.errors.mean(0).cpu())
                    for b, e in runner.baselines(seed, size, num_experts=experts).items():
                        base.setdefault(b, []).append(e.mean(0))
            agent_error = float(torch.cat(agent).mean())
            scores = {b: float(torch.cat(v).mean()) for b, v in base.items()}
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
                }
            )
    finally:
        runner.task = trained
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
