"""int8 graphs shipped inside a model folder: made and measured by
:func:`quantize`, checked and run by ``load(..., backend="onnx-int8")``.

Static quantisation needs calibration faces, which a user's machine does
not have, so the int8 graphs are made once (here, with the data) and kept
in the folder beside the ``.keras`` files, each recorded in
``pipeline.json`` under ``int8`` with its size, SHA-256, the network file
it was made from and what it cost on the test faces it was measured on."""

import functools
import hashlib
import json
import re
import tempfile
from numbers import Real
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from .._fsync import fsync_path
from ._codec import _load_step
from . import _folders
from ._folders import MODEL_CONSTRAINT, _build_pipeline, _model_dir, available
from ._networks import _check_network_file, _keras_path, _sha256
from ._onnx_backend import (
    _ensure_exported, _load_onnx_step, _network_entries, _network_estimators,
)
from ._spec import _read_spec


#: How quantize names an int8 graph, after its network file's stem.
_INT8_SUFFIX = r"\.int8-[0-9a-f]{12}\.onnx"


def _is_own_int8(name, keras_files, path=None):
    """Whether ``name`` is a graph quantize writes for one of ``keras_files``
    (``<stem>.int8-<12 hex>.onnx`` beside it, the hex the start of its
    SHA-256): the only files of a model folder fersk counts as its int8
    graphs, and so may delete.  With ``path`` (the file), its content is
    checked too: a user's file of such a name is not fersk's."""
    named = any(
        isinstance(k, str) and Path(k).name == k and k.endswith(".keras")
        and re.fullmatch(re.escape(k[:-len(".keras")]) + _INT8_SUFFIX, name) is not None
        for k in keras_files
    )
    if not named or path is None:
        return named
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:  # unreadable (a folder, a broken link): not known to be fersk's
        return False
    return name[-len("0123456789ab.onnx"):-len(".onnx")] == digest[:12]


def _int8_path(folder, spec, keras_file):
    """The checked int8 graph of ``keras_file`` (ValueError naming what is wrong)."""
    root = Path(folder).resolve()
    records = spec.get("int8")
    record = records.get(keras_file) if isinstance(records, dict) else None
    if record is None:
        raise ValueError(
            f"backend='onnx-int8': {root} ships no int8 graph of {keras_file!r}; use "
            "backend='onnx' or 'keras' (--backend onnx or keras on the command line), or make "
            "one with fersk.pretrained.quantize."
        )
    target = (root / record["file"]).resolve()
    if not target.is_relative_to(root) or target.suffix != ".onnx" or not target.is_file():
        raise ValueError(f"{root}: int8[{keras_file!r}]['file'] {record['file']!r} is not an ONNX "
                         "file inside the model folder (load it with backend='keras', "
                         "--backend keras on the command line).")
    mismatch = f"{target} is not the int8 graph {root / 'pipeline.json'} records"
    if target.stat().st_size != record["size"] or _sha256(target) != record["sha256"]:
        raise ValueError(f"{mismatch} (its size or SHA-256 differs; load it with backend='keras', "
                         "--backend keras on the command line).")
    network = spec.get("networks", {}).get(keras_file, {})
    if network.get("sha256") != record["keras_sha256"]:
        # A network re-trained or replaced after quantize: the graph is of another network.
        raise ValueError(f"{mismatch}: it was made from another {keras_file} than the folder's.")
    # The .keras file too, as the Keras backend checks it: a folder whose network
    # file is missing or another's is not the model pipeline.json describes.
    _check_network_file(root, _keras_path(root, keras_file), network)
    return target


def _int8_graphs(folder, spec):
    """The checked int8 graph of every network of the model, by ``.keras`` file."""
    return {e["keras_file"]: _int8_path(folder, spec, e["keras_file"])
            for e in _network_entries(spec["steps"])}


def _has_int8(spec):
    """Whether every network of the model has a recorded int8 graph."""
    records = spec.get("int8")
    entries = _network_entries(spec["steps"])
    return bool(entries) and isinstance(records, dict) and all(
        e["keras_file"] in records for e in entries)


