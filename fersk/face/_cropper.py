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
"""

import contextlib
import functools
import math
import numbers
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._image_files import array_to_uint8, open_image, pil_to_uint8, stretch_to_uint8
from .._validation import image_feature_names, restore_layout, to_gray, validate_images

__all__ = ["FaceCropper", "NoFaceWarning", "predict_faces"]

_BACKENDS = ("skimage", "opencv", "mtcnn", "mtcnn-onnx")
# The MTCNN detectors: the mtcnn package (TensorFlow), or its networks
# exported to ONNX (fersk.onnx.OnnxMTCNN, no TensorFlow).
_MTCNN_DETECTORS = ("mtcnn", "mtcnn-onnx")
_OPENCV_HINT = (
    "pip install 'opencv-python-headless<5' (OpenCV 4: OpenCV 5 no longer "
    "ships CascadeClassifier and the Haar cascade files)"
)
_MTCNN_HINT = "pip install mtcnn (it needs TensorFlow, which fersk already uses)"
# Smallest face side (pixels) each backend searches for: the cascades' 24x24
# training window and MTCNN's 12x12 proposal network.
_MIN_SIDE = {"skimage": 24, "opencv": 24, "mtcnn": 12, "mtcnn-onnx": 12}
_MTCNN_MAX_MIN_FACE = 20
# Longest side of the copy MTCNN searches in a large photo.
_MTCNN_MAX_SIDE = 640
# Longest side of the copy the cascades search in a large photo (unless
# the smallest face asked for would shrink below their 24-pixel window).
_CASCADE_MAX_SIDE = 1024
# Patches of more pixels than this are first averaged over blocks before
# the anti-aliased resize, which works in float64 (memory stays bounded).
_BIG_PIXELS = 1 << 22
# Images per task: small enough for progress reports and load balancing.
_MAX_CHUNK = 64
#: Largest ``size`` side: a crop is a network's input (48 to a few hundred
#: pixels); (100000, 100000) would be 10 GB a crop, found only at predict.
MAX_CROP_SIDE = 4096
# Most pixels (of the searched copies) sent to MTCNN in one batch: the
# pyramid's float32 tensors and first activations stay near 100 MB.
_MTCNN_BATCH_PIXELS = 1 << 21


class NoFaceWarning(UserWarning):
    """Warning issued when :class:`FaceCropper` finds no face in some images.

    The images are kept (cropped as ``on_no_face`` says); their indices are in
    ``FaceCropper.crop(X)[1].no_face_indices``.  Filter it as any warning::

        warnings.simplefilter("ignore", NoFaceWarning)

    Parameters
    ----------
    message : str
        How many images had no face and what was done with them.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from fersk.face import FaceCropper, NoFaceWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = FaceCropper().fit_transform(np.zeros((2, 64, 64), dtype=np.uint8))
    >>> [w.category.__name__ for w in caught]
    ['NoFaceWarning']
    """


# --------------------------------------------------------------------------
# Detector back ends, created lazily once per process (and so never pickled
# with the estimator: joblib workers build their own).


@functools.lru_cache(maxsize=None)
def _skimage_cascade():
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def _import_cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            f"detector='opencv' needs OpenCV, which is not installed: {_OPENCV_HINT}."
        ) from exc
    data_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not hasattr(cv2, "CascadeClassifier") or data_dir is None or not os.path.isfile(
        os.path.join(data_dir, "haarcascade_frontalface_default.xml")
    ):
        raise ImportError(
            f"detector='opencv' needs OpenCV's Haar cascades (CascadeClassifier "
            f"and cv2.data.haarcascades), which the installed OpenCV "
            f"{getattr(cv2, '__version__', '?')} lacks: {_OPENCV_HINT}."
        )
    return cv2


@functools.lru_cache(maxsize=None)
def _opencv_cascades():
    cv2 = _import_cv2()
    face = cv2.CascadeClassifier(
        os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    )
    eye = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_eye.xml"))
    if face.empty() or eye.empty():
        raise ImportError(
            f"OpenCV could not load its Haar cascade files from "
            f"{cv2.data.haarcascades}: reinstall it ({_OPENCV_HINT})."
        )
    return face, eye


def _import_mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError as exc:
        raise ImportError(
            f"detector='mtcnn' needs the mtcnn package, which is not installed "
            f"({exc}): {_MTCNN_HINT}."
        ) from exc
    return MTCNN


@functools.lru_cache(maxsize=None)
def _mtcnn_model():
    # On the CPU so that results are reproducible.
    return _import_mtcnn()(device="CPU:0")


def _check_backend(detector):
    """Fail early, with what to install, when a back end is unavailable."""
    if detector == "opencv":
        _import_cv2()
    elif detector == "mtcnn":
        _import_mtcnn()
    elif detector == "mtcnn-onnx":
        _onnx_mtcnn_model()


@functools.lru_cache(maxsize=None)
def _onnx_mtcnn_model():
    from fersk.onnx import OnnxMTCNN, _import_ort

    _import_ort()
    return OnnxMTCNN()


# 8-bit copy for the detectors that need one (OpenCV, MTCNN).
_to_uint8 = stretch_to_uint8


def _min_side(cfg, short, backend):
    """The smallest face searched for, in pixels (``min_face_size`` is
    pixels when an int, a fraction of the shorter side when a float)."""
    if isinstance(cfg.min_face_size, numbers.Integral):
        asked = int(cfg.min_face_size)
    else:
        asked = int(round(cfg.min_face_size * short))
    return max(_MIN_SIDE[backend], asked)


def _block_mean(image, factor):
    """Rounded means of ``factor`` x ``factor`` blocks of a uint8 image.

    Computed in strips of rows, so that no float copy of a large photo is
    made; the last rows and columns that do not fill a block are left out.
    """
    h, w = (s // factor for s in image.shape[:2])
    out = np.empty((h, w, *image.shape[2:]), dtype=np.uint8)
    rows = max(1, (1 << 20) // max(1, w * factor * factor))  # output rows per strip
    for r in range(0, h, rows):
        n = min(rows, h - r)
        strip = image[r * factor : (r + n) * factor, : w * factor]
        blocks = strip.reshape(n, factor, w, factor, *image.shape[2:])
        out[r : r + n] = np.rint(blocks.mean(axis=(1, 3)))
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


def _cascade_search(image, cfg, backend):
    """The copy a cascade searches and its scale, with the smallest face
    (pixels, in the copy): None when no face fits the image."""
    h, w = image.shape[:2]
    short = min(h, w)
    side = _min_side(cfg, short, backend)
    if side > short:
        return None
    # The copy's window of 24 pixels still finds the smallest face asked for.
    scale = min(1.0, max(_MIN_SIDE[backend] / side, _CASCADE_MAX_SIDE / max(h, w)))
    gray = _grey(_downscale(image, scale)).astype(np.float64)
    return gray, scale, max(_MIN_SIDE[backend], int(round(side * scale)))


def _detect_skimage(image, cfg):
    search = _cascade_search(image, cfg, "skimage")
    if search is None:
        return []
    gray, scale, side = search
    short = min(gray.shape)
    found = _skimage_cascade().detect_multi_scale(
        gray,
        scale_factor=cfg.scale_factor,
        step_ratio=cfg.step_ratio,
        min_size=(side, side),
        max_size=(short, short),
        min_neighbor_number=cfg.min_neighbors,
    )
    return [
        (d["r"] / scale, d["c"] / scale, d["height"] / scale, d["width"] / scale, None, None)
        for d in found
    ]


def _detect_opencv(image, cfg):
    cv2 = _import_cv2()
    face_cascade, eye_cascade = _opencv_cascades()
    search = _cascade_search(image, cfg, "opencv")
    if search is None:
        return []
    gray, scale, side = search
    short = min(gray.shape)
    g = cv2.equalizeHist(_to_uint8(gray))
    boxes = face_cascade.detectMultiScale(
        g,
        scaleFactor=cfg.scale_factor,
        minNeighbors=cfg.min_neighbors,
        minSize=(side, side),
        maxSize=(short, short),
    )
    faces = [(int(y), int(x), int(h), int(w), None, None) for x, y, w, h in boxes]
    if cfg.align:
        faces = [(r, c, h, w, _opencv_eyes(eye_cascade, g, r, c, h, w), None)
                 for r, c, h, w, _, _ in faces]
    return [
        (r / scale, c / scale, h / scale, w / scale,
         None if eyes is None else tuple((er / scale, ec / scale) for er, ec in eyes), None)
        for r, c, h, w, eyes, _ in faces
    ]


def _opencv_eyes(eye_cascade, g, r, c, h, w):
    """Eye centres (row, col) in the upper 60% of a face box, or None."""
    top = g[r : r + int(round(0.6 * h)), c : c + w]
    side = max(5, w // 8)
    eyes = eye_cascade.detectMultiScale(top, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    left = [e for e in eyes if e[0] + e[2] / 2 < w / 2]
    right = [e for e in eyes if e[0] + e[2] / 2 >= w / 2]
    if not left or not right:
        return None
    (lx, ly, lw, lh), (rx, ry, rw, rh) = (max(s, key=lambda e: e[2] * e[3]) for s in (left, right))
    return (
        (r + ly + lh / 2, c + lx + lw / 2),
        (r + ry + rh / 2, c + rx + rw / 2),
    )


@dataclass(frozen=True)
class _MtcnnSearch:
    """The copy of one photo that MTCNN searches, and how it maps back."""

    rgb: Any  # uint8 (h, w, 3): the photo, or its reduced copy
    scale: float  # the copy's pixels per photo pixel (at most 1)
    side: int  # smallest face kept, in the photo's pixels
    min_face: float  # mtcnn's min_face_size, in the copy's pixels
    pad: tuple = (0, 0)  # black border (rows, cols) added around the copy

    @property
    def key(self):
        """Searches of one key can go to MTCNN together (one batch)."""
        return self.rgb.shape, self.min_face


def _mtcnn_search(image, cfg):
    """What MTCNN searches in ``image``: an :class:`_MtcnnSearch`, or None
    when no face of the smallest size asked for fits the image."""
    h, w = image.shape[:2]
    short = min(h, w)
    side = _min_side(cfg, short, "mtcnn")
    if side > short:
        return None
    # Large photos are searched on a copy at most _MTCNN_MAX_SIDE pixels
    # long (the pyramid's cost grows with the area), unless that would
    # shrink the smallest face searched for below 20 pixels; boxes and
    # landmarks are mapped back to the original, which the crops come from.
    scale = min(1.0, max(_MTCNN_MAX_SIDE / max(h, w), _MTCNN_MAX_MIN_FACE / side))
    small = _downscale(image, scale)
    if small.ndim == 2:  # grey photos: stretched to 0..255, repeated as RGB
        rgb = np.stack([_to_uint8(small.astype(np.float64))] * 3, axis=-1)
    else:
        rgb = np.ascontiguousarray(small)
    # mtcnn 1.0 sizes its image pyramid as if min_face_size were at most 20
    # and fails (empty convolution) beyond it: search from 20 pixels and
    # drop the faces smaller than asked.
    min_face = min(max(_MIN_SIDE["mtcnn"], side * scale), _MTCNN_MAX_MIN_FACE)
    return _MtcnnSearch(rgb, scale, side, min_face)


def _padded(search, fraction):
    """The search on its copy framed by a black border of ``fraction`` of
    its height and width on each side: MTCNN misses faces that fill the
    whole image (aligned film frames, webcam close-ups) and finds them
    once the face has room around it."""
    rgb, scale, min_face = search.rgb, search.scale, search.min_face
    # The padded copy stays within the searched size (time and memory).
    shrink = _MTCNN_MAX_SIDE / ((1 + 2 * fraction) * max(rgb.shape[:2]))
    if shrink < 1:
        rgb = _downscale(rgb, shrink)
        scale *= rgb.shape[0] / search.rgb.shape[0]
        min_face = min(max(_MIN_SIDE["mtcnn"], search.side * scale), _MTCNN_MAX_MIN_FACE)
    h, w = rgb.shape[:2]
    pr, pc = int(round(fraction * h)), int(round(fraction * w))
    rgb = np.pad(rgb, ((pr, pr), (pc, pc), (0, 0)))
    return _MtcnnSearch(rgb, scale, search.side, min_face, (pr, pc))


def _stable_sort_by_scores(tensor, scores, ascending=True):
    """mtcnn's ``sort_by_scores``, with equal scores kept in their order."""
    return tensor[np.argsort(scores if ascending else -scores, kind="stable")]


