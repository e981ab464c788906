"""Geometry of the crops: reduced copies, crop boxes, cuts, rotation, resize.

Pure array work on uint8 images as read (:mod:`fersk.face._inputs`); the
detectors search the reduced copies of :func:`_downscale` and the cropper
cuts, rotates and resizes each face box here.
"""

import math

import numpy as np

from .._image_files import to_gray

__all__ = []

# Patches of more pixels than this are first averaged over blocks before
# the anti-aliased resize, which works in float64 (memory stays bounded).
_BIG_PIXELS = 1 << 22


def _block_mean(image, factor):
    """Rounded means of ``factor`` x ``factor`` blocks of a uint8 image.

    Computed in strips of rows, so that no float copy of a large photo is
    made; the last rows and columns that do not fill a block are left out.
    The block sums are integer additions of strided slices (exact, and
    several times faster than a float mean over a reshaped view), divided
    and rounded as ``np.rint(blocks.mean())`` would: the same pixels.
    """
    h, w = (s // factor for s in image.shape[:2])
    out = np.empty((h, w, *image.shape[2:]), dtype=np.uint8)
    # 255 * factor**2 must fit the sums' type.
    dtype = np.uint16 if factor <= 16 else np.uint32
    rows = max(1, (1 << 20) // max(1, w * factor * factor))  # output rows per strip
    for r in range(0, h, rows):
        n = min(rows, h - r)
        strip = image[r * factor : (r + n) * factor, : w * factor]
        by_rows = strip[0::factor].astype(dtype)
        for i in range(1, factor):
            by_rows += strip[i::factor]
        sums = by_rows[:, 0::factor].copy()
        for j in range(1, factor):
            sums += by_rows[:, j::factor]
        out[r : r + n] = np.rint(sums / float(factor * factor))
    return out


def _downscale(image, scale):
    """A uint8 ``image`` resized by ``scale`` <= 1 (the image itself at 1).

    Block means by the whole part of the reduction, then Pillow's
    anti-aliased bilinear resize: uint8 throughout, so a large photo costs
    little more memory than itself.
    """
    from PIL import Image

    if scale >= 1.0:
        return image
    h, w = image.shape[:2]
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    factor = int(1.0 / scale)
    if factor >= 2:
        image = _block_mean(image, factor)
    if image.shape[:2] == shape:
        return image
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR
    )
    return np.asarray(resized)


def _grey(image):
    """Grey levels of an RGB (or grey) image, as :func:`to_gray` computes them."""
    return image if image.ndim == 2 else to_gray(image[np.newaxis])[0]


def _crop_box(r, c, h, w, aspect, margin):
    """Integer (top, left, height, width) around a box: aspect, then margin.

    The box is widened or heightened (never shrunk) about its centre to the
    output's aspect ratio (width / height), then ``margin`` of its size is
    added on each side.
    """
    cy, cx = r + h / 2.0, c + w / 2.0
    if w < h * aspect:
        w = h * aspect
    else:
        h = w / aspect
    h *= 1 + 2 * margin
    w *= 1 + 2 * margin
    H, W = max(1, int(round(h))), max(1, int(round(w)))
    return int(round(cy - H / 2.0)), int(round(cx - W / 2.0)), H, W


def _cut(image, top, left, H, W):
    """``image[top:top+H, left:left+W]``, edge pixels repeated outside."""
    h, w = image.shape[:2]
    r0, r1 = max(top, 0), min(top + H, h)
    c0, c1 = max(left, 0), min(left + W, w)
    if r0 >= r1 or c0 >= c1:  # wholly outside: the nearest edge pixel
        r0 = min(max(top, 0), h - 1)
        c0 = min(max(left, 0), w - 1)
        r1, c1 = r0 + 1, c0 + 1
    patch = image[r0:r1, c0:c1]
    pad = [(r0 - top, top + H - r1), (c0 - left, left + W - c1)]
    if any(p for pair in pad for p in pair):
        pad = [(max(a, 0), max(b, 0)) for a, b in pad]
        pad += [(0, 0)] * (image.ndim - 2)
        patch = np.pad(patch, pad, mode="edge")
    return patch[:H, :W]


def _rotated_cut(image, top, left, H, W, angle):
    """The H x W box at (top, left) rotated by ``angle`` (radians) about its
    centre: output pixel (row, col) reads the input at the box centre plus
    the offset rotated by ``angle``, so a line at ``angle`` becomes level."""
    from skimage.transform import EuclideanTransform, warp

    # skimage's coordinates are (x, y) = (col, row) of pixel centres.
    centre_in = np.array([left + (W - 1) / 2.0, top + (H - 1) / 2.0])
    centre_out = np.array([(W - 1) / 2.0, (H - 1) / 2.0])
    tform = (
        EuclideanTransform(translation=-centre_out)
        + EuclideanTransform(rotation=angle)
        + EuclideanTransform(translation=centre_in)
    )
    return warp(
        image.astype(np.float64, copy=False),
        tform,
        output_shape=(H, W),
        order=1,
        mode="edge",
        preserve_range=True,
    )


def _resize(patch, size):
    from skimage.transform import resize

    if patch.shape[:2] == tuple(size):  # what resize gives then, bit for bit, for free
        return patch.astype(np.float64)
    return resize(
        patch.astype(np.float64, copy=False),
        size,
        order=1,
        mode="reflect",
        anti_aliasing=True,
        preserve_range=True,
    )


def _cast(out, dtype):
    if dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(dtype, copy=False)


def _as_output(patch, cfg):
    """A cut-out patch (uint8 or float) made the output crop: grey unless
    ``color``, resized to ``size``, cast."""
    if patch.shape[0] * patch.shape[1] > _BIG_PIXELS and patch.dtype == np.uint8:
        # Block means first: the float64 resize of a huge patch would not fit.
        factor = int(min(patch.shape[0] / cfg.size[0], patch.shape[1] / cfg.size[1]) // 2)
        if factor >= 2:
            patch = _block_mean(patch, factor)
    if not cfg.color:
        patch = _grey(patch)
    crop = _resize(patch, cfg.size)
    if cfg.color and crop.ndim == 2:
        crop = np.stack([crop] * 3, axis=-1)
    return _cast(crop, cfg.dtype)


def _is_own_crop(shape, cfg):
    """Whether an image of ``shape``, taken whole as a face crop, is its own
    crop: the box is the image, no resize, no rotation, no colour change."""
    h, w = shape[:2]
    channels_in = shape[2] if len(shape) == 3 else 1
    return (
        (h, w) == tuple(cfg.size)
        and _crop_box(0, 0, h, w, cfg.size[1] / cfg.size[0], cfg.margin) == (0, 0, h, w)
        # grey crops are (h, w): an (h, w, 1) image is not its own crop
        and (channels_in == 3 if cfg.color else len(shape) == 2)
        and cfg.dtype == np.uint8
    )


def _crop_face(image, face, cfg):
    """The crop of one detected face (resized, cast): (crop, angle_degrees)."""
    out_h, out_w = cfg.size
    r, c, fh, fw, eyes, _ = face
    top, left, H, W = _crop_box(r, c, fh, fw, out_w / out_h, cfg.margin)
    angle = np.nan
    if cfg.align and eyes is not None:
        (r1, c1), (r2, c2) = sorted(eyes, key=lambda e: (e[1], e[0]))
        theta = math.atan2(r2 - r1, c2 - c1)
        # The rotated box lies in the square of its diagonal about its
        # centre: rotate within that region only (edge pixels repeated
        # outside the image, as the rotation's own edge mode does).
        d = int(math.ceil(math.hypot(H, W))) + 2
        region_top, region_left = top + (H - d) // 2, left + (W - d) // 2
        region = _cut(image, region_top, region_left, d, d)
        if not cfg.color:
            region = _grey(region)
        patch = _rotated_cut(region, top - region_top, left - region_left, H, W, theta)
        angle = math.degrees(theta)
    else:
        patch = _cut(image, top, left, H, W)
    return _as_output(patch, cfg), angle
