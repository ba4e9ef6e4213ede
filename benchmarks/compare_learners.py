"""BADGER against the monolithic meta-learner (RL2) and the optimal learner, same episodes.

For every family of ``configs/compare/`` the learners were trained by
``benchmarks/compare_train.sh`` on the same wall-clock budget (the two at once, one thread
each). Here they and the task's baselines (hand-written and, where computable, optimal) play
the same fresh episodes (seed purpose "compare", never drawn in training) in distribution
and at out-of-distribution points: wider tasks (more outputs / arms / classes / inputs),
longer lifetimes. A cell is the family's score, mean ± standard error over episodes;
"n/a" where a learner cannot run at all (the monolithic learner has a fixed input width).
The harness is :mod:`badger_graph.comparison`; this is its command line.

    python benchmarks/compare_learners.py [--episodes 2000] [--families bandits,regression]
        [--runs runs/compare] [--out docs/comparison]
    python benchmarks/compare_learners.py --runs badger_graph/checkpoints/compare  # shipped
    python benchmarks/compare_learners.py --extra_families my_families --families markov \
        --configs my_configs --runs my_runs   # your own family: my_families.FAMILIES

Writes ``<out>/<family>.csv`` and ``<out>/<family>_steps.png`` (error per step in
distribution) and prints one markdown table per family.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import sys
from pathlib import Path

from badger_graph.comparison import FAMILIES, Family, Point, compare_family, family_table
from badger_graph.comparison.plots import plot_steps

__all__ = ["FAMILIES", "Family", "Point", "main"]  # a user's families module imports these


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--runs", default="runs/compare")
    p.add_argument("--out", default="docs/comparison")
    p.add_argument("--configs", default=None,
                   help="folder of <family>_<learner>.yaml (default: configs/compare)")  # fmt: skip
    p.add_argument("--extra_families", default=None,
                   help="a module (importable from here) whose FAMILIES dict of Family adds "
                        "your own families")  # fmt: skip
    a = p.parse_args()
    families = FAMILIES
    if a.extra_families:
        sys.path.insert(0, str(Path.cwd()))
        try:
            families = {**FAMILIES, **importlib.import_module(a.extra_families).FAMILIES}
        except (ImportError, AttributeError) as e:
            p.error(f"--extra_families {a.extra_families!r}: {e}")
    for flag in ("episodes", "batch"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    names = a.families.split(",")
    for name in names:
        if name not in families:
            p.error(f"--families: unknown {name!r}; choose from {','.join(families)}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = Path(a.configs) if a.configs else None
    for name in names:
        try:
            result = compare_family(name, Path(a.runs), a.episodes, a.batch, configs, families)
        except FileNotFoundError as e:
            raise SystemExit(f"compare_learners.py: {e}") from None
        for missing in result.missing:
            print(f"{name}: {missing}, left out", file=sys.stderr)
        with (out / f"{name}.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["strategy", "point", "mean", "se", "note"])
            w.writeheader()
            w.writerows(result.rows)
        plot_steps(name, result.curves, out)
        print(family_table(name, result.rows, result.info, families), flush=True)
        print()


if __name__ == "__main__":
    main()
