"""The exact Bayes-optimal expected regret of Bernoulli bandits (uniform arm means).

The dynamic programme over Beta posteriors (``tasks.bandits._BetaBernoulliDP``) gives the
largest expected total reward V*(k, T); the expected regret of the Bayes-optimal policy is
then T * k / (k + 1) - V*(k, T) (E[max of k uniforms] = k / (k + 1)), exactly, with no
Monte-Carlo error. The comparison's gaps to the optimum are measured against this value.

    python benchmarks/bandit_optimum.py [--arms 3,4,5] [--steps 10,20]
"""

from __future__ import annotations

import argparse
import time

from badger_graph.tasks.bandits import _BetaBernoulliDP


def exact_regret(k: int, steps: int) -> float:
    """The Bayes-optimal expected cumulative regret of ``k`` arms over ``steps`` pulls."""
    dp = _BetaBernoulliDP()
    return steps * k / (k + 1) - dp.value(tuple((0, 0) for _ in range(k)), steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arms", default="3,4,5")
    p.add_argument("--steps", default="20")
    a = p.parse_args()
    arms = [int(x) for x in a.arms.split(",")]
    print("| k | T | exact Bayes-optimal regret | seconds |")
    print("|---|---|---|---|")
    for steps in (int(x) for x in a.steps.split(",")):
        values = []
        for k in arms:
            start = time.perf_counter()
            values.append(exact_regret(k, steps))
            print(f"| {k} | {steps} | {values[-1]:.5f} | {time.perf_counter() - start:.1f} |")
        mean = sum(values) / len(values)
        print(f"| uniform over {a.arms} | {steps} | {mean:.5f} | |")


if __name__ == "__main__":
    main()
