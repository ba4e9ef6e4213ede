"""Learned learners on real datasets they never saw, against hand-written online learners.

Each dataset's meta-test half (scikit-learn's iris, wine, breast cancer, digits; see
``badger_graph.tasks.DatasetClassification``) is played as fresh online classification
streams (seed purpose "compare", never drawn in training) by

* the BADGER and RL2 learners trained on synthetic streams only
  (``configs/datasets/synthetic_*.yaml``),
* the BADGER learner trained on the meta-train halves of the other three datasets
  (``configs/datasets/real_without_<dataset>.yaml``, leave-one-dataset-out),
* nearest centroid, 1-nearest-neighbour and online logistic regression, each with the
  temperature of its scores tuned on the dataset's meta-train half (a grid of 11 powers
  of two, 512 streams of the same T): the hand-written learners get the dataset's own
  training data, the synthetic-trained agents none.

Classes per stream: all of the dataset's, at most 5 (iris 3, wine 3, breast cancer 2,
digits 5 of 10). Cells: mean cross-entropy / log c over the lifetime and accuracy of the
last 5 answers, mean ± standard error over streams.

    python benchmarks/real_datasets.py [--episodes 2000] [--steps 20 50] [--runs runs/datasets]
    python benchmarks/real_datasets.py --runs badger_graph/checkpoints/datasets   # shipped

Writes ``<out>/real_datasets.csv`` and prints a markdown table per T.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from badger_graph.comparison.runs import load_run
from badger_graph.comparison.tables import episode_mean_se
from badger_graph.runner import EpisodeRunner
from badger_graph.seeds import episode_seed, generator
from badger_graph.tasks import DatasetClassification
from badger_graph.tasks.base import play
from badger_graph.tasks.classification import tuned_strategies
from badger_graph.tasks.datasets import DATASETS, load_dataset

ROOT = Path(__file__).parents[1]
GRID = [2.0**k for k in range(-1, 10)]
LEARNERS = {
    "synthetic_badger": "BADGER, synthetic-trained",
    "synthetic_badger_long": "BADGER, synthetic-trained, 3x the budget",
    "synthetic_rnn": "RL2, synthetic-trained",
    "real_without": "BADGER, other datasets (leave-one-out)",
}


def _scores(errors: torch.Tensor, actions: torch.Tensor, labels: list) -> tuple:
    """Per-stream mean error [N] and accuracy of the last 5 answers [N]."""
    right = actions[-5:].argmax(-1) == torch.stack(labels[-5:]).to(actions.device)
    return errors.mean(0).cpu(), right.float().mean(0).cpu()


def _replay(episode, steps: int, name: str, tau: dict) -> tuple:
    """Per-stream error and late accuracy of one hand-written learner on ``episode``."""
    act = tuned_strategies(episode, tau)[name]
    actions = []

    def record(result, t):
        actions.append(act(result, t))
        return actions[-1]

    errors = play(episode, steps, record)
    return _scores(errors, torch.stack(actions), episode.labels)


def tune(name: str, c: int, steps: int) -> dict:
    """Each baseline's temperature: the best of GRID on 512 meta-train streams."""
    task = DatasetClassification(name, split="train", num_classes=c)
    best = {}
    for base in ("nearest_centroid", "nearest_neighbour", "logistic_regression"):
        err = {}
        for tau in GRID:
            episode = task.reset(512, torch.Generator().manual_seed(7))
            err[tau] = float(_replay(episode, steps, base, {base: tau})[0].mean())
        best[base] = min(err, key=err.get)
    return best


def _model(runs: Path, key: str, dataset: str):
    name = f"real_without_{dataset}" if key == "real_without" else key
    config = ROOT / "configs" / "datasets" / f"{name}.yaml"
    try:
        run = load_run(config, runs, name)
    except FileNotFoundError as e:
        print(f"{e}: left out", file=sys.stderr)
        return None, None
    return run.model, run.batches


@torch.no_grad()
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--steps", type=int, nargs="+", default=[20, 50])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "datasets")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "datasets")
    a = p.parse_args(argv)
    rows = []
    start = time.time()
    for dataset in a.datasets:
        # the dataset's streams by its place among all datasets, not in --datasets: a subset
        # plays the same streams as the full run
        di = list(DATASETS).index(dataset)
        c = min(5, int(load_dataset(dataset)[1].max()) + 1)  # all classes, at most 5
        task = DatasetClassification(dataset, split="test", num_classes=c)
        models = {k: _model(a.runs, k, dataset) for k in LEARNERS}
        for T in a.steps:
            tau = tune(dataset, c, T)
            batches = range(-(-a.episodes // a.batch))
            seeds = [episode_seed("compare", 7000 + 100 * di + T, i) for i in batches]
            sizes = [min(a.batch, a.episodes - i * a.batch) for i in batches]
            results = {}
            for key, (model, batches) in models.items():
                if model is None:
                    continue
                runner = EpisodeRunner(model.runner.agent, task, model.runner.num_experts, T)
                err, acc = [], []
                for seed, size in zip(seeds, sizes, strict=True):
                    life = runner.run(seed, size)
                    e, r = _scores(life.errors, life.actions, life.episode.labels)
                    err.append(e)
                    acc.append(r)
                results[key] = (torch.cat(err), torch.cat(acc), f"{batches:,} batches")
            for base in tau:
                err, acc = [], []
                for seed, size in zip(seeds, sizes, strict=True):
                    # the episodes of the seed exactly as the runner draws them for a learner
                    episode = task.reset(size, generator(seed), device="cpu")
                    e, r = _replay(episode, T, base, tau)
                    err.append(e)
                    acc.append(r)
                results[base] = (torch.cat(err), torch.cat(acc), f"temperature {tau[base]:g}")
            for key, (err, acc, note) in results.items():
                (em, es), (am, ase) = episode_mean_se(err), episode_mean_se(acc)
                rows.append(
                    {
                        "dataset": dataset,
                        "classes": c,
                        "T": T,
                        "strategy": key,
                        "error": em,
                        "error_se": es,
                        "late_accuracy": am,
                        "late_accuracy_se": ase,
                        "note": note,
                    }
                )
        print(f"{dataset} done ({time.time() - start:.0f} s)", file=sys.stderr)
    a.out.mkdir(parents=True, exist_ok=True)
    with (a.out / "real_datasets.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cell = {(r["T"], r["dataset"], r["strategy"]): r for r in rows}
    for T in a.steps:
        print(
            f"\n**T = {T}**: cross-entropy / log c (lower is better) · accuracy of the last 5 "
            "answers (mean ± s.e.)\n"
        )
        strategies = list(dict.fromkeys(r["strategy"] for r in rows if r["T"] == T))
        print("| | " + " | ".join(a.datasets) + " |")
        print("|---|" + "---|" * len(a.datasets))
        for s in strategies:
            cells = []
            for d in a.datasets:
                r = cell.get((T, d, s))
                cells.append(
                    "n/a"
                    if r is None
                    else f"{r['error']:.3f} ± {r['error_se']:.3f} · "
                    f"{r['late_accuracy']:.3f} ± {r['late_accuracy_se']:.3f}"
                )
            print(f"| {LEARNERS.get(s, s)} | " + " | ".join(cells) + " |")
    print(f"\n{time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
