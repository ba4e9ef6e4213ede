"""Fig. 6 training batch: the library against a plain dense PyTorch prototype, interleaved.

    python benchmarks/fig6_vs_prototype.py [--rounds 10]

Both train the same model (3 experts, GRU 64, B = 256, T = 20, Adam). They are timed in
alternating 1-second slices, so slow phases of a shared VM hit both alike; the table gives
the median seconds per batch and the ratio library / prototype.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from dense_reference import DenseFig6  # noqa: E402

from badger_graph import BadgerModule, ExpertPolicy  # noqa: E402
from badger_graph.tasks import GuessingGame  # noqa: E402
from badger_graph.timing import per_call  # noqa: E402
from badger_graph.topologies import FullyConnected  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    a = p.parse_args()
    torch.manual_seed(0)
    lib = BadgerModule(ExpertPolicy(), FullyConnected(), GuessingGame(3))
    lib_opt = torch.optim.Adam(lib.parameters(), 1e-3)
    proto = DenseFig6()
    proto_opt = torch.optim.Adam(proto.parameters(), 1e-3)
    seeds = iter(range(10**9))
    gen = torch.Generator().manual_seed(0)

    def lib_step() -> None:
        loss = lib.lifetime(next(seeds), 256).errors[-1].mean()
        lib_opt.zero_grad()
        loss.backward()
        lib_opt.step()

    def proto_step() -> None:
        target = torch.rand(256, 3, generator=gen) * 2 - 1
        loss = proto(target)[-1].mean()
        proto_opt.zero_grad()
        loss.backward()
        proto_opt.step()

    # each rival in turn: one-second slices of as many batches as fit, per-batch seconds
    times = {"badger_graph (dense path)": [], "plain dense PyTorch prototype": []}
    for fn in (lib_step, proto_step):
        fn()  # warm-up
    for _ in range(a.rounds):
        for name, fn in zip(times, (lib_step, proto_step), strict=True):
            times[name].append(per_call(fn, 1.0))
    med = {k: statistics.median(v) for k, v in times.items()}
    print("| implementation | median s / batch | min | max |")
    print("|---|---|---|---|")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.4f} | {min(v):.4f} | {max(v):.4f} |")
    ratio = med["badger_graph (dense path)"] / med["plain dense PyTorch prototype"]
    print(f"\nlibrary / prototype: {ratio:.2f}x ({a.rounds} interleaved 1-second slices each)")


if __name__ == "__main__":
    main()
