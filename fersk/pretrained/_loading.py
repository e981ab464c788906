"""Loading a model (bundled name or folder) as a fitted Pipeline, its
networks run by Keras or by ONNX Runtime."""

import functools
import os
import re
import warnings

from sklearn.utils._param_validation import StrOptions, validate_params

from ._codec import _load_step
from ._folders import BACKENDS, MODEL_CONSTRAINT, _build_pipeline, _model_dir
from ._int8 import _INT8_SUFFIX, _has_int8, _int8_graphs
from ._onnx_backend import _ensure_exported, _load_onnx_step
from ._spec import _read_spec


@validate_params(
    {
        "name": MODEL_CONSTRAINT,
        "labels": [StrOptions({"codes", "names"})],
        "backend": [StrOptions(set(BACKENDS))],
    },
    prefer_skip_nested_validation=True,
)
def load(name=None, *, labels="codes", backend="auto"):
    """Load a pretrained model as a fitted scikit-learn Pipeline.

    Parameters
    ----------
    name : str or path-like, default=None
        A bundled model's name (see :func:`available`) or a folder written
        by :func:`save`; None means :data:`DEFAULT_MODEL`.  A bundled name
        always means the bundled model; a folder of that name in the current
        directory is said to be passed over (a :class:`UserWarning`): give
        it as a path, ``./name`` or :class:`pathlib.Path`.
    labels : {"codes", "names"}, default="codes"
        What ``predict`` returns and ``classes_`` holds: "codes", the labels
        the model was trained on (FER-2013's integers 0-6 for the bundled
        models, what :func:`fersk.datasets.load_fer2013`'s ``target``
        holds, so ``score`` compares like with like); "names", their names
        (``"happy"``), as ``fer`` and deepface answer.  Probabilities are
        the same either way, in the columns of ``classes_``, which are sorted
        as every scikit-learn classifier's (its scorers rely on it): for
        names ``"angry", "disgust", "fear", "happy", "neutral", "sad",
        "surprise"``, not FER-2013's order.
    backend : {"auto", "keras", "onnx", "onnx-int8"}, default="auto"
        What runs the networks.  "keras": Keras on TensorFlow, the only
        backend whose networks can be trained further (``fit``,
        ``warm_start``).  "onnx": ONNX Runtime, without importing
        TensorFlow: each network is a
        :class:`~fersk.onnx.OnnxNetworkClassifier` (the same test-time
        views, parameters as on the Keras network, and the same
        probabilities to about 1e-6) and MTCNN is
        ``FaceCropper(detector="mtcnn-onnx")``.  Their ONNX files are read
        from the cache (:func:`fersk.onnx.cache_dir`); those missing are
        exported first, which needs TensorFlow once (:func:`export`, or
        ``fersk export`` on a machine that has it).  Needs ``pip install
        'fersk[onnx]'``.  "onnx-int8": as "onnx", each network run from the
        int8 graph the folder ships (made by :func:`quantize`, which keeps
        it only where it costs at most half a point of accuracy; ``info``'s
        ``int8`` says what it cost), so its probabilities are the float
        network's to a few hundredths, not to 1e-6 (the default against
        ``backend="keras"`` on PublicTest, 2026-12-06: each face's largest
        difference 0.005 at the median, 0.07 at the 99th percentile, the
        same argmax on 98.8 %; up to 0.35 for the faces
        near the mirror's gate, which get the mirror on one backend and
        not the other; every face with both views: at most 0.07); ValueError if the
        folder has none or its graphs, or the ``.keras`` files they were
        made from, are not the ones recorded (missing, or size or SHA-256
        differing: as on Keras, the folder is not the model it describes).
        "auto": "onnx-int8" where the folder ships int8 graphs and
        onnxruntime is installed (on CPUs with int8 dot-product
        instructions several times faster than float32), "keras" otherwise,
        and, with a warning, where the folder's int8 graphs (or their
        ``.keras`` files) are missing or
        not the ones recorded, or the model detects faces with MTCNN and
        its ONNX graphs are neither cached nor exportable (no ``tf2onnx``,
        a read-only cache).
        The default model ships them: to train it further, load it with
        ``backend="keras"``.

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

    Without TensorFlow (the ONNX files exported once, then cached), the
    float32 graph gives the Keras network's probabilities (the default's
    ``"auto"`` loads its int8 graph: for most faces within a few
    thousandths of them, see ``backend``):

    >>> keras_path = pretrained.load(backend="keras")  # doctest: +SKIP
    >>> fast = pretrained.load(backend="onnx")  # doctest: +SKIP
    >>> photo = [data.astronaut()]
    >>> p_keras, p_onnx = keras_path.predict_proba(photo), fast.predict_proba(photo)  # doctest: +SKIP
    >>> bool(abs(p_onnx - p_keras).max() < 1e-4)  # doctest: +SKIP
    True
    """
    path = _model_dir(name)
    spec = _read_spec(path)
    graphs = None
    if backend == "auto":
        # Checked once (every network file and graph hashed): used below as they are.
        graphs = _has_int8(spec) and _has_ort() and _int8_usable(path, spec) or None
        backend = "onnx-int8" if graphs else "keras"
    if backend == "keras":
        import fersk.layers  # noqa: F401  (registers fersk's layers for safe loading)

        return _build_pipeline(path, spec, _load_step, labels)
    from fersk.onnx import _import_ort

    _import_ort()
    if backend == "onnx-int8" and graphs is None:
        graphs = _int8_graphs(path, spec)
    _ensure_exported(path, spec, networks=graphs is None)
    return _build_pipeline(path, spec, functools.partial(_load_onnx_step, graphs=graphs), labels)


