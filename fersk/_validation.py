"""Validation of image batches shared by every fersk estimator.

fersk estimators take images in one of two layouts:

* an image batch: ``(n_samples, height, width)`` grey or
  ``(n_samples, height, width, n_channels)``;
* flattened rows: ``(n_samples, n_features)`` where each row is one image
  of ``image_shape`` (or, when ``image_shape`` is None, a square image of
  ``sqrt(n_features)`` pixels a side).

The flat layout lets fersk estimators take part in ordinary 2-D
scikit-learn workflows (and in scikit-learn's estimator checks); the batch
layout is what users of images normally hold.  Output keeps the layout of
the input.

A single image without its batch axis must never be read as a batch
(``UNBATCHED_RULE``, checked here for every estimator):

* a 2-D array is flattened rows in ``fit`` (scikit-learn's convention);
  after ``fit`` it is read as rows only when they have the
  ``n_features_in_`` values per row that ``fit`` saw, or when
  ``image_shape`` declares how a row is an image (a stateless FaceCropper,
  never fitted on an array, refuses other 2-D arrays: ``(256, 256)`` is one
  grey image far more often than 256 images of 16x16);
* a 3-D array ``(a, b, c)`` whose last axis is at most 4 and shorter than
  the one before (``b > c``) is one image with channels (1 grey, 2 grey and
  alpha, 3 RGB, 4 RGBA), not ``a`` grey images ``c`` pixels wide: refused,
  unless the estimator was fitted on images of shape ``(b, c)``; grey
  images that narrow are passed with their channel axis, ``(a, b, c, 1)``.

The fix named in every refusal: ``[image]`` or ``image[np.newaxis]``.
"""

import functools
import math
import numbers

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from fersk._constraints import ImageShape
# to_gray: also read from here by older code.
from fersk._image_files import array_to_uint8, open_image, pil_to_uint8, to_gray  # noqa: F401

__all__ = ["validate_images", "restore_layout", "resolve_image_shape", "check_image"]

#: The most channels an image has (RGBA): a 3-D array whose last axis is
#: at most this, and shorter than the axis before it, is one image with
#: channels, not a batch of grey images that narrow.
_MAX_CHANNELS = 4

_IMAGE_SHAPE = ImageShape()

#: The rule, as the docstrings of the estimators that take images state it.
UNBATCHED_RULE = (
    "A single image must be wrapped: [image] or image[np.newaxis]. A 2-D array is "
    "flattened rows in fit; after fit, only rows with the n_features_in_ values fit "
    "saw (or with image_shape set) are read as rows. A 3-D array (a, b, c) with "
    "c <= 4 and b > c is one image with channels, refused unless fit saw images of "
    "shape (b, c); pass grey images that narrow as (a, b, c, 1)."
)


