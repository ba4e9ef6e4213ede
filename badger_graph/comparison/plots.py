"""Figures of the comparison: error per step, validation while training (batches, seconds)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from badger_graph.comparison.families import LEARNERS
from badger_graph.comparison.runs import Run, at_seconds, reached, read_batches, read_log
from badger_graph.plots import _save, plt

#: one color per learner in every figure
COLORS = {
    "badger": "C0",
    "badger_experts": "C9",
    "rnn": "C1",
    "rnn_wide": "C3",
    "transformer": "C2",
    "transformer_wide": "C4",
    "maml": "C5",
}


def plot_steps(name: str, curves: dict[str, Tensor], out: Path) -> Path:
    """Mean error per step in distribution, every strategy: ``<out>/<name>_steps.png``."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s, c in curves.items():
        style = "-" if s in LEARNERS else "--"
        ax.plot(range(1, len(c) + 1), c.numpy(), style, label=LEARNERS.get(s, s))
    ax.set_xlabel("inner step")
    ax.set_ylabel("mean error")
    ax.set_yscale("log")
    ax.set_title(f"{name}: error per step, in distribution")
    ax.legend(fontsize=7)
    return _save(fig, Path(out) / f"{name}_steps.png")


def plot_seed_curves(family: str, learners: list[str], seeds: list[int],
                     runs: dict[tuple[str, int], Run], metric: str, out: Path) -> Path:  # fmt: skip
    """Validation score against batches and seconds: mean over seeds, min-max band."""
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, learner in enumerate(learners):
        logs = [read_batches(runs[learner, s].log, metric) for s in seeds]
        n = min(len(v) for v, _ in logs)
        if n == 0:
            continue
        steps = [b for b, _ in logs[0][0][:n]]
        vals = torch.tensor([[v for _, v in val[:n]] for val, _ in logs])
        secs = [[at_seconds(b, sec) or float("nan") for b, _ in val[:n]] for val, sec in logs]
        xs = (steps, torch.tensor(secs).mean(0).tolist())
        for ax, x in zip(axes, xs, strict=True):
            ax.plot(x, vals.mean(0), ".-", color=f"C{i}", label=learner)
            ax.fill_between(x, vals.min(0).values, vals.max(0).values, color=f"C{i}", alpha=0.2)
    for ax, xlabel in zip(axes, ("training batches", "wall-clock seconds"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on a short range
        ax.legend(fontsize=7)
    fig.suptitle(f"{family}: validation while training, {len(seeds)} seeds (band: min-max)")
    return _save(fig, Path(out) / f"{family}_seeds_curves.png")


def plot_run_curves(runs: str | Path, out: str | Path) -> tuple[list[str], list[Path]]:
    """One figure per family of the shipped logs ``<runs>/<family>_<learner>.metrics.csv``.

    ``val/loss`` against batches and, where the run logged ``train/seconds``, against
    wall-clock seconds: ``<out>/<family>_curves.png``. Returns the markdown rows (run,
    validations, final value, batches, where it reached 95 % of its final level, seconds)
    and the figures.
    """
    logs = sorted(Path(runs).glob("*.metrics.csv"))
    families = sorted({f.name.split("_")[0] for f in logs})
    rows, paths = [], []
    for family in families:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for log in [f for f in logs if f.name.split("_")[0] == family]:
            name = log.name.removesuffix(".metrics.csv")
            val, seconds = read_log(log)
            if not val:
                continue
            learner = name[len(family) + 1 :]
            color = COLORS.get(learner, "C7")
            left.plot([s for s, _ in val], [v for _, v in val], ".-", color=color, label=learner)
            secs = [at_seconds(s, seconds) for s, _ in val]
            if secs[0] is not None:
                right.plot(secs, [v for _, v in val], ".-", color=color, label=learner)
            total = f"{secs[-1]:.0f}" if secs[-1] is not None else "not logged"
            rows.append(
                f"| {name} | {len(val)} | {val[-1][1]:.4g} | {val[-1][0] + 1:,} | "
                f"{reached(val):,} | {total} |"
            )
        for ax, xlabel in ((left, "training batches"), (right, "wall-clock seconds")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel("val/loss")
            ax.set_yscale("log")
            if ax.lines:
                ax.legend(fontsize=7)
        right.set_title("(runs that logged train/seconds)", fontsize=8)
        fig.suptitle(f"{family}: validation objective while training")
        paths.append(_save(fig, Path(out) / f"{family}_curves.png"))
    return rows, paths
