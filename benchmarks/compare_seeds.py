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
against seconds, mean over seeds with a min–max band.

    python benchmarks/compare_seeds.py --family bandits \
        --learners badger_tuned,rnn_tuned,transformer_tuned --seeds 0,1,2 \
        [--runs badger_graph/checkpoints/compare/seeds] [--episodes 2000] [--out docs/comparison]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from compare_curves import at_seconds, read  # noqa: E402
from compare_learners import FAMILIES, NoExpertsAxis, _episodes  # noqa: E402

from badger_graph.checkpoint import safe_load  # noqa: E402
from badger_graph.cli import build_from_config  # noqa: E402
from badger_graph.errors import TaskTooWideError  # noqa: E402
from badger_graph.reproduce import mean_se  # noqa: E402

ROOT = Path(__file__).parents[1]
#: the validation column that is the family's score (``val/loss`` depends on the objective)
METRICS = {
    "bandits": "val/cumulative_regret",
    "regression": "val/mean_error",
    "sinusoid": "val/mean_error",
    "classification": "val/mean_error",
}


def _files(runs: Path, name: str) -> tuple[Path, Path | None]:
    """The checkpoint and training log of run ``name``: shipped layout or a run folder."""
    ckpt = runs / f"{name}.ckpt"
    if ckpt.is_file():
        log = runs / f"{name}.metrics.csv"
        return ckpt, log if log.is_file() else None
    logs = sorted((runs / name / "logs").glob("version_*/metrics.csv"))
    return runs / name / "checkpoints" / "last.ckpt", (logs[-1] if logs else None)


def read_log(path: Path | None, metric: str) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """:func:`compare_curves.read`, counted in batches (step + 1); nothing without a log."""
    if path is None:
        return [], {}
    val, seconds = read(path, metric)
    return [(s + 1, v) for s, v in val], {s + 1: t for s, t in seconds.items()}


def at_batches(val: list[tuple[int, float]], batches: int) -> float | None:
    """The last validation score at or before ``batches``."""
    before = [v for b, v in val if b <= batches]
    return before[-1] if before else None


def verdict(diff: float, se: float, seeds: int = 2) -> str:
    """ "better" / "worse" beyond two standard errors of the paired difference, else "level"."""
    if seeds < 2:
        return "one seed"
    if diff + 2 * se < 0:
        return "better"
    if diff - 2 * se > 0:
        return "worse"
    return "level"


