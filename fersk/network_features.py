"""A trained network's features as a scikit-learn transformer.

A network trained on FER-2013 and web faces reads faces well, but where a
user's faces are labelled by another convention (ExpW's labellers call an
open-mouthed shout "surprise", FER-2013's "angry"), the network's last layer
is what disagrees: a new last layer fitted on the user's own labelled faces
follows their labels (``benchmarks/head_refit.py``: a logistic regression
on the default network's features, fitted on ExpW's training faces, scores
0.411 on 107 of its held-out faces where the network scores 0.327; 2026-12-07,
before the rows lost their near-copies).
:class:`NetworkFeatures` gives those features to any scikit-learn estimator::

    make_pipeline(NetworkFeatures("wild_vgg_fast"), LogisticRegression())

The features are what the network's output layer reads (its last hidden
layer), averaged over the network's test-time views as its predictions are.
:func:`fold_head` makes such a fitted pipeline one network again (the head
as its output layer), which :func:`fersk.pretrained.save`, ONNX export,
``fersk serve`` and ``fersk live`` take as any other.
"""

import copy
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, clone
from sklearn.base import _fit_context
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._constraints import store_parameters

__all__ = ["NetworkFeatures", "fold_head"]


def _network_and_front(fitted, ensembles=False):
    """The fitted fersk network of ``fitted`` (an estimator, a Pipeline ending
    in one, either in a FrozenEstimator) and the Pipeline of the steps before
    it (None when there are none); with ``ensembles``, a
    :class:`~fersk.CNNEnsembleClassifier` may stand for the network."""
    from ._keras_base import BaseKerasImageEstimator
    from .ensemble import CNNEnsembleClassifier

    inner = fitted.estimator if isinstance(fitted, FrozenEstimator) else fitted
    front = None
    if isinstance(inner, Pipeline):
        front = inner[:-1] if len(inner.steps) > 1 else None
        inner = inner.steps[-1][1]
        if isinstance(inner, FrozenEstimator):
            inner = inner.estimator
    if ensembles and isinstance(inner, CNNEnsembleClassifier):
        for member in inner.estimators_:
            _network_and_front(member)  # every member a network (behind its representation)
        return inner, front
    if not isinstance(inner, BaseKerasImageEstimator):
        raise TypeError(
            "NetworkFeatures takes a fersk network estimator (CNNClassifier, LBCNNClassifier, "
            "CNNRegressor) or an ensemble of them (CNNEnsembleClassifier), a Pipeline ending "
            f"in one, or a bundled model's name or folder; got {type(inner).__name__}."
        )
    return inner, front


def _features_out(network):
    """How many values the output layer of a fitted network reads (a
    ValueError naming the network when that layer is not a Dense layer)."""
    from ._inference import features_network

    return int(features_network(network.model_.layers[-1]).output_shape[-1])


def _member_features(member, X, views):
    """The features of a fitted network, or of a Pipeline of a representation
    and a network (an ensemble's member), for images ``X``."""
    network, front = _network_and_front(member)
    Xm = X if front is None else front.transform(X)
    network._validate_params()
    return network._outputs_of_views(network._validate_X(Xm, reset=False), views, features=True)


class NetworkFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """The features a trained network's output layer reads, as a transformer.

    Turns faces into the values of the network's last hidden layer (the
    input of its softmax: 256 values for the bundled VGG networks), averaged
    over the network's test-time views.  Behind it, any scikit-learn
    estimator is a new last layer: fitted on a user's own labelled faces,
    it follows their labelling where the network follows FER-2013's, and
    it trains in seconds on the CPU.

    Parameters
    ----------
    estimator : str, path or estimator, default="wild_vgg_fast"
        The network.  A bundled model's name or a model folder
        (:func:`fersk.pretrained.load`, Keras back end): its steps before
        the network (the :class:`~fersk.FaceCropper` it predicts with) are
        applied first, so photos are read with the geometry the network
        was trained on, and :meth:`fit` trains nothing.  Or an estimator: a
        :class:`~fersk.CNNClassifier`, :class:`~fersk.LBCNNClassifier` or
        :class:`~fersk.CNNRegressor`, a :class:`~fersk.CNNEnsembleClassifier`
        of them, or a ``Pipeline`` ending in one of these,
        which :meth:`fit` trains (a clone of it) on ``X`` and ``y``; one
        trained elsewhere joins as a :class:`~sklearn.frozen.FrozenEstimator`
        (whose ``fit`` does nothing and which ``clone`` keeps fitted).
    test_time_views : {"model", "center"}, default="model"
        The views whose features are averaged: "model", the network's own
        test-time views (``test_time_crops`` and ``test_time_flip``; every
        view, whatever ``test_time_margin`` gates for its predictions), or
        "center", the centre window alone, not mirrored.
    verbose : int, default=0
        When positive, the :class:`~fersk.FaceCropper` in front of the
        network (a bundled model's, or one of a pipeline :meth:`fit` trains)
        reports its progress in :meth:`transform`: finding the faces of
        thousands of photos takes minutes.  The cropper in ``estimator_``
        keeps its own ``verbose`` (a network folded by :func:`fold_head`
        and saved predicts quietly); a ``FrozenEstimator``'s steps are left
        as they are.

    Attributes
    ----------
    estimator_ : estimator or Pipeline
        The fitted network (or the pipeline ending in it) that transforms.
    n_features_in_ : int
        Values per input image seen by the fitted estimator's first step,
        when that step records it (a network or a pipeline on arrays; a
        bundled model's :class:`~fersk.FaceCropper` takes images of any
        size).

    See Also
    --------
    fersk.pretrained.load : A bundled pipeline, which predicts with the
        network's own output layer.
    sklearn.frozen.FrozenEstimator : A fitted estimator that ``fit`` and
        ``clone`` leave as it is.

    Notes
    -----
    The output layer must be a ``Dense`` layer (every fersk architecture
    ends in one); the features are its input, computed with the batch
    norms folded as the network's predictions are.  For an ensemble
    (``"fer2013_ensemble"``), each member's features through its own
    representation, side by side in the ensemble's order (three members of
    256: 768 values); :func:`fold_head` cannot fold a head on them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from fersk import NetworkFeatures
    >>> rng = np.random.default_rng(0)
    >>> faces = rng.integers(0, 256, (8, 48, 48), dtype=np.uint8)
    >>> features = NetworkFeatures("wild_vgg_fast").fit(faces)
    >>> features.transform(faces).shape
    (8, 256)
    >>> head = make_pipeline(NetworkFeatures(), LogisticRegression())
    >>> head.fit(faces, [0, 1] * 4).predict(faces[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        "estimator": [str, os.PathLike, HasMethods(["fit"])],
        "test_time_views": [StrOptions({"model", "center"})],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator="wild_vgg_fast", *, test_time_views="model", verbose=0):
        store_parameters(self, locals())

    def _needs_y(self):
        # A FrozenEstimator's tags are its estimator's, but its fit trains nothing.
        return not isinstance(self.estimator, (str, os.PathLike, FrozenEstimator)) and get_tags(
            self.estimator).target_tags.required

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, **fit_params):
        """Load the bundled network, or train a clone of ``estimator`` on ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or list of images
            Faces (or photos, before a :class:`~fersk.FaceCropper`), as the
            estimator takes them.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Labels (or values) the estimator trains on; ignored for a bundled
            model or a :class:`~sklearn.frozen.FrozenEstimator`.
        **fit_params : dict
            Passed to the estimator's ``fit`` (``sample_weight``,
            ``source``, ``validation_data``...).

        Returns
        -------
        self : NetworkFeatures
            The fitted transformer.
        """
        if isinstance(self.estimator, (str, os.PathLike)):
            from .pretrained import load

            fitted = load(self.estimator, backend="keras")
        else:
            if y is None and self._needs_y():
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None: "
                    f"its {type(self.estimator).__name__} is trained in fit (give a trained one "
                    "as a FrozenEstimator, or a bundled model's name, to train nothing)."
                )
            fitted = clone(self.estimator).fit(X, y, **fit_params)
        network, _ = _network_and_front(fitted, ensembles=True)
        check_is_fitted(network)
        members = getattr(network, "estimators_", None)
        self._n_features_out = (
            _features_out(network) if members is None
            else sum(_features_out(_network_and_front(m)[0]) for m in members))
        vars(self).pop("n_features_in_", None)  # a refit's, not an earlier estimator's
        if hasattr(fitted, "n_features_in_"):
            self.n_features_in_ = fitted.n_features_in_
        self.estimator_ = fitted
        return self

    def transform(self, X):
        """The features of the network's output layer for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or list of images
            Faces (or photos, before a :class:`~fersk.FaceCropper`), as the
            fitted estimator takes them.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            One row per image, in order, averaged over the views that
            ``test_time_views`` names (float64).
        """
        check_is_fitted(self)
        self._validate_params()
        network, front = _network_and_front(self.estimator_, ensembles=True)
        Xt = X if front is None else self._front_transform(front, X)
        views = "all" if self.test_time_views == "model" else "first"
        members = getattr(network, "estimators_", None)
        if members is None:
            features = _member_features(network, Xt, views)
        else:  # an ensemble: its members' features side by side, in its order
            x = network._validate_X(Xt, reset=False)
            features = np.hstack([_member_features(m, x, views) for m in members])
        return np.asarray(features, dtype=np.float64)

    def _front_transform(self, front, X):
        # verbose reaches a shallow copy of the cropper, never estimator_'s own:
        # a network folded from this (fold_head) and saved keeps its quiet cropper.
        from .face import FaceCropper

        loud = self.verbose and not isinstance(self.estimator_, FrozenEstimator)
        for _, step in front.steps:
            if loud and isinstance(step, FaceCropper):
                step = copy.copy(step).set_params(verbose=self.verbose)
            X = step.transform(X)
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True  # image batches (n, h, w[, c]), as well as rows
        tags.target_tags.required = self._needs_y()
        tags.non_deterministic = False  # a seeded network's features are repeatable on the CPU
        return tags


def fold_head(pipeline):
    """The network of a fitted ``NetworkFeatures`` pipeline, with its head as output layer.

    ``make_pipeline(NetworkFeatures(model), LogisticRegression())``, once
    fitted, is a new last layer on the network's features; this returns a
    copy of the network's own pipeline (a bundled model's, with its
    ``FaceCropper``) or estimator whose ``Dense`` output layer holds the
    head's weights (a softmax of its decision function: for a multinomial
    ``LogisticRegression`` exactly its probabilities) and whose ``classes_``
    are the head's.  The result is a fitted fersk pipeline like any other:
    :func:`fersk.pretrained.save` writes it as a model folder, which
    ``fersk predict``, ``fersk serve``, ``fersk live`` and the ONNX back end
    load.  The pipeline given is left unchanged.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        A fitted pipeline of two steps: a :class:`NetworkFeatures` whose
        network is a classifier (:class:`~fersk.CNNClassifier` or
        :class:`~fersk.LBCNNClassifier`), then a linear classifier with
        ``coef_``, ``intercept_`` and ``classes_`` (``LogisticRegression``;
        a linear SVM's probabilities would be the softmax of its margins).

    Returns
    -------
    model : Pipeline or estimator
        What ``NetworkFeatures.estimator_`` holds (a pipeline ending in the
        network, or the network; a ``FrozenEstimator`` unwrapped), copied,
        with the new output layer.

    Notes
    -----
    With ``test_time_views="model"`` the head was fitted on features
    averaged over the network's views; the network averages each view's
    probabilities (and gates the mirror by ``test_time_margin``), so on
    faces where the views disagree the folded network may answer otherwise
    than the pipeline it came from.  With ``test_time_views="center"`` the
    folded network is set to that one view (``test_time_crops="center"``,
    ``test_time_flip=False``), as is a network of one view: both are the
    same as the pipeline up to float rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from fersk import NetworkFeatures
    >>> from fersk.network_features import fold_head
    >>> faces = np.random.default_rng(0).integers(0, 256, (9, 48, 48), dtype=np.uint8)
    >>> labels = np.array(["calm", "joy", "shout"] * 3)
    >>> head = make_pipeline(NetworkFeatures(), LogisticRegression()).fit(faces, labels)
    >>> model = fold_head(head)
    >>> model.classes_.tolist()
    ['calm', 'joy', 'shout']
    >>> model.predict_proba(faces).shape
    (9, 3)
    """
    import keras

    from .architectures import _replace_head
    from ._keras_classifier import BaseKerasImageClassifier

    steps = getattr(pipeline, "steps", None)
    if steps is None or len(steps) != 2 or not isinstance(steps[0][1], NetworkFeatures):
        raise TypeError(
            "fold_head takes a fitted Pipeline of two steps, NetworkFeatures then a linear "
            f"classifier (make_pipeline(NetworkFeatures(...), LogisticRegression())); got {pipeline!r}."
        )
    features, head = steps[0][1], steps[1][1]
    check_is_fitted(features)
    check_is_fitted(head)
    if not all(hasattr(head, a) for a in ("coef_", "intercept_", "classes_")):
        raise TypeError(
            f"the head {type(head).__name__} is not a linear classifier (coef_, intercept_, "
            "classes_): only such a head is an output layer."
        )
    fitted = features.estimator_
    if isinstance(fitted, FrozenEstimator):
        fitted = fitted.estimator
    if hasattr(_network_and_front(fitted, ensembles=True)[0], "estimators_"):
        raise TypeError(
            "the features of an ensemble are its members' side by side: no one output layer "
            "reads them, so the head cannot be folded into a network (joblib.dump the "
            "pipeline instead)."
        )
    model = copy.deepcopy(fitted)  # the network's model_ travels as .keras bytes
    network_estimator, _ = _network_and_front(model)
    if not isinstance(network_estimator, BaseKerasImageClassifier):
        raise TypeError(
            f"the network of NetworkFeatures is a {type(network_estimator).__name__}: only a "
            "classifier's output layer takes a classifier's head."
        )
    coef = np.asarray(head.coef_, dtype=np.float64)
    intercept = np.broadcast_to(np.asarray(head.intercept_, dtype=np.float64), (len(coef),))
    if len(head.classes_) == 2 and len(coef) == 1:
        # A binary head's one decision value: the softmax of (0, value).
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    if coef.shape != (len(head.classes_), features._n_features_out):
        raise ValueError(
            f"the head's coef_ has shape {coef.shape}; the network's output layer reads "
            f"{features._n_features_out} features for {len(head.classes_)} classes."
        )
    outer = network_estimator.model_
    network = _replace_head(outer.layers[-1], len(head.classes_), "softmax", "probabilities")
    network.layers[-1].set_weights([coef.T.astype(np.float32), intercept.astype(np.float32)])
    inputs = keras.Input(shape=outer.input_shape[1:], name="images")
    z = inputs
    for layer in outer.layers[1:-1]:  # standardisation, augmentation, crop: as fitted
        z = layer(z)
    network_estimator.model_ = keras.Model(inputs, network(z), name=outer.name)
    network_estimator.classes_ = np.asarray(head.classes_)
    # The new outputs are in the head's class order (no column map), named by
    # its labels (fersk._labels.default_class_names), not the folder's names.
    # The loaded model's codes go too: saved, they stood for the new classes
    # (a head fitted on a labels="names" network reloaded with the old codes).
    # The training record goes too: the new layer never went through the
    # network's epochs (fersk evaluate drew them as its training curve).
    for stale in ("_label_columns", "_label_codes", "_class_names", "history_", "best_epoch_",
                  "n_epochs_"):
        vars(network_estimator).pop(stale, None)
    if "head" in network_estimator.get_params(deep=False):
        network_estimator.set_params(head="softmax")
    if features.test_time_views == "center":
        # The head learnt the centre view's features alone: so the folded network
        # reads that view alone (its own views, flip or five crops, would average
        # in others and answer otherwise on many faces).
        network_estimator.set_params(test_time_crops="center", test_time_flip=False)
    return model
