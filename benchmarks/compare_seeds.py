"""Learned learners over several training seeds: fresh episodes, paired differences, curves.

Every learner of ``--learners`` was trained with the seeds of ``--seeds`` by
``benchmarks/seed_train.sh`` (``configs/compare/<family>_<learner>.yaml``, seed s = initial
weights and training episodes). Here every seed of every learner plays the same fresh
episodes (seed purpose "compare", as in ``compare_learners.py``) at the family's points.
A cell is the mean over seeds ± its standard error over seeds (the training-seed spread);
beside it the per-episode standard error (mean over seeds). The paired table compares the
first learner with each other one on the same episodes: per seed the mean over episodes of
the score difference, then mean ± s.e. over seeds; the verdict is "better" / "worse" when
the difference is more than two standard errors from 0, else "level".

From the training logs (``metrics.csv``) it also prints each learner's validation score at
equal training batches (the fewest batches any run reached) and at the end of the budget,
and draws ``<out>/<family>_seeds_curves.png``: the validation score against batches and
against seconds, mean over seeds with a min–max band. The harness is
:mod:`badger_graph.comparison.seeds`; this is its command line.

    python benchmarks/compare_seeds.py --family bandits \
        --learners badger_tuned,rnn_tuned,transformer_tuned --seeds 0,1,2 \
        [--runs badger_graph/checkpoints/compare/seeds] [--episodes 2000] [--out docs/comparison]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from badger_graph.comparison import FAMILIES, METRICS, config_of, seed_scores, seed_tables
from badger_graph.comparison.plots import plot_seed_curves
from badger_graph.pretrained import CHECKPOINTS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="bandits", choices=list(FAMILIES))
    p.add_argument("--learners", default="badger_tuned,rnn_tuned,transformer_tuned")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--runs", default=str(CHECKPOINTS / "compare" / "seeds"))
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--metric", default=None, help="validation column (default: the family's)")
    p.add_argument("--versus", default=None, help="a baseline to pair with (bayes_optimal)")
    p.add_argument("--within", type=float, default=0.03, help="relative gap for 'within'")
    p.add_argument("--out", default="docs/comparison")
    a = p.parse_args()
    for flag in ("episodes", "batch"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be comma-separated ints, got {a.seeds!r}")
    learners = [x for x in a.learners.split(",") if x]
    for learner in learners:
        if not config_of(a.family, learner).is_file():
            p.error(f"--learners: no configs/compare/{a.family}_{learner}.yaml")
    metric = a.metric or METRICS.get(a.family, "val/loss")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        scores, runs = seed_scores(
            a.family, learners, seeds, Path(a.runs), a.episodes, a.batch, a.versus
        )
    except FileNotFoundError as e:
        raise SystemExit(f"compare_seeds.py: {e}") from None
    print(seed_tables(a.family, learners, seeds, scores, runs, metric, a.versus, a.within))
    print(f"\nwrote {plot_seed_curves(a.family, learners, seeds, runs, metric, out)}")


if __name__ == "__main__":
    main()
