"""How far the bundled cropper's face boxes stray from labelled ones: the
spread that ``fersk.degrade``'s box jitter (scale 0.9-1.1, shift up to 6 %
of the face) stands for.

The bundled pipelines' FaceCropper (MTCNN) on every ExpW development photo;
each labelled face (its box clipped to the photo) matched to one detected
box (IoU >= 0.4, greedy by IoU: ``bench_web_photos.match_boxes``).  Printed:
the centre's shift in rows and columns as a fraction of the labelled face's
size (the square root of its area), and the size ratio detected/labelled,
as quantiles, and around their medians (a labeller's box convention is a
constant offset; what jitter must cover is the spread about it).  The
labelled boxes are a person's, with their own noise: the spread measured is
an upper bound of the detector's own.

    python benchmarks/box_spread.py [--data ../shared/data]
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA  # noqa: E402
from bench_web_photos import clip_box, match_boxes  # noqa: E402


def spread(labelled, detected):
    """(rows shift, cols shift, size ratio) of matched pairs of
    (row, col, height, width) boxes, shifts in units of the labelled size."""
    a, b = np.asarray(labelled, float), np.asarray(detected, float)
    size = np.sqrt(a[:, 2] * a[:, 3])
    rows = ((b[:, 0] + b[:, 2] / 2) - (a[:, 0] + a[:, 2] / 2)) / size
    cols = ((b[:, 1] + b[:, 3] / 2) - (a[:, 1] + a[:, 3] / 2)) / size
    return rows, cols, np.sqrt(b[:, 2] * b[:, 3]) / size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args(argv)

    from PIL import Image

    from fersk.datasets import bundled_cropper

    root = Path(args.data) / "expw-dev"
    boxes = {}
    with open(root / "faces.csv", newline="") as f:
        for row in csv.DictReader(f):
            boxes.setdefault(row["file"], []).append(tuple(float(row[k]) for k in ("y", "x", "h", "w")))
    files = sorted(boxes)
    found = bundled_cropper().detect([str(root / "images" / f) for f in files])
    pairs = []
    for f, faces in zip(files, found):
        with Image.open(root / "images" / f) as im:
            width, height = im.size
        labelled = [clip_box(b, height, width) for b in boxes[f]]
        for i, j in match_boxes(labelled, [d["box"] for d in faces]).items():
            pairs.append((labelled[i], faces[j]["box"]))
    rows, cols, ratio = spread([a for a, _ in pairs], [b for _, b in pairs])
    print(f"ExpW development photos: {len(pairs)} of {sum(map(len, boxes.values()))} labelled "
          "faces matched (IoU >= 0.4)\n")
    print("| quantity | median | 25-75 % | 5-95 % | 5-95 % about the median |")
    print("|---|---|---|---|---|")
    for name, v, about in (("centre shift, rows (of the face's size)", rows, rows - np.median(rows)),
                           ("centre shift, columns", cols, cols - np.median(cols)),
                           ("size ratio detected / labelled", ratio, ratio / np.median(ratio))):
        q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
        lo, hi = np.quantile(about, [0.05, 0.95])
        print(f"| {name} | {q[2]:.3f} | {q[1]:.3f} .. {q[3]:.3f} | {q[0]:.3f} .. {q[4]:.3f} | "
              f"{lo:.3f} .. {hi:.3f} |")


if __name__ == "__main__":
    main()
