"""A fersk network as an ONNX graph: export, quantisation and the
classifier that runs it with ONNX Runtime."""

import hashlib
import inspect
import os
from numbers import Integral, Real
import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from fersk._image_files import check_float32_range, pixels_for_network
from fersk._labels import _in_class_order
from fersk._keras_params import (TEST_TIME_CROPS, finite_outputs, gated_mean, tanh_proba,
                                 view_corners, view_margin)
from fersk._validation import validate_images

from ._common import (_atomic_write, _convert, _file_digest, _import_ort, _session,
                      _session_of_bytes, _tf2onnx)

#: What every exported network graph says of itself (ONNX metadata): it runs
#: one view, and the classifier makes the views.  Graphs of fersk before
#: this averaged the views inside; they lack the key and are refused.
_GRAPH_KEY, _GRAPH_KIND = "fersk_graph", "network-one-view"
#: The network's output activation (graphs exported since 2026-12-05).
HEAD_KEY = "fersk_head"


def network_onnx_name(estimator_keras_file, estimator, stem):
    """Cache file name of a network: ``<stem>-<hash>.onnx`` (internal)."""
    return f"{stem}-{_network_digest(estimator_keras_file, estimator)}.onnx"


def _network_digest(keras_file, est):
    return _graph_digest(keras_file, est.crop_size, est.input_scaling)


def _graph_digest(keras_file, crop_size, input_scaling):
    """The hash in a network graph's cache name: the ``.keras`` file and what
    the graph bakes in (the view window, the input scaling), not the views
    themselves, so one file serves every ``test_time_*`` setting."""
    return _file_digest(keras_file, _GRAPH_KIND, crop_size, input_scaling)


