"""On a CUDA device: every execution path gives the CPU's results, and a short fit runs.

Marked ``gpu``: not in the default run (``pytest -m gpu`` selects them). They run on CUDA
and are skipped without it; ``BADGER_TEST_DEVICE=cpu pytest -m gpu tests/test_gpu.py``
runs the same code on the CPU (a check of the tests themselves, not of a GPU).
"""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import grads, tiny_policy

from badger_graph import BadgerModule, Execution
from badger_graph.adjacency import CSRAdjacency, DenseAdjacency, EdgeAdjacency
from badger_graph.execution import adjacency
from badger_graph.ports import AddressedPorts
from badger_graph.tasks import GuessingGame
from badger_graph.topologies import Attention, FullyConnected, RandomOutDegree

DEVICE = os.environ.get("BADGER_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"
    ),
]
ROOT = Path(__file__).parents[1]


def _fig6(execution: Execution) -> BadgerModule:
    return BadgerModule(tiny_policy(), FullyConnected(), GuessingGame(3), execution=execution)


def _fig7(execution: Execution, top_k: int | None = None) -> BadgerModule:
    return BadgerModule(
        tiny_policy(aggr="weighted"),
        Attention(16, 8, top_k=top_k),
        GuessingGame(3, feedback_to="all"),
        num_experts=6,
        ports=AddressedPorts(16, address_channels=8),
        execution=execution,
    )