_MTCNN_LOCK = threading.Lock()


@contextlib.contextmanager
def _stable_mtcnn_sort():
    """Run mtcnn with a stable sort of its boxes by score.

    mtcnn 1.0 sorts the boxes of a whole batch by score with NumPy's
    default (unstable) sort before each non-maximum suppression.  Equal
    scores are common (PNet's face probability saturates at 1.0 in
    float32), so which of two tied boxes survives depended on the other
    images of the batch: 4 of 61 web photos sent in batches of their size
    got other boxes than alone.  With a stable sort each image's boxes
    keep the order they have alone, so a batch gives every image exactly
    what a call on that image alone gives.  The sort is swapped in for
    fersk's calls only (under a lock), not for other users of mtcnn.
    """
    from mtcnn.utils import bboxes

    with _MTCNN_LOCK:
        saved = bboxes.sort_by_scores
        bboxes.sort_by_scores = _stable_sort_by_scores
        try:
            yield
        finally:
            bboxes.sort_by_scores = saved


@functools.lru_cache(maxsize=None)
def _mtcnn_batches_are_exact():
    """Whether the installed mtcnn has the sort :func:`_stable_mtcnn_sort`
    replaces (mtcnn 1.0); other versions get one image per call."""
    try:
        from mtcnn.utils import bboxes
    except ImportError:
        return False
    return callable(getattr(bboxes, "sort_by_scores", None))


