"""Loading a model, classifying faces and drawing them: shared by the commands.

``fersk demo`` and ``fersk predict`` classify images with the library's
:func:`fersk.face.predict_faces` (the model's own FaceCropper rules: its
``precropped_max_side``, the no-face policy of ``--on-no-face``) and
annotate them with these helpers; ``fersk evaluate`` loads its model with :func:`_load_model`.
Importing this module loads scikit-learn and fersk's face detection, so
only the command modules import it, once their command runs.
"""

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from skimage.draw import rectangle

from fersk import _image_files, pretrained
from fersk._labels import class_names_of
from fersk.face import FaceCropper, NoFaceWarning, predict_faces

from ._common import _EXIF_SOFTWARE, _has_mark, _replace_output, _temp_beside, _UsageError

__all__ = []

# The "Software" mark of fersk's annotated copies (PNG text, EXIF in JPEG and
# TIFF): a later run may replace them.
ANNOTATION_MARK = "fersk annotated copy"
# Annotated copies of small images are enlarged to about this many pixels.
_ANNOTATE_MIN_SIDE = 192
# ... but never past this on their longer side: a 1x5000 strip enlarged to
# 192 rows was a 184-million-pixel copy that Pillow then refused to reopen.
_ANNOTATE_MAX_SIDE = 4096


@dataclass
class _Model:
    name: str
    pipeline: object
    cropper: object
    rest: object
    class_names: list
    classes: list
    info: dict


def _load_model(name, backend="auto"):
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
        # The loaded model's, in its classes_ order: a folder may name none.
        class_names=class_names_of(pipeline),
        classes=[c.item() if hasattr(c, "item") else c for c in pipeline.classes_],
        info=meta,
    )


# The face column of an image without a face, by --on-no-face: the label
# (when there is one) is the whole image's or its centre's, never a face's.
_NO_FACE_COLUMN = {"whole": "none (whole image)", "center": "none (centre)", "skip": "none"}
#: Every value of the face column (the table's width).
_FACE_COLUMNS = ("detected", "crop", *_NO_FACE_COLUMN.values())


def _predict(model, images, policy, faces="largest"):
    """The library's :func:`fersk.face.predict_faces` on ``images``, by image.

    ``policy`` is ``--on-no-face`` ('whole', 'center' or 'skip'); images
    the model's FaceCropper takes whole (its ``precropped_max_side``) are
    face crops, as ``model.predict`` takes them.  Returns, for each image,
    its records (one when it has no face); the rows mark those without a
    face, so the NoFaceWarning is not repeated.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)
        records = predict_faces(model.pipeline, images, faces=faces, on_no_face=policy)
    per_image = [[] for _ in images]
    for rec in records:
        per_image[rec["image"]].append(rec)
    return per_image


def _face_column(rec, policy):
    """What the row's label was computed on: a face, a face crop, or none."""
    if rec["kind"] == "none":
        return _NO_FACE_COLUMN["skip" if rec["proba"] is None else policy]
    return "crop" if rec["kind"] == "precropped" else "detected"


def _box_list(box):
    if box is None:
        return None
    return [int(v) if float(v).is_integer() else round(float(v), 1) for v in box]


def _record(model, file, rec, policy, all_faces=False, **extra):
    """The JSON-able row of one record of :func:`_predict` (an image or frame)."""
    row = {"file": file, **extra, "face": _face_column(rec, policy), "box": _box_list(rec["box"])}
    if all_faces and rec["face"] is not None:
        row["face_index"] = rec["face"]
    if rec["proba"] is None:
        row["emotion"] = None
        row["probabilities"] = None
    else:
        row["emotion"] = model.class_names[int(rec["proba"].argmax())]
        row["probabilities"] = {
            name: round(float(p), 4) for name, p in zip(model.class_names, rec["proba"])
        }
    return row


def _label(model, rec):
    """The text drawn by a face: emotion and probability, or 'no face'."""
    if rec["proba"] is None:
        return "no face"
    k = int(rec["proba"].argmax())
    label = f"{model.class_names[k]} {rec['proba'][k]:.2f}"
    return label if rec["kind"] != "none" else f"{label} (no face)"


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


def _font(px):
    """Pillow's default font at about ``px`` pixels (its small bitmap font
    where this Pillow cannot scale it)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1, or no FreeType
        return ImageFont.load_default()


def _place_label(size, box, shape, gap):
    """Top-left ``(x, y)`` of a label of ``size`` (width, height) for ``box``
    (row, col, height, width, or None: the top-left corner) in an image of
    ``shape``: above the box where it fits, else inside its top, and always
    wholly inside the image (clipped labels are unreadable)."""
    h, w = shape[:2]
    tw, th = size
    if box is None:
        x, y = 0, 0
    else:
        r, c = box[0], box[1]
        x = c
        y = r - gap - th if r - gap - th >= 0 else r + gap
    x = min(max(0, int(round(x))), max(0, w - tw))
    y = min(max(0, int(round(y))), max(0, h - th))
    return x, y


def _annotate(image, faces, path):
    """Write ``image`` with each face's box drawn and label written, as a PNG.

    ``faces`` is a list of ``(box, label)``; a None box (no face) puts its
    label in the top-left corner.  Boxes are drawn with
    :func:`skimage.draw.rectangle`, labels with Pillow's default font on a
    green ground, inside the image.
    """
    from PIL import ImageDraw

    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    rgb = rgb[..., :3]
    rgb = _image_files.stretch_to_uint8(rgb)  # display: the image's own range
    scale = max(1, min(math.ceil(_ANNOTATE_MIN_SIDE / min(rgb.shape[:2])),
                       _ANNOTATE_MAX_SIDE // max(rgb.shape[:2])))
    if scale > 1:  # small faces: enlarge (nearest neighbour) so the label is legible
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    else:
        rgb = rgb.copy()
    h, w = rgb.shape[:2]
    thickness = max(1, round(min(h, w) / 150))
    for box, _ in faces:
        if box is not None:
            _draw_box(rgb, [v * scale for v in box], thickness)
    picture = Image.fromarray(rgb)
    draw = ImageDraw.Draw(picture)
    font = _font(max(10, round(min(h, w) / 25)))
    pad = 2
    for box, label in faces:
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        size = (right - left + 2 * pad, bottom - top + 2 * pad)
        scaled = None if box is None else [v * scale for v in box]
        x, y = _place_label(size, scaled, (h, w), thickness)
        draw.rectangle((x, y, x + size[0] - 1, y + size[1] - 1), fill=(0, 255, 0))
        draw.text((x + pad - left, y + pad - top), label, fill=(0, 0, 0), font=font)
    path = Path(path)
    tmp = _temp_beside(path)  # complete or not there: written aside, then renamed
    try:
        if path.suffix.lower() == ".png":  # marked, so a later run knows it wrote it
            info = PngInfo()
            info.add_text("Software", ANNOTATION_MARK)
            picture.save(tmp, format="PNG", pnginfo=info)
        else:  # JPEG, TIFF: marked in EXIF's Software tag
            exif = Image.Exif()
            exif[_EXIF_SOFTWARE] = ANNOTATION_MARK
            picture.save(tmp, format=Image.registered_extensions().get(path.suffix.lower()),
                         exif=exif)
        _replace_output(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise



def _is_fersk_annotation(path):
    """Whether ``path`` is an annotated image (PNG, JPEG, TIFF) that fersk wrote."""
    return _has_mark(path, ANNOTATION_MARK)
