"""Loading a model, classifying faces and drawing them: shared by the commands.

``fersk demo`` and ``fersk predict`` classify and annotate images with
these helpers; ``fersk evaluate`` loads its model with :func:`_load_model`.
Importing this module loads scikit-learn and fersk's face detection, so
only the command modules import it, once their command runs.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.draw import rectangle
from sklearn.base import clone

from fersk import _image_files, pretrained
from fersk.face import FaceCropper, NoFaceWarning

from ._common import _UsageError

__all__ = []

# Images with both sides at most this many pixels are taken to be face
# crops already under --on-no-face auto (FER-2013's faces are 48x48).
_CROP_MAX_SIDE = 64
# Annotated copies of small images are enlarged to about this many pixels.
_ANNOTATE_MIN_SIDE = 192


@dataclass
class _Model:
    name: str
    pipeline: object
    cropper: object
    rest: object
    class_names: list
    classes: list
    info: dict


def _load_model(name, backend="keras"):
    """Load a pretrained model; unknown models are usage errors."""
    try:
        meta = pretrained.info(name)
        pipeline = pretrained.load(name, backend=backend)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None
    first_name, first = pipeline.steps[0]
    if not isinstance(first, FaceCropper) or len(pipeline.steps) < 2:
        raise _UsageError(
            f"--model: the model's first step must be a FaceCropper followed by a "
            f"classifier; {meta['name']} has steps {[s for s, _ in pipeline.steps]}."
        )
    return _Model(
        name=meta["name"] if name is None else str(name),
        pipeline=pipeline,
        cropper=first,
        rest=pipeline[1:],
        class_names=list(meta["class_names"]),
        classes=list(meta["classes"]),
        info=meta,
    )


@dataclass
class _Result:
    face: str  # "detected", "crop" (taken as a face crop) or "none"
    box: tuple  # (row, col, height, width) or None
    proba: object  # ndarray of shape (n_classes,) or None (not classified)
    index: object = None  # rank of the face in its image (0: the largest) or None


def _taken_whole(model, image, policy):
    """Whether ``image`` is a face crop already: under 'auto', the model's
    FaceCropper rule (``precropped_max_side``; the bundled models' 64 pixels
    for a model saved without one), so that the CLI answers as the
    pipeline does; the other policies detect in every image."""
    if policy != "auto":
        return False
    rule = model.cropper.precropped_max_side
    return max(image.shape[:2]) <= (_CROP_MAX_SIDE if rule is None else rule)


def _classify(model, images, policy):
    """Find the face of each image and classify it.

    ``images`` is a list of arrays of any sizes.  Under ``policy`` 'auto',
    images within the model's ``precropped_max_side`` are taken whole as
    face crops; larger ones (and all under the other policies) go through
    detection.  Images without a face are left unclassified ('auto',
    'skip') or classified whole / centre-cropped ('whole', 'center').
    """
    n = len(images)
    results = [None] * n
    crops = [None] * n
    is_crop = [_taken_whole(model, image, policy) for image in images]
    groups = {
        "crop": ([i for i in range(n) if is_crop[i]], {"detector": None}),
        "detect": (
            [i for i in range(n) if not is_crop[i]],
            {"on_no_face": policy if policy in ("whole", "center") else "whole",
             "precropped_max_side": None},
        ),
    }
    detects = model.cropper.detector is not None
    for kind, (indices, params) in groups.items():
        if not indices:
            continue
        cropper = clone(model.cropper).set_params(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)
            out, info = cropper.crop([images[i] for i in indices])
        for k, i in enumerate(indices):
            found = bool(info.n_faces[k])
            box = tuple(float(v) for v in info.boxes[k]) if found else None
            face = "detected" if kind == "detect" and detects else "crop"
            if not found:
                face = "none"
            results[i] = _Result(face, box, None)
            if found or policy in ("whole", "center"):
                crops[i] = out[k]
    todo = [i for i in range(n) if crops[i] is not None]
    if todo:
        proba = model.rest.predict_proba(np.stack([crops[i] for i in todo]))
        for k, i in enumerate(todo):
            results[i].proba = proba[k]
    return results


def _classify_all(model, images, policy):
    """Every face of each image, classified: a list of _Result per image.

    Detection runs once per image (:meth:`FaceCropper.crop_faces`); images
    taken whole ('auto' and small) or without a face give the one result
    :func:`_classify` gives them.
    """
    if model.cropper.detector is None:
        return [[r] for r in _classify(model, images, policy)]
    whole = {i for i, image in enumerate(images) if _taken_whole(model, image, policy)}
    detect = [i for i in range(len(images)) if i not in whole]
    per_image = [None] * len(images)
    if detect:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)
            cropper = clone(model.cropper).set_params(precropped_max_side=None)
            crops, faces = cropper.crop_faces([images[i] for i in detect])
        proba = model.rest.predict_proba(crops) if len(crops) else []
        for face, p in zip(faces, proba):
            i = detect[face["image"]]
            per_image[i] = (per_image[i] or []) + [
                _Result("detected", face["box"], np.asarray(p), face["face"])
            ]
    # Taken whole, or no face: as without --faces all (the policy decides).
    rest = [i for i in range(len(images)) if per_image[i] is None]
    if rest:
        for i, result in zip(rest, _classify(model, [images[i] for i in rest], policy)):
            per_image[i] = [result]
    return per_image


def _box_list(box):
    if box is None:
        return None
    return [int(v) if float(v).is_integer() else round(float(v), 1) for v in box]


def _record(model, file, result, **extra):
    """The JSON-able record of one classified (or face-less) image/frame."""
    rec = {"file": file, **extra, "face": result.face, "box": _box_list(result.box)}
    if result.index is not None:
        rec["face_index"] = result.index
    if result.proba is None:
        rec["emotion"] = None
        rec["probabilities"] = None
    else:
        rec["emotion"] = model.class_names[int(result.proba.argmax())]
        rec["probabilities"] = {
            name: round(float(p), 4) for name, p in zip(model.class_names, result.proba)
        }
    return rec


def _label(model, result):
    if result.proba is None:
        return "no face"
    k = int(result.proba.argmax())
    return f"{model.class_names[k]} {result.proba[k]:.2f}"


def _draw_box(rgb, box, thickness, color=(0, 255, 0)):
    """Draw the edges of ``box`` (row, col, height, width) into ``rgb``.

    Four filled bars of :func:`skimage.draw.rectangle` (its
    ``rectangle_perimeter`` needs matplotlib), clipped to the image.
    """
    h, w = rgb.shape[:2]
    r, c, bh, bw = box
    r0, c0 = int(round(r)), int(round(c))
    r1, c1 = r0 + max(1, int(round(bh))) - 1, c0 + max(1, int(round(bw))) - 1
    t = thickness - 1
    bars = (
        ((r0, c0), (r0 + t, c1)),
        ((r1 - t, c0), (r1, c1)),
        ((r0, c0), (r1, c0 + t)),
        ((r0, c1 - t), (r1, c1)),
    )
    for (ra, ca), (rb, cb) in bars:
        ra, rb = max(ra, 0), min(rb, h - 1)
        ca, cb = max(ca, 0), min(cb, w - 1)
        if ra <= rb and ca <= cb:
            rr, cc = rectangle((ra, ca), end=(rb, cb), shape=(h, w))
            rgb[rr, cc] = color


def _annotate(image, faces, path):
    """Write ``image`` with each face's box drawn and label written, as a PNG.

    ``faces`` is a list of ``(box, label)``; a None box (no face) puts its
    label in the top-left corner.

    The box is drawn with :func:`skimage.draw.rectangle`; the label needs
    matplotlib.  Returns whether the label could be written.
    """
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    rgb = rgb[..., :3]
    rgb = _image_files.stretch_to_uint8(rgb)  # display: the image's own range
    scale = max(1, math.ceil(_ANNOTATE_MIN_SIDE / min(rgb.shape[:2])))
    if scale > 1:  # small faces: enlarge (nearest neighbour) so the label is legible
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    else:
        rgb = rgb.copy()
    h, w = rgb.shape[:2]
    thickness = max(1, round(min(h, w) / 150))
    for box, _ in faces:
        if box is not None:
            _draw_box(rgb, [v * scale for v in box], thickness)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # matplotlib is optional: imported here, where its absence only drops the label
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        Image.fromarray(rgb).save(path)
        return False
    dpi = 100
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    font_px = max(10.0, min(h, w) / 25)
    for box, label in faces:
        r, c = (box[0] * scale, box[1] * scale) if box is not None else (0, 0)
        above = r >= font_px + 2 * thickness + 4
        ax.text(
            max(c, 0),
            r - thickness if above else max(r, 0) + thickness,
            label,
            fontsize=font_px * 72 / dpi,
            color="black",
            va="bottom" if above else "top",
            ha="left",
            bbox={"facecolor": (0, 1, 0), "edgecolor": "none", "pad": 1.5},
        )
    fig.savefig(path, dpi=dpi)
    return True
