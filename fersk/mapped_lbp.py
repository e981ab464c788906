"""Mapped LBP (Levi & Hassner, ICMI 2015): LBP codes as points of a metric space.

LBP codes are unordered symbols: code 128 is not "close to" code 127.  Levi
and Hassner therefore define a distance between codes, embed all codes into
a low-dimensional Euclidean space with multidimensional scaling (MDS), and
replace each pixel's code by its point there.  With three dimensions the
result is an image a CNN can take like an RGB picture.
"""

import functools
import inspect
import numbers

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import pdist
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.manifold import MDS
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ._constraints import N_JOBS, ImageShape, store_parameters, without_bools
from ._image_files import to_gray
from ._validation import (
    ImageBatchOutputMixin,
    image_feature_names,
    restore_layout,
    validate_images,
)
from .lbp import local_binary_pattern_batch

__all__ = ["lbp_code_distances", "MDSMappedLBP"]

_MAX_P = 10  # 2**10 codes: about 0.5 M code pairs and an MDS of 1024 points
_POINTS = Interval(numbers.Integral, 1, _MAX_P, closed="both")
_UNMATCHED_COST = Interval(numbers.Real, 0, None, closed="neither")


def _cyclic_position_distance(P):
    i = np.arange(P)
    d = np.abs(i[:, None] - i[None, :])
    return np.minimum(d, P - d).astype(np.float64)


@functools.lru_cache(maxsize=8)
def _emd_matrix(P, unmatched_cost):
    ground = _cyclic_position_distance(P)
    bits = [np.flatnonzero((code >> np.arange(P)) & 1) for code in range(2**P)]
    D = np.zeros((2**P, 2**P))
    for a in range(2**P):
        for b in range(a + 1, 2**P):
            A, B = bits[a], bits[b]
            size = max(len(A), len(B))
            if size == 0:
                continue
            # Square assignment: real bits against real bits at their cyclic
            # distance; a bit left without partner is matched to a dummy.
            cost = np.full((size, size), unmatched_cost)
            cost[len(A) :, len(B) :] = 0.0
            cost[: len(A), : len(B)] = ground[np.ix_(A, B)]
            rows, cols = linear_sum_assignment(cost)
            D[a, b] = D[b, a] = cost[rows, cols].sum()
    D.setflags(write=False)
    return D


@validate_params(
    {
        "P": [_POINTS],
        "metric": [StrOptions({"emd", "hamming"})],
        "unmatched_cost": [_UNMATCHED_COST, None],
    },
    prefer_skip_nested_validation=True,
)
def lbp_code_distances(P=8, metric="emd", *, unmatched_cost=None):
    """Distances between all ``2**P`` default LBP codes.

    A code is read as the set of its 1-bits on a circle of ``P`` positions
    (bit i is the neighbour at angle ``2*pi*i/P``).

    * ``'emd'``: the Earth Mover's Distance of Levi & Hassner (ICMI 2015):
      the least total cost of moving the 1-bits of one code onto those of
      the other, moving a bit by k positions around the circle costing k.
      When the codes have different numbers of 1-bits, each bit left
      without a partner costs ``unmatched_cost`` (default ``P / 4``, so that
      deleting a bit and creating one elsewhere costs as much as the longest
      move, half-way round the circle).  Codes whose bits lie close together
      are therefore close.
    * ``'hamming'``: the number of differing bits.

    Parameters
    ----------
    P : int, default=8
        Number of neighbour points (bits per code), at most 10.
    metric : {'emd', 'hamming'}, default='emd'
        Which distance.
    unmatched_cost : float, default=None
        Cost of a 1-bit without partner in 'emd'; None means ``P / 4``.

    Returns
    -------
    D : ndarray of shape (2**P, 2**P)
        Symmetric, zero diagonal, read-only (cached).

    Examples
    --------
    >>> D = lbp_code_distances(8)
    >>> float(D[0b00000001, 0b00000010]), float(D[0b00000001, 0b00010000])
    (1.0, 4.0)
    >>> float(D[0b00000001, 0b00000000])
    2.0
    >>> float(lbp_code_distances(8, "hamming")[0b0011, 0b0101])
    2.0
    """
    if metric == "hamming":
        codes = np.arange(2**P)
        return np.bitwise_count(codes[:, None] ^ codes[None, :]).astype(np.float64)
    cost = P / 4 if unmatched_cost is None else float(unmatched_cost)
    return _emd_matrix(int(P), cost)


