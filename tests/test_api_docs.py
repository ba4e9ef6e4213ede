"""The API reference builds from the docstrings without a warning (Sphinx autodoc)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_api_reference_builds_and_documents_the_public_classes(tmp_path):
    sphinx = pytest.importorskip("sphinx.cmd.build")
    source = Path(__file__).parents[1] / "docs" / "api"
    out = tmp_path / "html"
    assert sphinx.build_main(["-b", "html", "-q", "-W", str(source), str(out)]) == 0
    pages = {p.stem: p.read_text() for p in out.glob("*.html")}
    for page, name in [("core", "badger_graph.policy.ExpertPolicy"),
                       ("core", "badger_graph.learner.TransformerLearner"),
                       ("tasks", "badger_graph.tasks.bandits.BernoulliBandits"),
                       ("topologies", "badger_graph.topologies.attention.Attention"),
                       ("training", "badger_graph.module.BadgerModule"),
                       ("tools", "badger_graph.pretrained.load")]:  # fmt: skip
        assert f'id="{name}"' in pages[page], name
