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
"""

import hashlib
import importlib
import inspect
import json
import os
import re
import secrets
import shutil
import zipfile
from glob import escape as glob_escape
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

__all__ = [
    "BACKENDS", "DEFAULT_MODEL", "SAFE_CLASSES", "available", "convert", "export", "info",
    "load", "save",
]

#: Name of the model :func:`load` returns when called without a name.
DEFAULT_MODEL = "wild_vgg_fast"

#: What :func:`load` runs the networks with: Keras on TensorFlow, or ONNX
#: Runtime (no TensorFlow; see :mod:`fersk.onnx`).
BACKENDS = ("keras", "onnx")

#: The classes a ``pipeline.json`` may name (module-qualified).
SAFE_CLASSES = (
    "fersk.face.FaceCropper",
    "fersk.lbp.LBPCodeTransformer",
    "fersk.lbp.LBPHistogram",
    "fersk.mapped_lbp.MDSMappedLBP",
    "fersk.classifiers.CNNClassifier",
    "fersk.classifiers.LBCNNClassifier",
    "fersk.ensemble.CNNEnsembleClassifier",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.pipeline.Pipeline",
)

#: Version of the ``pipeline.json`` layout written: 2 added ensembles, 3
#: stores every estimator by one rule (an ensemble's members as its
#: ``estimators`` parameter, nothing derivable), 4 records each network
#: file's size, SHA-256 and shapes under ``networks``.  1-3 are read too.
FORMAT_VERSION = 4
MODELS_DIR = Path(__file__).resolve().parent / "models"



def available():
    """Names of the pretrained models bundled with fersk.

    Returns
    -------
    names : list of str
        Sorted model names, each accepted by :func:`load` and :func:`info`.

    Examples
    --------
    >>> from fersk import pretrained
    >>> pretrained.DEFAULT_MODEL in pretrained.available()
    True
    """
    if not MODELS_DIR.is_dir():
        return []
    # A save in progress (or killed) leaves <name>.tmp-<hex>: not a model.
    return sorted(p.parent.name for p in MODELS_DIR.glob("*/pipeline.json")
                  if not re.search(r"\.(tmp|old)-[0-9a-f]{8}$", p.parent.name))


def _model_dir(name):
    name = DEFAULT_MODEL if name is None else name
    # A bundled model's name means the bundled model, whatever folders the
    # current directory holds: a planted ./fer2013_cnn/ must not shadow it.
    if isinstance(name, str) and name in available():
        return MODELS_DIR / name
    try:
        path = Path(name)
    except TypeError:
        raise ValueError(
            f"a model is a bundled name or a folder; got a {type(name).__name__}."
        ) from None
    if (path / "pipeline.json").is_file():
        return path
    aside = sorted(path.parent.glob(f"{glob_escape(path.name)}.old-*"))
    if aside and not path.exists():
        raise ValueError(
            f"no model folder {str(name)!r}: a save was interrupted while replacing it; the "
            f"previous model is whole in {str(aside[-1])!r} (rename it back)."
        )
    raise ValueError(
        f"no pretrained model {str(name)!r}: give one of {available()} or a folder "
        "written by fersk.pretrained.save (holding pipeline.json)."
    )


def info(name=None):
    """Description and metrics of a pretrained model, without loading it.

    Parameters
    ----------
    name : str or path-like, default=None
        A bundled model's name (see :func:`available`) or a folder written
        by :func:`save`; None means :data:`DEFAULT_MODEL`.

    Returns
    -------
    info : dict
        ``name``, ``description``, ``classes`` (the labels, in output
        order), ``class_names``, ``steps`` (step names and classes) and
        ``metrics`` (as given to :func:`save`: PublicTest accuracy,
        training time and hardware, ...).

    Examples
    --------
    >>> from fersk import pretrained
    >>> meta = pretrained.info()
    >>> meta["class_names"]
    ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral']
    """
    path = _model_dir(name)
    spec = _read_spec(path)
    return {
        "name": spec.get("name", path.name),
        "description": spec.get("description", ""),
        "classes": spec.get("classes", []),
        "class_names": spec.get("class_names", []),
        "steps": [(s["name"], s["class"]) for s in spec["steps"]],
        "metrics": spec.get("metrics", {}),
    }


def _read_spec(path):
    """``pipeline.json`` parsed and checked in shape; ValueError naming what is wrong."""
    file = path / "pipeline.json"
    try:
        spec = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file} is not valid JSON ({exc}).") from None
    except RecursionError:
        raise ValueError(f"{file} is nested too deeply to describe a model.") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{file} must hold a JSON object; it holds a {type(spec).__name__}.")
    version = spec.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"{file}: format_version must be a whole number; got {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {version}; this fersk reads up to "
            f"{FORMAT_VERSION}: upgrade fersk."
        )
    _expect(spec, "steps", list, file)
    if not spec["steps"]:
        raise ValueError(f"{file}: 'steps' is empty.")
    for key, kind in (("name", str), ("description", str), ("classes", list),
                      ("class_names", list), ("metrics", dict)):
        if key in spec:
            _expect(spec, key, kind, file)
    for step in spec["steps"]:
        _check_step(step, file)
    if version >= 4:
        _check_networks(spec, file)
    else:  # earlier formats recorded nothing to check the files against
        spec.pop("networks", None)
    if version < FORMAT_VERSION:
        for step in spec["steps"]:
            _upgrade_entry(step)
        spec["format_version"] = FORMAT_VERSION
    return spec


#: What format 4 records of each network file, and the JSON type of each.
_NETWORK_RECORD = {"size": int, "sha256": str, "n_params": int, "input_shape": list,
                   "output_shape": list}


def _check_networks(spec, file):
    """Format 4's ``networks``: well-formed records (one per ``keras_file``,
    checked as each network is loaded)."""
    _expect(spec, "networks", dict, file)
    for name, record in spec["networks"].items():
        for key, kind in _NETWORK_RECORD.items():
            _expect(record, key, kind, f"{file}: networks[{name!r}]")
        if not re.fullmatch(r"[0-9a-f]{64}", record["sha256"]):
            raise ValueError(f"{file}: networks[{name!r}]['sha256'] is not a SHA-256 digest.")


def _upgrade_entry(entry):
    """A step of format 1 or 2 as format 3 (in place).

    Format 2 stored an ensemble's members under ``members`` as
    ``(name, representation or null, network)``; format 3 stores them as
    the ensemble's ``estimators`` parameter: the network alone, or
    ``Pipeline([("representation", ...), ("network", ...)])``.  Attributes
    that format 3 derives at load (``code_distances_``, ``weights_``...) are
    dropped and the ensemble's ``input_shape_`` is now ``image_shape_``.
    """
    if "members" in entry:
        pairs = []
        for member in entry.pop("members"):
            network, representation = member["network"], member.get("representation")
            _upgrade_entry(network)
            estimator = network
            if representation is not None:
                _upgrade_entry(representation)
                estimator = {
                    "name": member["name"], "class": "sklearn.pipeline.Pipeline",
                    "params": {"steps": [
                        {"__tuple__": ["representation", {"__estimator__": representation}]},
                        {"__tuple__": ["network", {"__estimator__": network}]},
                    ]},
                    "fitted": {},
                }
            pairs.append({"__tuple__": [member["name"], {"__estimator__": estimator}]})
        entry["params"]["estimators"] = pairs
        if "input_shape_" in entry["fitted"]:
            entry["fitted"]["image_shape_"] = entry["fitted"].pop("input_shape_")
    for attr in getattr(_safe_class(entry["class"]), "_derived_attributes", ()):
        entry["fitted"].pop(attr, None)


def _expect(entry, key, kind, where):
    if not isinstance(entry, dict) or key not in entry:
        raise ValueError(f"{where}: an entry lacks {key!r}.")
    if not isinstance(entry[key], kind) or isinstance(entry[key], bool) != (kind is bool):
        raise ValueError(
            f"{where}: {key!r} must be a {kind.__name__}; got {type(entry[key]).__name__}."
        )


def _check_step(step, where):
    if not isinstance(step, dict):
        raise ValueError(f"{where}: each step must be a JSON object; got {type(step).__name__}.")
    for key, kind in (("name", str), ("class", str), ("params", dict), ("fitted", dict)):
        _expect(step, key, kind, where)
    if "keras_file" in step:
        _expect(step, "keras_file", str, where)
    if "members" in step:
        _expect(step, "members", list, where)
        for member in step["members"]:
            _expect(member, "name", str, where)
            _expect(member, "network", dict, where)
            _check_step(member["network"], where)
            if member.get("representation") is not None:
                _check_step(member["representation"], where)


def load(name=None, *, labels="codes", backend="keras"):
    """Load a pretrained model as a fitted scikit-learn Pipeline.

    Parameters
    ----------
    name : str or path-like, default=None
        A bundled model's name (see :func:`available`) or a folder written
        by :func:`save`; None means :data:`DEFAULT_MODEL`.
    labels : {"codes", "names"}, default="codes"
        What ``predict`` returns and ``classes_`` holds: "codes", the labels
        the model was trained on (FER-2013's integers 0-6 for the bundled
        models, what :func:`fersk.datasets.load_fer2013`'s ``target``
        holds, so ``score`` compares like with like); "names", their names
        (``"happy"``), as ``fer`` and deepface answer.  Probabilities are
        the same either way.
    backend : {"keras", "onnx"}, default="keras"
        What runs the networks.  "onnx": ONNX Runtime, without importing
        TensorFlow: each network is a
        :class:`~fersk.onnx.OnnxNetworkClassifier` (its test-time views
        included: the same probabilities to about 1e-6) and MTCNN is
        ``FaceCropper(detector="mtcnn-onnx")``.  Their ONNX files are read
        from the cache (:func:`fersk.onnx.cache_dir`); those missing are
        exported first, which needs TensorFlow once (:func:`export`, or
        ``fersk export`` on a machine that has it).  Needs ``pip install
        'fersk[onnx]'``.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Fitted: ``predict``, ``predict_proba`` and ``score`` take photos
        (the first step, a :class:`~fersk.face.FaceCropper`, finds and crops
        the face) as arrays, lists of arrays or file paths.  Its labels are
        FER-2013's integers 0-6 (``info(name)["class_names"]`` names them),
        or the names with ``labels="names"``.

    Raises
    ------
    ValueError
        If the model is unknown, or its description names a class outside
        :data:`SAFE_CLASSES` or a newer format, or its files do not belong
        together: a network file missing, damaged (not a valid Keras file)
        or differing from what ``pipeline.json`` records of it (size,
        SHA-256, parameter count, shapes), a network unlike the one its
        parameters build, ``class_names`` that do not name ``classes``.
        The message names the folder and the file; or ``backend`` is unknown.
    ImportError
        With ``backend="onnx"``, if onnxruntime is not installed, or if
        ONNX files are missing and TensorFlow (needed to export them) is.

    Notes
    -----
    Parameters that hold paths (a network's ``checkpoint_dir``) are set to
    None: a model folder never makes a later ``fit`` write or delete files
    elsewhere.

    Examples
    --------
    >>> from skimage import data
    >>> from fersk import pretrained
    >>> model = pretrained.load()
    >>> proba = model.predict_proba([data.astronaut()])
    >>> proba.shape
    (1, 7)
    >>> names = pretrained.info()["class_names"]
    >>> names[model.predict([data.astronaut()])[0]] in names
    True
    >>> pretrained.load(labels="names").predict([data.astronaut()])
    array(['happy'], dtype='<U8')

    Without TensorFlow (the ONNX files exported once, then cached):

    >>> fast = pretrained.load(backend="onnx")  # doctest: +SKIP
    >>> bool(abs(fast.predict_proba([data.astronaut()]) - proba).max() < 1e-4)  # doctest: +SKIP
    True
    """
    if labels not in ("codes", "names"):
        raise ValueError(f"labels must be 'codes' or 'names'; got {labels!r}.")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}.")
    path = _model_dir(name)
    spec = _read_spec(path)
    networks = spec.get("networks")
    if backend == "onnx":
        from fersk.onnx import _import_ort

        _import_ort()
        _ensure_exported(path, spec)
    else:
        import fersk.layers  # noqa: F401  (registers fersk's layers for safe loading)
    try:
        pipe = Pipeline([(step["name"], _load_step(step, path, networks, backend))
                         for step in spec["steps"]])
        _check_classes(pipe, spec)
        if labels == "names":
            # Ensemble members keep their codes: the ensemble maps columns
            # to its own classes_.
            pipe.steps[-1][1].classes_ = np.array(
                spec.get("class_names") or _class_names(pipe.classes_.tolist()))
    except ValueError:
        raise
    except (TypeError, KeyError, AttributeError, IndexError, RecursionError, OverflowError,
            OSError, zipfile.BadZipFile) as exc:
        # The checks above name the usual problems; anything else a
        # mutated file provokes still surfaces as the documented ValueError.
        raise ValueError(
            f"{path / 'pipeline.json'} does not describe a loadable model "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    return pipe


def _check_classes(pipe, spec):
    """The labels saved must be the network's: one per output."""
    last = pipe.steps[-1][1]
    model = getattr(last, "model_", None)
    n_outputs = None if model is None else model.output_shape[-1]
    classes = getattr(last, "classes_", None)
    if classes is None:
        raise ValueError("the model's last step has no classes_.")
    if n_outputs is not None and len(classes) != n_outputs:
        raise ValueError(
            f"the model has {len(classes)} classes_ but its network has {n_outputs} "
            "outputs."
        )
    if "classes" in spec and list(spec["classes"]) != np.asarray(classes).tolist():
        raise ValueError("pipeline.json's 'classes' differ from the last step's classes_.")
    if "class_names" in spec:
        # What save writes: FER-2013's names for its integer labels 0-6,
        # else the labels as text.  Names that disagree would mislabel
        # every prediction shown to a user.
        expected = _class_names(np.asarray(classes).tolist())
        if spec["class_names"] != expected:
            raise ValueError(
                f"pipeline.json's 'class_names' {spec['class_names']} do not name its classes "
                f"{np.asarray(classes).tolist()} (expected {expected})."
            )


#: Fitted state a ``pipeline.json`` may not set: the network comes from its
#: ``.keras`` file, ensemble members from the ensemble's parameters.
_NOT_FROM_JSON = {"model_", "estimators_", "named_estimators_"}

#: Parameters that must keep their default in a model folder: a Pipeline's
#: ``memory`` would make a later fit read joblib's (pickled) cache.
_DEFAULT_ONLY = {"sklearn.pipeline.Pipeline": {"memory": None}}


#: ``_saved_attributes`` of the safe classes that do not declare their own:
#: scikit-learn's (fersk's classes declare theirs next to their code).
_SAVED_ATTRIBUTES = {
    "sklearn.preprocessing._data.StandardScaler": (
        "mean_", "var_", "scale_", "n_samples_seen_", "n_features_in_", "feature_names_in_",
    ),
    # A Pipeline's fitted state is its steps' (its classes_ and
    # n_features_in_ are properties reading them).
    "sklearn.pipeline.Pipeline": (),
}


def _saved_attributes(cls):
    """The fitted attributes ``cls`` keeps in ``pipeline.json``, declared in code."""
    own = getattr(cls, "_saved_attributes", None)
    if own is not None:
        return tuple(own)
    return _SAVED_ATTRIBUTES.get(f"{cls.__module__}.{cls.__qualname__}", ())


def _load_step(entry, folder, networks=None, backend="keras"):
    """One fitted estimator from its entry (nested estimators included);
    ``networks`` is format 4's record of the network files (None before)."""
    if backend == "onnx":
        return _load_onnx_step(entry, folder)
    cls = _safe_class(entry["class"])
    est = _construct(cls, entry, folder, networks)
    _set_fitted(est, cls, entry)
    if "keras_file" in entry:
        est.model_ = _load_network(folder, entry["keras_file"], networks)
        _check_network_params(est, folder, entry["keras_file"])
    restore = getattr(est, "_restore_derived", None)
    if restore is not None:
        restore()
    return est


def _path_params(cls):
    """Parameters of ``cls`` that may hold a path (``checkpoint_dir``)."""
    constraints = getattr(cls, "_parameter_constraints", {})
    return {name for name, allowed in constraints.items()
            if any(c is os.PathLike for c in allowed)}


def _construct(cls, entry, folder, networks=None, backend="keras"):
    """``cls`` from the entry's parameters, validated as ``fit`` would."""
    params = _decode(entry["params"], folder, networks, backend)
    # A path from elsewhere is not this machine's: a later fit would write
    # there (and delete a checkpoint_dir when done).
    for key in _path_params(cls) & set(params):
        params[key] = None
    unknown = sorted(set(params) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ValueError(f"{entry['name']}: {cls.__name__} has no parameter(s) {unknown}.")
    for key, default in _DEFAULT_ONLY.get(entry["class"], {}).items():
        if params.get(key, default) is not default:
            raise ValueError(f"{entry['name']}: {cls.__name__}'s {key} must be {default!r}.")
    est = cls(**params)
    try:
        est._validate_params()
    except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is a ValueError
        raise ValueError(f"{entry['name']}: {exc}") from None
    return est


def _set_fitted(est, cls, entry):
    fitted = _decode(entry["fitted"], None)
    allowed = (set(_saved_attributes(cls)) - _NOT_FROM_JSON
               - set(getattr(cls, "_derived_attributes", ())))
    unknown = sorted(set(fitted) - allowed)
    if unknown:
        raise ValueError(
            f"{entry['name']}: {unknown} are not fitted attributes of {cls.__name__} that a "
            f"model folder may set (allowed: {sorted(allowed)})."
        )
    for attr, value in fitted.items():
        setattr(est, attr, value)


def _sha256(file):
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _network_record(model, file):
    """What format 4 records of a network and its file."""
    return {
        "size": file.stat().st_size,
        "sha256": _sha256(file),
        "n_params": int(model.count_params()),
        "input_shape": json.loads(json.dumps(model.input_shape)),
        "output_shape": json.loads(json.dumps(model.output_shape)),
    }


def _load_network(folder, name, networks):
    """The network of ``keras_file`` ``name``, checked against its record."""
    import keras

    target = _keras_path(folder, name)
    record = None if networks is None else networks.get(name)
    if networks is not None and record is None:
        raise ValueError(
            f"{Path(folder) / 'pipeline.json'} records no size, SHA-256 and shapes for {name!r} "
            "under 'networks'."
        )
    mismatch = (f"{target} is not the network {Path(folder) / 'pipeline.json'} describes "
                "(a save interrupted, or files of different folders mixed)")
    if record is not None:
        size = target.stat().st_size
        if size != record["size"]:
            raise ValueError(f"{mismatch}: {size} bytes, recorded {record['size']}.")
        if _sha256(target) != record["sha256"]:
            raise ValueError(f"{mismatch}: its SHA-256 differs from the one recorded.")
    # Keras reports a damaged zip as "File not found"; say what it is.
    try:
        with zipfile.ZipFile(target) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{target} is not a valid Keras file ({exc}).") from None
    if damaged is not None:
        raise ValueError(f"{target} is not a valid Keras file ({damaged} is damaged).")
    try:
        model = keras.saving.load_model(target, safe_mode=True)
    except Exception as exc:  # whatever a malformed archive provokes inside Keras
        what = "is refused by Keras's safe mode" if "safe_mode" in str(exc) else (
            "is not a valid Keras file")
        raise ValueError(f"{target} {what} ({type(exc).__name__}: {exc}).") from exc
    if record is not None:
        found = _network_record(model, target)
        for key in ("n_params", "input_shape", "output_shape"):
            if found[key] != record[key]:
                raise ValueError(f"{mismatch}: {key} {found[key]}, recorded {record[key]}.")
    return model


def _check_network_params(est, folder, name):
    """The network file must be the one the estimator's parameters build
    (same parameter count): a card saying width 0.5 over a width-0.25
    network gives other probabilities than the card's."""
    import keras

    from fersk._keras_base import BaseKerasImageEstimator

    if not isinstance(est, BaseKerasImageEstimator):
        return
    inner = [layer for layer in est.model_.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        return  # not a network assembled by fit: nothing to rebuild
    network = inner[-1]
    try:
        # the outputs found: classes_ are checked against them apart
        n_outputs = network.output_shape[-1]
        built = est._build_network(tuple(network.input_shape[1:]), n_outputs, 0)
        expected = int(built.count_params())
    except Exception as exc:  # parameters that cannot build this network
        raise ValueError(
            f"{Path(folder) / name}: the parameters in pipeline.json cannot build its network "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    if expected != int(network.count_params()):
        raise ValueError(
            f"{Path(folder) / name} holds a network of {network.count_params()} parameters; "
            f"the parameters in pipeline.json build one of {expected}: they do not belong "
            "together."
        )


def _keras_path(folder, name):
    """The network file: a ``.keras`` file inside the model folder, nothing else."""
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root) or target.suffix != ".keras":
        raise ValueError(
            f"keras_file {name!r} must name a .keras file inside the model folder {root}."
        )
    if not target.is_file():
        raise ValueError(f"keras_file {name!r} is missing from {root}.")
    return target


def save(pipeline, path, *, description="", metrics=None, keep=()):
    """Write a fitted pipeline as a pretrained-model folder.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Steps of the classes in :data:`SAFE_CLASSES`, the last a fitted
        fersk network estimator or a fitted
        :class:`~fersk.CNNEnsembleClassifier` whose members are such
        networks on representations of :data:`SAFE_CLASSES` (members that
        are :class:`~sklearn.frozen.FrozenEstimator` s are stored as the
        estimators they wrap, dropped members as ``'drop'``); parameters
        must be JSON values (a named ``architecture``, not a callable).
        A pipeline returned by :func:`load` can be saved again: that is how
        a folder of an earlier format is re-saved in this one (see
        :func:`convert`).
    path : str or path-like
        Folder to create with ``pipeline.json`` and the ``.keras`` network
        files, or a model folder to replace.  The new folder is written
        beside it (``<path>.tmp-<random>``), flushed to disk and renamed
        into place, so that a crash leaves the old model or the new one,
        never a mixture.  The old folder's files other than its
        ``pipeline.json`` and the networks it named are kept.
    description : str, default=""
        One line on what the model is.
    metrics : dict or None, default=None
        JSON-serialisable results for the model card (accuracy, training
        time, hardware, command...).

    Returns
    -------
    path : pathlib.Path
        The folder written.

    keep : tuple of str, default=()
        Names of entries of the folder at ``path`` that are not a model's
        and go on living in it (``fersk train`` keeps its ``training_state``
        there until the model is saved): they neither make the folder
        refused nor are lost; the new folder gets a copy of them.

    Raises
    ------
    ValueError
        If ``path`` is a file, or a non-empty folder that is not a model
        folder (no readable ``pipeline.json``) besides ``keep``: save never
        replaces what fersk did not write.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from fersk import CNNClassifier, FaceCropper, pretrained
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    >>> pipe = make_pipeline(
    ...     FaceCropper(detector=None, size=(16, 16)),
    ...     CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
    ...                   random_state=0),
    ... ).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pretrained.save(pipe, tmp, description="a toy")
    ...     again = pretrained.load(folder)
    ...     same = np.allclose(again.predict_proba(X), pipe.predict_proba(X))
    >>> same
    True
    """
    from fersk._keras_base import BaseKerasImageEstimator
    from fersk.ensemble import CNNEnsembleClassifier

    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"pipeline must be a sklearn Pipeline; got {type(pipeline).__name__}.")
    network = _unfrozen(pipeline.steps[-1][1])
    fitted_network = isinstance(network, BaseKerasImageEstimator) and hasattr(network, "model_")
    fitted_ensemble = isinstance(network, CNNEnsembleClassifier) and hasattr(
        network, "estimators_"
    )
    if not (fitted_network or fitted_ensemble):
        raise ValueError(
            "the pipeline's last step must be a fitted fersk network estimator or a fitted "
            "CNNEnsembleClassifier of them."
        )
    path = Path(path)
    name = path.name
    if path.is_symlink():  # replace the folder linked to, not the link
        path = path.resolve()
    previous = _replaceable(path, ignore=set(keep))
    kept = [path / k for k in keep if (path / k).exists()] if path.is_dir() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    # The folder is written whole beside its place, then renamed into it:
    # killed at any point, ``path`` holds the old model or the new one,
    # never the new networks under the old pipeline.json.
    staging = _sibling(path, "tmp")
    staging.mkdir()
    try:
        records = {}
        steps = [_step_entry(step, est, staging, step, records) for step, est in pipeline.steps]
        classes = network.classes_.tolist()
        spec = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "description": description,
            "classes": classes,
            "class_names": _class_names(classes),
            "steps": steps,
            "networks": records,
            "metrics": metrics or {},
        }
        _write_json(staging / "pipeline.json", spec)
        if previous is not None or kept:  # what is not the old model comes along
            _carry_foreign_files(path, previous or {}, staging)
        _fsync_tree(staging)
        _move_into_place(staging, path, replace=previous is not None or bool(kept))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Path(path)


def _replaceable(path, ignore=()):
    """The ``pipeline.json`` of the model folder at ``path``, None if there is
    nothing there (or an empty folder); ValueError for anything else.

    ``ignore``: names of entries that do not count (``fersk train``'s own
    training state).
    """
    if not path.exists():
        return None
    if not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder: give a folder to save the model in.")
    if not any(p.name not in ignore for p in path.iterdir()):
        return None
    try:
        spec = json.loads((path / "pipeline.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list):
        raise ValueError(
            f"{path} is not empty and is not a fersk model folder (no readable pipeline.json): "
            "fersk will not replace it; give a new or empty folder, or remove it yourself."
        )
    return spec


def _sibling(path, kind):
    """A fresh name beside ``path``: ``<path>.tmp-<random>`` (or ``.old-``)."""
    return path.parent / f"{path.name}.{kind}-{secrets.token_hex(4)}"


def _write_json(file, spec):
    with open(file, "w", encoding="utf-8") as f:
        f.write(json.dumps(spec, indent=1) + "\n")


def _carry_foreign_files(path, previous, staging):
    """Copy into the new folder what the old one held besides its model
    (notes, a licence...): fersk deletes only files it wrote."""
    own = {"pipeline.json", *_keras_files(previous)}
    for entry in path.iterdir():
        target = staging / entry.name
        if entry.name in own or target.exists():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target, follow_symlinks=False)


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a folder cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder):
    """Everything under ``folder`` on disk before it is renamed into place
    (else a power cut could leave the rename without the data)."""
    for root, _, files in os.walk(folder):
        for file in files:
            if not os.path.islink(os.path.join(root, file)):
                _fsync(os.path.join(root, file))
        _fsync(root)


def _exchange(a, b):
    """Swap two paths in one step (Linux's ``renameat2(RENAME_EXCHANGE)``);
    False where the system or the file system does not offer it."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def _move_into_place(staging, path, replace):
    """Rename the finished folder ``staging`` to ``path``; the model folder
    there before, if ``replace``, is removed once the new one is in place."""
    if not replace:
        os.replace(staging, path)  # also over an empty folder
    elif _exchange(staging, path):
        shutil.rmtree(staging)  # now the old folder
    else:
        # Two renames: killed between them, ``path`` is missing and the old
        # model waits, whole, in ``<path>.old-<random>`` (load says so).
        aside = _sibling(path, "old")
        os.rename(path, aside)
        os.rename(staging, path)
        _fsync(path.parent)
        shutil.rmtree(aside)
    _fsync(path.parent)


def _keras_files(node):
    """The ``keras_file`` names in a ``pipeline.json`` document."""
    if isinstance(node, dict):
        own = {node["keras_file"]} if isinstance(node.get("keras_file"), str) else set()
        return own.union(*(_keras_files(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_keras_files(value) for value in node))
    return set()


def _unfrozen(est):
    """The fitted estimator inside a FrozenEstimator (how trained networks
    join an ensemble), stored as itself."""
    from sklearn.frozen import FrozenEstimator

    return est.estimator if isinstance(est, FrozenEstimator) else est


def convert(source, path):
    """Re-save a model folder of an earlier format in the current one.

    Parameters
    ----------
    source : str or path-like
        A bundled model's name or a model folder, of any format :func:`load`
        reads (folders of formats 1 to 3 are converted while read).
    path : str or path-like
        Folder to write, as by :func:`save`.

    Returns
    -------
    path : pathlib.Path
        The folder written: the same predictions, description and metrics,
        in format :data:`FORMAT_VERSION`.

    Examples
    --------
    >>> import tempfile
    >>> from fersk import pretrained
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pretrained.convert("fer2013_cnn", tmp + "/fer2013_cnn")
    ...     same = pretrained.info(folder)["metrics"] == pretrained.info("fer2013_cnn")["metrics"]
    >>> same
    True
    """
    meta = info(source)
    return save(load(source), path, description=meta["description"], metrics=meta["metrics"])


def _saved_params(est):
    """The parameters stored: ``_saved_params()`` where a class defines it."""
    own = getattr(est, "_saved_params", None)
    return est.get_params(deep=False) if own is None else own()


def _saved_state(est):
    """The fitted attributes its class saves (``_saved_attributes``) that it has.

    Any other public fitted attribute, neither saved nor derived, is an
    error here: :func:`load` would refuse the folder.
    """
    saved = _saved_attributes(type(est))
    skip = {"model_", *saved, *getattr(est, "_derived_attributes", ())}
    undeclared = sorted(
        k for k in vars(est) if k.endswith("_") and not k.startswith("_") and k not in skip
    )
    if undeclared:
        raise ValueError(
            f"{type(est).__name__} has fitted attributes {undeclared} that its class "
            "declares neither saved (_saved_attributes) nor derived (_derived_attributes); "
            "a model folder could not restore them."
        )
    state = vars(est)
    return {k: state[k] for k in saved if k in state}


def _step_entry(step_name, est, folder, stem, records):
    """JSON entry of one fitted estimator; its network, if any, written as
    ``stem.keras``, those of nested estimators as ``stem.<name>.keras``."""
    import keras

    from fersk._keras_base import BaseKerasImageEstimator

    est = _unfrozen(est)
    qualname = f"{type(est).__module__}.{type(est).__qualname__}"
    if qualname not in SAFE_CLASSES:
        raise ValueError(
            f"step {step_name!r} is a {qualname}, which pretrained models cannot hold; "
            f"allowed: {list(SAFE_CLASSES)}."
        )
    if isinstance(est, BaseKerasImageEstimator) and not hasattr(est, "model_"):
        raise ValueError(f"{stem}: the network is not fitted.")
    params = dict(_saved_params(est))
    for key in _path_params(type(est)) & set(params):
        params[key] = None  # this machine's paths mean nothing where the folder goes
    entry = {
        "name": step_name,
        "class": qualname,
        "params": _encode(params, f"{step_name} parameters", folder, stem, records),
        "fitted": _encode(_saved_state(est), f"{step_name} fitted attributes"),
    }
    if isinstance(getattr(est, "model_", None), keras.Model):
        entry["keras_file"] = f"{stem}.keras"
        copy = _inference_copy(est.model_)
        copy.save(folder / entry["keras_file"])
        records[entry["keras_file"]] = _network_record(copy, folder / entry["keras_file"])
    return entry


def _inference_copy(model):
    """The model without its compiled optimizer: its state (Adam's moments)
    would double the file and is of no use for prediction."""
    import keras

    # clone_model would copy the compiled state too; from_config does not.
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def _class_names(classes):
    from fersk.datasets import FER2013_CLASSES

    if all(isinstance(c, int) and 0 <= c < len(FER2013_CLASSES) for c in classes):
        return [FER2013_CLASSES[c] for c in classes]
    return [str(c) for c in classes]


def _safe_class(qualname):
    if qualname not in SAFE_CLASSES:
        raise ValueError(f"pipeline.json names {qualname!r}, which is not in fersk.pretrained.SAFE_CLASSES.")
    module, _, cls = qualname.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def _encode(value, where, folder=None, stem=None, records=None):
    """JSON form of parameters and fitted attributes (arrays, tuples and
    estimators tagged); an estimator in a ``(name, estimator)`` pair is
    stored under ``stem.name``."""
    if hasattr(value, "get_params") and not isinstance(value, type) and folder is not None:
        name = stem.rpartition(".")[2]
        return {"__estimator__": _step_entry(name, value, folder, stem, records)}
    if isinstance(value, dict):
        return {str(k): _encode(v, where, folder, stem, records) for k, v in value.items()}
    if isinstance(value, tuple):
        if value and isinstance(value[0], str):
            stem = f"{stem}.{value[0]}"
        return {"__tuple__": [_encode(v, where, folder, stem, records) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where, folder, stem, records) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            if value.dtype.kind in "UO" and all(isinstance(v, str) for v in value.ravel()):
                return {"__ndarray__": value.tolist(), "dtype": "str", "shape": list(value.shape)}
            raise ValueError(f"{where}: cannot store an array of dtype {value.dtype}.")
        return {"__ndarray__": value.ravel().tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not np.isfinite(value):
            return {"__float__": repr(value)}
        return value
    raise ValueError(f"{where}: cannot store a {type(value).__name__} ({value!r}) in JSON.")


def _decode(value, folder, networks=None, backend="keras"):
    """Values from their JSON form; nested estimators (parameters only, as
    ``folder`` is None for fitted attributes) are loaded from ``folder``."""
    if isinstance(value, list):
        return [_decode(v, folder, networks, backend) for v in value]
    if not isinstance(value, dict):
        return value
    if "__estimator__" in value:
        if folder is None:
            raise ValueError("pipeline.json: an estimator may only be a parameter.")
        _check_step(value["__estimator__"], "pipeline.json")
        return _load_step(value["__estimator__"], folder, networks, backend)
    if "__tuple__" in value:
        return tuple(_decode(v, folder, networks, backend) for v in value["__tuple__"])
    if "__float__" in value:
        return float(value["__float__"])
    if "__ndarray__" in value:
        dtype = value.get("dtype")
        if dtype == "str":
            return np.array(value["__ndarray__"], dtype=str).reshape(value["shape"])
        if not isinstance(dtype, str) or not re.fullmatch(r"[<>|=]?[biuf]\d{0,2}", dtype):
            raise ValueError(f"an array in pipeline.json has the unsupported dtype {dtype!r}.")
        return np.array(value["__ndarray__"], dtype=np.dtype(dtype)).reshape(value["shape"])
    return {k: _decode(v, folder, networks, backend) for k, v in value.items()}


# ------------------------------------------------------------------- ONNX
#: The fitted attributes of a network entry its ONNX twin takes.
_ONNX_FITTED = ("classes_", "image_shape_", "n_features_in_", "input_dtype_")


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
    parameters the graph bakes in (so a changed model is exported anew)."""
    from fersk import onnx

    params = _decode(entry["params"], None)
    keras_file = _keras_path(folder, entry["keras_file"])
    digest = onnx._digest(
        keras_file.read_bytes(), onnx.OPSET, params.get("test_time_flip"),
        params.get("test_time_crops"), params.get("crop_size"), params.get("input_scaling"),
    )
    model = re.sub(r"[^\w.-]", "_", spec.get("name") or Path(folder).name)
    return onnx.cache_dir() / f"{model}.{keras_file.stem}-{digest}.onnx"


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


def _ensure_exported(folder, spec):
    """Export the ONNX files the model needs and the cache lacks (with
    TensorFlow); nothing is imported when they are all there."""
    from fersk import onnx

    missing = [e for e in _network_entries(spec["steps"]) if not _onnx_file(folder, spec, e).is_file()]
    mtcnn = onnx._mtcnn_paths()
    mtcnn_missing = _uses_mtcnn(spec) and (
        mtcnn is None or not all(p.is_file() for p in mtcnn.values())
    )
    if missing or mtcnn_missing:
        try:
            import tensorflow  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f"backend='onnx': {folder.name}'s ONNX files are not in {onnx.cache_dir()} and "
                f"exporting them needs TensorFlow ({exc}); run `fersk export {folder.name}` "
                "where TensorFlow is installed and copy that folder (or set FERSK_CACHE)."
            ) from exc
        export(folder)


def _load_onnx_step(entry, folder):
    """One fitted estimator of the ONNX pipeline: networks as
    OnnxNetworkClassifier, MTCNN as detector='mtcnn-onnx', the rest as
    stored (nothing here imports TensorFlow)."""
    from fersk.onnx import OnnxNetworkClassifier

    spec = _read_spec(Path(folder))
    if "keras_file" in entry:
        params = _decode(entry["params"], None)
        fitted = _decode(entry["fitted"], None)
        est = OnnxNetworkClassifier(
            _onnx_file(folder, spec, entry), image_shape=params.get("image_shape")
        )
        for attr in _ONNX_FITTED:
            if attr in fitted:
                setattr(est, attr, fitted[attr])
        est.head_ = params.get("head", "softmax")
        return est
    cls = _safe_class(entry["class"])
    if entry["class"] == "fersk.face.FaceCropper" and entry["params"].get("detector") == "mtcnn":
        entry = {**entry, "params": {**entry["params"], "detector": "mtcnn-onnx"}}
    est = _construct(cls, entry, folder, None, "onnx")
    _set_fitted(est, cls, entry)
    restore = getattr(est, "_restore_derived", None)
    if restore is not None:
        restore()
    return est


def export(name=None, *, overwrite=False):
    """Export a model's networks (and MTCNN) to ONNX, into the cache.

    Each network of the model, with its input scaling and test-time views,
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
        pipe = load(path)
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
