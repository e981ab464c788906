"""The ONNX backend: a model's networks exported to ONNX (with TensorFlow,
once) and loaded as ONNX Runtime estimators (without it)."""

import functools
import re
from pathlib import Path

from sklearn.utils._param_validation import validate_params

from ._codec import _construct, _decode, _load_step, _set_fitted
from ._folders import MODEL_CONSTRAINT, _build_pipeline, _model_dir
from ._networks import _check_network_file, _keras_path
from ._spec import _read_spec, _safe_class

#: The fitted attributes of a network entry its ONNX twin takes.
_ONNX_FITTED = ("classes_", "image_shape_", "n_features_in_", "input_dtype_", "input_range_",
                "history_", "n_epochs_", "best_epoch_")  # the training record: fersk evaluate's curve


def _network_entries(node):
    """The entries of a ``pipeline.json`` document that hold a network."""
    if isinstance(node, dict):
        own = [node] if isinstance(node.get("keras_file"), str) else []
        return own + [e for value in node.values() for e in _network_entries(value)]
    if isinstance(node, list):
        return [e for value in node for e in _network_entries(value)]
    return []


def _onnx_file(folder, spec, entry):
    """The cache file of a network entry's ONNX graph: named after the
    model and the network, hashed from the ``.keras`` file and the
    parameters the graph bakes in (so a changed model is exported anew),
    each name cut to 64 bytes."""
    from fersk import onnx
    from fersk.onnx._network import _graph_digest

    params = _decode(entry["params"], None)
    keras_file = _keras_path(folder, entry["keras_file"])
    digest = _graph_digest(keras_file, params.get("crop_size"), params.get("input_scaling"))
    model = re.sub(r"[^\w.-]", "_", spec.get("name") or Path(folder).name)
    # Names cut short (a file name has 255 bytes); the digest keeps them apart.
    return onnx.cache_dir() / f"{_cut(model)}.{_cut(keras_file.stem)}-{digest}.onnx"


def _onnx_graph(folder, spec, entry):
    """The ONNX graph a network entry runs from: the cache's (:func:`_onnx_file`),
    else the one fersk ships for a bundled model (``fersk/onnx/graphs``, the
    same name: the default's, so that ``backend="onnx"`` needs no TensorFlow
    even once), else the cache's name, to export to."""
    from fersk.onnx._mtcnn import SHIPPED

    cached = _onnx_file(folder, spec, entry)
    shipped = SHIPPED / cached.name
    return shipped if not cached.is_file() and shipped.is_file() else cached


def _cut(name, limit=64):
    """``name``'s first ``limit`` bytes of UTF-8, whole characters only."""
    return name.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def _uses_mtcnn(spec):
    return any(
        isinstance(e, dict) and e.get("class") == "fersk.face.FaceCropper"
        and e.get("params", {}).get("detector") == "mtcnn"
        for e in _all_entries(spec["steps"])
    )


def _all_entries(node):
    if isinstance(node, dict):
        own = [node] if "class" in node and "params" in node else []
        return own + [e for value in node.values() for e in _all_entries(value)]
    if isinstance(node, list):
        return [e for value in node for e in _all_entries(value)]
    return []


def _ensure_exported(folder, spec, networks=True):
    """Export the ONNX files the model needs and the cache lacks (with
    TensorFlow); nothing is imported when they are all there.  Without
    ``networks`` (graphs shipped in the folder: int8) only MTCNN's count."""
    from fersk import onnx

    missing = [e for e in _network_entries(spec["steps"]) if networks
               and not _onnx_graph(folder, spec, e).is_file()]
    mtcnn = onnx._mtcnn_paths()
    mtcnn_missing = _uses_mtcnn(spec) and (
        mtcnn is None or not all(p.is_file() for p in mtcnn.values())
    )
    if missing or mtcnn_missing:
        try:
            import tensorflow  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f"the ONNX backend: {folder.name}'s ONNX files "
                f"({'networks' if missing else 'MTCNN'}) are not in {onnx.cache_dir()} and "
                f"exporting them needs TensorFlow ({exc}); run `fersk export {folder.name}` "
                "where TensorFlow is installed and copy that folder (or set FERSK_CACHE)."
            ) from exc
        if missing:
            export(folder)
        else:
            onnx.export_mtcnn()


def _graph_head(path):
    """The output activation the exported network has (its graph's
    metadata; None for graphs exported before it was recorded), which the
    Keras estimator reads from the network too: ``head`` in pipeline.json
    is the parameter, which may have been set after fit."""
    from fersk.onnx._common import _session
    from fersk.onnx._network import HEAD_KEY

    return _session(path).get_modelmeta().custom_metadata_map.get(HEAD_KEY)