@validate_params(
    # A fersk network's fitted state is checked by check_is_fitted below; its
    # class is not named here, as that would import Keras with this module.
    {"estimator": [HasMethods(["predict_proba"]), HasMethods(["predict"])],
     "path": [str, os.PathLike]},
    prefer_skip_nested_validation=True,
)
def export_network(estimator, path):
    """Write a fitted fersk network's inference graph as an ONNX file.

    The graph is what ``estimator.predict_proba`` computes for one view
    before its last normalisation: the input scaling and the network with
    batch norm folded into its convolutions.  It takes float32 images
    ``(n, h, w, channels)`` named ``images`` -- the network's view window
    (``crop_size``; the whole image when the network was fitted without
    crops) -- and gives ``(n, n_classes)``.  The test-time views
    (``test_time_crops``, ``test_time_flip``) are not in the graph:
    :class:`OnnxNetworkClassifier` cuts them and averages their outputs,
    so one file serves every view setting (and
    :func:`fersk.ensemble.one_view` reaches ONNX networks too).  Needs
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

    Raises
    ------
    ValueError
        If the graph does not run on ONNX Runtime (an operation with no
        ONNX equivalent, e.g. exact GELU's Erfc), or answers a probe batch
        otherwise than the network by more than 1e-4 (an operation converted
        approximately, e.g. bicubic resizing): nothing is written; or for a
        regressor (CNNRegressor has no ONNX path).

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

    if not hasattr(estimator, "predict_proba"):
        # validate_params's own words ("an object implementing 'predict_proba'")
        # did not say that a regressor has no ONNX path at all.
        raise ValueError(
            f"export_network exports a fersk classifier's network; {type(estimator).__name__} "
            "has no predict_proba, and fersk's regressors (CNNRegressor) have no ONNX path: "
            "predict them on Keras."
        )
    tf, _ = _tf2onnx()
    from fersk._keras_base import _inference_cache

    check_is_fitted(estimator)
    model = estimator.model_
    # folded anew if model_'s weights changed in place since the last fold
    network = _inference_cache(model)["network"]
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
    # Per-channel scaling (axis -1) commutes with cropping and mirroring, so
    # the graph can take one view's window of raw pixels.
    if any(mean.size != model.input_shape[-1] for mean, _ in scalers):  # pragma: no cover
        raise ValueError("cannot export a network whose input scaling is not per channel.")
    crop = estimator._crop_layer()
    shape = tuple(model.input_shape[1:])
    if crop is not None:
        shape = (crop.height, crop.width, shape[-1])

    def infer(images):
        z = images
        # Keras's Normalization, with its statistics as constants of the
        # graph (captured tensors would become inputs of the ONNX graph).
        for mean, variance in scalers:
            z = (z - tf.constant(mean)) / tf.maximum(tf.sqrt(tf.constant(variance)), eps)
        return tf.identity(network(z, training=False), name="proba")

    signature = [tf.TensorSpec((None, *shape), tf.float32, name="images")]
    # The output activation as the network has it (not its estimator's
    # ``head`` parameter, which set_params may have changed since fit).
    metadata = {_GRAPH_KEY: _GRAPH_KIND, HEAD_KEY: estimator._fitted_head_activation()}
    data = _convert(infer, signature, metadata=metadata)
    _check_graph(data, lambda images: np.asarray(infer(tf.constant(images))), shape)
    return _atomic_write(path, data)


#: The most an exported graph's outputs may differ from the network's on a
#: probe batch (float32), as the parity the ONNX path promises.
_EXPORT_TOLERANCE = 1e-4


def _check_graph(data, network_outputs, shape):
    """Raise ValueError if the ONNX graph ``data`` does not run on ONNX Runtime
    or answers a probe batch otherwise than ``network_outputs`` (within
    :data:`_EXPORT_TOLERANCE`): tf2onnx writes a graph even where it only
    logs an op it cannot convert (exact GELU's Erfc, a py_function) or
    converts one approximately (bicubic resizing)."""
    try:
        ort = _import_ort()
    except ImportError:  # pragma: no cover  (fersk[onnx] installs both; checked where it can be)
        return
    import onnx

    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        graph = onnx.load_from_string(data).graph
        foreign = sorted({n.op_type for n in graph.node
                          if not onnx.defs.has(n.op_type, n.domain or "")})
        raise ValueError(
            "the network cannot be exported to ONNX: "
            + (f"its operations {foreign} have no ONNX equivalent (tf2onnx left them as "
               "they were)" if foreign else f"ONNX Runtime cannot run the graph ({exc})")
            + "; use layers with ONNX equivalents (e.g. approximate GELU), or predict on "
            "Keras."
        ) from None
    probe = np.random.default_rng(0).uniform(0, 255, (4, *shape)).astype(np.float32)
    gap = float(np.abs(session.run(None, {"images": probe})[0] - network_outputs(probe)).max())
    if not gap <= _EXPORT_TOLERANCE:  # NaN too
        raise ValueError(
            f"the network cannot be exported to ONNX faithfully: the graph's outputs differ "
            f"from the network's by up to {gap:.3g} on a probe batch (more than "
            f"{_EXPORT_TOLERANCE:g}); an operation is converted approximately (e.g. bicubic "
            "resizing): use another, or predict on Keras."
        )


@validate_params(
    {"path": [str, os.PathLike], "out": [str, os.PathLike], "calibration_images": ["array-like"],
     "float_input": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def quantize_network(path, out, calibration_images, *, float_input=False):
    """An int8 copy of an exported network (static quantisation, QDQ).

    Weights per output channel (int8) and activations (uint8) are quantised by
    ``onnxruntime.quantization.quantize_static``, activations calibrated
    on ``calibration_images`` (min-max); the output head (last layer,
    softmax) stays float32.  The first convolution is written in float32
    too, but ONNX Runtime's optimiser fuses it with the quantised input
    into an int8 convolution when a session is made (1.32, the default
    optimisation level), so it runs in int8 (unless ``float_input``: then
    it and everything before it run in float32).  Measure what it costs before
    using it: :func:`fersk.pretrained.quantize` does, and ships the graph
    in a model folder only where it costs at most half a point.

    Parameters
    ----------
    path : str or path-like
        An ONNX file written by :func:`export_network`.
    out : str or path-like
        The int8 ONNX file to write (atomically).
    calibration_images : ndarray of shape (n, height, width[, channels])
        A few hundred training images, on the network's input scale
        (images larger than the graph's view window are calibrated on
        their centre window).
    float_input : bool, default=False
        Keep every node up to the first convolution in float32, so that the
        pixels are never quantised and that convolution runs in float32:
        x86 CPUs without int8 dot products (VNNI) then give the predictions
        of those with them (their uint8 x int8 kernels sum pairs of products
        into saturating 16-bit integers, which full-range pixels can
        overflow).  It costs the first convolution's speed: about 11 % for
        a first convolution at 40x40, 2 % for one of stride 2.

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

    import onnx

    x = np.asarray(calibration_images, dtype=np.float32)
    x = x[..., np.newaxis] if x.ndim == 3 else x
    source = onnx.load(str(path))
    dims = source.graph.input[0].type.tensor_type.shape.dim
    h, w, c = dims[1].dim_value, dims[2].dim_value, dims[3].dim_value
    if x.ndim != 4 or len(x) == 0 or x.shape[1] < h or x.shape[2] < w or x.shape[3] != c:
        # ONNX Runtime's own errors name neither the images nor what was expected
        # (a smaller image's negative offset even slices it silently).
        raise ValueError(
            f"calibration_images must be at least one image of at least {h}x{w} pixels "
            f"and {c} channel(s), the graph's input; got shape {x.shape}."
        )
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    x = np.ascontiguousarray(x[:, top : top + h, left : left + w])

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
            # uint8 activations x int8 weights: the kernels x86's int8 dot-product
            # instructions (AVX-512 VNNI) run natively, about 10 % faster than int8 x int8
            # at the same accuracy (benchmarks/RESULTS.md).
            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
            nodes_to_exclude=_float_nodes(source.graph, float_input),
        )
        quantized = onnx.load(str(target))
        # What the graph is (fersk's keys), once each: quantize_static may have copied
        # them already, and ONNX refuses a graph with a key twice.
        props = {p.key: p.value for p in quantized.metadata_props}
        props.update({p.key: p.value for p in source.metadata_props})
        del quantized.metadata_props[:]
        onnx.helper.set_model_props(quantized, props)
        return _atomic_write(out, quantized.SerializeToString())


