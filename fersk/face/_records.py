"""What was found: per-face records and the no-face warning.

The per-image functions here run in joblib workers (through
:func:`fersk.face._detectors._chunk`): each gets one image as read and its
faces, largest first, and returns what :class:`FaceCropper`'s methods
gather.
"""

import os

import numpy as np

from .._warnings import warn_user
from ._detectors import _detector_name, _is_precropped
from ._geometry import _as_output, _crop_face, _cut
from ._inputs import _is_path

__all__ = ["NoFaceWarning"]


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


def _face_record(face):
    """The public description of one detected face."""
    r, c, h, w, eyes, confidence = face
    return {
        "box": (float(r), float(c), float(h), float(w)),
        "confidence": None if confidence is None else float(confidence),
        "eyes": None if eyes is None else tuple(tuple(float(v) for v in e) for e in eyes),
    }


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
    return _no_face_crop(image, item, index, cfg, cfg.on_no_face), (np.nan,) * 4, 0, np.nan


def _no_face_crop(image, item, index, cfg, policy):
    """The crop of an image without a face under ``policy`` ('whole',
    'center'), or the ValueError of 'raise'."""
    h, w = image.shape[:2]
    out_h, out_w = cfg.size
    aspect = out_w / out_h
    if policy == "raise":
        where = f" (file {os.fspath(item)!r})" if _is_path(item) else ""
        raise ValueError(
            f"No face found in X[{index}]{where} with detector="
            f"{_detector_name(cfg.detector)!r}; on_no_face='raise'. Use "
            "on_no_face='center' or 'whole' to keep such images, lower "
            "min_face_size, or detector=None for images that are face crops "
            "already."
        )
    if policy == "center":
        if w < h * aspect:
            H, W = max(1, int(round(w / aspect))), w
        else:
            H, W = h, max(1, int(round(h * aspect)))
        patch = _cut(image, (h - H) // 2, (w - W) // 2, H, W)
    else:  # whole
        patch = image
    return _as_output(patch, cfg)


def _crops_to_classify(image, faces, item, index, cfg, *, largest, on_no_face):
    """What :func:`predict_faces` classifies in one image: (crop, record) pairs.

    Every face (or the largest), each record's ``"kind"`` 'detected' or
    'precropped' (the image taken whole as a face crop); an image without
    a face gives its ``on_no_face`` crop ('whole', 'center'), kind 'none',
    or nothing ('skip').
    """
    kind = "precropped" if _is_precropped(image, cfg) else "detected"
    out = []
    for k, face in enumerate(faces[:1] if largest else faces):
        crop, _ = _crop_face(image, face, cfg)
        out.append((crop, {"image": index, "face": k, **_face_record(face), "kind": kind}))
    if not out and on_no_face != "skip":
        crop = _no_face_crop(image, item, index, cfg, on_no_face)
        out.append((crop, {"image": index, **_NO_FACE}))
    return out


# The record of an image without a face, before classification.
_NO_FACE = {"face": None, "box": None, "confidence": None, "eyes": None, "kind": "none"}


def _warn_no_face(no_face, n, policy):
    """The :class:`NoFaceWarning` naming the images without a face, at the
    user's line."""
    if not len(no_face):
        return
    shown = [int(i) for i in no_face[:10]]
    more = ", ..." if len(no_face) > 10 else ""
    what = "resized whole" if policy == "whole" else "centre-cropped"
    warn_user(
        f"No face found in {len(no_face)} of {n} images (indices "
        f"{str(shown)[1:-1]}{more}); they were {what} "
        f"(on_no_face={policy!r}). FaceCropper.crop returns their indices.",
        NoFaceWarning,
    )