def _detect_mtcnn_batch(searches, detector="mtcnn"):
    """MTCNN on searches of one key (same copy shape and ``min_face``), in
    one call: the faces of each, in the photo's pixels."""
    if detector == "mtcnn-onnx":  # its sorts are stable already
        found = _onnx_mtcnn_model().detect_faces(
            [s.rgb for s in searches], min_face_size=searches[0].min_face
        )
        return [_mtcnn_faces(f, s) for f, s in zip(found, searches)]
    model = _mtcnn_model()
    if _mtcnn_batches_are_exact():
        with _stable_mtcnn_sort():
            found = model.detect_faces(
                [s.rgb for s in searches], min_face_size=searches[0].min_face
            )
    else:
        found = [
            model.detect_faces([s.rgb], min_face_size=s.min_face)[0] for s in searches
        ]
    return [_mtcnn_faces(f, s) for f, s in zip(found, searches)]


def _detect_mtcnn_searches(searches, retry_padding, detector="mtcnn"):
    """:func:`_detect_mtcnn_batch`, then the searches without a face once
    more on a padded copy (:func:`_padded`) when ``retry_padding`` > 0."""
    found = _detect_mtcnn_batch(searches, detector)
    missed = [k for k, faces in enumerate(found) if not faces]
    if retry_padding and missed:
        again = _detect_mtcnn_batch(
            [_padded(searches[k], retry_padding) for k in missed], detector
        )
        for k, faces in zip(missed, again):
            found[k] = faces
    return found


def _mtcnn_faces(found, search):
    """mtcnn's faces of one copy as fersk's faces in the photo's pixels."""
    scale = search.scale
    pr, pc = search.pad
    faces = []
    for d in found:
        bx, by, bw, bh = (float(v) for v in d["box"])
        x, y, fw, fh = (bx - pc) / scale, (by - pr) / scale, bw / scale, bh / scale
        kp = d.get("keypoints") or {}
        eyes = None
        if "left_eye" in kp and "right_eye" in kp:
            # MTCNN gives (x, y); fersk uses (row, col).
            eyes = tuple(
                ((float(p[1]) - pr) / scale, (float(p[0]) - pc) / scale)
                for p in (kp["left_eye"], kp["right_eye"])
            )
        if fw > 0 and fh > 0 and max(fw, fh) >= search.side:
            faces.append((y, x, fh, fw, eyes, float(d.get("confidence", np.nan))))
    return faces


def _detect_mtcnn(image, cfg):
    search = _mtcnn_search(image, cfg)
    if search is None:
        return []
    return _detect_mtcnn_searches([search], cfg.retry_padding, cfg.detector)[0]


def _detect_callable(detector, image, index):
    found = detector(image)
    faces = []
    for k, face in enumerate(found if found is not None else []):
        face = tuple(face)
        if len(face) not in (4, 5):
            raise ValueError(
                f"detector returned {face!r} as face {k} of image {index}; each face "
                "must be (row, col, height, width) or (row, col, height, width, "
                "landmarks)."
            )
        box = np.asarray(face[:4], dtype=np.float64)
        if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
            raise ValueError(
                f"detector returned the box {tuple(face[:4])!r} for image {index}; "
                "row and col must be finite and height and width positive."
            )
        eyes = _parse_eyes(face[4], index) if len(face) == 5 else None
        faces.append((*box.tolist(), eyes, None))
    return faces


def _parse_eyes(landmarks, index):
    """Two eye positions (row, col) from a callable's landmarks, or None."""
    if landmarks is None:
        return None
    if hasattr(landmarks, "keys"):
        if "left_eye" not in landmarks or "right_eye" not in landmarks:
            raise ValueError(
                f"detector landmarks for image {index} are a mapping without "
                f"'left_eye' and 'right_eye' keys: {sorted(landmarks)!r}."
            )
        landmarks = (landmarks["left_eye"], landmarks["right_eye"])
    eyes = np.asarray(landmarks, dtype=np.float64)
    if eyes.shape != (2, 2) or not np.all(np.isfinite(eyes)):
        raise ValueError(
            f"detector landmarks for image {index} must be the two eyes as "
            f"((row, col), (row, col)) or a mapping with 'left_eye' and "
            f"'right_eye'; got {landmarks!r}."
        )
    return tuple(map(tuple, eyes.tolist()))


# --------------------------------------------------------------------------
# Geometry.


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


# --------------------------------------------------------------------------
# Reading and checking images.


def _is_path(item):
    return isinstance(item, (str, os.PathLike))


def _read_file(path, index):
    from PIL import Image

    try:
        with Image.open(path) as im:
            return pil_to_uint8(open_image(im))
    # DecompressionBombError (a huge image, refused by Pillow before it is
    # decoded) derives from Exception only: it is this file's problem too.
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"X[{index}]: cannot read an image from the file {os.fspath(path)!r} "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def _check_image(image, index, float_max=1.0):
    """Validate one list item that is an array; return it as uint8 (h, w) or (h, w, c)."""
    try:
        image = np.asarray(image)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"X[{index}] is not an image array: {exc}") from exc
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if image.dtype.kind not in "uif":
        raise ValueError(
            f"X[{index}] must be a numeric image array or a file path; got an "
            f"array of dtype {image.dtype}."
        )
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ValueError(
            f"X[{index}] must be a grey (height, width) or colour (height, width, "
            f"3 or 4) image; got shape {image.shape}."
        )
    if 0 in image.shape:
        raise ValueError(f"X[{index}] is an empty image of shape {image.shape}.")
    return array_to_uint8(image, f"X[{index}]", float_max)


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


# --------------------------------------------------------------------------
# The per-image work, run in joblib workers.


@dataclass(frozen=True)
class _Config:
    detector: Any
    size: tuple
    margin: float
    align: bool
    color: bool
    on_no_face: str
    min_face_size: Any
    precropped_max_side: Any
    scale_factor: float
    step_ratio: float
    min_neighbors: int
    dtype: Any
    retry_padding: float = 0.0


def _is_precropped(image, cfg):
    """Whether ``image`` is taken whole as a face crop, without detection."""
    return cfg.detector is None or (
        cfg.precropped_max_side is not None and max(image.shape[:2]) <= cfg.precropped_max_side
    )


def _load(item, index):
    """One input image as read: uint8, grey or RGB (alpha dropped).

    Detectors search their own reduced copies and crops convert only what
    they cut out, so a large photo is never held as a float image.
    """
    image = _read_file(item, index) if _is_path(item) else item
    if image.ndim == 3:
        image = image[..., 0] if image.shape[-1] == 1 else image[..., :3]
    return image


