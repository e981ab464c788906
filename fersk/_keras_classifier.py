"""The classifier layer of the fersk Keras networks.

:class:`BaseKerasImageClassifier` turns :class:`~fersk._keras_base.BaseKerasImageEstimator`
into a scikit-learn classifier: labels encoded to ``classes_``,
``class_weight``, soft targets (``sample_proba``), ``label_smoothing``, the
loss of the output head (softmax, or FaceChannel's tanh) and
``predict_proba``/``predict``.  :class:`~fersk.CNNClassifier` and
:class:`~fersk.LBCNNClassifier` subclass it; the name is also importable
from :mod:`fersk._keras_base`, as before the estimator base was split off.
"""

from numbers import Real

import keras
import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_is_fitted,
    check_array,
    check_consistent_length,
    column_or_1d,
)

from fersk._constraints import without_bools
from fersk._fit_guard import unchanged_if_fit_fails
from fersk._keras_base import (
    BaseKerasImageEstimator,
    _last_layer,
    _output_activation,
    _outputs_probabilities,
)
from fersk._labels import _in_class_order
from fersk._keras_params import gated_mean, tanh_proba, view_margin
from fersk._validation import check_random_state_int

__all__ = ["BaseKerasImageClassifier"]


def _check_sample_proba(sample_proba, n_samples, n_classes):
    """Validated soft targets: float32 (n_samples, n_classes), rows summing to 1."""
    proba = check_array(sample_proba, dtype=np.float64, input_name="sample_proba")
    if proba.shape != (n_samples, n_classes):
        raise ValueError(
            f"sample_proba must have shape (n_samples, n_classes) = ({n_samples}, "
            f"{n_classes}), one column per class of y in the order of classes_; got "
            f"{proba.shape}."
        )
    if np.any(proba < 0):
        raise ValueError("sample_proba has negative values; it must hold distributions.")
    sums = proba.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError(
            f"sample_proba has {int(np.sum(sums <= 0))} all-zero rows; each row must have "
            "a positive sum (it is normalised to 1)."
        )
    return (proba / sums).astype(np.float32)

