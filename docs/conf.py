"""Sphinx configuration: API reference from fersk's numpydoc docstrings.

Build with ``pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html``.
"""

import os
import sys

# Document this checkout's fersk, not another copy installed elsewhere.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

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
# Optional extras are imported inside functions, never at module import, so
# the API pages build without them; mocked anyway so a future top-level
# import cannot break the build of the docs extra alone.
autodoc_mock_imports = ["starlette", "uvicorn", "onnxruntime", "tf2onnx", "cv2"]

# Labels of scikit-learn's user guide used by docstrings inherited from it
# (``score``'s ":ref:`accuracy <accuracy_score>`"): link them to its site
# instead of warning, since the build is offline (no intersphinx).
_SKLEARN_LABELS = {
    "accuracy_score": "modules/model_evaluation.html#accuracy-score",
    "r2_score": "modules/model_evaluation.html#r2-score",
}


def _sklearn_reference(app, env, node, contnode):
    target = node.get("reftarget")
    if node.get("reftype") != "ref" or target not in _SKLEARN_LABELS:
        return None
    from docutils import nodes

    uri = "https://scikit-learn.org/stable/" + _SKLEARN_LABELS[target]
    return nodes.reference("", "", contnode, refuri=uri, internal=False)


def setup(app):
    app.connect("missing-reference", _sklearn_reference)
