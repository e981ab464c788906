"""Face detection in web photos: recall and speed of FaceCropper's detectors.

On the ExpW development photos (``../shared/data/expw-dev``: web photos
with labelled face boxes), each detector finds faces with
:meth:`fersk.FaceCropper.detect` (every face of every photo); a labelled
face counts as found when a detected box overlaps it with
intersection-over-union >= 0.4 (the data's own rule).  All detectors run in
one process on the same photos, in turn, so their photos/s compare
(shared machines are noisy: read the ratios to the default).

``mtcnn`` is the default detector (``FaceCropper()``): photos of the same
size go through its networks together.  ``mtcnn (one photo per call)`` is
the same detector sending every photo alone, as fersk did before;
``mtcnn (full resolution)`` searches the whole photo, as fersk did before
large photos were searched on a copy of at most 640 pixels;
``mtcnn_whole`` (and ``mtcnn-onnx_whole``) runs MTCNN's whole 20-pixel
image pyramid, as fersk did before the pyramid started at the smallest face
asked for (``fersk.face._mtcnn_calls._PYRAMID_EXTRA_LEVELS``).  ``skimage``
was the default before MTCNN; speeds are given relative to it.

``mtcnn-onnx`` is the same MTCNN run by ONNX Runtime (``fersk[onnx]``).
``--frames 640x480`` resizes every photo to that size first (and its
labelled boxes with it), as a camera's or a video's frames come: all of one
size, so they go through MTCNN's networks together.  ``--repeat`` times
each detector that many times (best kept).

``--fer N`` also times N FER-2013 PublicTest faces (48x48, the same size
throughout), batched and one per call.

Usage::

    python benchmarks/bench_detectors.py [--n 200] [--detectors skimage,opencv,mtcnn] [--fer 140]
    python benchmarks/bench_detectors.py --frames 640x480 --detectors mtcnn,mtcnn-onnx --repeat 3
    python benchmarks/bench_detectors.py --n 1000 --detectors mtcnn_whole,mtcnn,mtcnn-onnx_whole,mtcnn-onnx
"""

import argparse
import csv
import time

import numpy as np

from _common import EXPW_DEV, expw_dev


