"""Recognise expressions in photos with the bundled model, offline.

Loads :func:`fersk.pretrained.load` (a fitted ``FaceCropper -> CNN``
Pipeline), runs it on photos given on the command line - or, with none, on
scikit-image's astronaut, on the astronaut's face pasted into a brick
scene and on a face-less grass texture - and prints, per photo, the face box,
the emotion and the probabilities.  Photos without a detected face are
listed (``FaceCropper.crop`` returns them), never dropped: they are classified
whole, as the model's ``on_no_face="whole"`` policy says.

Usage::

    python examples/predict_photos.py [-h] [PHOTO ...]

A photo that is missing or that Pillow cannot read is reported on stderr
before the model is loaded, and the script exits with status 2.

For folders, videos, JSON/CSV output and annotated copies use the command
line: ``fersk predict PATH... --annotate out/``.
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data, transform

from fersk import NoFaceWarning, pretrained


def demo_photos():
    """The astronaut, a face pasted into a textured scene, and a face-less texture."""
    face = data.astronaut()[40:200, 150:300].mean(axis=2)  # a grey face crop
    scene = np.asarray(transform.resize(data.brick(), (400, 400)) * 255, dtype=np.uint8)
    scene[120:280, 125:275] = face.astype(np.uint8)
    return {"astronaut": data.astronaut(), "face in a brick scene": scene, "grass": data.grass()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="predict_photos.py",
        description="Print the face box, the emotion and the three most probable emotions "
        "of each photo, with fersk's bundled model (offline). With no PHOTO: scikit-image's "
        "astronaut, the astronaut's face in a brick scene and a face-less grass texture.",
        epilog="For folders, videos, JSON/CSV output and annotated copies: "
        "fersk predict PATH... --annotate out/",
    )
    parser.add_argument("photos", nargs="*", metavar="PHOTO",
                        help="image files (JPEG, PNG, ...: whatever Pillow reads)")
    return parser.parse_args(argv)


def unreadable(path):
    """Why ``path`` cannot be read as a photo, or None when it can."""
    p = Path(path)
    if p.is_dir():
        return "is a folder, not a photo (fersk predict FOLDER reads folders)"
    if not p.is_file():
        return "no such file"
    try:
        with Image.open(p) as im:
            im.load()  # decode it all: a truncated file fails here, not in the model
    except (OSError, SyntaxError, ValueError) as exc:
        return f"cannot read an image from this file ({type(exc).__name__}: {exc})"
    return None


def main(argv=None):
    """Run the example; returns the exit status (0, or 2 for a photo that cannot be read)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problems = [(path, why) for path in args.photos if (why := unreadable(path)) is not None]
    for path, why in problems:
        print(f"predict_photos.py: {path}: {why}", file=sys.stderr)
    if problems:
        return 2
    photos = {path: path for path in args.photos} or demo_photos()
    model = pretrained.load()
    names = pretrained.info()["class_names"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoFaceWarning)
        # the pipeline's steps one by one, to keep the cropper's record of the boxes
        crops, info = model.named_steps["facecropper"].crop(list(photos.values()))
        proba = model[1:].predict_proba(crops)
    for (name, _), p, box in zip(photos.items(), proba, info.boxes):
        where = "no face found, whole image" if np.isnan(box).any() else f"face at {box.astype(int).tolist()}"
        top = np.argsort(p)[::-1][:3]
        print(f"{name}: {where}: {names[top[0]]} "
              f"({', '.join(f'{names[i]} {p[i]:.2f}' for i in top)})")
    for w in caught:
        print(f"warning: {w.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
