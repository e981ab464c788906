"""The scales of MTCNN's image pyramid, shared by both of fersk's MTCNN
paths: mtcnn's own (TensorFlow, :mod:`fersk.face._mtcnn_calls` swaps this
in) and ONNX Runtime's (:mod:`fersk.onnx._mtcnn`), which must search the
same levels to find the same faces.
"""

import numpy as np

# mtcnn 1.0 builds its pyramid for faces of 20 pixels and more; beyond, see
# _pyramid_scales.
_MTCNN_PYRAMID_FACE = 20

#: Pyramid levels kept finer than a face of ``min_face_size`` needs: one
#: keeps every face the whole pyramid found on the 566 labelled faces of the
#: ExpW development photos (none loses 2 of them for 1.2x more speed).
_PYRAMID_EXTRA_LEVELS = 1


def _pyramid_scales(width, height, min_face_size, scale_factor, min_size=12):
    """mtcnn 1.0's image pyramid (``build_scale_pyramid``), without the
    levels a face of ``min_face_size`` pixels does not need.

    mtcnn counts its levels as if the smallest face were 20 pixels and
    fails (empty convolutions) for larger ``min_face_size``; fersk used to
    search every photo from 20 pixels and drop the smaller faces after.
    Here the levels are those of the 20-pixel pyramid (the same scales,
    so the same proposals per level), from one level before the first at
    which a face of ``min_face_size`` fits PNet's 12-pixel cell: on a
    600x450 photo searched for faces of a tenth of its shorter side (45
    pixels) PNet scans about a quarter of the pixels it did.  At 20 pixels
    and below it is mtcnn's pyramid exactly.
    """
    min_dim = min(width, height)
    count = round(-((np.log(min_dim / min_size) / np.log(scale_factor)) + 1))
    scales = min_size / min(min_face_size, _MTCNN_PYRAMID_FACE) * scale_factor ** np.arange(count)
    if min_face_size <= _MTCNN_PYRAMID_FACE:
        return scales
    first = int(np.searchsorted(-scales, -min_size / min_face_size * (1 + 1e-9)))
    first = max(0, min(first - _PYRAMID_EXTRA_LEVELS, len(scales) - 1))
    return scales[first:]