def resolve_image_shape(n_features, image_shape, input_name="X"):
    """Return the ``(height, width[, channels])`` of flattened rows.

    Parameters
    ----------
    n_features : int
        Length of one flattened row.
    image_shape : tuple of int or None
        Declared shape; one entry may be -1 (inferred, as in
        :func:`numpy.reshape`).  None means a square grey image.
    input_name : str, default="X"
        Name used in error messages.

    Returns
    -------
    shape : tuple of int
        The image shape, whose product is ``n_features``.

    Examples
    --------
    >>> resolve_image_shape(2304, None)
    (48, 48)
    >>> resolve_image_shape(12, (1, -1))
    (1, 12)
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"{input_name} is 2-D with {n_features} features per row, which is "
                "not a square number of pixels; set image_shape=(height, width) to "
                "say how each row is an image, or pass a batch of shape "
                "(n_samples, height, width)."
            )
        return (side, side)
    # The estimators' constraint, for callers that are not estimators (the
    # estimators' own check has run in fit).
    if not _IMAGE_SHAPE.is_satisfied_by(image_shape):
        raise ValueError(f"image_shape must be {_IMAGE_SHAPE}; got {image_shape!r}.")
    shape = tuple(int(s) for s in image_shape)
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if n_features % known:
            raise ValueError(
                f"image_shape={image_shape!r} cannot hold the {n_features} "
                f"features per row of {input_name}."
            )
        shape = tuple(n_features // known if s == -1 else s for s in shape)
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {math.prod(shape)} values but "
            f"{input_name} has {n_features} features per row. A single image must be "
            "wrapped: [image] or image[np.newaxis]."
        )
    return shape


def validate_images(
    estimator,
    X,
    *,
    reset,
    image_shape=None,
    dtype="numeric",
    allow_channels=True,
    check_shape=True,
    input_name="X",
):
    """Validate ``X`` as a batch of images and record what ``fit`` saw.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator; on ``reset`` it receives ``n_features_in_`` (pixels
        times channels per image), ``image_shape_`` and, for DataFrames,
        ``feature_names_in_``.
    X : array-like
        ``(n, h, w)``, ``(n, h, w, c)`` or flattened ``(n, h*w[*c])``.
    reset : bool
        True in ``fit``; False in ``transform``/``predict``, where the image
        shape must equal the one seen in ``fit``.
    image_shape : tuple or None
        How flattened rows are images (see :func:`resolve_image_shape`).
    dtype : str, type or list, default="numeric"
        Passed to :func:`sklearn.utils.check_array`.
    allow_channels : bool, default=True
        Whether ``(n, h, w, c)`` input is accepted.
    check_shape : bool, default=True
        Whether, when not resetting, the image shape must match ``fit``.
    input_name : str, default="X"
        Name used in error messages.

    Returns
    -------
    images : ndarray of shape (n, h, w) or (n, h, w, c)
        The validated images (no copy when none is needed).
    flat : bool
        Whether ``X`` came as flattened rows (output should too).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> est = BaseEstimator()
    >>> images, flat = validate_images(est, np.zeros((2, 16)), reset=True)
    >>> images.shape, flat, est.image_shape_
    ((2, 4, 4), True, (4, 4))
    """
    if np.iscomplexobj(X) if hasattr(X, "dtype") else False:
        # check_array would print the whole array in its message.
        raise ValueError(
            f"Complex data not supported: {input_name} has dtype {X.dtype}; images are "
            "real numbers."
        )
    ndim = getattr(X, "ndim", None)
    if ndim is None and not hasattr(X, "iloc"):
        try:
            ndim = np.asarray(X, dtype=object).ndim
        except ValueError:  # numpy cannot even hold them as objects: grey beside colour...
            _explain_ragged(X, input_name)
            raise
    elif ndim is None:
        ndim = 2
    if ndim == 2 and not reset:
        _check_rows(estimator, X, image_shape, input_name)
    if ndim == 2:
        X2 = validate_data(
            estimator,
            X,
            reset=reset,
            dtype=dtype,
            ensure_all_finite=True,
            ensure_min_samples=1,
            ensure_min_features=1,
        )
        fitted = None if reset else getattr(estimator, "image_shape_", None)
        if image_shape is None and fitted is not None and math.prod(fitted) == X2.shape[1]:
            # rows of the images fit saw, whatever their shape (not read as squares)
            shape = tuple(int(s) for s in fitted)
        else:
            shape = resolve_image_shape(X2.shape[1], image_shape, input_name)
        images = X2.reshape((X2.shape[0],) + shape)
        flat = True
    elif ndim in (3, 4):
        if ndim == 4 and not allow_channels:
            raise ValueError(
                f"{input_name} must be a batch of grey images of shape "
                f"(n_samples, height, width); got a 4-D array."
            )
        images = check_array(
            X,
            dtype=dtype,
            allow_nd=True,
            ensure_2d=False,
            ensure_all_finite=True,
            ensure_min_samples=1,
            input_name=input_name,
        )
        if 0 in images.shape[1:]:
            raise ValueError(
                f"{input_name} has an empty image dimension: shape {images.shape}."
            )
        if ndim == 3 and _one_image_with_channels(estimator, images.shape, reset):
            a, b, c = images.shape
            raise ValueError(
                f"{input_name} has shape {images.shape}: one {a}x{b} image with {c} "
                f"channel{'s' if c > 1 else ''}, or {a} grey images of {b}x{c} pixels? "
                "fersk reads a 3-D array as a batch of grey images; images this narrow "
                "are almost surely one image without its batch axis. Pass [image] or "
                "image[np.newaxis] for one image; for a batch of narrow grey images, "
                f"add the channel axis: {input_name}[..., np.newaxis]."
            )
        if ndim == 4 and images.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"{input_name} is 4-D, so its last axis must be channels (1 grey, "
                f"3 RGB or 4 RGBA); got {images.shape[-1]} channels in shape "
                f"{images.shape}."
            )
        n_features = math.prod(images.shape[1:])
        if reset:
            estimator.n_features_in_ = n_features
            if hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
        elif check_shape and n_features != getattr(estimator, "n_features_in_", n_features):
            raise ValueError(
                f"{input_name} has images of shape {images.shape[1:]}, but "
                f"{type(estimator).__name__} was fitted on images of shape "
                f"{estimator.image_shape_} ({estimator.n_features_in_} features)."
            )
        flat = False
    else:
        _explain_ragged(X, input_name)
        if ndim == 0 and not isinstance(X, (str, bytes, np.ndarray, numbers.Number)) and (
            hasattr(X, "__iter__") or hasattr(X, "keys")
        ):  # a generator, a dict...: numpy holds it as one object
            raise ValueError(
                f"{input_name} is a {type(X).__name__}; pass the images as a list or an "
                "array" + ("." if hasattr(X, "keys") else f" (list({input_name}))."))
        raise ValueError(
            f"{input_name} must be a batch of images of shape (n_samples, height, "
            f"width[, channels]) or flattened rows (n_samples, n_features); got a "
            f"{ndim}-D input."
            + (
                " Reshape your data: a single image needs X[np.newaxis]."
                if ndim in (0, 1)
                else ""
            )
        )
    if reset:
        estimator.image_shape_ = tuple(images.shape[1:])
    elif check_shape and tuple(images.shape[1:]) != tuple(estimator.image_shape_):
        raise ValueError(
            f"{input_name} has images of shape {tuple(images.shape[1:])}, but "
            f"{type(estimator).__name__} was fitted on images of shape "
            f"{tuple(estimator.image_shape_)}."
        )
    return images, flat


def _one_image_with_channels(estimator, shape, reset):
    """Whether a 3-D ``shape`` (a, b, c) is one image with c channels.

    Grey images at most 4 pixels wide and taller than wide are not images
    anyone classifies; one (h, w, c) image is.  A fitted estimator that saw
    images of shape (b, c) in ``fit`` was given such narrow images knowingly.
    """
    _, b, c = shape
    if c > _MAX_CHANNELS or b <= c:
        return False
    fitted = getattr(estimator, "image_shape_", None)
    return reset or fitted is None or tuple(fitted) != (b, c)


def _check_rows(estimator, X, image_shape, input_name):
    """After ``fit``, refuse a 2-D array that is not declared rows.

    Rows are declared by ``fit`` (``n_features_in_``, which they must
    match) or by ``image_shape``; anything else, such as ``(256, 256)`` given
    to a FaceCropper never fitted on an array, is most likely one grey image.
    """
    shape = tuple(X.shape) if hasattr(X, "shape") else np.asarray(X, dtype=object).shape
    n_features = getattr(estimator, "n_features_in_", None)
    wrap = (
        f"A single grey image must be wrapped: [image] or image[np.newaxis] (shape "
        f"(1, {shape[0]}, {shape[1]}))."
    )
    if n_features is not None:
        if shape[1] != n_features:
            # The first sentence is scikit-learn's, which its checks expect.
            raise ValueError(
                f"{input_name} has {shape[1]} features, but {type(estimator).__name__} "
                f"is expecting {n_features} features as input. fersk reads a 2-D "
                f"array as flattened rows of {n_features} values; {input_name} has shape "
                f"{shape}. {wrap}"
            )
        return
    if image_shape is None:
        raise ValueError(
            f"{input_name} is a 2-D array of shape {shape}: one grey image, or "
            f"{shape[0]} flattened images? {type(estimator).__name__} was not fitted on "
            f"rows and image_shape is None, so fersk will not guess. {wrap} For "
            "flattened rows, set image_shape=(height, width), or pass them as a batch "
            "of shape (n_samples, height, width)."
        )


def _explain_ragged(X, input_name):
    """Name the usual causes of a 1-D input before the generic message."""
    if not isinstance(X, (list, tuple)) and not (
        isinstance(X, np.ndarray) and X.dtype.kind in "OUS"
    ):
        return
    items = list(X)
    if not items:
        raise ValueError(f"{input_name} is empty: there are no images.")
    for i, item in enumerate(items):
        # Before the paths' message, which told FaceCropper itself to put a
        # FaceCropper in front (bytes), or a None to reshape its data.
        if isinstance(item, bytes):
            raise ValueError(
                f"{input_name}[{i}] is bytes ({item[:40]!r}): a file path is a str or a "
                "pathlib.Path (os.fsdecode(...) turns bytes into one), an image an array."
            )
        if item is None or not (
            isinstance(item, (str, numbers.Number, np.generic, list, tuple)) or hasattr(item, "__fspath__")
            or hasattr(item, "__array__") or hasattr(item, "__array_interface__")
        ):
            raise ValueError(
                f"{input_name}[{i}] is {'None' if item is None else type(item).__name__}, "
                "neither an image (an array) nor a file path."
            )
    if any(isinstance(item, str) or hasattr(item, "__fspath__") for item in items):
        raise ValueError(
            f"{input_name} holds file paths; this estimator takes image arrays. Read "
            "them first (fersk.datasets.load_image_folder), or put FaceCropper, which "
            "reads files, in front of it."
        )
    shapes = sorted({np.shape(item) for item in items}, key=str)
    if len(shapes) > 1:
        shown = ", ".join(str(s) for s in shapes[:4]) + (", ..." if len(shapes) > 4 else "")
        raise ValueError(
            f"{input_name} holds images of different shapes ({shown}); a batch needs one "
            "size: resize them first, e.g. with FaceCropper(size=...)."
        )


def image_feature_names(estimator, input_features, shape, name):
    """Names of an image transformer's outputs when they come flattened.

    One name per value of an output image of ``shape`` ``(height, width[,
    k])``, in the order of ``reshape(n, -1)``: ``{name(k)}_row{i}_col{j}``
    with ``name(k)`` the name of channel ``k`` (``name(None)`` for a 2-D
    output).  ``input_features`` is checked against the names seen in
    ``fit``, as scikit-learn's transformers do.

    Parameters
    ----------
    estimator : estimator instance
        The fitted transformer.
    input_features : array-like of str or None
        Checked against ``feature_names_in_`` / ``n_features_in_`` when
        the estimator has them.
    shape : tuple of int
        Shape of one output image.
    name : callable
        ``name(channel index or None) -> str``.

    Returns
    -------
    feature_names_out : ndarray of str

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> est = BaseEstimator()
    >>> image_feature_names(est, None, (1, 2, 2), lambda k: f"c{k}").tolist()
    ['c0_row0_col0', 'c1_row0_col0', 'c0_row0_col1', 'c1_row0_col1']
    """
    from sklearn.utils.validation import _check_feature_names_in

    if hasattr(estimator, "n_features_in_"):
        _check_feature_names_in(estimator, input_features)
    h, w, *rest = shape
    channels = [None] if not rest else list(range(rest[0]))
    return np.asarray(
        [f"{name(k)}_row{i}_col{j}" for i in range(h) for j in range(w) for k in channels],
        dtype=object,
    )


def restore_layout(out, flat):
    """Flatten per-sample output when the input came as flattened rows.

    Parameters
    ----------
    out : ndarray of shape (n, ...)
        Per-sample output.
    flat : bool
        Whether the input was flattened.

    Returns
    -------
    out : ndarray
        ``out.reshape(n, -1)`` when ``flat``, else ``out`` unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> restore_layout(np.zeros((2, 3, 3)), flat=True).shape
    (2, 9)
    """
    return out.reshape(out.shape[0], -1) if flat else out


class ImageBatchOutputMixin:
    """``set_output`` for transformers whose output may be an image batch.

    scikit-learn wraps every ``transform`` and ``fit_transform`` output in
    the container ``set_output(transform=...)`` or
    ``sklearn.set_config(transform_output=...)`` names, and a DataFrame
    holds only 2-D data: an image batch ``(n, h, w[, c])`` made pandas fail
    ("Must pass 2-d input").  With this mixin (listed before
    ``TransformerMixin``) image batches are returned as they are, ndarrays,
    so a pipeline of image steps works under a global pandas setting; 2-D
    output (flattened rows) follows ``set_output`` as usual.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)  # scikit-learn wraps the methods here
        if "transform" not in getattr(cls, "_sklearn_auto_wrap_output_keys", ()):
            return  # not wrapped (auto_wrap_output_keys=None): nothing to undo
        for name in ("transform", "fit_transform"):
            method = getattr(cls, name, None)
            # scikit-learn's wrapper keeps the method it wraps (functools.wraps).
            inner = getattr(method, "__wrapped__", None)
            if inner is None or getattr(method, "_image_batches_unwrapped", False):
                continue
            setattr(cls, name, _unwrapped_image_batches(inner))