@validate_params(
    {
        "name": MODEL_CONSTRAINT,
        "calibration_images": ["array-like"],
        "X_test": ["array-like"],
        "y_test": ["array-like"],
        "max_cost": [Interval(Real, 0, 1, closed="both")],
        "float_input": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def quantize(name, calibration_images, X_test, y_test, *, max_cost=0.005,
             float_input=False):
    """Ship int8 copies of a model folder's networks, if they cost little.

    Each network is exported to ONNX and statically quantised to int8
    (:func:`fersk.onnx.quantize_network`, activations calibrated on
    ``calibration_images``).  The model is then scored on ``(X_test,
    y_test)`` on ONNX Runtime twice, in float32 and in int8 (its test-time
    views as saved); if int8 loses more than ``max_cost`` of accuracy the
    folder is left as it was and ValueError says by how much.  Otherwise
    each graph is written into the folder as ``<network>.int8-<hash>.onnx`` and
    recorded in ``pipeline.json`` under ``int8`` (size, SHA-256, the
    ``.keras`` file's SHA-256, both accuracies), so that
    ``load(folder, backend="onnx-int8")`` can check it, and
    ``backend="auto"`` picks it.  Every file is written atomically, the
    graphs under new names before ``pipeline.json`` records them, so an
    interrupted run leaves the recorded ones whole; the graphs an earlier
    (or interrupted) ``quantize`` wrote, files of the model's networks named
    ``<network>.int8-<hash>.onnx``, are deleted once no longer recorded,
    never another file (whatever an earlier record names).  Networks
    that read a representation (mapped LBP, LBP codes) are refused: the
    calibration is on faces.  Needs TensorFlow, ``tf2onnx`` and onnxruntime
    (``pip install 'fersk[onnx]'``).

    Parameters
    ----------
    name : str or path-like
        A folder written by :func:`save` (format 4).  Bundled models'
        names are refused: fersk does not write into its own package.
    calibration_images : array-like of shape (n, height, width)
        A few hundred training faces as the network reads them (after the
        pipeline's FaceCropper; uint8 scale).
    X_test, y_test : array-like
        Faces (as ``calibration_images``) and labels the cost is measured
        on: held-out data never trained on, e.g. FER-2013 PublicTest.
    max_cost : float, default=0.005
        The most accuracy int8 may lose (0.005: half a point).
    float_input : bool, default=False
        Every node up to each network's first convolution in float32
        (:func:`fersk.onnx.quantize_network`): the same predictions on x86
        CPUs with and without VNNI, for that convolution's speed.  Recorded.

    Returns
    -------
    record : dict
        What ``pipeline.json`` now records under ``int8``.

    Raises
    ------
    ValueError
        If int8 costs more than ``max_cost``, or the model is unknown; if
        ``name`` is a bundled model's folder (by name, None or path); if
        ``y_test`` holds labels that are not the model's classes (the cost
        could not be measured); if the calibration images are not at least
        one image of the network's input size and channels.

    Examples
    --------
    >>> from fersk import pretrained
    >>> pretrained.quantize("runs/my_model", calib, X_public, y_public)  # doctest: +SKIP
    {'network.keras': {'file': 'network.int8-....onnx', ...}}
    """
    from fersk.onnx import _import_ort, export_network, quantize_network
    from fersk.onnx._common import _atomic_write

    if isinstance(name, str) and name in available():
        # fersk's own package folder: every later load in this environment would change.
        raise ValueError(
            f"{name!r} is a bundled model: give a folder (copy it first, e.g. with "
            "fersk.pretrained.convert), fersk does not write into its own package."
        )
    folder = _model_dir(name)
    if _folders.MODELS_DIR.resolve() in (folder.resolve(), *folder.resolve().parents):
        # name=None (the default model) or a path into the package, as for a name.
        raise ValueError(
            f"{folder} is a bundled model's folder: give a folder of your own (copy it "
            "first, e.g. with fersk.pretrained.convert), fersk does not write into its "
            "own package."
        )
    spec = _read_spec(folder)
    calibration = np.asarray(calibration_images, dtype=np.float32)
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    if len(X_test) != len(y_test) or len(X_test) == 0:
        raise ValueError(f"X_test and y_test must be as long and not empty; got {len(X_test)} "
                         f"and {len(y_test)}.")
    entries = _network_entries(spec["steps"])
    missing = [e["keras_file"] for e in entries if e["keras_file"] not in spec.get("networks", {})]
    if missing:  # formats 1-3 record no SHA-256 to tie a graph to its network
        raise ValueError(f"{folder} records no SHA-256 of {missing} (a folder of an earlier "
                         "format): convert it first (fersk.pretrained.convert).")
    _import_ort()
    import fersk.layers  # noqa: F401  (registers fersk's layers for safe loading)

    keras_pipe = _build_pipeline(folder, spec, _load_step)
    _refuse_representations(keras_pipe, folder)
    unknown = np.unique(y_test[~np.isin(y_test, keras_pipe.classes_)])
    if len(unknown):  # names for a model of codes: every face "wrong" in both, cost 0
        raise ValueError(
            f"y_test holds labels {unknown[:10].tolist()} that are not the model's classes "
            f"{keras_pipe.classes_.tolist()}: int8's cost could not be measured."
        )
    networks = _network_estimators(spec["steps"], [est for _, est in keras_pipe.steps])
    _ensure_exported(folder, spec, networks=False)  # MTCNN's graphs, where the model detects
    with tempfile.TemporaryDirectory() as tmp:
        floats, made = {}, {}
        for entry, est in zip(entries, networks):
            # Exported afresh (not the cache's copy, which may predate what a graph records).
            stem = Path(entry["keras_file"]).stem
            floats[entry["keras_file"]] = export_network(est, Path(tmp) / f"{stem}.onnx")
            made[entry["keras_file"]] = quantize_network(
                floats[entry["keras_file"]], Path(tmp) / f"{stem}.int8.onnx", calibration,
                float_input=float_input)
        float_model = _build_pipeline(folder, spec, functools.partial(_load_onnx_step, graphs=floats))
        # The same pipeline, each network from its int8 graph (by its .keras file).
        int8_model = _build_pipeline(folder, spec, functools.partial(_load_onnx_step, graphs=made))
        float_right = int(np.sum(float_model.predict(X_test) == y_test))
        int8_right = int(np.sum(int8_model.predict(X_test) == y_test))
        float_acc, int8_acc = float_right / len(y_test), int8_right / len(y_test)
        # Counted in faces: 0.680 - 0.675 is 0.0050000000000000044 in floats.
        if float_right - int8_right > max_cost * len(y_test) + 1e-9:
            raise ValueError(
                f"{folder}: int8 costs {100 * (float_acc - int8_acc):.2f} points of accuracy on the "
                f"{len(y_test)} test faces ({float_acc:.4f} -> {int8_acc:.4f}), more than max_cost "
                f"{100 * max_cost:.2f}; the folder is unchanged."
            )
        records = {}
        for keras_file, graph in made.items():
            data = Path(graph).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            # A new name per graph: an interrupted run leaves the recorded graphs whole.
            relative = str(Path(keras_file).with_suffix("")) + f".int8-{digest[:12]}.onnx"
            records[keras_file] = {
                "file": relative, "size": len(data), "sha256": digest,
                "keras_sha256": spec["networks"][keras_file]["sha256"],
                "calibration_faces": len(calibration), "test_faces": len(y_test),
                "test_accuracy_float32": round(float_acc, 4),
                "test_accuracy_int8": round(int8_acc, 4),
                "float_input": bool(float_input),
            }
            _atomic_write(folder / relative, data)
    # pipeline.json as read (format upgrades aside), with the records, swapped in last.
    document = json.loads((folder / "pipeline.json").read_text(encoding="utf-8"))
    document["int8"] = records
    _atomic_write(folder / "pipeline.json", (json.dumps(document, indent=1) + "\n").encode("utf-8"))
    fsync_path(folder)
    # The graphs of an earlier (or interrupted) quantize, no longer recorded: only
    # names fersk gives them, whatever else an old record named (a user's file).
    kept = {r["file"] for r in records.values()}
    for entry in folder.iterdir():
        if (entry.name not in kept and _is_own_int8(entry.name, records, entry)
                and entry.is_file() and not entry.is_symlink()):
            entry.unlink(missing_ok=True)
    return records


def _refuse_representations(pipe, folder):
    """int8 graphs are calibrated on faces: a network that reads something
    else (mapped LBP, LBP codes) would be calibrated on the wrong values."""
    from fersk.face import FaceCropper

    last = pipe.steps[-1][1]
    before = [est for _, est in pipe.steps[:-1] if not isinstance(est, FaceCropper)]
    for _, member in getattr(last, "estimators", None) or []:
        before += [est for _, est in getattr(member, "steps", [])[:-1]]
    if before:
        raise ValueError(
            f"{folder}: a network of this model reads {type(before[0]).__name__}'s output, "
            "not the faces; quantize calibrates on faces, so it does not make int8 graphs "
            "for such models."
        )
