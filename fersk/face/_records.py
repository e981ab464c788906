"""What was found: per-face records, the no-face warning, :func:`predict_faces`.

The per-image functions here run in joblib workers (through
:func:`fersk.face._detectors._chunk`): each gets one image as read and its
faces, largest first, and returns what :class:`FaceCropper`'s methods
gather.
"""

import functools
import os
import warnings

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params

from ._detectors import _detector_name, _is_precropped
from ._geometry import _as_output, _crop_face, _cut
from ._inputs import _is_path

__all__ = ["NoFaceWarning", "predict_faces"]


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


def _warn_no_face(no_face, n, policy, stacklevel):
    """The :class:`NoFaceWarning` naming the images without a face."""
    if not len(no_face):
        return
    shown = [int(i) for i in no_face[:10]]
    more = ", ..." if len(no_face) > 10 else ""
    what = "resized whole" if policy == "whole" else "centre-cropped"
    warnings.warn(
        f"No face found in {len(no_face)} of {n} images (indices "
        f"{str(shown)[1:-1]}{more}); they were {what} "
        f"(on_no_face={policy!r}). FaceCropper.crop returns their indices.",
        NoFaceWarning,
        stacklevel=stacklevel + 1,
    )


@validate_params(
    {
        "model": "no_validation",  # what it must be is checked below, with the fix
        "X": "no_validation",  # images or files, as FaceCropper takes them
        "faces": [StrOptions({"all", "largest"})],
        "on_no_face": [StrOptions({"skip", "whole", "center"})],
    },
    prefer_skip_nested_validation=True,
)
def predict_faces(model, X, *, faces="all", on_no_face="skip"):
    """Classify every face of every photo with a fitted pipeline.

    A fitted pipeline starting with a :class:`FaceCropper` (such as
    :func:`fersk.pretrained.load`'s) classifies one face per image, the
    largest; this finds every face (or the largest, ``faces='largest'``),
    crops each as the pipeline's cropper does, and runs the crops through
    the rest of the pipeline.  Images the cropper takes whole as face crops
    (``detector=None``, ``precropped_max_side``) are one face each.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        Fitted, its first step a :class:`FaceCropper`, its last a
        classifier with ``predict_proba``.
    X : list of (array-like or path) or array-like
        Photos or image files, as :class:`FaceCropper` takes them.
    faces : {'all', 'largest'}, default='all'
        Every face of each image, or its largest only (the face
        ``model.predict`` classifies).
    on_no_face : {'skip', 'whole', 'center'}, default='skip'
        An image without a face: 'skip' gives it one record whose
        ``"label"`` and ``"proba"`` are None; 'whole' and 'center' classify
        the whole image or its centre, as :class:`FaceCropper`'s
        ``on_no_face`` does (the bundled pipelines' ``model.predict`` uses
        'whole'), and a :class:`NoFaceWarning` names the images.  Either
        way the record's ``"face"`` and ``"box"`` are None and its
        ``"kind"`` is 'none', so the label of an image without a face is
        never mistaken for a face's.

    Returns
    -------
    records : list of dict
        One per face, image by image and largest face first: ``"image"``
        (index into ``X``), ``"face"`` (rank in its image), ``"box"``
        ``(row, col, height, width)``, ``"confidence"``, ``"eyes"``,
        ``"kind"`` ('detected', 'precropped': the image taken whole as a
        face crop, or 'none': no face), ``"label"`` (a class of the model)
        and ``"proba"`` (ndarray over ``model.classes_``).  An image
        without a face is not dropped: it has one record (see
        ``on_no_face``).

    Raises
    ------
    ValueError
        When ``model`` is not such a pipeline, or for input the cropper
        refuses.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import pretrained, predict_faces
    >>> model = pretrained.load()
    >>> records = predict_faces(model, [data.astronaut(), np.zeros((100, 100))])
    >>> [(r["image"], r["face"], r["box"], r["kind"]) for r in records]  # MTCNN's box
    [(0, 0, (64.0, 182.0, 107.0, 83.0), 'detected'), (1, None, None, 'none')]
    >>> pretrained.info()["class_names"][records[0]["label"]]
    'happy'

    The bundled models take images of up to 64 pixels a side whole, as
    face crops (``precropped_max_side``): ``np.zeros((64, 64))`` would be
    one face, box ``(0.0, 0.0, 64.0, 64.0)``, kind 'precropped'.  With
    ``on_no_face='whole'`` the image without a face is classified as
    ``model.predict`` classifies it:

    >>> import warnings
    >>> from fersk.face import NoFaceWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", NoFaceWarning)
    ...     grey = predict_faces(model, [np.zeros((100, 100))], on_no_face="whole")
    ...     same = bool(grey[0]["label"] == model.predict([np.zeros((100, 100))])[0])
    >>> grey[0]["kind"], same
    ('none', True)
    """
    from sklearn.pipeline import Pipeline

    from ._cropper import FaceCropper

    if not isinstance(model, Pipeline) or not isinstance(model.steps[0][1], FaceCropper):
        raise ValueError(
            "predict_faces needs a fitted Pipeline whose first step is a FaceCropper; "
            f"got {type(model).__name__}."
        )
    cropper = model.steps[0][1]
    images, _ = cropper._images(X)
    cfg = cropper._config(np.uint8)
    work = functools.partial(
        _crops_to_classify, largest=faces == "largest", on_no_face=on_no_face
    )
    per_image = cropper._run(images, cfg, work)
    pairs = [pair for found in per_image for pair in found]
    if pairs:
        proba = model[1:].predict_proba(np.stack([crop for crop, _ in pairs]))
    else:
        proba = np.zeros((0, len(model.classes_)))
    by_image = {}
    for (_, record), p in zip(pairs, proba):
        record = {**record, "label": model.classes_[int(np.argmax(p))], "proba": p}
        by_image.setdefault(record["image"], []).append(record)
    if on_no_face != "skip":
        no_face = [i for i, found in by_image.items() if found[0]["kind"] == "none"]
        # 3: past validate_params's wrapper, to the caller's line.
        _warn_no_face(no_face, len(images), on_no_face, stacklevel=3)
    skipped = {"label": None, "proba": None}
    return [
        record
        for i in range(len(images))
        for record in by_image.get(i) or [{"image": i, **_NO_FACE, **skipped}]
    ]
