"""Estimators to and from the JSON entries of ``pipeline.json``: one rule
for every class (parameters, then the fitted attributes it declares)."""

import inspect
import os
import re

import numpy as np

from fersk._labels import _stored_classes

from ._networks import (
    _check_network_params,
    _inference_copy,
    _load_network,
    _network_record,
)
from ._spec import SAFE_CLASSES, _check_step, _safe_class

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


def _load_step(entry, folder, networks=None):
    """One fitted estimator from its entry (nested estimators included);
    ``networks`` is format 4's record of the network files (None before)."""
    cls = _safe_class(entry["class"])
    est = _construct(cls, entry, folder, networks)
    _set_fitted(est, cls, entry)
    if "keras_file" in entry:
        est.model_ = _load_network(folder, entry["keras_file"], networks)
        _check_network_params(est, folder, entry["keras_file"])
        if hasattr(est, "_network_settings"):
            # The network was built with the parameters saved beside it: a
            # warm start with other builder settings is refused, as after fit.
            est._built_settings = est._network_settings()
    restore = getattr(est, "_restore_derived", None)
    if restore is not None:
        restore()
    return est


def _path_params(cls):
    """Parameters of ``cls`` that may hold a path (``checkpoint_dir``)."""
    constraints = getattr(cls, "_parameter_constraints", {})
    return {name for name, allowed in constraints.items()
            if any(c is os.PathLike for c in allowed)}


def _construct(cls, entry, folder, networks=None, load_step=None):
    """``cls`` from the entry's parameters, validated as ``fit`` would;
    nested estimators are made by ``load_step`` (default :func:`_load_step`)."""
    params = _decode(entry["params"], folder, networks, load_step)
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


def _unfrozen(est):
    """The fitted estimator inside a FrozenEstimator (how trained networks
    join an ensemble), stored as itself."""
    from sklearn.frozen import FrozenEstimator

    return est.estimator if isinstance(est, FrozenEstimator) else est


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
    state = {k: vars(est)[k] for k in saved if k in vars(est)}
    if "classes_" in state:  # as save's "classes": trained labels, in output order
        state["classes_"] = _stored_classes(est)
    return state


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
    for key, default in _DEFAULT_ONLY.get(qualname, {}).items():
        # A nested Pipeline's memory: a cache folder of this machine, which load
        # refuses; the predictions do not depend on it.
        params[key] = default
    entry = {
        "name": step_name,
        "class": qualname,
        "params": _encode(params, f"{step_name} parameters", folder, stem, records),
        "fitted": _encode(_saved_state(est), f"{step_name} fitted attributes"),
    }
    if isinstance(getattr(est, "model_", None), keras.Model):
        entry["keras_file"] = _network_file_name(stem, records)
        copy = _inference_copy(est.model_)
        copy.save(folder / entry["keras_file"])
        records[entry["keras_file"]] = _network_record(copy, folder / entry["keras_file"])
    return entry


def _network_file_name(stem, records):
    """``<stem>.keras`` as a plain file name not yet taken.

    Stems are made of the user's step and member names: "../x" or "a/b"
    would write outside the folder, and "b.net" beside a member "b" with a
    step "net" gives one stem for two networks (the second overwriting the
    first).  Other characters become "_", a name taken gets a number.
    """
    base = re.sub(r"^\.+", "_", re.sub(r"[^\w.-]", "_", stem))
    name, n = f"{base}.keras", 1
    while name in records:
        n += 1
        name = f"{base}-{n}.keras"
    return name


def _encode(value, where, folder=None, stem=None, records=None):
    """JSON form of parameters and fitted attributes (arrays, tuples and
    estimators tagged); an estimator in a ``(name, estimator)`` pair is
    stored under ``stem.name``."""
    if hasattr(value, "get_params") and not isinstance(value, type) and folder is not None:
        name = stem.rpartition(".")[2]
        return {"__estimator__": _step_entry(name, value, folder, stem, records)}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):  # class_weight={0: 1.0, 1: 3.0}
            # JSON keys are strings: pairs keep the keys' types.
            return {"__pairs__": [[_encode(k, where), _encode(v, where, folder, stem, records)]
                                  for k, v in value.items()]}
        return {k: _encode(v, where, folder, stem, records) for k, v in value.items()}
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


def _decode(value, folder, networks=None, load_step=None):
    """Values from their JSON form; nested estimators (parameters only, as
    ``folder`` is None for fitted attributes) are loaded from ``folder``."""
    if isinstance(value, list):
        return [_decode(v, folder, networks, load_step) for v in value]
    if not isinstance(value, dict):
        return value
    if "__estimator__" in value:
        if folder is None:
            raise ValueError("pipeline.json: an estimator may only be a parameter.")
        _check_step(value["__estimator__"], "pipeline.json")
        return (load_step or _load_step)(value["__estimator__"], folder, networks)
    if "__tuple__" in value:
        return tuple(_decode(v, folder, networks, load_step) for v in value["__tuple__"])
    if "__pairs__" in value and len(value) == 1:
        pairs = value["__pairs__"]
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ValueError("pipeline.json: '__pairs__' holds [key, value] pairs.")
        out = {}
        for k, v in pairs:
            key = _decode(k, None)
            if not isinstance(key, (str, int, float, bool, tuple)):
                raise ValueError(f"pipeline.json: a dictionary key cannot be {key!r}.")
            out[key] = _decode(v, folder, networks, load_step)
        return out
    if "__float__" in value:
        return float(value["__float__"])
    if "__ndarray__" in value:
        dtype = value.get("dtype")
        if dtype == "str":
            return np.array(value["__ndarray__"], dtype=str).reshape(value["shape"])
        if not isinstance(dtype, str) or not re.fullmatch(r"[<>|=]?[biuf]\d{0,2}", dtype):
            raise ValueError(f"an array in pipeline.json has the unsupported dtype {dtype!r}.")
        return np.array(value["__ndarray__"], dtype=np.dtype(dtype)).reshape(value["shape"])
    return {k: _decode(v, folder, networks, load_step) for k, v in value.items()}
