"""Generalization sweeps (paper Fig. 7): error vs number of outputs d and vs experts.

They need an :class:`~badger_graph.EpisodeRunner` (an agent and a task), not Lightning: a
trained :class:`~badger_graph.BadgerModule` gives one as ``model.runner``.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from badger_graph.errors import NonFiniteError
from badger_graph.outer import objective_loss
from badger_graph.runner import EpisodeRunner
from badger_graph.seeds import derive, episode_seed

if TYPE_CHECKING:
    from badger_graph.agent import Lifetime

DEFAULT_EXPERTS = (1, 2, 3, 5, 10, 20, 40, 80, 120, 160, 200)
COLUMNS = ("d", "experts", "error", "chance", "mean_baseline")


def error_metrics(errors, loss, stage: str, task, life=None, device=None) -> dict:
    """What a batch logs, as ``{"<stage>/<name>": tensor}``.

    Loss, final and mean error; in evaluation also the chance level and the task's own
    metrics of ``life``.
    """
    log = {
        f"{stage}/loss": loss,
        f"{stage}/final_error": errors[-1].mean(),
        f"{stage}/mean_error": errors.mean(),
    }
    if stage != "train":
        log[f"{stage}/chance"] = torch.tensor(task.chance_level(), device=device)
        if life is not None:
            for name, metric in task.metrics().items():
                log[f"{stage}/{name}"] = torch.as_tensor(metric(life), device=device)
    return log


def play(
    runner: EpisodeRunner,
    episodes: int,
    batch: int,
    key: tuple[int, ...] = (),
    learner: bool = True,
    baselines: bool | Collection[str] = False,
    num_experts: int | None = None,
) -> dict[str, Tensor | None]:
    """Errors ``[T, N]`` on ``episodes`` fresh episodes, of the learner and of baselines.

    The episodes come in batches of ``batch``, batch ``i`` from the seed
    ``episode_seed("compare", *key, i)`` (a purpose training and validation never draw), so
    the learner (``"learner"``) and every baseline of the task (by name; ``baselines``:
    all, or the names to play) face the same episodes, and another call with the same
    ``key`` the same ones again: paired comparisons. A baseline the task cannot compute at
    this point (:class:`~badger_graph.tasks.base.BaselineUnavailable`, e.g. an exact
    optimum too large) is ``None``.
    """
    out: dict[str, list[Tensor]] = {}
    failed: set[str] = set()
    wanted = set(runner.task.baselines()) if baselines is True else set(baselines or ())
    with torch.no_grad():
        for i in range(-(-episodes // batch)):
            seed = episode_seed("compare", *key, i)
            size = min(batch, episodes - i * batch)
            if learner:
                life = runner.run(seed, size, num_experts=num_experts)
                out.setdefault("learner", []).append(life.errors.cpu())
            if not wanted - failed:
                continue
            for name, errors in runner.baselines(
                seed, size, num_experts=num_experts, names=wanted - failed
            ).items():
                if errors is None:
                    failed.add(name)
                else:
                    out.setdefault(name, []).append(errors)
    return {k: torch.cat(v, 1) for k, v in out.items() if k not in failed} | dict.fromkeys(failed)


@torch.no_grad()
def final_error(
    runner: EpisodeRunner,
    d: int,
    experts: int,
    episodes: int,
    seed: int,
    max_nodes: int = 200_000,
) -> float:
    """Mean last-step error over ``episodes`` fresh episodes (batched to bound memory).

    Batches hold at most ``max_nodes`` nodes and, for agents that take the dense path, a
    ``[B, n, n]`` block within the execution's ``dense_max_bytes``.
    """
    per_agent = experts + d
    # batches small enough for the dense [B, n, n] block of large fully connected agents
    dense_cap = runner.agent.execution.dense_max_bytes // (4 * per_agent * per_agent)
    batch = max(1, min(episodes, max_nodes // per_agent, max(dense_cap, 1)))
    total, done, i = 0.0, 0, 0
    while done < episodes:
        n = min(batch, episodes - done)
        life = runner.run(derive(seed, i), n, num_experts=experts, num_outputs=d)
        total += float(life.final_error.sum())
        done += n
        i += 1
    return total / episodes


def sweep(
    runner: EpisodeRunner,
    dims: list[int],
    experts: list[int],
    experts_for_dims: int,
    dims_for_experts: int,
    episodes: int,
    seed: int,
    out: str | Path,
) -> dict[str, list[dict]]:
    """Write ``dims.csv``, ``experts.csv`` and their PNGs into ``out``; return the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task = runner.task

    def row(d: int, n: int) -> dict:
        # every point gets its own block of seeds so no two points share an episode
        point_seed = derive(seed, d, n)
        return {
            "d": d,
            "experts": n,
            "error": final_error(runner, d, n, episodes, point_seed),
            "chance": task.chance_level(d),
            "mean_baseline": task.mean_baseline(d),
        }

    tables = {
        "dims": [row(d, experts_for_dims) for d in dims],
        "experts": [row(dims_for_experts, n) for n in experts],
    }
    for name, rows in tables.items():
        with (out / f"{name}.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
    from badger_graph.plots import plot_sweep

    plot_sweep(tables["dims"], "d", out / "dims.png", f"{experts_for_dims} experts")
    plot_sweep(tables["experts"], "experts", out / "experts.png", f"d = {dims_for_experts}")
    return tables


class EvaluationSteps:
    """Validation and test of :class:`~badger_graph.BadgerModule` (a LightningModule mixin).

    Every evaluation batch is a fixed seed: its lifetimes run with the evaluation settings
    (``eval_num_experts``, ``eval_growth``) and log the generic and the task's metrics.
    """

    def evaluate(self, batch: dict, stage: str) -> Tensor:
        """Errors on a fixed evaluation batch; logs the generic and the task's metrics."""
        B = int(batch["batch_size"])
        life = self.lifetime(
            int(batch["seed"]),
            B,
            num_experts=self.hparams.eval_num_experts,
            growth=self.eval_growth,
        )
        loss = objective_loss(life.errors, self.objectives.objective)
        if not loss.isfinite():
            raise NonFiniteError("loss", loss, step=self.global_step, where=f"{stage} batch")
        self.log_errors(life.errors, loss, stage, B, life)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Errors on fixed validation episodes."""
        self.evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        """Errors on fixed test episodes."""
        self.evaluate(batch, "test")

    def log_errors(
        self, errors: Tensor, loss: Tensor, stage: str, B: int, life: Lifetime | None = None
    ) -> None:
        """Log loss, final and mean error (+ chance and the task's metrics of ``life``)."""
        on_step = stage == "train"
        if on_step:
            self.check_divergence(float(errors[-1].detach().mean()))
        log = error_metrics(errors, loss, stage, self.task, life, self.device)
        sync = self._trainer is not None and self.trainer.world_size > 1  # mean over processes
        self.log_dict(log, on_step=on_step, on_epoch=not on_step, batch_size=B, sync_dist=sync)
        self.log(
            f"{stage}_err",
            log[f"{stage}/final_error"],
            on_step=on_step,
            on_epoch=not on_step,
            prog_bar=True,
            logger=False,
            batch_size=B,
            sync_dist=sync,
        )