def iou(a, b):
    """IoU of two (row, col, height, width) boxes."""
    r0, c0 = max(a[0], b[0]), max(a[1], b[1])
    r1, c1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, r1 - r0) * max(0.0, c1 - c0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def labelled_faces(root, n):
    """The first ``n`` photos (sorted) and their labelled (row, col, h, w) boxes."""
    faces = {}
    with open(root / "faces.csv", newline="") as f:
        for row in csv.DictReader(f):
            box = tuple(float(row[k]) for k in ("y", "x", "h", "w"))
            faces.setdefault(row["file"], []).append(box)
    files = sorted(faces)[:n]
    return [root / "images" / name for name in files], [faces[name] for name in files]


def as_frames(paths, truth, size):
    """Every photo resized to ``size`` ('640x480') as an RGB array, and its
    labelled boxes scaled with it."""
    from PIL import Image

    width, height = (int(v) for v in size.lower().split("x"))
    frames, boxes = [], []
    for path, faces in zip(paths, truth):
        with Image.open(path) as im:
            sy, sx = height / im.height, width / im.width
            frames.append(np.asarray(im.convert("RGB").resize((width, height), Image.BILINEAR)))
        boxes.append([(r * sy, c * sx, h * sy, w * sx) for r, c, h, w in faces])
    return frames, boxes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(EXPW_DEV), help="the expw-dev folder")
    parser.add_argument("--n", type=int, default=200, help="photos (default 200)")
    parser.add_argument("--detectors", default="skimage,opencv,mtcnn_full,mtcnn_single,mtcnn")
    parser.add_argument("--frames", default=None, help="WIDTHxHEIGHT: resize every photo to it")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many timings")
    parser.add_argument("--fer", type=int, default=0,
                        help="also time this many 48x48 FER-2013 faces (default 0: no)")
    args = parser.parse_args(argv)
    root = expw_dev(args.data)

    import fersk.face
    from fersk import FaceCropper
    from fersk.face import _mtcnn_calls

    paths, truth = labelled_faces(root, args.n)
    if args.frames:
        paths, truth = as_frames(paths, truth, args.frames)
    n_faces = sum(len(t) for t in truth)
    print(f"{len(paths)} photos, {n_faces} labelled faces from {root}")
    rows = []
    for name in args.detectors.split(","):
        detector = (
            "mtcnn-onnx" if name.startswith("mtcnn-onnx")
            else "mtcnn" if name.startswith("mtcnn") else name
        )
        full = name == "mtcnn_full"
        whole = name.endswith("_whole")
        single = name == "mtcnn_single"
        cropper = FaceCropper(detector)
        try:
            cropper.detect([np.zeros((64, 64), np.uint8)])  # builds the model, untimed
        except ImportError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        saved = fersk.face._MTCNN_MAX_SIDE, fersk.face._MTCNN_BATCH_PIXELS
        saved_levels = _mtcnn_calls._PYRAMID_EXTRA_LEVELS
        if whole:
            _mtcnn_calls._PYRAMID_EXTRA_LEVELS = 10**6
        if full:
            fersk.face._MTCNN_MAX_SIDE = 10**9
        if full or single:
            fersk.face._MTCNN_BATCH_PIXELS = 0  # every photo alone
        try:
            seconds = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                found = cropper.detect(paths)
                seconds = min(seconds, time.perf_counter() - start)
        finally:
            fersk.face._MTCNN_MAX_SIDE, fersk.face._MTCNN_BATCH_PIXELS = saved
            _mtcnn_calls._PYRAMID_EXTRA_LEVELS = saved_levels
        hits = sum(
            any(iou(t, f["box"]) >= 0.4 for f in faces)
            for boxes, faces in zip(truth, found) for t in boxes
        )
        extra = sum(len(f) for f in found) - hits
        rows.append((name, hits / n_faces, len(paths) / seconds, extra))
        print(f"{name}: {hits}/{n_faces} found in {seconds:.1f} s", flush=True)

    old = next((r for r in rows if r[0] == "skimage"), rows[0])
    header = (f"{'detector':<34} {'faces found':>11} {'photos/s':>9} {'speed vs skimage':>17} "
              f"{'other boxes':>11}")
    print("\n" + header + "\n" + "-" * len(header))
    labels = {
        "mtcnn_full": "mtcnn (full resolution)",
        "mtcnn_single": "mtcnn (<= 640 px, one photo/call)",
        "mtcnn": "mtcnn (default: batched)",
        "mtcnn-onnx": "mtcnn-onnx (ONNX Runtime)",
        "mtcnn_whole": "mtcnn (whole 20-px pyramid)",
        "mtcnn-onnx_whole": "mtcnn-onnx (whole 20-px pyramid)",
    }
    for name, recall, rate, extra in rows:
        print(f"{labels.get(name, name):<34} {recall:>10.1%} {rate:>9.2f} "
              f"{rate / old[2]:>17.2f} {extra:>11d}")
    if args.fer:
        fer_faces(args.fer)


def fer_faces(n):
    """The default detector on ``n`` 48x48 FER-2013 PublicTest faces, batched
    and one face per call: faces/s and whether the boxes agree."""
    import fersk.face
    from fersk import FaceCropper

    folder = EXPW_DEV.parent / "fer2013" / "test"
    files = sorted(folder.glob("*/*.jpg"))
    files = files[:: max(1, len(files) // n)][:n]  # spread over the classes
    if not files:
        print(f"no FER-2013 faces under {folder}")
        return
    from PIL import Image

    faces = [np.asarray(Image.open(f).convert("L")) for f in files]
    cropper = FaceCropper()
    rates = {}
    found = {}
    for name, budget in (("one face per call", 0), ("batched", fersk.face._MTCNN_BATCH_PIXELS)):
        saved = fersk.face._MTCNN_BATCH_PIXELS
        fersk.face._MTCNN_BATCH_PIXELS = budget
        try:
            start = time.perf_counter()
            found[name] = cropper.detect(faces)
            rates[name] = len(faces) / (time.perf_counter() - start)
        finally:
            fersk.face._MTCNN_BATCH_PIXELS = saved
    same = all(
        [f["box"] for f in a] == [f["box"] for f in b]
        for a, b in zip(found["one face per call"], found["batched"])
    )
    print(f"\n{len(faces)} FER-2013 faces (48x48), default detector: "
          + ", ".join(f"{k} {v:.1f} faces/s" for k, v in rates.items())
          + f" ({rates['batched'] / rates['one face per call']:.1f}x); "
          f"{sum(map(len, found['batched']))} faces found; same boxes: {same}")


if __name__ == "__main__":
    main()
