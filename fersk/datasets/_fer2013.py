"""FER-2013 from Kaggle's ``fer2013.csv`` or from its image folders."""

import csv
import os
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import PredefinedSplit
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

from fersk._image_files import file_stamp, walk_files
from fersk._progress import log
from fersk.cache import cache_home

from ._cache import _CACHE_VERSION, _cached, _digest
from ._common import (
    _CLASS_INDEX,
    _MAX_NAMED,
    _N_PIXELS,
    _USAGE_CANON,
    FER2013_CLASSES,
    FER2013_SHAPE,
    FER2013_USAGES,
    IMAGE_EXTENSIONS,
    LOADER_CONSTRAINTS,
    _apply_errors_policy,
    _check_usages,
    _decoding_progress,
    _resolve_n_jobs,
    _warn,
)
from ._decoding import READ_FAILURE, _check_distinct, _decode_files, _has_extension, _subdirs

FER2013_DESCR = """\
FER-2013 facial expression dataset
----------------------------------

35,887 grey 48x48 face images, each labelled with one of seven expressions
(0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral), from
the ICML 2013 workshop challenge "Challenges in Representation Learning:
Facial Expression Recognition" (Kaggle).  The faces were found by Google
image search and registered automatically, so they are roughly centred and
fill the frame.  Each sample belongs to one usage: Training (28,709),
PublicTest (3,589, the validation set of the competition) or PrivateTest
(3,589, the final test set).

Forms read by ``fersk.datasets.load_fer2013``:

* ``fer2013.csv`` (Kaggle): columns ``emotion,pixels,Usage``; pixels are
  2,304 space-separated grey values, row by row.
* image folders: ``<split>/<class>/<Usage>_<id>.<ext>`` with class folders
  angry, disgust, fear, happy, sad, surprise, neutral, the usage coming from
  the file-name prefix (``Training_``, ``PublicTest_``, ``PrivateTest_``).

Kaggle protocol: train on Training, tune on PublicTest, report PrivateTest
(``fersk.datasets.fer2013_predefined_split``).  Known issues: some images
are not faces or are mislabelled, and a few hundred training images are
near-duplicates of test images; FER+ (Barsoum et al., 2016) relabelled the
same pixels by crowd-sourcing.

Reference: I. J. Goodfellow et al., "Challenges in Representation Learning:
A report on three machine learning contests", ICONIP 2013 / Neural Networks
64 (2015) 59-63.  Released for research through the Kaggle competition.
"""


def _cache_prefix(kind, source, usages):
    """Cache files of one FER-2013 source and selection of usages (a new
    key replaces the older file of the same prefix)."""
    return f"fer2013-{kind}-{_digest(str(source))[:12]}-{'+'.join(usages)}"


# --------------------------------------------------------------------------
# FER-2013: image folders


