"""Why the GRU update has a vmap form: ``nn.GRUCell`` vs the same gates written out.

An evolution-strategy population evaluates P members of the policy as one
``torch.func.vmap`` over ``functional_call``. ``aten::gru_cell`` has no batching rule, so
under ``vmap`` PyTorch falls back to a loop over the members; the gates written out as
batched matrix products (``badger_graph.policy._gru_cell``) vectorize. Without ``vmap``
both forms are timed too (one member). Both forms are timed in one process, alternating
(``python benchmarks/gru_forms.py [--reps 20] [--population 32] [--nodes 600]``); prints a
markdown table of median milliseconds per call.
"""

import argparse
import statistics
import time
import warnings

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from badger_graph.policy import _gru_cell


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--population", type=int, default=32)
    p.add_argument("--nodes", type=int, default=600, help="nodes per member (B x n)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--inputs", type=int, default=96, help="GRU input width (u and aggregate)")
    a = p.parse_args()
    torch.manual_seed(0)
    P, N, H, X = a.population, a.nodes, a.hidden, a.inputs
    cells = [nn.GRUCell(X, H) for _ in range(P)]
    params, buffers = stack_module_state(cells)
    base = nn.GRUCell(X, H).to("meta")
    x, h = torch.randn(N, X), torch.randn(N, H)

    def fused(p, b):
        return functional_call(base, (p, b), (x, h))

    def written(p, b):
        class Cell:  # the parameters _gru_cell reads, from the member's dict
            weight_ih, weight_hh = p["weight_ih"], p["weight_hh"]
            bias_ih, bias_hh = p["bias_ih"], p["bias_hh"]

        return _gru_cell(x, h, Cell)

    one = cells[0]
    forms = {
        ("vmap over the population", "nn.GRUCell"): lambda: vmap(fused)(params, buffers),
        ("vmap over the population", "gates written out"): lambda: vmap(written)(params, buffers),
        ("one member, no vmap", "nn.GRUCell"): lambda: one(x, h),
        ("one member, no vmap", "gates written out"): lambda: _gru_cell(x, h, one),
    }
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the vmap fallback's performance warning
        ref = forms[("vmap over the population", "nn.GRUCell")]()
        torch.testing.assert_close(forms[("vmap over the population", "gates written out")](), ref)
        times = {k: [] for k in forms}
        for _ in range(a.reps):
            for k, f in forms.items():
                f()
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    print(
        f"P = {P} members, {N} nodes each, hidden {H}, input {X}; "
        f"{torch.get_num_threads()} threads; median of {a.reps} calls, alternating\n"
    )
    print("| case | form | ms per call |")
    print("|---|---|---|")
    for (case, form), ts in times.items():
        print(f"| {case} | {form} | {1e3 * statistics.median(ts):.2f} |")


if __name__ == "__main__":
    main()
