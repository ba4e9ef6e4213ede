"""Trained runs of the comparison: where their files are, the models, their training logs.

A run named ``<family>_<learner>[_s<seed>]`` lies either in the shipped layout
(``<runs>/<name>.ckpt`` with ``<runs>/<name>.metrics.csv`` beside it, as ``benchmarks/ship.py``
writes them) or in a run folder (``<runs>/<name>/checkpoints/last.ckpt`` and
``<runs>/<name>/logs/version_*/metrics.csv``, as ``badger fit`` writes them).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import torch

from badger_graph.checkpoint import load_weights

#: the validation column that is a family's score (``val/loss`` depends on the objective)
METRICS = {
    "bandits": "val/cumulative_regret",
    "regression": "val/mean_error",
    "sinusoid": "val/mean_error",
    "classification": "val/mean_error",
}


@dataclasses.dataclass
class Run:
    """A trained run: its model, the batches it trained, its weights and training log."""

    name: str
    model: torch.nn.Module
    batches: int
    weights: int
    log: Path | None

    @property
    def runner(self):
        """The model's :class:`~badger_graph.EpisodeRunner`."""
        return self.model.runner


def config_of(family: str, learner: str, configs: str | Path | None = None) -> Path:
    """``<configs>/<family>_<learner>.yaml`` (default: the shipped ``configs/compare``)."""
    if configs is None:
        from badger_graph.pretrained import configs_dir

        configs = configs_dir() / "compare"
    return Path(configs) / f"{family}_{learner}.yaml"


def run_files(runs: str | Path, name: str) -> tuple[Path, Path | None]:
    """The checkpoint and training log of run ``name``: shipped layout, else a run folder.

    The checkpoint path is returned even when no file is there (the caller says so).
    """
    runs = Path(runs)
    ckpt = runs / f"{name}.ckpt"
    if ckpt.is_file():
        log = runs / f"{name}.metrics.csv"
        return ckpt, log if log.is_file() else None
    logs = sorted((runs / name / "logs").glob("version_*/metrics.csv"))
    return runs / name / "checkpoints" / "last.ckpt", (logs[-1] if logs else None)


def load_run(config: str | Path, runs: str | Path, name: str) -> Run:
    """Build the model of ``config`` with the weights of run ``name``.

    Raises:
        FileNotFoundError: naming the checkpoint looked for, when there is none.
    """
    from badger_graph.cli import build_from_config

    ckpt, log = run_files(runs, name)
    if not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint of run {name!r}: {ckpt}")
    model = build_from_config(str(config))
    checkpoint = load_weights(model, ckpt)  # the file is read once: weights and batch counter
    return Run(
        name=name,
        model=model,
        batches=int(checkpoint["global_step"]),
        weights=sum(p.numel() for p in model.parameters()),
        log=log,
    )


def read_log(path: Path, metric: str = "val/loss") -> tuple[list[tuple[int, float]], dict]:
    """Validation rows ``(step, metric)`` and the seconds logged at training steps."""
    val, seconds = [], {}
    with Path(path).open() as f:
        for r in csv.DictReader(f):
            if r.get(metric):
                val.append((int(r["step"]), float(r[metric])))
            if r.get("train/seconds"):
                seconds[int(r["step"])] = float(r["train/seconds"])
    return val, seconds


def read_batches(path: Path | None, metric: str) -> tuple[list[tuple[int, float]], dict]:
    """:func:`read_log` counted in batches (step + 1); nothing without a log."""
    if path is None:
        return [], {}
    val, seconds = read_log(path, metric)
    return [(s + 1, v) for s, v in val], {s + 1: t for s, t in seconds.items()}


def at_seconds(step: int, seconds: dict[int, float]) -> float | None:
    """The run's seconds at ``step`` (linear between the logged training rows)."""
    if not seconds:
        return None
    steps = sorted(seconds)
    if step <= steps[0]:
        return seconds[steps[0]] * step / max(steps[0], 1)
    for a, b in zip(steps, steps[1:], strict=False):
        if a <= step <= b:
            return seconds[a] + (seconds[b] - seconds[a]) * (step - a) / max(b - a, 1)
    return seconds[steps[-1]]


def at_batches(val: list[tuple[int, float]], batches: int) -> float | None:
    """The last validation score at or before ``batches``."""
    before = [v for b, v in val if b <= batches]
    return before[-1] if before else None


def reached(val: list[tuple[int, float]], share: float = 0.95) -> int | None:
    """The first validated step whose loss is within ``1 / share`` of the final one."""
    if not val:
        return None
    final = val[-1][1]
    for step, loss in val:
        if loss <= final / share:
            return step
    return val[-1][0]
