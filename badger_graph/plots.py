"""Figures (matplotlib, PNG): rollouts like the paper's Fig. 6."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from badger_graph.agent import Lifetime  # noqa: E402


def plot_rollout(life: Lifetime, out: str | Path, max_dims: int = 3) -> Path:
    """Agent output vs target per step (one line per episode), plus the message traffic.

    Top row: for each of the first ``max_dims`` output dimensions, every episode's output
    over the lifetime (solid) and its hidden target (dashed, same colour). Bottom left: the
    mean error per step with chance level. Bottom right (if the lifetime was recorded): the
    norm of the message on every edge of the first episode over the steps.
    """
    actions = life.actions.detach().cpu()  # [T, B, d]
    target = getattr(life.episode, "target", None)
    T, B, d = actions.shape
    dims = min(d, max_dims)
    fig, axes = plt.subplots(2, max(dims, 2), figsize=(4 * max(dims, 2), 6.5), squeeze=False)
    steps = torch.arange(1, T + 1)
    colors = plt.cm.tab10(torch.arange(B) % 10)
    for k in range(dims):
        ax = axes[0, k]
        for b in range(B):
            ax.plot(steps, actions[:, b, k], color=colors[b], lw=1.2)
            if target is not None:
                ax.axhline(float(target[b, k]), color=colors[b], ls="--", lw=0.8)
        ax.set_title(f"output {k} vs target (dashed)")
        ax.set_xlabel("inner step")
    for k in range(dims, axes.shape[1]):
        axes[0, k].axis("off")
    ax = axes[1, 0]
    err = life.errors.detach().cpu()
    ax.plot(steps, err.mean(1), color="k", label="mean error")
    ax.fill_between(steps, err.min(1).values, err.max(1).values, color="0.8", label="min–max")
    ax.axhline(1.0, color="r", ls=":", label="chance")
    ax.set_yscale("log")
    ax.set_xlabel("inner step")
    ax.set_title(f"error over {B} episodes")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    if life.records:
        _plot_messages(ax, life)
    else:
        ax.axis("off")
    for k in range(2, axes.shape[1]):
        axes[1, k].axis("off")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _plot_messages(ax, life: Lifetime, max_edges: int = 12) -> None:
    """Message norm per edge of agent 0 over the steps (last round of each step)."""
    series: dict[tuple[int, int], list[float]] = {}
    for rec in life.records:
        src, dst = rec.edge_index.cpu()
        in_agent0 = rec.batch.cpu()[dst] == 0
        norms = rec.messages[-1].cpu().norm(dim=-1)
        for e in in_agent0.nonzero().squeeze(1).tolist():
            key = (int(src[e]), int(dst[e]))
            series.setdefault(key, [float("nan")] * len(life.records))[rec.step] = float(norms[e])
    for (s, r), vals in list(sorted(series.items()))[:max_edges]:
        ax.plot(range(1, len(vals) + 1), vals, label=f"{s}→{r}")
    ax.set_title("message norm per edge (episode 0)")
    ax.set_xlabel("inner step")
    ax.legend(fontsize=7, ncol=2)
