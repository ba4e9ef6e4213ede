"""Speed and memory of badger_graph, printed as tables and written as CSV.

    python benchmarks/speed.py                  # full run (N up to 1M; a few minutes)
    python benchmarks/speed.py --quick          # seconds; a smoke test
    python benchmarks/speed.py --device cuda    # the same rows on a GPU (+ 10M experts)

Sections (each timed in this one run, so ratios compare like with like):
  policy   one round of the shared policy over N experts (hidden 64), random out-degree 8
           (one agent) and attention top-8 (agents of 100), forward and forward+backward,
           GFLOP/s next to a dense matmul of the same FLOPs, and peak memory (a fresh
           subprocess per row: ru_maxrss above the process' baseline).
  train    training batches per second (forward + backward + Adam) for the Fig. 6 config,
           a plain dense PyTorch prototype of it, and the Fig. 7 setup (B=100, 20 experts +
           3 output ports, attention, 20 steps, hidden 64, key 32).
  lifetime cost vs lifetime length T with full backprop and truncated BPTT.
  load     Fig. 6 training batch with 1, 2 and auto threads, on an idle machine and with a
           second process keeping one core busy.
  topologies  training batch of 8-expert agents: fully connected, random out-degree 3,
           learned attention top-3 and softmax over all (each rebuilt every step).
  eval     evaluation of fully connected agents of 500 experts (the shipped Fig. 7
           checkpoint, d = 3, 20 steps): episodes per second on the dense and the sparse
           path, and a held-out sweep (d 21, 25, 30 x 20, 300, 500 experts, 500 episodes).

With ``--device cuda`` every timing is synchronised, peak memory is the device's
(``torch.cuda.max_memory_allocated``), the policy table adds 10M experts, and ``load``
(CPU threads) is left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from badger_graph.timing import PeakMemory, once, timeit  # noqa: E402

HIDDEN = 64


def _matmul_gflops(flops: float, device: torch.device) -> float:
    """GFLOP/s of a square fp32 matmul doing about ``flops`` work (the machine's limit)."""
    n = max(64, min(4096 if device.type == "cpu" else 16384, round((flops / 2) ** (1 / 3))))
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t = timeit(lambda: a @ b, device, reps=2, min_time=0.3)
    return 2 * n**3 / t / 1e9


def _policy_flops(policy, n_nodes: int, n_edges: int) -> float:
    H, M, inp = policy.hidden_channels, policy.message_channels, policy.input_channels
    lin_send = 2 * n_nodes * H * M
    gru = 2 * n_nodes * 3 * H * (inp + M + H)
    aggregate = n_edges * M
    return lin_send + gru + aggregate


def policy_row(
    n: int, topo_name: str, backward: bool, path: str = "csr", device: str = "cpu"
) -> dict:
    """One policy round (topology built once, outside the timing) over n experts.

    ``path``: ``"csr"`` (sparse-matrix aggregation, CSR built outside the timing like the
    edges) or ``"edges"`` (PyG gather/scatter). Forward rows run without autograd
    (inference); forward + backward rows with it.
    """
    from badger_graph import ExpertGraph, ExpertPolicy
    from badger_graph.adjacency import CSRAdjacency
    from badger_graph.topologies import Attention, RandomOutDegree

    device = torch.device(device)
    torch.manual_seed(0)
    aggr = "weighted" if topo_name == "attn" else "mean"
    policy = ExpertPolicy(HIDDEN, HIDDEN, 32, 8, aggr=aggr).to(device)
    agent_size = n if topo_name == "rand" else min(n, 100)
    sizes = [agent_size] * max(1, n // agent_size)
    state = ExpertGraph.create(sizes, 1, HIDDEN, 8, device=device)
    state = state.replace(h=torch.randn(state.num_nodes, HIDDEN, device=device))
    topo = (
        RandomOutDegree(min(8, agent_size - 1), seed=0)
        if topo_name == "rand"
        else (Attention(HIDDEN, 32, top_k=min(8, agent_size - 1)))
    ).to(device)
    with torch.no_grad():
        (edge_index, w), t_topo = once(lambda: topo(state), device)
    csr, t_csr = once(
        lambda: (
            CSRAdjacency.from_edge_index(edge_index, state.num_nodes) if path == "csr" else None
        ),
        device,
    )
    u = torch.randn(state.num_nodes, 32, device=device)
    h = state.h.requires_grad_(backward)

    def run():
        with torch.set_grad_enabled(backward):
            out = policy(h, u, csr if csr is not None else edge_index, w)
        if backward:
            out.sum().backward()

    # peak memory of the passes above what the process held before them (state, edges, model)
    peak = PeakMemory(device)
    reps = 2 if n < (1_000_000 if device.type == "cpu" else 10_000_000) else 1
    t = timeit(run, device, reps=reps, min_time=0.5 if n < 100_000 else 0.0)
    peak_mb = peak.mb()
    flops = _policy_flops(policy, state.num_nodes, edge_index.size(1)) * (3 if backward else 1)
    return {
        "N": state.num_nodes,
        "topology": f"{topo_name}-8",
        "pass": "fwd+bwd" if backward else "fwd",
        "path": path,
        "E": edge_index.size(1),
        "topology_s": t_topo,
        "csr_build_s": t_csr,
        "round_s": t,
        "expert_rounds_per_s": state.num_nodes / t,
        "gflops": flops / t / 1e9,
        "matmul_gflops": _matmul_gflops(flops, device),
        "peak_mem_mb": peak_mb,
    }


def _subprocess(*args) -> dict | None:
    """Run one row in a fresh process, so that its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--row", *map(str, args)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        print(
            f"  row {args} failed (exit {out.returncode}): {out.stderr.strip()[-200:]}", flush=True
        )
        return None
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {row}", flush=True)
    return row


def train_rows(quick: bool, device: torch.device) -> list[dict]:
    from dense_reference import DenseFig6

    from badger_graph import BadgerModule, Execution, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import Attention, FullyConnected

    rows = []
    torch.manual_seed(0)

    def lib_step(model, B):
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        seed = iter(range(10**9))

        def step():
            loss = model.lifetime(next(seed), B).errors[-1].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        model.to(device)
        return step

    fig6 = BadgerModule(ExpertPolicy(), FullyConnected(), GuessingGame(3))
    fig6_sparse = BadgerModule(
        ExpertPolicy(), FullyConnected(), GuessingGame(3), execution=Execution(dense="never")
    )
    dense = DenseFig6().to(device)
    dopt = torch.optim.Adam(dense.parameters(), 1e-3)

    def dense_step():
        t = torch.rand(256, 3, device=device) * 2 - 1
        loss = dense(t)[-1].mean()
        dopt.zero_grad()
        loss.backward()
        dopt.step()

    def fig7_setup(
        dense: str, sparse: str = "auto", compile: bool = False, capture: bool = False
    ) -> BadgerModule:
        # the Fig. 7 setup: 20 experts + 3 output ports, attention (key 32)
        return BadgerModule(
            ExpertPolicy(aggr="weighted"),
            Attention(HIDDEN, 32),
            GuessingGame(3, feedback_to="all"),
            num_experts=20,
            output_ports=True,
            execution=Execution(dense=dense, sparse=sparse, compile=compile, capture=capture),
        )

    fig7, fig7_sparse = fig7_setup("auto"), fig7_setup("never", "csr")
    fig7_edges = fig7_setup("never", "edges")
    cases = [
        ("Fig. 6 (B=256, 3 experts, T=20)", "badger_graph (auto: dense path)", lib_step(fig6, 256)),
        (
            "Fig. 6 (B=256, 3 experts, T=20)",
            "badger_graph (sparse path)",
            lib_step(fig6_sparse, 256),
        ),
        ("Fig. 6 (B=256, 3 experts, T=20)", "plain dense PyTorch prototype", dense_step),
        (
            "Fig. 7 (B=100, 20+3 nodes, T=20)",
            "badger_graph (auto: dense path)",
            lib_step(fig7, 100),
        ),
    ]
    if not quick:
        cases.append(
            (
                "Fig. 7 (B=100, 20+3 nodes, T=20)",
                "badger_graph (sparse path, CSR aggregation)",
                lib_step(fig7_sparse, 100),
            )
        )
        cases.append(
            (
                "Fig. 7 (B=100, 20+3 nodes, T=20)",
                "badger_graph (sparse path, PyG gather/scatter)",
                lib_step(fig7_edges, 100),
            )
        )
    fig6_unchecked = BadgerModule(
        ExpertPolicy(), FullyConnected(), GuessingGame(3), execution=Execution(check_finite=False)
    )
    cases.append(
        (
            "Fig. 6 (B=256, 3 experts, T=20)",
            "badger_graph (dense path, check_finite=False)",
            lib_step(fig6_unchecked, 256),
        )
    )
    if not quick:  # the compiled variants: each step one graph, then the rounds only
        for option, label in (
            ("capture", "capture: each step one compiled graph"),
            ("compile", "torch.compile"),
        ):
            fig6_variant = BadgerModule(
                ExpertPolicy(),
                FullyConnected(),
                GuessingGame(3),
                execution=Execution(**{option: True}),
            )
            cases += [
                (
                    "Fig. 6 (B=256, 3 experts, T=20)",
                    f"badger_graph (dense path, {label})",
                    lib_step(fig6_variant, 256),
                ),
                (
                    "Fig. 7 (B=100, 20+3 nodes, T=20)",
                    f"badger_graph (dense path, {label})",
                    lib_step(fig7_setup("auto", **{option: True}), 100),
                ),
            ]
    for setup, impl, fn in cases:
        t = timeit(fn, device, reps=2, min_time=0.5 if quick else 3.0)
        rows.append(
            {"setup": setup, "implementation": impl, "s_per_batch": t, "batches_per_s": 1 / t}
        )
    return rows


def lifetime_row(
    T: int,
    tbptt: int,
    experts: int = 200,
    agents: int = 16,
    checkpoint: int = 0,
    device: str = "cpu",
) -> dict:
    """Forward + backward of one lifetime of length T (tbptt=0: full backprop).

    ``checkpoint=1``: activation checkpointing of every step's rounds.
    """
    from badger_graph import BadgerModule, Execution, ExpertPolicy
    from badger_graph.outer import TruncatedBPTT
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import RandomOutDegree

    torch.manual_seed(0)
    model = BadgerModule(
        ExpertPolicy(),
        RandomOutDegree(8, seed=0),
        GuessingGame(3),
        num_experts=experts,
        inner_steps=T,
        outer_loop=TruncatedBPTT(tbptt or T),
        execution=Execution(checkpoint=bool(checkpoint)),
    ).to(device)
    device = torch.device(device)
    peak = PeakMemory(device)
    _, t = once(lambda: model.outer_loop.backward_lifetime(model, 1, agents), device)
    return {
        "experts x agents": f"{experts} x {agents}",
        "T": T,
        "truncate_bptt": tbptt or "-",
        "checkpoint": "yes" if checkpoint else "-",
        "s_per_lifetime": t,
        "peak_mem_mb": peak.mb(),
    }


def lifetime_rows(quick: bool, device: torch.device) -> list[dict]:
    Ts = [10, 40, 160] if quick else [10, 40, 160, 640]
    rows = [_subprocess("lifetime", T, tbptt, 200, 16, 0, device) for tbptt in (0, 10) for T in Ts]
    if quick:
        rows.append(_subprocess("lifetime", 40, 10, 200, 16, 1, device))
    else:  # a long lifetime: 1,000 steps of 1,000 experts
        for tbptt, ckpt in ((0, 0), (0, 1), (10, 0), (10, 1), (100, 1)):
            rows.append(_subprocess("lifetime", 1000, tbptt, 1000, 1, ckpt, device))
    return [r for r in rows if r is not None]


def load_rows(quick: bool, device: torch.device) -> list[dict]:
    """Fig. 6 training batches: 1, 2 and auto threads, idle and with one core busy (CPU)."""
    if device.type != "cpu":
        print("  load: CPU threads only, left out on", device)
        return []
    from badger_graph import BadgerModule, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.threads import ThreadChooser
    from badger_graph.topologies import FullyConnected

    most = torch.get_num_threads()
    torch.manual_seed(0)
    model = BadgerModule(ExpertPolicy(), FullyConnected(), GuessingGame(3))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    seeds = iter(range(10**6))

    def step() -> None:
        loss = model.lifetime(next(seeds), 256).errors[-1].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    n = 6 if quick else 40
    rows = []
    for condition in ("idle", "one core busy"):
        busy = None
        if condition != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            for threads in (1, most, "auto"):
                chooser = ThreadChooser(threads, recheck_every=n)  # one measurement per row

                def batch(chooser=chooser) -> None:  # as the training loop runs it
                    chooser.before_batch()
                    step()
                    chooser.after_batch()

                # the median of n batches (the chooser's trial batches among them)
                t = timeit(batch, reps=n)
                rows.append(
                    {
                        "machine": condition,
                        "threads": f"auto (chose {chooser.current})"
                        if threads == "auto"
                        else threads,
                        "s_per_batch": t,
                        "batches_per_s": 1 / t,
                    }
                )
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    torch.set_num_threads(most)
    for r in rows:
        best = min(x["s_per_batch"] for x in rows if x["machine"] == r["machine"])
        r["vs_best"] = r["s_per_batch"] / best
    return rows


def topology_rows(quick: bool, device: torch.device) -> list[dict]:
    """Training batch of 8-expert guessing-game agents on each kind of topology."""
    from badger_graph import BadgerModule, ExpertPolicy
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import Attention, FullyConnected, RandomOutDegree

    setups = [
        ("fully connected", ExpertPolicy(), FullyConnected()),
        ("random out-degree 3, redrawn every step", ExpertPolicy(), RandomOutDegree(3, seed=0)),
        ("learned attention, top-3", ExpertPolicy(aggr="weighted"), Attention(HIDDEN, 16, top_k=3)),
        ("learned attention, softmax over all", ExpertPolicy(aggr="weighted"), Attention(HIDDEN)),
    ]
    B = 32 if quick else 256
    rows = []
    for name, policy, topology in setups:
        torch.manual_seed(0)
        model = BadgerModule(policy, topology, GuessingGame(3), num_experts=8, rounds=2)
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        seeds = iter(range(10**6))

        def step(model=model, opt=opt, seeds=seeds) -> None:
            loss = model.lifetime(next(seeds), B).errors[-1].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        t = timeit(step, device, reps=2, min_time=0.5 if quick else 3.0)
        rows.append({f"topology (8 experts, 2 rounds, B={B}, T=20)": name, "s_per_batch": t})
    for r in rows:
        r["vs_fully_connected"] = r["s_per_batch"] / rows[0]["s_per_batch"]
    return rows


def eval_rows(quick: bool, device: torch.device) -> list[dict]:
    """Evaluation of 500 fully connected experts: episodes/s per path; a held-out sweep."""
    import dataclasses

    from badger_graph import BadgerModule
    from badger_graph.evaluation import final_error
    from badger_graph.execution import Execution, using_execution

    ckpt = Path(__file__).parents[1] / "badger_graph" / "checkpoints" / "fig7.ckpt"
    model = BadgerModule.load_from_checkpoint(ckpt, map_location=device).eval()
    runner, agent = model.runner, model.agent
    experts, episodes = (100, 20) if quick else (500, 200)
    rows = []
    for path, changes in (
        ("dense (automatic)", {}),
        ("sparse (CSR)", {"dense": "never", "sparse": "csr"}),
    ):
        n = episodes if path.startswith("dense") else episodes // 10
        with using_execution(agent, **changes):
            _, t = once(lambda n=n: final_error(runner, 3, experts, n, 7), device)
        rows.append(
            {
                "what": f"{experts} experts, d = 3, T = 20, {path}",
                "episodes": n,
                "seconds": t,
                "episodes_per_s": n / t,
            }
        )
    dims, counts, n = ((21, 25), (20, 100), 50) if quick else ((21, 25, 30), (20, 300, 500), 500)
    points = [(d, c) for d in dims for c in counts]
    with using_execution(agent, **dataclasses.asdict(Execution())):  # the defaults: path by cost
        _, t = once(lambda: [final_error(runner, d, c, n, 11) for d, c in points], device)
    rows.append(
        {
            "what": f"sweep d {dims} x experts {counts}, automatic path",
            "episodes": n * len(dims) * len(counts),
            "seconds": t,
            "episodes_per_s": n * len(dims) * len(counts) / t,
        }
    )
    return rows


def _print(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}\n")
    if not rows:
        return
    keys = list(rows[0])
    fmt = [(lambda v: f"{v:.4g}") if isinstance(rows[0][k], float) else str for k in keys]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f(r[k]) for f, k in zip(fmt, keys, strict=True)) + " |")


def _write(path: Path, rows: list[dict]) -> None:
    if rows:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, seconds")
    p.add_argument("--out", default="benchmarks/results", help="folder for the CSV files")
    p.add_argument("--sections", default="policy,train,lifetime,load,topologies,eval")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--row", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.row:
        kind, *args = a.row
        if kind == "policy":
            row = policy_row(int(args[0]), args[1], bool(int(args[2])), args[3], args[4])
        else:
            row = lifetime_row(*map(int, args[:5]), device=args[5])
        print(json.dumps(row))
        return
    device = torch.device(a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device} ({name})")
    sections = a.sections.split(",")
    if "policy" in sections:
        Ns = [10, 100, 1000] if a.quick else [10, 100, 1_000, 10_000, 100_000, 1_000_000]
        if device.type == "cuda" and not a.quick:
            Ns.append(10_000_000)
        rows = []
        for topo in ("rand", "attn"):
            for n in Ns:
                for bwd in (False, True):
                    for path in ("edges", "csr"):
                        if topo == "attn" and n >= 1_000_000 and bwd:
                            continue
                        row = _subprocess("policy", n, topo, int(bwd), path, device)
                        if row is not None:
                            rows.append(row)
        for r in rows:
            r["pct_of_matmul"] = 100 * r["gflops"] / r["matmul_gflops"]
            r["bytes_per_expert_and_edge"] = r["peak_mem_mb"] * 2**20 / (r["N"] + r["E"])
        _print("policy round", rows)
        _write(out / "policy.csv", rows)
    tables = (  # (section = CSV name, title, function giving the rows)
        ("train", "training batch (forward + backward + Adam)", train_rows),
        ("lifetime", "lifetime length T (out-degree 8)", lifetime_rows),
        ("load", "Fig. 6 training batch under load (threads)", load_rows),
        ("topologies", "training batch per topology", topology_rows),
        ("eval", "evaluation of large fully connected agents", eval_rows),
    )
    for section, title, make_rows in tables:
        if section in sections:
            rows = make_rows(a.quick, device)
            _print(title, rows)
            _write(out / f"{section}.csv", rows)


if __name__ == "__main__":
    main()
