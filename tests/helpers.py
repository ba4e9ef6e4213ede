"""Small building blocks the tests share (import with ``from helpers import ...``)."""

import torch

from badger_graph import ExpertGraph, ExpertPolicy


def tiny_policy(**kwargs) -> ExpertPolicy:
    """The tests' small expert policy: hidden 16, messages 8, inputs 8, identity 4."""
    return ExpertPolicy(16, 8, 8, 4, **kwargs)


def gen(seed: int = 0) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def episode(task, B: int = 4000, seed: int = 0):
    """``B`` episodes of ``task`` drawn from seed ``seed``."""
    return task.reset(B, gen(seed))


def random_states(state: ExpertGraph, seed: int = 0) -> ExpertGraph:
    """``state`` with random internal states (standard normal, from seed ``seed``)."""
    return state.replace(h=torch.randn(state.num_nodes, state.h.size(1), generator=gen(seed)))


def random_graph(sizes, hidden: int = 16, identity: int = 4, seed: int = 0) -> ExpertGraph:
    """Agents of ``sizes`` experts (one output each) with random internal states."""
    return random_states(ExpertGraph.create(list(sizes), 1, hidden, identity), seed)


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Each parameter's gradient (a detached copy on the CPU), by name; none: left out."""
    return {
        n: p.grad.detach().cpu().clone() for n, p in model.named_parameters() if p.grad is not None
    }


def badger(cwd, *args: str, env: dict | None = None, timeout: int = 300, pythonpath=()):
    """``badger ARGS`` in a fresh process run from ``cwd`` (one thread, Python's default
    warning filters); ``pythonpath`` folders are put first on its import path."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    env.pop("PYTHONWARNINGS", None)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "badger_graph.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
