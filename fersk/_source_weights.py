"""Per-sample weights from each sample's source (domain).

One rule shared by :func:`fersk.datasets.source_sample_weight` (public
there, beside the loaders whose ``source`` it reads) and the estimators'
``source_weight`` parameter; kept below both so that the estimators need
not import the data loaders.
"""

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params


def _check_source_weights(weights, name):
    """Each value of the dict ``weights`` a finite number >= 0 (not a bool),
    else a ValueError naming ``name[key]``: the rule of
    :func:`source_sample_weight` and of the estimators' ``source_weight``."""
    for key, value in weights.items():
        # NaN fails ``>= 0``; inf passed it and gave inf weights (NaN losses).
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number))
                or not 0 <= value < np.inf):
            raise ValueError(f"{name}[{key!r}] must be a finite number >= 0; got {value!r}.")


@validate_params(
    {"source": ["array-like"], "weights": [StrOptions({"balanced"}), dict]},
    prefer_skip_nested_validation=True,
)
def source_sample_weight(source, weights="balanced"):
    """Per-sample weights from each sample's source (domain).

    The ``sample_weight`` of a multi-domain fit
    (:meth:`fersk.CNNClassifier.fit`): a small source (859 film frames) can
    count as much as a large one (28,555 FER-2013 faces), or any share.

    Parameters
    ----------
    source : array-like of shape (n_samples,)
        Each sample's source, e.g. ``load_in_the_wild(...).source``.
    weights : "balanced" or dict, default="balanced"
        "balanced": every source has the same total weight (each sample
        ``n_samples / (n_sources * n_in_its_source)``, as scikit-learn's
        ``class_weight="balanced"`` does for classes).  A dict: the weight
        of each sample of a source, a finite number >= 0 (sources not in
        it: 1.0; a key that is not a source is a ValueError).

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from fersk.datasets import source_sample_weight
    >>> source_sample_weight(["fer2013"] * 3 + ["sfew"])
    array([0.66666667, 0.66666667, 0.66666667, 2.        ])
    >>> source_sample_weight(["fer2013", "sfew"], {"sfew": 4.0})
    array([1., 4.])
    """
    source = np.asarray(source)
    if source.ndim != 1 or len(source) == 0:
        raise ValueError(f"source must be a non-empty 1-D array; got shape {source.shape}.")
    names, inverse, counts = np.unique(source, return_inverse=True, return_counts=True)
    if isinstance(weights, str):  # "balanced"
        return len(source) / (len(names) * counts[inverse])
    unknown = sorted(set(weights) - set(names.tolist()))
    if unknown:
        raise ValueError(f"weights has sources that are not in source: {unknown}; sources "
                         f"are {names.tolist()}.")
    _check_source_weights(weights, "weights")
    per_source = np.array([float(weights.get(n, 1.0)) for n in names.tolist()])
    return per_source[inverse]
