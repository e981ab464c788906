"""Local binary patterns for whole batches of images.

:func:`local_binary_pattern_batch` computes exactly what
:func:`skimage.feature.local_binary_pattern` computes, image by image, but
for a whole batch at once: the circular neighbourhood is sampled with the
same bilinear interpolation, in the same floating-point operations, so the
codes are identical, while the work is done by a few vectorised operations
per neighbour on cache-sized blocks of images instead of a Python call per
image.  :class:`LBPCodeTransformer` wraps it as a scikit-learn transformer
and :class:`LBPHistogram` pools codes into the spatial histograms of the
classic LBP face descriptors (Ahonen et al. 2006; Shan et al. 2009).
"""

import functools
import math
import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._constraints import ImageShape, IntPair, NumberSequence, store_parameters
from ._image_files import n_workers
from ._validation import image_feature_names, restore_layout, to_gray, validate_images

__all__ = [
    "local_binary_pattern_batch",
    "n_lbp_codes",
    "LBPCodeTransformer",
    "LBPHistogram",
]

LBP_METHODS = ("default", "ror", "uniform", "nri_uniform", "var")

# Images per block: small enough that the block's float64 planes stay in
# the CPU cache while the P neighbours are processed.
_BLOCK_PIXELS = 1 << 16

#: The parameters shared by the functions and estimators, each with what
#: it allows (one rule for all).
_POINTS = Interval(numbers.Integral, 1, 32, closed="both")
_RADIUS = Interval(numbers.Real, 0, None, closed="neither")
_CODE_METHODS = ("default", "ror", "uniform", "nri_uniform")
_INTERPOLATION = [StrOptions({"bilinear", "nearest"})]
_PADDING = [StrOptions({"constant", "edge"})]


@validate_params(
    {
        "P": [Interval(numbers.Integral, 1, None, closed="left")],
        # 'var' gives real values, not codes.
        "method": [StrOptions(set(_CODE_METHODS))],
    },
    prefer_skip_nested_validation=True,
)
def n_lbp_codes(P, method):
    """Number of distinct codes an LBP ``method`` with ``P`` points produces.

    Codes run from 0 to ``n_lbp_codes(P, method) - 1``.

    Parameters
    ----------
    P : int
        Number of circularly symmetric neighbour points.
    method : {'default', 'ror', 'uniform', 'nri_uniform'}
        LBP method ('var' gives real values, not codes).

    Returns
    -------
    n_codes : int

    Examples
    --------
    >>> n_lbp_codes(8, "default"), n_lbp_codes(8, "uniform"), n_lbp_codes(8, "nri_uniform")
    (256, 10, 59)
    """
    if method in ("default", "ror"):
        return 2**P
    if method == "uniform":
        return P + 2
    return P * (P - 1) + 3  # "nri_uniform"


def _sample_offsets(P, R):
    """Row and column offsets of the P sample points, as scikit-image has them."""
    # scikit-image receives R as a C float: use the same single-precision value.
    R = float(np.float32(R))
    angles = 2 * np.pi * np.arange(P, dtype=np.double) / P
    rp = np.round(-R * np.sin(angles), 5)
    cp = np.round(R * np.cos(angles), 5)
    return rp, cp


def _code_dtype(P, method):
    if method == "var":
        return np.float64
    top = n_lbp_codes(P, method) - 1
    return np.min_scalar_type(top) if top > 0 else np.uint8


def _round_away(x):
    return int(math.floor(x + 0.5)) if x > 0 else int(math.ceil(x - 0.5))


def _popcount(a):
    return np.bitwise_count(a).astype(np.int64)


