"""Input handling: lists of images and file paths, and one image as read.

The checks themselves are fersk's one set (:mod:`fersk._validation`,
:mod:`fersk._image_files`): an array item is checked as any image array
is, and a file is read as the loaders read it.
"""

import os

import numpy as np

from .._image_files import read_image_file

__all__ = []


def _is_path(item):
    return isinstance(item, (str, os.PathLike))


def _as_image_list(X):
    """Return X as a list of images/paths when it is one, else None."""
    if isinstance(X, (str, os.PathLike)):
        raise ValueError(
            f"X must be a list of images or file paths, or an array; got the "
            f"single path {os.fspath(X)!r} (wrap it in a list)."
        )
    if isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "OUS":
        X = X.tolist()  # e.g. a DataFrame column of file names
    elif hasattr(X, "iloc") and getattr(X, "ndim", 0) == 1:
        X = list(X)
    if not isinstance(X, (list, tuple)):
        return None
    if len(X) == 0:
        raise ValueError("X is an empty list: there are no images to crop.")
    if any(_is_path(item) or _is_image_array(item) for item in X):
        return list(X)
    # Nested lists of numbers (e.g. rows of flattened images) are an array.
    return None


def _is_image_array(item):
    """An array-like object (not a nested list) of at least 2 dimensions."""
    if not (hasattr(item, "__array__") or hasattr(item, "__array_interface__")):
        return False
    ndim = getattr(item, "ndim", None)
    return (np.asarray(item).ndim if ndim is None else ndim) >= 2


def _load(item, index):
    """One input image as read: uint8, grey or RGB (alpha dropped).

    Detectors search their own reduced copies and crops convert only what
    they cut out, so a large photo is never held as a float image.
    """
    image = read_image_file(item, f"X[{index}]") if _is_path(item) else item
    if image.ndim == 3:
        image = image[..., 0] if image.shape[-1] == 1 else image[..., :3]
    return image
