"""Soft-voting ensembles of classifiers, each on its own image representation.

Levi & Hassner (ICMI 2015) train several CNN architectures on several
representations of the same faces (raw pixels and mapped-LBP images with
different parameters) and average the networks' class probabilities.
:class:`CNNEnsembleClassifier` is that recipe as a scikit-learn
meta-estimator: every member is a ``(name, representation, estimator)``
triple, the representation is fitted and applied before its estimator, and
the ensemble's probabilities are the (weighted) mean of the members'.

Nothing here is specific to neural networks: any scikit-learn transformer
can be a representation and any classifier with ``predict_proba`` a member.
"""

import numbers
import time
from collections import defaultdict

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import ClassifierMixin, _fit_context, clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, get_tags
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_y,
    check_array,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

__all__ = ["CNNEnsembleClassifier"]

_PASSTHROUGH = (None, "passthrough")
_PARTS = ("representation", "network")


def _is_str(value, text):
    return isinstance(value, str) and value == text


def _is_passthrough(representation):
    return representation is None or _is_str(representation, "passthrough")


def _is_drop(estimator):
    return _is_str(estimator, "drop")


def _as_triples(estimators):
    """``estimators`` as a list of (name, representation, estimator).

    Raises TypeError or ValueError when it is not a list of 3-sequences
    with string names; used where malformed values must be tolerated
    (get_params/set_params) as well as, with clearer messages, in fit.
    """
    if not isinstance(estimators, list):
        raise TypeError("estimators is not a list")
    triples = []
    for member in estimators:
        if isinstance(member, (str, bytes)) or not hasattr(member, "__len__"):
            raise TypeError("member is not a sequence")
        if len(member) != 3:
            raise ValueError("member is not a triple")
        name, representation, estimator = member
        if not isinstance(name, str):
            raise TypeError("member name is not a string")
        triples.append((name, representation, estimator))
    return triples


def _member_view(representation, estimator):
    """The member as the Pipeline exposed by ``get_params`` (same objects)."""
    if _is_drop(estimator):
        return "drop"
    return Pipeline(
        [
            ("representation", "passthrough" if representation is None else representation),
            ("network", estimator),
        ]
    )


def _fit_member(representation, estimator, X, y, name, index, total, verbose):
    """Fit one (already cloned) member; return it as a fitted Pipeline."""
    if verbose:
        rep_name = (
            "raw input" if representation is None else type(representation).__name__
        )
        print(
            f"[CNNEnsembleClassifier] ({index} of {total}) fitting member "
            f"{name!r}: {rep_name} -> {type(estimator).__name__} on "
            f"{X.shape[0]} samples",
            flush=True,
        )
        start = time.perf_counter()
    if representation is None:
        Xt, step = X, "passthrough"
    else:
        Xt, step = representation.fit_transform(X, y), representation
    estimator.fit(Xt, y)
    if verbose:
        print(
            f"[CNNEnsembleClassifier] ({index} of {total}) member {name!r} "
            f"fitted in {time.perf_counter() - start:.1f}s",
            flush=True,
        )
    return Pipeline([("representation", step), ("network", estimator)])


