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
    "fersk.degrade",
    "fersk.cache",
    "fersk.live",
    "fersk.serve",
    "fersk.datasets",
    "fersk.classifiers",
    "fersk.regressors",
    "fersk.network_features",
    "fersk.metrics",
    "fersk.ensemble",
    "fersk.layers",
    "fersk.architectures",
    "fersk.pretrained",
    "fersk.onnx",
    "fersk.cli",
    "fersk.cli.demo",
    "fersk.cli.predict",
    "fersk.cli.train",
    "fersk.cli.evaluate",
    "fersk.cli.live",
    "fersk.cli.serve",
    "fersk.cli.export",
    "fersk.cli.adapt",
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


def _documented_parameters(doc):
    """``[(name, default text or None)]`` of a numpydoc Parameters section."""
    section = re.search(r"^Parameters\n-{3,}\n(.*?)(?:\n\n[A-Z][A-Za-z ]+\n-{3,}\n|\Z)", doc,
                        flags=re.M | re.S)
    entries = []
    for line in section.group(1).split("\n") if section else []:
        if line and not line.startswith(" "):
            for name in line.split(" : ")[0].split(","):
                default = re.search(r", default=(.*)$", line)
                entries.append((name.strip(), default and default.group(1)))
    return entries


def _keras_estimators():
    from fersk._keras_base import BaseKerasImageEstimator

    return [
        pytest.param(obj, id=qualname) for qualname, obj in _public_objects()
        if inspect.isclass(obj) and issubclass(obj, BaseKerasImageEstimator)
    ]


@pytest.mark.parametrize("estimator", _keras_estimators())
def test_keras_estimators_document_each_parameter_once(estimator):
    """The shared parameter text (fersk._keras_base.PARAMETERS_DOC) and each
    class's own entries together list the signature: every parameter once,
    in order, with the signature's default."""
    from fersk._keras_base import PARAMETERS_MARKER

    doc = inspect.getdoc(estimator)
    assert PARAMETERS_MARKER.strip() not in doc
    documented = _documented_parameters(doc)
    signature = inspect.signature(estimator.__init__).parameters
    params = [name for name in signature if name != "self"]
    assert [name for name, _ in documented] == params
    for name, default in documented:
        value = signature[name].default
        expected = f'"{value}"' if isinstance(value, str) else repr(value)
        assert default is not None and (default == expected or eval(default) == value), (
            f"{estimator.__name__}({name}=...): documented default={default}, "
            f"signature {expected}"
        )