def _fer_folder_files(root, usages, extensions):
    """List the FER image files under ``root``.

    Returns ``(files, bad, loose)``: ``files`` a list of (rel, full, size,
    mtime, label, usage) of the selected usages; ``bad`` (rel, reason) for
    files whose name carries no FER usage; ``loose`` image files outside
    class folders (not loaded).
    """
    dirs, root_files = _subdirs(root)
    if not dirs:
        raise ValueError(
            f"path {str(root)!r} has no sub-folders: expected the FER-2013 image "
            f"folder layout <split>/<class>/<file> (e.g. train/angry/"
            f"Training_123.jpg) or <class>/<file>, or the Kaggle fer2013.csv."
        )
    is_class = [d.name.lower() in _CLASS_INDEX for d in dirs]
    if all(is_class):
        splits = [(root, dirs)]
        loose = [f.name for f in root_files if _has_extension(f.name, extensions)]
    elif any(is_class):
        raise ValueError(
            f"path {str(root)!r} mixes class folders "
            f"{[d.name for d, c in zip(dirs, is_class) if c]} with other folders "
            f"{[d.name for d, c in zip(dirs, is_class) if not c]}; expected either "
            f"only split folders (train/, test/...) or only class folders "
            f"{list(FER2013_CLASSES)}."
        )
    else:
        splits = []
        loose = [f.name for f in root_files if _has_extension(f.name, extensions)]
        for split in dirs:
            class_dirs, split_files = _subdirs(split.path)
            unknown = [d.name for d in class_dirs if d.name.lower() not in _CLASS_INDEX]
            if unknown or not class_dirs:
                raise ValueError(
                    f"Unknown class folder(s) {unknown} in {split.path!r}: FER-2013 "
                    f"class folders are {list(FER2013_CLASSES)} (any case)."
                    if unknown
                    else f"Folder {split.path!r} has no class folders "
                    f"{list(FER2013_CLASSES)}; expected <split>/<class>/<file>."
                )
            splits.append((split.path, class_dirs))
            loose += [
                f"{split.name}/{f.name}" for f in split_files
                if _has_extension(f.name, extensions)
            ]

    _check_distinct(dirs, "load_fer2013")
    classes = _check_distinct([d for _, class_dirs in splits for d in class_dirs], "load_fer2013")
    claimed = {}  # one folder linked from two class folders: two labels, or a face in two splits
    files, bad = [], []
    for split_path, class_dirs in splits:
        seen = {}
        for d in class_dirs:
            label = _CLASS_INDEX[d.name.lower()]
            if label in seen:
                raise ValueError(
                    f"Folder {split_path!r} has two folders for class "
                    f"{FER2013_CLASSES[label]!r}: {seen[label]!r} and {d.name!r}."
                )
            seen[label] = d.name
        # FER label order, then file names.
        for d in sorted(class_dirs, key=lambda d: _CLASS_INDEX[d.name.lower()]):
            label = _CLASS_INDEX[d.name.lower()]
            rel_prefix = Path(os.path.relpath(d.path, root)).as_posix() + "/"
            for rel, full, size, stamp in walk_files(d.path, extensions, rel_prefix, avoid=classes,
                                                     claimed=claimed):
                prefix = os.path.basename(rel).split("_", 1)[0].lower()
                usage = _USAGE_CANON.get(prefix)
                if usage is None:
                    bad.append((rel, "file name does not start with a FER-2013 usage "
                                     "(Training_, PublicTest_ or PrivateTest_)"))
                elif usage in usages:
                    files.append((rel, full, size, stamp, label, usage))
    return files, bad, loose


def _load_fer_folder(root, usages, errors, cache, cache_dir, n_jobs, verbose, extensions):
    func = "load_fer2013"
    start = time.perf_counter()
    files, bad_names, loose = _fer_folder_files(root, usages, extensions)
    if loose:
        _warn(
            f"{func}: {len(loose)} image file(s) outside class folders are not "
            f"loaded (their class is unknown): {loose[:_MAX_NAMED]}.",
            UserWarning,
        )
    if verbose:
        log(func, f"found {len(files)} image files of usage {list(usages)} under "
                  f"{root} ({time.perf_counter() - start:.2f} s)")
    key = _digest("\n".join(
        [f"fersk-fer2013-folder v{_CACHE_VERSION}", str(root)]
        + [f"{rel}\t{size}\t{stamp}" for rel, _, size, stamp, _, _ in files]
    ))

    def decode():
        progress = _decoding_progress(func, len(files), verbose)
        images, failures = _decode_files(
            [f[1] for f in files], mode="L", shape=FER2013_SHAPE, n_jobs=n_jobs,
            progress=progress, shape_hint=" as FER-2013 images are",
        )
        return {
            "images": images,
            "failed_index": np.array(sorted(failures), dtype=np.int64),
            "failed_reason": np.array([failures[i] for i in sorted(failures)], dtype=str),
        }

    content = _cached(
        cache and files, cache_dir, _cache_prefix("folder", root, usages), key, decode, func,
        verbose, valid=lambda content: len(content["images"]) == len(files) and not any(
            str(r).startswith(READ_FAILURE) for r in content["failed_reason"]),
    )
    images = content["images"]
    failed = content["failed_index"]
    bad = bad_names + [
        (files[i][0], str(r)) for i, r in zip(failed, content["failed_reason"])
    ]
    _apply_errors_policy(bad, errors, "FER-2013 image file(s)", func)
    keep = np.ones(len(files), bool)
    keep[failed] = False
    kept = [f for f, k in zip(files, keep) if k]
    return Bunch(
        images=images[keep] if len(failed) else images,
        target=np.array([f[4] for f in kept], dtype=np.int64),
        usage=np.array([f[5] for f in kept], dtype="<U11"),
        filenames=np.array([f[0] for f in kept], dtype=str),
        row_ids=None,
        skipped=bad,
    )


