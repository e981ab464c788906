"""Metrics of dimensional (arousal/valence) expression recognition.

* :func:`concordance_correlation_coefficient` - Lin's concordance
  correlation coefficient (CCC), the metric of the arousal/valence
  benchmarks (AffectNet, AFEW-VA, the OMG and Aff-Wild challenges,
  FaceChannel's paper);
* :func:`ccc_scorer` - the same as a scikit-learn scorer, for
  ``GridSearchCV(..., scoring=ccc_scorer)`` and ``cross_validate``.

Unlike Pearson's correlation, the CCC also penalises a shift or a scale
error of the predictions: it is 1 only when they equal the targets, and
``R^2`` (what a regressor's ``score`` returns) and the CCC rank models
differently when a model is well correlated but biased.
"""

import numpy as np
from sklearn.utils._param_validation import HasMethods, StrOptions, validate_params
from sklearn.utils.validation import _check_sample_weight, check_array, check_consistent_length

__all__ = ["concordance_correlation_coefficient", "ccc_scorer"]


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "sample_weight": ["array-like", None],
        "multioutput": [StrOptions({"raw_values", "uniform_average"})],
    },
    prefer_skip_nested_validation=True,
)
def concordance_correlation_coefficient(
    y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"
):
    """Lin's concordance correlation coefficient of targets and predictions.

    ``ccc = 2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))^2)``
    (Lin, "A Concordance Correlation Coefficient to Evaluate
    Reproducibility", Biometrics 45, 1989), with population (biased)
    moments, per output.  It lies in [-1, 1]: 1 for predictions equal to
    the targets, 0 for uncorrelated ones, -1 for a perfect mirror image
    about the common mean.  When targets and predictions are both constant
    and equal it is 1; when only one of them is constant, or both are
    constant but different, it is 0.  These cases hold exactly (constant
    meaning all values equal, among the samples of non-zero weight), not
    up to the rounding of the moments.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets, e.g. arousal and valence in [-1, 1].
    y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictions.
    sample_weight : array-like of shape (n_samples,) or None, default=None
        Weights of the samples in the moments (only their ratios matter);
        samples of weight 0 take no part.
    multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
        Average the outputs' coefficients, or return one per output.

    Returns
    -------
    ccc : float or ndarray of shape (n_outputs,)
        The coefficient (averaged over the outputs), or one per output.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.metrics import concordance_correlation_coefficient
    >>> t = np.array([-0.5, 0.0, 0.5, 1.0])
    >>> float(concordance_correlation_coefficient(t, t))
    1.0
    >>> round(float(concordance_correlation_coefficient(t, t + 0.5)), 4)  # shifted
    0.7143
    >>> concordance_correlation_coefficient(np.c_[t, -t], np.c_[t, t],
    ...                                     multioutput="raw_values").round(4)
    array([ 1.    , -0.7143])
    """
    t = check_array(y_true, ensure_2d=False, dtype=np.float64, input_name="y_true")
    p = check_array(y_pred, ensure_2d=False, dtype=np.float64, input_name="y_pred")
    check_consistent_length(t, p)
    t = t.reshape(len(t), -1)
    p = p.reshape(len(p), -1)
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred have different numbers of outputs: {t.shape[1]} and "
            f"{p.shape[1]}."
        )
    if len(t) == 0:
        raise ValueError("concordance_correlation_coefficient needs at least one sample.")
    if sample_weight is None:
        w = np.full(len(t), 1.0 / len(t))
    else:
        # 1-D, one per sample (a column of weights broadcast to a wrong answer)
        w = _check_sample_weight(sample_weight, t, dtype=np.float64)
        if np.any(w < 0) or not np.any(w > 0):
            raise ValueError("sample_weight must be non-negative with a positive sum.")
        # Scaled by the largest first: huge finite weights summed to inf
        # (and all weights became 0).
        w = w / w.max()
        w = w / w.sum()
    # Samples of zero weight take no part (not even in "constant").
    kept = w > 0
    w, t, p = w[kept, np.newaxis], t[kept], p[kept]
    # A common power of two (exact) keeps the squares from overflowing or
    # underflowing; moments are then taken about a value of each column
    # (exact zeros for a constant column, no cancellation for nearly
    # constant ones), which the coefficient does not depend on.
    scale = np.maximum(np.abs(t).max(axis=0), np.abs(p).max(axis=0))
    # 2**(e - 1), not 2**e: the largest finite doubles have e = 1024, and 2**1024
    # is inf (every value scaled to 0, every column "constant").
    scale = np.ldexp(1.0, np.frexp(np.where(scale > 0, scale, 1.0))[1] - 1)
    t, p = t / scale, p / scale
    ref_t, ref_p = t[0], p[0]
    t, p = t - ref_t, p - ref_p
    mean_t, mean_p = (w * t).sum(axis=0), (w * p).sum(axis=0)
    dt, dp = t - mean_t, p - mean_p
    # The same products in the same order: predictions equal to the targets
    # give cov == var_t == var_p bit for bit, so exactly 1 (not 1 + 2e-16).
    var_t, var_p = (w * dt * dt).sum(axis=0), (w * dp * dp).sum(axis=0)
    cov = (w * dt * dp).sum(axis=0)
    denominator = var_t + var_p + ((ref_t - ref_p) + (mean_t - mean_p)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ccc = np.where(denominator > 0, 2 * cov / np.where(denominator > 0, denominator, 1), 1.0)
    ccc = np.clip(ccc, -1.0, 1.0)  # rounding may step past Cauchy-Schwarz
    # The constant cases exactly (as documented), whatever the rounding:
    # both constant, 1 when equal, else 0; only one constant, 0.
    const_t, const_p = np.all(t == 0, axis=0), np.all(p == 0, axis=0)
    ccc = np.where(const_t & const_p, (ref_t == ref_p).astype(np.float64),
                   np.where(const_t | const_p, 0.0, ccc))
    if multioutput == "raw_values":
        return ccc
    return float(np.mean(ccc))


@validate_params(
    {
        "estimator": [HasMethods(["predict"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "sample_weight": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def ccc_scorer(estimator, X, y, sample_weight=None):
    """Scorer of the concordance correlation coefficient (greater is better).

    A scikit-learn scorer callable, ``scorer(estimator, X, y)``: the
    :func:`concordance_correlation_coefficient` of ``y`` and
    ``estimator.predict(X)``, averaged over the outputs (arousal and
    valence).  Give it as ``scoring=ccc_scorer`` to ``GridSearchCV``,
    ``cross_validate`` or ``cross_val_score``, or in a dict of several
    metrics, e.g. ``scoring={"ccc": ccc_scorer, "r2": "r2"}``.

    Parameters
    ----------
    estimator : fitted estimator
        Has a ``predict`` method (e.g. :class:`~fersk.CNNRegressor`).
    X : array-like
        Inputs of ``estimator.predict``.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    sample_weight : array-like of shape (n_samples,) or None, default=None
        Sample weights of the coefficient.

    Returns
    -------
    score : float
        The mean CCC over the outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from fersk.metrics import ccc_scorer
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> y = np.c_[0.1 * X[:, 0] - 0.5, -0.1 * X[:, 0]]
    >>> round(ccc_scorer(LinearRegression().fit(X, y), X, y), 6)
    1.0
    """
    return concordance_correlation_coefficient(
        y, estimator.predict(X), sample_weight=sample_weight
    )
