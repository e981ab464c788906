"""Expressions in web photos: detector and margin against accuracy, end to end.

On the ExpW development photos (``../shared/data/expw-dev``), every
labelled face is looked for with each detector (:meth:`FaceCropper.detect`,
a face counts as found when a box overlaps it with IoU >= 0.4), the
matching box is cropped with each ``margin`` and classified by a bundled
model's network.  The labelled boxes themselves, cropped the same way, are
the reference row (what a perfect detector with the ExpW authors' framing
would give).  Accuracy "of all" counts faces not found as wrong.

This is how a detector's framing is calibrated to a network trained on
FER-2013's framing: the margin with the best accuracy on found faces.

Usage::

    python benchmarks/bench_in_the_wild.py [--model fer2013_vgg] [--n 538]
        [--detectors skimage,mtcnn] [--margins 0,0.1,0.2,0.3]
"""

import argparse
import time

import numpy as np

from _common import EXPW_DEV, expw_dev
from bench_detectors import iou

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def labelled(root, n):
    """Photos (sorted, first ``n``) with their labelled boxes and labels."""
    import csv

    faces = {}
    with open(root / "faces.csv", newline="") as f:
        for row in csv.DictReader(f):
            box = tuple(float(row[k]) for k in ("y", "x", "h", "w"))
            faces.setdefault(row["file"], []).append((box, int(row["label_id"])))
    files = sorted(faces)[:n]
    return [root / "images" / name for name in files], [faces[name] for name in files]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(EXPW_DEV), help="the expw-dev folder")
    parser.add_argument("--model", default=None, help="bundled model (default: fersk's default)")
    parser.add_argument("--n", type=int, default=10**6, help="photos (default: all)")
    parser.add_argument("--detectors", default="skimage,mtcnn")
    parser.add_argument("--margins", default="0,0.1,0.2,0.3")
    args = parser.parse_args(argv)
    root = expw_dev(args.data)

    from fersk import FaceCropper, pretrained
    from fersk._image_files import open_image, pil_to_uint8

    model = pretrained.load(args.model) if args.model else pretrained.load()
    network = model[1:]
    size = model.steps[0][1].size
    margins = [float(m) for m in args.margins.split(",")]
    paths, truth = labelled(root, args.n)
    from PIL import Image

    photos = []
    for p in paths:
        with Image.open(p) as im:
            photos.append(pil_to_uint8(open_image(im)))
    labels = np.array([label for faces in truth for _, label in faces])
    n_faces = len(labels)
    print(f"{len(photos)} photos, {n_faces} labelled faces; model "
          f"{args.model or pretrained.DEFAULT_MODEL}")

    def crops_for(boxes, margin):
        """A crop per labelled face from its matched box (None: not found)."""
        out = []
        for photo, face_boxes in zip(photos, boxes):
            for box in face_boxes:
                if box is None:
                    out.append(None)
                    continue
                cropper = FaceCropper(detector=lambda image, b=box: [b], size=size, margin=margin)
                out.append(cropper.transform([photo])[0])
        return out

    def score(crops):
        found = np.array([c is not None for c in crops])
        pred = np.full(n_faces, -1)
        if found.any():
            pred[found] = network.predict(np.stack([c for c in crops if c is not None]))
        correct = pred == labels
        return found.mean(), correct[found].mean() if found.any() else np.nan, correct.mean()

    rows = []
    reference = [[box for box, _ in faces] for faces in truth]
    for margin in margins:
        rows.append(("labelled boxes", margin, *score(crops_for(reference, margin)), np.nan))
    for name in args.detectors.split(","):
        cropper = FaceCropper(name)
        cropper.detect([np.zeros((80, 80), np.uint8)])  # builds the model, untimed
        start = time.perf_counter()
        found = cropper.detect(photos)
        rate = len(photos) / (time.perf_counter() - start)
        matched = []
        for faces, detections in zip(truth, found):
            row = []
            for box, _ in faces:
                best = max(detections, key=lambda d: iou(box, d["box"]), default=None)
                ok = best is not None and iou(box, best["box"]) >= 0.4
                row.append(tuple(best["box"]) if ok else None)
            matched.append(row)
        for margin in margins:
            rows.append((name, margin, *score(crops_for(matched, margin)), rate))
        print(f"{name}: done ({rate:.2f} photos/s)", flush=True)

    header = (f"{'boxes':<16} {'margin':>6} {'found':>7} {'acc. of found':>13} "
              f"{'acc. of all':>11} {'photos/s':>9}")
    print("\n" + header + "\n" + "-" * len(header))
    for name, margin, recall, acc_found, acc_all, rate in rows:
        speed = "" if np.isnan(rate) else f"{rate:9.2f}"
        print(f"{name:<16} {margin:>6.2f} {recall:>7.1%} {acc_found:>13.1%} {acc_all:>11.1%} "
              f"{speed:>9}")


if __name__ == "__main__":
    main()