# --------------------------------------------------------------------------
# FER-2013: Kaggle CSV


def _unquoted(fields):
    return [v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v for v in fields]


def _parse_fer_csv(path, usages, verbose):
    """Parse the Kaggle CSV; returns the selected rows' arrays and the bad rows
    (row id, reason) among those selected or of unknown usage."""
    func = "load_fer2013"
    start = time.perf_counter()
    images, target, usage_col, row_ids, bad = [], [], [], [], []
    # undecodable bytes become U+FFFD, so that their row is reported as bad
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        # No field of this format holds a comma or a line break: quotes are
        # not CSV syntax here, so a stray one cannot join the next lines into
        # one record (losing them uncounted); a quoted field is unquoted.
        lines = csv.reader(f, quoting=csv.QUOTE_NONE)
        reader = map(_unquoted, lines)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"path {str(path)!r} is an empty CSV file.") from None
        except csv.Error as exc:
            raise ValueError(f"path {str(path)!r} is not a readable CSV file: {exc}") from None
        columns = {h.strip().lower(): i for i, h in enumerate(header)}
        missing = [c for c in ("emotion", "pixels", "Usage") if c.lower() not in columns]
        if missing:
            raise ValueError(
                f"CSV file {str(path)!r} has no column(s) {missing}: FER-2013's "
                f"fer2013.csv has the header 'emotion,pixels,Usage'; found {header}."
            )
        names = [h.strip().lower() for h in header]
        repeated = [h for h in header if names.count(h.strip().lower()) > 1
                    and h.strip().lower() in ("emotion", "pixels", "usage")]
        if repeated:  # which one holds the data would be a guess (the last was read)
            raise ValueError(
                f"CSV file {str(path)!r} has the column(s) {repeated} more than once: "
                f"FER-2013's fer2013.csv has the header 'emotion,pixels,Usage'; found {header}."
            )
        i_emotion, i_pixels, i_usage = (columns[c] for c in ("emotion", "pixels", "usage"))
        n_columns = len(header)
        row = -1
        with warnings.catch_warnings():
            # numpy < 2.3 warns (instead of raising) on text it cannot parse
            warnings.simplefilter("error", DeprecationWarning)
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    row += 1
                    bad.append((row, f"line {lines.line_num}: not valid CSV ({exc})"))
                    continue
                if not fields:  # blank line: not a sample
                    continue
                row += 1
                where = f"line {lines.line_num}"
                if len(fields) != n_columns:
                    bad.append((row, f"{where}: {len(fields)} fields, expected "
                                     f"{n_columns} ({','.join(header)})"))
                    continue
                usage = _USAGE_CANON.get(fields[i_usage].strip().lower())
                if usage is None:
                    bad.append((row, f"{where}: unknown Usage {fields[i_usage][:30]!r}, "
                                     f"expected one of {list(FER2013_USAGES)}"))
                    continue
                if usage not in usages:
                    continue
                label = fields[i_emotion].strip()
                if not (label.isascii() and label.isdigit() and int(label) < len(FER2013_CLASSES)):
                    bad.append((row, f"{where}: emotion {label[:30]!r} is not a label "
                                     f"0..{len(FER2013_CLASSES) - 1}"))
                    continue
                try:
                    # int64: an int32 would wrap 4294967424 round to 128, in range
                    pixels = np.fromstring(fields[i_pixels], dtype=np.int64, sep=" ")
                except (ValueError, DeprecationWarning):
                    bad.append((row, f"{where}: pixels are not space-separated integers"))
                    continue
                if pixels.size != _N_PIXELS:
                    bad.append((row, f"{where}: {pixels.size} pixel values, expected "
                                     f"{_N_PIXELS} (48x48)"))
                    continue
                if pixels.min() < 0 or pixels.max() > 255:
                    bad.append((row, f"{where}: pixel values outside 0..255 "
                                     f"(min {pixels.min()}, max {pixels.max()})"))
                    continue
                images.append(pixels.astype(np.uint8).reshape(FER2013_SHAPE))
                target.append(int(label))
                usage_col.append(usage)
                row_ids.append(row)
                if verbose > 1 and len(images) % 5000 == 0:
                    log(func, f"parsed {len(images)} rows "
                              f"({time.perf_counter() - start:.1f} s)")
    if verbose:
        log(func, f"parsed {row + 1} rows of {path}, {len(images)} selected "
                  f"({time.perf_counter() - start:.1f} s)")
    return {
        "images": (np.stack(images) if images
                   else np.zeros((0,) + FER2013_SHAPE, np.uint8)),
        "target": np.array(target, dtype=np.int64),
        "usage": np.array(usage_col, dtype="<U11"),
        "row_ids": np.array(row_ids, dtype=np.int64),
        "failed_index": np.array([b[0] for b in bad], dtype=np.int64),
        "failed_reason": np.array([b[1] for b in bad], dtype=str),
    }


