"""Faces in the wild: loaders for the development sources beyond FER-2013.

Each loader returns the Bunch of :func:`fersk.datasets.load_fer2013`
(``images``, ``target``, ``filenames``...) plus ``source``, the domain of
every face, so that a user can group cross-validation by source
(``GroupKFold``, ``LeaveOneGroupOut``).  Faces are cut by the *same*
:class:`~fersk.FaceCropper` configuration that the bundled pipelines use at
prediction time (read from the default model's folder), so that a network
sees the same geometry when it trains as when it predicts.

Photos without a detected face are never dropped: they become what the
cropper's ``on_no_face`` says (the whole image for the bundled cropper),
exactly as at prediction time, and ``face_found`` marks them.
"""

import hashlib
import json
import os
import time
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from fersk._image_files import IMAGE_EXTENSIONS, file_stamp, open_image
from fersk._progress import log
from fersk.cache import cache_home

from ._cache import _cached, _digest
from ._common import _MAX_NAMED, FER2013_CLASSES, LOADER_CONSTRAINTS, _warn
from ._decoding import (_broken_links, _check_distinct, _entry_kind, _is_hidden,
                        _refuse_broken_links)
from ._fer2013 import load_fer2013

#: muxspace folder names -> FER-2013 labels.  ``contempt`` has no FER-2013
#: class: see ``contempt`` in :func:`load_muxspace`.
MUXSPACE_LABELS = {
    "anger": 0, "disgust": 1, "fear": 2, "happiness": 3,
    "sadness": 4, "surprise": 5, "neutral": 6,
}

#: The development sources :func:`load_in_the_wild` knows.
SOURCES = ("fer2013", "sfew", "expw", "muxspace")

# The parameters every loader of this module shares, checked alike.
_CROP_CONSTRAINTS = {
    "cropper": [None, object],
    **{k: LOADER_CONSTRAINTS[k] for k in ("cache", "cache_dir", "verbose", "return_X_y")},
}
# "2": MTCNN searches grey photos stored as RGB as grey ones (10 ExpW photos).
_CACHE_VERSION = "2"


@validate_params(
    # Which names and folders there are, pretrained._model_dir says.
    {"model": [str, os.PathLike, None]},
    prefer_skip_nested_validation=True,
)
def bundled_cropper(model=None):
    """The :class:`~fersk.FaceCropper` of a bundled pipeline, unfitted.

    Parameters
    ----------
    model : str, os.PathLike or None, default=None
        A bundled model's name or a model folder (see
        :func:`fersk.pretrained.load`); None is the default model.

    Returns
    -------
    cropper : FaceCropper
        With the parameters saved in the model's folder, so that faces cut
        for training have the geometry of faces cut at prediction time.

    Examples
    --------
    >>> from fersk.datasets import bundled_cropper
    >>> cropper = bundled_cropper()
    >>> cropper.detector, cropper.size, cropper.margin
    ('mtcnn', (48, 48), 0.0)
    """
    from fersk import FaceCropper, pretrained

    folder = pretrained._model_dir(model or pretrained.DEFAULT_MODEL)
    spec = json.loads((Path(folder) / "pipeline.json").read_text())
    first = spec["steps"][0]
    if not first["class"].endswith("FaceCropper"):
        raise ValueError(f"model {model!r} does not start with a FaceCropper.")
    params = {k: pretrained._decode(v, folder) for k, v in first["params"].items()}
    return FaceCropper(**params)


