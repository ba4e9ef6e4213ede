"""The shipped models give the figures the docs print (evaluation only: no training).

Each documented table row is read from the page that prints it, and the shipped model is
played on the same fresh episodes as the command under that table: a page that drifts from
the models (or an evaluation change that moves a figure) fails here.
"""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def documented_task_rows() -> dict[str, float]:
    """``family -> the agent's score`` from the results table of docs/tasks.md."""
    text = (ROOT / "docs" / "tasks.md").read_text()
    rows = re.findall(r"^\| (\w+) \| agent \| [^|]+ \| ([0-9.]+) \|", text, flags=re.M)
    return {family: float(value) for family, value in rows}


def test_the_docs_table_names_every_task_family():
    import task_baselines

    assert set(documented_task_rows()) == set(task_baselines.FAMILIES)


@pytest.mark.parametrize("family", ["moving_target", "optimization", "bandits", "regression",
                                    "classification"])  # fmt: skip
def test_shipped_task_models_give_their_documented_score(family):
    import task_baselines

    from badger_graph.pretrained import CHECKPOINTS

    documented = documented_task_rows()[family]
    rows = task_baselines.compare(family, CHECKPOINTS / "tasks", episodes=2000)
    agent = next(r for r in rows if r["strategy"] == "agent")
    assert f"{agent['value']:.4f}" == f"{documented:.4f}", (family, agent["value"], documented)
