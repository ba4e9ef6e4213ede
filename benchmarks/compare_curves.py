"""Learning curves of the compared learners, from the training logs shipped beside them.

Every ``<runs>/<family>_<learner>.metrics.csv`` (written by ``benchmarks/ship.py`` from the
run's ``metrics.csv``) gives the validation rows of one run: its objective on the fixed
validation episodes against training batches and, where the run logged ``train/seconds``
(``badger_graph.callbacks.ElapsedTime``), against wall-clock seconds. One figure per family,
``<out>/<family>_curves.png``; a table of where each run reached 95 % of its final level.

    python benchmarks/compare_curves.py [--runs badger_graph/checkpoints/compare]
        [--out docs/comparison]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

ROOT = Path(__file__).parents[1]
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


def read(path: Path, metric: str = "val/loss") -> tuple[list[tuple[int, float]], dict[int, float]]:
    """Validation rows ``(step, metric)`` and the seconds logged at training steps."""
    val, seconds = [], {}
    with path.open() as f:
        for r in csv.DictReader(f):
            if r.get(metric):
                val.append((int(r["step"]), float(r[metric])))
            if r.get("train/seconds"):
                seconds[int(r["step"])] = float(r["train/seconds"])
    return val, seconds


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


def reached(val: list[tuple[int, float]], share: float = 0.95) -> int | None:
    """The first validated batch whose loss is within ``1 / share`` of the final one."""
    if not val:
        return None
    final = val[-1][1]
    for step, loss in val:
        if loss <= final / share:
            return step
    return val[-1][0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(ROOT / "badger_graph" / "checkpoints" / "compare"))
    p.add_argument("--out", default=str(ROOT / "docs" / "comparison"))
    a = p.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, out = Path(a.runs), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = sorted(runs.glob("*.metrics.csv"))
    families = sorted({f.name.split("_")[0] for f in logs})
    print("| run | validations | final val/loss | batches | 95 % of final at batch | seconds |")
    print("|---|---|---|---|---|---|")
    for family in families:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        for log in [f for f in logs if f.name.split("_")[0] == family]:
            name = log.name.removesuffix(".metrics.csv")
            val, seconds = read(log)
            if not val:
                continue
            learner = name[len(family) + 1 :]
            color = COLORS.get(learner, "C7")
            left.plot([s for s, _ in val], [v for _, v in val], ".-", color=color, label=learner)
            secs = [at_seconds(s, seconds) for s, _ in val]
            if secs[0] is not None:
                right.plot(secs, [v for _, v in val], ".-", color=color, label=learner)
            total = f"{secs[-1]:.0f}" if secs[-1] is not None else "not logged"
            print(
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
        fig.tight_layout()
        fig.savefig(out / f"{family}_curves.png", dpi=110)
        plt.close(fig)
    print(f"\nwrote {len(families)} figures to {out}")


if __name__ == "__main__":
    main()
