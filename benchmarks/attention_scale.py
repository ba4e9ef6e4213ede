"""Error vs number of experts of an attention Fig. 7 model under other score scales.

Evaluation only (the weights are the trained ones): the scores of a model trained with
``log_scale`` are scaled by log n (as trained), or by the log of a fixed size (the 20
experts + 3 ports of validation) for every n, to see whether the growing sharpness is what
hurts beyond the trained range.

    python benchmarks/attention_scale.py --ckpt runs/fig7_attention/checkpoints/best.ckpt
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from badger_graph.cli import build_from_config
from badger_graph.evaluation import final_error
from badger_graph.seeds import episode_seed

ROOT = Path(__file__).parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "configs" / "fig7_attention.yaml"))
    p.add_argument("--ckpt", required=True)
    p.add_argument("--experts", default="5,20,40,80,200,500")
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--fixed_size", type=int, default=23)
    a = p.parse_args()
    model = build_from_config(a.config, a.ckpt)
    topology = model.agent.topology
    trained = topology._scale
    fixed = 1.0 / math.sqrt(topology.key_channels) * math.log(a.fixed_size)
    variants = {
        "log n (as trained)": trained,
        f"log {a.fixed_size} for every n": lambda size: fixed,
    }
    experts = [int(x) for x in a.experts.split(",")]
    print(f"| scores scaled by | {' | '.join(str(n) for n in experts)} experts |")
    print(f"|---|{'---|' * len(experts)}")
    for name, scale in variants.items():
        topology._scale = scale
        errors = [
            final_error(model.runner, 3, n, a.episodes, episode_seed("sweep", 77)) for n in experts
        ]
        print(f"| {name} | {' | '.join(f'{e:.4f}' for e in errors)} |")


if __name__ == "__main__":
    main()
