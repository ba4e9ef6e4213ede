"""Copy trained checkpoints into the package, weights only (no optimizer or loop state).

    python benchmarks/ship.py runs/datasets badger_graph/checkpoints/datasets NAME [NAME ...]
    python benchmarks/ship.py --best runs badger_graph/checkpoints/tasks NAME [NAME ...]

takes ``<runs>/<NAME>/checkpoints/last.ckpt`` (``--best``: ``best.ckpt``, the checkpoint
with the best validation error) for every NAME and writes
``<out>/<NAME>.ckpt`` with the weights, the hyperparameters and the training counters
(what ``badger test``, ``badger matrix`` and the benchmarks read), about a tenth of the size,
and the run's training log beside it as ``<out>/<NAME>.metrics.csv`` (every logged row of
every version of the run, in order), from which its learning curves are drawn.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from badger_graph.checkpoint import safe_load

KEEP = (
    "state_dict",
    "hyper_parameters",
    "global_step",
    "epoch",
    "pytorch-lightning_version",
    "badger_graph_version",
    "badger_graph_format",
    "badger_graph_train_batches",
    "badger_graph_skipped_batches",
    "badger_graph_unstepped_batches",
)


def main(argv: list[str]) -> None:
    which = "best" if argv[:1] == ["--best"] else "last"
    argv = argv[1:] if which == "best" else argv
    if len(argv) < 3:
        raise SystemExit(__doc__)
    runs, out, names = Path(argv[0]), Path(argv[1]), argv[2:]
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = runs / name / "checkpoints" / f"{which}.ckpt"
        ckpt = safe_load(src)
        slim = {k: ckpt[k] for k in KEEP if k in ckpt}
        torch.save(slim, out / f"{name}.ckpt")
        size = (out / f"{name}.ckpt").stat().st_size
        logs = sorted((runs / name / "logs").glob("version_*/metrics.csv"))
        if logs:
            header, rows = None, []
            for log in logs:
                lines = log.read_text().splitlines()
                header = header or lines[0]
                rows += lines[1:] if lines[0] == header else []
            (out / f"{name}.metrics.csv").write_text("\n".join([header, *rows]) + "\n")
        print(f"{name}: {ckpt['global_step']:,} batches, {size / 1024:.0f} kB, {len(logs)} logs")


if __name__ == "__main__":
    main(sys.argv[1:])
