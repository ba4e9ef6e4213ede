"""Trained agents against their task's baselines on the same fresh episodes.

For every task family (one config each) the agent trained by that config and each of the
task's baselines play the same episodes (drawn from seeds training never used: purpose
"compare"); prints one table row per family and strategy. Needs the checkpoints
``runs/<config>/checkpoints/best.ckpt`` (``--runs`` to look elsewhere; the shipped models:
``--runs badger_graph/checkpoints/tasks``, files ``<config>.ckpt``).

    python benchmarks/task_baselines.py [--episodes 2000] [--families regression,bandits]
    python benchmarks/task_baselines.py --families regression --inputs 1,2,3,4,6,8,10
    python benchmarks/task_baselines.py --plot docs/task_curves   # error per step, per family

``--inputs`` also evaluates the regression agent with m = each value (trained with 2..4).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from types import SimpleNamespace

import torch

from badger_graph.cli import build_from_config
from badger_graph.seeds import episode_seed
from badger_graph.tasks.moving_target import after_jump_error

ROOT = Path(__file__).parents[1]
FAMILIES = {
    "moving_target": "task_moving_target",
    "optimization": "task_optimization",
    "bandits": "task_bandits",
    "regression": "task_regression",
    "classification": "task_classification",
}
#: the number each family is judged by: (name, function of the errors [T, B] and, for the
#: moving target, the jump steps [B])
SCORES = {
    "moving_target": (
        "error in the 5 steps after the jump",
        lambda e, jump: after_jump_error(
            SimpleNamespace(errors=e, episode=SimpleNamespace(jump=jump))
        ),
    ),
    "optimization": ("final error f(x_T)", lambda e, jump: e[-1].mean()),
    "bandits": ("cumulative regret over T", lambda e, jump: e.sum(0).mean()),
    "regression": ("error after 10 observations", lambda e, jump: e[10].mean()),
    "classification": ("mean cross-entropy / log c", lambda e, jump: e.mean()),
}


def checkpoint(runs: Path, config: str) -> Path:
    """A training run's ``best.ckpt`` under ``runs``, else the shipped ``<config>.ckpt``."""
    trained = runs / config / "checkpoints" / "best.ckpt"
    return trained if trained.is_file() else runs / f"{config}.ckpt"


def compare(
    family: str,
    runs: Path,
    episodes: int,
    batch: int = 500,
    config: str | None = None,
    ckpt: str | None = None,
) -> list[dict]:
    """Rows (strategy, score, final error, mean error) of one family.

    A family of :data:`FAMILIES` by name, or any other by its ``config`` and ``ckpt``
    (scored by the mean error over the lifetime unless it is in :data:`SCORES`).
    """
    if config is None:
        config = ROOT / "configs" / f"{FAMILIES[family]}.yaml"
        ckpt = checkpoint(runs, FAMILIES[family])
    model = build_from_config(str(config), str(ckpt))
    runner = model.runner
    errors: dict[str, list] = {"agent": []}
    jumps = []
    with torch.no_grad():
        for i in range(math.ceil(episodes / batch)):
            seed = episode_seed("compare", i)
            life = runner.run(seed, batch)
            errors["agent"].append(life.errors.cpu())
            if family == "moving_target":
                jumps.append(life.episode.jump.cpu())
            for name, e in runner.baselines(seed, batch).items():
                if e is not None:  # None: the task cannot compute it here
                    errors.setdefault(name, []).append(e)
    rows = []
    label, score = SCORES.get(family, ("mean error over the lifetime", lambda e, jump: e.mean()))
    for name, parts in errors.items():
        e = torch.cat(parts, 1)
        value = score(e, torch.cat(jumps) if jumps else None)
        rows.append(
            {
                "family": family,
                "strategy": name,
                "score": label,
                "value": float(value),
                "final_error": float(e[-1].mean()),
                "mean_error": float(e.mean()),
                "curve": e.mean(1).tolist(),  # mean error per inner step
            }
        )
    return rows


def regression_inputs(runs: Path, inputs: list[int], episodes: int) -> list[dict]:
    """The regression agent (trained with m = 2..4) and RLS at each m."""
    from badger_graph.tasks import OnlineRegression

    config = ROOT / "configs" / f"{FAMILIES['regression']}.yaml"
    model = build_from_config(str(config), str(checkpoint(runs, FAMILIES["regression"])))
    trained = model.runner
    task = trained.task
    rows = []
    for m in inputs:
        runner = trained.replace(
            task=OnlineRegression(
                m, noise=task.noise, feedback=task.feedback, feedback_to=task.feedback_to
            )
        )
        with torch.no_grad():
            seed = episode_seed("compare", 10_000 + m)
            agent = runner.run(seed, episodes).errors
            base = runner.baselines(seed, episodes)
        rows.append(
            {
                "m": m,
                "agent_step10": float(agent[10].mean()),
                "rls_step10": float(base["rls"][10].mean()),
                "lms_step10": float(base["lms"][10].mean()),
                "nlms_step10": float(base["nlms"][10].mean()),
                "agent_final": float(agent[-1].mean()),
                "rls_final": float(base["rls"][-1].mean()),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--families", default=None, help="(default: all, and every --family)")
    p.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="NAME=CONFIG:CKPT",
        help="another family: the config that trained its agent and the checkpoint",
    )
    p.add_argument("--runs", default=str(ROOT / "runs"))
    p.add_argument("--inputs", default=None, help="m values for the regression agent")
    p.add_argument("--plot", default=None, help="folder for one error-per-step plot per family")
    a = p.parse_args()
    extra = {}
    for spec in a.family:
        name, sep, rest = spec.partition("=")
        config, sep2, ckpt = rest.rpartition(":")
        if not (sep and sep2 and name and config and ckpt):
            p.error(f"--family must look like NAME=CONFIG:CKPT, got {spec!r}")
        extra[name] = (config, ckpt)
    families = [f for f in (a.families or ",".join([*FAMILIES, *extra])).split(",") if f]
    bad = [f for f in families if f not in FAMILIES and f not in extra]
    if bad:
        p.error(f"unknown families {bad}; choose from {sorted([*FAMILIES, *extra])}")
    if a.episodes < 1:
        p.error(f"--episodes must be >= 1, got {a.episodes}")
    print(f"{a.episodes} fresh episodes per family (seeds 'compare'), T from each config")
    print("| family | strategy | score | value | final error | mean error |")
    print("|---|---|---|---|---|---|")
    for family in families:
        rows = compare(family, Path(a.runs), a.episodes, 500, *extra.get(family, (None, None)))
        if a.plot:
            from badger_graph.plots import plot_curves

            curves = [{"label": r["strategy"], "errors": r["curve"]} for r in rows]
            plot_curves(curves, Path(a.plot) / f"{family}.png", title=family)
        for r in rows:
            print(
                f"| {r['family']} | {r['strategy']} | {r['score']} | {r['value']:.4f} | "
                f"{r['final_error']:.4f} | {r['mean_error']:.4f} |"
            )
    if a.inputs:
        ms = [int(x) for x in a.inputs.split(",")]
        print(
            "\n| m | agent, step 10 | RLS, step 10 | NLMS, step 10 | LMS, step 10 | agent, step 20 "
            "| RLS, step 20 |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in regression_inputs(Path(a.runs), ms, a.episodes):
            print(
                f"| {r['m']} | {r['agent_step10']:.4f} | {r['rls_step10']:.4f} | "
                f"{r['nlms_step10']:.4f} | {r['lms_step10']:.4f} | {r['agent_final']:.4f} | "
                f"{r['rls_final']:.4f} |"
            )


if __name__ == "__main__":
    main()