def evaluate(family: str, learners: list[str], seeds: list[int], runs: Path, episodes: int,
             batch: int, versus: str | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Per-episode scores ``{(learner, seed, point): tensor [N] or None}`` and run facts."""
    fam = FAMILIES[family]
    fi = list(FAMILIES).index(family)
    scores, facts, models = {}, {}, []
    for learner in learners:
        config = ROOT / "configs" / "compare" / f"{family}_{learner}.yaml"
        for seed in seeds:
            ckpt, log = _files(runs, f"{family}_{learner}_s{seed}")
            if not ckpt.is_file():
                raise SystemExit(f"no checkpoint for {learner} seed {seed}: {ckpt}")
            model = build_from_config(str(config), str(ckpt))
            if seed == seeds[0]:
                models.append(model)
            facts[learner, seed] = {
                "batches": int(safe_load(ckpt)["global_step"]),
                "weights": sum(p.numel() for p in model.parameters()),
                "log": log,
            }
            for pi, point in enumerate(fam.points):
                judge = point.judge or fam.judge
                try:
                    errors = _episodes(model.runner, point, episodes, batch, 1000 * fi + pi, True)
                except (TaskTooWideError, NoExpertsAxis):  # a fixed-width learner
                    scores[learner, seed, point.label] = None
                    continue
                scores[learner, seed, point.label] = judge(errors["learner"])
    if versus is None:
        return scores, facts
    for pi, point in enumerate(fam.points):  # the baseline, on the same episodes
        judge = point.judge or fam.judge
        for model in models:  # the runner of a learner that can play this point
            try:
                played = _episodes(
                    model.runner, point, episodes, batch, 1000 * fi + pi, False, {versus}
                )
            except (TaskTooWideError, NoExpertsAxis):
                continue
            errors = played.get(versus)
            scores["@" + versus, point.label] = None if errors is None else judge(errors)
            break
    return scores, facts


def tables(family: str, learners: list[str], seeds: list[int], scores: dict, facts: dict,
           metric: str, versus: str | None = None, within: float = 0.03) -> str:  # fmt: skip
    points = [p.label for p in FAMILIES[family].points]
    lines = [
        f"**{family}**, {len(seeds)} training seeds — {FAMILIES[family].score}: mean over "
        "seeds ± s.e. over seeds (per-episode s.e.); per-seed means in brackets",
        "",
        "| learner | weights | batches (per seed) | " + " | ".join(points) + " |",
        "|---|---|---|" + "---|" * len(points),
    ]
    for learner in learners:
        batches = "/".join(f"{facts[learner, s]['batches']:,}" for s in seeds)
        cells = []
        for p in points:
            per = [scores[learner, s, p] for s in seeds]
            if any(v is None for v in per):
                cells.append("n/a")
                continue
            means = [float(v.mean()) for v in per]
            ep_se = sum(float(v.std()) / math.sqrt(v.numel()) for v in per) / len(per)
            m, se = mean_se(means)
            cells.append(
                f"{m:.3g} ± {se:.2g} ({ep_se:.1g}) [{', '.join(f'{x:.3g}' for x in means)}]"
            )
        weights = facts[learner, seeds[0]]["weights"]
        lines.append(f"| {learner} | {weights:,} | {batches} | " + " | ".join(cells) + " |")
    first = learners[0]
    lines += [
        "",
        f"Paired differences, {first} − other, same episodes, mean over seeds ± s.e. over seeds"
        " (negative: lower score for " + first + ")",
        "",
        "| other | " + " | ".join(points) + " |",
        "|---|" + "---|" * len(points),
    ]
    for other in learners[1:]:
        cells = []
        for p in points:
            pairs = [(scores[first, s, p], scores[other, s, p]) for s in seeds]
            if any(a is None or b is None for a, b in pairs):
                cells.append("n/a")
                continue
            d, se = mean_se([float((a - b).mean()) for a, b in pairs])
            cells.append(f"{d:+.3g} ± {se:.2g} ({verdict(d, se, len(seeds))})")
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    if versus is not None:
        lines += [
            "",
            f"Against {versus} on the same episodes: learner − {versus}, mean over seeds ± s.e. "
            f"over seeds, the gap relative to {versus}'s mean, and whether the learner is "
            f"within {within:.0%} of it (the paired difference's upper two-s.e. bound)",
            "",
            "| learner | " + " | ".join(points) + " |",
            "|---|" + "---|" * len(points),
        ]
        base_means = []
        for p in points:
            b = scores.get(("@" + versus, p))
            base_means.append("n/a" if b is None else f"{float(b.mean()):.4g}")
        lines.append(f"| {versus} (its mean) | " + " | ".join(base_means) + " |")
        for learner in learners:
            cells = []
            for p in points:
                b = scores.get(("@" + versus, p))
                per = [scores[learner, s, p] for s in seeds]
                if b is None or any(v is None for v in per):
                    cells.append("n/a")
                    continue
                d, se = mean_se([float((v - b).mean()) for v in per])
                gap = d / float(b.mean())
                ok = "within" if d + 2 * se <= within * float(b.mean()) else "not within"
                cells.append(f"{d:+.3g} ± {se:.2g} ({gap:+.1%}, {ok})")
            lines.append(f"| {learner} | " + " | ".join(cells) + " |")
    # the training logs: equal batches and the end of the budget
    logs = {k: read_log(f["log"], metric) for k, f in facts.items()}
    if all(v for v, _ in logs.values()):
        equal = min(v[-1][0] for v, _ in logs.values())
        lines += [
            "",
            f"From the training logs: {metric} on the validation episodes, mean ± s.e. over seeds",
            "",
            f"| learner | at {equal:,} batches (equal batches) | end of budget | batches "
            "| seconds |",
            "|---|---|---|---|---|",
        ]
        for learner in learners:
            eq = [at_batches(logs[learner, s][0], equal) for s in seeds]
            end = [logs[learner, s][0][-1][1] for s in seeds]
            secs = [at_seconds(logs[learner, s][0][-1][0], logs[learner, s][1]) for s in seeds]
            last = "/".join(f"{logs[learner, s][0][-1][0]:,}" for s in seeds)
            sec = "/".join(f"{x:.0f}" if x is not None else "?" for x in secs)
            (m1, s1), (m2, s2) = mean_se(eq), mean_se(end)
            lines.append(
                f"| {learner} | {m1:.4g} ± {s1:.2g} | {m2:.4g} ± {s2:.2g} | {last} | {sec} |"
            )
    return "\n".join(lines)


def plot(family: str, learners: list[str], seeds: list[int], facts: dict, metric: str,
         out: Path) -> Path:  # fmt: skip
    """Validation score against batches and seconds: mean over seeds, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, learner in enumerate(learners):
        runs = [read_log(facts[learner, s]["log"], metric) for s in seeds]
        n = min(len(v) for v, _ in runs)
        if n == 0:
            continue
        steps = [b for b, _ in runs[0][0][:n]]
        vals = torch.tensor([[v for _, v in val[:n]] for val, _ in runs])
        secs = [[at_seconds(b, sec) or float("nan") for b, _ in val[:n]] for val, sec in runs]
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
    fig.tight_layout()
    path = out / f"{family}_seeds_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="bandits", choices=list(FAMILIES))
    p.add_argument("--learners", default="badger_tuned,rnn_tuned,transformer_tuned")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument(
        "--runs", default=str(ROOT / "badger_graph" / "checkpoints" / "compare" / "seeds")
    )
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
        if not (ROOT / "configs" / "compare" / f"{a.family}_{learner}.yaml").is_file():
            p.error(f"--learners: no configs/compare/{a.family}_{learner}.yaml")
    metric = a.metric or METRICS.get(a.family, "val/loss")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    scores, facts = evaluate(a.family, learners, seeds, Path(a.runs), a.episodes, a.batch, a.versus)
    print(tables(a.family, learners, seeds, scores, facts, metric, a.versus, a.within))
    print(f"\nwrote {plot(a.family, learners, seeds, facts, metric, out)}")


if __name__ == "__main__":
    main()
