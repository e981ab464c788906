"""Keras networks as scikit-learn classifiers of face images.

* :class:`CNNClassifier` - a named architecture (VGG-S-like, FaceChannel,
  Kaggle FER CNN, MTCNN-pipeline CNN, LBCNN) or your own builder;
* :class:`LBCNNClassifier` - the Local Binary CNN with its
  hyper-parameters as estimator parameters.

Both take image batches ``(n, h, w)``/``(n, h, w, c)`` (grey faces, RGB,
or any fersk representation such as :class:`~fersk.MDSMappedLBP` output)
or flattened rows with ``image_shape``; they work in ``Pipeline``,
``GridSearchCV``, ``cross_validate``, ``clone`` and pickle/joblib (the
Keras model travels in Keras's own ``.keras`` format and is loaded with
``safe_mode=True``).  The GPU is used whenever the Keras backend sees one.

Parallel model selection (``n_jobs=k``) starts ``k`` worker processes,
each importing TensorFlow (about 0.5-1 GB of resident memory per worker
before any data) and holding its own copy of the training images and of
one network; on a small CPU machine ``n_jobs=1`` is usually as fast.
"""

import inspect
from sklearn.utils._param_validation import StrOptions

from fersk._constraints import KeywordDict, store_parameters
from fersk._keras_base import NOTES_DOC, count_params, document_parameters
from fersk._keras_params import HEAD_CONSTRAINT
from fersk._keras_classifier import BaseKerasImageClassifier
from fersk.architectures import ARCHITECTURES, BUILDER_CONSTRAINTS, _replace_head, lbcnn

__all__ = ["CNNClassifier", "LBCNNClassifier"]

_ATTRS_DOC = """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    model_ : keras.Model
        The trained model (input scaling, augmentation, network).
    n_features_in_ : int
        Values per image seen in ``fit`` (pixels times channels).
    image_shape_ : tuple of int
        Shape of one image seen in ``fit``.
    input_dtype_ : str
        NumPy dtype string of the images seen in ``fit`` (``'|u1'`` for
        uint8).  A network fitted on uint8 pixels reads its input at
        prediction by fersk's pixel rule, as its pipeline does
        (:func:`fersk._image_files.pixels_for_network`): uint8 as is;
        uint16 by its high byte (with a warning when it holds only 8-bit
        values); other integers 0..255; floats on the training scale, 0 to
        255.  An image of floats in [0, 1] with fractions (scikit-image's
        convention) and
        floats outside 0..255 are a ValueError: mis-scaled input is
        refused, not silently misread.  Networks fitted on other dtypes
        take input as is, except that one fitted on images within [0, 1]
        refuses 0-255 pixels: an image above 2 of whole numbers, or
        reaching 10 (a contrast stretch above 2 is taken with a warning).
    input_range_ : tuple of (float, float)
        Lowest and highest value of the images seen in ``fit``: the scale
        the network learnt on.
    history_ : dict of list of float
        Per-epoch ``loss``, ``accuracy``, ``learning_rate`` and, with
        validation data, ``val_loss``, ``val_accuracy``.
    n_epochs_ : int
        Epochs actually run.
    best_epoch_ : int
        0-based index (into ``history_`` lists) of the epoch whose weights
        the model holds: the lowest ``val_loss`` with validation data, else
        the last epoch.
    n_trainable_params_ : int
        Learnable parameters.
    n_fixed_params_ : int
        Non-trainable parameters (fixed LBC anchors, batch-norm statistics;
        the input normalisation's mean and variance live in the layer's
        config and are not counted)."""


#: ``architecture_params``: the keyword arguments shared by the named
#: architectures are checked with the parameters, so a bad value is a clear
#: error, not a tiny network or a failure deep inside Keras; other keys go
#: to the builder as they are (a builder callable has its own).
ARCHITECTURE_PARAMS = KeywordDict(
    {key: BUILDER_CONSTRAINTS[key][0].interval
     for key in ("width", "dense_units", "head_units", "dropout")},
    others=True,
)