def _largest_first(faces):
    """Faces largest first (the face transform crops), ties in detection order."""
    order = sorted(range(len(faces)), key=lambda k: (-faces[k][2] * faces[k][3], k))
    return [faces[k] for k in order]


def _find_faces(image, index, cfg):
    """The faces of one image as read, largest first."""
    h, w = image.shape[:2]
    if _is_precropped(image, cfg):
        faces = [(0, 0, h, w, None, None)]
    elif cfg.detector == "skimage":
        faces = _detect_skimage(image, cfg)
    elif cfg.detector == "opencv":
        faces = _detect_opencv(image, cfg)
    elif cfg.detector in _MTCNN_DETECTORS:
        faces = _detect_mtcnn(image, cfg)
    else:
        faces = _detect_callable(cfg.detector, image, index)
    return _largest_first(faces)


def _face_record(face):
    """The public description of one detected face."""
    r, c, h, w, eyes, confidence = face
    return {
        "box": (float(r), float(c), float(h), float(w)),
        "confidence": None if confidence is None else float(confidence),
        "eyes": None if eyes is None else tuple(tuple(float(v) for v in e) for e in eyes),
    }


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


def _detect_one(image, faces, item, index, cfg):
    return [_face_record(face) for face in faces]


def _crop_every_face(image, faces, item, index, cfg):
    """Every face of one image: a list of (crop, record)."""
    out = []
    for k, face in enumerate(faces):
        crop, angle = _crop_face(image, face, cfg)
        out.append((crop, {"image": index, "face": k, **_face_record(face),
                           "angle": None if np.isnan(angle) else float(angle)}))
    return out


