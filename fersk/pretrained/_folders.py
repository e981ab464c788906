"""Finding a model (bundled name or folder), describing it, and building
the fitted Pipeline its ``pipeline.json`` describes from a step loader."""

import os
import re
import zipfile
from glob import escape as glob_escape
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import validate_params

from ._spec import _class_names, _read_spec

#: Name of the model :func:`load` returns when called without a name.
DEFAULT_MODEL = "wild_vgg_fast"


#: What :func:`load` runs the networks with: Keras on TensorFlow, ONNX
#: Runtime (no TensorFlow; see :mod:`fersk.onnx`) in float32 or on the int8
#: graphs a folder ships, or "auto" (int8 where shipped and onnxruntime is
#: installed, Keras otherwise).
BACKENDS = ("auto", "keras", "onnx", "onnx-int8")

#: What every public function taking a model accepts (:func:`_model_dir`
#: then says which names and folders there are).
MODEL_CONSTRAINT = [str, os.PathLike, None]

# The bundled models' folder, beside this package.
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


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
    """The folder of a model: a bundled name, a folder or None (the default);
    its type is checked by the public functions' ``MODEL_CONSTRAINT``."""
    name = DEFAULT_MODEL if name is None else name
    # A bundled model's name means the bundled model, whatever folders the
    # current directory holds: a planted ./fer2013_cnn/ must not shadow it.
    if isinstance(name, str) and name in available():
        if (Path(name) / "pipeline.json").is_file():  # said, not taken silently
            import warnings

            warnings.warn(
                f"{name!r} is a bundled model's name, so the bundled model is used, not the "
                f"model folder {name!r} in the current directory; to use that folder, give "
                f"it as a path ('./{name}' or pathlib.Path({name!r})), or rename it.",
                UserWarning,
                stacklevel=4,
            )
        return MODELS_DIR / name
    path = Path(name)
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


@validate_params({"name": MODEL_CONSTRAINT}, prefer_skip_nested_validation=True)
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
        training time and hardware, ...) and ``int8`` (the int8 graphs the
        folder ships, by network file, with what they cost:
        :func:`quantize`; empty when none).

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
        "int8": spec.get("int8", {}),
    }


def _build_pipeline(path, spec, load_step, labels="codes"):
    """The fitted Pipeline of the folder ``path`` whose ``pipeline.json``
    reads ``spec``, each step made by ``load_step(entry, folder, networks)``
    (Keras networks or their ONNX twins)."""
    networks = spec.get("networks")
    try:
        pipe = Pipeline([(step["name"], load_step(step, path, networks))
                         for step in spec["steps"]])
        _check_classes(pipe, spec)
        last = pipe.steps[-1][1]
        # Ensemble members keep their codes: the ensemble maps columns to its
        # own classes_.
        names = np.array(spec.get("class_names") or _class_names(last.classes_.tolist()))
        labels_out = np.asarray(last.classes_) if labels == "codes" else names
        order = np.argsort(labels_out, kind="stable")
        # The folder's names, in the order of classes_ (fersk._labels.class_names_of).
        last._class_names = names[order].tolist()
        # classes_ sorted, as scikit-learn's estimators have them (its scorers
        # read probability columns in that order); the columns follow.
        if labels == "names":  # what save stores again: the labels trained on
            last._label_codes = np.asarray(last.classes_)
        last.classes_ = labels_out[order]
        if not np.array_equal(order, np.arange(len(order))):
            last._label_columns = order
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

def _n_outputs(est):
    """The outputs of a network step (Keras model or ONNX graph), or None."""
    model = getattr(est, "model_", None)
    if model is not None:
        return model.output_shape[-1]
    from fersk.onnx import OnnxNetworkClassifier

    if isinstance(est, OnnxNetworkClassifier):
        from fersk.onnx._common import _session

        n = _session(est.path).get_outputs()[0].shape[-1]
        return n if isinstance(n, int) else None
    return None


def _check_classes(pipe, spec):
    """The labels saved must be the network's: one per output."""
    last = pipe.steps[-1][1]
    n_outputs = _n_outputs(last)
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
        # A name per class (save's class_names, or its default): too few or
        # repeated names would put one word on several classes.
        names = spec["class_names"]
        if (len(names) != len(classes) or not all(isinstance(n, str) and n for n in names)
                or len(set(names)) != len(names)):
            raise ValueError(
                f"pipeline.json's 'class_names' {names} do not name its classes "
                f"{np.asarray(classes).tolist()}: one distinct non-empty string per class."
            )