DENSE, CSR, EDGES = (
    Execution(),
    Execution(dense="never", sparse="csr"),
    Execution(dense="never", sparse="edges"),
)
CASES = {
    "fig6 dense": (_fig6, DENSE, DenseAdjacency),
    "fig6 csr": (_fig6, CSR, CSRAdjacency),
    "fig6 edges": (_fig6, EDGES, EdgeAdjacency),
    "fig7 attention dense": (_fig7, DENSE, DenseAdjacency),
    "fig7 attention csr": (_fig7, CSR, CSRAdjacency),
    "fig7 attention top-3 edges": (lambda ex: _fig7(ex, top_k=3), EDGES, EdgeAdjacency),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lifetime_and_gradients_match_cpu(case):
    make, execution, path = CASES[case]
    torch.manual_seed(0)
    cpu = make(execution)
    dev = copy.deepcopy(cpu).to(DEVICE)
    state = dev.runner.begin(1, 4, device=DEVICE)[1]
    adj = adjacency(dev.agent.policy, dev.agent.topology, state, dev.agent.execution)[0]
    assert isinstance(adj, path), f"{case} took {type(adj).__name__}"
    out = {}
    for name, model in (("cpu", cpu), ("dev", dev)):
        lt = model.lifetime(5, 8)
        lt.errors.mean().backward()
        out[name] = (lt.errors.detach().cpu(), grads(model))
    assert lt.errors.device.type == torch.device(DEVICE).type
    torch.testing.assert_close(out["dev"][0], out["cpu"][0], rtol=1e-4, atol=1e-5)
    assert out["dev"][1].keys() == out["cpu"][1].keys()
    assert out["cpu"][1]
    for k, g in out["cpu"][1].items():
        torch.testing.assert_close(out["dev"][1][k], g, rtol=1e-3, atol=1e-5, msg=k)


def test_large_inference_matches_cpu():
    """Row-blocked on the CPU, one fused pass on the GPU: the same states."""
    torch.manual_seed(0)
    # fixed edges (fully connected, on the CSR path), so the CPU and the device runs see the
    # same graph: 2 agents x 300 experts, more nodes than update_chunk
    cpu = BadgerModule(
        tiny_policy(),
        FullyConnected(),
        GuessingGame(3),
        num_experts=300,
        execution=CSR,
    )
    cpu.agent.policy.update_chunk = 64  # blocks on the CPU
    dev = copy.deepcopy(cpu).to(DEVICE)
    with torch.no_grad():
        state = cpu.runner.begin(2, 2)[1]
        adj = adjacency(cpu.agent.policy, cpu.agent.topology, state, cpu.agent.execution)[0]
        assert isinstance(adj, CSRAdjacency)
        assert cpu.agent.policy._blocked(state.h)  # the CPU run takes the row blocks
        e_cpu = cpu.lifetime(2, 2).errors
        e_dev = dev.lifetime(2, 2).errors
    assert e_dev.device.type == torch.device(DEVICE).type
    assert torch.isfinite(e_dev).all()
    torch.testing.assert_close(e_dev.cpu(), e_cpu, rtol=1e-4, atol=1e-5)
    dev_edges = copy.deepcopy(dev)
    dev_edges.agent.execution = EDGES
    with torch.no_grad():
        torch.testing.assert_close(dev_edges.lifetime(2, 2).errors, e_dev, rtol=1e-4, atol=1e-5)


def test_random_edges_drawn_on_device_and_reproducible():
    model = BadgerModule(
        tiny_policy(), RandomOutDegree(3, seed=0), GuessingGame(3), num_experts=8
    ).to(DEVICE)
    state = model.runner.begin(4, 16, device=DEVICE)[1]
    topo = model.agent.topology
    topo.reseed(11)
    first, _ = topo(state)
    topo.reseed(11)
    again, _ = topo(state)
    assert first.device.type == torch.device(DEVICE).type
    assert torch.equal(first, again)
    src, dst = first
    assert (state.batch[src] == state.batch[dst]).all()
    assert (src != dst).all()
    # dense block and edge list of the same seed give the same lifetime
    dense, edges = copy.deepcopy(model), copy.deepcopy(model)
    edges.agent.execution = EDGES
    torch.testing.assert_close(
        dense.lifetime(3, 16).errors, edges.lifetime(3, 16).errors, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("make", [_fig6, _fig7], ids=["fig6", "fig7 ports attention"])
def test_captured_steps_match_eager_over_training_and_evaluation(make):
    """Captured steps (CUDA graphs) = eager, over 3 Adam steps and 2 kept evaluations."""
    torch.manual_seed(0)
    eager = make(Execution()).to(DEVICE)
    captured = make(Execution(capture=True)).to(DEVICE)
    captured.load_state_dict(eager.state_dict())
    results = {}
    for name, model in (("eager", eager), ("captured", captured)):
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        losses = []
        for seed in range(3):  # new CUDA-graph generation each batch, weights change
            loss = model.lifetime(seed, 8).errors[-1].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        with torch.no_grad():  # both kept: the second must not overwrite the first
            a, b = model.lifetime(10, 8), model.lifetime(11, 8)
        results[name] = (torch.stack(losses), a.errors, b.errors, a.state.h, grads(model))
    # fused kernels sum in another order and 3 Adam steps amplify it: loose bounds, which
    # still catch a wrong or overwritten replay output (errors of order 1)
    for x, y in zip(results["eager"][:4], results["captured"][:4], strict=True):
        torch.testing.assert_close(y, x, rtol=2e-3, atol=1e-4)
    for k, g in results["eager"][4].items():
        torch.testing.assert_close(results["captured"][4][k], g, rtol=1e-2, atol=1e-4, msg=k)
    steps = captured.agent.runtime.steps
    assert steps
    assert all(step.failed is None for step in steps.values())


def test_fit_twenty_batches_captured(tmp_path):
    _fit(tmp_path, "--model.execution.capture", "true")


def test_fit_twenty_batches(tmp_path):
    _fit(tmp_path)


def _fit(tmp_path, *args: str) -> None:
    accelerator = "gpu" if torch.device(DEVICE).type == "cuda" else "cpu"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "badger_graph.cli",
            "fit",
            "--config",
            str(ROOT / "configs" / "guessing_game.yaml"),
            "--trainer.accelerator",
            accelerator,
            "--trainer.max_steps",
            "20",
            "--trainer.val_check_interval",
            "10",
            "--trainer.default_root_dir",
            str(tmp_path),
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = torch.load(
        tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert ckpt["global_step"] == 20