def _int8_usable(path, spec):
    """The folder's checked int8 graphs (by ``.keras`` file) where they, and
    the network files they were made from, are there and whole, and MTCNN's
    ONNX graphs cached or exportable now; else None: backend 'auto' runs the
    (checked) Keras networks, as before int8, saying why (a folder copied
    without its .onnx files, a network file swapped, no tf2onnx, a read-only
    cache)."""
    try:
        graphs = _int8_graphs(path, spec)
        _ensure_exported(path, spec, networks=False)
    except (ValueError, ImportError, OSError) as exc:
        warnings.warn(
            f"backend='auto': {path.name}'s int8 graphs are not used ({exc}); running on Keras "
            "(backend='keras' says so without this warning).", UserWarning, stacklevel=3)
        return None
    return graphs


def _has_ort():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _backend_of(pipeline):
    """What runs a loaded model's networks (``fersk serve``'s ``/api/model``,
    ``fersk evaluate``): "keras", "onnx" (float32) or "onnx-int8"."""
    try:
        from fersk.onnx import OnnxNetworkClassifier
        from fersk.onnx import cache_dir as onnx_cache_dir
    except ImportError:  # the ONNX extra is not installed: nothing runs on it
        return "keras"
    last = pipeline.steps[-1][1]
    members = [est for _, est in getattr(last, "estimators", None) or []] or [last]
    networks = [getattr(m, "steps", [(None, m)])[-1][1] for m in members]
    onnx = [n for n in networks if isinstance(n, OnnxNetworkClassifier)]
    if not onnx:
        return "keras"
    # quantize's graphs are <network>.int8-<12 hex>.onnx in the model folder; the
    # float graphs live in ONNX's cache, whatever the model's name holds.
    cache = os.path.realpath(onnx_cache_dir())
    int8 = [os.path.dirname(os.path.realpath(str(n.path))) != cache
            and re.fullmatch(r".+" + _INT8_SUFFIX, os.path.basename(str(n.path))) is not None
            for n in onnx]
    return "onnx-int8" if all(int8) else "onnx"
