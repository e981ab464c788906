"""Soft-voting ensembles of classifiers, each on its own image representation.

Levi & Hassner (ICMI 2015) train several CNN architectures on several
representations of the same faces (raw pixels and mapped-LBP images with
different parameters) and average the networks' class probabilities.
:class:`CNNEnsembleClassifier` is that recipe as a scikit-learn
heterogeneous ensemble, built as :class:`~sklearn.ensemble.VotingClassifier`
is: every member is a ``(name, estimator)`` pair, a member with a
representation is a :class:`~sklearn.pipeline.Pipeline` (e.g.
``make_pipeline(MDSMappedLBP(), CNNClassifier())``), and the ensemble's
probabilities are the (weighted) mean of the members'.  Unlike
``VotingClassifier`` it takes image batches ``(n, h, w[, c])`` as well as
flattened rows, and checks its weights and its members' classes.

Nothing here is specific to neural networks: any classifier with
``predict_proba`` can be a member.
"""

import copy
import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.ensemble._base import _BaseHeterogeneousEnsemble, _fit_single_estimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, get_tags
from sklearn.frozen import FrozenEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _raise_for_params,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _check_y,
    check_consistent_length,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from ._constraints import N_JOBS, NumberSequence
from ._fit_guard import unchanged_if_fit_fails
from ._image_files import pixels_for_network
from ._labels import _in_class_order
from ._validation import validate_images
from ._warnings import warn_user

__all__ = ["CNNEnsembleClassifier", "one_view"]


def _is_str(value, text):
    return isinstance(value, str) and value == text


def _is_frozen(member):
    """A member trained elsewhere: a FrozenEstimator, alone or last in a Pipeline."""
    if isinstance(member, Pipeline):
        member = member.steps[-1][1]
    return isinstance(member, FrozenEstimator)


def _class_weight_by_code(member, encoder, name):
    """``member`` with its ``class_weight`` dicts keyed by the codes it is
    fitted on: the user keys them by y's labels (``{1: 5.0}`` for label 1,
    code 0), which as codes would weigh another class."""
    if _is_frozen(member):
        return member
    classes = encoder.classes_.tolist()
    updates = {}
    for key, value in member.get_params(deep=True).items():
        if key.split("__")[-1] != "class_weight" or not isinstance(value, dict):
            continue
        unknown = [k for k in value if k not in classes]
        if unknown:
            raise ValueError(
                f"Member {name!r}: class_weight has keys that are not classes of y: "
                f"{unknown}; classes are {classes}."
            )
        updates[key] = {int(encoder.transform([k])[0]): w for k, w in value.items()}
    return member.set_params(**updates) if updates else member


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _is_drop(estimator):
    return _is_str(estimator, "drop")


def _has_triples(estimators):
    """Whether ``estimators`` holds a triple of earlier fersk versions."""
    return isinstance(estimators, (list, tuple)) and any(
        isinstance(m, (list, tuple)) and len(m) == 3 for m in estimators
    )


def _as_pairs(estimators):
    """``estimators`` as ``(name, estimator)`` pairs; old triples converted.

    A triple ``(name, representation, estimator)`` (earlier fersk versions)
    is read as ``(name, estimator)`` when the representation is None or
    ``'passthrough'``, else as ``(name, Pipeline([("representation",
    representation), ("network", estimator)]))``.
    """
    if not isinstance(estimators, (list, tuple)) or len(estimators) == 0:
        raise ValueError(
            "estimators must be a non-empty list of (name, estimator) pairs; got "
            f"{estimators!r}."
        )
    pairs = []
    for i, member in enumerate(estimators):
        if not (isinstance(member, (tuple, list)) and len(member) in (2, 3)):
            raise ValueError(
                f"estimators must be a list of (name, estimator) pairs; entry {i} is "
                f"{member!r}."
            )
        name, estimator = member[0], member[-1]
        if not isinstance(name, str):
            raise ValueError(f"Member names must be strings; entry {i} has name {name!r}.")
        representation = member[1] if len(member) == 3 else None
        if not (representation is None or _is_str(representation, "passthrough")
                or _is_drop(estimator)):
            if not (hasattr(representation, "fit_transform")
                    and hasattr(representation, "transform")):
                raise ValueError(
                    f"The representation of member {name!r} must be a transformer "
                    f"(with fit_transform and transform), None or 'passthrough'; got "
                    f"{representation!r}."
                )
            estimator = Pipeline([("representation", representation), ("network", estimator)])
        pairs.append((name, estimator))
    return pairs


