"""The state axis: score against the size of a learner's state, at a fixed weight count.

BADGER's state grows with its experts (experts × hidden numbers) while its weights do not;
a GRU's state is its hidden vector (its weights grow with its square); a Transformer's state
is its context (steps × width). Here every learner of a family plays the same fresh
episodes in distribution; BADGER at several expert counts, the monolithic learners at
their one size: at BADGER's weights, and GRUs as wide as 5 and 10 experts' states (their
weights grow with the square of the state).

    python benchmarks/state_axis.py [--family bandits] [--experts 5,10,20,40,80]
        [--episodes 2000] [--runs badger_graph/checkpoints/compare] [--out docs/comparison]

Prints a markdown table (learner, experts, state numbers, weights, score mean ± s.e., and
the paired difference to the learner's first row: the same episodes, so a "no worse with
more experts" verdict rests on it) and
writes ``<out>/<family>_state.png`` (score against state size).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from badger_graph.comparison.runs import config_of, load_run
from badger_graph.comparison.tables import episode_mean_se
from badger_graph.evaluation import play
from badger_graph.learner import StepwiseLearner

ROOT = Path(__file__).parents[1]
SCORES = {
    "bandits": ("cumulative regret", lambda e: e.sum(0)),
    "classification": ("mean cross-entropy / log c", lambda e: e.mean(0)),
}
LEARNERS = {
    "badger_experts": "BADGER, random identities, trained on 5..40 experts",
    "badger": "BADGER, trained on {n} experts",
    "rnn": "monolithic (RL2)",
    "transformer": "Transformer (in-context)",
    "rnn_state320": "RL2 at the state of 5 experts (GRU 320, tuned settings)",
    "rnn_state640": "RL2 at the state of 10 experts (GRU 640, tuned settings)",
}


def _model(runs: Path, family: str, learner: str):
    config = config_of(family, learner)
    if not config.is_file():
        return None, None
    try:
        run = load_run(config, runs, f"{family}_{learner}")
    except FileNotFoundError:
        return None, None
    return run.model, run.batches


def _state_size(model, experts: int, steps: int) -> int:
    agent = model.agent
    if isinstance(agent, StepwiseLearner):
        if hasattr(agent, "hidden_channels"):
            return agent.hidden_channels
        return steps * agent.width  # the context at the end of the lifetime
    return experts * agent.policy.hidden_channels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="bandits", choices=sorted(SCORES))
    p.add_argument("--experts", default="5,10,20,40,80")
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--runs", default=str(ROOT / "badger_graph" / "checkpoints" / "compare"))
    p.add_argument("--out", default=str(ROOT / "docs" / "comparison"))
    a = p.parse_args()
    for flag in ("episodes", "batch"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    experts = [int(x) for x in a.experts.split(",")]
    score_name, judge = SCORES[a.family]
    rows = []
    for learner, label in LEARNERS.items():
        model, batches = _model(Path(a.runs), a.family, learner)
        if model is None:
            print(f"{learner}: no model, left out")
            continue
        runner = model.runner
        label = label.format(n=runner.num_experts)
        weights = sum(q.numel() for q in model.parameters())
        counts = experts if not isinstance(model.agent, StepwiseLearner) else [runner.num_experts]
        for n in counts:
            errors = play(runner, a.episodes, a.batch, key=(90_000,), num_experts=n)
            s = judge(errors["learner"])
            first = next((r["scores"] for r in rows if r["learner"] == label), s)
            diff = s - first  # the same episodes: paired
            mean, se = episode_mean_se(s)
            rows.append(
                {
                    "learner": label,
                    "experts": n if not isinstance(model.agent, StepwiseLearner) else "—",
                    "state": _state_size(model, n, runner.inner_steps),
                    "weights": weights,
                    "batches": batches,
                    "mean": mean,
                    "se": se,
                    "scores": s,
                    "paired": episode_mean_se(diff),
                }
            )
    print(f"**{a.family}** — {score_name}, in distribution, {a.episodes} fresh episodes")
    print()
    print(
        "| learner | experts | state (numbers) | weights | batches trained | score | "
        "paired difference to its first row |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        d, e = r["paired"]
        print(
            f"| {r['learner']} | {r['experts']} | {r['state']:,} | {r['weights']:,} | "
            f"{r['batches']:,} | {r['mean']:.3f} ± {r['se']:.2g} | {d:+.3f} ± {e:.3f} |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label in dict.fromkeys(r["learner"] for r in rows):
        pts = [r for r in rows if r["learner"] == label]
        ax.errorbar(
            [r["state"] for r in pts],
            [r["mean"] for r in pts],
            yerr=[r["se"] for r in pts],
            marker="o",
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("state size (numbers per agent)")
    ax.set_ylabel(score_name)
    ax.set_title(f"{a.family}: score against state size at ~equal weights")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{a.family}_state.png", dpi=120)
    print(f"\nwrote {out / f'{a.family}_state.png'}")


if __name__ == "__main__":
    main()
