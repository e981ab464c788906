"""Every public class and function has a numpydoc docstring with an example."""

import importlib
import inspect
import re

import pytest

import fersk

PUBLIC_MODULES = [
    "fersk.lbp",
    "fersk.mapped_lbp",
    "fersk.face",
    "fersk.datasets",
    "fersk.classifiers",
    "fersk.regressors",
    "fersk.metrics",
    "fersk.ensemble",
    "fersk.layers",
    "fersk.architectures",
    "fersk.pretrained",
    "fersk.cli",
    "fersk.cli.demo",
    "fersk.cli.predict",
    "fersk.cli.train",
    "fersk.cli.evaluate",
    "fersk.training",
]


def _public_objects():
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if callable(obj):  # constants are documented in their module
                yield f"{name}.{attr}", obj


def _sections(doc):
    return set(re.findall(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", doc, flags=re.M))


@pytest.mark.parametrize("qualname,obj", list(_public_objects()))
def test_numpydoc_with_example(qualname, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{qualname} has no docstring"
    sections = _sections(doc)
    assert "Examples" in sections, f"{qualname}: no Examples section"
    takes_args = inspect.isclass(obj) or len(inspect.signature(obj).parameters) > 0
    if takes_args:
        assert "Parameters" in sections, f"{qualname}: no Parameters section"
    if inspect.isclass(obj):
        for meth in ("fit", "transform", "predict", "predict_proba"):
            if meth in vars(obj):
                mdoc = inspect.getdoc(getattr(obj, meth))
                assert mdoc and "Returns" in _sections(mdoc), f"{qualname}.{meth}"


def test_lazy_top_level_names_resolve():
    for name in fersk.__all__:
        assert getattr(fersk, name) is not None, name