def _files(folder, classes):
    """(relative path, class folder) of every image under folder/<class>/;
    anything else there (other files, sub-folders) is named in a warning.
    Hidden names (``.*``, ``__*`` such as ``__MACOSX``) are left out."""
    out, skipped, seen, loose = [], [], {}, []
    # Hidden as the other loaders hide them: ".*" and "__*" (__MACOSX of a zip).
    entries = sorted((e for e in os.scandir(folder) if not _is_hidden(e.name)),
                     key=lambda e: e.name)
    # A class folder that is a broken link or a loop: its class gone, unsaid.
    _refuse_broken_links(folder, _broken_links(entries))
    # A class folder linking to another would list its images twice, under two labels.
    _check_distinct([e for e in entries if _entry_kind(e) == "dir"], str(folder))
    for entry in entries:
        name, sub = entry.name, Path(folder) / entry.name
        if not sub.is_dir():
            if name.lower().endswith(IMAGE_EXTENSIONS):
                loose.append(name)  # no class folder: no label
            continue
        if name.lower() not in classes:
            raise ValueError(
                f"unknown class folder {str(sub)!r}; expected folders among "
                f"{sorted(classes)}."
            )
        if name.lower() in seen:  # one class, two folders: as load_fer2013, not merged
            raise ValueError(
                f"Folder {str(folder)!r} has two folders for class {name.lower()!r}: "
                f"{seen[name.lower()]!r} and {name!r}."
            )
        seen[name.lower()] = name
        for file in sorted(os.listdir(sub)):
            if _is_hidden(file):
                continue
            if file.lower().endswith(IMAGE_EXTENSIONS) and (sub / file).is_file():
                out.append((f"{name}/{file}", name.lower()))
            else:  # a folder inside a class folder is named as one (trailing "/")
                skipped.append(f"{name}/{file}/" if (sub / file).is_dir() else f"{name}/{file}")
    if loose:
        _warn(f"{len(loose)} image file(s) outside class folders under {str(folder)!r} are "
              f"not loaded (no class): {', '.join(loose[:5])}{' ...' if len(loose) > 5 else ''}.")
    if skipped:  # never silently fewer samples than files
        _warn(f"{len(skipped)} entries of the class folders under {str(folder)!r} are not image "
              f"files ({', '.join(IMAGE_EXTENSIONS)}; folders inside a class folder are not "
              f"walked) and were not read: "
              f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}.")
    return out


def _settings(cropper, extra=""):
    """The crop settings a cache entry is for: the version, ``extra`` and
    the cropper's parameters (those that do not change a crop read from a
    file counted as their defaults: other settings of them share it)."""
    params = {**cropper.get_params(), "image_shape": None, "n_jobs": None, "verbose": 0}
    return f"{_CACHE_VERSION}|{extra}|{repr(sorted(params.items()))}"