@document_parameters
class CNNClassifier(BaseKerasImageClassifier):
    __doc__ = (
        """Convolutional network classifier of face images.

    The network is built in ``fit`` from ``architecture`` and
    ``architecture_params`` (so ``set_params`` then ``fit`` rebuilds it), put
    behind the input scaling and optional augmentation, and trained with
    categorical cross-entropy against the labels, or against per-image
    distributions given as ``fit(X, y, sample_proba=...)`` (FER+'s vote
    distributions, :func:`fersk.datasets.load_ferplus`); ``head="tanh"``
    trains FaceChannel's published tanh head with squared error instead.

    Parameters
    ----------
    architecture : str or callable, default="kaggle_cnn"
        "vgg_s" (:func:`fersk.architectures.vgg_s`), "facechannel"
        (:func:`~fersk.architectures.facechannel`), "kaggle_cnn"
        (:func:`~fersk.architectures.kaggle_cnn`), "vgg_fer"
        (:func:`~fersk.architectures.vgg_fer`), "mtcnn_cnn"
        (:func:`~fersk.architectures.mtcnn_cnn`), "lbcnn"
        (:func:`~fersk.architectures.lbcnn`), or a callable
        ``f(input_shape, n_classes, **architecture_params) -> keras.Model``
        whose output is a softmax over ``n_classes`` (with
        ``head="softmax"``, ``fit`` refuses another last activation, such
        as logits, before training); if it accepts a
        ``seed`` keyword it receives the int drawn from ``random_state``.
        A callable must be importable (module level) for pickling, and
        custom layers in it must be registered with
        ``keras.saving.register_keras_serializable``.
    architecture_params : dict or None, default=None
        Keyword arguments of the builder (e.g. ``{"width": 0.5}`` halves
        every channel count).
    head : {"softmax", "tanh"}, default="softmax"
        The output layer and its loss.  "softmax": a softmax over the
        classes trained with cross-entropy.  "tanh": FaceChannel's
        published categorical head (Barros et al. 2020): the builder's
        output layer is replaced by a dense ``tanh`` layer of one unit per
        class, trained with mean squared error against the one-hot (or
        ``sample_proba``) targets, which it then estimates;
        ``predict_proba`` clips its outputs to [0, 1] and normalises each
        row (the softmax of the outputs when all are <= 0, so the
        highest output is still the prediction).  The authors trained it with
        ``optimizer="adamax", learning_rate=0.002,
        learning_rate_schedule="plateau"``.
    {keras_parameters}
"""
        + _ATTRS_DOC
        + "\n"
        + NOTES_DOC
        + """

    See Also
    --------
    LBCNNClassifier : the Local Binary CNN with its parameters exposed.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk import CNNClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 16, 16)
    >>> y = np.repeat(["bright", "dark"], 20)
    >>> X[y == "bright"] += 1.0
    >>> clf = CNNClassifier(architecture="kaggle_cnn",
    ...                     architecture_params={"width": 0.0625, "dense_units": 8},
    ...                     epochs=3, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (40, 2)
    >>> clf.classes_.tolist()
    ['bright', 'dark']
    """
    )

    _parameter_constraints = {
        **BaseKerasImageClassifier._parameter_constraints,
        "architecture": [StrOptions(set(ARCHITECTURES)), callable],
        "architecture_params": [ARCHITECTURE_PARAMS, None],
        "head": HEAD_CONSTRAINT,
    }

    def __init__(
        self,
        architecture="kaggle_cnn",
        architecture_params=None,
        head="softmax",
        *,
        image_shape=None,
        batch_size=64,
        epochs=30,
        optimizer="adam",
        learning_rate=1e-3,
        learning_rate_schedule="constant",
        validation_fraction=None,
        n_iter_no_change=10,
        class_weight=None,
        source_weight=None,
        augment=False,
        input_scaling="standardize",
        random_state=None,
        verbose=0,
        predict_batch_size=None,
        test_time_flip=False,
        warm_start=False,
        crop_size=None,
        test_time_crops="center",
        test_time_margin=None,
        label_smoothing=0.0,
        momentum=0.9,
        nesterov=True,
        weight_decay=None,
        warmup_fraction=0.1,
        random_erasing=0.0,
        degrade=None,
        jit_compile="auto",
        checkpoint_dir=None,
    ):
        store_parameters(self, locals())

    def _head_activation(self):
        return self.head

    def _build_network(self, input_shape, n_classes, seed):
        network = _build_named(
            self.architecture, self.architecture_params, input_shape, n_classes, seed
        )
        if self.head == "tanh":
            network = _replace_head(network, n_classes, "tanh", "tanh_outputs")
        return network


#: LBCNNClassifier's own parameters: the lbcnn builder's arguments.
_LBCNN_PARAMETERS = ("depth", "n_anchors", "filters", "sparsity", "head_units", "dropout", "shortcut")


def _build_named(architecture, architecture_params, input_shape, n_classes, seed):
    """The network of a named architecture or builder callable, checked."""
    builder = (
        ARCHITECTURES[architecture]
        if isinstance(architecture, str)
        else architecture
    )
    kwargs = dict(architecture_params or {})
    if isinstance(architecture, str):
        # Inside fit the builders skip their own checks (nested validation):
        # a named architecture's arguments are checked here, or depth=-3
        # builds no block and filters=0 one filter, silently.
        from sklearn.utils._param_validation import validate_parameter_constraints

        validate_parameter_constraints(
            {k: BUILDER_CONSTRAINTS[k] for k in kwargs if k in BUILDER_CONSTRAINTS},
            {k: v for k, v in kwargs.items() if k in BUILDER_CONSTRAINTS},
            caller_name=f"architecture_params of {architecture!r}",
        )
    try:
        accepts_seed = "seed" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        accepts_seed = False
    if accepts_seed and "seed" not in kwargs and seed is not None:
        kwargs["seed"] = seed
    try:
        return builder(tuple(input_shape), n_classes, **kwargs)
    except TypeError as exc:
        raise ValueError(
            f"architecture_params={architecture_params!r} do not fit the "
            f"architecture {getattr(builder, '__name__', builder)!r}: {exc}"
        ) from exc