class CNNEnsembleClassifier(ClassifierMixin, _BaseHeterogeneousEnsemble):
    """Soft-voting ensemble of classifiers, each on its own representation.

    The recipe of Levi & Hassner (ICMI 2015): several networks, each
    trained on a representation of the faces (raw pixels, mapped-LBP images
    with different parameters), whose class probabilities are averaged.
    Each member is a ``(name, estimator)`` pair, as in
    :class:`~sklearn.ensemble.VotingClassifier`; a member that reads a
    representation is a :class:`~sklearn.pipeline.Pipeline`, e.g.
    ``("mapped", make_pipeline(MDSMappedLBP(), CNNClassifier()))``.
    :meth:`fit` encodes the labels once, then fits a clone of every member
    on ``X`` and the codes.  :meth:`predict_proba` is the (weighted) mean
    of the members' probabilities and :meth:`predict` its argmax, mapped to
    ``classes_``.

    Members need only the generic scikit-learn API, so
    :class:`~fersk.CNNClassifier` networks on :class:`~fersk.MDSMappedLBP`
    images and, say, a :class:`~sklearn.linear_model.LogisticRegression` on
    :class:`~fersk.LBPHistogram` descriptors can vote together.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The members.  The name identifies the member in :meth:`get_params`
        and :meth:`set_params` (it must be unique, must not contain ``__``
        and must not be one of this class's parameter names).  The
        estimator is a classifier with ``predict_proba`` (a Pipeline ending
        in one for a member with its own representation), or ``'drop'`` to
        leave the member out (it is neither fitted nor counted in the
        average); at least one member must not be dropped.  The triples
        ``(name, representation, estimator)`` of earlier fersk versions are
        still accepted and read as ``(name, estimator)`` (representation
        None or ``'passthrough'``) or ``(name, Pipeline([("representation",
        representation), ("network", estimator)]))``; ``set_params``
        first replaces such triples by these pairs (nested parameters are
        ``name__representation__param`` and ``name__network__param``).
    weights : array-like of shape (n_members,), default=None
        Weight of each member's probabilities in the average, one per entry
        of ``estimators`` (dropped members included; their weight is
        ignored).  Non-negative, finite, and not all zero among the members
        kept.  None means equal weights.
    n_jobs : int, default=None
        Members fitted in parallel with :class:`joblib.Parallel` (None means
        1, -1 all cores).  Keras networks already use every core and their
        memory adds up, so for CNN members None is usually best.
        Prediction is sequential.
    verbose : int, default=0
        When positive, prints each member's name and fitting time.
    test_time_views : {"model", "center"}, default="model"
        The views the members' networks see at prediction: "model", each
        network's own test-time views (``test_time_crops``,
        ``test_time_flip``), or "center", one centre view each (the centre
        window, no flip: about ten times faster for ten-view members, a
        little less accurate).
        Read at prediction, so it may be set on a fitted ensemble
        (``set_params(test_time_views="center")``); the fitted members are
        left as they are (see :func:`one_view`).

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members that are not dropped, in order.  Members were
        fitted on the *encoded* labels ``0 .. n_classes - 1``: map a
        member's predictions back with ``classes_[member.predict(X)]``
        (for an ensemble fitted here; a loaded one's members keep their
        folder's codes, which ``load(labels="names")`` does not sort as it
        sorts ``classes_``: read them through the ensemble).
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted members by name; dropped members map to ``'drop'``.
    weights_ : ndarray of shape (n_fitted_members,)
        The weights of the fitted members (in the order of
        ``estimators_``), as used in :meth:`predict_proba`: read from
        ``weights`` as it is now, so ``set_params(weights=...)`` on a
        fitted ensemble takes effect without a refit (as in
        :class:`~sklearn.ensemble.VotingClassifier`), and a saved folder
        predicts as the ensemble in memory did.
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Values per sample seen in :meth:`fit` (pixels times channels for
        images).
    feature_names_in_ : ndarray of str
        Names of the features seen in :meth:`fit`, when ``X`` was a
        DataFrame.
    image_shape_ : tuple of int
        Shape of one sample seen in :meth:`fit`: ``(height, width[,
        channels])`` for an image batch, ``(n_features,)`` for flattened
        rows (the ensemble hands rows to its members as they are).
        Prediction takes ``X`` in the same layout, or, after a fit on
        images, as rows of as many values (read in that shape).

    See Also
    --------
    sklearn.ensemble.VotingClassifier : soft voting of 2-D data, without
        the checks of weights and classes.
    fersk.CNNClassifier : the Keras networks of the paper.
    fersk.MDSMappedLBP : the mapped-LBP representation of the paper.

    Notes
    -----
    **Input.**  ``X`` is an image batch ``(n, h, w)`` / ``(n, h, w, c)`` or
    flattened rows ``(n, n_features)``, validated as by every fersk
    estimator (numeric, finite, non-empty) and handed, in the layout it came
    in, to every member.  Prediction must use the layout and sample shape
    seen in :meth:`fit`; after a fit on images, flattened rows of as many
    values are read as those images (FER-2013's CSV layout), as a single
    network reads them.

    **Labels.**  ``y`` is encoded once with
    :class:`~sklearn.preprocessing.LabelEncoder` and every member is fitted
    on the same integer labels, so all members share ``classes_`` by
    construction; a member that nonetheless learns other classes makes
    :meth:`fit` fail, naming the member.  A member's ``class_weight`` dict
    is keyed by the labels of ``y`` (translated to their codes).

    **Members' parameters after fit.**  As in scikit-learn's ensembles,
    ``estimators`` are templates and the fitted ``estimators_`` predict: a
    member's parameter set on a fitted ensemble (``a__test_time_flip``)
    reaches the next fit, not the predictions, and ``set_params`` says so
    with a UserWarning.  Views reach the fitted members through
    ``test_time_views`` or :func:`one_view`.  An ensemble that
    :func:`fersk.pretrained.load` built predicts with the very members it
    was given, so there the parameter takes effect (no warning).

    **Trained members.**  A member already fitted elsewhere joins as a
    :class:`~sklearn.frozen.FrozenEstimator` (whose ``fit`` does nothing
    and which :func:`~sklearn.base.clone` keeps fitted), alone or as the
    last step of the member's Pipeline: the network is not retrained, only
    the representation is fitted (for :class:`~fersk.MDSMappedLBP`, a
    function of its parameters alone).  Such a member may have learned the
    labels themselves instead of their codes; it must have learned exactly
    the ensemble's ``classes_``.  A trained member with the classes
    0..n-1 under other integer labels is read as codes, with a warning (it
    may have learned labels of its own); under names (strings) it is
    refused: numbers learned cannot be told which name they are.

    **Nested parameters** follow scikit-learn's ensembles: ``<name>``
    replaces a member (``'drop'`` drops it) and ``<name>__<param>`` sets
    a member's parameter, e.g. ``mapped__cnnclassifier__epochs`` for a
    ``make_pipeline(MDSMappedLBP(), CNNClassifier())`` member named
    ``mapped``, in :meth:`set_params` and in parameter grids.

    **Saving.**  :func:`fersk.pretrained.save` stores a fitted ensemble as
    its fitted members (``'drop'`` kept) and ``weights``; ``estimators_``,
    ``named_estimators_`` and ``weights_`` are derived from them at load.

    **Reproducibility.**  Members are cloned with their own parameters:
    give each its ``random_state`` to make the ensemble deterministic.

    References
    ----------
    G. Levi and T. Hassner, "Emotion Recognition in the Wild via
    Convolutional Neural Networks and Mapped Binary Patterns", Proc. ACM
    International Conference on Multimodal Interaction (ICMI), 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fersk import CNNEnsembleClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(60, 16 * 16)          # 60 flattened 16x16 images
    >>> y = np.repeat(["happy", "sad", "neutral"], 20)
    >>> X[y == "happy", :16] += 1.0        # something to learn
    >>> ens = CNNEnsembleClassifier(
    ...     [
    ...         ("raw", LogisticRegression(max_iter=500)),
    ...         ("scaled", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))),
    ...     ],
    ...     weights=[2, 1],
    ... ).fit(X, y)
    >>> ens.classes_
    array(['happy', 'neutral', 'sad'], dtype='<U7')
    >>> proba = ens.predict_proba(X[:3])
    >>> members = [m.predict_proba(X[:3]) for m in ens.estimators_]
    >>> bool(np.allclose(proba, (2 * members[0] + members[1]) / 3))
    True
    >>> str(ens.predict(X[:1])[0])
    'happy'

    Nested parameters address the members by name:

    >>> ens.get_params()["scaled__logisticregression__C"]
    1.0
    >>> _ = ens.set_params(scaled__logisticregression__C=0.1, raw="drop")
    >>> ens.estimators[1][1][-1]
    LogisticRegression(C=0.1, max_iter=500)
    >>> ens.estimators[0][1]
    'drop'
    """

    # predict is classes_[argmax(predict_proba)]: fersk.predict_faces reads
    # the labels off the probabilities instead of predicting twice.
    _predicts_proba_argmax = True

    _parameter_constraints: dict = {
        "estimators": [list],
        "weights": [NumberSequence(Interval(numbers.Real, 0, None, closed="left")), None],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
        "test_time_views": [StrOptions({"model", "center"})],
    }

    #: Fitted attributes a model folder (fersk.pretrained) stores.
    _saved_attributes = ("classes_", "n_features_in_", "feature_names_in_", "image_shape_")

    #: Fitted attributes a model folder does not store (fersk.pretrained):
    #: all follow from the fitted members and ``weights``.
    _derived_attributes = ("estimators_", "named_estimators_", "weights_")

    def __init__(self, estimators, *, weights=None, n_jobs=None, verbose=0,
                 test_time_views="model"):
        self.estimators = estimators
        self.weights = weights
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.test_time_views = test_time_views

    # ------------------------------------------------------------------
    # Parameters: triples of earlier versions read as the pairs they stand for
    # ------------------------------------------------------------------
    def get_params(self, deep=True):
        """Parameters of the ensemble and, with ``deep``, of its members.

        Parameters
        ----------
        deep : bool, default=True
            Also return the members (by name) and their parameters
            (``name__param``); members given as triples are listed as the
            pairs they stand for.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        if deep and _has_triples(self.estimators):
            view = copy.copy(self)
            view.estimators = _as_pairs(self.estimators)
            params = view.get_params(deep=True)
            params["estimators"] = self.estimators
            return params
        return super().get_params(deep=deep)

    def set_params(self, **params):
        """Set the ensemble's and its members' parameters.

        Members given as triples are first replaced by the pairs they stand
        for (the same representation and network objects, in a Pipeline),
        so that every parameter, nested ones included, can be set.

        On a fitted ensemble the members that predict are those of the last
        fit (scikit-learn's rule; said in a warning), except in a loaded
        one (:func:`fersk.pretrained.load`), which predicts with the very
        members it holds: a member set there to ``'drop'`` or to another
        fitted estimator votes so at once.  ``estimators`` of other names
        or order than the fitted members' are refused at predict (their
        ``weights`` cannot be paired with them) until the next fit.

        Parameters
        ----------
        **params : dict
            ``estimators``, ``weights``, ``n_jobs``, ``verbose``,
            ``test_time_views``, a member by name (an estimator or
            ``'drop'``) or a member's parameter as ``name__param``.

        Returns
        -------
        self : CNNEnsembleClassifier
            This ensemble.
        """
        # A member as a whole (its name), or all of them: not a parameter of one.
        own = set(self._get_param_names())
        members_set = any(k == "estimators" or ("__" not in k and k not in own) for k in params)
        if "estimators" in params:  # first, as scikit-learn's ensembles do
            self.estimators = params.pop("estimators")
        if _has_triples(self.estimators):
            names = {name for name, *_ in self.estimators}
            if not any(key.split("__", 1)[0] in names for key in params):
                # The ensemble's own parameters: the members stay as given.
                BaseEstimator.set_params(self, **params)
                return self._members_changed() if members_set else self
            self.estimators = _as_pairs(self.estimators)
        self._warn_unfitted_member_params(params)
        super().set_params(**params)
        return self._members_changed() if members_set else self

    def _members_changed(self):
        """After a member (or ``estimators``) is set on a fitted ensemble.

        A loaded ensemble predicts with the very members it holds: when they
        are all fitted, its fitted members are derived from them again (a
        member set to "drop" stops voting).  Otherwise the fitted members
        stay those of the last fit, which is said; :attr:`weights_` refuses
        to pair them with members of other names or order."""
        if not hasattr(self, "named_estimators_"):
            return self
        try:
            pairs = _as_pairs(self.estimators)
        except ValueError:  # not members at all: said by fit, as scikit-learn's checks ask
            return self
        if getattr(self, "_members_keyed_by_label", False) and all(
                _is_drop(est) or _is_fitted(est) for _, est in pairs):
            self._restore_derived()
            return self
        if [n for n, _ in pairs] != list(self.named_estimators_) or any(
                _is_drop(est) != _is_drop(self.named_estimators_[n]) for n, est in pairs):
            warn_user(
                f"{type(self).__name__}: estimators set on a fitted ensemble: the members "
                "that predict (estimators_) are those of the last fit, "
                f"{list(self.named_estimators_)}; fit again to use these."
            )
        return self

    def _warn_unfitted_member_params(self, params):
        """After fit, ``estimators`` are the templates and ``estimators_``
        predict (scikit-learn's rule): a member's parameter set on a fitted
        ensemble changes nothing until the next fit, so say so (a loaded
        ensemble predicts with the very members given, and takes it)."""
        if not hasattr(self, "named_estimators_"):
            return
        given = dict(_as_pairs(self.estimators))
        stale = sorted({key.split("__", 1)[0] for key in params
                        if key.split("__", 1)[0] in given and
                        given[key.split("__", 1)[0]] is not self.named_estimators_.get(
                            key.split("__", 1)[0])})
        if stale:
            warn_user(
                f"{type(self).__name__}: {', '.join(repr(n) for n in stale)} set on a fitted "
                "ensemble: the members' parameters reach the next fit, not the fitted members "
                "that predict (estimators_). For views use test_time_views or "
                "fersk.ensemble.one_view; else set them on named_estimators_[name], or fit again."
            )

    @property
    def named_estimators(self):
        """The members by name (triples as the pairs they stand for).

        Returns
        -------
        members : :class:`~sklearn.utils.Bunch`
            Each member's estimator (a Pipeline for a triple), by name.
        """
        return Bunch(**dict(_as_pairs(self.estimators)))

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------
    def _validate_estimators(self):
        """The members as pairs, checked; old triples converted."""
        pairs = _as_pairs(self.estimators)
        self._validate_names([name for name, _ in pairs])
        for name, estimator in pairs:
            if isinstance(estimator, type):
                raise TypeError(
                    f"Member {name!r} is the class {estimator.__name__}; pass an "
                    f"instance ({estimator.__name__}())."
                )
            if not _is_drop(estimator) and not (
                hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")
            ):
                raise ValueError(
                    f"Member {name!r} must be a classifier with predict_proba, or "
                    f"'drop'; got {estimator!r}."
                )
        if all(_is_drop(estimator) for _, estimator in pairs):
            raise ValueError(
                f"All members of estimators are 'drop' ({[n for n, _ in pairs]}); at "
                "least one must be an estimator."
            )
        return pairs

    def _validate_weights(self, pairs):
        kept = np.array([not _is_drop(estimator) for _, estimator in pairs])
        if self.weights is None:
            return np.ones(kept.sum())
        # Numbers >= 0 (_parameter_constraints); how many depends on estimators.
        weights = np.asarray(self.weights, dtype=np.float64)
        if len(weights) != len(pairs):
            raise ValueError(
                f"weights must hold one number per member: {len(pairs)} members "
                f"in estimators, got weights of shape {weights.shape}."
            )
        if not np.any(weights[kept] > 0):
            raise ValueError(
                f"weights of the members that are not dropped are all zero "
                f"(weights={self.weights!r}); at least one must be positive."
            )
        return weights[kept]

    def _validate_X(self, X, reset):
        """Rows through ``validate_data``, image batches through fersk's
        ``validate_images``; the sample shape must be the one of fit."""
        if hasattr(X, "iloc") or hasattr(X, "tocsr") or hasattr(X, "toarray"):
            ndim = 2  # DataFrame or sparse: validate_data gives the right error
        else:
            ndim = getattr(X, "ndim", None)
            if ndim is None:
                try:
                    ndim = np.asarray(X, dtype=object).ndim
                except ValueError:  # grey beside colour...: validate_images says so
                    ndim = None
        if ndim == 2:
            X = validate_data(self, X, reset=reset, ensure_all_finite=True)
        else:
            X, _ = validate_images(self, X, reset=reset, check_shape=False)
        if not reset and any(
            getattr(est, "input_dtype_", None) == "|u1" for est in self.estimators_
        ):
            # Members fitted on uint8 pixels: X is pixels, read once by the
            # pixel rule, so that every member (mapped LBP too) sees the same.
            X = pixels_for_network(X, "|u1", type(self).__name__)
        if reset:
            self.image_shape_ = tuple(X.shape[1:])
        elif (X.ndim == 2 and len(self.image_shape_) > 1
              and X.shape[1] == int(np.prod(self.image_shape_))):
            # Rows of an ensemble fitted on images (FER-2013's CSV layout):
            # read in fit's layout, as a single network reads them.
            X = X.reshape(len(X), *self.image_shape_)
        elif tuple(X.shape[1:]) != tuple(self.image_shape_):
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{tuple(self.image_shape_)}; pass X in the layout used in fit."
            )
        return X

    # ------------------------------------------------------------------
    # Fit and predict
    # ------------------------------------------------------------------
    # Nested validation stays on: the members' parameters are only checked
    # when their own fit validates them (as in scikit-learn's ensembles).
    @_fit_context(prefer_skip_nested_validation=False)
    @unchanged_if_fit_fails
    def fit(self, X, y, **fit_params):
        """Fit a clone of every member on ``X`` and the encoded ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Training images, or flattened rows; passed (validated) to every
            member in this layout.
        y : array-like of shape (n_samples,)
            Class labels (any hashable, sortable values, e.g. ints or
            strings).  Encoded once; every member is fitted on the codes.
        **fit_params : dict
            ``sample_weight`` (array-like of shape (n_samples,), not
            negative: checked before any member is fitted) is passed
            to every member's ``fit``, as
            :class:`~sklearn.ensemble.VotingClassifier` does (a Pipeline
            member then needs metadata routing).  With
            ``sklearn.set_config(enable_metadata_routing=True)`` any metadata
            (``sample_weight``, the ``source`` of
            :class:`~fersk.CNNClassifier`'s ``source_weight``) goes to the
            members that request it (``set_fit_request``); without routing
            anything else is an error.

        Returns
        -------
        self : CNNEnsembleClassifier
            Fitted ensemble.
        """
        _raise_for_params(fit_params, self, "fit", allow=["sample_weight"])
        pairs = self._validate_estimators()
        self._validate_weights(pairs)  # before any member is fitted
        X = self._validate_X(X, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        y = _check_y(y, estimator=self)
        check_consistent_length(X, y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        y_encoded = encoder.fit_transform(y)
        self.classes_ = encoder.classes_
        # Members fitted anew: classes_' order, without a model folder's names.
        self._label_columns = self._label_codes = self._class_names = None
        self._members_keyed_by_label = False  # fit keys the members' class_weight by code

        active = [(name, est) for name, est in pairs if not _is_drop(est)]
        if fit_params.get("sample_weight") is not None:
            # Checked once here, not by a member after another's long fit.
            fit_params["sample_weight"] = _check_sample_weight(
                fit_params["sample_weight"], X, ensure_non_negative=True)
        if _routing_enabled():
            routed = process_routing(self, "fit", **fit_params)
            member_params = {name: routed[name].fit for name, _ in active}
        else:
            params = {k: v for k, v in fit_params.items() if v is not None}
            if params:
                cannot = [name for name, est in active
                          if not (_is_frozen(est) or has_fit_parameter(est, "sample_weight"))]
                if cannot:
                    raise ValueError(
                        f"Members {cannot} take no sample_weight in fit (a Pipeline passes it "
                        "on only under metadata routing: sklearn.set_config("
                        "enable_metadata_routing=True) and set_fit_request on its steps).")
            member_params = {name: params for name, _ in active}
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_single_estimator)(
                _class_weight_by_code(clone(estimator), encoder, name),
                X,
                y_encoded,
                fit_params=member_params[name],
                message_clsname=type(self).__name__,
                message=(
                    f"({index} of {len(active)}) member {name!r}" if self.verbose else None
                ),
            )
            for index, (name, estimator) in enumerate(active, 1)
        )
        self._set_members(pairs, fitted)
        return self

    def get_metadata_routing(self):
        """How ``fit``'s metadata reach the members (metadata routing).

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
            Each member's ``fit`` receives what it requests of the
            ensemble's ``fit``.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> from fersk import CNNEnsembleClassifier
        >>> ens = CNNEnsembleClassifier([("lr", LogisticRegression())])
        >>> type(ens.get_metadata_routing()).__name__
        'MetadataRouter'
        """
        router = MetadataRouter(owner=self)
        for name, estimator in _as_pairs(self.estimators):
            if not _is_drop(estimator):
                router.add(**{name: estimator},
                           method_mapping=MethodMapping().add(callee="fit", caller="fit"))
        return router

    def _set_members(self, pairs, fitted):
        """``estimators_`` and ``named_estimators_`` from the fitted members,
        after checking that they learned ``classes_``."""
        n_classes = len(self.classes_)
        names = [name for name, est in pairs if not _is_drop(est)]
        for name, member in zip(names, fitted):
            member_classes = getattr(member, "classes_", None)
            # A prefit member (FrozenEstimator) knows the labels themselves;
            # sorted like the codes, its columns are in the same order.
            if member_classes is not None and not (
                np.array_equal(member_classes, np.arange(n_classes))
                or np.array_equal(member_classes, self.classes_)
            ):
                raise ValueError(
                    f"Member {name!r} learned the classes {np.asarray(member_classes).tolist()}, "
                    f"not the classes of y, {self.classes_.tolist()}, nor their codes "
                    f"0..{n_classes - 1} that members are fitted on; every member must "
                    "learn all of them."
                )
            if (member_classes is not None and _is_frozen(member)
                    and self.classes_.dtype.kind not in "iufb"
                    and np.array_equal(member_classes, np.arange(n_classes))):
                # Numbers learned, names in y: never the same labels, and reading them as
                # codes puts a bundled model's 4 (sad) on the fifth sorted name (neutral).
                raise ValueError(
                    f"Trained member {name!r} learned the classes 0..{n_classes - 1}, and y "
                    f"holds the names {self.classes_.tolist()}: which number is which name "
                    "cannot be known. Fit the ensemble on the labels the member learned "
                    "(e.g. y as its integer labels), or refit the member on these names."
                )
            if (member_classes is not None and _is_frozen(member)
                    and self.classes_.dtype.kind in "iuf"
                    and np.array_equal(member_classes, np.arange(n_classes))
                    and not np.array_equal(self.classes_, member_classes)):
                # Codes or labels of other data? Both read the same; say which is assumed.
                warnings.warn(
                    f"Trained member {name!r} has the classes 0..{n_classes - 1}, the "
                    f"codes of y's classes {self.classes_.tolist()}: its columns are read "
                    f"in that order (0 -> {self.classes_.tolist()[0]!r}, ...). If it learned labels "
                    "0.. of its own instead, refit it on y's labels.",
                    UserWarning,
                )
        self.estimators_ = list(fitted)
        fitted_iter = iter(self.estimators_)
        self.named_estimators_ = Bunch(
            **{name: "drop" if _is_drop(est) else next(fitted_iter) for name, est in pairs}
        )

    def _restore_derived(self):
        """Derive the fitted members' attributes when ``estimators`` already
        holds fitted members (how :func:`fersk.pretrained.load` builds an
        ensemble): ``estimators_``, ``named_estimators_``, ``weights_``."""
        pairs = self._validate_estimators()
        fitted = [est for _, est in pairs if not _is_drop(est)]
        for member in fitted:
            check_is_fitted(member)
        self._validate_weights(pairs)
        self._set_members(pairs, fitted)
        # These members are a model folder's: their class_weight is keyed by
        # y's labels already (fit's members are keyed by codes).
        self._members_keyed_by_label = True

    @property
    def weights_(self):
        check_is_fitted(self)
        # From the parameter as it is now: a weight set after fit used to be
        # ignored here but saved, so the loaded folder predicted otherwise.
        # The weights follow ``estimators``: never paired by position with
        # fitted members of other names, order or drops.
        now = [(n, _is_drop(est)) for n, est in _as_pairs(self.estimators)]
        if now != [(n, _is_drop(est)) for n, est in self.named_estimators_.items()]:
            raise ValueError(
                f"{type(self).__name__}: estimators were set after fit "
                f"({[n for n, _ in now]}, fitted: {list(self.named_estimators_)}): the weights "
                "follow estimators and cannot be paired with the fitted members; fit again."
            )
        return self._validate_weights(list(self.named_estimators_.items()))

    def predict_proba(self, X):
        """Weighted mean of the members' class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Samples, in the layout and shape seen in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            ``sum_m weights_[m] * P_m(X) / sum(weights_)`` over the fitted
            members ``m``; columns follow ``classes_``.
        """
        check_is_fitted(self)
        # weights and test_time_views may be set after fit: checked as fit checks
        # them (a negative or NaN weight gave negative or NaN probabilities, a
        # misspelt view setting every member's full views).
        self._validate_params()
        X = self._validate_X(X, reset=False)
        names = [n for n, est in self.named_estimators_.items() if not _is_drop(est)]
        expected = (X.shape[0], len(self.classes_))
        probas = []
        for name, member in zip(names, self.estimators_):
            if self.test_time_views == "center":
                member = one_view(member)
            proba = np.asarray(member.predict_proba(X), dtype=np.float64)
            if proba.shape != expected:
                raise ValueError(
                    f"Member {name!r} returned probabilities of shape {proba.shape}; "
                    f"expected {expected}."
                )
            probas.append(proba)
        weights = self.weights_
        weights = weights / weights.max()  # finite sums: weights near 1e308 overflowed to nan
        return _in_class_order(self, np.average(np.stack(probas), axis=0, weights=weights))

    def predict(self, X):
        """Class with the highest mean probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Samples, in the layout and shape seen in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_`` (ties go to the first class).
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def _saved_params(self):
        """Parameters a model folder stores (:mod:`fersk.pretrained`): the
        fitted members take the place of the unfitted ones, their
        ``class_weight`` keyed by y's labels again (fit keyed them by codes:
        stored so, a refit of the loaded ensemble read the codes as labels
        and weighed another class)."""
        check_is_fitted(self)
        labels = self.classes_.tolist()
        # A loaded ensemble's members are keyed by labels already: mapped
        # again, a re-saved folder weighed another class (or failed).
        by_label = getattr(self, "_members_keyed_by_label", False)
        members = []
        for name, member in self.named_estimators_.items():
            if not _is_drop(member) and not _is_frozen(member) and not by_label:
                by_code = {k: v for k, v in member.get_params(deep=True).items()
                           if k.split("__")[-1] == "class_weight" and isinstance(v, dict)}
                if by_code:  # a copy: the fitted member in memory stays as it is
                    member = copy.deepcopy(member).set_params(**{
                        k: {labels[int(code)]: w for code, w in v.items()}
                        for k, v in by_code.items()})
            members.append((name, member))
        return {**self.get_params(deep=False), "estimators": members}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        try:
            members = [get_tags(est) for _, est in _as_pairs(self.estimators)
                       if not _is_drop(est)]
        except (TypeError, ValueError, AttributeError):
            return tags
        if members:
            tags.input_tags.positive_only = any(t.input_tags.positive_only for t in members)
            tags.non_deterministic = any(t.non_deterministic for t in members)
            tags.classifier_tags.poor_score = any(
                t.classifier_tags is not None and t.classifier_tags.poor_score
                for t in members
            )
        return tags

    def _sk_visual_block_(self):
        from sklearn.utils._repr_html.estimator import _VisualBlock

        try:
            names, estimators = zip(*_as_pairs(self.estimators))
        except (TypeError, ValueError):
            return _VisualBlock("single", self, names=type(self).__name__)
        return _VisualBlock("parallel", estimators, names=names)


def one_view(estimator):
    """A fitted model whose networks see one centre view at prediction.

    The Keras networks of fersk average their probabilities over test-time
    views (``test_time_crops="five"`` with ``test_time_flip=True``: ten
    views).  This returns a shallow copy of ``estimator`` in which every
    such network predicts from the centre window alone, without a flip:
    inside a :class:`~sklearn.pipeline.Pipeline`, a
    :class:`~sklearn.frozen.FrozenEstimator`, a
    :class:`CNNEnsembleClassifier` and a
    :class:`~fersk.NetworkFeatures` (``test_time_views="center"``) too.
    The copies share the fitted networks (nothing is copied but the
    settings), and ``estimator`` itself is left as it is.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator, e.g. a pipeline of :func:`fersk.pretrained.load`.

    Returns
    -------
    estimator : estimator
        The copy (``estimator`` itself when it holds no such network).

    Examples
    --------
    >>> from fersk import pretrained
    >>> from fersk.ensemble import one_view
    >>> model = pretrained.load("fer2013_cnn")
    >>> fast = one_view(model)
    >>> fast[-1].test_time_crops, fast[-1].test_time_flip
    ('center', False)
    >>> model[-1] is not fast[-1]
    True
    """
    if isinstance(estimator, Pipeline):
        out = copy.copy(estimator)
        out.steps = [(name, one_view(step)) for name, step in estimator.steps]
        return out
    if isinstance(estimator, FrozenEstimator):
        out = copy.copy(estimator)
        out.estimator = one_view(estimator.estimator)
        return out
    if hasattr(estimator, "test_time_views"):  # an ensemble, NetworkFeatures
        out = copy.copy(estimator)
        out.test_time_views = "center"
        return out
    if hasattr(estimator, "test_time_crops") and hasattr(estimator, "test_time_flip"):
        out = copy.copy(estimator)
        out.test_time_crops, out.test_time_flip = "center", False
        return out
    return estimator