def _float_nodes(graph, float_input=False):
    """The nodes written in float32: the first convolution (with
    ``float_input``, every node up to it too) and the output head.

    The head stays float32 at run time.  The first convolution was kept
    float32 because it reads the pixels, whose uint8 codes fill the whole
    range: on x86 without VNNI, ONNX Runtime's uint8 x int8 kernels sum
    pairs of products into saturating 16-bit integers.  But ONNX Runtime
    fuses it with the quantised input into an int8 convolution anyway
    (QLinearConv, weights quantised at load; 1.32, ORT_ENABLE_ALL), so it
    runs in int8; measured on AVX2 without VNNI (QEMU, ``-cpu Haswell``),
    the shipped graphs gave the predictions of an AVX-512 VNNI host
    (benchmarks/RESULTS.md, "int8 without VNNI").  Truly float32 (every
    node up to it excluded) it was 11 % slower for 0.03 points."""
    first = next((i for i, node in enumerate(graph.node) if node.op_type == "Conv"), None)
    if first is None:
        return _output_head(graph)
    # The nodes are in topological order: what comes before the first convolution feeds it.
    stem = graph.node[: first + 1] if float_input else [graph.node[first]]
    return [node.name for node in stem] + _output_head(graph)


def _output_head(graph):
    """The nodes from the graph's output back to its last weighted layer
    (e.g. Softmax <- Add <- MatMul): kept in float32, as quantised they would
    give logits and probabilities in steps of 1/256 (coarse probabilities,
    tied classes), for a negligible share of the work."""
    producers = {out: node for node in graph.node for out in node.output}
    head, frontier = [], [graph.output[0].name]
    while frontier:
        node = producers.get(frontier.pop())
        if node is None or node.name in head:
            continue
        head.append(node.name)
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            frontier += [name for name in node.input if name in producers]
    return head


