"""Comparison tables: learners and baselines of a family on the same fresh episodes.

:func:`compare_family` plays one trained run per learner (and the task's baselines) at every
point of a family; :func:`seed_scores` plays several training seeds per learner, and
:func:`seed_tables` turns them into the mean over seeds, paired differences with verdicts,
the gap to a baseline, and the training logs at equal batches.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from torch import Tensor

from badger_graph.comparison.families import (
    FAMILIES,
    LEARNERS,
    Family,
    family_of,
    play_point,
    point_key,
)
from badger_graph.comparison.runs import Run, config_of, load_run
from badger_graph.errors import NoExpertsAxisError, TaskTooWideError


@dataclasses.dataclass
class FamilyResult:
    """Rows ``{strategy, point, mean, se}`` (or ``note``), in-distribution curves, run facts."""

    rows: list[dict]
    curves: dict[str, Tensor]
    info: dict[str, dict]
    missing: list[str]


def episode_mean_se(values: Tensor) -> tuple[float, float]:
    """Mean of per-episode scores ``[N]`` and its standard error over the episodes."""
    return float(values.mean()), float(values.std()) / math.sqrt(values.numel())


def compare_family(
    name: str,
    runs: str | Path,
    episodes: int,
    batch: int,
    configs: str | Path | None = None,
    families: dict[str, Family] | None = None,
) -> FamilyResult:
    """Every learner of family ``name`` with a config and a run, and the task's baselines.

    The runs are ``<runs>/<name>_<learner>`` (shipped layout or run folder); a learner with a
    config but no run is listed in ``missing``. Every learner and baseline plays the same
    ``episodes`` fresh episodes at each point.

    Raises:
        FileNotFoundError: when no learner of the family has a run.
    """
    families = families or FAMILIES
    family = family_of(families, name)
    models: dict[str, Run] = {}
    missing = []
    for learner in LEARNERS:
        config = config_of(name, learner, configs)
        if not config.is_file():
            continue
        try:
            models[learner] = load_run(config, runs, f"{name}_{learner}")
        except FileNotFoundError as e:
            missing.append(str(e))
    if not models:
        raise FileNotFoundError(f"no run of family {name!r} under {runs}: {missing}")
    host = models.get("badger") or next(iter(models.values()))  # plays the baselines
    rows, curves = [], {}
    for pi, point in enumerate(family.points):
        key = point_key(families, name, pi)
        results = {}
        for learner, run in models.items():
            try:
                results[learner] = play_point(run.runner, point, episodes, batch, key)["learner"]
            except NoExpertsAxisError:
                rows.append({"strategy": learner, "point": point.label, "note": "no experts"})
            except TaskTooWideError:
                rows.append({"strategy": learner, "point": point.label, "note": "cannot run"})
        results.update(
            play_point(host.runner, point, episodes, batch, key, learner=False, baselines=True)
        )
        task = point.task or host.runner.task
        steps = point.steps or host.runner.inner_steps
        judge = family.judge_of(point)
        chance = judge(torch.full((steps, 1), task.chance_level()))
        rows.append({"strategy": "chance", "point": point.label, "mean": float(chance), "se": 0.0})
        for strategy, errors in results.items():
            if errors is None:
                rows.append({"strategy": strategy, "point": point.label, "note": "too large"})
                continue
            mean, se = episode_mean_se(judge(errors))
            rows.append({"strategy": strategy, "point": point.label, "mean": mean, "se": se})
            if pi == 0:
                curves[strategy] = errors.mean(1)
    info = {k: {"batches": r.batches, "weights": r.weights} for k, r in models.items()}
    return FamilyResult(rows, curves, info, missing)


def family_table(name: str, rows: list[dict], info: dict, families=None) -> str:
    """The family's markdown table: strategies × points (mean ± s.e. over episodes)."""
    family = family_of(families or FAMILIES, name)
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
