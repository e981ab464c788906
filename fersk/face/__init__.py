"""Find, crop, optionally align and resize faces: :class:`FaceCropper`.

Expression recognisers such as those trained on FER-2013 expect small grey
face crops (48x48 pixels, face filling the frame).  :class:`FaceCropper`
turns photographs of any size, or image files, into such crops, one per
input and in order, as a scikit-learn transformer, so that
``make_pipeline(FaceCropper(), LBPHistogram(), LinearSVC())`` works on raw
photographs.

The default detector is the MTCNN network of the ``mtcnn`` package (a
dependency of fersk; its weights ship in the wheel and it runs on the
TensorFlow fersk uses), with eye keypoints for alignment: on web photos it
finds far more faces than the cascades, and as fast (benchmarks/RESULTS.md).
scikit-image's multi-block LBP frontal-face cascade
(:class:`skimage.feature.Cascade` with
:func:`skimage.data.lbp_frontal_face_cascade_filename`, no TensorFlow) and
OpenCV's Haar cascades (with an eye cascade for alignment, when installed)
are the alternatives, and any callable can be a detector.

One module per job, one way (photo -> faces -> crops -> records):

- ``_inputs``: lists of images and file paths, one image as read (the
  checks are fersk's own, :mod:`fersk._validation` and
  :mod:`fersk._image_files`);
- ``_detectors``: the back ends behind one dispatch, and MTCNN's batches;
- ``_geometry``: reduced copies, crop boxes, cuts, rotation, resize;
- ``_cropper``: :class:`FaceCropper`;
- ``_records``: per-face records, :class:`NoFaceWarning`;
- ``_predict``: :func:`predict_faces`, a fitted pipeline over every face.

Everything is imported from ``fersk.face``; the submodules are private.
"""

# Limits read by the detectors at each use from this module, so that tests
# and benchmarks can set them here (fersk.face._MTCNN_BATCH_PIXELS = ...).
# Longest side of the copy MTCNN searches in a large photo.
_MTCNN_MAX_SIDE = 640
# Most pixels (of the searched copies) sent to MTCNN in one batch: the
# pyramid's float32 tensors and first activations stay near 100 MB.
_MTCNN_BATCH_PIXELS = 1 << 21

from ._cropper import MAX_CROP_SIDE, FaceCropper  # noqa: E402
from ._detectors import (  # noqa: E402, F401  (tests, benchmarks, fersk.onnx, fersk.live)
    _BACKENDS,
    _MTCNN_DETECTORS,
    _check_backend,
    _mtcnn_model,
    _onnx_mtcnn_model,
)
from ._mtcnn_calls import _stable_mtcnn_sort  # noqa: E402, F401  (tests, fersk.onnx)
from ._geometry import _downscale  # noqa: E402, F401  (fersk.live)
from ._predict import predict_faces  # noqa: E402
from ._records import NoFaceWarning  # noqa: E402

# The public names keep the module users know (repr, pickles, pipeline.json's
# "fersk.face.FaceCropper", Sphinx), wherever they are defined.
for _obj in (FaceCropper, NoFaceWarning, predict_faces):
    _obj.__module__ = __name__
del _obj

__all__ = ["FaceCropper", "NoFaceWarning", "predict_faces"]
