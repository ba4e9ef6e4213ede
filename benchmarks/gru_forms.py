"""Why the GRU update has a vmap form: ``nn.GRUCell`` vs the same gates written out.

An evolution-strategy population evaluates P members of the policy as one
``torch.func.vmap`` over ``functional_call``. ``aten::gru_cell`` has no batching rule, so
under ``vmap`` PyTorch falls back to a loop over the members; the gates written out as
batched matrix products (``badger_graph.policy._gru_cell``) vectorize. Without ``vmap``
both forms are timed too (one member). A second table times a whole population of the
shipped ES config (``configs/guessing_game_es.yaml``: 64 members, 64 agents of 3 experts,
20 inner steps) with each form. Both forms are timed in one process, alternating
(``python benchmarks/gru_forms.py [--reps 20] [--population 32] [--nodes 600]``); prints
markdown tables of median milliseconds per call, with the matrix products and aten ops
that one call issues (each a kernel launch on a GPU).
"""

import argparse
import warnings

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from badger_graph import BadgerModule, Execution, ExpertPolicy
from badger_graph.outer import EvolutionStrategy
from badger_graph.outer.es import population_losses
from badger_graph.policy import _gru_cell
from badger_graph.tasks import GuessingGame
from badger_graph.timing import interleaved
from badger_graph.topologies import FullyConnected


def es_population(reps: int) -> None:
    """The ES config's population losses with the written-out gates and with nn.GRUCell."""
    torch.manual_seed(0)
    policy = ExpertPolicy(64, 64, 32, 8, aggr="mean")
    task = GuessingGame(3, feedback="scalar", feedback_to=[0])
    es = EvolutionStrategy(64, 0.02)
    unchecked = Execution(check_finite=False)  # as the ES loop runs its population
    module = BadgerModule(
        policy, FullyConnected(), task, num_experts=3, inner_steps=20, execution=unchecked
    )
    theta = torch.nn.utils.parameters_to_vector(module.parameters()).detach()
    noise = es.noise(0, theta.numel())

    def loss_fn(p):
        return functional_call(module, p, (0, 64), {"train": True})[-1].mean()

    written = ExpertPolicy.gru_update

    def fused(self, u, agg, h):
        return self.rnn(torch.cat([u, agg], dim=-1), h)

    out = {}

    def population(form, fn):
        def call():
            ExpertPolicy.gru_update = fn
            out[form] = population_losses(module, theta, noise, 0.02, loss_fn)

        return call

    forms = {"gates written out": written, "nn.GRUCell": fused}
    with torch.no_grad():
        times = interleaved({k: population(k, f) for k, f in forms.items()}, reps=reps)
    ExpertPolicy.gru_update = written
    torch.testing.assert_close(out["nn.GRUCell"], out["gates written out"])
    print(
        "\nES population of configs/guessing_game_es.yaml (64 members x 64 agents x 3 experts, "
        f"20 steps), median of {reps} after one warm-up call each\n"
    )
    print("| form under vmap | s per population |")
    print("|---|---|")
    for form, t in times.items():
        print(f"| {form} | {t:.3f} |")


def _ops(fn) -> tuple[int, int]:
    """Matrix products and aten ops of one call (each one a kernel launch on a GPU)."""
    cpu = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[cpu]) as prof:
        fn()
    events = prof.key_averages()
    products = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm")
    mm = sum(e.count for e in events if e.key in products)
    return mm, sum(e.count for e in events if e.key.startswith("aten::"))


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
        times = interleaved(forms, reps=a.reps)
        ops = {k: _ops(f) for k, f in forms.items()}
    print(
        f"P = {P} members, {N} nodes each, hidden {H}, input {X}; "
        f"{torch.get_num_threads()} threads; median of {a.reps} calls, alternating\n"
    )
    print("| case | form | ms per call | matrix products | aten ops |")
    print("|---|---|---|---|---|")
    for (case, form), t in times.items():
        mm, total = ops[(case, form)]
        print(f"| {case} | {form} | {1e3 * t:.2f} | {mm} | {total} |")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es_population(max(3, a.reps // 4))


if __name__ == "__main__":
    main()
