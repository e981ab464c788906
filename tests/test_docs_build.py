"""The Sphinx documentation builds with zero warnings (``sphinx-build -W``).

About 20 s on two CPU cores, so it runs with the rest of the suite.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None
    or importlib.util.find_spec("numpydoc") is None,
    reason='sphinx and numpydoc are needed: pip install -e ".[docs]"',
)
def test_docs_build_without_warnings(tmp_path):
    # A fresh doctree folder: every page is read, so no warning hides in a cache.
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    assert (tmp_path / "html" / "index.html").exists()
