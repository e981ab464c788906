"""Face detectors behind one dispatch: the cascades, MTCNN, callables.

:func:`_search` is the one place that looks at ``detector``: an image
taken whole as a face crop gets its whole box, the cascades and callables
their faces at once, and MTCNN a search (:class:`_MtcnnSearch`) that
:func:`_chunk` sends to the networks in batches with other images' of
the same size.  The back ends are built lazily, once per process (and so
never pickled with the estimator: joblib workers build their own).

Faces are tuples ``(row, col, height, width, eyes, confidence)`` in the
photo's pixels; ``eyes`` is ``((row, col), (row, col))`` or None.
"""

import functools
import numbers
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._image_files import stretch_to_uint8
from ._geometry import _downscale, _grey
from ._inputs import _is_path, _load
from ._mtcnn_calls import (
    _graph_mtcnn_networks,
    _mtcnn_batches_are_exact,
    _numpy_mtcnn_image_steps,
    _stable_mtcnn_sort,
)

__all__ = []

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


# Longest side of the copy the cascades search in a large photo (unless
# the smallest face asked for would shrink below their 24-pixel window).
_CASCADE_MAX_SIDE = 1024


def _tunable(name):
    """A limit tests and benchmarks may set on the package (``fersk.face``),
    read at each use: ``_MTCNN_MAX_SIDE``, ``_MTCNN_BATCH_PIXELS``."""
    return getattr(sys.modules[__package__], name)


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


def _grey_in_rgb(rgb):
    """Whether the three channels of ``rgb`` are one grey picture."""
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


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
    scale = min(1.0, max(_tunable("_MTCNN_MAX_SIDE") / max(h, w), _MTCNN_MAX_MIN_FACE / side))
    small = _downscale(image, scale)
    if small.ndim == 3 and _grey_in_rgb(small):
        small = small[..., 0]  # one picture, one answer: a grey photo stored as RGB is grey
    if small.ndim == 2:  # grey photos: stretched to 0..255, repeated as RGB
        rgb = np.stack([_to_uint8(small.astype(np.float64))] * 3, axis=-1)
    else:
        rgb = np.ascontiguousarray(small)
    # mtcnn 1.0 sizes its image pyramid as if min_face_size were at most 20
    # and fails (empty convolution) beyond it: fersk's calls run its pyramid
    # from the level the smallest face needs (fersk._mtcnn_pyramid._pyramid_scales);
    # other mtcnn versions search from 20 pixels (_detect_mtcnn_batch). The
    # faces smaller than asked are dropped either way.
    min_face = max(_MIN_SIDE["mtcnn"], side * scale)
    return _MtcnnSearch(rgb, scale, side, min_face)


def _padded(search, fraction):
    """The search on its copy framed by a black border of ``fraction`` of
    its height and width on each side: MTCNN misses faces that fill the
    whole image (aligned film frames, webcam close-ups) and finds them
    once the face has room around it."""
    rgb, scale, min_face = search.rgb, search.scale, search.min_face
    # The padded copy stays within the searched size (time and memory).
    shrink = _tunable("_MTCNN_MAX_SIDE") / ((1 + 2 * fraction) * max(rgb.shape[:2]))
    if shrink < 1:
        rgb = _downscale(rgb, shrink)
        scale *= rgb.shape[0] / search.rgb.shape[0]
        min_face = max(_MIN_SIDE["mtcnn"], search.side * scale)
    h, w = rgb.shape[:2]
    pr, pc = int(round(fraction * h)), int(round(fraction * w))
    rgb = np.pad(rgb, ((pr, pr), (pc, pc), (0, 0)))
    return _MtcnnSearch(rgb, scale, search.side, min_face, (pr, pc))


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
        with _stable_mtcnn_sort(), _numpy_mtcnn_image_steps(), _graph_mtcnn_networks(model):
            found = model.detect_faces(
                [s.rgb for s in searches], min_face_size=searches[0].min_face
            )
    else:
        found = [
            model.detect_faces([s.rgb], min_face_size=min(s.min_face, _MTCNN_MAX_MIN_FACE))[0]
            for s in searches
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


def _detect_callable(detector, image, index):
    found = detector(image)
    faces = []
    for k, face in enumerate(found if found is not None else []):
        if np.isscalar(face):  # one box, not a list of boxes
            raise ValueError(
                f"detector returned {found!r} for image {index}; it must return a list of "
                "faces, each (row, col, height, width[, landmarks]): [box] for one face."
            )
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


def _largest_first(faces):
    """Faces largest first (the face transform crops), ties in detection order."""
    order = sorted(range(len(faces)), key=lambda k: (-faces[k][2] * faces[k][3], k))
    return [faces[k] for k in order]


def _search(image, index, cfg):
    """The one dispatch on ``cfg.detector``, for one image as read.

    Returns the image's faces (a list, in detection order) when they are
    known at once: the whole image for a face crop (:func:`_is_precropped`),
    the cascades' and a callable's faces, none when no face of the
    smallest size fits; for MTCNN, the :class:`_MtcnnSearch` to send to
    :func:`_detect_mtcnn_searches`, alone or batched with others'.
    """
    if _is_precropped(image, cfg):
        h, w = image.shape[:2]
        return [(0, 0, h, w, None, None)]
    if cfg.detector == "skimage":
        return _detect_skimage(image, cfg)
    if cfg.detector == "opencv":
        return _detect_opencv(image, cfg)
    if cfg.detector in _MTCNN_DETECTORS:
        search = _mtcnn_search(image, cfg)
        return [] if search is None else search
    return _detect_callable(cfg.detector, image, index)


def _chunk(func, items, start, cfg):
    """``func(image, faces, item, index, cfg)`` for each item, in order.

    Faces come from :func:`_search`, largest first.  MTCNN's searches of
    images whose copies have the same shape (and smallest face) go to its
    networks together, in batches of at most
    ``fersk.face._MTCNN_BATCH_PIXELS`` pixels: one call per network and
    pyramid level instead of one per image, the same faces (see
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
        try:
            image = _load(item, index)
            found = _search(image, index, cfg)
        except ValueError:
            flush()  # an earlier image's error (no face...) comes first
            raise
        if isinstance(found, _MtcnnSearch):
            if not _is_path(item) or found.scale == 1.0:
                # an array (held anyway) or a photo no larger than its copy
                pending.append((k, image, found))
                pending_pixels += found.rgb.shape[0] * found.rgb.shape[1]
                if pending_pixels >= _tunable("_MTCNN_BATCH_PIXELS"):
                    flush()
                continue
            found = _detect_mtcnn_searches([found], cfg.retry_padding, cfg.detector)[0]
        try:
            out[k] = func(image, _largest_first(found), item, index, cfg)
        except ValueError:
            flush()  # an earlier image's error comes first
            raise
    flush()
    return out


def _detector_name(detector):
    if detector is None or isinstance(detector, str):
        return detector
    return getattr(detector, "__name__", type(detector).__name__)
