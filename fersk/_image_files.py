"""Decoding image files to uint8 arrays, one rule for every reader in fersk.

``datasets``, ``face`` (file paths given to ``FaceCropper``) and ``cli``
read files through :func:`pil_to_uint8`, so a 16-bit or palette image
means the same everywhere.
"""

import numpy as np

__all__ = ["pil_to_uint8"]

_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N")


def pil_to_uint8(im, mode=None):
    """A Pillow image as a uint8 array, grey (h, w) or RGB (h, w, 3).

    Parameters
    ----------
    im : PIL.Image.Image
        An opened image.
    mode : {'L', 'RGB'} or None, default=None
        Force grey or colour; None keeps grey images grey and makes every
        other image RGB (palette images included, alpha dropped).

    Returns
    -------
    image : ndarray of uint8
        16-bit images keep their high byte (Pillow's ``convert`` would clip
        them at 255, turning most of them white).

    Raises
    ------
    ValueError
        For floating-point images (mode 'F') and 32-bit images with values
        outside 0..65535, which have no agreed 8-bit scale.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> im = Image.fromarray(np.array([[0, 4096, 65535]], dtype=np.uint16))
    >>> pil_to_uint8(im)
    array([[  0,  16, 255]], dtype=uint8)
    >>> pil_to_uint8(im, "RGB").shape
    (1, 3, 3)
    """
    if mode is None:
        mode = "L" if im.mode in _GREY_MODES else "RGB"
    if im.mode == mode:
        return np.array(im)
    if im.mode == "F":
        raise ValueError(
            "floating-point image (Pillow mode 'F'): save it with 8 or 16 bits per channel"
        )
    if im.mode == "I" or im.mode.startswith("I;16"):
        wide = np.asarray(im)
        if wide.min() < 0 or wide.max() > 65535:
            raise ValueError(f"{im.mode!r} image with values outside 0..65535")
        grey = (wide.astype(np.uint32) >> 8).astype(np.uint8)
        return grey if mode == "L" else np.repeat(grey[..., None], 3, axis=2)
    return np.array(im.convert(mode))
