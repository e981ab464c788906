"""LBP codes of a whole batch of images, identical to scikit-image's (but
at P=32, where scikit-image's int32 codes overflow: see
:func:`local_binary_pattern_batch`).

:func:`local_binary_pattern_batch` computes exactly what
:func:`skimage.feature.local_binary_pattern` computes, image by image, but
for a whole batch at once: the circular neighbourhood is sampled with the
same bilinear interpolation, in the same floating-point operations, so the
codes are identical, while the work is done by a few vectorised operations
per neighbour on cache-sized blocks of images instead of a Python call per
image.  Imported from :mod:`fersk.lbp`, whose estimators use it.
"""

import functools
import math
import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._constraints import N_JOBS, without_bools
from ._image_files import n_workers

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
    without_bools({
        "images": ["array-like"],
        "P": [_POINTS],
        "R": [_RADIUS],
        "method": [StrOptions(set(LBP_METHODS))],
        "interpolation": _INTERPOLATION,
        "padding": _PADDING,
        "n_jobs": N_JOBS,
    }),
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
    operations on cache-sized blocks.  One exception: at ``P=32``
    scikit-image's int32 codes overflow, negative where the top bit is
    set; here they are unsigned (uint32: its 'default' codes modulo
    2**32, and for 'ror' the least rotation of those, where scikit-image
    takes the least signed value).

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        Grey images of any real dtype, finite (NaN, infinity and complex
        values are refused with a ValueError).  As in scikit-image, integer
        images are recommended: with floats, tiny differences between
        neighbours decide bits.
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
    if images.dtype.kind == "O":  # numbers held as objects: read as float64
        try:
            images = images.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"images must hold real numbers; {exc}.") from None
    if images.dtype.kind == "c":
        # The imaginary part would be dropped, with only numpy's ComplexWarning.
        raise ValueError(f"images must be real; got complex dtype {images.dtype}.")
    # A NaN or infinite pixel gives wrong codes to all its neighbours.  min
    # and max see both (NaN propagates) without a temporary of the images'
    # size.
    if images.dtype.kind == "f" and images.size and not (
        np.isfinite(images.min()) and np.isfinite(images.max())
    ):
        raise ValueError(
            "images contain non-finite values (NaN or infinity); LBP codes "
            "compare neighbouring grey values, which these make meaningless."
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
