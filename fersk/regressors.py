"""Keras networks as scikit-learn regressors of face images: arousal and valence.

:class:`CNNRegressor` predicts continuous values of a face, by default
FaceChannel's dimensional outputs (Barros, Churamani & Sciutti 2020):
arousal and valence, each a ``tanh`` unit in [-1, 1], trained with mean
squared error.  It takes the architectures of :class:`~fersk.CNNClassifier`
(the network's softmax output layer is replaced by a dense layer of one
unit per output), and works in ``Pipeline``, ``GridSearchCV`` (with
``scoring=fersk.metrics.ccc_scorer`` for the concordance correlation
coefficient), ``cross_validate``, ``clone`` and pickle/joblib.

No dimensional model is bundled with fersk: no face set labelled with
arousal and valence can be distributed with it.  Train one on AffectNet
(Mollahosseini et al. 2017; about 450k manually annotated images with
valence and arousal in [-1, 1]) or AFEW-VA (Kossaifi et al. 2017; 600 video
clips, per-frame valence and arousal on a -10..10 scale, to divide by 10);
see the docs page "Seeds as published".
"""

import warnings

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_array, check_consistent_length

from fersk._constraints import store_parameters
from fersk._fit_guard import unchanged_if_fit_fails
from fersk._image_files import check_float32_range
from fersk._keras_base import NOTES_DOC, BaseKerasImageEstimator, document_parameters
from fersk._validation import check_random_state_int
from fersk.architectures import ARCHITECTURES, _replace_head
from fersk.classifiers import ARCHITECTURE_PARAMS, _build_named

__all__ = ["CNNRegressor"]

_REG_ATTRS_DOC = """
    Attributes
    ----------
    n_outputs_ : int
        Number of outputs (2 for arousal and valence).
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
        Per-epoch ``loss`` (mean squared error), ``mae``, ``learning_rate``
        and, with validation data, ``val_loss``, ``val_mae``.
    n_epochs_ : int
        Epochs actually run.
    best_epoch_ : int
        0-based index of the epoch whose weights the model holds.
    n_trainable_params_ : int
        Learnable parameters.
    n_fixed_params_ : int
        Non-trainable parameters."""


