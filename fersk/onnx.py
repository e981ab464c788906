"""Prediction with ONNX Runtime, without TensorFlow.

A fitted fersk network (its input scaling, the test-time views it averages
and the network with batch norm folded in) is exported once as an ONNX
graph, with TensorFlow; from then on :class:`OnnxNetworkClassifier` runs it
with ``onnxruntime`` alone.  The face detector of the bundled pipelines,
MTCNN, is exported the same way (its three networks, PNet, RNet and ONet),
and :class:`OnnxMTCNN` runs its glue (image pyramid, non-maximum
suppression, box regression, landmarks) in NumPy, as the ``mtcnn`` package
does with TensorFlow.  ``FaceCropper(detector="mtcnn-onnx")`` uses it.

Exported files go to a cache folder (:func:`cache_dir`): ``$FERSK_CACHE``
if set, else ``~/.cache/fersk``, sub-folder ``onnx``.  Their names hold a
hash of what they were made from (the ``.keras`` file, the test-time
views, the opset), so a changed model is exported anew and never read from
a stale file.  Files are written atomically (a temporary file, then
``os.replace``) and fersk deletes nothing there.

Most users call :func:`fersk.pretrained.load` with ``backend="onnx"`` (or
the command ``fersk export``), which export what is missing and return a
pipeline of these classes.

Examples
--------
>>> from skimage import data
>>> from fersk import pretrained
>>> model = pretrained.load("fer2013_vgg_fast", backend="onnx")  # doctest: +SKIP
>>> model.predict_proba([data.astronaut()]).shape  # doctest: +SKIP
(1, 7)
"""

import functools
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from fersk._validation import validate_images

__all__ = [
    "OPSET",
    "OnnxMTCNN",
    "OnnxNetworkClassifier",
    "cache_dir",
    "export_mtcnn",
    "export_network",
    "quantize_network",
]

#: ONNX opset of the exported graphs.
OPSET = 17

#: Version of the export recipe: part of every cache file's hash, so that
#: a fersk exporting differently never reads files of an older recipe.
_RECIPE = "fersk-onnx-1"

_ORT_HINT = "pip install 'fersk[onnx]'"
_EXPORT_HINT = (
    "exporting needs TensorFlow and tf2onnx: pip install 'fersk[onnx]' on a machine "
    "with fersk's TensorFlow (or run `fersk export` there and copy the cache folder)"
)


def _import_ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"backend='onnx' needs onnxruntime, which is not installed ({exc}): {_ORT_HINT}."
        ) from exc
    return onnxruntime


def cache_dir():
    """The folder exported ONNX files are written to and read from.

    Returns
    -------
    path : pathlib.Path
        ``$FERSK_CACHE/onnx`` when the environment variable ``FERSK_CACHE``
        is set, else ``~/.cache/fersk/onnx``.  Not created here.

    Examples
    --------
    >>> import os
    >>> from fersk.onnx import cache_dir
    >>> cache_dir().name
    'onnx'
    """
    root = os.environ.get("FERSK_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fersk"
    return base / "onnx"


def _digest(*parts):
    h = hashlib.sha256(_RECIPE.encode())
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, bytes) else str(part).encode())
    return h.hexdigest()[:16]


def _file_digest(path, *extra):
    return _digest(Path(path).read_bytes(), OPSET, *extra)


