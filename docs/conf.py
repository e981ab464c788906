"""Sphinx configuration: API reference from fersk's numpydoc docstrings.

Build with ``pip install -e ".[docs]" && sphinx-build -b html docs docs/_build``.
"""

project = "fersk"
author = "fersk developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