def _lbp_block(block, P, rp, cp, method, interpolation="bilinear", padding="constant"):
    """LBP of a (k, h, w) float64 block; mirrors skimage's per-pixel loop."""
    k, h, w = block.shape
    pad = int(math.ceil(max(np.abs(rp).max(), np.abs(cp).max()))) + 1
    if padding == "edge":
        padded = np.pad(block, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    else:
        padded = np.zeros((k, h + 2 * pad, w + 2 * pad), dtype=np.float64)
        padded[:, pad : pad + h, pad : pad + w] = block
    center = block
    rows = np.arange(h, dtype=np.float64)
    cols = np.arange(w, dtype=np.float64)
    code_dtype = np.min_scalar_type((1 << P) - 1)
    codes = np.zeros((k, h, w), dtype=code_dtype)
    shifted = np.empty((k, h, w), dtype=code_dtype)
    top, tmp = (np.empty((k, h, w), dtype=np.float64) for _ in range(2))
    hbuf = np.empty(k * (h + 2 * pad) * w, dtype=np.float64)
    bit = np.empty((k, h, w), dtype=bool)
    textures = [None] * P

    # Neighbours with the same column offset (i and P - i: cosine is even)
    # interpolate each row identically, so the horizontal pass is done once
    # per column offset over all padded rows and shared as row-shifted views.
    # Bit-identical to skimage: the same products, sums and rounding.
    groups = {}
    for i in range(P):
        groups.setdefault(cp[i], []).append(i)
    rows_all = slice(None)
    for c_off, members in groups.items():
        fc, cc = math.floor(c_off), math.ceil(c_off)
        if interpolation == "nearest":
            fc = cc = _round_away(c_off)
        c_pos = cols + c_off
        dc = c_pos - np.floor(c_pos)
        left = padded[:, rows_all, pad + fc : pad + fc + w]
        if fc == cc:
            # A zero fraction reduces the formula exactly to the pixel itself.
            horizontal = left
        else:
            right = padded[:, rows_all, pad + cc : pad + cc + w]
            horizontal = np.multiply(left, 1 - dc)
            horizontal += np.multiply(right, dc, out=hbuf[: horizontal.size].reshape(horizontal.shape))
        for i in members:
            r_pos = rows + rp[i]
            fr, cr = math.floor(rp[i]), math.ceil(rp[i])
            if interpolation == "nearest":
                fr = cr = _round_away(rp[i])
            top_v = horizontal[:, pad + fr : pad + fr + h]
            if fr == cr:
                texture = top_v
            else:
                dr = (r_pos - np.floor(r_pos))[:, None]
                bottom_v = horizontal[:, pad + cr : pad + cr + h]
                np.multiply(bottom_v, dr, out=tmp)
                texture = np.multiply(top_v, 1 - dr, out=top)
                np.add(texture, tmp, out=texture)
            if method == "var":
                textures[i] = texture.copy()  # summed in skimage's order below
                continue
            # skimage tests texture - center >= 0, which for finite values is
            # exactly texture >= center.
            np.greater_equal(texture, center, out=bit)
            np.left_shift(bit, i, out=shifted, dtype=code_dtype, casting="unsafe")
            np.bitwise_or(codes, shifted, out=codes)

    if method == "var":
        # skimage's running sums, in its order: sum(t) and sum(t * t).
        sum_ = np.zeros((k, h, w), dtype=np.float64)
        sum_sq = np.zeros((k, h, w), dtype=np.float64)
        for texture in textures:
            sum_ += texture
            np.multiply(texture, texture, out=tmp)
            sum_sq += tmp
        var = (sum_sq - (sum_ * sum_) / P) / P
        var[var == 0] = np.nan
        return var
    if method == "default":
        return codes
    if P <= 16:
        return _code_table(P, method)[codes]
    return _map_codes(codes.astype(np.int64), P, method)


@functools.lru_cache(maxsize=None)
def _code_table(P, method):
    """Lookup table default code -> ``method`` code, for P <= 16."""
    table = _map_codes(np.arange(2**P, dtype=np.int64), P, method)
    return table.astype(_code_dtype(P, method))


def _map_codes(codes, P, method):
    """Map default P-bit codes to 'ror', 'uniform' or 'nri_uniform' codes."""
    if method == "ror":
        best = codes.copy()
        rot = codes
        for _ in range(1, P):
            rot = (rot >> 1) | ((rot & 1) << (P - 1))
            np.minimum(best, rot, out=best)
        return best
    n_ones = _popcount(codes)
    # skimage counts 0/1 changes along the open chain b0..b(P-1) (not circular).
    changes = _popcount((codes ^ (codes >> 1)) & ((1 << (P - 1)) - 1))
    uniform = changes <= 2
    if method == "uniform":
        return np.where(uniform, n_ones, P + 1)
    # nri_uniform: index uniform patterns by (n_ones, rotation), as skimage.
    lowest_one = _popcount((codes & -codes) - 1)
    inverted = ~codes & ((1 << P) - 1)
    lowest_zero = _popcount((inverted & -inverted) - 1)
    rot_index = np.where(lowest_one == 0, n_ones - lowest_zero, P - lowest_one)
    out = 1 + (n_ones - 1) * P + rot_index
    out = np.where(n_ones == P, P * (P - 1) + 1, out)
    out = np.where(n_ones == 0, 0, out)
    return np.where(uniform, out, P * (P - 1) + 2)


@validate_params(
    {
        "images": ["array-like"],
        "P": [_POINTS],
        "R": [_RADIUS],
        "method": [StrOptions(set(LBP_METHODS))],
        "interpolation": _INTERPOLATION,
        "padding": _PADDING,
        "n_jobs": [None, numbers.Integral],
    },
    prefer_skip_nested_validation=True,
)
def local_binary_pattern_batch(
    images,
    P,
    R,
    method="default",
    *,
    interpolation="bilinear",
    padding="constant",
    n_jobs=None,
):
    """Local binary patterns of a batch of grey images.

    Gives, for every image, exactly the values of
    :func:`skimage.feature.local_binary_pattern` (same sample points, same
    bilinear interpolation in float64, same zero padding outside the image,
    same code definitions), computed for the whole batch with vectorised
    operations on cache-sized blocks.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        Grey images of any real dtype.  As in scikit-image, integer images
        are recommended: with floats, tiny differences between neighbours
        decide bits.
    P : int
        Number of circularly symmetric neighbour points (at most 32).
    R : float
        Radius of the circle.
    method : {'default', 'ror', 'uniform', 'nri_uniform', 'var'}, \
            default='default'
        As in scikit-image: 'default' the P-bit code; 'ror' its
        rotation-invariant (minimum over rotations) form; 'uniform' the
        rotation-invariant uniform code (0..P for uniform patterns, P+1 for
        the rest); 'nri_uniform' the non rotation-invariant uniform code
        (P*(P-1)+3 codes); 'var' the variance of the sampled neighbours.
    interpolation : {'bilinear', 'nearest'}, default='bilinear'
        How sample points between pixels are read.  'bilinear' is
        scikit-image's (and gives its codes exactly).  'nearest' takes the
        nearest pixel, which for ``P=8, R=1`` is the original 3x3 operator of
        Ojala et al.; its codes depend only on the order of grey values, so
        they are invariant to any strictly increasing intensity map (with
        ``padding='edge'``, exactly so at the border too).
    padding : {'constant', 'edge'}, default='constant'
        What points outside the image read: 0 (scikit-image's choice) or
        the nearest border pixel.
    n_jobs : int, default=None
        Threads over blocks of images (NumPy releases the GIL); None means 1,
        -1 all cores.

    Returns
    -------
    codes : ndarray of shape (n_images, height, width)
        Codes in the smallest unsigned dtype that holds them
        (see :func:`n_lbp_codes`), or float64 for ``method='var'`` (NaN
        where the neighbours are all equal, as in scikit-image).

    See Also
    --------
    LBPCodeTransformer : the same as a scikit-learn transformer.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.feature import local_binary_pattern
    >>> rng = np.random.RandomState(0)
    >>> images = rng.randint(0, 256, size=(4, 16, 16)).astype(np.uint8)
    >>> codes = local_binary_pattern_batch(images, 8, 1, "uniform")
    >>> codes.shape, codes.dtype
    ((4, 16, 16), dtype('uint8'))
    >>> bool(np.array_equal(codes[2], local_binary_pattern(images[2], 8, 1, "uniform")))
    True
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(
            f"images must have shape (n_images, height, width); got {images.shape}."
        )
    n, h, w = images.shape
    rp, cp = _sample_offsets(int(P), R)
    out = np.empty((n, h, w), dtype=_code_dtype(P, method))
    if n == 0:
        return out
    step = max(1, _BLOCK_PIXELS // (h * w))

    def run(start):
        block = np.asarray(images[start : start + step], dtype=np.float64)
        out[start : start + step] = _lbp_block(
            block, int(P), rp, cp, method, interpolation, padding
        )

    starts = range(0, n, step)
    n_threads = n_workers(n_jobs)  # joblib's rule: -1 all CPUs, -2 all but one
    if n_threads <= 1 or len(starts) == 1:
        for start in starts:
            run(start)
    else:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(run, starts))
    return out



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


class LBPCodeTransformer(TransformerMixin, BaseEstimator):
    """Local binary pattern code maps for batches of images.

    Each image becomes a map of LBP codes of the same height and width,
    computed by :func:`local_binary_pattern_batch` (identical to
    :func:`skimage.feature.local_binary_pattern` with the default
    ``interpolation`` and ``padding``).  Several (P, R) pairs give one
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
        flattened rows; None means square grey images.  One entry may be -1.
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
    images (converted to grey by :func:`fersk._validation.to_gray`: RGB to
    luminance, alpha dropped, integer images kept integer), or flattened
    rows ``(n, h*w)``.  Output keeps the layout: ``(n, h, w)`` code maps
    (``(n, h, w, k)`` for k pairs), or flattened rows for flattened input.
    Codes use the smallest unsigned dtype that holds them; 'var' is float64
    with NaN where all neighbours are equal (as in scikit-image).  As in
    scikit-image, integer images are recommended.

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

    _parameter_constraints = {
        "P": [_POINTS, NumberSequence(_POINTS)],
        "R": [_RADIUS, NumberSequence(_RADIUS)],
        "method": [StrOptions(set(LBP_METHODS))],
        "interpolation": _INTERPOLATION,
        "padding": _PADDING,
        "image_shape": [None, ImageShape()],
        "n_jobs": [None, numbers.Integral],
    }

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
        images, flat = validate_images(
            self, X, reset=False, image_shape=self.image_shape
        )
        return restore_layout(self._codes(to_gray(images)), flat)

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

    _parameter_constraints = {
        "P": [_POINTS, NumberSequence(_POINTS)],
        "R": [_RADIUS, NumberSequence(_RADIUS)],
        "method": [StrOptions(set(_CODE_METHODS))],
        "grid": [IntPair("(rows, columns) of cells")],
        "normalize": ["boolean"],
        "interpolation": _INTERPOLATION,
        "image_shape": [None, ImageShape()],
        "n_jobs": [None, numbers.Integral],
    }

    #: Fitted attributes a model folder (fersk.pretrained) stores.
    _saved_attributes = (
        "n_features_in_", "feature_names_in_", "image_shape_", "pairs_", "n_codes_",
        "n_features_out_",
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
        self.n_codes_ = [n_lbp_codes(p, self.method) for p, _ in self.pairs_]
        self.n_features_out_ = grid[0] * grid[1] * sum(self.n_codes_)
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
            ``lbp_p{P}_r{R}_cell{row}_{col}_code{k}`` for every bin.
        """
        check_is_fitted(self)
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