def _key(root, entries, cropper, extra=""):
    """Cache key: the files (name, size, mtime and ctime: :func:`file_stamp`), the cropper, the version;
    None where the cropper cannot be named across processes (no cache)."""
    h = hashlib.sha256()
    if not (cropper.detector is None or isinstance(cropper.detector, str)):
        # A detector function or object: pickling names a function by its
        # module and name only (two scripts' ``def detector``, or one edited,
        # would share crops), an object by its state, not its code.  Nothing
        # can name it safely across processes: its crops are not cached.
        return None
    h.update(_settings(cropper, extra).encode())
    for rel in entries:
        st = os.stat(Path(root) / rel)
        # Nanoseconds: a photo rewritten within the same second is read anew.
        # surrogatepass: a name that is not valid UTF-8 (surrogate-escaped
        # bytes on Linux) has a key too; a valid name's key is unchanged.
        h.update(f"|{rel}:{st.st_size}:{file_stamp(st)}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _cached_crops(kind, root, key, cache, cache_dir, build, func, verbose, settings):
    """``build()``'s crops, through the cache of :mod:`fersk.datasets`.

    One entry per folder and crop settings: a new entry replaces the one of
    the same settings (the files changed), never another setting's (a load
    with another cropper cropped every photo again at each switch)."""
    prefix = (f"{kind}-{_digest(str(Path(root).resolve()))[:12]}"
              f"-{_digest(settings)[:8]}")
    if key is None and cache:
        _warn(f"{func}: the crops are not cached: the cropper's detector is a function or "
              "an object, which no later call could tell from an edited one; crops of the "
              "named detectors ('mtcnn', 'mtcnn-onnx', 'opencv', 'skimage', None) are cached.")
        cache = False
    return _cached(cache, cache_home(cache_dir), prefix, key, build, func, verbose)


def _crop_class_folders(kind, root, files, labels, cropper, cache, cache_dir, func, verbose):
    """The crops of ``files`` ((relative path, class folder), from
    :func:`_files`), labelled by ``labels[class folder]``, cached."""

    def build():
        crops, found, boxes = _crop_files(
            [str(Path(root) / f) for f, _ in files], cropper, func, verbose)
        return {"images": crops, "target": np.array([labels[c] for _, c in files]),
                "filenames": np.array([f for f, _ in files]), "face_found": found,
                "boxes": boxes}

    key = _key(root, [f for f, _ in files], cropper)
    return _cached_crops(kind, root, key, cache, cache_dir, build, func, verbose,
                         _settings(cropper))


def _crop_files(paths, cropper, func, verbose):
    """Crop each file with the cropper, in chunks so that progress shows."""
    from fersk.face import NoFaceWarning
    import warnings

    crops, found, boxes = [], [], []
    start, chunk = time.perf_counter(), 256
    for i in range(0, len(paths), chunk):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)  # recorded in face_found
            c, info = cropper.crop(list(paths[i:i + chunk]))
        crops.append(c)
        found.append(info.n_faces > 0)
        boxes.append(info.boxes)
        if verbose:
            done = min(i + chunk, len(paths))
            log(func, f"cropped {done}/{len(paths)} images, "
                      f"{int(sum((~f).sum() for f in found))} without a face, "
                      f"{time.perf_counter() - start:.0f} s")
    return np.concatenate(crops), np.concatenate(found), np.concatenate(boxes)


def _returned(bunch, return_X_y):
    """The loaders' result: the Bunch, or ``(images, target)`` (scikit-learn's
    ``return_X_y``, as :func:`fersk.datasets.load_fer2013`)."""
    return (bunch.images, bunch.target) if return_X_y else bunch


def _bunch(content, root, source, DESCR, **extra):
    n = len(content["target"])
    return Bunch(
        images=content["images"],
        data=content["images"].reshape(n, -1),
        target=content["target"].astype(np.int64),
        target_names=np.array(FER2013_CLASSES),
        source=np.full(n, source, dtype="<U16"),
        filenames=np.array([str(Path(root) / f) for f in content["filenames"]], dtype=str),
        face_found=content["face_found"].astype(bool),
        boxes=content["boxes"],
        DESCR=DESCR,
        **extra,
    )


