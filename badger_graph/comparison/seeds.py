"""Learned learners over several training seeds: fresh episodes, paired differences, logs.

Every seed of every learner plays the same fresh episodes at a family's points
(:func:`seed_scores`). :func:`seed_tables` gives the mean over seeds ± its standard error
over seeds (the training-seed spread) with the per-episode standard error beside it; paired
differences of the first learner with each other one (per seed the mean over episodes of
the score difference, then mean ± s.e. over seeds; "better" / "worse" beyond two standard
errors, else "level"); the gap to a baseline; and from the training logs each learner's
validation score at equal batches and at the end of its budget.
"""

from __future__ import annotations

from pathlib import Path

from badger_graph.comparison.families import FAMILIES, Family, family_of, play_point, point_key
from badger_graph.comparison.runs import (
    Run,
    at_batches,
    at_seconds,
    config_of,
    load_run,
    read_batches,
)
from badger_graph.comparison.tables import episode_mean_se
from badger_graph.errors import NoExpertsAxisError, TaskTooWideError
from badger_graph.reproduce import mean_se

NOT_PLAYED = (TaskTooWideError, NoExpertsAxisError)


def verdict(diff: float, se: float, seeds: int = 2) -> str:
    """The verdict of a paired difference: better / worse beyond two standard errors, else level."""
    if seeds < 2:
        return "one seed"
    if diff + 2 * se < 0:
        return "better"
    if diff - 2 * se > 0:
        return "worse"
    return "level"


def seed_scores(
    family: str,
    learners: list[str],
    seeds: list[int],
    runs: str | Path,
    episodes: int,
    batch: int,
    versus: str | None = None,
    configs: str | Path | None = None,
    families: dict[str, Family] | None = None,
) -> tuple[dict, dict[tuple[str, int], Run]]:
    """Per-episode scores of every seed of every learner, on the same episodes per point.

    Returns ``{(learner, seed, point label): tensor [N] or None}`` (None: the learner cannot
    play the point), with ``{("@" + versus, point label): ...}`` for the baseline ``versus``,
    and the runs ``{(learner, seed): Run}`` (``<runs>/<family>_<learner>_s<seed>``).

    Raises:
        FileNotFoundError: naming the checkpoint of a seed that has none.
    """
    families = families or FAMILIES
    fam = family_of(families, family)
    scores, facts, hosts = {}, {}, []
    for learner in learners:
        config = config_of(family, learner, configs)
        for seed in seeds:
            run = load_run(config, runs, f"{family}_{learner}_s{seed}")
            if seed == seeds[0]:
                hosts.append(run)
            facts[learner, seed] = run
            for pi, point in enumerate(fam.points):
                key = point_key(families, family, pi)
                try:
                    errors = play_point(run.runner, point, episodes, batch, key)["learner"]
                except NOT_PLAYED:  # a fixed-width learner
                    scores[learner, seed, point.label] = None
                    continue
                scores[learner, seed, point.label] = fam.judge_of(point)(errors)
    if versus is None:
        return scores, facts
    for pi, point in enumerate(fam.points):  # the baseline, on the same episodes
        key = point_key(families, family, pi)
        for run in hosts:  # the runner of a learner that can play this point
            try:
                played = play_point(run.runner, point, episodes, batch, key, False, {versus})
            except NOT_PLAYED:
                continue
            errors = played.get(versus)
            judged = None if errors is None else fam.judge_of(point)(errors)
            scores["@" + versus, point.label] = judged
            break
    return scores, facts


def seed_tables(
    family: str,
    learners: list[str],
    seeds: list[int],
    scores: dict,
    runs: dict[tuple[str, int], Run],
    metric: str,
    versus: str | None = None,
    within: float = 0.03,
    families: dict[str, Family] | None = None,
) -> str:
    """The markdown tables of :func:`seed_scores`'s scores and runs (see the module)."""
    fam = family_of(families or FAMILIES, family)
    points = [p.label for p in fam.points]
    lines = [
        f"**{family}**, {len(seeds)} training seeds — {fam.score}: mean over "
        "seeds ± s.e. over seeds (per-episode s.e.); per-seed means in brackets",
        "",
        "| learner | weights | batches (per seed) | " + " | ".join(points) + " |",
        "|---|---|---|" + "---|" * len(points),
    ]
    for learner in learners:
        batches = "/".join(f"{runs[learner, s].batches:,}" for s in seeds)
        cells = []
        for p in points:
            per = [scores[learner, s, p] for s in seeds]
            if any(v is None for v in per):
                cells.append("n/a")
                continue
            means = [float(v.mean()) for v in per]
            ep_se = sum(episode_mean_se(v)[1] for v in per) / len(per)
            m, se = mean_se(means)
            cells.append(
                f"{m:.3g} ± {se:.2g} ({ep_se:.1g}) [{', '.join(f'{x:.3g}' for x in means)}]"
            )
        weights = runs[learner, seeds[0]].weights
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
        lines += _versus_table(learners, seeds, scores, points, versus, within)
    lines += _log_table(learners, seeds, runs, metric)
    return "\n".join(lines)


def _versus_table(learners, seeds, scores, points, versus: str, within: float) -> list[str]:
    """Each learner − the baseline ``versus`` on the same episodes, and "within" verdicts."""
    lines = [
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
    return lines


def _log_table(learners, seeds, runs, metric: str) -> list[str]:
    """From the training logs: the validation score at equal batches and at the end."""
    logs = {k: read_batches(run.log, metric) for k, run in runs.items()}
    if not all(v for v, _ in logs.values()):
        return []
    equal = min(v[-1][0] for v, _ in logs.values())
    lines = [
        "",
        f"From the training logs: {metric} on the validation episodes, mean ± s.e. over seeds",
        "",
        f"| learner | at {equal:,} batches (equal batches) | end of budget | batches | seconds |",
        "|---|---|---|---|---|",
    ]
    for learner in learners:
        eq = [at_batches(logs[learner, s][0], equal) for s in seeds]
        end = [logs[learner, s][0][-1][1] for s in seeds]
        secs = [at_seconds(logs[learner, s][0][-1][0], logs[learner, s][1]) for s in seeds]
        last = "/".join(f"{logs[learner, s][0][-1][0]:,}" for s in seeds)
        sec = "/".join(f"{x:.0f}" if x is not None else "?" for x in secs)
        (m1, s1), (m2, s2) = mean_se(eq), mean_se(end)
        lines.append(f"| {learner} | {m1:.4g} ± {s1:.2g} | {m2:.4g} ± {s2:.2g} | {last} | {sec} |")
    return lines
