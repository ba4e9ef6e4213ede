"""Sphinx configuration of the API reference: ``python -m sphinx -b html docs/api docs/_build/api``."""

project = "badger_graph"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# optional extras (Optuna, scikit-learn) are not needed to read their modules' docs
autodoc_mock_imports = ["optuna", "sklearn"]
html_theme = "alabaster"
exclude_patterns = ["_build"]
