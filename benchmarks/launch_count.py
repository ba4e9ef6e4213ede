"""Operations per inner step, eager against captured (``Execution(capture=True)``).

    python benchmarks/launch_count.py

On a GPU every eager ATen operation is at least one kernel launch, which is what a small
agent's step costs there. This counts, on the CPU (the counts do not depend on the device):

  eager ops / step   ATen operations of one training lifetime (forward + backward) and of
                     one lifetime without autograd, divided by the number of inner steps;
  compiled kernels   kernels inductor generates for the captured step (forward and backward
                     graphs together), which a GPU replays as one CUDA graph per direction;
  task ops / step    ATen operations of the task's answer, which stays eager either way;
  host reads / step  values an eager training lifetime reads back to the host per step (each
                     a device sync on a GPU); a captured lifetime reads its finite flags once.

Each setup runs in a fresh process, so the kernel count is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

T = 20


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.reads = 0  # values read back to the host (.item(), bool(t)): a sync on a GPU

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads += 1
        return func(*args, **(kwargs or {}))


def _model(setup: str, capture: bool):
    from badger_graph import BadgerModule, Execution, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import Attention, FullyConnected

    ex = Execution(capture=capture)
    if setup == "Fig. 6":
        return BadgerModule(ExpertPolicy(), FullyConnected(), GuessingGame(3), execution=ex), 256
    model = BadgerModule(
        ExpertPolicy(aggr="weighted"),
        Attention(64, 32),
        GuessingGame(3, feedback_to="all"),
        num_experts=20,
        output_ports=True,
        execution=ex,
    )
    return model, 100


def row(setup: str) -> dict:
    """The counts of one setup (run in a fresh process by :func:`main`)."""
    import torch._inductor.metrics as metrics

    torch.manual_seed(0)
    model, B = _model(setup, capture=False)
    with _CountOps() as train:
        model.lifetime(1, B).errors[-1].mean().backward()
    with torch.no_grad(), _CountOps() as infer:
        model.lifetime(1, B)
    episode, _ = model.runner.begin(1, B)
    action = torch.zeros(B, episode.num_outputs)
    with torch.no_grad(), _CountOps() as task:
        episode.step(action)
    captured, _ = _model(setup, capture=True)
    captured.load_state_dict(model.state_dict())
    metrics.reset()
    captured.lifetime(1, B).errors[-1].mean().backward()
    steps = captured.agent.runtime.steps["cpu"]
    return {
        "setup": f"{setup} (B={B}, T={T})",
        "eager ops / step, fwd+bwd": train.n / T,
        "eager ops / step, no grad": infer.n / T,
        "eager host reads / step": train.reads / T,
        "compiled kernels, fwd+bwd": metrics.generated_kernel_count,
        "task ops / step": task.n,
        "captured": steps.failed is None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--row", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.row:
        print(json.dumps(row(a.row)))
        return
    rows = []
    for setup in ("Fig. 6", "Fig. 7"):
        out = subprocess.run(
            [sys.executable, __file__, "--row", setup], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = list(rows[0])
    print(f"torch {torch.__version__}\n\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        cells = (f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
