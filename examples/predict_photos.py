"""Recognise expressions in photos with the bundled model, offline.

Loads :func:`fersk.pretrained.load` (a fitted ``FaceCropper -> CNN``
Pipeline), runs it on photos given on the command line - or, with none, on
scikit-image's astronaut, on the astronaut's face pasted into a brick
scene and on a face-less grass texture - and prints, per photo, the face box,
the emotion and the probabilities.  Photos without a detected face are
listed (``FaceCropper.crop`` returns them), never dropped: they are classified
whole, as the model's ``on_no_face="whole"`` policy says.

Usage::

    python examples/predict_photos.py [PHOTO ...]

For folders, videos, JSON/CSV output and annotated copies use the command
line: ``fersk predict PATH... --annotate out/``.
"""

import sys
import warnings

import numpy as np
from skimage import data, transform

from fersk import NoFaceWarning, pretrained


def demo_photos():
    """The astronaut, a face pasted into a textured scene, and a face-less texture."""
    face = data.astronaut()[40:200, 150:300].mean(axis=2)  # a grey face crop
    scene = np.asarray(transform.resize(data.brick(), (400, 400)) * 255, dtype=np.uint8)
    scene[120:280, 125:275] = face.astype(np.uint8)
    return {"astronaut": data.astronaut(), "face in a brick scene": scene, "grass": data.grass()}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    photos = {path: path for path in argv} or demo_photos()
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


if __name__ == "__main__":
    main()