class OnnxNetworkClassifier(ClassifierMixin, BaseEstimator):
    """A fitted fersk network run by ONNX Runtime (no TensorFlow).

    Predicts as the network it was exported from (:func:`export_network`):
    the same input checks, test-time views and probabilities (to about
    1e-6).  The graph runs one view; the views are cut here (NumPy) and
    their outputs averaged, so they are parameters as on the Keras
    estimator (:func:`fersk.ensemble.one_view` sets them).  It cannot be
    trained: ``fit`` raises.  A pickle (joblib) carries the graph itself,
    as a Keras network's carries its weights: it predicts where the file
    at ``path`` is gone (fersk's cache cleared, another machine).  Built by :func:`fersk.pretrained.load` with
    ``backend="onnx"`` or :meth:`from_estimator` (both take the views of
    the Keras network).

    Parameters
    ----------
    path : str or path-like
        The exported ``.onnx`` file.
    image_shape : tuple or None, default=None
        As the original network's ``image_shape`` (how flattened rows are
        images).
    test_time_crops : {"center", "five"}, default="center"
        Views at prediction: the centre window of the graph's input size,
        or the four corner windows and the centre ("five"; needs a network
        trained on crops), as the Keras estimator's parameter.
    test_time_flip : bool, default=False
        Add the mirror image of each view.
    test_time_margin : float in [0, 1] or None, default=None
        Confidence-gated views, as the Keras estimator's parameter: the
        views beyond the centre one only for the faces whose two highest
        centre-view probabilities differ by less than this (None: every
        face gets every view).
    predict_batch_size : int or None, default=None
        Faces per graph call, as the Keras estimator's parameter (None:
        256); the answers do not depend on it.

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
    input_range_ : tuple of (float, float)
        Lowest and highest value of the training images, where the model
        folder has them (a network of [0, 1] images refuses values above 2).
    head_ : str
        The activation of the network's output layer (``'softmax'``,
        ``'tanh'``...): how outputs become probabilities.
    history_, n_epochs_, best_epoch_ : dict, int, int
        The Keras network's training record, where the model folder has
        it (:func:`fersk.pretrained.load`; ``fersk evaluate``'s curve).

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

    # predict is classes_[argmax(predict_proba)]: fersk.predict_faces reads
    # the labels off the probabilities instead of predicting twice.
    _predicts_proba_argmax = True

    _parameter_constraints = {
        "path": [str, os.PathLike],
        "image_shape": [tuple, list, None],
        "test_time_crops": [StrOptions(set(TEST_TIME_CROPS))],
        "test_time_flip": ["boolean"],
        "test_time_margin": [Interval(Real, 0, 1, closed="both"), None],
        "predict_batch_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, path, image_shape=None, test_time_crops="center", test_time_flip=False,
                 test_time_margin=None, predict_batch_size=None):
        self.path = path
        self.image_shape = image_shape
        self.test_time_crops = test_time_crops
        self.test_time_flip = test_time_flip
        self.test_time_margin = test_time_margin
        self.predict_batch_size = predict_batch_size

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
        out = cls(
            path, image_shape=estimator.image_shape, test_time_crops=estimator.test_time_crops,
            test_time_flip=estimator.test_time_flip,
            test_time_margin=getattr(estimator, "test_time_margin", None),
            predict_batch_size=getattr(estimator, "predict_batch_size", None),
        )
        for attr in ("classes_", "image_shape_", "n_features_in_", "input_dtype_",
                     "input_range_", "_label_columns"):
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
            "(fersk.onnx.export_network or `fersk export`); to train a pretrained model "
            "further, load it with fersk.pretrained.load(name, backend='keras')."
        )

    def _validate_X(self, X):
        images, _ = validate_images(
            self, X, reset=False, image_shape=self.image_shape, input_name="X"
        )
        # The pipeline's pixel rule, as on the Keras network: the two back
        # ends must read a uint16, bool or float image alike.
        images = pixels_for_network(
            images, getattr(self, "input_dtype_", None), type(self).__name__,
            input_range=getattr(self, "input_range_", None),
        )
        check_float32_range(images)  # as the Keras network: not NaN blamed on the weights
        x = np.asarray(images, dtype=np.float32)
        return x[..., np.newaxis] if x.ndim == 3 else x

    def decision_function(self, X):
        """The network's view-averaged outputs, before normalisation
        (the centre view's alone for the faces ``test_time_margin`` finds
        sure).

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in fit, run through the graph in batches
            of ``predict_batch_size`` (None: 256).

        Returns
        -------
        outputs : ndarray of shape (n_samples, n_classes)
            float32 outputs of the ONNX graph.

        Examples
        --------
        See :func:`export_network`.
        """
        check_is_fitted(self)
        self._validate_params()
        x = self._validate_X(X)
        session = self._graph_session()
        if session.get_modelmeta().custom_metadata_map.get(_GRAPH_KEY) != _GRAPH_KIND:
            raise ValueError(
                f"{self.path} was exported by an older fersk (its graph averages the test-time "
                "views itself): export the network again (fersk.onnx.export_network, or "
                "`fersk export --overwrite` for a model)."
            )
        name = session.get_inputs()[0].name
        window = session.get_inputs()[0].shape[1:3]
        corners = view_corners(x.shape[1:3], window, self.test_time_crops)
        if not len(x):
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        if self.test_time_margin is None:
            return _in_class_order(self, self._mean_of_views(session, name, x, corners))
        first = self._mean_of_views(session, name, x, corners, "first")
        return _in_class_order(self, gated_mean(
            first, view_margin(first, self.head_), self.test_time_margin,
            len(corners) * (2 if self.test_time_flip else 1),
            lambda unsure: self._mean_of_views(session, name, x[unsure], corners, "rest"),
        ))

    def _mean_of_views(self, session, name, x, corners, which="all"):
        """The graph's outputs for ``x``, averaged over the views ``which``
        ("all", "first": the centre window, or "rest"), ``predict_batch_size``
        faces a call."""
        batch = self.predict_batch_size or 256
        return np.concatenate([
            self._views_of_batch(session, name, x[i : i + batch], corners, which)
            for i in range(0, len(x), batch)
        ])

    def _views_of_batch(self, session, name, x, corners, which):
        h, w = session.get_inputs()[0].shape[1:3]
        views = [x[:, t : t + h, c : c + w] for t, c in corners]
        if self.test_time_flip:
            views += [v[:, :, ::-1] for v in views]
        views = {"all": views, "first": views[:1], "rest": views[1:]}[which]
        # One graph call for all the views of the batch.
        out = session.run(None, {name: np.ascontiguousarray(np.concatenate(views))})[0]
        out = out.reshape(len(views), len(x), -1)
        total = out[0]
        for view in out[1:]:  # keras.layers.Average's order
            total = total + view
        return total / np.float32(len(views)) if len(views) > 1 else total

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
        return self._outputs_to_proba(self.decision_function(X))

    def _outputs_to_proba(self, outputs):
        outputs = finite_outputs(np.asarray(outputs, dtype=np.float64), type(self).__name__)
        if self.head_ == "tanh":
            return tanh_proba(outputs)
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

    def _graph_session(self):
        """The ONNX Runtime session of the graph: the one pickled with this
        network while ``path`` is still the path it was pickled from, else
        the file at ``path``."""
        pickled = getattr(self, "_pickled_graph", None)
        if pickled is not None and pickled[0] == os.fspath(self.path):
            return _session_of_bytes(pickled[1], pickled[2])
        if not Path(self.path).is_file():
            raise FileNotFoundError(
                f"{type(self).__name__}: its ONNX graph {os.fspath(self.path)!r} is not there "
                "(fersk's cache cleared or moved, or the model folder moved): load the model "
                "again (fersk.pretrained.load(..., backend='onnx'), or `fersk export`); this "
                "version of fersk pickles a network with its graph."
            )
        return _session(self.path)

    def __getstate__(self):
        state = super().__getstate__()
        # The graph travels with a pickle, as a Keras network's weights do: its
        # file may be an entry of fersk's cache (`fersk cache --clear` deletes
        # it) or a file of this install, neither of which a joblib file keeps.
        pickled = state.get("_pickled_graph")
        if "classes_" in state and not (pickled and pickled[0] == os.fspath(self.path)):
            try:
                data = Path(self.path).read_bytes()
            except OSError:  # gone already: predicting says so
                state.pop("_pickled_graph", None)
            else:
                state["_pickled_graph"] = (os.fspath(self.path),
                                           hashlib.sha256(data).hexdigest(), data)
        return state

    def __setstate__(self, state):
        # Pickled by an older fersk: parameters added since take their
        # defaults, which keep the old behaviour (get_params and clone work).
        state = dict(state)
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and name not in state and param.default is not param.empty:
                state[name] = param.default
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True  # image batches (n, h, w[, c]), as well as rows
        return tags

