"""Figures (matplotlib, PNG): rollouts like the paper's Fig. 6."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from badger_graph.agent import Lifetime  # noqa: E402


def _save(fig, out: str | Path) -> Path:
    """Lay out, write as PNG (creating the folder) and close a figure."""
    fig.tight_layout()
    out = Path(out)
    if out.suffix.lower() != ".png":
        out = out.with_name(out.name + ".png")  # what matplotlib would write anyway
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_rollout(life: Lifetime, out: str | Path, max_dims: int = 3) -> Path:
    """Agent output vs target per step (one line per episode), plus the message traffic.

    Top row: for each of the first ``max_dims`` output dimensions, every episode's output
    over the lifetime (solid) and its hidden target (dashed, same colour). Bottom left: the
    mean error per step with chance level. Bottom right (if the lifetime was recorded): the
    norm of the message on every edge of the first episode over the steps.
    """
    actions = life.actions.detach().cpu()  # [T, B, d]
    target = life.episode.target
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
    return _save(fig, out)


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


def plot_sweep(rows: list[dict], x: str, out: str | Path, label: str) -> Path:
    """Error vs ``x`` (``"d"`` or ``"experts"``) with chance and all = mean drawn (Fig. 7)."""
    return plot_sweeps({f"agent ({label})": rows}, x, out)


def plot_sweeps(curves: dict[str, list[dict]], x: str, out: str | Path) -> Path:
    """Several agents' error vs ``x`` in one plot (the paper's Fig. 7 shows three).

    ``curves`` maps a label to sweep rows (``d``, ``experts``, ``error``, ``chance``,
    ``mean_baseline``, as :func:`badger_graph.evaluation.sweep` writes them); chance and
    all = mean are drawn from the first curve's rows.
    """
    if not curves:
        raise ValueError("plot_sweeps needs at least one curve")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (label, rows) in enumerate(curves.items()):
        xs = [r[x] for r in rows]
        ax.plot(xs, [r["error"] for r in rows], "o-", color=f"C{i}", ms=4, label=label)
    rows = next(iter(curves.values()))
    xs = [r[x] for r in rows]
    ax.plot(xs, [r["chance"] for r in rows], ":", color="r", label="chance (guess 0)")
    ax.plot(xs, [r["mean_baseline"] for r in rows], "--", color="0.4", label="all = mean")
    ax.set_xlabel("number of outputs d" if x == "d" else "number of experts")
    if x == "experts":
        ax.set_xscale("log")
    ax.set_ylabel("last-step error (3·MSE)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_communication(graph, out: str | Path, title: str = "") -> Path:
    """Draw a communication graph with edge widths = message strength (networkx layout)."""
    import networkx as nx

    fig, ax = plt.subplots(figsize=(5, 5))
    pos = nx.circular_layout(graph)
    strength = [d.get("message_norm", 1.0) for _, _, d in graph.edges(data=True)]
    top = max(strength) if strength else 1.0
    colors = ["C1" if d.get("role") == "output" else "C0" for _, d in graph.nodes(data=True)]
    nx.draw_networkx_nodes(graph, pos, node_color=colors, node_size=350, ax=ax)
    nx.draw_networkx_labels(graph, pos, font_size=8, font_color="w", ax=ax)
    nx.draw_networkx_edges(
        graph,
        pos,
        width=[0.3 + 4 * s / top for s in strength],
        alpha=0.6,
        connectionstyle="arc3,rad=0.1",
        arrows=True,
        ax=ax,
    )
    ax.set_title(title or "communication (width = message strength)")
    ax.axis("off")
    return _save(fig, out)


def plot_heatmap(graphs, out: str | Path) -> Path:
    """Heat map nodes × steps of the out-strength (sum of sent message norms)."""
    from badger_graph.analysis import out_strength_profile

    nodes = sorted(graphs[0].nodes)
    data = out_strength_profile(graphs, nodes, fill=float("nan"))
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(nodes) + 1.5))
    im = ax.imshow(data, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("inner step")
    ax.set_ylabel("node")
    ax.set_yticks(range(len(nodes)), [str(n) for n in nodes], fontsize=7)
    fig.colorbar(im, ax=ax, label="out-strength")
    return _save(fig, out)


def plot_messages(life: Lifetime, out: str | Path) -> Path:
    """Message dynamics of episode 0 (like the paper's Fig. 8)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    _plot_messages(ax, life)
    return _save(fig, out)


def plot_curves(rows: list[dict], out: str | Path, title: str = "") -> Path:
    """Mean error per inner step, one line per row (``{"label", "errors"}``), log scale."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot(range(1, len(r["errors"]) + 1), r["errors"], label=r["label"])
    ax.set_yscale("log")
    ax.set_xlabel("inner step")
    ax.set_ylabel("mean error")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_growth(rows: list[dict], out: str | Path) -> Path:
    """Error per step of an agent grown mid-lifetime vs the un-grown agent."""
    return plot_curves(rows, out)


def plot_matrix(rows: list[dict], out: str | Path) -> Path:
    """Heat map trained-on × tested-on of the error relative to the best baseline (log)."""
    import numpy as np

    models = list(dict.fromkeys(r["trained_on"] for r in rows))
    families = list(dict.fromkeys(r["family"] for r in rows))
    data = np.full((len(models), len(families)), np.nan)
    for r in rows:
        data[models.index(r["trained_on"]), families.index(r["family"])] = r["relative"]
    fig, ax = plt.subplots(figsize=(1.4 * len(families) + 2.5, 0.6 * len(models) + 1.8))
    im = ax.imshow(np.log2(data), cmap="RdYlGn_r", vmin=-3, vmax=3, aspect="auto")
    for i in range(len(models)):
        for j in range(len(families)):
            text = "n/a" if np.isnan(data[i, j]) else f"{data[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(families)), families, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    fig.colorbar(im, ax=ax, label="log2(agent error / best baseline error)")
    return _save(fig, out)
