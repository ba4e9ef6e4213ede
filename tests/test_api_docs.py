"""The docs site (guides + API reference) builds without a warning; breakage fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"


def _build(source: Path, out: Path) -> int:
    sphinx = pytest.importorskip("sphinx.cmd.build")
    pytest.importorskip("myst_parser")
    return sphinx.build_main(["-b", "html", "-q", "-W", str(source), str(out)])


def test_site_builds_with_the_guides_and_documents_the_public_classes(tmp_path):
    out = tmp_path / "html"
    assert _build(DOCS, out) == 0
    pages = {p.stem: p.read_text() for p in (out / "api").glob("*.html")}
    for page, name in [("core", "badger_graph.policy.ExpertPolicy"),
                       ("core", "badger_graph.agent.Agent"),
                       ("core", "badger_graph.learner.TransformerLearner"),
                       ("core", "badger_graph.records.LifetimeCall"),
                       ("tasks", "badger_graph.tasks.bandits.BernoulliBandits"),
                       ("topologies", "badger_graph.topologies.attention.Attention"),
                       ("training", "badger_graph.module.BadgerModule"),
                       ("training", "badger_graph.outer.TrainingContext"),
                       ("tools", "badger_graph.pretrained.load")]:  # fmt: skip
        assert f'id="{name}"' in pages[page], name
    guides = {p.stem for p in out.glob("*.html")}
    assert {"results", "reproduce", "comparison", "reliability", "tasks"} <= guides
    index = (out / "index.html").read_text()
    assert 'href="results.html"' in index
    assert 'href="api/index.html"' in index


def test_a_broken_link_between_pages_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("_build"))
    with (docs / "tuning.md").open("a") as f:
        f.write("\nSee [the missing page](no_such_page.md).\n")
    assert _build(docs, tmp_path / "html") != 0


def test_every_public_module_class_and_function_has_a_docstring():
    """pydocstyle's missing-docstring rules (ruff D1) over the package."""
    pytest.importorskip("ruff")
    root = Path(__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "D1", "--ignore", "D105,D107",
         "badger_graph", "tasks", "topologies"],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:]
