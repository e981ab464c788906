"""TensorFlow's image resizing operations in NumPy, bit for bit.

MTCNN (the ``mtcnn`` package) builds its image pyramid with
``tf.image.resize(..., method="area")`` and cuts the patches of its second
and third networks with ``tf.image.crop_and_resize``.  Both run here as
TensorFlow's CPU kernels compute them (resize_area_op.cc,
crop_and_resize_op.cc): the same float32 weights, added in the same
order, so the results are equal, not merely close.  fersk's MTCNN glue
uses them, with ONNX Runtime (:class:`fersk.onnx.OnnxMTCNN`) and in place
of the ``mtcnn`` package's own calls to TensorFlow (fersk.face): those
convert mtcnn's float64 batch anew for each call, and TensorFlow's area
resize runs on one thread; these take a fraction of the time.
"""

import functools

import numpy as np

__all__ = []


@functools.lru_cache(maxsize=512)
def _area_weights(n_in, n_out):
    """The area resize along one axis as a sparse ``(n_out, n_in)`` matrix.

    Each row holds the input cells of one output cell in increasing order,
    with TensorFlow's float32 weights (the cell's overlap with the output
    cell; 1.0 inside), an index past the edge repeated at the edge, as
    TensorFlow's bound does: a sparse product adds them in that order, as
    its kernel does.  Returns the matrix and the axis scale (float32).
    """
    from scipy import sparse

    scale = np.float32(n_in) / np.float32(n_out)
    out = np.arange(n_out, dtype=np.float32)
    in0, in1 = out * scale, (out + np.float32(1)) * scale
    start = np.floor(in0).astype(np.int64)
    counts = np.ceil(in1).astype(np.int64) - start
    indptr = np.concatenate([[0], np.cumsum(counts)])
    rows = np.repeat(np.arange(n_out), counts)
    i = start[rows] + (np.arange(indptr[-1]) - indptr[rows])
    fi, a0, a1 = i.astype(np.float32), in0[rows], in1[rows]
    one = np.float32(1)
    past_end = fi + one > a1
    weights = np.where(
        fi < a0,
        np.where(past_end, scale, fi + one - a0),
        np.where(past_end, a1 - fi, one),
    ).astype(np.float32)
    matrix = sparse.csr_matrix(
        (weights, np.clip(i, 0, n_in - 1).astype(np.int32), indptr.astype(np.int32)),
        shape=(n_out, n_in),
    )
    return matrix, scale


def _transposed(a, axes):
    """A C-contiguous copy of ``a.transpose(*axes, a.ndim - 1)``: the last
    axis (the channels) moves as one element, which copies faster."""
    a = np.ascontiguousarray(a)
    pixels = a.view(np.dtype((np.void, a.itemsize * a.shape[-1])))[..., 0]
    out = np.ascontiguousarray(pixels.transpose(axes))
    return out.view(a.dtype).reshape(out.shape + a.shape[-1:])


class AreaPyramid:
    """``tf.image.resize(images, shape, method="area")`` for many shapes.

    TensorFlow's kernel sums each output cell's input cells along a row
    first, then the rows: here the first sum is one sparse product over
    the columns of a copy of the batch stored column-major (made once, for
    every level of the pyramid), the second one over the rows.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, channels)
        Any real dtype; values are taken as float32, as TensorFlow does.
    """

    def __init__(self, images):
        n, h, w, c = images.shape
        self.shape = (n, h, w, c)
        # (width, n, height, channels), made once for all levels
        self._columns = _transposed(np.asarray(images, dtype=np.float32), (2, 0, 1))

    def resize(self, shape):
        """The batch resized to ``shape`` (height, width), float32.

        Parameters
        ----------
        shape : tuple of int
            Output (height, width), each at least 1.

        Returns
        -------
        resized : ndarray of shape (n_images, height, width, channels)
        """
        n, h, w, c = self.shape
        oh, ow = int(shape[0]), int(shape[1])
        wy, sy = _area_weights(h, oh)
        wx, sx = _area_weights(w, ow)
        rows = (wx @ self._columns.reshape(w, -1)).reshape(ow, n, h, c)
        rows = _transposed(rows, (2, 1, 0)).reshape(h, -1)
        out = _transposed((wy @ rows).reshape(oh, n, ow, c), (1, 0, 2))
        # TensorFlow's 1.0 / (height_scale * width_scale): a double, then float
        out *= np.float32(1.0 / np.float64(sy * sx))
        return out


def resize_area(images, shape):
    """``tf.image.resize(images, shape, method="area")`` in NumPy.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, channels)
    shape : tuple of int
        Output (height, width).

    Returns
    -------
    resized : ndarray of shape (n_images, height, width, channels), float32
    """
    return AreaPyramid(images).resize(shape)


def crop_and_resize(images, boxes, box_indices, size):
    """``tf.image.crop_and_resize`` (bilinear, extrapolation value 0) in NumPy.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, channels)
        Any real dtype; pixels are taken as float32, as TensorFlow does
        (only those read are converted).
    boxes : array-like of shape (n_boxes, 4)
        ``(y1, x1, y2, x2)`` in the images' normalised coordinates.
    box_indices : array-like of shape (n_boxes,)
        The image of each box.
    size : tuple of int
        The crops' (height, width), each at least 2.

    Returns
    -------
    crops : ndarray of shape (n_boxes, height, width, channels), float32
    """
    _, ih, iw, c = images.shape
    ch, cw = size
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    y1, x1, y2, x2 = (boxes[:, k : k + 1] for k in range(4))
    hs = (y2 - y1) * np.float32(ih - 1) / np.float32(ch - 1)
    ws = (x2 - x1) * np.float32(iw - 1) / np.float32(cw - 1)
    in_y = y1 * np.float32(ih - 1) + np.arange(ch, dtype=np.float32) * hs  # (n_boxes, ch)
    in_x = x1 * np.float32(iw - 1) + np.arange(cw, dtype=np.float32) * ws
    fy, fx = np.floor(in_y), np.floor(in_x)
    top = fy.astype(np.intp).clip(0, ih - 1)[:, :, None]
    bottom = np.ceil(in_y).astype(np.intp).clip(0, ih - 1)[:, :, None]
    left = fx.astype(np.intp).clip(0, iw - 1)[:, None, :]
    right = np.ceil(in_x).astype(np.intp).clip(0, iw - 1)[:, None, :]
    # the four neighbours of every crop pixel, gathered from the flat batch
    first_row = np.asarray(box_indices, dtype=np.intp).reshape(-1, 1, 1) * ih
    flat = images.reshape(-1, c)
    at_top, at_bottom = (first_row + top) * iw, (first_row + bottom) * iw

    def gather(index):
        return flat.take(index, axis=0).astype(np.float32, copy=False)

    tl, tr = gather(at_top + left), gather(at_top + right)
    bl, br = gather(at_bottom + left), gather(at_bottom + right)
    x_lerp = (in_x - fx)[:, None, :, None]
    upper = tl + (tr - tl) * x_lerp
    lower = bl + (br - bl) * x_lerp
    crops = upper + (lower - upper) * (in_y - fy)[:, :, None, None]
    inside = ((in_y >= 0) & (in_y <= ih - 1))[:, :, None, None] & (
        (in_x >= 0) & (in_x <= iw - 1)
    )[:, None, :, None]
    return np.where(inside, crops, np.float32(0))