def _atomic_write(path, data):
    """``data`` (bytes) to ``path`` through a temporary file in its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ---------------------------------------------------------------- sessions
_SESSIONS = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path):
    """One ``onnxruntime.InferenceSession`` per file (and modification time)."""
    ort = _import_ort()
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            _SESSIONS[key] = session
    return session


# ------------------------------------------------------------------ export
def _tf2onnx():
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise ImportError(f"cannot export to ONNX ({exc}): {_EXPORT_HINT}.") from exc
    try:  # tf2onnx 1.17 still uses np.object (removed in NumPy 2): Keras patches it
        import warnings

        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            patch_tf2onnx()
    except ImportError:  # pragma: no cover
        pass
    return tf, tf2onnx


def _convert(fn, signature):
    """ONNX bytes of a ``tf.function`` over ``signature``."""
    import logging

    tf, tf2onnx = _tf2onnx()
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(
        tf.function(fn, input_signature=signature), input_signature=signature, opset=OPSET
    )
    return proto.SerializeToString()


def network_onnx_name(estimator_keras_file, estimator, stem):
    """Cache file name of a network: ``<stem>-<hash>.onnx`` (internal)."""
    return f"{stem}-{_network_digest(estimator_keras_file, estimator)}.onnx"


def _network_digest(keras_file, est):
    return _file_digest(
        keras_file, est.test_time_flip, est.test_time_crops, est.crop_size, est.input_scaling
    )


def export_network(estimator, path):
    """Write a fitted fersk network's inference graph as an ONNX file.

    The graph is what ``estimator.predict_proba`` computes before its last
    normalisation: the input scaling, the test-time views
    (``test_time_crops``, ``test_time_flip``), the network on each view
    with batch norm folded into its convolutions, and the mean of the
    views' outputs.  It takes float32 images ``(n, height, width,
    channels)`` named ``images`` and gives ``(n, n_classes)``.  Needs
    TensorFlow and ``tf2onnx``.

    Parameters
    ----------
    estimator : fersk network estimator
        A fitted :class:`~fersk.CNNClassifier` (or another fersk Keras
        classifier).
    path : str or path-like
        The ``.onnx`` file to write (atomically; its folder is created).

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from fersk import CNNClassifier
    >>> from fersk.onnx import OnnxNetworkClassifier, export_network
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.integers(0, 256, (20, 16, 16), dtype=np.uint8), np.arange(20) % 2
    >>> net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
    ...                     random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     onnx_net = OnnxNetworkClassifier.from_estimator(net, export_network(net, tmp + "/n.onnx"))
    ...     gap = np.abs(onnx_net.predict_proba(X) - net.predict_proba(X)).max()
    >>> bool(gap < 1e-4)
    True
    """
    import keras

    tf, _ = _tf2onnx()
    from fersk._keras_base import _INFERENCE_MODELS
    from fersk._inference import fold_batch_norm

    check_is_fitted(estimator)
    model = estimator.model_
    cached = _INFERENCE_MODELS.setdefault(model, {})
    if "network" not in cached:
        cached["network"] = fold_batch_norm(model.layers[-1])
    network = cached["network"]
    scalers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            if layer.invert:  # pragma: no cover  (fersk never inverts)
                raise ValueError("cannot export an inverting Normalization layer.")
            scalers.append((
                keras.ops.convert_to_numpy(layer.mean).astype(np.float32),
                keras.ops.convert_to_numpy(layer.variance).astype(np.float32),
            ))
    eps = keras.config.epsilon()
    shape = tuple(model.input_shape[1:])

    def infer(images):
        z = images
        # Keras's Normalization, with its statistics as constants of the
        # graph (captured tensors would become inputs of the ONNX graph).
        for mean, variance in scalers:
            z = (z - tf.constant(mean)) / tf.maximum(tf.sqrt(tf.constant(variance)), eps)
        outputs = [network(v, training=False) for v in estimator._views(z)]
        total = outputs[0]
        for out in outputs[1:]:  # keras.layers.Average's order
            total = total + out
        return tf.identity(total / len(outputs) if len(outputs) > 1 else total, name="proba")

    signature = [tf.TensorSpec((None, *shape), tf.float32, name="images")]
    return _atomic_write(path, _convert(infer, signature))


def quantize_network(path, out, calibration_images):
    """An int8 copy of an exported network (static quantisation, QDQ).

    Weights per output channel and activations are quantised to int8 by
    ``onnxruntime.quantization.quantize_static``, activations calibrated
    on ``calibration_images`` (min-max).  fersk does not use int8 copies
    by default: measure their accuracy first (``benchmarks/bench_onnx.py``).

    Parameters
    ----------
    path : str or path-like
        An ONNX file written by :func:`export_network`.
    out : str or path-like
        The int8 ONNX file to write (atomically).
    calibration_images : ndarray of shape (n, height, width[, channels])
        A few hundred training images, on the network's input scale.

    Returns
    -------
    out : pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.onnx import quantize_network
    >>> calib = np.random.default_rng(0).integers(0, 256, (64, 48, 48)).astype("float32")
    >>> quantize_network("net.onnx", "net-int8.onnx", calib)  # doctest: +SKIP
    PosixPath('net-int8.onnx')
    """
    _import_ort()
    from onnxruntime.quantization import (
        CalibrationDataReader, QuantFormat, QuantType, quantize_static,
    )

    x = np.asarray(calibration_images, dtype=np.float32)
    x = x[..., np.newaxis] if x.ndim == 3 else x

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": x[i : i + 32]} for i in range(0, len(x), 32)])

        def get_next(self):
            return next(self.batches, None)

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "int8.onnx"
        quantize_static(
            str(path), str(target), Reader(), quant_format=QuantFormat.QDQ,
            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QInt8,
        )
        return _atomic_write(out, target.read_bytes())


# ------------------------------------------------------------- classifier
class OnnxNetworkClassifier(ClassifierMixin, BaseEstimator):
    """A fitted fersk network run by ONNX Runtime (no TensorFlow).

    Predicts as the network it was exported from (:func:`export_network`):
    the same input checks, test-time views and probabilities (to about
    1e-6).  It cannot be trained: ``fit`` raises.  Built by
    :func:`fersk.pretrained.load` with ``backend="onnx"`` or
    :meth:`from_estimator`.

    Parameters
    ----------
    path : str or path-like
        The exported ``.onnx`` file.
    image_shape : tuple or None, default=None
        As the original network's ``image_shape`` (how flattened rows are
        images).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, in the order of the network's outputs.
    image_shape_ : tuple
        Image shape seen in fit.
    n_features_in_ : int
        Pixels (times channels) per image.
    input_dtype_ : str
        dtype of the training images (``'|u1'``: 0-255 pixel values).
    head_ : str
        The activation of the network's output layer (``'softmax'``,
        ``'tanh'``...): how outputs become probabilities.

    See Also
    --------
    fersk.pretrained.load : ``backend="onnx"`` builds pipelines of these.

    Examples
    --------
    >>> from fersk import datasets, pretrained  # doctest: +SKIP
    >>> model = pretrained.load("fer2013_cnn", backend="onnx")  # doctest: +SKIP
    >>> type(model[-1]).__name__  # doctest: +SKIP
    'OnnxNetworkClassifier'
    """

    def __init__(self, path, image_shape=None):
        self.path = path
        self.image_shape = image_shape

    @classmethod
    def from_estimator(cls, estimator, path):
        """The ONNX twin of a fitted fersk network exported to ``path``.

        Parameters
        ----------
        estimator : fersk network estimator
            The fitted network ``path`` was exported from.
        path : str or path-like
            Its ``.onnx`` file (see :func:`export_network`).

        Returns
        -------
        classifier : OnnxNetworkClassifier
            Fitted, with ``estimator``'s classes and input checks.

        Examples
        --------
        See :func:`export_network`.
        """
        check_is_fitted(estimator)
        out = cls(path, image_shape=estimator.image_shape)
        for attr in ("classes_", "image_shape_", "n_features_in_", "input_dtype_"):
            if hasattr(estimator, attr):
                setattr(out, attr, getattr(estimator, attr))
        out.head_ = estimator._fitted_head_activation()
        return out

    def fit(self, X, y=None):
        """Not available: an exported network cannot be trained.

        Parameters
        ----------
        X, y : ignored

        Returns
        -------
        self : OnnxNetworkClassifier
            Never: it always raises.

        Raises
        ------
        NotImplementedError
            Always: train the Keras estimator, then export it.
        """
        raise NotImplementedError(
            "OnnxNetworkClassifier cannot be trained: fit the Keras network, then export it "
            "(fersk.onnx.export_network or `fersk export`)."
        )

    def _validate_X(self, X):
        images, _ = validate_images(
            self, X, reset=False, image_shape=self.image_shape, input_name="X"
        )
        if (
            getattr(self, "input_dtype_", None) == "|u1" and images.dtype.kind == "f"
            and images.size and float(images.max()) <= 1.0
        ):
            raise ValueError(
                "the network was fitted on uint8 pixel values (0-255); X holds floats in "
                "[0, 1], scikit-image's convention. Pass them on the training scale: "
                "skimage.util.img_as_ubyte(X), or X * 255."
            )
        x = np.asarray(images, dtype=np.float32)
        return x[..., np.newaxis] if x.ndim == 3 else x

    def decision_function(self, X):
        """The network's view-averaged outputs, before normalisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in fit.

        Returns
        -------
        outputs : ndarray of shape (n_samples, n_classes)
            float32 outputs of the ONNX graph.

        Examples
        --------
        See :func:`export_network`.
        """
        check_is_fitted(self)
        x = self._validate_X(X)
        session = _session(self.path)
        name = session.get_inputs()[0].name
        batch = 256
        if not len(x):
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        return np.concatenate(
            [session.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
        )

    def predict_proba(self, X):
        """Class probabilities, as the Keras network's ``predict_proba``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in fit.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            float64, rows sum to 1, columns in the order of ``classes_``.

        Examples
        --------
        See :func:`export_network`.
        """
        outputs = np.asarray(self.decision_function(X), dtype=np.float64)
        if self.head_ == "tanh":
            outputs = np.clip(outputs, 0.0, 1.0)
            outputs[outputs.sum(axis=1) == 0] = 1.0
        return outputs / outputs.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Most probable class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in fit.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.

        Examples
        --------
        See :func:`export_network`.
        """
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.allow_nan = False
        return tags