def _metric_mds(n_components, max_iter, random_state):
    """A metric MDS on precomputed dissimilarities, across sklearn versions."""
    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8
        return MDS(
            n_components=n_components,
            metric="precomputed",
            metric_mds=True,
            init="classical_mds",
            n_init=1,
            max_iter=max_iter,
            normalized_stress=True,
            random_state=random_state,
        )
    return MDS(
        n_components=n_components,
        dissimilarity="precomputed",
        metric=True,
        n_init=4,
        max_iter=max_iter,
        normalized_stress=False,
        random_state=random_state,
    )


class MDSMappedLBP(ImageBatchOutputMixin, TransformerMixin, BaseEstimator):
    """Mapped LBP images (Levi & Hassner, ICMI 2015).

    :meth:`fit` computes the distance between every pair of the ``2**P``
    LBP codes (:func:`lbp_code_distances`) and embeds the codes with metric
    multidimensional scaling (:class:`sklearn.manifold.MDS`) into
    ``n_components`` dimensions.  :meth:`transform` computes each image's
    LBP codes and replaces every pixel's code by its point: an
    ``(n, h, w, n_components)`` float32 image.

    Parameters
    ----------
    P : int, default=8
        Neighbour points per code (at most 10).
    R : float, default=1
        Radius of the neighbourhood.
    distance : {'emd', 'hamming'}, default='emd'
        Distance between codes (see :func:`lbp_code_distances`).
    n_components : int, default=3
        Dimensions of the embedding (3 gives an RGB-like image).
    interpolation : {'nearest', 'bilinear'}, default='nearest'
        Neighbour sampling.  'nearest' with ``P=8, R=1`` is the 3x3 operator
        the paper uses; its codes, and so the mapped image, are exactly
        invariant to any strictly increasing intensity map.
    padding : {'edge', 'constant'}, default='edge'
        What neighbours outside the image read ('edge' keeps the invariance
        at the border).
    unmatched_cost : float, default=None
        EMD cost of an unmatched 1-bit; None means ``P / 4``.
    max_iter : int, default=300
        Iterations of the MDS (SMACOF) solver.
    random_state : int, RandomState instance or None, default=None
        Seed of the MDS solver (with scikit-learn >= 1.8 the solver starts
        from classical MDS and is deterministic anyway).
    image_shape : tuple of int, default=None
        Shape of each row for flattened input.
    n_jobs : int, default=None
        Threads for the LBP computation.

    Attributes
    ----------
    n_features_in_ : int
        Values per input image.
    feature_names_in_ : ndarray of str
        Names of features seen in :meth:`fit`, when ``X`` is a DataFrame.
    image_shape_ : tuple of int
        Shape of one input image.
    code_distances_ : ndarray of shape (2**P, 2**P)
        Distances between codes (a function of ``P``, ``distance`` and
        ``unmatched_cost``: model folders do not store it, it is recomputed
        when one is loaded).
    embedding_ : ndarray of shape (2**P, n_components), float32
        The point of each code, scaled into [0, 1] (see Notes).
    stress_ : float
        Final stress of the MDS fit (normalised, Kruskal's stress-1, with
        scikit-learn >= 1.8).
    n_iter_ : int
        Iterations of the MDS solver's best run.
    distance_correlation_ : float
        Pearson correlation between code distances and the Euclidean
        distances of their points: how faithful the embedding is.
    distance_ : str
        The ``distance`` the embedding was fitted with.
    unmatched_cost_ : float or None
        The EMD cost of an unmatched 1-bit the embedding was fitted with
        (``P / 4`` when ``unmatched_cost`` is None); None for 'hamming'.

    Notes
    -----
    Scaling: the MDS coordinates are shifted so each axis starts at 0 and
    divided by one common factor, the largest axis range, so every value
    lies in [0, 1] and distances are preserved up to that single factor
    (per-axis min-max scaling would distort them).  The output is float32
    in [0, 1], what Keras image models expect.

    Changed settings: the embedding is a function of ``P``, ``distance``,
    ``unmatched_cost`` and ``n_components``, so :meth:`transform` refuses
    (ValueError) when ``set_params`` changed one of them since :meth:`fit`
    (an ``unmatched_cost`` that gives the same code distances, e.g. any
    value with 'hamming', is no change).  Call :meth:`fit` again.

    ``set_output(transform="pandas")`` (or ``sklearn.set_config(
    transform_output="pandas")``) gives a DataFrame for flattened rows,
    its columns :meth:`get_feature_names_out`; mapped images of an image
    batch stay ndarrays, which no DataFrame can hold.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk import MDSMappedLBP
    >>> X = np.random.RandomState(0).randint(0, 256, (4, 48, 48)).astype(np.uint8)
    >>> mapped = MDSMappedLBP(random_state=0).fit(X)
    >>> mapped.embedding_.shape
    (256, 3)
    >>> out = mapped.transform(X)
    >>> out.shape, out.dtype, bool(out.min() >= 0 and out.max() <= 1)
    ((4, 48, 48, 3), dtype('float32'), True)
    """

    _parameter_constraints = without_bools({
        "P": [_POINTS],
        "R": [Interval(numbers.Real, 0, None, closed="neither")],
        "distance": [StrOptions({"emd", "hamming"})],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "interpolation": [StrOptions({"bilinear", "nearest"})],
        "padding": [StrOptions({"constant", "edge"})],
        "unmatched_cost": [None, _UNMATCHED_COST],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "image_shape": [None, ImageShape()],
        "n_jobs": N_JOBS,
    })

    #: Fitted attributes a model folder (fersk.pretrained) stores.
    _saved_attributes = (
        "n_features_in_", "feature_names_in_", "image_shape_", "embedding_", "stress_",
        "n_iter_", "distance_correlation_", "distance_", "unmatched_cost_",
    )

    #: Fitted attributes that follow from the parameters: not stored in a
    #: model folder (fersk.pretrained), recomputed by _restore_derived().
    _derived_attributes = ("code_distances_",)

    def __init__(
        self,
        P=8,
        R=1,
        *,
        distance="emd",
        n_components=3,
        interpolation="nearest",
        padding="edge",
        unmatched_cost=None,
        max_iter=300,
        random_state=None,
        image_shape=None,
        n_jobs=None,
    ):
        store_parameters(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Embed the LBP codes and record the input image shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Training images (only their shape is used: the embedding depends
            on the codes, not on the data).
        y : None
            Ignored.

        Returns
        -------
        self : MDSMappedLBP
            Fitted transformer.
        """
        validate_images(self, X, reset=True, image_shape=self.image_shape)
        n_codes = 2**self.P
        if self.n_components >= n_codes:
            raise ValueError(
                f"n_components={self.n_components} must be smaller than the "
                f"{n_codes} codes of P={self.P}."
            )
        self._restore_derived()
        self.distance_, self.unmatched_cost_ = self._distance_settings()
        D = self.code_distances_
        mds = _metric_mds(self.n_components, self.max_iter, self.random_state)
        # One BLAS thread: SMACOF's result moves with the thread count (stress
        # 0.13705 with two threads, 0.13704 with one, for P=8), so without this
        # the same random_state gave different embeddings on machines (or Dask
        # workers) with other core counts.  Single-threaded is as fast here.
        with threadpool_limits(limits=1, user_api="blas"):
            points = mds.fit_transform(np.array(D))
        points = points - points.min(axis=0)
        scale = points.max()
        self.embedding_ = (points / (scale if scale > 0 else 1.0)).astype(np.float32)
        self.stress_ = float(mds.stress_)
        self.n_iter_ = int(mds.n_iter_)
        upper = np.triu_indices(n_codes, 1)
        # P=1: two codes, one distance, kept exactly (a correlation of one
        # pair is 0/0, NaN with NumPy's warnings).
        self.distance_correlation_ = 1.0 if n_codes < 3 else float(
            np.corrcoef(D[upper], pdist(self.embedding_.astype(np.float64)))[0, 1]
        )
        return self

    def _distance_settings(self):
        """``(distance, unmatched cost)`` that decide the code distances now."""
        if self.distance == "hamming":
            return "hamming", None
        cost = self.P / 4 if self.unmatched_cost is None else self.unmatched_cost
        return self.distance, float(cost)

    def _restore_derived(self):
        """Recompute ``code_distances_`` from the parameters (cached)."""
        self.code_distances_ = lbp_code_distances(
            self.P, self.distance, unmatched_cost=self.unmatched_cost
        )

    def transform(self, X):
        """Map every pixel's LBP code to its point of the embedding.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Images of the shape seen in :meth:`fit` (colour is converted to
            grey first).

        Returns
        -------
        mapped : ndarray of shape (n_samples, height, width, n_components) \
                or (n_samples, height * width * n_components), float32
            The mapped images, in the layout of ``X``.
        """
        check_is_fitted(self)
        # The embedding has a row per code of the fitted P and a column per
        # component: a P changed by set_params would index it without a word.
        # A changed distance or unmatched_cost would use the embedding of the
        # fitted one, also without a word.
        changed = [name for name, now, fitted in (
            ("P", 2**self.P, self.embedding_.shape[0]),
            ("n_components", self.n_components, self.embedding_.shape[1]),
        ) if now != fitted]
        # Models fitted before distance_ was recorded (model folders, pickles)
        # cannot tell: they keep transforming as they did.
        if hasattr(self, "distance_"):
            distance, cost = self._distance_settings()
            if distance != self.distance_:
                changed.append("distance")
            elif cost != self.unmatched_cost_ and "P" not in changed:
                # (None is P / 4: with another P it is that change)
                changed.append("unmatched_cost")
        if changed:
            raise ValueError(
                f"MDSMappedLBP: {', '.join(changed)} changed since fit; "
                "call fit again before transform."
            )
        images, flat = validate_images(
            self, X, reset=False, image_shape=self.image_shape
        )
        codes = local_binary_pattern_batch(
            to_gray(images),
            self.P,
            self.R,
            "default",
            interpolation=self.interpolation,
            padding=self.padding,
            n_jobs=self.n_jobs,
        )
        return restore_layout(self.embedding_[codes], flat)

    def get_feature_names_out(self, input_features=None):
        """Names of the mapped values when the output is flattened rows.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the names seen in :meth:`fit` when given.

        Returns
        -------
        feature_names_out : ndarray of str
            ``mapped_lbp{k}_row{i}_col{j}`` for embedding dimension ``k``,
            in the order of the flattened output.

        Examples
        --------
        >>> import numpy as np
        >>> from fersk import MDSMappedLBP
        >>> mapped = MDSMappedLBP(n_components=2).fit(np.zeros((2, 16)))
        >>> mapped.get_feature_names_out()[:3].tolist()
        ['mapped_lbp0_row0_col0', 'mapped_lbp1_row0_col0', 'mapped_lbp0_row0_col1']
        """
        check_is_fitted(self)
        h, w = self.image_shape_[:2]
        return image_feature_names(
            self, input_features, (h, w, self.embedding_.shape[1]), lambda k: f"mapped_lbp{k}"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