class BaseKerasImageClassifier(ClassifierMixin, BaseKerasImageEstimator):
    """Base of the fersk Keras classifiers (private; see the subclasses).

    The network of :class:`~fersk._keras_base.BaseKerasImageEstimator` with
    one output per class, a softmax by default (``_head_activation``), and
    the labels of ``y`` as ``classes_``.  Like that base it has no
    ``__init__``: the subclasses' signatures list the parameters, adding
    ``class_weight``, ``source_weight`` and ``label_smoothing``.
    """

    # predict is classes_[argmax(predict_proba)]: fersk.predict_faces reads
    # the labels off the probabilities instead of predicting twice.
    _predicts_proba_argmax = True

    _saved_attributes = ("classes_", *BaseKerasImageEstimator._saved_attributes)
    _outputs_meaning = "one probability per class"

    _parameter_constraints = without_bools({
        **BaseKerasImageEstimator._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "test_time_margin": [Interval(Real, 0, 1, closed="both"), None],
    })

    # ---------------------------------------------------------------- labels
    def _encode_validation(self, validation_data):
        xv, yv = self._validation_pair(validation_data)
        yv = column_or_1d(yv, warn=True)
        check_consistent_length(xv, yv)
        unknown = np.setdiff1d(yv, self.classes_)
        if unknown.size:
            raise ValueError(
                f"validation_data y has labels not seen in y: {unknown.tolist()}; "
                f"classes are {self.classes_.tolist()}."
            )
        return xv, np.searchsorted(self.classes_, yv).astype(np.int64)

    def _class_weight_dict(self, y_enc):
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            # True == 1: a bool key would weigh class 1 (or refuse nothing) unsaid.
            unknown = [k for k in self.class_weight if isinstance(k, (bool, np.bool_))
                       or k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight has keys that are not classes of y: {unknown}; "
                    f"classes are {self.classes_.tolist()}."
                )
            # NaN, inf, None or negative weights trained to NaN probabilities
            # (or a loss turned round) without a word; refused before training.
            values = list(self.class_weight.values())
            bad = [v for v in values if isinstance(v, bool) or not isinstance(v, Real)
                   or not np.isfinite(v) or v < 0]
            if bad or (values and not any(v > 0 for v in values)):
                raise ValueError(
                    "class_weight values must be finite numbers >= 0, not all 0; got "
                    f"{self.class_weight!r}."
                )
        # Only classes with labels here can be balanced: soft targets
        # (sample_proba) may add a class no hard label names (a rare class
        # missing from a fold); it keeps weight 1, as a dict's unnamed keys.
        present = np.arange(len(self.classes_))
        if self.class_weight == "balanced":
            present = np.unique(y_enc)
        weights = compute_class_weight(
            self.class_weight, classes=self.classes_[present], y=self.classes_[y_enc]
        )
        out = dict.fromkeys(range(len(self.classes_)), 1.0)
        out.update({int(i): float(w) for i, w in zip(present, weights)})
        return out

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_if_fit_fails
    def fit(self, X, y, validation_data=None, sample_proba=None, sample_weight=None,
            source=None):
        """Build the network from the parameters and train it.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Training images (flattened rows are reshaped with
            ``image_shape``; square grey images when it is None).
        y : array-like of shape (n_samples,)
            Labels of any type (integers, strings...), at least two classes.
        validation_data : tuple (X_val, y_val) or None, default=None
            Held-out images for early stopping and best-weights restore;
            takes precedence over ``validation_fraction``.  Labels must be
            classes of ``y``.
        sample_proba : array-like of shape (n_samples, n_classes) or None, default=None
            Soft targets: each image's distribution over the classes, in
            the order of ``classes_`` (the sorted unique labels of ``y``),
            e.g. FER+'s vote distributions
            (:func:`fersk.datasets.load_ferplus`).  When ``y`` holds
            integer labels and ``sample_proba`` has more columns than
            ``y`` has classes, the columns are the classes
            ``0..n_columns-1`` and ``classes_`` lists them all, so a class
            without a label in ``y`` (a rare class missing from a
            cross-validation fold) keeps its share.  Rows must be
            non-negative with a positive sum; they are normalised to sum to
            1.  The network is then trained with the cross-entropy against
            these distributions instead of the one-hot labels (``y`` still
            gives ``classes_``, the stratification of
            ``validation_fraction`` and the classes of ``class_weight``:
            each image is weighed by the class of its label in ``y``,
            whatever its distribution's most probable class);
            ``label_smoothing`` mixes them with the uniform distribution
            like one-hot targets.  Validation images held out by
            ``validation_fraction`` keep their distributions;
            ``validation_data`` is scored against its one-hot labels.  A
            metadata-routed parameter: in a ``Pipeline`` or
            ``GridSearchCV`` under ``sklearn.set_config(
            enable_metadata_routing=True)``, request it with
            ``set_fit_request(sample_proba=True)``.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each image in the loss (times ``class_weight``'s
            weight of its class), e.g. per source of a multi-domain
            training set (:func:`fersk.datasets.source_sample_weight`),
            and in the input standardisation's mean and variance
            (``input_scaling``).  An image of weight 0 is left out of the
            fit, as if removed (``classes_`` still lists its label); it is
            never held out by ``validation_fraction``.  Held-out images of
            ``validation_fraction`` keep theirs out of training.
            Metadata-routed like ``sample_proba``.
        source : array-like of shape (n_samples,) or None, default=None
            Each image's source (domain), e.g. ``load_in_the_wild(...).source``:
            with ``source_weight`` each image's weight is multiplied by its
            source's (:func:`fersk.datasets.source_sample_weight` of these
            sources), exactly as if that were passed as ``sample_weight``;
            without ``source_weight`` it changes nothing.  Metadata-routed
            like ``sample_proba`` (``set_fit_request(source=True)``), so a
            grid search can tune ``source_weight`` while it groups its folds
            by the same sources.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        x, warm = self._start_fit(X, y)
        y = column_or_1d(y, warn=True)
        check_consistent_length(x, y)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if sample_proba is not None:
            try:
                sample_proba = np.asarray(sample_proba, dtype=np.float64)
            except (ValueError, TypeError) as exc:  # numpy's message names nothing
                raise ValueError(
                    "sample_proba must be an array of shape (n_samples, n_classes) of "
                    f"probabilities; numpy cannot read it as one ({exc})."
                ) from None
        n_columns = np.shape(sample_proba)[1] if np.ndim(sample_proba) == 2 else 0
        if (
            n_columns > len(encoder.classes_) and y.dtype.kind in "iu"
            and encoder.classes_[0] >= 0 and encoder.classes_[-1] < n_columns
        ):
            # Integer labels and wider distributions: the columns are the
            # classes 0..n_columns-1, also those without a label in y (a
            # rare class missing from a cross-validation fold).
            encoder.classes_ = np.arange(n_columns, dtype=y.dtype)
        if warm and getattr(self, "_label_columns", None) is not None:
            raise ValueError(
                "warm_start=True cannot continue this network: it was loaded with its labels "
                "re-sorted (pretrained.load(labels='names')), so its outputs are not in the "
                "order of classes_; load it with labels='codes' to train it further."
            )
        if warm:
            self._check_warm_network(x)
        if warm and not np.array_equal(encoder.classes_, self.classes_):
            raise ValueError(
                "warm_start=True continues training on the classes of the previous fit, "
                f"{self.classes_.tolist()}; y has {encoder.classes_.tolist()}. Set "
                "warm_start=False to train a new network."
            )
        if len(encoder.classes_) < 2:  # checked before anything is set on self
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 "
                f"class ({encoder.classes_[0]!r})."
            )
        self.classes_ = encoder.classes_
        if not warm:
            # New outputs, in classes_' order, without a model folder's names
            # (a warm fit keeps its outputs and classes_, so their names too).
            self._label_columns = self._label_codes = self._class_names = None
        y_enc = encoder.transform(y).astype(np.int64)
        n_classes = len(self.classes_)
        seed = check_random_state_int(self.random_state)
        proba = (
            None if sample_proba is None
            else _check_sample_proba(sample_proba, len(y_enc), n_classes)
        )
        weight = self._fit_sample_weight(x, sample_weight, source)
        # classes_ still comes from all of y.
        weight, x, y_enc, proba = self._without_zero_weight(weight, warm, x, y_enc, proba)
        self._check_degrade()

        p_train = p_val = None
        w_train = weight
        w_val = None  # weights of a hold-out of these images (validation_fraction)
        if validation_data is not None:
            x_train, y_train, p_train = x, y_enc, proba
            x_val, y_val = self._encode_validation(validation_data)
        elif self.validation_fraction is not None:
            arrays = (x, y_enc) if proba is None else (x, y_enc, proba)
            # The split draws the same rows with or without weights.
            index = np.arange(len(y_enc))
            parts = self._split_validation(*arrays, index, seed=seed, stratify=y_enc)
            x_train, x_val, y_train, y_val = parts[:4]
            if proba is not None:
                p_train, p_val = parts[4:6]
            if weight is not None:
                w_train, w_val = weight[parts[-2]], weight[parts[-1]]
        else:
            x_train, y_train, x_val, y_val, p_train = x, y_enc, None, None, proba
        w_scaling = w_train  # the images' own weights, without their class's
        class_weight = self._class_weight_dict(y_train)
        if class_weight is not None or w_train is not None or self._degrading():
            # One weight per image: the sample's times the class weight of
            # its label in y, always here, so soft targets are weighed by
            # that label with or without sample_weight (left to _train, the
            # class was read from the argmax of the sample_proba row).
            w_train = np.ones(len(y_train)) if w_train is None else w_train
            if class_weight is not None:
                w_train = w_train * np.array([class_weight[c] for c in y_train])
        if self.validation_fraction is not None and validation_data is None and (
                w_val is not None or class_weight is not None):
            # The hold-out is weighed as the images it was drawn from.
            w_val = np.ones(len(y_val)) if w_val is None else w_val
            if class_weight is not None:
                w_val = w_val * np.array([class_weight[c] for c in y_val])
        loss, t_train = self._loss_and_targets(y_train, p_train, n_classes)
        if x_val is None or np.ndim(t_train) == 1:
            t_val = y_val
        else:  # validation labels as distributions too (one-hot without their own)
            p_val = np.eye(n_classes, dtype=np.float32)[y_val] if p_val is None else p_val
            t_val = self._loss_and_targets(y_val, p_val, n_classes)[1]
        self._train(
            x_train, t_train, x_val, t_val, loss=loss, metrics=["accuracy"],
            n_outputs=n_classes, seed=seed, warm=warm, sample_weight=w_train,
            scaling_weight=w_scaling, val_weight=w_val,
        )
        return self

    def _head_activation(self):
        """Activation of the network's output layer: "softmax" (or "tanh")."""
        return "softmax"

    def _check_network(self, network):
        """A softmax head needs a network ending in a softmax: its outputs
        are read as the probabilities and trained with cross-entropy (logits
        would give negative "probabilities"); refused before training."""
        if self._head_activation() != "softmax":
            return
        activation = _output_activation(network)
        if activation != "softmax":
            raise ValueError(
                f"the architecture's output must be a softmax layer (one probability per "
                f"class); the last layer of {network.name!r} has activation "
                f"{activation!r}. End the network with activation=\"softmax\" (or a "
                "keras.layers.Softmax layer)."
            )
        if not _outputs_probabilities(network):
            # Its last layer names no activation (Reshape, Flatten, pooling,
            # a custom layer): what it outputs is what counts.
            raise ValueError(
                f"the architecture's output must be a softmax layer (one probability per "
                f"class); the last layer of {network.name!r} "
                f"({type(_last_layer(network)).__name__}) names no activation and its outputs "
                "are not probabilities (rows of numbers >= 0 summing to 1). End the network "
                "with activation=\"softmax\" (or a keras.layers.Softmax layer)."
            )

    def _loss_and_targets(self, y_enc, proba, n_classes):
        """The Keras loss and the targets of encoded labels (or soft targets).

        Softmax heads: sparse cross-entropy on the labels, or categorical
        cross-entropy (with ``label_smoothing``) on one-hot or soft targets.
        Tanh heads (FaceChannel's published training): mean squared error
        against the same targets, smoothed the same way.
        """
        if proba is None and self.label_smoothing == 0 and self._head_activation() == "softmax":
            return keras.losses.SparseCategoricalCrossentropy(), y_enc
        targets = np.eye(n_classes, dtype=np.float32)[y_enc] if proba is None else proba
        targets = np.asarray(targets, dtype=np.float32)
        if self._head_activation() == "tanh":
            if self.label_smoothing > 0:
                targets = (1 - self.label_smoothing) * targets + self.label_smoothing / n_classes
            return keras.losses.MeanSquaredError(), targets
        # Keras smooths one-hot and soft targets alike.
        return keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing), targets

    # --------------------------------------------------------------- predict
    def _predict_outputs(self, X):
        """The outputs averaged over the test-time views, the views beyond
        the centre one computed only for the faces ``test_time_margin``
        leaves unsure."""
        check_is_fitted(self)
        # Settings changed after fit are refused here, as in the base's.
        self._validate_params()
        return self._gated_outputs(self._validate_X(X, reset=False), self._outputs_of_views)

    def _gated_outputs(self, x, outputs_of):
        """The mean of the test-time views' outputs for validated images
        ``x``, gated by ``test_time_margin``; ``outputs_of(x, views)`` runs
        the network on "all", "first" or "rest" of the views (the traced
        step of a stream passes its own)."""
        if self.test_time_margin is None:
            return outputs_of(x, "all")
        first = outputs_of(x, "first")
        return gated_mean(first, view_margin(first, self._fitted_head_activation()),
                          self.test_time_margin, self._n_views(),
                          lambda unsure: outputs_of(x[unsure], "rest"))

    def predict_proba(self, X):
        """Class probabilities, computed in batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_`` (float64, rows sum
            to 1).
        """
        return self._outputs_to_proba(self._predict_outputs(X))

    def _outputs_to_proba(self, outputs):
        """Probabilities from the network's (view-averaged) outputs."""
        if self._fitted_head_activation() == "tanh":
            return _in_class_order(self, tanh_proba(outputs))
        return _in_class_order(self, outputs / outputs.sum(axis=1, keepdims=True))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The most probable class of each image, from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A small network trained for a few epochs fits scikit-learn's test
        # problems loosely (as CNNRegressor declares): the checks skip their
        # accuracy thresholds and keep every other assertion.
        tags.classifier_tags.poor_score = True
        return tags