# ------------------------------------------------------------------ MTCNN
# The numpy glue below follows the mtcnn package (1.0, MIT licence:
# mtcnn/utils/bboxes.py, images.py, landmarks.py and the three stages) step
# by step, with the same dtypes, so that the boxes are the package's up to
# float rounding; its TensorFlow image operations (tf.image.resize with
# method="area", tf.image.crop_and_resize) are re-implemented as TensorFlow
# computes them.  Sorts by score are stable, as fersk pins them for the
# Keras path (fersk.face._stable_mtcnn_sort).

_MTCNN_NETS = ("pnet", "rnet", "onet")


def _mtcnn_weights_digest():
    """Hash of the installed mtcnn package's weight files, found without
    importing it (importing mtcnn imports TensorFlow); None without it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mtcnn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"
    files = [folder / f"{net}.lz4" for net in _MTCNN_NETS]
    if not all(f.is_file() for f in files):
        return None
    return _digest(*(f.read_bytes() for f in files), OPSET)


def _mtcnn_paths(folder=None, digest=None):
    """The three ONNX files of MTCNN in ``folder`` (the cache by default)."""
    folder = Path(folder) if folder is not None else cache_dir()
    digest = digest or _mtcnn_weights_digest()
    if digest is None:  # mtcnn not installed here: the files exported elsewhere
        found = sorted(folder.glob("mtcnn-*-pnet.onnx"), key=lambda p: p.stat().st_mtime)
        if not found:
            return None
        digest = found[-1].name[len("mtcnn-") : -len("-pnet.onnx")]
    return {net: folder / f"mtcnn-{digest}-{net}.onnx" for net in _MTCNN_NETS}


def export_mtcnn(folder=None, *, overwrite=False):
    """Export the ``mtcnn`` package's PNet, RNet and ONet to ONNX files.

    Needs TensorFlow, ``tf2onnx`` and ``mtcnn``.  The files are named
    ``mtcnn-<hash>-pnet.onnx`` (and ``rnet``, ``onet``), the hash of the
    package's weight files; :class:`OnnxMTCNN` reads them.

    Parameters
    ----------
    folder : str or path-like or None, default=None
        Where to write them; None means :func:`cache_dir`.
    overwrite : bool, default=False
        Export again files that exist already.

    Returns
    -------
    paths : dict
        ``{"pnet": path, "rnet": path, "onet": path}``.

    Examples
    --------
    >>> from fersk.onnx import export_mtcnn
    >>> sorted(export_mtcnn())  # doctest: +SKIP
    ['onet', 'pnet', 'rnet']
    """
    paths = _mtcnn_paths(folder, _mtcnn_weights_digest() or "missing")
    if not overwrite and all(p.is_file() for p in paths.values()):
        return paths
    tf, _ = _tf2onnx()
    try:
        from mtcnn.stages import StageONet, StagePNet, StageRNet
    except ImportError as exc:
        raise ImportError(f"exporting MTCNN needs the mtcnn package ({exc}): pip install mtcnn.") from exc
    if _mtcnn_weights_digest() is None:  # pragma: no cover
        raise ImportError("the installed mtcnn package has no weight files to export.")
    shapes = {"pnet": (None, None), "rnet": (24, 24), "onet": (48, 48)}
    for net, stage in zip(_MTCNN_NETS, (StagePNet, StageRNet, StageONet)):
        model = stage().model
        signature = [tf.TensorSpec((None, *shapes[net], 3), tf.float32, name="images")]

        def run(images, model=model):
            return [tf.identity(out) for out in model(images)]

        _atomic_write(paths[net], _convert(run, signature))
    return paths


def _mtcnn_missing_message():
    return (
        f"detector='mtcnn-onnx' needs MTCNN exported to ONNX in {cache_dir()}; run "
        "`fersk export` (or fersk.onnx.export_mtcnn()) once where TensorFlow is installed."
    )


@functools.lru_cache(maxsize=256)
def _resize_area_weights(n_in, n_out):
    """(n_out, n_in) float32 weights of TensorFlow's area resize along one
    axis (resize_area_op.cc, align_corners=False), and the axis scale."""
    scale = np.float32(n_in) / np.float32(n_out)
    w = np.zeros((n_out, n_in), dtype=np.float32)
    for y in range(n_out):
        in_y = np.float32(y) * scale
        in_y1 = np.float32(y + 1) * scale
        for i in range(int(np.floor(in_y)), int(np.ceil(in_y1))):
            if i < in_y:
                s = min(np.float32(i + 1) - in_y, in_y1 - in_y)
            elif i + 1 > in_y1:
                s = in_y1 - np.float32(i)
            else:
                s = np.float32(1.0)
            w[y, min(max(i, 0), n_in - 1)] += s
    return w, scale


def _resize_area(images, shape):
    """``tf.image.resize(images, shape, method="area")`` in NumPy (float32)."""
    h, w = int(shape[0]), int(shape[1])
    wy, sy = _resize_area_weights(images.shape[1], h)
    wx, sx = _resize_area_weights(images.shape[2], w)
    x = images.astype(np.float32)
    out = np.einsum("yi,bijc->byjc", wy, x, optimize=True)
    out = np.einsum("xj,byjc->byxc", wx, out, optimize=True)
    return (out * np.float32(1.0 / (sy * sx))).astype(np.float32)


def _crop_and_resize(images, boxes, box_indices, size):
    """``tf.image.crop_and_resize`` (bilinear, extrapolation 0) in NumPy."""
    images = images.astype(np.float32)
    _, ih, iw, c = images.shape
    ch, cw = size
    boxes = np.asarray(boxes, dtype=np.float32)
    out = np.zeros((len(boxes), ch, cw, c), dtype=np.float32)
    ys = np.arange(ch, dtype=np.float32)
    xs = np.arange(cw, dtype=np.float32)
    for k, ((y1, x1, y2, x2), b) in enumerate(zip(boxes, box_indices)):
        hs = (y2 - y1) * np.float32(ih - 1) / np.float32(ch - 1)
        ws = (x2 - x1) * np.float32(iw - 1) / np.float32(cw - 1)
        in_y = y1 * np.float32(ih - 1) + ys * hs
        in_x = x1 * np.float32(iw - 1) + xs * ws
        vy = (in_y >= 0) & (in_y <= ih - 1)
        vx = (in_x >= 0) & (in_x <= iw - 1)
        top = np.floor(in_y).astype(np.int64).clip(0, ih - 1)
        bottom = np.ceil(in_y).astype(np.int64).clip(0, ih - 1)
        left = np.floor(in_x).astype(np.int64).clip(0, iw - 1)
        right = np.ceil(in_x).astype(np.int64).clip(0, iw - 1)
        y_lerp = (in_y - np.floor(in_y)).astype(np.float32)[:, None, None]
        x_lerp = (in_x - np.floor(in_x)).astype(np.float32)[None, :, None]
        img = images[int(b)]
        tl, tr = img[top][:, left], img[top][:, right]
        bl, br = img[bottom][:, left], img[bottom][:, right]
        t = tl + (tr - tl) * x_lerp
        bt = bl + (br - bl) * x_lerp
        crop = t + (bt - t) * y_lerp
        crop[~vy] = 0.0
        crop[:, ~vx] = 0.0
        out[k] = crop
    return out


def _sort_by_scores(tensor, scores, ascending=True):
    return tensor[np.argsort(scores if ascending else -scores, kind="stable")]


def _build_scale_pyramid(width, height, min_face_size, scale_factor, min_size=12):
    min_dim = min(width, height)
    scales_count = round(-((np.log(min_dim / min_size) / np.log(scale_factor)) + 1))
    m = min_size / min_face_size
    return m * scale_factor ** np.arange(scales_count)


def _pad_stack(images):
    """mtcnn's pad_stack_np with the default "center" justification."""
    sizes = np.stack([img.shape for img in images], axis=0)
    diff = sizes.max(axis=0, keepdims=True) - sizes
    mod = diff % 2
    diff = diff - mod
    pad_mask = np.asarray([[[0.5, 0.5], [0.5, 0.5], [0, 0]]])
    mod_mask = np.asarray([[[0, 1], [0, 1], [0, 0]]])
    pad = (pad_mask * diff[:, :, None] + mod_mask * mod[:, :, None]).astype(int)
    padded = np.stack([np.pad(img, p) for img, p in zip(images, pad)], axis=0)
    return padded, sizes, pad