def _crop_one(image, faces, item, index, cfg):
    """Crop one image; return (crop, box, n_faces, angle_degrees)."""
    if faces:
        crop, angle = _crop_face(image, faces[0], cfg)
        return crop, tuple(float(v) for v in faces[0][:4]), len(faces), angle
    # No face: the on_no_face policy.
    h, w = image.shape[:2]
    out_h, out_w = cfg.size
    aspect = out_w / out_h
    if cfg.on_no_face == "raise":
        where = f" (file {os.fspath(item)!r})" if _is_path(item) else ""
        raise ValueError(
            f"No face found in X[{index}]{where} with detector="
            f"{_detector_name(cfg.detector)!r}; on_no_face='raise'. Use "
            "on_no_face='center' or 'whole' to keep such images, lower "
            "min_face_size, or detector=None for images that are face crops "
            "already."
        )
    if cfg.on_no_face == "center":
        if w < h * aspect:
            H, W = max(1, int(round(w / aspect))), w
        else:
            H, W = h, max(1, int(round(h * aspect)))
        patch = _cut(image, (h - H) // 2, (w - W) // 2, H, W)
    else:  # whole
        patch = image
    return _as_output(patch, cfg), (np.nan,) * 4, 0, np.nan


def _chunk(func, items, start, cfg):
    """``func(image, faces, item, index, cfg)`` for each item, in order.

    With MTCNN, images whose searched copies have the same shape (and
    smallest face) go to its networks together, in batches of at most
    _MTCNN_BATCH_PIXELS pixels: one call per network and pyramid level
    instead of one per image, the same faces (see
    :func:`_stable_mtcnn_sort`).  A large photo read from a file is
    searched and cropped at once, alone, so that at most one such photo is
    held at a time.  Results, and the first error, come in input order.
    """
    out = [None] * len(items)
    pending = []  # (k, image, search): searched later, in batches
    pending_pixels = 0

    def flush():
        nonlocal pending_pixels
        groups = {}
        for entry in pending:
            groups.setdefault(entry[2].key, []).append(entry)
        faces = {}
        for group in groups.values():
            found_all = _detect_mtcnn_searches(
                [e[2] for e in group], cfg.retry_padding, cfg.detector
            )
            for (k, _, _), found in zip(group, found_all):
                faces[k] = _largest_first(found)
        for k, image, _ in pending:  # in input order
            out[k] = func(image, faces[k], items[k], start + k, cfg)
        pending.clear()
        pending_pixels = 0

    for k, item in enumerate(items):
        index = start + k
        image = _load(item, index)
        if cfg.detector in _MTCNN_DETECTORS and not _is_precropped(image, cfg):
            search = _mtcnn_search(image, cfg)
            if search is None:
                faces = []
            elif not _is_path(item) or search.scale == 1.0:
                # an array (held anyway) or a photo no larger than its copy
                pending.append((k, image, search))
                pending_pixels += search.rgb.shape[0] * search.rgb.shape[1]
                if pending_pixels >= _MTCNN_BATCH_PIXELS:
                    flush()
                continue
            else:
                faces = _largest_first(
                    _detect_mtcnn_searches([search], cfg.retry_padding, cfg.detector)[0]
                )
        else:
            faces = _find_faces(image, index, cfg)
        try:
            out[k] = func(image, faces, item, index, cfg)
        except ValueError:
            flush()  # an earlier image's error comes first
            raise
    flush()
    return out


def _detector_name(detector):
    if detector is None or isinstance(detector, str):
        return detector
    return getattr(detector, "__name__", type(detector).__name__)


class FaceCropper(TransformerMixin, BaseEstimator):
    """Find the face in each image, crop it, optionally align it, resize it.

    Each input image gives exactly one output crop, in order: the largest
    face found, widened to the output's aspect ratio, enlarged by
    ``margin``, optionally rotated so that the eyes are level, and resized
    (with anti-aliasing) to ``size``.  Images without a face are never
    dropped: ``on_no_face`` says what they become.

    Parameters
    ----------
    detector : {'mtcnn', 'mtcnn-onnx', 'skimage', 'opencv'}, callable or None, \
            default='mtcnn'
        Face detector.

        - 'mtcnn': the MTCNN network of the ``mtcnn`` package (a dependency
          of fersk; its weights ship in the wheel), run on the CPU, with eye
          keypoints for alignment and a confidence per face.  Built once
          per process; images whose searched copies have the same size go
          through its networks together (see Notes).
        - 'mtcnn-onnx': the same networks exported to ONNX and run by
          ONNX Runtime, their glue in NumPy (:class:`fersk.onnx.OnnxMTCNN`):
          the same faces without TensorFlow.  Needs ``pip install
          'fersk[onnx]'`` and the networks exported once where TensorFlow
          is installed (``fersk export``).
        - 'skimage': scikit-image's multi-block LBP frontal-face cascade
          (:class:`skimage.feature.Cascade`), without TensorFlow.  It gives
          no landmarks, so ``align=True`` is refused.
        - 'opencv': OpenCV's Haar cascade ``haarcascade_frontalface_default``
          on the histogram-equalised grey image, and ``haarcascade_eye`` in
          the upper part of the face for alignment.  Needs OpenCV 4
          (``pip install 'opencv-python-headless<5'``; OpenCV 5 dropped the
          cascades).
        - a callable ``detector(image) -> list of faces``: ``image`` is one
          input image as given (``(h, w)`` grey or ``(h, w, 3)`` RGB, alpha
          dropped, its own dtype); each face is ``(row, col, height, width)``
          of its box, or ``(row, col, height, width, landmarks)`` with
          ``landmarks`` the two eye centres ``((row, col), (row, col))`` or a
          mapping with 'left_eye' and 'right_eye' ``(row, col)`` entries (or
          None).
        - None: no detection; every image is taken to be a face crop already
          (the whole image is the face box), e.g. FER-2013.  See Notes.

    size : int or tuple of (int, int), default=(48, 48)
        Output ``(height, width)``; an int means a square.  Each side is at
        most 4096 pixels (``fersk.face.MAX_CROP_SIDE``): larger is refused by
        :meth:`fit`, not found out of memory at prediction.
    margin : float, default=0.0
        Fraction of the face box added on each side (0.1 makes the crop 20%
        larger; negative values, above -0.5, crop tighter).  0 frames
        faces best for networks trained on FER-2013, with MTCNN's boxes on
        web photos and with the cascade's on FER faces (see Notes).
        Parts of the crop outside the image repeat the edge pixels.
    align : bool, default=False
        Rotate each crop about the face centre so that the eyes are level.
        Needs eye landmarks: 'mtcnn', 'opencv', or a callable that returns
        them; refused for 'skimage' and None.  A face whose eyes are not
        found is cropped unrotated (its angle in :meth:`crop`'s info is NaN).
    color : bool, default=False
        Output RGB crops ``(n, height, width, 3)`` instead of grey ones.
        Grey inputs are repeated over the three channels; alpha is dropped.
    on_no_face : {'whole', 'center', 'raise'}, default='whole'
        What an image without a face becomes: 'whole' the whole image
        resized to ``size`` (aspect not kept); 'center' the largest centred
        region with the output's aspect ratio, resized; 'raise' a
        ValueError naming the image (and its file).  With 'whole' and
        'center' a :class:`NoFaceWarning` gives the count and the first
        indices; :meth:`crop` returns them all.
    min_face_size : float or int, default=0.1
        Smallest face searched for: a float is a fraction of the image's
        shorter side, an int is pixels (as scikit-learn's ``max_features``
        reads floats and ints); never below the detector's own window (24
        pixels for the cascades, 12 for MTCNN).  Larger values are faster
        and ignore small background faces.  Large photos are searched on a
        reduced copy (longest side 1024 pixels for the cascades, 640 for
        MTCNN) unless that would shrink this smallest face below the
        detector's window: a 99-pixel face is found in a 10000 x 10000
        photo with ``min_face_size=99``.
    precropped_max_side : int or None, default=None
        Images whose height and width are both at most this many pixels
        are face crops already: the whole image is the face (as with
        ``detector=None``), without detection.  FER-2013's faces are 48 x
        48; the bundled models use 64, so their pipelines classify such
        crops exactly as their networks do.  None: every image goes
        through the detector.
    scale_factor : float, default=1.1
        Growth of the search window from one scale to the next (cascades
        only; 'opencv' ``scaleFactor``).  Smaller is slower and finds more.
    step_ratio : float, default=1.0
        Search step relative to the window scale ('skimage' only; 1 is the
        exhaustive search, values up to 1.5 are faster and nearly as good).
    min_neighbors : int, default=4
        Overlapping detections needed to accept a face (cascades only:
        scikit-image's ``min_neighbor_number``, OpenCV's ``minNeighbors``).
        Larger means fewer false faces.
    retry_padding : float, default=0.3
        MTCNN only: an image in which no face is found is searched once
        more with a black border of this fraction of its height and width
        on each side (boxes are given in the image's own pixels, and may
        reach past its edge, where crops repeat the edge pixels).  MTCNN
        misses faces that fill the whole image (aligned film frames such as
        SFEW's, webcam close-ups): with a 0.3 border it finds 91 % of SFEW
        2.0 Train's frames instead of 4 %.  0 disables the second search.
    float_max : float, default=1.0
        The value of white in float images: 1.0 reads them as
        scikit-image does (intensities in [0, 1]); 255.0 reads 0-255
        values stored as floats.  Float values outside ``[0, float_max]``
        are a ValueError (see the pixel rule in the Notes).
    image_shape : tuple of int, default=None
        Shape ``(height, width[, channels])`` of each row when ``X`` comes as
        flattened rows; None means square grey images.  One entry may be -1.
    n_jobs : int, default=None
        Processes (joblib) over chunks of images; None means 1, -1 all cores.
        Results do not depend on it (MTCNN's confidences up to their last
        float32 digit, see Notes).
    verbose : int, default=0
        When positive, progress (images done, images without a face,
        elapsed time) is printed to stderr after each chunk of images.

    Attributes
    ----------
    n_features_in_ : int
        Values per image, when :meth:`fit` saw an array (not set for a list
        of images, whose sizes may differ).
    feature_names_in_ : ndarray of str
        Names of features seen in :meth:`fit`, when ``X`` is a DataFrame.
    image_shape_ : tuple of int
        Shape of one image, when :meth:`fit` saw an array.

    See Also
    --------
    mtcnn.MTCNN : The default detector.
    skimage.feature.Cascade : The cascade of ``detector='skimage'``.
    LBPHistogram : LBP descriptors of the crops.

    Notes
    -----
    **Input.** ``X`` is a list (or tuple) of images of any sizes, each a
    grey ``(h, w)`` or colour ``(h, w, 3|4)`` array, or the path (str or
    :class:`os.PathLike`) of an image file (read with Pillow, EXIF
    orientation applied, as 8-bit grey or RGB; an unreadable file is a
    ValueError naming it); a 1-D array or Series of paths is a list too.
    ``X`` may also be an array: a batch ``(n, h, w)`` or ``(n, h, w, c)``, or
    flattened rows ``(n, h*w)`` read as in the rest of fersk (square grey
    images unless ``image_shape`` says otherwise).  A single image must be
    wrapped: ``[image]`` or ``image[np.newaxis]``; it is never read as a
    batch.  A 2-D array is read as rows by :meth:`fit`, and after it only
    when its rows have the ``n_features_in_`` values that :meth:`fit` saw,
    or when ``image_shape`` is set: given to a cropper never fitted on an
    array (as in the pretrained pipelines), ``(256, 256)`` is refused, not
    cropped as 256 images of 16x16.  A 3-D array ``(a, b, c)`` whose last
    axis is at most 4 and shorter than the one before is one image with
    channels (``(48, 48, 3)``, ``(40, 15, 3)``, ``(48, 48, 1)``) and is
    refused, unless the cropper was fitted on images of shape ``(b, c)``;
    pass grey images that narrow with their channel axis, ``(a, b, c, 1)``.

    **Output.** ``(n, height, width)`` grey or ``(n, height, width, 3)``
    colour crops, one per input in order; for flattened input, flattened
    rows ``(n, height * width[* 3])``.  Colour is converted to grey by
    luminance (:func:`fersk._validation.to_gray`).

    **Pixel values.** One rule for arrays and files, so that the same
    image gives the same answer however it is passed
    (:func:`fersk._image_files.array_to_uint8`): uint8 as is; bool as 0/255;
    uint16 by its high byte (as 16-bit files are read); other integer types
    by their values, which must lie in 0..255 (int64 from a list of Python
    ints is fine; 0..1020 is a ValueError: its scale is unknown).  A uint16
    image of at least 64 values all at most 255 is almost surely 8-bit values
    in a wider type, which the high byte would turn black: a
    :class:`UserWarning` says so and gives the fix, ``.astype(np.uint8)``.
    Floats as
    intensities from 0 to ``float_max`` (1.0: scikit-image's convention, so
    ``img_as_float(photo)`` gives the answer of ``photo``), values outside
    it a ValueError.  Crops are uint8 (the resized values rounded), the
    values the bundled networks were trained on.

    **Detection.** The default 'mtcnn' detector searches faces from
    ``min_face_size`` of the shorter side (at least 12 pixels) on the photo,
    or on a reduced copy at most 640 pixels long for large photos, and maps
    its boxes and eye keypoints back to the photo's pixels.  Its boxes are
    taller than wide (they are widened about their centre to the output's
    aspect ratio when cropped): on scikit-image's astronaut the face box is
    ``(64, 182, 107, 83)``.  It takes about 0.1-0.2 s for a 512x512
    photograph on one CPU core; images whose searched copies have the same
    size (48x48 faces, frames of a video, photos resized alike) go through
    its networks together, by up to 2 million pixels, which is several
    times faster for small images (about 10x for 48x48 faces) and gives the
    same boxes and eyes as one image at a time (confidences may differ in
    their last float32 digit).  The cascades ('skimage', 'opencv') search
    windows from ``min_face_size`` (at least 24 pixels) up to the shorter
    side, growing by ``scale_factor`` = 1.1 (scikit-image also steps by
    ``step_ratio`` = 1 times the window scale), and a face needs
    ``min_neighbors`` = 4 overlapping detections; on the astronaut
    scikit-image's box is ``(65, 175, 99, 99)``.  Cascades are frontal-face
    detectors: profiles and strongly tilted faces are often missed.  When
    several faces are found the largest is cropped.

    **Faces already cropped (FER-2013).**  Detectors need some context
    around a face, so on 48x48 FER-2013 faces, which the face fills, MTCNN
    finds a face in only about a fifth of the images (the cascade in about
    a quarter), and the rest fall to ``on_no_face``: the crops would be
    framed inconsistently.  For such datasets use ``detector=None``: no
    detection, each image is resized whole (the cropper is then a
    pass-through resize, with ``margin`` < 0 to zoom in), or
    ``precropped_max_side`` for a mix of crops and photos.  Conversely,
    FER-2013 frames faces as the scikit-image cascade's box with
    ``margin=0``: on FER faces padded so the cascade can find them, the
    median box side is 47.5 of 48 pixels, centred.  MTCNN's boxes are
    framed best with ``margin=0`` too (for networks trained on FER-2013, on
    web photos: benchmarks/RESULTS.md).

    **Pickling and parallelism.** The detectors are built lazily, once per
    process, and are never stored on the estimator, so a FaceCropper
    pickles (``joblib.dump``) and clones freely and joblib workers build
    their own (scikit-image's Cascade cannot be pickled at all).  A callable
    ``detector`` must itself be picklable for ``joblib.dump`` (a
    module-level function, not a lambda); ``n_jobs`` works with any.
    'mtcnn' (the default) loads TensorFlow and builds its networks in every
    worker (seconds), so ``n_jobs`` pays off only for long lists.  A list item may also be any object NumPy
    turns into an image array, e.g. a PIL image.

    The estimator is stateless: :meth:`fit` only validates the parameters
    and the input, and :meth:`transform` may be called without it.
    :meth:`transform` returns the crops only; :meth:`crop` returns what was
    found in each image too (boxes, face counts, images without a face,
    rotation angles), :meth:`detect` every face with its confidence and
    landmarks, :meth:`crop_faces` a crop of every face.  Nothing is stored
    on the estimator by any of them.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import FaceCropper
    >>> cropper = FaceCropper(size=(64, 64))
    >>> faces = cropper.fit_transform([data.astronaut()])
    >>> faces.shape, faces.dtype
    ((1, 64, 64), dtype('uint8'))
    >>> cropper.detect([data.astronaut()])[0][0]["box"]  # (row, col, height, width)
    (64.0, 182.0, 107.0, 83.0)

    Faces that are crops already, such as FER-2013's, need no detection:

    >>> fer_like = np.zeros((5, 48, 48), dtype=np.uint8)
    >>> FaceCropper(detector=None, size=(32, 32)).fit_transform(fer_like).shape
    (5, 32, 32)
    """

    _parameter_constraints = {
        "detector": [StrOptions(set(_BACKENDS)), callable, None],
        "size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "margin": [Interval(numbers.Real, -0.5, None, closed="neither")],
        "align": ["boolean"],
        "color": ["boolean"],
        "on_no_face": [StrOptions({"whole", "center", "raise"})],
        "min_face_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
        ],
        "precropped_max_side": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "scale_factor": [Interval(numbers.Real, 1, None, closed="neither")],
        "step_ratio": [Interval(numbers.Real, 0, None, closed="neither")],
        "min_neighbors": [Interval(numbers.Integral, 0, None, closed="left")],
        "retry_padding": [Interval(numbers.Real, 0, None, closed="left")],
        "float_max": [Interval(numbers.Real, 0, None, closed="neither")],
        "image_shape": [None, tuple, list],
        "n_jobs": [None, numbers.Integral],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        detector="mtcnn",
        *,
        size=(48, 48),
        margin=0.0,
        align=False,
        color=False,
        on_no_face="whole",
        min_face_size=0.1,
        precropped_max_side=None,
        scale_factor=1.1,
        step_ratio=1.0,
        min_neighbors=4,
        retry_padding=0.3,
        float_max=1.0,
        image_shape=None,
        n_jobs=None,
        verbose=0,
    ):
        self.detector = detector
        self.size = size
        self.margin = margin
        self.align = align
        self.color = color
        self.on_no_face = on_no_face
        self.min_face_size = min_face_size
        self.precropped_max_side = precropped_max_side
        self.scale_factor = scale_factor
        self.step_ratio = step_ratio
        self.min_neighbors = min_neighbors
        self.retry_padding = retry_padding
        self.float_max = float_max
        self.image_shape = image_shape
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the input; nothing is learnt.

        The detector's package is imported (an ImportError says what to
        install).  For an array, ``n_features_in_`` and ``image_shape_`` are
        recorded; for a list, each array item is checked (files are read only
        by :meth:`transform`).

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images (see Notes of :class:`FaceCropper`).
        y : None
            Ignored.

        Returns
        -------
        self : FaceCropper
            The cropper.
        """
        self._config(np.uint8)
        items = _as_image_list(X)
        if items is None:
            images, _ = validate_images(self, X, reset=True, image_shape=self.image_shape)
            array_to_uint8(images, "X", self.float_max)  # refused in fit as in transform
        else:
            for i, item in enumerate(items):
                if not _is_path(item):
                    _check_image(item, i, self.float_max)
            for name in ("n_features_in_", "feature_names_in_", "image_shape_"):
                if hasattr(self, name):
                    delattr(self, name)
        return self

    def transform(self, X):
        """Crop the face of every image of ``X``.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of any size (see Notes of :class:`FaceCropper`).  Flattened
            rows must have the number of features seen in :meth:`fit`.

        Returns
        -------
        crops : ndarray of shape (n_samples, height, width[, 3]) or \
                (n_samples, height * width[* 3])
            One crop per image, in order; flattened when ``X`` was; uint8
            (see the pixel rule in the Notes).

        Raises
        ------
        ValueError
            For invalid input, an unreadable file (named), or, with
            ``on_no_face='raise'``, an image without a face (named).
        """
        return self.crop(X)[0]

    def crop(self, X):
        """:meth:`transform`, with what was found in each image.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of any size (see Notes of :class:`FaceCropper`).

        Returns
        -------
        crops : ndarray
            As :meth:`transform` returns them.
        info : sklearn.utils.Bunch
            ``boxes`` (n_samples, 4): ``(row, col, height, width)`` of the
            face cropped from each image (the largest; before aspect and
            margin), NaN where none was found; ``n_faces`` (n_samples,):
            faces found per image (1 with ``detector=None``);
            ``no_face_indices``: the images without a face (cropped as
            ``on_no_face`` says); ``angles`` (n_samples,): degrees each crop
            was rotated by ``align`` (the eye line's angle, positive when
            the eye on the image's right is lower), NaN where it was not.
            Nothing is stored on the estimator, so one cropper can serve
            several threads.

        Examples
        --------
        >>> from skimage import data
        >>> from fersk import FaceCropper
        >>> crops, info = FaceCropper(size=(64, 64)).crop([data.astronaut()])
        >>> crops.shape, info.boxes
        ((1, 64, 64), array([[ 64., 182., 107.,  83.]]))
        """
        from sklearn.utils import Bunch

        images, flat = self._images(X)
        cfg = self._config(np.uint8)
        results = self._run(images, cfg, _crop_one)
        crops = np.stack([res[0] for res in results])
        n_faces = np.array([res[2] for res in results], dtype=np.intp)
        info = Bunch(
            boxes=np.array([res[1] for res in results], dtype=np.float64).reshape(-1, 4),
            n_faces=n_faces,
            no_face_indices=np.flatnonzero(n_faces == 0),
            angles=np.array([res[3] for res in results], dtype=np.float64),
        )
        n_missing = len(info.no_face_indices)
        if n_missing:
            shown = info.no_face_indices[:10].tolist()
            more = ", ..." if n_missing > 10 else ""
            what = "resized whole" if cfg.on_no_face == "whole" else "centre-cropped"
            warnings.warn(
                f"No face found in {n_missing} of {len(results)} images (indices "
                f"{str(shown)[1:-1]}{more}); they were {what} "
                f"(on_no_face={cfg.on_no_face!r}). FaceCropper.crop returns their "
                "indices.",
                NoFaceWarning,
                stacklevel=3,
            )
        return restore_layout(crops, flat), info

    def _images(self, X):
        """Validated images (uint8 arrays or paths) and whether X was flat rows."""
        self._validate_params()
        items = _as_image_list(X)
        if items is None:
            images, flat = validate_images(
                self, X, reset=False, image_shape=self.image_shape, check_shape=False
            )
            return array_to_uint8(images, "X", self.float_max), flat
        return [
            item if _is_path(item) else _check_image(item, i, self.float_max)
            for i, item in enumerate(items)
        ], False

    def detect(self, X):
        """Every face of every image: boxes, confidences, eye landmarks.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images or image files (see Notes of :class:`FaceCropper`).

        Returns
        -------
        faces : list of list of dict
            For each image, in order, its faces, largest first (empty when
            none is found), each a dict with ``"box"`` ``(row, col, height,
            width)`` in the image's pixels, ``"confidence"`` (MTCNN's score;
            None for the cascades, callables and ``detector=None``) and
            ``"eyes"`` (``((row, col), (row, col))``, or None when the
            detector gives no landmarks).  Nothing is stored on the
            estimator.

        Examples
        --------
        >>> from skimage import data
        >>> from fersk import FaceCropper
        >>> faces = FaceCropper().detect([data.astronaut()])
        >>> faces[0][0]["box"], round(faces[0][0]["confidence"], 3)
        ((64.0, 182.0, 107.0, 83.0), 0.999)
        """
        images, _ = self._images(X)
        return self._run(images, self._config(np.uint8), _detect_one)

    def crop_faces(self, X):
        """A crop of every face of every image, with what each one is.

        :meth:`transform` gives one crop per image (the largest face);
        this gives one per face, for photos of several people.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images or image files.

        Returns
        -------
        crops : ndarray of shape (n_faces, height, width[, 3])
            The faces, image by image, largest first within an image;
            uint8.
        faces : list of dict
            One per crop: ``"image"`` (index into ``X``), ``"face"`` (rank
            within the image, 0 the largest), ``"box"``, ``"confidence"``,
            ``"eyes"`` as in :meth:`detect`, and ``"angle"`` (degrees the
            crop was rotated by ``align``, or None).  Images without a face
            have no entry; :func:`predict_faces` lists them.

        Examples
        --------
        >>> import numpy as np
        >>> from skimage import data
        >>> from fersk import FaceCropper
        >>> crops, faces = FaceCropper().crop_faces([data.astronaut(), np.zeros((64, 64))])
        >>> crops.shape, [(f["image"], f["face"], f["box"]) for f in faces]
        ((1, 48, 48), [(0, 0, (64.0, 182.0, 107.0, 83.0))])

        The black image has no face, hence no entry.  scikit-image's
        cascade also "finds" a face on the suit; ``min_face_size=0.15`` (of
        the shorter side) drops it:

        >>> [f["box"] for f in FaceCropper("skimage").crop_faces([data.astronaut()])[1]]
        [(65.0, 175.0, 99.0, 99.0), (421.0, 405.0, 59.0, 59.0)]
        """
        images, _ = self._images(X)
        cfg = self._config(np.uint8)
        per_image = self._run(images, cfg, _crop_every_face)
        pairs = [pair for faces in per_image for pair in faces]
        shape = (0, *cfg.size) + ((3,) if cfg.color else ())
        crops = np.stack([c for c, _ in pairs]) if pairs else np.zeros(shape, np.uint8)
        return crops, [record for _, record in pairs]

    def _config(self, dtype):
        """Check the parameters' combination; the settings for the workers."""
        size = self.size
        if isinstance(size, numbers.Integral):
            size = (size, size)
        size = tuple(size)
        if len(size) != 2 or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
            for s in size
        ):
            raise ValueError(
                f"size must be (height, width) of positive ints; got {self.size!r}."
            )
        if max(size) > MAX_CROP_SIDE:
            raise ValueError(
                f"size must be at most {MAX_CROP_SIDE} pixels a side (a crop is a "
                f"network's input); got {self.size!r}."
            )
        if self.align and (self.detector is None or self.detector == "skimage"):
            raise ValueError(
                f"align=True needs eye landmarks, which detector={self.detector!r} "
                "does not give; use detector='opencv' "
                f"({_OPENCV_HINT}), detector='mtcnn' ({_MTCNN_HINT}) or a "
                "callable that returns landmarks, or set align=False."
            )
        _check_backend(self.detector)
        dtype = np.dtype(dtype)
        if dtype != np.uint8 and dtype != np.float32:
            dtype = np.dtype(np.float64)
        return _Config(
            detector=self.detector,
            size=(int(size[0]), int(size[1])),
            margin=float(self.margin),
            align=bool(self.align),
            color=bool(self.color),
            on_no_face=self.on_no_face,
            min_face_size=(
                int(self.min_face_size) if isinstance(self.min_face_size, numbers.Integral)
                else float(self.min_face_size)
            ),
            precropped_max_side=self.precropped_max_side,
            scale_factor=float(self.scale_factor),
            step_ratio=float(self.step_ratio),
            min_neighbors=int(self.min_neighbors),
            dtype=dtype,
            retry_padding=float(self.retry_padding),
        )

    def _run(self, images, cfg, func):
        """``func`` on every image, in chunks, in parallel when asked; in order."""
        n = len(images)
        n_workers = effective_n_jobs(self.n_jobs)
        step = max(1, min(_MAX_CHUNK, math.ceil(n / (4 * n_workers))))
        starts = range(0, n, step)
        tasks = (delayed(_chunk)(func, images[s : s + step], s, cfg) for s in starts)
        results = []
        t0 = time.perf_counter()
        n_missing = 0
        parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
        for chunk in parallel(tasks):
            results.extend(chunk)
            if self.verbose:
                # _crop_one gives (crop, box, n_faces, angle); the others a list of faces
                n_missing += sum(
                    (res[2] if isinstance(res, tuple) else len(res)) == 0 for res in chunk
                )
                print(
                    f"[FaceCropper] {len(results)}/{n} images "
                    f"{'cropped' if func is _crop_one else 'searched'}, "
                    f"{n_missing} without a face, {time.perf_counter() - t0:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
        return results

    def get_feature_names_out(self, input_features=None):
        """Names of the crop's pixels when the output is flattened rows.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the names seen in :meth:`fit` when given.

        Returns
        -------
        feature_names_out : ndarray of str
            ``pixel_row{i}_col{j}`` (grey) or ``{red,green,blue}_row{i}_col{j}``
            (``color=True``), in the order of the flattened crops.

        Examples
        --------
        >>> from fersk import FaceCropper
        >>> FaceCropper(size=(2, 2)).get_feature_names_out().tolist()
        ['pixel_row0_col0', 'pixel_row0_col1', 'pixel_row1_col0', 'pixel_row1_col1']
        """
        size = self._config(np.uint8).size
        if self.color:
            return image_feature_names(
                self, input_features, (*size, 3), lambda k: ("red", "green", "blue")[k]
            )
        return image_feature_names(self, input_features, size, lambda k: "pixel")

    def __sklearn_is_fitted__(self):
        # Stateless: transform needs nothing from fit.
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = []  # crops are uint8 (one pixel rule)
        tags.input_tags.positive_only = True
        return tags


def predict_faces(model, X):
    """Classify every face of every photo with a fitted pipeline.

    A fitted pipeline starting with a :class:`FaceCropper` (such as
    :func:`fersk.pretrained.load`'s) classifies one face per image, the
    largest; this finds every face (:meth:`FaceCropper.crop_faces`) and
    runs each crop through the rest of the pipeline.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        Fitted, its first step a :class:`FaceCropper`, its last a
        classifier with ``predict_proba``.
    X : list of (array-like or path) or array-like
        Photos or image files, as :class:`FaceCropper` takes them.

    Returns
    -------
    records : list of dict
        One per face, image by image and largest face first: ``"image"``
        (index into ``X``), ``"face"`` (rank in its image), ``"box"``
        ``(row, col, height, width)``, ``"confidence"``, ``"eyes"``,
        ``"label"`` (a class of the model) and ``"proba"`` (ndarray over
        ``model.classes_``).  An image without a face is not dropped: it
        has one record with ``"face"``, ``"box"``, ``"label"`` and
        ``"proba"`` set to None.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import pretrained, predict_faces
    >>> model = pretrained.load()
    >>> records = predict_faces(model, [data.astronaut(), np.zeros((100, 100))])
    >>> [(r["image"], r["face"], r["box"]) for r in records]  # MTCNN's box
    [(0, 0, (64.0, 182.0, 107.0, 83.0)), (1, None, None)]

    The bundled models take images of up to 64 pixels a side whole, as
    face crops (``precropped_max_side``): ``np.zeros((64, 64))`` would be
    one face, box ``(0.0, 0.0, 64.0, 64.0)``.
    >>> pretrained.info()["class_names"][records[0]["label"]]
    'happy'
    """
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or not isinstance(model.steps[0][1], FaceCropper):
        raise ValueError(
            "predict_faces needs a fitted Pipeline whose first step is a FaceCropper; "
            f"got {type(model).__name__}."
        )
    cropper = model.steps[0][1]
    rest = model[1:]
    crops, faces = cropper.crop_faces(X)
    proba = rest.predict_proba(crops) if len(crops) else np.zeros((0, len(model.classes_)))
    by_image = {}
    for face, p in zip(faces, proba):
        face = {**face, "label": model.classes_[int(np.argmax(p))], "proba": p}
        face.pop("angle")
        by_image.setdefault(face["image"], []).append(face)
    n = len(X) if hasattr(X, "__len__") else len(faces)
    records = []
    for i in range(n):
        records.extend(by_image.get(i) or [{
            "image": i, "face": None, "box": None, "confidence": None, "eyes": None,
            "label": None, "proba": None,
        }])
    return records