def _load_fer_csv(path, usages, errors, cache, cache_dir, verbose):
    func = "load_fer2013"
    st = os.stat(path)
    key = _digest(f"fersk-fer2013-csv v{_CACHE_VERSION}\n{path}\n{st.st_size}\t"
                  f"{file_stamp(st)}\n{'+'.join(usages)}")
    content = _cached(cache, cache_dir, _cache_prefix("csv", path, usages), key,
                      lambda: _parse_fer_csv(path, usages, verbose), func, verbose)
    bad = [(int(i), str(r)) for i, r in zip(content["failed_index"], content["failed_reason"])]
    _apply_errors_policy(bad, errors, f"row(s) of {path.name}", func,
                         name_fmt=lambda r: f"row {r}")
    return Bunch(
        images=content["images"],
        target=content["target"],
        usage=content["usage"],
        filenames=None,
        row_ids=content["row_ids"],
        skipped=bad,
    )


@validate_params(
    {**LOADER_CONSTRAINTS, "usage": [str, list, tuple, None]},
    prefer_skip_nested_validation=True,
)
def load_fer2013(path, *, usage=None, errors="raise", cache=True, cache_dir=None, n_jobs=None,
                 verbose=0, return_X_y=False):
    """Load FER-2013 from Kaggle's ``fer2013.csv`` or from image folders.

    Parameters
    ----------
    path : str or os.PathLike
        Either the Kaggle CSV file (columns ``emotion``, ``pixels``,
        ``Usage``, in any order; other columns are ignored), or the root of
        the image-folder release: ``<root>/<split>/<class>/<file>`` (split
        folders of any name, e.g. ``train/`` and ``test/``), or a single
        split ``<root>/<class>/<file>``.  Class folders are ``angry``,
        ``disgust``, ``fear``, ``happy``, ``sad``, ``surprise``,
        ``neutral`` (any case); any other folder is a ValueError naming it.
        The usage of an image comes from its file-name prefix
        (``Training_``, ``PublicTest_``, ``PrivateTest_``), not from its
        split folder.
    usage : str or list of str, default=None
        Usage(s) to load among ``"Training"``, ``"PublicTest"`` and
        ``"PrivateTest"`` (any case); None loads all.  An unknown usage is a
        ValueError naming it; selecting nothing that exists is a ValueError,
        and a selected usage of which there is no sample gives a warning.
        Only the images of the selected usages are decoded.
    errors : {"raise", "skip"}, default="raise"
        What to do with bad samples: a CSV row with the wrong number of
        fields or pixels, non-integer pixels, values outside 0..255, an
        emotion outside 0..6 or an unknown Usage; an image file that is
        empty, unreadable, corrupt or truncated, not 48x48, or whose name
        carries no usage prefix.  "raise" raises a ValueError naming them
        (up to 10, with the count) and the reason; "skip" drops them, issues
        a :class:`SkippedImagesWarning` with the count, and lists every one
        in the result's ``skipped``.  ``images``, ``target``, ``usage`` and
        ``filenames``/``row_ids`` stay aligned either way.
    cache : bool, default=True
        Keep the decoded arrays in ``cache_dir`` and reuse them.  The cache
        entry is keyed on the loader version, the absolute path, the
        selected usages, and, for a folder, every image file's relative
        path, size, modification and change times (for the CSV, its size
        and times), so adding, removing or changing a file invalidates it,
        also an edit that puts the old size and modification time back
        (``cp -p``, ``touch -r``): the change time (ctime) cannot be set
        back.  A copy of the folder, or a ``chmod``, builds it once more.  Bad samples are remembered too (the ``errors``
        policy is applied after reading the cache).  One entry is kept per
        path and usage selection (older ones are deleted).  An unwritable
        cache directory only gives a warning.
    cache_dir : str or os.PathLike, default=None
        Where the cache lives; None means ``$FERSK_CACHE`` if set, else
        ``$XDG_CACHE_HOME/fersk``, else ``~/.cache/fersk``.
    n_jobs : int, default=None
        Threads decoding image files (Pillow releases the GIL while it
        decodes): None means 1 unless in a :func:`joblib.parallel_config`
        context, -1 one per CPU.  Decoding 48x48 JPEGs is dominated by
        per-file Python overhead, so threads help only on machines with idle
        cores.  The result does not depend on it.  Not used for the CSV.
    verbose : int, default=0
        When positive, prints to stdout (to stderr under the ``fersk
        predict``/``evaluate`` commands) what is read (cache hit or miss,
        file counts, timings) and decoding progress every 10%; above 1 after
        every chunk of 512 images or 5,000 CSV rows.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        images : ndarray of shape (n_samples, 48, 48), dtype uint8
            The faces, grey (colour files are converted to luminance as
            :class:`~fersk.FaceCropper` does: scikit-image's ``rgb2gray``).
        data : ndarray of shape (n_samples, 2304), dtype uint8
            The same pixels as flattened rows (a view of ``images``), as in
            scikit-learn's face datasets.
        target : ndarray of shape (n_samples,), dtype int64
            FER labels: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
            5 surprise, 6 neutral.
        target_names : ndarray of str
            The class names above, index = label.
        usage : ndarray of shape (n_samples,), dtype str
            "Training", "PublicTest" or "PrivateTest" for each sample; give
            it to :func:`fer2013_predefined_split`.
        filenames : ndarray of str or None
            For folders, each image's path relative to ``path`` (posix
            separators), e.g. ``"train/angry/Training_3908.jpg"``; None for
            the CSV.
        row_ids : ndarray of int or None
            For the CSV, each sample's 0-based data row (the header is not
            counted; blank lines are ignored), so ``row_ids[i] + 2`` is its
            line in a file without blank lines; None for folders.
        skipped : list of tuple
            ``(name, reason)`` for each sample dropped by ``errors="skip"``:
            the relative path for a file, the row id for a CSV row.  Empty
            when nothing was skipped.
        DESCR : str
            Description of FER-2013.

    (images, target) : tuple
        When ``return_X_y`` is True.

    See Also
    --------
    fer2013_predefined_split : The Kaggle protocol from ``usage``.
    load_image_folder : Any labelled folder of images.
    sklearn.datasets.load_files : Text files in class folders.

    Notes
    -----
    Samples come in a fixed order: for folders, split folders sorted by
    name, then classes in FER label order, then each class folder walked
    with its entries sorted by name, depth first; for the CSV, row order.  Nothing is shuffled.  Hidden files
    and folders (names starting with ``.`` or ``__``) and files without an
    image extension (e.g. a ``README.txt`` or ``ferplus_votes.csv``) are not
    samples and are ignored; image files lying outside class folders are
    not loaded, with a warning.  Linked folders are followed, except a link
    to (or into) another class folder; two split or class folders that are
    one folder on disk (``test/angry -> ../train/angry``), or one folder
    linked from two class folders, are a ValueError, as their faces would
    be read twice, and a split or class folder that is a broken link a
    FileNotFoundError.  For the CSV every row's Usage is checked,
    whatever ``usage`` selects, but emotion and pixels only for the
    selected rows.

    On the 32,144-image folder release a first load decodes every JPEG
    (about 4.5 s on one core, 3x faster than a ``skimage.io.imread`` loop);
    later loads scan the folder for the cache key and read the cache (about
    0.3 s).  A 32k-row Kaggle CSV parses in about 4 s, and reads from the
    cache in 0.05 s.  See ``benchmarks/bench_load_fer2013.py``.

    Examples
    --------
    A tiny FER-2013 CSV in Kaggle's format:

    >>> import tempfile, os
    >>> from fersk.datasets import load_fer2013
    >>> tmp = tempfile.mkdtemp()
    >>> csv_path = os.path.join(tmp, "fer2013.csv")
    >>> with open(csv_path, "w") as f:
    ...     _ = f.write("emotion,pixels,Usage\\n")
    ...     _ = f.write("3," + " ".join(["128"] * 2304) + ",Training\\n")
    ...     _ = f.write("6," + " ".join(["64"] * 2304) + ",PublicTest\\n")
    >>> data = load_fer2013(csv_path, cache=False)
    >>> data.images.shape, data.images.dtype
    ((2, 48, 48), dtype('uint8'))
    >>> data.target_names[data.target].tolist(), data.usage.tolist()
    (['happy', 'neutral'], ['Training', 'PublicTest'])
    >>> load_fer2013(csv_path, usage="PublicTest", cache=False).row_ids
    array([1])
    >>> import shutil; shutil.rmtree(tmp)

    The image-folder release (``train/``, ``test/``)::

        data = load_fer2013("fer2013/", usage=["Training", "PublicTest"])
    """
    func = "load_fer2013"
    usages = FER2013_USAGES if usage is None else _check_usages(usage)
    n_jobs = _resolve_n_jobs(n_jobs)
    path = Path(path).expanduser().absolute()
    cache_dir = cache_home(cache_dir)
    if path.is_dir():
        data = _load_fer_folder(
            path, usages, errors, cache, cache_dir, n_jobs, verbose, IMAGE_EXTENSIONS
        )
    elif path.is_file():
        data = _load_fer_csv(path, usages, errors, cache, cache_dir, verbose)
    else:
        raise ValueError(
            f"path {str(path)!r} does not exist: give the Kaggle fer2013.csv or the "
            f"root of the FER-2013 image folders."
        )
    if len(data.target) == 0:
        raise ValueError(
            f"No FER-2013 sample of usage {list(usages)} in {str(path)!r}"
            + (f" ({len(data.skipped)} bad ones skipped)." if data.skipped else ".")
        )
    if usage is not None:
        absent = [u for u in usages if not np.any(data.usage == u)]
        if absent:
            _warn(f"{func}: no sample of usage {absent} in {str(path)!r}.")
    if return_X_y:
        return data.images, data.target
    data.data = data.images.reshape(len(data.images), -1)
    data.target_names = np.array(FER2013_CLASSES)
    data.DESCR = FER2013_DESCR
    return data