def _generate_bounding_box(bbox_reg, bbox_class, threshold, strides=2, cell_size=12):
    confidence = bbox_class[:, :, :, 1]
    index = np.stack(np.where(confidence > threshold))
    reg_x1, reg_y1, reg_x2, reg_y2 = np.transpose(bbox_reg[index[0], index[1], index[2]], (1, 0))
    strides = np.asarray([[1], [strides], [strides]])
    up_left = index * strides + np.asarray([[0], [1], [1]])
    bottom_right = index * strides + np.asarray([[0], [cell_size], [cell_size]])
    reg_w = bottom_right[2] - up_left[2]
    reg_h = bottom_right[1] - up_left[1]
    x1 = up_left[2] + reg_x1 * reg_w
    y1 = up_left[1] + reg_y1 * reg_h
    x2 = bottom_right[2] + reg_x2 * reg_w
    y2 = bottom_right[1] + reg_y2 * reg_h
    boxes = np.stack(
        [index[0], x1, y1, x2, y2, confidence[index[0], index[1], index[2]]], axis=0
    ).T
    return _sort_by_scores(boxes, boxes[:, -1], ascending=False)


def _iou(boxes, method):
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    a, b = boxes[None], boxes[:, None]
    top = np.maximum(a[:, :, 0], b[:, :, 0])
    left = np.maximum(a[:, :, 1], b[:, :, 1])
    bottom = np.minimum(a[:, :, 2], b[:, :, 2])
    right = np.minimum(a[:, :, 3], b[:, :, 3])
    inter = np.maximum(0, bottom - top) * np.maximum(0, right - left)
    if method == "union":
        return inter / (area[:, None] + area[None, :] - inter)
    return inter / np.minimum(area[:, None], area[None, :])