def _unwrapped_image_batches(method):
    """``method`` with its output wrapped by ``set_output`` only when 2-D."""
    from sklearn.utils._set_output import _wrap_data_with_container

    @functools.wraps(method)
    def wrapped(self, X, *args, **kwargs):
        out = method(self, X, *args, **kwargs)
        if np.ndim(out) > 2:  # no DataFrame holds an image batch
            return out
        return _wrap_data_with_container("transform", out, X, self)

    wrapped._image_batches_unwrapped = True
    return wrapped


def check_random_state_int(random_state):
    """Return an int seed (or None) drawn from ``random_state``.

    Keras and NumPy generators are seeded from one int so that a
    ``RandomState`` instance and an int behave the same way.

    Parameters
    ----------
    random_state : None, int or numpy.random.RandomState

    Returns
    -------
    seed : int or None

    Examples
    --------
    >>> check_random_state_int(3)
    3
    """
    if random_state is None or isinstance(random_state, numbers.Integral):
        return None if random_state is None else int(random_state)
    return int(random_state.randint(np.iinfo(np.int32).max))


def _is_pil_image(obj):
    """A Pillow image, without importing Pillow (NumPy reads its raw pixels
    only: palette indices, CMYK as RGB, no EXIF orientation)."""
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getexif")


def check_image(image, where="X", float_max=1.0):
    """One image of a list, as uint8 grey ``(h, w)`` or colour ``(h, w, 3|4)``.

    The checks of a single image array (an item of a list of images of
    any sizes, as :class:`fersk.face.FaceCropper` takes them): numeric,
    grey or colour, not empty; its values by the pixel rule of
    :func:`fersk._image_files.array_to_uint8`.  Errors name ``where``.
    """
    if _is_pil_image(image):  # as its file is read: EXIF, palette, CMYK, 16 bits
        return pil_to_uint8(open_image(image))
    try:
        image = np.asarray(image)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"{where} is not an image array: {exc}") from exc
    if image.dtype.kind not in "biuf":  # bool: 0/255 by the pixel rule, as in a batch
        raise ValueError(
            f"{where} must be a numeric image array or a file path; got an "
            f"array of dtype {image.dtype}."
        )
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ValueError(
            f"{where} must be a grey (height, width) or colour (height, width, "
            f"3 or 4) image; got shape {image.shape}."
        )
    if 0 in image.shape:
        raise ValueError(f"{where} is an empty image of shape {image.shape}.")
    return array_to_uint8(image, where, float_max)