def _check_saved_settings(class_path, params):
    """Check the Keras network's saved settings by the rules its class
    applies (those every fersk Keras estimator shares, and ``head``), as
    the Keras loader does: without, a folder the Keras back end refuses
    (``epochs=-5``, ``head="bogus"``) loaded here.  The rules are kept apart
    from Keras (:data:`fersk._keras_params.SHARED_CONSTRAINTS`), so nothing
    here imports TensorFlow; an architecture's own settings need its
    builders, which the graph no longer does."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    from fersk._keras_params import HEAD_CONSTRAINT, SHARED_CONSTRAINTS

    rules = {**SHARED_CONSTRAINTS, "head": HEAD_CONSTRAINT}
    known = {k: v for k, v in params.items() if k in rules}
    validate_parameter_constraints({k: rules[k] for k in known}, known,
                                   caller_name=class_path.rsplit(".", 1)[-1])


def _load_onnx_step(entry, folder, networks=None, *, graphs=None):
    """One fitted estimator of the ONNX pipeline: networks as
    OnnxNetworkClassifier (from ``graphs[keras_file]`` where given, e.g. the
    folder's int8 graphs, else from the exported graph in the cache), MTCNN
    as detector='mtcnn-onnx', the rest as stored (nothing here imports
    TensorFlow)."""
    from fersk.onnx import OnnxNetworkClassifier

    spec = _read_spec(Path(folder))
    if "keras_file" in entry:
        params = _decode(entry["params"], None)
        fitted = _decode(entry["fitted"], None)
        graph = (graphs or {}).get(entry["keras_file"])
        if graph is None:  # exported from the .keras file: it must be the one recorded
            _check_network_file(folder, _keras_path(folder, entry["keras_file"]),
                                spec.get("networks", {}).get(entry["keras_file"]))
            graph = _onnx_graph(folder, spec, entry)
        est = OnnxNetworkClassifier(
            graph, image_shape=params.get("image_shape"),
            test_time_crops=params.get("test_time_crops", "center"),
            test_time_flip=params.get("test_time_flip", False),
            test_time_margin=params.get("test_time_margin"),
            predict_batch_size=params.get("predict_batch_size"),
        )
        try:  # a bad value is refused at load, as the Keras loader does
            est._validate_params()
            _check_saved_settings(entry["class"], params)
        except ValueError as exc:  # a plain ValueError: load's validation would rename it
            raise ValueError(f"{Path(folder) / 'pipeline.json'}: {exc}") from None
        for attr in _ONNX_FITTED:
            if attr in fitted:
                setattr(est, attr, fitted[attr])
        est.head_ = _graph_head(est.path) or params.get("head", "softmax")
        return est
    cls = _safe_class(entry["class"])
    if entry["class"] == "fersk.face.FaceCropper" and entry["params"].get("detector") == "mtcnn":
        entry = {**entry, "params": {**entry["params"], "detector": "mtcnn-onnx"}}
    est = _construct(cls, entry, folder, None, functools.partial(_load_onnx_step, graphs=graphs))
    _set_fitted(est, cls, entry)
    restore = getattr(est, "_restore_derived", None)
    if restore is not None:
        restore()
    return est


@validate_params(
    {"name": MODEL_CONSTRAINT, "overwrite": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def export(name=None, *, overwrite=False):
    """Export a model's networks (and MTCNN) to ONNX, into the cache.

    Each network of the model, with its input scaling (the test-time views
    are cut at prediction, so one file serves every view setting),
    becomes one ONNX file (:func:`fersk.onnx.export_network`); a
    :class:`~fersk.face.FaceCropper` with ``detector="mtcnn"`` adds the
    three MTCNN networks (:func:`fersk.onnx.export_mtcnn`).  They go to
    :func:`fersk.onnx.cache_dir`, named after the model with a hash of
    what they were made from, written atomically.  Needs TensorFlow and
    ``tf2onnx`` (``pip install 'fersk[onnx]'``); afterwards
    ``load(name, backend="onnx")`` needs neither.

    Parameters
    ----------
    name : str or path-like, default=None
        A bundled model's name or a folder written by :func:`save`; None
        means :data:`DEFAULT_MODEL`.  (An in-memory pipeline: :func:`save`
        it first.)
    overwrite : bool, default=False
        Export again the files that are in the cache already.

    Returns
    -------
    paths : list of pathlib.Path
        The ONNX files the model uses (networks, then MTCNN's).

    Examples
    --------
    >>> from fersk import pretrained
    >>> paths = pretrained.export("fer2013_cnn")  # doctest: +SKIP
    >>> [p.suffix for p in paths][:1]  # doctest: +SKIP
    ['.onnx']
    """
    from fersk import onnx

    path = _model_dir(name)
    spec = _read_spec(path)
    entries = _network_entries(spec["steps"])
    targets = [_onnx_file(path, spec, e) for e in entries]
    if overwrite or not all(t.is_file() for t in targets):
        import fersk.layers  # noqa: F401  (registers fersk's layers for safe loading)

        pipe = _build_pipeline(path, spec, _load_step)
        estimators = _network_estimators(spec["steps"], [est for _, est in pipe.steps])
        if len(estimators) != len(entries):  # pragma: no cover
            raise ValueError(f"{path}: cannot match the networks to pipeline.json's entries.")
        for target, est in zip(targets, estimators):
            if overwrite or not target.is_file():
                onnx.export_network(est, target)
    out = list(targets)
    if _uses_mtcnn(spec):
        out += list(onnx.export_mtcnn(overwrite=overwrite).values())
    return out


def _network_estimators(entries, estimators):
    """The loaded network estimators, in the order of :func:`_network_entries`."""
    found = []
    for entry, est in zip(entries, estimators):
        if "keras_file" in entry:
            found.append(est)
        for key in ("estimators", "steps"):
            items = entry.get("params", {}).get(key)
            if not isinstance(items, list):
                continue
            subs = [i["__tuple__"][1] for i in items]
            sub_ests = [e for _, e in getattr(est, key)]
            pairs = [(s["__estimator__"], e) for s, e in zip(subs, sub_ests)
                     if isinstance(s, dict) and "__estimator__" in s]
            found += _network_estimators([p[0] for p in pairs], [p[1] for p in pairs])
    return found

