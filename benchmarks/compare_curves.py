"""Learning curves of the compared learners, from the training logs shipped beside them.

Every ``<runs>/<family>_<learner>.metrics.csv`` (written by ``benchmarks/ship.py`` from the
run's ``metrics.csv``) gives the validation rows of one run: its objective on the fixed
validation episodes against training batches and, where the run logged ``train/seconds``
(``badger_graph.callbacks.ElapsedTime``), against wall-clock seconds. One figure per family,
``<out>/<family>_curves.png``; a table of where each run reached 95 % of its final level
(:func:`badger_graph.comparison.plots.plot_run_curves`).

    python benchmarks/compare_curves.py [--runs badger_graph/checkpoints/compare]
        [--out docs/comparison]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from badger_graph.comparison.plots import plot_run_curves
from badger_graph.pretrained import CHECKPOINTS

ROOT = Path(__file__).parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(CHECKPOINTS / "compare"))
    p.add_argument("--out", default=str(ROOT / "docs" / "comparison"))
    a = p.parse_args()
    rows, figures = plot_run_curves(Path(a.runs), Path(a.out))
    print("| run | validations | final val/loss | batches | 95 % of final at batch | seconds |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nwrote {len(figures)} figures to {a.out}")


if __name__ == "__main__":
    main()