@validate_params(
    {
        "root": [str, os.PathLike],
        **_CROP_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def load_sfew(root, *, cropper=None, cache=True, cache_dir=None, verbose=0, return_X_y=False):
    """Load SFEW 2.0 film frames (the Train split) as cropped faces.

    Parameters
    ----------
    root : str or os.PathLike
        The folder with one sub-folder per class, named as FER-2013's
        classes (``angry``, ``disgust``, ``fear``, ``happy``, ``sad``,
        ``surprise``, ``neutral``); any other folder is a ValueError.
    cropper : FaceCropper or None, default=None
        Cuts the faces; None is the bundled default pipeline's cropper
        (:func:`bundled_cropper`), the geometry the bundled models predict
        with.
    cache : bool, default=True
        Keep the crops in ``cache_dir`` (written atomically, keyed on the
        files and the cropper's parameters; not for a detector function or
        object, which no key can tell from an edited one: said in a warning).
    cache_dir : str, os.PathLike or None, default=None
        Where; None is ``$FERSK_CACHE`` or ``~/.cache/fersk``.
    verbose : int, default=0
        Progress of the cropping.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of the Bunch, as
        :func:`load_fer2013` does.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, h, w) uint8 crops, ``data`` (flattened),
        ``target`` (FER-2013 labels), ``target_names``, ``source`` (all
        ``"sfew"``), ``filenames``, ``face_found`` (False where the cropper
        found no face and applied its ``on_no_face`` policy: the frame is
        kept, never dropped), ``boxes`` (the face box in the frame, NaN
        where none) and ``DESCR``: :func:`load_fer2013`'s fields but its
        FER-2013-only ones (``usage``, ``row_ids``, ``skipped``: a frame
        that cannot be read is an error here), plus ``source``,
        ``face_found`` and ``boxes``.
    (images, target) : tuple
        When ``return_X_y`` is True.

    Examples
    --------
    >>> from fersk.datasets import load_sfew
    >>> sfew = load_sfew("../shared/data/sfew-train")  # doctest: +SKIP
    >>> sfew.images.shape, set(sfew.source)  # doctest: +SKIP
    ((859, 48, 48), {'sfew'})
    """
    func = "load_sfew"
    cropper = bundled_cropper() if cropper is None else cropper
    files = _files(root, {c: i for i, c in enumerate(FER2013_CLASSES)})
    if not files:
        raise ValueError(f"no images under {str(root)!r}.")
    labels = {c: i for i, c in enumerate(FER2013_CLASSES)}
    content = _crop_class_folders("sfew", root, files, labels, cropper, cache, cache_dir,
                                  func, verbose)
    return _returned(_bunch(content, root, "sfew",
                            f"SFEW 2.0 Train film frames from {root}: {len(files)} faces."),
                     return_X_y)


@validate_params(
    {
        "root": [str, os.PathLike],
        "contempt": [StrOptions({"exclude", "raise"})],
        "max_per_class": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        **_CROP_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def load_muxspace(root, *, cropper=None, contempt="exclude", max_per_class=None,
                  random_state=0, cache=True, cache_dir=None, verbose=0, return_X_y=False):
    """Load the muxspace ``facial_expressions`` web photos as cropped faces.

    The photos are not face crops: every one goes through the detector.

    Parameters
    ----------
    root : str or os.PathLike
        The folder with one sub-folder per class: ``anger``, ``disgust``,
        ``fear``, ``happiness``, ``sadness``, ``surprise``, ``neutral``
        and ``contempt``.
    cropper : FaceCropper or None, default=None
        As in :func:`load_sfew`.
    contempt : {"exclude", "raise"}, default="exclude"
        ``contempt`` has no FER-2013 class.  "exclude" leaves those photos
        out and lists them in ``excluded`` (nothing is left out silently);
        "raise" makes them a ValueError.
    max_per_class : int or None, default=None
        At most this many photos of any one class, drawn at random (the
        collection is half neutral and 40 % happy; cropping all of it takes
        long).  The others are listed in ``excluded``.  None keeps all.
        Each cap (and integer ``random_state``) has its own cache entry.
    random_state : int, RandomState instance or None, default=0
        Draws the photos kept by ``max_per_class``.
    cache, cache_dir, verbose, return_X_y
        As in :func:`load_sfew`.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`load_sfew` (``source`` is ``"muxspace"``), plus
        ``excluded``: the files left out and why.
    (images, target) : tuple
        When ``return_X_y`` is True.

    Examples
    --------
    >>> from fersk.datasets import load_muxspace
    >>> web = load_muxspace("../shared/data/muxspace-faces")  # doctest: +SKIP
    >>> len(web.target), len(web.excluded)  # doctest: +SKIP
    (13674, 9)
    """
    func = "load_muxspace"
    cropper = bundled_cropper() if cropper is None else cropper
    files = _files(root, {**MUXSPACE_LABELS, "contempt": -1})
    if not files:
        raise ValueError(f"no images under {str(root)!r}.")
    out = [(f, c) for f, c in files if c == "contempt"]
    if out and contempt == "raise":
        raise ValueError(
            f"{len(out)} contempt photo(s) under {str(root)!r} (first {out[0][0]!r}) "
            "have no FER-2013 class; pass contempt='exclude' to leave them out."
        )
    files = [(f, c) for f, c in files if c != "contempt"]
    excluded = [(str(Path(root) / f), "contempt: no FER-2013 class") for f, _ in out]
    if max_per_class is not None:
        rng = check_random_state(random_state)
        keep = set()
        for c in sorted({c for _, c in files}):
            members = [k for k, (_, cc) in enumerate(files) if cc == c]
            keep.update(rng.permutation(members)[:max_per_class].tolist())
        excluded += [(str(Path(root) / f), f"over max_per_class={max_per_class}")
                     for k, (f, _) in enumerate(files) if k not in keep]
        files = [fc for k, fc in enumerate(files) if k in keep]
    if not files:  # numpy's "need at least one array to concatenate" named nothing
        raise ValueError(
            f"no photo under {str(root)!r} is left to load: its {len(excluded)} photo(s) are "
            "all contempt (no FER-2013 class) or over max_per_class."
        )
    content = _crop_class_folders(_muxspace_kind(max_per_class, random_state), root, files,
                                  MUXSPACE_LABELS, cropper, cache, cache_dir, func, verbose)
    return _returned(_bunch(content, root, "muxspace",
                            f"muxspace web photos from {root}: {len(files)} faces, "
                            f"{len(excluded)} photos excluded.", excluded=excluded), return_X_y)


def _muxspace_kind(max_per_class, random_state):
    """The cache name of one selection of muxspace photos: a capped load has
    its own entry, so that loads with other caps do not replace each other's."""
    if max_per_class is None:
        return "muxspace"
    seed = random_state if isinstance(random_state, Integral) else "rng"
    return f"muxspace-m{max_per_class}-s{seed}"


def _iou(a, b):
    """Intersection over union of two (row, col, height, width) boxes."""
    r0, c0 = max(a[0], b[0]), max(a[1], b[1])
    r1 = min(a[0] + a[2], b[0] + b[2])
    c1 = min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, r1 - r0) * max(0.0, c1 - c0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _match_faces(rows, label_boxes, detections, min_iou):
    """Each labelled face's detection (a ``detect`` dict) or None: one to
    one within a photo, the pairs of largest intersection over union first
    (at least ``min_iou``), so that one detection never stands for two
    labelled faces (each would get the other's crop)."""
    pairs = []
    for i, (row, box, faces) in enumerate(zip(rows, label_boxes, detections)):
        for j, face in enumerate(faces):
            overlap = _iou(face["box"], box)
            if overlap > 0 and overlap >= min_iou:  # a box apart is another face
                pairs.append((-overlap, i, j, row["file"]))
    matched, taken = [None] * len(rows), set()
    for _, i, j, photo in sorted(pairs, key=lambda p: p[:3]):
        if matched[i] is None and (photo, j) not in taken:
            matched[i] = detections[i][j]
            taken.add((photo, j))
    return matched


@validate_params(
    {
        "root": [str, os.PathLike],
        "min_iou": [Interval(Real, 0, 1, closed="both")],
        **_CROP_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def load_expw(root, *, cropper=None, min_iou=0.4, cache=True, cache_dir=None, verbose=0,
              return_X_y=False):
    """Load ExpW web photos with labelled face boxes as cropped faces.

    Each labelled face is matched to the cropper's detections on its
    photo (the detected box with the largest intersection over union, if
    at least ``min_iou``; one to one, the best-overlapping pairs first, so
    that a detection never stands for two labelled faces), and that
    detected box is cut with the cropper's
    geometry: the box a user's photo would give at prediction time.  A
    labelled face that the detector misses is cut from its labelled box
    (clipped to the photo) with the same geometry, and ``face_found`` is
    False for it.

    Parameters
    ----------
    root : str or os.PathLike
        The folder with ``faces.csv`` (``file, face_id, x, y, w, h,
        label_id, label``) and ``images/``.  A row whose photo is not in
        ``images/``, or whose box is empty (``w`` or ``h`` not > 0) or
        wholly outside its photo, or whose ``label`` (optional) is not
        the name of its ``label_id``, is a ValueError naming the row.
    cropper : FaceCropper or None, default=None
        As in :func:`load_sfew`.
    min_iou : float in [0, 1], default=0.4
        Overlap for a detection to be the labelled face (0 takes the
        best-overlapping detection however little it overlaps, never one
        that does not overlap the labelled box at all).
    cache, cache_dir, verbose, return_X_y
        As in :func:`load_sfew`.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`load_sfew`, one entry per labelled face (``source`` is
        ``"expw"``, ``filenames`` repeat for photos with several faces),
        plus ``face_ids`` and ``label_boxes`` (the labelled boxes as
        ``(row, col, height, width)``).
    (images, target) : tuple
        When ``return_X_y`` is True.

    Examples
    --------
    >>> from fersk.datasets import load_expw
    >>> expw = load_expw("../shared/data/expw-dev")  # doctest: +SKIP
    >>> len(expw.target), expw.face_found.mean() > 0.8  # doctest: +SKIP
    (566, True)
    """
    import csv

    from fersk import FaceCropper

    func = "load_expw"
    # A plain float: np.float32(0.4) is not 0.4, and the cache key says which.
    min_iou = float(min_iou)
    cropper = bundled_cropper() if cropper is None else cropper
    table = Path(root) / "faces.csv"
    if not table.is_file():
        raise ValueError(f"{str(table)!r} not found: load_expw needs faces.csv and images/.")
    # utf-8-sig: a spreadsheet's byte-order mark hid the "file" column.
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames  # read inside: an empty file's is read on demand
    except UnicodeDecodeError as exc:
        raise ValueError(f"{table} is not UTF-8 text ({exc}); save it as UTF-8.") from None
    missing = [c for c in ("file", "face_id", "x", "y", "w", "h", "label_id")
               if c not in (header or [])]
    if missing:
        raise ValueError(f"{table}: no column {missing} (header: {header}).")
    if not rows:
        raise ValueError(f"{table} has a header and no face rows: no faces to load.")
    lines = {}
    for i, row in enumerate(rows):
        try:
            label = int(row["label_id"])
            x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
            face_id = int(row["face_id"])
        except (TypeError, ValueError):
            raise ValueError(
                f"{table}: row {i + 2} is not numbers where faces.csv has them: {row}."
            ) from None
        # One face, two rows: two samples of it (as load_ferplus, refused);
        # by the number, so that face 00 is face 0.
        key = (row.get("file"), face_id)
        if key in lines:
            raise ValueError(f"{table}: rows {lines[key]} and {i + 2} are both face "
                             f"{face_id} of {key[0]!r}; keep one.")
        lines[key] = i + 2
        if label not in range(7):
            raise ValueError(f"{table}: row {i + 2} has the unknown label {row['label_id']!r}.")
        # The name beside the number, where the table has it: an edited row
        # whose two disagree is not guessed at.
        name = (row.get("label") or "").strip().lower()
        if name and name != FER2013_CLASSES[label]:
            raise ValueError(
                f"{table}: row {i + 2} has label_id {label} ({FER2013_CLASSES[label]!r}) but "
                f"label {row['label']!r}; make them agree."
            )
        # The table's fault, named here (it was blamed on "the detector" later).
        if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
            raise ValueError(f"{table}: row {i + 2} has the box x={row['x']!r}, y={row['y']!r}, "
                             f"w={row['w']!r}, h={row['h']!r}: w and h must be > 0 and all "
                             "four finite.")
    # A photo that is not there was a FileNotFoundError of os.stat, without its row.
    absent = [(i + 2, row["file"]) for i, row in enumerate(rows)
              if not (Path(root) / "images" / (row["file"] or "")).is_file()
              or not row["file"]]
    if absent:
        raise ValueError(
            f"{table}: {len(absent)} row(s) name a photo that is not a file in "
            f"{str(Path(root) / 'images')!r}: "
            + "; ".join(f"row {r}: {f!r}" for r, f in absent[:_MAX_NAMED])
            + (" ..." if len(absent) > _MAX_NAMED else "") + "."
        )
    photos = sorted({row["file"] for row in rows})

    def build():
        from PIL import Image

        index = {p: k for k, p in enumerate(photos)}
        paths = [str(Path(root) / "images" / p) for p in photos]
        detected = []
        start = time.perf_counter()
        for i in range(0, len(paths), 64):
            detected += cropper.detect(paths[i:i + 64])
            if verbose:
                log(func, f"detected {min(i + 64, len(paths))}/{len(paths)} photos, "
                          f"{time.perf_counter() - start:.0f} s")
        label_boxes = []
        for i, row in enumerate(rows):
            x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
            # The upright photo's size: the detector and the cropper see it
            # with its EXIF orientation applied, and so are the boxes read.
            with Image.open(paths[index[row["file"]]]) as im:
                W, H = open_image(im).size
            r0, c0 = max(0.0, y), max(0.0, x)
            label_box = (r0, c0, min(H, y + h) - r0, min(W, x + w) - c0)
            if label_box[2] <= 0 or label_box[3] <= 0:  # the table's fault, not the detector's
                raise ValueError(
                    f"{table}: row {i + 2} has the box x={row['x']!r}, y={row['y']!r}, "
                    f"w={row['w']!r}, h={row['h']!r}, wholly outside its photo "
                    f"{row['file']!r} ({W} x {H} pixels, width x height)."
                )
            label_boxes.append(label_box)
        matched = _match_faces(rows, label_boxes, [detected[index[r["file"]]] for r in rows],
                               min_iou)
        crops, found, boxes = [], [], []
        for i, row in enumerate(rows):
            best = matched[i]
            hit = best is not None
            face = (*best["box"], best["eyes"]) if hit else label_boxes[i]
            one = FaceCropper(**{**cropper.get_params(), "detector": lambda _, face=face: [face],
                                 "precropped_max_side": None, "n_jobs": None, "verbose": 0})
            crops.append(one.fit_transform([paths[index[row["file"]]]])[0])
            found.append(hit)
            boxes.append(face[:4])
        return {"images": np.stack(crops), "target": np.array([int(r["label_id"]) for r in rows]),
                "filenames": np.array([f"images/{r['file']}" for r in rows]),
                "face_found": np.array(found), "boxes": np.array(boxes, dtype=float),
                "label_boxes": np.array(label_boxes, dtype=float),
                "face_ids": np.array([int(r["face_id"]) for r in rows])}

    extra = f"iou{min_iou}|one-to-one"
    key = _key(root, ["faces.csv"] + [f"images/{p}" for p in photos], cropper, extra)
    content = _cached_crops("expw", root, key, cache, cache_dir, build, func, verbose,
                            _settings(cropper, extra))
    return _returned(_bunch(content, root, "expw",
                            f"ExpW web photos from {root}: {len(rows)} labelled faces in "
                            f"{len(photos)} photos.",
                            face_ids=content["face_ids"], label_boxes=content["label_boxes"]),
                     return_X_y)


_LOADERS = {"sfew": ("sfew-train", load_sfew), "expw": ("expw-dev", load_expw),
            "muxspace": ("muxspace-faces", load_muxspace)}


@validate_params(
    {
        "data_home": [str, os.PathLike],
        "sources": [list, tuple],
        "fer2013_usage": [str, list, tuple],
        "muxspace_max_per_class": [Interval(Integral, 1, None, closed="left"), None],
        **_CROP_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
def load_in_the_wild(data_home, *, sources=SOURCES, fer2013_usage="Training", cropper=None,
                     muxspace_max_per_class=1500, cache=True, cache_dir=None, verbose=0,
                     return_X_y=False):
    """Several development sources as one set of faces, with their source.

    Parameters
    ----------
    data_home : str or os.PathLike
        The folder holding ``fer2013/``, ``sfew-train/``, ``expw-dev/`` and
        ``muxspace-faces/`` (``../shared/data`` beside the repository).
    sources : list of str, default=("fer2013", "sfew", "expw", "muxspace")
        Which, in this order, each at most once (a repeated name is a
        ValueError).
    fer2013_usage : str or list of str, default="Training"
        FER-2013's usages to include (:func:`load_fer2013`'s ``usage``).
        FER-2013 faces are 48 x 48 crops already; the bundled cropper takes
        them whole, as it does at prediction time.
    muxspace_max_per_class : int or None, default=1500
        :func:`load_muxspace`'s ``max_per_class`` (drawn with seed 0).
    cropper, cache, cache_dir, verbose, return_X_y
        As in :func:`load_sfew` (``(images, target)`` without the sources:
        for grouped cross-validation keep the Bunch).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images``, ``data``, ``target``, ``target_names``, ``source``,
        ``filenames``, ``face_found`` as in :func:`load_sfew`, concatenated
        in the order of ``sources``; ``excluded`` as in
        :func:`load_muxspace`.  Group cross-validation by ``source``:
        see the example.
    (images, target) : tuple
        When ``return_X_y`` is True.

    Examples
    --------
    >>> from sklearn.model_selection import LeaveOneGroupOut
    >>> from fersk.datasets import load_in_the_wild
    >>> wild = load_in_the_wild("../shared/data", sources=["sfew", "expw"])  # doctest: +SKIP
    >>> LeaveOneGroupOut().get_n_splits(groups=wild.source)  # doctest: +SKIP
    2
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ValueError(f"sources must be a non-empty list among {list(SOURCES)}; got "
                         f"{list(sources)!r}.")
    repeated = sorted({s for s in sources if list(sources).count(s) > 1})
    if repeated:  # each face once: a source named twice was loaded twice
        raise ValueError(f"sources has {repeated} more than once; name each source once "
                         f"(got {list(sources)!r}).")
    cropper = bundled_cropper() if cropper is None else cropper
    parts, excluded = [], []
    for source in sources:
        if source == "fer2013":
            fer = load_fer2013(Path(data_home) / "fer2013", usage=fer2013_usage, cache=cache,
                               cache_dir=cache_dir, verbose=verbose)
            # The bundled cropper takes 48x48 crops whole (face found); another
            # one may search them and miss: face_found says which.
            import warnings

            from fersk.face import NoFaceWarning

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NoFaceWarning)  # recorded in face_found
                images, info = cropper.crop(fer.images)
            n = len(images)
            parts.append(Bunch(images=images, target=fer.target, source=np.full(n, "fer2013"),
                               # paths, as the other sources' (not relative to fer2013/)
                               filenames=np.array([str(Path(data_home) / "fer2013" / f)
                                                   for f in fer.filenames])
                               if fer.filenames is not None
                               else np.array([f"row {i}" for i in fer.row_ids]),
                               face_found=info.n_faces > 0))
            continue
        folder, loader = _LOADERS[source]
        extra = {"max_per_class": muxspace_max_per_class} if source == "muxspace" else {}
        part = loader(Path(data_home) / folder, cropper=cropper, cache=cache,
                      cache_dir=cache_dir, verbose=verbose, **extra)
        excluded += part.get("excluded", [])
        parts.append(part)
    images = np.concatenate([p.images for p in parts])
    return _returned(Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=np.concatenate([p.target for p in parts]).astype(np.int64),
        target_names=np.array(FER2013_CLASSES),
        source=np.concatenate([p.source for p in parts]).astype("<U16"),
        filenames=np.concatenate([np.asarray(p.filenames, dtype=str) for p in parts]),
        face_found=np.concatenate([p.face_found for p in parts]),
        excluded=excluded,
        DESCR=f"{len(images)} faces from {list(sources)} under {data_home}.",
    ), return_X_y)