@document_parameters
class CNNRegressor(RegressorMixin, BaseKerasImageEstimator):
    __doc__ = (
        """Convolutional network regressor of face images (arousal and valence).

    The network is built in ``fit`` from ``architecture`` and
    ``architecture_params`` like :class:`~fersk.CNNClassifier`'s, with its
    softmax output layer replaced by a dense layer of ``n_outputs_`` units
    (the columns of ``y``) with ``output_activation``, trained with mean
    squared error.  The defaults are FaceChannel's published dimensional
    model (Barros, Churamani & Sciutti 2020, ``getDimensionalModel`` of
    the authors' code): the FaceChannel backbone and its 200-unit dense
    layer, then ``tanh`` outputs for arousal and valence (the authors'
    two one-unit dense layers on the same features are one two-unit
    layer: the same parameters and function), trained with Adamax at
    ``learning_rate=0.002`` and ``ReduceLROnPlateau``.

    ``score`` is the coefficient of determination R^2 (scikit-learn's
    regressor convention, averaged over outputs); the concordance
    correlation coefficient of the dimensional benchmarks is
    :func:`fersk.metrics.concordance_correlation_coefficient`, and
    :func:`fersk.metrics.ccc_scorer` for ``GridSearchCV``.

    No arousal/valence model is bundled with fersk; train one on AffectNet
    or AFEW-VA (see the module's documentation).

    Parameters
    ----------
    architecture : str or callable, default="facechannel"
        "facechannel", "vgg_s", "kaggle_cnn", "vgg_fer", "mtcnn_cnn",
        "lbcnn" (:mod:`fersk.architectures`), or a callable
        ``f(input_shape, n_outputs, **architecture_params) -> keras.Model``
        (receiving ``seed`` when it accepts it).  The network's last layer
        must be a ``Dense`` layer: it is replaced by the output layer.
    architecture_params : dict or None, default=None
        Keyword arguments of the builder (e.g. ``{"width": 0.5}``).
    output_activation : {"tanh", "linear"}, default="tanh"
        Activation of the outputs: "tanh" bounds them to [-1, 1], the
        range of arousal and valence (targets outside it cannot be reached,
        and ``fit`` warns); "linear" leaves them unbounded.
    {keras_parameters}
"""
        + _REG_ATTRS_DOC
        + "\n"
        + NOTES_DOC
        + """

    See Also
    --------
    CNNClassifier : the same networks as classifiers.
    fersk.metrics.concordance_correlation_coefficient : the CCC metric.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk import CNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 16, 16)
    >>> y = np.c_[X[:, :8].mean(axis=(1, 2)), -X[:, 8:].mean(axis=(1, 2))]  # in [-1, 1]
    >>> reg = CNNRegressor(architecture_params={"width": 0.0625, "dense_units": 8},
    ...                    epochs=2, random_state=0).fit(X, y)
    >>> reg.predict(X).shape
    (40, 2)
    >>> bool(np.all(np.abs(reg.predict(X)) <= 1))
    True
    """
    )

    _saved_attributes = ("n_outputs_", *BaseKerasImageEstimator._saved_attributes)

    _parameter_constraints = {
        **BaseKerasImageEstimator._parameter_constraints,
        "architecture": [StrOptions(set(ARCHITECTURES)), callable],
        "architecture_params": [ARCHITECTURE_PARAMS, None],
        "output_activation": [StrOptions({"tanh", "linear"})],
    }

    def __init__(
        self,
        architecture="facechannel",
        architecture_params=None,
        output_activation="tanh",
        *,
        image_shape=None,
        batch_size=64,
        epochs=30,
        optimizer="adamax",
        learning_rate=0.002,
        learning_rate_schedule="plateau",
        validation_fraction=None,
        n_iter_no_change=10,
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

    def _build_network(self, input_shape, n_outputs, seed):
        network = _build_named(
            self.architecture, self.architecture_params, input_shape, n_outputs, seed
        )
        return _replace_head(network, n_outputs, self.output_activation, "outputs")

    def _head_activation(self):
        return self.output_activation

    def _check_y(self, y, n_samples, name="y"):
        y = check_array(
            y, ensure_2d=False, dtype=np.float64, input_name=name, ensure_min_samples=1
        )
        if y.ndim > 2:
            raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_outputs); got {y.ndim}-D.")
        if len(y) != n_samples:
            check_consistent_length(np.empty(n_samples), y)
        # The network is trained in float32: infinite targets, then NaN
        # weights blamed on the learning rate at prediction.
        check_float32_range(y, name, what="targets")
        return y

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_if_fit_fails
    def fit(self, X, y, validation_data=None, sample_weight=None, source=None):
        """Build the network from the parameters and train it.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Training images.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, e.g. ``(arousal, valence)`` pairs in [-1, 1].
        validation_data : tuple (X_val, y_val) or None, default=None
            Held-out images and targets for early stopping and
            best-weights restore; takes precedence over
            ``validation_fraction`` (a seeded random hold-out).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each image in the loss, e.g. per source of a
            multi-domain training set, and in the input standardisation's
            mean and variance (``input_scaling``).  An image of weight 0 is
            left out of the fit, as if removed; it is never held out by
            ``validation_fraction``, and held-out images keep theirs out of
            training.  A metadata-routed parameter: in a ``Pipeline`` or
            ``GridSearchCV`` under ``sklearn.set_config(
            enable_metadata_routing=True)``, request it with
            ``set_fit_request(sample_weight=True)``.
        source : array-like of shape (n_samples,) or None, default=None
            Each image's source (domain): with ``source_weight`` each
            image's weight is multiplied by its source's, exactly as if
            that were passed as ``sample_weight``; without
            ``source_weight`` it changes nothing.  Metadata-routed like
            ``sample_weight`` (``set_fit_request(source=True)``).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        x, warm = self._start_fit(X, y)
        y = self._check_y(y, len(x))
        t = y.reshape(len(y), -1).astype(np.float32)
        if warm:
            self._check_warm_network(x)
        if warm and t.shape[1] != self.n_outputs_:
            raise ValueError(
                f"warm_start=True continues training a network of {self.n_outputs_} "
                f"outputs; y has {t.shape[1]}. Set warm_start=False to train a new network."
            )
        if self.output_activation == "tanh" and np.any(np.abs(t) > 1):
            warnings.warn(
                "y has values outside [-1, 1], which tanh outputs cannot reach; scale the "
                "targets or set output_activation='linear'.",
                UserWarning,
                stacklevel=2,
            )
        weight = self._fit_sample_weight(x, sample_weight, source)
        weight, x, t = self._without_zero_weight(weight, warm, x, t)
        self.n_outputs_ = t.shape[1]
        self._y_1d = y.ndim == 1
        seed = check_random_state_int(self.random_state)
        self._check_degrade()
        w_train, w_val = weight, None
        if validation_data is not None:
            x_val, yv = self._validation_pair(validation_data)
            t_val = self._check_y(yv, len(x_val), "validation_data y")
            t_val = t_val.reshape(len(t_val), -1).astype(np.float32)
            if t_val.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"validation_data y has {t_val.shape[1]} outputs; y has {self.n_outputs_}."
                )
            x_train, t_train = x, t
        elif self.validation_fraction is not None:
            # The split draws the same rows with or without weights.
            x_train, x_val, t_train, t_val, i_train, i_val = self._split_validation(
                x, t, np.arange(len(t)), seed=seed)
            # The hold-out is weighed as the images it was drawn from.
            w_train = None if weight is None else weight[i_train]
            w_val = None if weight is None else weight[i_val]
        else:
            x_train, t_train, x_val, t_val, w_val = x, t, None, None, None
        import keras

        self._train(
            x_train, t_train, x_val, t_val, loss=keras.losses.MeanSquaredError(),
            metrics=["mae"], n_outputs=self.n_outputs_, seed=seed, warm=warm,
            sample_weight=w_train, scaling_weight=w_train, val_weight=w_val,
        )
        return self

    def predict(self, X):
        """Predicted outputs (e.g. arousal and valence), computed in batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Float64 predictions, 1-D when ``y`` was 1-D in ``fit``; in
            [-1, 1] with ``output_activation="tanh"``.  With test-time
            views (``test_time_flip``, ``test_time_crops``) the views'
            outputs are averaged.
        """
        y = self._predict_outputs(X)
        return y[:, 0] if self._y_1d else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        # A small network trained for a few epochs fits scikit-learn's test
        # problems loosely.
        tags.regressor_tags.poor_score = True
        return tags
