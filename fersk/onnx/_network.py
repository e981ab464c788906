"""A fersk network as an ONNX graph: export, quantisation and the
classifier that runs it with ONNX Runtime."""

import os
import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import HasMethods, validate_params
from sklearn.utils.validation import check_is_fitted

from fersk._validation import validate_images

from ._common import _atomic_write, _convert, _file_digest, _import_ort, _session, _tf2onnx

def network_onnx_name(estimator_keras_file, estimator, stem):
    """Cache file name of a network: ``<stem>-<hash>.onnx`` (internal)."""
    return f"{stem}-{_network_digest(estimator_keras_file, estimator)}.onnx"


def _network_digest(keras_file, est):
    return _file_digest(
        keras_file, est.test_time_flip, est.test_time_crops, est.crop_size, est.input_scaling
    )


@validate_params(
    # A fersk network's fitted state is checked by check_is_fitted below; its
    # class is not named here, as that would import Keras with this module.
    {"estimator": [HasMethods(["predict_proba"])], "path": [str, os.PathLike]},
    prefer_skip_nested_validation=True,
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


@validate_params(
    {"path": [str, os.PathLike], "out": [str, os.PathLike], "calibration_images": ["array-like"]},
    prefer_skip_nested_validation=True,
)
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
            Images of the shape seen in fit, run through the graph in batches
            of 256.

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
            Images of the shape seen in fit, as for :meth:`predict_proba`.

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

