"""Sphinx configuration of the docs site (guides + API reference).

``python -m sphinx -b html -W docs docs/_build/html``
"""

project = "badger_graph"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# the guides link to headings by their GitHub anchors (#fresh-means-fresh-seeds-...)
myst_heading_anchors = 4
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# optional extras (Optuna, scikit-learn) are not needed to read their modules' docs
autodoc_mock_imports = ["optuna", "sklearn"]
html_theme = "alabaster"
exclude_patterns = ["_build", "**/README.md"]
