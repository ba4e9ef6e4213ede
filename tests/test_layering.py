"""The inner-loop core imports no Lightning; Lightning is one way to train and evaluate."""

import subprocess
import sys

import pytest
from helpers import tiny_policy

CORE = [
    "badger_graph",
    "badger_graph.agent",
    "badger_graph.lifetime",
    "badger_graph.analysis",
    "badger_graph.checkpoint",
    "badger_graph.curriculum",
    "badger_graph.evaluation",
    "badger_graph.execution",
    "badger_graph.growth",
    "badger_graph.outer",
    "badger_graph.policies",
    "badger_graph.policy",
    "badger_graph.ports",
    "badger_graph.runner",
    "badger_graph.snapshot",
    "badger_graph.state",
    "badger_graph.tasks",
    "badger_graph.topologies",
]


def test_core_imports_no_lightning():
    code = (
        "import importlib, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "bad = sorted(top & {'lightning', 'pytorch_lightning'})\n"
        "assert not bad, bad[:5]\n"
        "import badger_graph\n"
        "assert badger_graph.BadgerModule.__module__ == 'badger_graph.module'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_evaluation_without_lightning():
    """A sweep point from an agent and a task alone."""
    import torch

    from badger_graph import Agent, EpisodeRunner
    from badger_graph.evaluation import final_error
    from badger_graph.ports import AddressedPorts
    from badger_graph.seeds import derive
    from badger_graph.tasks import GuessingGame
    from badger_graph.topologies import FullyConnected

    torch.manual_seed(0)
    agent = Agent(tiny_policy(), FullyConnected(), ports=AddressedPorts(16, 4))
    runner = EpisodeRunner(agent, GuessingGame(3, feedback_to="all"), 5, inner_steps=3)
    with torch.no_grad():
        got = final_error(runner, 2, 5, episodes=10, seed=3, max_nodes=21)  # 3 agents a batch
        parts = [
            runner.run(derive(3, i), n, num_outputs=2).final_error.sum()
            for i, n in enumerate([3, 3, 3, 1])
        ]
    assert got == pytest.approx(float(sum(parts)) / 10, rel=1e-5)


def test_every_package_folder_is_installed():
    # a plain (non-editable) ``pip install .`` installs only the packages pyproject names
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    root = Path(__file__).parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {
        "badger_graph": root / "badger_graph",
        **{name: root / path for name, path in config["package-dir"].items()},
    }
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set(), f"package folders not installed: {sorted(found - listed)}"


def test_outer_loops_use_only_the_training_context():
    """No outer loop reaches into a private member of the module or the trainer."""
    import ast
    from pathlib import Path

    import badger_graph.outer as outer
    from badger_graph.outer import TrainingContext

    declared = {
        name
        for klass in TrainingContext.__mro__
        for name in vars(klass)
        if not name.startswith("_") and klass.__module__ == TrainingContext.__module__
    } | set(TrainingContext.__annotations__)
    used = {}
    for path in Path(outer.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "module"
            ):
                used.setdefault(node.attr, path.name)
    undeclared = {name: f for name, f in used.items() if name not in declared}
    assert not undeclared, f"outer loops use members TrainingContext does not declare: {undeclared}"
    assert {"lifetime", "optimizers", "world_size", "unchecked"} <= set(used)