class CNNEnsembleClassifier(ClassifierMixin, _BaseComposition):
    """Soft-voting ensemble of classifiers, each on its own representation.

    The recipe of Levi & Hassner (ICMI 2015): several networks, each
    trained on a representation of the faces (raw pixels, mapped-LBP images
    with different parameters), whose class probabilities are averaged.
    Each member is a ``(name, representation, estimator)`` triple;
    :meth:`fit` encodes the labels once, then for every member clones the
    representation and the estimator, fits the representation on ``X``
    (``fit_transform(X, y)``) and the estimator on its output.
    :meth:`predict_proba` is the (weighted) mean of the members'
    probabilities and :meth:`predict` its argmax, mapped to ``classes_``.

    Members need only the generic scikit-learn API, so
    :class:`~fersk.CNNClassifier` networks on :class:`~fersk.MDSMappedLBP`
    images and, say, a :class:`~sklearn.linear_model.LogisticRegression` on
    :class:`~fersk.LBPHistogram` descriptors can vote together.

    Parameters
    ----------
    estimators : list of (str, transformer or None, estimator)
        The members.  The name identifies the member in :meth:`get_params`
        and :meth:`set_params` (it must be unique, must not contain ``__``
        and must not be one of this class's parameter names).  The
        representation is a transformer (anything with ``fit_transform``
        and ``transform``, e.g. a :class:`~sklearn.pipeline.Pipeline` of
        several) or None / ``'passthrough'`` for the input itself.  The
        estimator is a classifier with ``predict_proba``, or ``'drop'`` to
        leave the member out (it is neither fitted nor counted in the
        average, as in :class:`~sklearn.ensemble.VotingClassifier`); at least
        one member must not be dropped.
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
        When positive, prints which member is being fitted, and how long it
        took.

    Attributes
    ----------
    estimators_ : list of Pipeline
        The fitted members that are not dropped, in order, each a
        ``Pipeline([("representation", fitted transformer or "passthrough"),
        ("network", fitted estimator)])``.  Members were fitted on the
        *encoded* labels ``0 .. n_classes - 1``: map a member's predictions
        back with ``classes_[member.predict(X)]``.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted members by name; dropped members map to ``'drop'``.
    weights_ : ndarray of shape (n_fitted_members,)
        The weights of the fitted members (in the order of
        ``estimators_``), as used in :meth:`predict_proba`.
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    n_features_in_ : int
        Values per sample seen in :meth:`fit` (pixels times channels for
        images).
    feature_names_in_ : ndarray of str
        Names of the features seen in :meth:`fit`, when ``X`` was a
        DataFrame.
    input_shape_ : tuple of int
        Shape of one sample seen in :meth:`fit`: ``(height, width[,
        channels])`` for an image batch, ``(n_features,)`` for flattened
        rows.  Prediction takes ``X`` in the same layout.

    See Also
    --------
    sklearn.ensemble.VotingClassifier : soft voting of members that all see
        the same features.
    fersk.CNNClassifier : the Keras networks of the paper.
    fersk.MDSMappedLBP : the mapped-LBP representation of the paper.

    Notes
    -----
    **Input.**  ``X`` is an image batch ``(n, h, w)`` / ``(n, h, w, c)`` or
    flattened rows ``(n, n_features)``.  The ensemble checks that it is
    numeric, finite, non-empty and of one of these dimensionalities (a
    clear :class:`ValueError` otherwise), then hands the validated array,
    in the layout it came in, to every member: each representation or
    estimator must accept that layout (e.g. a
    :class:`~sklearn.linear_model.LogisticRegression` on raw images needs
    flattened rows, or a representation that flattens).  Prediction must
    use the layout and sample shape seen in :meth:`fit`.

    **Labels.**  ``y`` is encoded once with
    :class:`~sklearn.preprocessing.LabelEncoder` and every member is fitted
    on the same integer labels, so all members share ``classes_`` by
    construction; a member that nonetheless learns other classes (e.g. one
    that subsamples its data) makes :meth:`fit` fail, naming the member.

    **Trained members.**  A member already fitted elsewhere joins as a
    :class:`~sklearn.frozen.FrozenEstimator` (whose ``fit`` does nothing
    and which :func:`~sklearn.base.clone` keeps fitted): its network is
    not retrained, only its representation is fitted (for
    :class:`~fersk.MDSMappedLBP`, a function of its parameters alone).
    Such a member may have learned the labels themselves instead of their
    codes; it must have learned exactly the ensemble's ``classes_``.
    This is how the networks of a slow training run, each trained with
    its own validation data, are combined.

    **Nested parameters.**  ``get_params(deep=True)`` exposes every member
    under its name as a ``Pipeline([("representation", transformer or
    "passthrough"), ("network", estimator)])`` built around the very
    objects held in ``estimators`` (``'drop'`` for a dropped member).  So,
    for a member named ``"raw"``:

    * ``raw__network__C``, ``raw__representation__n_components`` (any
      parameter of the estimator or the representation) set that
      parameter on the object in ``estimators`` itself;
    * ``raw__network`` replaces the estimator (``'drop'`` drops the member),
      ``raw__representation`` the representation (None for raw input);
    * ``raw`` replaces the whole member: ``'drop'`` (the representation is
      kept, so ``raw__network=...`` brings the member back), a
      ``(representation, estimator)`` pair, or a Pipeline with the two
      steps ``"representation"`` and ``"network"`` (what ``get_params``
      returns).

    These keys work in :meth:`set_params` and in parameter grids of
    :class:`~sklearn.model_selection.GridSearchCV`.  Replacing a member or
    a part builds a new ``estimators`` list; the list passed by the user is
    not modified.

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
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fersk import CNNEnsembleClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(60, 16 * 16)          # 60 flattened 16x16 images
    >>> y = np.repeat(["happy", "sad", "neutral"], 20)
    >>> X[y == "happy", :16] += 1.0        # something to learn
    >>> ens = CNNEnsembleClassifier(
    ...     [
    ...         ("raw", None, LogisticRegression(max_iter=500)),
    ...         ("scaled", StandardScaler(), LogisticRegression(max_iter=500)),
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

    Nested parameters address the members' parts by name:

    >>> params = ens.get_params()
    >>> params["scaled"]
    Pipeline(steps=[('representation', StandardScaler()),
                    ('network', LogisticRegression(max_iter=500))])
    >>> params["scaled__network__C"]
    1.0
    >>> _ = ens.set_params(scaled__network__C=0.1, raw="drop")
    >>> ens.estimators[1][2]
    LogisticRegression(C=0.1, max_iter=500)
    >>> ens.estimators[0][2]
    'drop'
    """

    _parameter_constraints: dict = {
        "estimators": [list],
        "weights": ["array-like", None],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(self, estimators, *, weights=None, n_jobs=None, verbose=0):
        self.estimators = estimators
        self.weights = weights
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------
    # Nested parameters
    # ------------------------------------------------------------------
    def get_params(self, deep=True):
        """Get the parameters of the ensemble and, if deep, of its members.

        Parameters
        ----------
        deep : bool, default=True
            When True, also returns every member under its name (as a
            ``Pipeline([("representation", ...), ("network", ...)])``
            around the objects in ``estimators``, or ``'drop'``), its two
            parts as ``<name>__representation`` and ``<name>__network``, and
            their parameters as ``<name>__representation__<param>`` and
            ``<name>__network__<param>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> from fersk import CNNEnsembleClassifier
        >>> ens = CNNEnsembleClassifier([("raw", None, LogisticRegression())])
        >>> sorted(ens.get_params(deep=False))
        ['estimators', 'n_jobs', 'verbose', 'weights']
        >>> ens.get_params()["raw__network__C"]
        1.0
        """
        out = super().get_params(deep=False)
        if not deep:
            return out
        try:
            triples = _as_triples(self.estimators)
        except (TypeError, ValueError):
            # Malformed members are reported by fit; get_params (used by
            # set_params, clone and repr) must not fail on them.
            return out
        for name, representation, estimator in triples:
            out[name] = _member_view(representation, estimator)
            out[f"{name}__representation"] = representation
            out[f"{name}__network"] = estimator
            for part, obj in zip(_PARTS, (representation, estimator)):
                if hasattr(obj, "get_params") and not isinstance(obj, type):
                    for key, value in obj.get_params(deep=True).items():
                        out[f"{name}__{part}__{key}"] = value
        return out

    def set_params(self, **params):
        """Set the parameters of the ensemble or of its members.

        Keys are applied in this order: ``estimators``; whole members
        ``<name>``; member parts ``<name>__representation`` and
        ``<name>__network``; their parameters
        ``<name>__representation__<param>`` and ``<name>__network__<param>``
        (set on the objects held in ``estimators``); then the ensemble's own
        parameters.

        Parameters
        ----------
        **params : dict
            Parameters to set.  ``<name>`` takes ``'drop'``, a
            ``(representation, estimator)`` pair or a Pipeline with steps
            ``"representation"`` and ``"network"``; ``<name>__network``
            takes an estimator or ``'drop'``; ``<name>__representation``
            takes a transformer, None or ``'passthrough'``.

        Returns
        -------
        self : CNNEnsembleClassifier
            This estimator.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.preprocessing import StandardScaler
        >>> from fersk import CNNEnsembleClassifier
        >>> ens = CNNEnsembleClassifier([("raw", None, LogisticRegression())])
        >>> _ = ens.set_params(raw__network__C=10.0,
        ...                    raw__representation=StandardScaler())
        >>> ens.estimators
        [('raw', StandardScaler(), LogisticRegression(C=10.0))]
        """
        if "estimators" in params:
            self.estimators = params.pop("estimators")
        try:
            names = [name for name, _, _ in _as_triples(self.estimators)]
        except (TypeError, ValueError):
            names = []

        # 1. Whole members.
        for key in [k for k in params if k in names]:
            representation, estimator = self._parse_member_value(key, params.pop(key))
            self._replace_member(key, representation=representation, estimator=estimator)

        # 2. Member parts.
        for key in list(params):
            name, sep, part = key.partition("__")
            if sep and name in names and part in _PARTS:
                value = params.pop(key)
                if part == "representation":
                    self._replace_member(name, representation=value)
                else:
                    self._replace_member(name, estimator=value)

        # 3. Parameters of the members' parts, set on the objects themselves.
        nested = defaultdict(dict)
        for key in list(params):
            name, sep, rest = key.partition("__")
            if not (sep and name in names):
                continue
            part, sep, sub = rest.partition("__")
            if part not in _PARTS or not sep or not sub:
                raise ValueError(
                    f"Invalid parameter {key!r} for {type(self).__name__}: a member's "
                    f"parameters are {name}, {name}__representation, {name}__network, "
                    f"{name}__representation__<param> and {name}__network__<param>."
                )
            nested[(name, part)][sub] = params.pop(key)
        members = {}
        if nested:
            members = {name: (r, e) for name, r, e in _as_triples(self.estimators)}
        for (name, part), sub_params in nested.items():
            obj = members[name][_PARTS.index(part)]
            if not hasattr(obj, "set_params") or isinstance(obj, type):
                raise ValueError(
                    f"Cannot set {sorted(f'{name}__{part}__{k}' for k in sub_params)}: "
                    f"the {part} of member {name!r} is {obj!r}, which has no "
                    "parameters."
                )
            obj.set_params(**sub_params)

        # 4. The ensemble's own parameters (unknown keys raise there).
        if params:
            super().set_params(**params)
        return self

    def _parse_member_value(self, name, value):
        """(representation, estimator) from a value given for ``<name>``."""
        current = dict((n, (r, e)) for n, r, e in _as_triples(self.estimators))[name]
        if _is_drop(value):
            return current[0], "drop"
        if isinstance(value, Pipeline):
            steps = value.steps
            if [step_name for step_name, _ in steps] != list(_PARTS):
                raise ValueError(
                    f"A Pipeline given for member {name!r} must have exactly the "
                    f"steps 'representation' and 'network'; got steps "
                    f"{[step_name for step_name, _ in steps]}."
                )
            return steps[0][1], steps[1][1]
        if isinstance(value, tuple) and len(value) == 2:
            return value
        raise ValueError(
            f"Member {name!r} can be set to 'drop', a (representation, estimator) "
            "pair or a Pipeline with steps 'representation' and 'network'; got "
            f"{value!r}. To replace only its estimator use {name}__network=..., "
            f"only its representation {name}__representation=...."
        )

    def _replace_member(self, name, **parts):
        new = []
        for member_name, representation, estimator in _as_triples(self.estimators):
            if member_name == name:
                representation = parts.get("representation", representation)
                estimator = parts.get("estimator", estimator)
            new.append((member_name, representation, estimator))
        self.estimators = new

    # ------------------------------------------------------------------
    # Validation
    # ------------------------------------------------------------------
    def _validate_members(self):
        if not self.estimators:
            raise ValueError(
                "estimators must be a non-empty list of (name, representation, "
                "estimator) tuples; got an empty list."
            )
        for i, member in enumerate(self.estimators):
            if (
                isinstance(member, (str, bytes))
                or not hasattr(member, "__len__")
                or len(member) != 3
            ):
                raise ValueError(
                    "estimators must be a list of (name, representation, estimator) "
                    f"tuples; entry {i} is {member!r}."
                )
            if not isinstance(member[0], str):
                raise ValueError(
                    f"Member names in estimators must be strings; entry {i} has "
                    f"name {member[0]!r}."
                )
        triples = _as_triples(self.estimators)
        names = [name for name, _, _ in triples]
        self._validate_names(names)
        for name, representation, estimator in triples:
            for part, obj in zip(_PARTS, (representation, estimator)):
                if isinstance(obj, type):
                    raise TypeError(
                        f"The {part} of member {name!r} is the class "
                        f"{obj.__name__}; pass an instance ({obj.__name__}())."
                    )
            if not _is_passthrough(representation) and not (
                hasattr(representation, "fit_transform")
                and hasattr(representation, "transform")
            ):
                raise ValueError(
                    f"The representation of member {name!r} must be a transformer "
                    "(with fit_transform and transform), None or 'passthrough'; "
                    f"got {representation!r}."
                )
            if not _is_drop(estimator) and not (
                hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")
            ):
                raise ValueError(
                    f"The estimator of member {name!r} must be a classifier with "
                    f"predict_proba, or 'drop'; got {estimator!r}."
                )
        if all(_is_drop(estimator) for _, _, estimator in triples):
            raise ValueError(
                f"All members of estimators are 'drop' ({names}); at least one "
                "must be an estimator."
            )
        return triples

    def _validate_weights(self, triples):
        if self.weights is None:
            return np.ones(sum(not _is_drop(e) for _, _, e in triples))
        weights = np.asarray(self.weights)
        if weights.ndim != 1 or len(weights) != len(triples):
            raise ValueError(
                f"weights must hold one number per member: {len(triples)} members "
                f"in estimators, got weights of shape {weights.shape}."
            )
        try:
            weights = weights.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"weights must be numbers; got {self.weights!r}.") from None
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"weights must be finite and non-negative; got {self.weights!r}."
            )
        kept = np.array([not _is_drop(e) for _, _, e in triples])
        if not np.any(weights[kept] > 0):
            raise ValueError(
                f"weights of the members that are not dropped are all zero "
                f"(weights={self.weights!r}); at least one must be positive."
            )
        return weights[kept]

    def _validate_X(self, X, reset):
        """Check X is a numeric, finite, non-empty 2-D, 3-D or 4-D array."""
        if hasattr(X, "iloc") or hasattr(X, "tocsr") or hasattr(X, "toarray"):
            ndim = 2  # DataFrame or sparse: validate_data gives the right error
        else:
            ndim = getattr(X, "ndim", None)
            if ndim is None:
                try:
                    ndim = np.asarray(X).ndim
                except (TypeError, ValueError) as exc:
                    raise ValueError(
                        f"X must be an array of images or of flattened rows; "
                        f"could not read it as an array: {exc}"
                    ) from exc
        if ndim == 2:
            X = validate_data(self, X, reset=reset, ensure_all_finite=True)
        elif ndim in (3, 4):
            X = check_array(
                X,
                allow_nd=True,
                ensure_all_finite=True,
                input_name="X",
                estimator=self,
            )
            if 0 in X.shape[1:]:
                raise ValueError(f"X has an empty sample dimension: shape {X.shape}.")
            if reset:
                self.n_features_in_ = int(np.prod(X.shape[1:]))
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
        else:
            raise ValueError(
                "X must be a batch of images of shape (n_samples, height, width"
                "[, channels]) or flattened rows (n_samples, n_features); got a "
                f"{ndim}-D input."
                + (
                    " Reshape your data: a single image needs X[np.newaxis]."
                    if ndim in (0, 1)
                    else ""
                )
            )
        if reset:
            self.input_shape_ = tuple(X.shape[1:])
        elif tuple(X.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X has samples of shape {tuple(X.shape[1:])}, but "
                f"{type(self).__name__} was fitted on samples of shape "
                f"{self.input_shape_}; pass X in the layout used in fit."
            )
        return X

    # ------------------------------------------------------------------
    # Fit and predict
    # ------------------------------------------------------------------
    # Nested validation stays on: the members' parameters are only checked
    # when their own fit validates them (as in scikit-learn's meta-estimators).
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit every member's representation and estimator on ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Training images, or flattened rows; passed (validated) to every
            member's representation in this layout.
        y : array-like of shape (n_samples,)
            Class labels (any hashable, sortable values, e.g. ints or
            strings).  Encoded once; every member is fitted on the codes.

        Returns
        -------
        self : CNNEnsembleClassifier
            Fitted ensemble.
        """
        triples = self._validate_members()
        weights = self._validate_weights(triples)
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
        n_classes = len(self.classes_)

        active = [(n, r, e) for n, r, e in triples if not _is_drop(e)]
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(
                None if _is_passthrough(representation) else clone(representation),
                clone(estimator),
                X,
                y_encoded,
                name,
                index,
                len(active),
                self.verbose,
            )
            for index, (name, representation, estimator) in enumerate(active, 1)
        )
        for (name, _, _), member in zip(active, fitted):
            member_classes = getattr(member, "classes_", None)
            # A prefit member (FrozenEstimator) knows the labels themselves;
            # sorted like the codes, its columns are in the same order.
            if member_classes is not None and not (
                np.array_equal(member_classes, np.arange(n_classes))
                or np.array_equal(member_classes, self.classes_)
            ):
                raise ValueError(
                    f"Member {name!r} learned the classes {list(member_classes)}, not "
                    f"the classes of y, {list(self.classes_)}, nor their codes "
                    f"0..{n_classes - 1} that members are fitted on; every member must "
                    "learn all of them."
                )
        self.estimators_ = fitted
        self.weights_ = weights
        fitted_iter = iter(fitted)
        self.named_estimators_ = Bunch(
            **{
                name: "drop" if _is_drop(estimator) else next(fitted_iter)
                for name, _, estimator in triples
            }
        )
        return self

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
        X = self._validate_X(X, reset=False)
        probas = []
        for name, member in zip(self._fitted_names(), self.estimators_):
            proba = np.asarray(member.predict_proba(X), dtype=np.float64)
            if proba.shape != (X.shape[0], len(self.classes_)):
                raise ValueError(
                    f"Member {name!r} returned probabilities of shape {proba.shape}; "
                    f"expected {(X.shape[0], len(self.classes_))}."
                )
            probas.append(proba)
        return np.average(np.stack(probas), axis=0, weights=self.weights_)

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

    def _fitted_names(self):
        return [
            name
            for name, member in self.named_estimators_.items()
            if not _is_drop(member)
        ]

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimators_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        try:
            triples = _as_triples(self.estimators)
            first_steps, parts = [], []
            for _, representation, estimator in triples:
                if _is_drop(estimator):
                    continue
                parts.append(get_tags(estimator))
                if _is_passthrough(representation):
                    first_steps.append(parts[-1])
                else:
                    parts.append(get_tags(representation))
                    first_steps.append(parts[-1])
        except (TypeError, ValueError, AttributeError):
            return tags
        if first_steps:
            # The ensemble takes what every member's first step takes.
            tags.input_tags.two_d_array = all(t.input_tags.two_d_array for t in first_steps)
            tags.input_tags.three_d_array = all(
                t.input_tags.three_d_array for t in first_steps
            )
            tags.input_tags.positive_only = any(
                t.input_tags.positive_only for t in first_steps
            )
            tags.non_deterministic = any(t.non_deterministic for t in parts)
            tags.classifier_tags.poor_score = any(
                t.classifier_tags is not None and t.classifier_tags.poor_score
                for t in parts
            )
        return tags

    def _sk_visual_block_(self):
        from sklearn.utils._repr_html.estimator import _VisualBlock

        try:
            triples = _as_triples(self.estimators)
        except (TypeError, ValueError):
            return _VisualBlock("single", self, names=type(self).__name__)
        return _VisualBlock(
            "parallel",
            [_member_view(r, e) for _, r, e in triples],
            names=[n for n, _, _ in triples],
        )
