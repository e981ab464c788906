"""Pretrained facial-expression pipelines shipped inside the package.

A pretrained model is a folder holding ``pipeline.json`` (the steps, their
parameters and fitted state, the metrics of the model card) and one
``.keras`` file per network.  The last step is a fersk network or a
:class:`~fersk.CNNEnsembleClassifier` of them, each member with its own
representation (Levi & Hassner's recipe).  It is written by :func:`save` and read by
:func:`load`, which rebuilds a fitted scikit-learn
:class:`~sklearn.pipeline.Pipeline`.

Every estimator is stored by one rule, whatever its class:

* its class and its parameters, ``get_params(deep=False)`` (or what the
  class's ``_saved_params()`` returns: a fitted ensemble gives its fitted
  members in place of the unfitted ones).  Estimators inside parameters (a
  Pipeline's steps, an ensemble's members) are stored the same way, nested;
  a :class:`~sklearn.frozen.FrozenEstimator` as the estimator it wraps;
* its fitted state: the fitted attributes its class declares in code, in
  ``_saved_attributes`` (a Keras ``model_`` goes to its own ``.keras``
  file), never read from docstrings, so that ``python -OO`` loads and saves
  the same.  The attributes the class lists in ``_derived_attributes``
  follow from the parameters and the rest of the state, are not stored,
  and are recomputed at load by the class's ``_restore_derived()`` (e.g.
  :class:`~fersk.MDSMappedLBP`'s ``code_distances_``, the ensemble's
  ``estimators_``).  A public fitted attribute (name ending in ``_``) that
  is neither is refused by :func:`save`, as :func:`load` would refuse it.

``pipeline.json`` also records each network file's size, SHA-256,
parameter count and shapes (format 4): :func:`load` refuses a folder whose
files do not belong together, and :func:`save` writes a folder whole beside
its place before renaming it in, so that a crash never leaves a mixture.
Folders of earlier formats (1 to 3) load as they are: they are converted
while read (:func:`convert` writes the converted folder).  Nothing is unpickled: the JSON may
name only the classes in :data:`SAFE_CLASSES`, and networks are read with
``keras.saving.load_model(..., safe_mode=True)``, which refuses Python
code (lambda layers) inside the file.  So a model folder from elsewhere is
as safe to load as a ``.keras`` file.

The bundled models live in ``fersk/models/``; their training commands and
PublicTest results are in the model cards of the documentation.

One module per job; everything is imported from ``fersk.pretrained``, the
submodules are private:

- ``_spec``: reading ``pipeline.json`` (shape checks, earlier formats
  upgraded) and :data:`SAFE_CLASSES`;
- ``_networks``: the ``.keras`` files, what format 4 records of them and
  the checks that they belong to the folder;
- ``_codec``: estimators to and from JSON entries, by the one rule above;
- ``_folders``: :func:`available`, :func:`info`, where a model's folder
  is, and the Pipeline built from its ``pipeline.json`` by a step loader;
- ``_loading``: :func:`load`, with Keras's or ONNX Runtime's step loader;
- ``_saving``: :func:`save` (written whole beside its place, renamed in)
  and :func:`convert`;
- ``_onnx_backend``: :func:`export` and ``load(..., backend="onnx")``;
- ``_int8``: :func:`quantize` (int8 graphs shipped in a folder, measured)
  and the checks of ``load(..., backend="onnx-int8")``.
"""

from ._codec import _decode, _saved_attributes, _saved_state  # noqa: F401  (fersk.datasets, tests)
from ._folders import (  # noqa: F401  (_model_dir: fersk.datasets)
    BACKENDS,
    DEFAULT_MODEL,
    MODELS_DIR,
    _model_dir,
    available,
    info,
)
from ._int8 import quantize
from ._loading import load
from ._onnx_backend import export
from ._saving import _replaceable, convert, save  # noqa: F401  (_replaceable: fersk train)
from ._spec import FORMAT_VERSION, SAFE_CLASSES, _class_names, _safe_class  # noqa: F401  (tests)

__all__ = [
    "BACKENDS", "DEFAULT_MODEL", "SAFE_CLASSES", "available", "convert", "export", "info",
    "load", "quantize", "save",
]

# The public functions keep the module users know (repr, Sphinx), wherever
# they are defined.
for _name in __all__:
    if callable(globals()[_name]):
        globals()[_name].__module__ = __name__
del _name
