"""BADGER against the monolithic meta-learner (RL2) and the optimal learner, same episodes.

For every family of ``configs/compare/`` both learners were trained by
``benchmarks/compare_train.sh`` on the same wall-clock budget (the two at once, one thread
each). Here they and the task's baselines (hand-written and, where computable, optimal) play
the same fresh episodes (seed purpose "compare", never drawn in training) in distribution
and at out-of-distribution points: wider tasks (more outputs / arms / classes / inputs),
longer lifetimes. A cell is the family's score, mean ± standard error over episodes;
"n/a" where a learner cannot run at all (the monolithic learner has a fixed input width).

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
import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from badger_graph.checkpoint import read_checkpoint
from badger_graph.cli import build_from_config
from badger_graph.errors import TaskTooWideError
from badger_graph.evaluation import play
from badger_graph.learner import FixedWidthLearner
from badger_graph.tasks import (
    BernoulliBandits,
    GuessingGame,
    OnlineClassification,
    OnlineRegression,
    SinusoidRegression,
)

ROOT = Path(__file__).parents[1]
#: the learners compared, each from ``configs/compare/<family>_<learner>.yaml`` if it exists
LEARNERS = {
    "badger": "BADGER",
    "rnn": "monolithic (RL2)",
    "transformer": "Transformer (in-context)",
    "rnn_wide": "RL2, width-agnostic",
    "transformer_wide": "Transformer, width-agnostic",
    "maml": "MAML",
}


class NoExpertsAxis(Exception):
    """A point that adds experts, asked of a learner without experts (a "—" cell)."""


@dataclasses.dataclass
class Point:
    """One column of a family's table: a task (None: the trained one), T, experts for d."""

    label: str
    task: object | None = None
    steps: int | None = None
    experts: int | None = None  # BADGER's own axis: more experts than in training
    judge: Callable | None = None  # another score than the family's (e.g. another shot)


@dataclasses.dataclass
class Family:
    score: str
    judge: Callable  # errors [T, B] -> per-episode score [B]
    points: list[Point]


FAMILIES = {
    "guessing": Family(
        "final error (last step)",
        lambda e: e[-1],
        [
            Point("in distribution (d=3, T=20)"),
            Point("T=40", steps=40),
            Point("d=5", GuessingGame(5, feedback="scalar", feedback_to=[0])),
        ],
    ),
    "fig7": Family(
        "final error (last step)",
        lambda e: e[-1],
        [
            Point("in distribution (d=3, 20 experts)"),
            Point("d=6", GuessingGame(6, feedback="scalar", feedback_to="all")),
            Point("d=10", GuessingGame(10, feedback="scalar", feedback_to="all")),
            Point("d=20", GuessingGame(20, feedback="scalar", feedback_to="all")),
            Point("T=40", steps=40),
            Point("d=3, 100 experts", experts=100),
        ],
    ),
    "sinusoid": Family(
        "squared error after K shots (step K)",
        lambda e: e[5],
        [
            Point("5-shot (T=20)"),
            Point("10-shot (T=20)", judge=lambda e: e[10]),
            Point(
                "10-shot, amplitude in [5, 10]",
                SinusoidRegression(amplitude=(5.0, 10.0)),
                judge=lambda e: e[10],
            ),
            Point("30-shot (T=40)", steps=40, judge=lambda e: e[30]),
        ],
    ),
    "bandits": Family(
        "cumulative regret",
        lambda e: e.sum(0),
        [
            Point("in distribution (k=3..5, T=20)"),
            Point("k=3, T=20", BernoulliBandits(3)),
            Point("k=5, T=10", BernoulliBandits(5), steps=10),
            Point("k=5, T=100", BernoulliBandits(5), steps=100),
            Point("k=10, T=10", BernoulliBandits(10), steps=10),
            Point("k=10, T=100", BernoulliBandits(10), steps=100),
        ],
    ),
    "regression": Family(
        "error after 10 observations",
        lambda e: e[10],
        [
            Point("in distribution (m=2..4, T=20)"),
            Point("m=1", OnlineRegression(1)),
            Point("m=8", OnlineRegression(8)),
            Point("T=40", steps=40),
        ],
    ),
    "classification": Family(
        "mean cross-entropy / log c",
        lambda e: e.mean(0),
        [
            Point("in distribution (c=3, m=2, T=20)"),
            Point("T=40", steps=40),
            Point("c=5", OnlineClassification(5, 2, 0.5)),
            Point("c=6", OnlineClassification(6, 2, 0.5)),
        ],
    ),
}


def _stat(values: torch.Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std()) / math.sqrt(values.numel())


def _episodes(trained, point: Point, episodes: int, batch: int, key: int, learner: bool, only=None):
    """Errors [T, N] of the runner's learner (``learner``) or of each task baseline.

    ``only``: the names of the baselines to play (default: all of the task's).
    """
    task = point.task if point.task is not None else trained.task
    experts = trained.agent.experts_for(task.num_outputs, point.experts or trained.num_experts)
    if learner and point.experts and isinstance(trained.agent, FixedWidthLearner):
        raise NoExpertsAxis(f"{type(trained.agent).__name__} has no experts to add")
    # a runner of this point (the trained one is left as it is); TaskTooWideError if the
    # learner cannot play it
    runner = trained.replace(
        task=task, num_experts=experts, inner_steps=point.steps or trained.inner_steps
    )
    # a baseline that could not be computed here: None (shown as n/a)
    baselines = False if learner else (True if only is None else only)
    return play(runner, episodes, batch, (key,), learner=learner, baselines=baselines)