@document_parameters
class LBCNNClassifier(BaseKerasImageClassifier):
    __doc__ = (
        """Local Binary Convolutional Neural Network classifier.

    Juefei-Xu, Boddeti & Savvides, "Local Binary Convolutional Neural
    Networks", CVPR 2017: a ResNet-like stack of local binary convolution
    blocks (:class:`fersk.layers.LocalBinaryConv2D`), each a set of fixed,
    sparse ternary anchor filters, a ReLU and a learnable 1x1 convolution;
    see :func:`fersk.architectures.lbcnn` for the layers.  Only the 1x1
    convolutions, batch norms, stem and head learn, so the network has far
    fewer learnable parameters than a CNN of the same shape
    (``n_trainable_params_`` against ``n_fixed_params_``).  Defaults are
    sized for 48x48 FER faces on a CPU.

    Parameters
    ----------
    depth : int, default=6
        Number of LBC blocks.
    n_anchors : int, default=64
        Fixed anchor filters per block.
    filters : int, default=32
        Output channels of each block's learnable 1x1 conv.
    sparsity : float in (0, 1], default=0.5
        Fraction of non-zero anchor weights.
    head_units : int, default=256
        Hidden units of the fully connected head.
    dropout : float in [0, 1), default=0.5
        Dropout of the head.
    shortcut : bool, default=True
        Identity shortcut around each block (LBCNN-ResNet).
    {keras_parameters}
"""
        + _ATTRS_DOC
        + """
    n_anchor_params_ : int
        Fixed anchor weights (part of ``n_fixed_params_``).
"""
        + NOTES_DOC
        + """

    See Also
    --------
    CNNClassifier : other architectures, including ``"lbcnn"`` by name.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk import LBCNNClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 16, 16)
    >>> y = np.repeat([0, 1], 20)
    >>> clf = LBCNNClassifier(depth=2, n_anchors=8, filters=4, head_units=8,
    ...                       epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X).shape
    (40,)
    >>> clf.n_anchor_params_
    576
    """
    )

    _saved_attributes = (*BaseKerasImageClassifier._saved_attributes, "n_anchor_params_")

    _parameter_constraints = {
        **BaseKerasImageClassifier._parameter_constraints,
        # The lbcnn builder's own rules.
        **{key: BUILDER_CONSTRAINTS[key] for key in _LBCNN_PARAMETERS},
    }

    def __init__(
        self,
        depth=6,
        n_anchors=64,
        filters=32,
        sparsity=0.5,
        head_units=256,
        dropout=0.5,
        shortcut=True,
        *,
        image_shape=None,
        batch_size=64,
        epochs=30,
        optimizer="adam",
        learning_rate=1e-3,
        learning_rate_schedule="constant",
        validation_fraction=None,
        n_iter_no_change=10,
        class_weight=None,
        source_weight=None,
        augment=False,
        input_scaling="standardize",
        random_state=None,
        verbose=0,
        predict_batch_size=None,
        test_time_flip=False,
        warm_start=False,
        crop_size=None,
        test_time_crops="center",
        test_time_margin=None,
        label_smoothing=0.0,
        momentum=0.9,
        nesterov=True,
        weight_decay=None,
        warmup_fraction=0.1,
        random_erasing=0.0,
        degrade=None,
        jit_compile="auto",
        checkpoint_dir=None,
    ):
        store_parameters(self, locals())

    def _build_network(self, input_shape, n_classes, seed):
        own = {key: getattr(self, key) for key in _LBCNN_PARAMETERS}
        return lbcnn(tuple(input_shape), n_classes, seed=seed, **own)

    def _network_settings(self):
        return {**super()._network_settings(),
                **{key: getattr(self, key) for key in _LBCNN_PARAMETERS}}

    def fit(self, X, y, validation_data=None, sample_proba=None, sample_weight=None,
            source=None):
        """Build the LBCNN from the parameters and train it.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Training images.
        y : array-like of shape (n_samples,)
            Labels, at least two classes.
        validation_data : tuple (X_val, y_val) or None, default=None
            Held-out images for early stopping and best-weights restore.
        sample_proba : array-like of shape (n_samples, n_classes) or None, default=None
            Soft targets (distributions over ``classes_``) trained with
            cross-entropy; see :meth:`CNNClassifier.fit`.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each image in the loss; see :meth:`CNNClassifier.fit`.
        source : array-like of shape (n_samples,) or None, default=None
            Each image's source, weighed by ``source_weight``; see
            :meth:`CNNClassifier.fit`.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        super().fit(X, y, validation_data=validation_data, sample_proba=sample_proba,
                    sample_weight=sample_weight, source=source)
        from fersk.layers import LocalBinaryConv2D

        self.n_anchor_params_ = count_params(
            layer.anchors for layer in _iter_layers(self.model_)
            if isinstance(layer, LocalBinaryConv2D)
        )
        return self


def _iter_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _iter_layers(layer)
        else:
            yield layer