@validate_params(
    {
        "usage": ["array-like"],
        "train": [str, list, tuple],
        "test": [str, list, tuple],
    },
    prefer_skip_nested_validation=True,
)
def fer2013_predefined_split(usage, *, train=("Training",), test=("PublicTest",)):
    """The FER-2013 protocol as a ``PredefinedSplit``: fit on train usages,
    validate on test usages.

    Parameters
    ----------
    usage : array-like of str of shape (n_samples,)
        Usage of each sample, e.g. ``load_fer2013(...).usage``.
    train : str or sequence of str, default=("Training",)
        Usages fitted on (fold -1: always in the training part).
    test : str or sequence of str, default=("PublicTest",)
        Usages validated on (fold 0: the one validation fold).  Must not
        overlap ``train``.

    Returns
    -------
    cv : :class:`~sklearn.model_selection.PredefinedSplit`
        One split, for the ``cv`` parameter of
        :class:`~sklearn.model_selection.GridSearchCV`,
        :func:`~sklearn.model_selection.cross_validate` and the like.

    Raises
    ------
    ValueError
        When a usage is unknown, ``train`` and ``test`` overlap, one of them
        matches no sample, or some samples belong to neither: a
        ``PredefinedSplit`` puts every sample not in a test fold into the
        training part, so PrivateTest samples would silently become training
        data.  Select the samples first, e.g. ``load_fer2013(path,
        usage=["Training", "PublicTest"])`` or a mask ``data.usage !=
        "PrivateTest"``.

    See Also
    --------
    load_fer2013 : Gives ``usage``.

    Notes
    -----
    With ``refit=True`` (the default), ``GridSearchCV`` refits the best
    parameters on *all* the samples it was given, Training and PublicTest
    together; pass ``refit=False`` and fit on Training yourself to keep
    PublicTest unseen.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.datasets import fer2013_predefined_split
    >>> cv = fer2013_predefined_split(
    ...     ["Training", "Training", "PublicTest", "Training", "PublicTest"])
    >>> [(train.tolist(), test.tolist()) for train, test in cv.split()]
    [([0, 1, 3], [2, 4])]

    Tuning on PublicTest with ``GridSearchCV``::

        data = load_fer2013(path, usage=["Training", "PublicTest"])
        search = GridSearchCV(model, grid, cv=fer2013_predefined_split(data.usage))
    """
    train = _check_usages(train, "train")
    test = _check_usages(test, "test")
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise ValueError(f"Usage(s) {overlap} are in both train and test.")
    values = np.asarray(usage)
    if values.ndim != 1:
        raise ValueError(f"usage must be 1-D (one usage per sample); got shape "
                         f"{values.shape}.")
    if values.size == 0:
        raise ValueError("usage is empty: there are no samples to split.")
    values = values.astype(str)
    names, counts = np.unique(values, return_counts=True)
    canon = np.array([_USAGE_CANON.get(v.lower(), v) for v in names])
    other = [f"{n} ({c} samples)" for n, u, c in zip(names, canon, counts)
             if u not in train + test]
    if other:
        raise ValueError(
            f"usage has samples of {', '.join(other)}, which is neither in train="
            f"{list(train)} nor in test={list(test)}; a PredefinedSplit would train "
            f"on them. Leave them out first (e.g. load_fer2013(..., usage="
            f"{list(train + test)}) or index with a mask), or name them in train "
            f"or test."
        )
    per_sample = canon[np.searchsorted(names, values)]
    is_test = np.isin(per_sample, test)
    if not is_test.any():
        raise ValueError(f"No sample of test usage {list(test)} in usage.")
    if is_test.all():
        raise ValueError(f"No sample of train usage {list(train)} in usage.")
    return PredefinedSplit(np.where(is_test, 0, -1))

