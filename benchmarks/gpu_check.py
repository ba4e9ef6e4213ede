"""Speed of badger_graph on one device, with the CPU rows of the same cases beside it.

    python benchmarks/gpu_check.py                   # CUDA if present (sizes of the GPU table)
    python benchmarks/gpu_check.py --small --device cpu   # the same code on a CPU in a minute

Rows (median of ``--reps`` synchronised repetitions):
  round      one policy round over N experts, random out-degree 8, on the path the library
             chooses (CSR; forward without autograd, forward + backward with it) and on PyG's
             gather / scatter; attention top-8 among agents of 100; 1M and 10M experts.
  draw       random out-degree 8 topology drawn on the device (the state's generator).
  lifetime   20-step lifetime of 1M experts without autograd, random out-degree 8 rebuilt
             every step.
  train      training batch (forward + backward + Adam) of the Fig. 6 config (B = 256 and
             4,096) and of the Fig. 7 setup (20 experts + 3 output ports, attention; B = 100
             and 1,000), on the device and, for B = 256 / 100, on the CPU in the same run;
             eagerly and with ``Execution(capture=True)`` (each inner step one compiled
             graph, replayed as a CUDA graph on a GPU; first batch = compile time).

Prints a markdown table and writes ``gpu_check.csv`` (and one JSON line per row) to ``--out``.
A row that fails prints its error and the run goes on: a failure is a finding.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from badger_graph.timing import once, timeit


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def round_row(device, n: int, topo: str, path: str, backward: bool, reps: int) -> dict:
    """One policy round over ``n`` experts; edges and CSR built outside the timing."""
    from badger_graph import ExpertGraph, ExpertPolicy
    from badger_graph.adjacency import CSRAdjacency
    from badger_graph.topologies import Attention, RandomOutDegree

    torch.manual_seed(0)
    policy = ExpertPolicy(64, 64, 32, 8, aggr="weighted" if topo == "attn" else "mean").to(device)
    size = n if topo == "rand" else 100
    state = ExpertGraph.create([size] * max(1, n // size), 1, 64, 8, device=device)
    state = state.replace(h=torch.randn(state.num_nodes, 64, device=device))
    topology = RandomOutDegree(8, seed=0) if topo == "rand" else Attention(64, 32, top_k=8)
    topology = topology.to(device)
    with torch.no_grad():
        edge_index, w = topology(state)
    adj = CSRAdjacency.from_edge_index(edge_index, state.num_nodes) if path == "csr" else edge_index
    u = torch.randn(state.num_nodes, 32, device=device)
    h = state.h.requires_grad_(backward)

    def run():
        with torch.set_grad_enabled(backward):
            out = policy(h, u, adj, w)
        if backward:
            out.sum().backward()

    _peak_reset(device)
    t = timeit(run, device, reps)
    return {
        "row": f"round {topo}-8 {path} {'fwd+bwd' if backward else 'fwd'}",
        "device": str(device),
        "N": state.num_nodes,
        "E": edge_index.size(1),
        "seconds": t,
        "peak_mb": _peak_mb(device),
    }


def draw_row(device, n: int, reps: int) -> dict:
    """Random out-degree 8 over one agent of ``n`` experts, drawn where the state lives."""
    from badger_graph import ExpertGraph
    from badger_graph.topologies import RandomOutDegree

    state = ExpertGraph.create([n], 1, 64, 8, device=device)
    topology = RandomOutDegree(8, seed=0)
    with torch.no_grad():
        edge_index, _ = topology(state)
        t = timeit(lambda: topology(state), device, reps)
    return {
        "row": "draw random out-degree 8",
        "device": str(device),
        "N": n,
        "E": edge_index.size(1),
        "seconds": t,
        "edges_on": str(edge_index.device),
    }


def lifetime_row(device, n: int, T: int, reps: int) -> dict:
    """A lifetime of one agent of ``n`` experts without autograd, topology new every step."""
    from badger_graph import BadgerModule, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import RandomOutDegree

    model = BadgerModule(
        ExpertPolicy(), RandomOutDegree(8, seed=0), GuessingGame(3), num_experts=n, inner_steps=T
    ).to(device)
    with torch.no_grad():
        t = timeit(lambda: model.lifetime(1, 1), device, reps)
    return {"row": f"lifetime T={T}, no grad", "device": str(device), "N": n, "seconds": t}


def _fig6(capture: bool):
    from badger_graph import BadgerModule, Execution, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    ex = Execution(capture=capture)
    return BadgerModule(ExpertPolicy(), FullyConnected(), GuessingGame(3), execution=ex)


def _fig7(capture: bool):
    from badger_graph import BadgerModule, Execution, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import Attention

    return BadgerModule(
        ExpertPolicy(aggr="weighted"),
        Attention(64, 32),
        GuessingGame(3, feedback_to="all"),
        num_experts=20,
        output_ports=True,
        execution=Execution(capture=capture),
    )


def train_row(device, name: str, B: int, reps: int, capture: bool = False) -> dict:
    """Training batch: lifetime, backward through it, Adam step.

    With ``capture`` every inner step is one compiled graph (CUDA graphs on a GPU); the
    first batch (compile) is reported apart, and three warm-up batches let PyTorch's
    CUDA-graph trees record before the timing.
    """
    torch.manual_seed(0)
    model = (_fig6 if name == "Fig. 6" else _fig7)(capture).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    seeds = iter(range(10**6))

    def step():
        loss = model.lifetime(next(seeds), B).errors[-1].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    first = None
    if capture:
        _, first = once(step, device)
    t = timeit(step, device, reps, warmup=3 if capture else 1)
    row = {"row": f"train {name}" + (" captured" if capture else ""), "device": str(device)}
    row.update({"B": B, "seconds": t})
    if capture:
        row["first_batch_s"] = first
        failed = [c.failed for c in model.agent.runtime.steps.values()]
        row["captured"] = not any(failed) and bool(failed)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true", help="sizes / 100: a smoke run")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results")
    a = p.parse_args()
    device = torch.device(a.device)
    cpu = torch.device("cpu")
    s = 100 if a.small else 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name}), {torch.get_num_threads()} threads")
    cases = [
        (round_row, device, 1_000_000 // s, "rand", "csr", False, a.reps),
        (round_row, device, 1_000_000 // s, "rand", "edges", False, a.reps),
        (round_row, device, 1_000_000 // s, "rand", "csr", True, a.reps),
        (round_row, device, 1_000_000 // s, "attn", "csr", False, a.reps),
        (round_row, device, 10_000_000 // s, "rand", "csr", False, a.reps),
        (round_row, device, 10_000_000 // s, "rand", "edges", False, a.reps),
        (draw_row, device, 1_000_000 // s, a.reps),
        (draw_row, device, 10_000_000 // s, a.reps),
        (lifetime_row, device, 1_000_000 // s, 20, max(2, a.reps // 2)),
        (train_row, device, "Fig. 6", 256, a.reps),
        (train_row, cpu, "Fig. 6", 256, a.reps),
        (train_row, device, "Fig. 6", 4096 // (16 if a.small else 1), a.reps),
        (train_row, device, "Fig. 7", 100, a.reps),
        (train_row, cpu, "Fig. 7", 100, a.reps),
        (train_row, device, "Fig. 7", 1000 // (10 if a.small else 1), a.reps),
        (train_row, device, "Fig. 6", 256, a.reps, True),
        (train_row, cpu, "Fig. 6", 256, a.reps, True),
        (train_row, device, "Fig. 6", 4096 // (16 if a.small else 1), a.reps, True),
        (train_row, device, "Fig. 7", 100, a.reps, True),
        (train_row, cpu, "Fig. 7", 100, a.reps, True),
        (train_row, device, "Fig. 7", 1000 // (10 if a.small else 1), a.reps, True),
    ]
    seen, rows = set(), []
    for fn, *args in cases:
        if (fn, *args) in seen:  # a CPU row when the device is the CPU
            continue
        seen.add((fn, *args))
        try:
            row = fn(*args)
        except Exception as e:  # noqa: BLE001 - a failing row is reported, not fatal
            row = {"row": f"{fn.__name__}{tuple(args[1:])}", "device": str(args[0])}
            row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        cells = [r.get(k, "") for k in keys]
        text = (f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells)
        print("| " + " | ".join(text) + " |")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "gpu_check.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
