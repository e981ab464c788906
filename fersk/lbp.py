"""Local binary patterns for whole batches of images.

:func:`local_binary_pattern_batch` gives the codes of
:func:`skimage.feature.local_binary_pattern`, identical (but for
scikit-image's int32 overflow at ``P=32``), for a whole batch at once (it is computed in the private ``fersk._lbp_codes``, vectorised
over cache-sized blocks of images).  :class:`LBPCodeTransformer` wraps it
as a scikit-learn transformer and :class:`LBPHistogram` pools codes into
the spatial histograms of the classic LBP face descriptors (Ahonen et al.
2006; Shan et al. 2009).
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._constraints import N_JOBS, ImageShape, IntPair, NumberSequence, store_parameters, without_bools
from ._lbp_codes import (
    _CODE_METHODS, _INTERPOLATION, _PADDING, _POINTS, _RADIUS, LBP_METHODS,
    local_binary_pattern_batch, n_lbp_codes,
)
from ._image_files import to_gray
from ._validation import (
    ImageBatchOutputMixin,
    image_feature_names,
    restore_layout,
    validate_images,
)

__all__ = [
    "local_binary_pattern_batch",
    "n_lbp_codes",
    "LBPCodeTransformer",
    "LBPHistogram",
]

# The batch functions are public here, where users know them (repr, Sphinx).
local_binary_pattern_batch.__module__ = n_lbp_codes.__module__ = __name__


def _as_pairs(P, R):
    """Normalise P and R (scalars or sequences) to a list of (P, R) pairs.

    Each value is checked by the estimators' ``_parameter_constraints``;
    whether the two sequences pair up is checked here.
    """
    P_list = [P] if isinstance(P, numbers.Integral) else list(P)
    R_list = [R] if isinstance(R, numbers.Real) else list(R)
    if len(R_list) == 1 and len(P_list) > 1:
        R_list = R_list * len(P_list)
    if len(P_list) != len(R_list) or not P_list:
        raise ValueError(
            f"P and R must be numbers or sequences of the same non-zero length; "
            f"got P={P!r} and R={R!r}."
        )
    return [(int(p), float(r)) for p, r in zip(P_list, R_list)]


def _refuse_changed_settings(estimator, changed, before="transform"):
    """Raise when settings were changed by ``set_params`` since ``fit``.

    ``transform`` combines parameters with what ``fit`` derived from them
    (code counts, cell grid, (P, R) pairs): a changed ``P`` would be ignored
    and a changed ``method`` would spill codes into the next cell's bins,
    either way without a word.  ``changed`` names the settings that differ;
    ``before`` the method that refuses (``get_feature_names_out`` names the
    columns of that output, so refuses the same).
    """
    if changed:
        raise ValueError(
            f"{type(estimator).__name__}: {', '.join(changed)} changed since fit; "
            f"call fit again before {before}."
        )


class LBPCodeTransformer(ImageBatchOutputMixin, TransformerMixin, BaseEstimator):
    """Local binary pattern code maps for batches of images.

    Each image becomes a map of LBP codes of the same height and width,
    computed by :func:`local_binary_pattern_batch` (identical to
    :func:`skimage.feature.local_binary_pattern` with the default
    ``interpolation`` and ``padding``; at P=32 fersk's unsigned codes are
    scikit-image's int32 codes modulo 2**32).  Several (P, R) pairs give one
    channel each.

    Parameters
    ----------
    P : int or sequence of int, default=8
        Number of circularly symmetric neighbour points (at most 32).
    R : float or sequence of float, default=1
        Radius of the circle; a sequence pairs with ``P`` (a single R is
        shared by every P).
    method : {'default', 'ror', 'uniform', 'nri_uniform', 'var'}, \
            default='default'
        The LBP variant, as in scikit-image (see
        :func:`local_binary_pattern_batch`).
    interpolation : {'bilinear', 'nearest'}, default='bilinear'
        How sample points between pixels are read.
    padding : {'constant', 'edge'}, default='constant'
        What points outside the image read.
    image_shape : tuple of int, default=None
        Shape ``(height, width[, channels])`` of each row when ``X`` comes as
        flattened rows; None means square grey images in ``fit``, and after
        it rows as long as the images ``fit`` saw are read in their shape.
        One entry may be -1.
    n_jobs : int, default=None
        Threads over blocks of images; None means 1, -1 all cores.

    Attributes
    ----------
    n_features_in_ : int
        Values per input image (pixels times channels).
    feature_names_in_ : ndarray of str
        Names of features seen in :meth:`fit`, when ``X`` is a DataFrame.
    image_shape_ : tuple of int
        Shape of one input image seen in :meth:`fit`.
    pairs_ : list of (int, float)
        The (P, R) pairs, one output channel each.
    n_codes_ : list of int or None
        Number of distinct codes per channel (None for 'var').

    See Also
    --------
    LBPHistogram : spatially pooled histograms of these codes.
    MDSMappedLBP : codes mapped to points of a metric space.

    Notes
    -----
    Input is a batch ``(n, h, w)`` of grey images, ``(n, h, w, c)`` colour
    images (converted to grey by :func:`fersk._image_files.to_gray`: RGB to
    luminance, alpha dropped, integer images kept integer), or flattened
    rows ``(n, h*w)``.  Output keeps the layout: ``(n, h, w)`` code maps
    (``(n, h, w, k)`` for k pairs), or flattened rows for flattened input.
    Codes use the smallest unsigned dtype that holds them; 'var' is float64
    with NaN where all neighbours are equal (as in scikit-image).  As in
    scikit-image, integer images are recommended.

    ``set_output(transform="pandas")`` (or ``sklearn.set_config(
    transform_output="pandas")``) gives a DataFrame for flattened rows,
    its columns :meth:`get_feature_names_out`; code maps of an image batch
    stay ndarrays, which no DataFrame can hold.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk import LBPCodeTransformer
    >>> X = np.random.RandomState(0).randint(0, 256, (10, 48, 48)).astype(np.uint8)
    >>> codes = LBPCodeTransformer(P=8, R=1, method="uniform").fit_transform(X)
    >>> codes.shape, int(codes.max()) <= 9
    ((10, 48, 48), True)
    >>> LBPCodeTransformer(P=[8, 16], R=[1, 2]).fit_transform(X).shape
    (10, 48, 48, 2)
    """

    _parameter_constraints = without_bools({
        "P": [_POINTS, NumberSequence(_POINTS)],
        "R": [_RADIUS, NumberSequence(_RADIUS)],
        "method": [StrOptions(set(LBP_METHODS))],
        "interpolation": _INTERPOLATION,
        "padding": _PADDING,
        "image_shape": [None, ImageShape()],
        "n_jobs": N_JOBS,
    })

    #: Fitted attributes a model folder (fersk.pretrained) stores.
    _saved_attributes = (
        "n_features_in_", "feature_names_in_", "image_shape_", "pairs_", "n_codes_",
    )

    def __init__(
        self,
        P=8,
        R=1,
        method="default",
        *,
        interpolation="bilinear",
        padding="constant",
        image_shape=None,
        n_jobs=None,
    ):
        store_parameters(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate parameters and record the input image shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Training images.
        y : None
            Ignored.

        Returns
        -------
        self : LBPCodeTransformer
            Fitted transformer.
        """
        self.pairs_ = _as_pairs(self.P, self.R)
        validate_images(self, X, reset=True, image_shape=self.image_shape)
        self.n_codes_ = [
            None if self.method == "var" else n_lbp_codes(p, self.method)
            for p, _ in self.pairs_
        ]
        return self

    def transform(self, X):
        """Compute the LBP code maps of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Images of the shape seen in :meth:`fit`.

        Returns
        -------
        codes : ndarray of shape (n_samples, height, width[, n_pairs]) or \
                (n_samples, height * width * n_pairs)
            Code maps, in the layout of ``X``.
        """
        check_is_fitted(self)
        _refuse_changed_settings(self, self._changed_settings())
        images, flat = validate_images(
            self, X, reset=False, image_shape=self.image_shape
        )
        return restore_layout(self._codes(to_gray(images)), flat)

    def _changed_settings(self):
        changed = []
        if _as_pairs(self.P, self.R) != [(int(p), float(r)) for p, r in self.pairs_]:
            changed.append("P/R")
        n_codes = [None if self.method == "var" else n_lbp_codes(p, self.method)
                   for p, _ in self.pairs_]
        if n_codes != list(self.n_codes_):
            changed.append("method")
        return changed

    def _codes(self, gray):
        maps = [
            local_binary_pattern_batch(
                gray,
                p,
                r,
                self.method,
                interpolation=self.interpolation,
                padding=self.padding,
                n_jobs=self.n_jobs,
            )
            for p, r in self.pairs_
        ]
        return maps[0] if len(maps) == 1 else np.stack(maps, axis=-1)

    def get_feature_names_out(self, input_features=None):
        """Names of the code values when the output is flattened rows.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the names seen in :meth:`fit` when given.

        Returns
        -------
        feature_names_out : ndarray of str
            ``lbp_p{P}_r{R}_row{i}_col{j}``, in the order of the flattened
            output (pixel by pixel, then (P, R) pair).

        Examples
        --------
        >>> import numpy as np
        >>> from fersk import LBPCodeTransformer
        >>> lbp = LBPCodeTransformer(P=8, R=1).fit(np.zeros((2, 16)))
        >>> lbp.get_feature_names_out()[:2].tolist()
        ['lbp_p8_r1_row0_col0', 'lbp_p8_r1_row0_col1']
        """
        check_is_fitted(self)
        h, w = self.image_shape_[:2]
        shape = (h, w) if len(self.pairs_) == 1 else (h, w, len(self.pairs_))

        def name(k):
            p, r = self.pairs_[k or 0]
            return f"lbp_p{p}_r{r:g}".replace(".", "_")

        return image_feature_names(self, input_features, shape, name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = []
        return tags



# Histogram features an image above which fit refuses (128 MiB of float64).
_MAX_HISTOGRAM_FEATURES = 2**24


class LBPHistogram(TransformerMixin, BaseEstimator):
    """Spatially pooled LBP histograms: the classic LBP face descriptor.

    Images are divided into a ``grid`` of cells; in each cell the LBP codes
    (computed as by :class:`LBPCodeTransformer`) are counted, and the cell
    histograms are concatenated, as in Ahonen, Hadid & Pietikainen (2006)
    and, for expressions, Shan, Gong & McOwan (2009).  The default
    'nri_uniform' codes with P=8 are their "u2" patterns (59 bins).
    ``make_pipeline(LBPHistogram(), LinearSVC())`` is the classic baseline.

    Parameters
    ----------
    P : int or sequence of int, default=8
        Number of neighbour points; a sequence gives one histogram set per
        (P, R) pair.
    R : float or sequence of float, default=1
        Radius (paired with ``P``).
    method : {'default', 'ror', 'uniform', 'nri_uniform'}, \
            default='nri_uniform'
        LBP variant ('var' has no finite code set and is refused).
    grid : tuple of (int, int), default=(6, 6)
        Cells along height and width.  Cell borders are spread evenly, so a
        size that the grid does not divide gives cells differing by a pixel.
    normalize : bool, default=True
        Whether each cell histogram is divided by the cell's pixel count
        (fractions, comparable across image sizes).
    interpolation : {'bilinear', 'nearest'}, default='bilinear'
        Sampling of the neighbours.
    image_shape : tuple of int, default=None
        Shape of each row for flattened input (see
        :class:`LBPCodeTransformer`).
    n_jobs : int, default=None
        Threads for the code computation.

    Attributes
    ----------
    n_features_in_ : int
        Values per input image.
    feature_names_in_ : ndarray of str
        Names of features seen in :meth:`fit`, when ``X`` is a DataFrame.
    image_shape_ : tuple of int
        Shape of one input image.
    pairs_ : list of (int, float)
        The (P, R) pairs.
    n_codes_ : list of int
        Bins per cell histogram, per pair.
    n_features_out_ : int
        Length of the descriptor.
    grid_ : tuple of (int, int)
        The cell grid of fit (a grid set since is refused at transform).

    See Also
    --------
    LBPCodeTransformer : the code maps themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.svm import LinearSVC
    >>> from fersk import LBPHistogram
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randint(0, 256, (20, 48, 48)).astype(np.uint8)
    >>> y = np.arange(20) % 2
    >>> hist = LBPHistogram(grid=(4, 4)).fit(X)
    >>> hist.transform(X).shape
    (20, 944)
    >>> str(hist.get_feature_names_out()[0])
    'lbp_p8_r1_cell0_0_code0'
    >>> model = make_pipeline(LBPHistogram(), LinearSVC()).fit(X, y)
    """

    _parameter_constraints = without_bools({
        "P": [_POINTS, NumberSequence(_POINTS)],
        "R": [_RADIUS, NumberSequence(_RADIUS)],
        "method": [StrOptions(set(_CODE_METHODS))],
        "grid": [IntPair("(rows, columns) of cells")],
        "normalize": ["boolean"],
        "interpolation": _INTERPOLATION,
        "image_shape": [None, ImageShape()],
        "n_jobs": N_JOBS,
    })

    #: Fitted attributes a model folder (fersk.pretrained) stores.
    _saved_attributes = (
        "n_features_in_", "feature_names_in_", "image_shape_", "pairs_", "n_codes_",
        "n_features_out_", "grid_",
    )

    def __init__(
        self,
        P=8,
        R=1,
        method="nri_uniform",
        *,
        grid=(6, 6),
        normalize=True,
        interpolation="bilinear",
        image_shape=None,
        n_jobs=None,
    ):
        store_parameters(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate parameters and record the input image shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Training images.
        y : None
            Ignored.

        Returns
        -------
        self : LBPHistogram
            Fitted transformer.
        """
        grid = tuple(self.grid)
        self.pairs_ = _as_pairs(self.P, self.R)
        images, _ = validate_images(self, X, reset=True, image_shape=self.image_shape)
        h, w = images.shape[1:3]
        if grid[0] > h or grid[1] > w:
            raise ValueError(
                f"grid={grid} has more cells than the {h}x{w} images have pixels."
            )
        n_codes = [n_lbp_codes(p, self.method) for p, _ in self.pairs_]
        n_features_out = grid[0] * grid[1] * sum(n_codes)
        if n_features_out > _MAX_HISTOGRAM_FEATURES:
            # 'default' and 'ror' have 2**P codes: P=24 on a 6x6 grid is 600
            # million float64 features an image, which transform would try to
            # allocate (gigabytes) before failing.
            raise ValueError(
                f"P={self.P!r} with method={self.method!r} and grid={grid} gives "
                f"{n_features_out:,} features an image (more than "
                f"{_MAX_HISTOGRAM_FEATURES:,}); use method='uniform' or "
                "'nri_uniform' (P + 2 or P * (P - 1) + 3 codes), a smaller P "
                "or fewer cells."
            )
        self.n_codes_ = n_codes
        self.n_features_out_ = n_features_out
        self.grid_ = (int(grid[0]), int(grid[1]))
        return self

    def transform(self, X):
        """Compute the pooled LBP histograms of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or \
                (n_samples, n_features)
            Images of the shape seen in :meth:`fit`.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_)
            Concatenated cell histograms (float64), pair by pair, cell by
            cell in row-major order, code by code.
        """
        check_is_fitted(self)
        _refuse_changed_settings(self, self._changed_settings())
        images, _ = validate_images(self, X, reset=False, image_shape=self.image_shape)
        gray = to_gray(images)
        n, h, w = gray.shape
        gh, gw = self.grid
        # Cell index of every pixel: rows and columns spread evenly over cells.
        cell = ((np.arange(h) * gh) // h)[:, None] * gw + (np.arange(w) * gw) // w
        n_cells = gh * gw
        cell_sizes = np.bincount(cell.ravel(), minlength=n_cells)
        blocks = []
        for (p, r), n_codes in zip(self.pairs_, self.n_codes_):
            codes = local_binary_pattern_batch(
                gray,
                p,
                r,
                self.method,
                interpolation=self.interpolation,
                n_jobs=self.n_jobs,
            )
            # One bincount for the whole batch: bin = (image, cell, code).
            bins = (np.arange(n)[:, None, None] * n_cells + cell) * n_codes + codes
            counts = np.bincount(bins.ravel(), minlength=n * n_cells * n_codes)
            hist = counts.reshape(n, n_cells, n_codes).astype(np.float64)
            if self.normalize:
                hist /= cell_sizes[None, :, None]
            blocks.append(hist.reshape(n, -1))
        return np.hstack(blocks)

    def _changed_settings(self):
        changed = []
        if _as_pairs(self.P, self.R) != [(int(p), float(r)) for p, r in self.pairs_]:
            changed.append("P/R")
        if [n_lbp_codes(p, self.method) for p, _ in self.pairs_] != list(self.n_codes_):
            changed.append("method")
        gh, gw = self.grid
        # grid_ (folders saved before it: the cell count) -- (2, 3) then
        # (3, 2) gave features of the same length in another layout.
        fitted = getattr(self, "grid_", None)
        if (tuple(fitted) != (gh, gw) if fitted is not None
                else gh * gw * sum(self.n_codes_) != self.n_features_out_):
            changed.append("grid")
        return changed

    def get_feature_names_out(self, input_features=None):
        """Names of the histogram bins.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored (bins do not map to input features); validated against
            ``feature_names_in_`` when given.

        Returns
        -------
        feature_names_out : ndarray of str
            ``lbp_p{P}_r{R}_cell{row}_{col}_code{k}`` for every bin, in the
            order of :meth:`transform`'s columns.

        Raises
        ------
        ValueError
            When ``P``, ``R``, ``method`` or ``grid`` changed (``set_params``)
            since :meth:`fit`, as :meth:`transform` does: the names would not
            be those of the fitted columns.

        Examples
        --------
        >>> import numpy as np
        >>> from fersk import LBPHistogram
        >>> hist = LBPHistogram(method="uniform", grid=(2, 2)).fit(np.zeros((2, 8, 8)))
        >>> names = hist.get_feature_names_out()
        >>> len(names) == hist.n_features_out_, str(names[10])
        (True, 'lbp_p8_r1_cell0_1_code0')
        """
        check_is_fitted(self)
        _refuse_changed_settings(self, self._changed_settings(), "get_feature_names_out")
        if hasattr(self, "n_features_in_"):
            _check_feature_names_in(self, input_features)
        gh, gw = self.grid
        names = []
        for (p, r), n_codes in zip(self.pairs_, self.n_codes_):
            r_name = f"{r:g}".replace(".", "_")
            for i in range(gh):
                for j in range(gw):
                    names.extend(
                        f"lbp_p{p}_r{r_name}_cell{i}_{j}_code{k}" for k in range(n_codes)
                    )
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