def compare(
    name: str,
    runs: Path,
    episodes: int,
    batch: int,
    configs: Path | None = None,
    families: dict[str, Family] | None = None,
) -> tuple[list[dict], dict]:
    """Rows (strategy, point, mean, se) of one family, and the in-distribution step curves."""
    families = families or FAMILIES
    family = families[name]
    fi = list(families).index(name)
    models, info = {}, {}
    for learner in LEARNERS:
        config = (configs or ROOT / "configs" / "compare") / f"{name}_{learner}.yaml"
        if not config.is_file():
            continue
        ckpt = runs / f"{name}_{learner}" / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():  # the shipped layout: <runs>/<family>_<learner>.ckpt
            ckpt = runs / f"{name}_{learner}.ckpt"
        if not ckpt.is_file():
            print(f"{name}: no checkpoint {ckpt}, {learner} left out", file=sys.stderr)
            continue
        models[learner] = build_from_config(str(config), str(ckpt))
        trained = read_checkpoint(ckpt)
        info[learner] = {
            "batches": trained["global_step"],
            "weights": sum(p.numel() for p in models[learner].parameters()),
        }
    rows, curves = [], {}
    for pi, point in enumerate(family.points):
        key = 1000 * fi + pi
        results = {}
        for learner, model in models.items():
            try:
                learned = _episodes(model.runner, point, episodes, batch, key, True)
                results[learner] = learned["learner"]
            except NoExpertsAxis:
                rows.append({"strategy": learner, "point": point.label, "note": "no experts"})
            except TaskTooWideError:
                rows.append({"strategy": learner, "point": point.label, "note": "cannot run"})
        results.update(_episodes(models["badger"].runner, point, episodes, batch, key, False))
        task = point.task or models["badger"].runner.task
        T = point.steps or models["badger"].runner.inner_steps
        judge = point.judge or family.judge
        chance = judge(torch.full((T, 1), task.chance_level()))
        rows.append({"strategy": "chance", "point": point.label, "mean": float(chance), "se": 0.0})
        for strategy, errors in results.items():
            if errors is None:
                rows.append({"strategy": strategy, "point": point.label, "note": "too large"})
                continue
            mean, se = _stat(judge(errors))
            rows.append({"strategy": strategy, "point": point.label, "mean": mean, "se": se})
            if pi == 0:
                curves[strategy] = errors.mean(1)
    return rows, {"curves": curves, "info": info}


def table(name: str, rows: list[dict], info: dict, families=None) -> str:
    """The family's markdown table: strategies × points."""
    family = (families or FAMILIES)[name]
    points = [p.label for p in family.points]
    seen = list(dict.fromkeys(r["strategy"] for r in rows))
    strategies = [s for s in LEARNERS if s in seen]
    strategies += [s for s in seen if s not in LEARNERS and s != "chance"] + ["chance"]
    cell = {(r["strategy"], r["point"]): r for r in rows}
    lines = [
        f"**{name}** — {family.score} (mean ± s.e.)",
        "",
        "| | " + " | ".join(points) + " |",
        "|---|" + "---|" * len(points),
    ]
    for s in strategies:
        label = s
        if s in info:
            label = f"{LEARNERS[s]} [{info[s]['weights']:,} w, {info[s]['batches']:,} batches]"
        out = []
        for p in points:
            r = cell.get((s, p))
            if r is None:
                out.append("")
            elif "mean" not in r:
                out.append("—" if r.get("note") == "no experts" else "n/a")
            else:
                out.append(f"{r['mean']:.3g} ± {r['se']:.1g}" if r["se"] else f"{r['mean']:.3g}")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def plot(name: str, curves: dict, out: Path) -> Path:
    """Mean error per step in distribution, every strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s, c in curves.items():
        style = "-" if s in LEARNERS else "--"
        label = LEARNERS.get(s, s)
        ax.plot(range(1, len(c) + 1), c.numpy(), style, label=label)
    ax.set_xlabel("inner step")
    ax.set_ylabel("mean error")
    ax.set_yscale("log")
    ax.set_title(f"{name}: error per step, in distribution")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / f"{name}_steps.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    if a.extra_families:
        import importlib

        sys.path.insert(0, str(Path.cwd()))
        try:
            extra = importlib.import_module(a.extra_families).FAMILIES
        except (ImportError, AttributeError) as e:
            p.error(f"--extra_families {a.extra_families!r}: {e}")
        families = {**FAMILIES, **extra}
    else:
        families = FAMILIES
    for flag in ("episodes", "batch"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in a.families.split(","):
        if name not in families:
            p.error(f"--families: unknown {name!r}; choose from {','.join(families)}")
        configs = Path(a.configs) if a.configs else None
        rows, extra = compare(name, Path(a.runs), a.episodes, a.batch, configs, families)
        with (out / f"{name}.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["strategy", "point", "mean", "se", "note"])
            w.writeheader()
            w.writerows(rows)
        plot(name, extra["curves"], out)
        print(table(name, rows, extra["info"], families), flush=True)
        print()


if __name__ == "__main__":
    main()