def _nms(boxes, threshold, method="union", initial_sort=True):
    if initial_sort:
        boxes = _sort_by_scores(boxes, boxes[:, 5], ascending=False)
    result = []
    for image_id in np.unique(boxes[:, 0]):
        target = boxes[boxes[:, 0] == image_id]
        iou = _iou(target[:, 1:5], method)
        allowed = np.triu(np.ones((len(target), len(target))), k=1)
        failed = (iou > threshold).astype(int)
        keep = np.where((failed * allowed).sum(axis=0) == 0)[0]
        result.append(target[keep])
    return np.concatenate(result, axis=0) if result else np.empty((0, boxes.shape[1]))


def _resize_to_square(boxes):
    boxes = boxes.copy()
    h = boxes[:, 4] - boxes[:, 2]
    w = boxes[:, 3] - boxes[:, 1]
    largest = np.maximum(w, h)
    boxes[:, 1] = boxes[:, 1] + w * 0.5 - largest * 0.5
    boxes[:, 2] = boxes[:, 2] + h * 0.5 - largest * 0.5
    boxes[:, 3:5] = boxes[:, 1:3] + np.tile(largest, (2, 1)).T
    return boxes


def _adjust_boxes(boxes, offsets):
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return boxes


def _extract_patches(images, boxes, size):
    shape = images.shape
    coords = boxes[:, [2, 1, 4, 3]] / np.asarray([[shape[1], shape[2], shape[1], shape[2]]])
    return _crop_and_resize(images, coords, boxes[:, 0].astype(int), size)


class OnnxMTCNN:
    """MTCNN (Zhang et al., 2016) as the ``mtcnn`` package runs it, on ONNX Runtime.

    The package's three networks, exported by :func:`export_mtcnn`, with
    its glue in NumPy: the same boxes, confidences and landmarks as
    ``mtcnn.MTCNN().detect_faces`` (with fersk's stable sort by score) up
    to float rounding, without TensorFlow.  ``FaceCropper(detector=
    "mtcnn-onnx")`` uses it; it is rarely needed directly.

    Parameters
    ----------
    folder : str or path-like or None, default=None
        Where the exported files are; None means :func:`cache_dir`.

    Examples
    --------
    >>> from skimage import data
    >>> from fersk.onnx import OnnxMTCNN
    >>> faces = OnnxMTCNN().detect_faces([data.astronaut()])[0]  # doctest: +SKIP
    >>> sorted(faces[0])  # doctest: +SKIP
    ['box', 'confidence', 'keypoints']
    """

    def __init__(self, folder=None):
        paths = _mtcnn_paths(folder)
        if paths is None or not all(p.is_file() for p in paths.values()):
            raise FileNotFoundError(_mtcnn_missing_message())
        self.paths = paths
        self._sessions = {net: _session(p) for net, p in paths.items()}

    def _run(self, net, x):
        session = self._sessions[net]
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})

    def detect_faces(self, images, min_face_size=20, scale_factor=0.709, threshold_pnet=0.6,
                     threshold_rnet=0.7, threshold_onet=0.8, nms_pnet1=0.5, nms_pnet2=0.7,
                     nms_rnet=0.7, nms_onet=0.7):
        """Faces in a batch of RGB images, as ``mtcnn.MTCNN.detect_faces``.

        Parameters
        ----------
        images : list of ndarray of shape (height, width, 3)
            uint8 RGB images (of one shape for exact batch results).
        min_face_size : float, default=20
            Smallest face searched for, in pixels (at most 20, as mtcnn
            1.0 needs).
        scale_factor, threshold_pnet, threshold_rnet, threshold_onet, \
nms_pnet1, nms_pnet2, nms_rnet, nms_onet : float
            As mtcnn's parameters of the same names (their defaults).

        Returns
        -------
        faces : list of list of dict
            Per image, its faces: ``box`` ``[x, y, width, height]`` (ints),
            ``confidence`` and ``keypoints`` (``left_eye``, ``right_eye``,
            ``nose``, ``mouth_left``, ``mouth_right``, each ``[x, y]``).

        Examples
        --------
        See :class:`OnnxMTCNN`.
        """
        images = [np.asarray(img) for img in images]
        n = len(images)
        if n == 0:
            return []
        padded, shapes, pad = _pad_stack(images)
        normalized = ((padded - 127.5) / 128).astype(np.float32)
        boxes = self._stages(normalized, shapes, min_face_size, scale_factor, threshold_pnet,
                             threshold_rnet, threshold_onet, nms_pnet1, nms_pnet2, nms_rnet,
                             nms_onet)
        if boxes is None:
            return [[] for _ in range(n)]
        boxes = self._postprocess(boxes, shapes, pad)
        return self._to_json(boxes, n)

    def _stages(self, normalized, shapes, min_face_size, scale_factor, t_pnet, t_rnet, t_onet,
                nms_pnet1, nms_pnet2, nms_rnet, nms_onet):
        # PNet on every pyramid level (of the image with the most levels).
        groups = [_build_scale_pyramid(s[1], s[0], min_face_size, scale_factor) for s in shapes]
        scales = groups[int(np.argmax([g.shape[0] for g in groups]))]
        batch = len(normalized)
        proposals = []
        for scale in scales:
            new_shape = (np.asarray(normalized.shape[1:3]) * scale).astype(np.int32)
            if new_shape.min() < 12:  # TensorFlow fails there: mtcnn reports no face
                return None
            level = _resize_area(normalized, new_shape)
            reg, cls = self._run("pnet", level)
            b = _generate_bounding_box(reg, cls, t_pnet)
            b[:, 1:5] = b[:, 1:5] / np.expand_dims(np.asarray([scale] * batch)[b[:, 0].astype(int)], -1)
            proposals.append(_nms(b, nms_pnet1, "union", initial_sort=False))
        boxes = np.concatenate(proposals, axis=0) if proposals else np.empty((0, 6))
        boxes = _resize_to_square(_nms(boxes, nms_pnet2, "union"))
        if not len(boxes):
            return None
        # RNet refines them.
        offsets, scores = self._run("rnet", _extract_patches(normalized, boxes, (24, 24)))
        boxes[:, -1] = scores[:, -1]
        boxes = _adjust_boxes(boxes, offsets)
        boxes = boxes[np.where(boxes[:, -1] > t_rnet)[0]]
        boxes = _resize_to_square(_nms(boxes, nms_rnet, "union"))
        if not len(boxes):
            return None
        # ONet gives the final boxes and the landmarks.
        offsets, landmarks, scores = self._run("onet", _extract_patches(normalized, boxes, (48, 48)))
        landmarks = landmarks.copy()
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        landmarks[:, 0:5] = w * landmarks[:, 0:5] + boxes[:, 1:2] - 1
        landmarks[:, 5:10] = h * landmarks[:, 5:10] + boxes[:, 2:3] - 1
        boxes[:, -1] = scores[:, -1]
        boxes = _adjust_boxes(boxes, offsets)
        boxes = np.concatenate([boxes, landmarks], axis=-1)
        boxes = boxes[np.where(boxes[:, 5] > t_onet)[0]]
        return _nms(boxes, nms_onet, "min")

    @staticmethod
    def _postprocess(boxes, shapes, pad):
        boxes = boxes.copy()
        # mtcnn's fix_bboxes_offsets (pads of the images with boxes, in turn)
        for image_id, p in zip(np.unique(boxes[:, 0]), pad):
            sel = boxes[:, 0] == image_id
            boxes[np.ix_(sel, [1, 3])] -= p[1, 0]
            boxes[np.ix_(sel, [2, 4])] -= p[0, 0]
            boxes[np.ix_(sel, [6, 7, 8, 9, 10])] -= p[1, 0]
            boxes[np.ix_(sel, [11, 12, 13, 14, 15])] -= p[0, 0]
        # limit_bboxes (fit_to_image=True, landmarks left alone)
        expected = shapes[boxes[:, 0].astype(int)]
        for col, dim in ((1, 1), (3, 1), (2, 0), (4, 0)):
            boxes[:, col] = np.minimum(np.maximum(boxes[:, col], 0), expected[:, dim] - 1)
        return boxes

    @staticmethod
    def _to_json(boxes, n):
        out = []
        names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        for image_id in range(n):
            faces = []
            for b in boxes[boxes[:, 0] == image_id]:
                x1, y1 = b[1], b[2]
                box = np.asarray([x1, y1, b[3] - x1, b[4] - y1]).round().astype(int)
                lm = b[6:16].round().astype(int)
                faces.append({
                    "box": box.tolist(),
                    "confidence": b[5],
                    "keypoints": {k: [lm[i], lm[i + 5]] for i, k in enumerate(names)},
                })
            out.append(faces)
        return out
