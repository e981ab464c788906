"""Load FER-2013 and labelled image folders as scikit-learn ``Bunch`` objects.

* :func:`load_fer2013` reads either of the two forms FER-2013 is found in:
  Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``) or the
  image-folder release (``train/<class>/Training_<id>.jpg``,
  ``test/<class>/PublicTest_<id>.jpg``...), into 48x48 uint8 images, FER
  labels and each sample's usage.  Folder loads are cached (decoded arrays
  keyed on the folder's file names, sizes and modification times), so the
  second load of the 32k-image folder takes a fraction of a second.
* :func:`fer2013_predefined_split` turns the usages into the Kaggle protocol
  as a :class:`~sklearn.model_selection.PredefinedSplit`: fit on Training,
  validate on PublicTest, e.g. in :class:`~sklearn.model_selection.GridSearchCV`.
* :func:`load_image_folder` reads any ``<root>/<class>/<file>`` folder of
  images of any size, grey or colour.
* :func:`load_ferplus` joins FER+'s crowd votes (Barsoum et al. 2016) to
  the FER-2013 image folders: 8 classes, FER+'s majority rule
  (:func:`ferplus_majority`, dropped images reported) and each image's
  vote distribution, the soft targets of ``fit(X, y, sample_proba=...)``.

Nothing is dropped silently: a bad CSV row, an unreadable, corrupt or
wrongly sized image raises a ValueError naming it, unless ``errors="skip"``,
which drops it with a :class:`SkippedImagesWarning` giving the count and
records the names and reasons in the Bunch's ``skipped``.
"""

import csv
import hashlib
import io
import numbers
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.model_selection import PredefinedSplit
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from . import _image_files
from ._image_files import pil_to_uint8
from ._progress import Progress, log

__all__ = [
    "load_fer2013",
    "fer2013_predefined_split",
    "load_image_folder",
    "load_ferplus",
    "ferplus_majority",
    "SkippedImagesWarning",
    "load_sfew",
    "load_expw",
    "load_muxspace",
    "load_in_the_wild",
    "bundled_cropper",
    "source_sample_weight",
]

#: FER-2013 class names, index = label.
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: Values of the ``Usage`` column / file-name prefixes of FER-2013.
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")
#: Shape of a FER-2013 image.
FER2013_SHAPE = (48, 48)
#: File extensions read by default (compared case-insensitively; one list
#: for all of fersk: :data:`fersk._image_files.IMAGE_EXTENSIONS`).
IMAGE_EXTENSIONS = _image_files.IMAGE_EXTENSIONS

_CLASS_INDEX = {name: i for i, name in enumerate(FER2013_CLASSES)}
_USAGE_CANON = {u.lower(): u for u in FER2013_USAGES}
_N_PIXELS = FER2013_SHAPE[0] * FER2013_SHAPE[1]
# Bump when the cache content or its meaning changes.
_CACHE_VERSION = 1
# Images per task of the decoding pool (and per progress report).
_CHUNK = 512
# Bad samples named in an error or warning message.
_MAX_NAMED = 10

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


class SkippedImagesWarning(UserWarning):
    """Warning issued when ``errors="skip"`` drops bad images or CSV rows.

    The warning gives the count and the first names; the returned Bunch's
    ``skipped`` lists every dropped sample with the reason.  Filter it as any
    warning, e.g. ``warnings.simplefilter("error", SkippedImagesWarning)``
    to make skipping fatal again.

    Parameters
    ----------
    message : str
        What was skipped.

    Examples
    --------
    >>> import warnings
    >>> from fersk.datasets import SkippedImagesWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("2 images skipped", SkippedImagesWarning)
    >>> caught[0].category.__name__
    'SkippedImagesWarning'
    """


# --------------------------------------------------------------------------
# Small helpers


def _warn(message, category=UserWarning):
    """Warn at the user's call site (past this module and sklearn's
    parameter-validation wrapper)."""
    frame, level = sys._getframe(1), 2
    skip = (__file__, os.path.join("sklearn", "utils", "_param_validation.py"))
    while frame is not None and frame.f_code.co_filename.endswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _decoding_progress(func, total, verbose):
    """Decoding progress: every ~10% (verbose=1) or every chunk (>1)."""
    return Progress(func, total, verbose, text="decoded {done}/{total} images")


def _resolve_n_jobs(n_jobs):
    if n_jobs == 0:
        raise ValueError("n_jobs=0 has no meaning: use None or 1 (one thread), "
                         "-1 (one per CPU) or a positive count.")
    return _image_files.n_workers(n_jobs)


def _check_usages(usage, name="usage"):
    """Canonical tuple of FER usages from a str or a list of str."""
    values = [usage] if isinstance(usage, str) else list(usage)
    if not values:
        raise ValueError(f"{name} is empty; give one or more of {list(FER2013_USAGES)}.")
    out = []
    for value in values:
        canon = _USAGE_CANON.get(str(value).lower()) if isinstance(value, str) else None
        if canon is None:
            raise ValueError(
                f"Unknown FER-2013 usage {value!r} in {name}; expected one of "
                f"{list(FER2013_USAGES)}."
            )
        if canon not in out:
            out.append(canon)
    return tuple(out)


def _check_size(size):
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
        for s in size
    ):
        raise ValueError(
            f"size must be None, a positive int or (height, width) of positive "
            f"ints; got {size!r}."
        )
    return tuple(int(s) for s in size)


def _check_extensions(extensions):
    if extensions is None:
        return None
    values = [extensions] if isinstance(extensions, str) else list(extensions)
    if not values or not all(isinstance(e, str) and e.strip(".") for e in values):
        raise ValueError(
            f"extensions must be None or non-empty strings such as '.png'; "
            f"got {extensions!r}."
        )
    return tuple("." + e.lower().lstrip(".") for e in values)


def _is_hidden(name):
    return name.startswith(".") or name.startswith("__")


def _has_extension(name, extensions):
    return extensions is None or os.path.splitext(name)[1].lower() in extensions


def _subdirs(folder):
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    dirs = [e for e in entries if e.is_dir() and not _is_hidden(e.name)]
    files = [e for e in entries if e.is_file() and not _is_hidden(e.name)]
    return dirs, files


def _walk_files(folder, extensions, rel_prefix):
    """(relative posix path, absolute path, size, mtime_ns) of the files under
    ``folder`` (recursively, sorted, hidden names left out) with an image
    extension; ``rel_prefix`` is ``folder`` relative to the root, ending in /."""
    out = []
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if _is_hidden(entry.name):
            continue
        if entry.is_dir():
            out += _walk_files(entry.path, extensions, rel_prefix + entry.name + "/")
        elif entry.is_file() and _has_extension(entry.name, extensions):
            st = entry.stat()
            out.append((rel_prefix + entry.name, entry.path, st.st_size, st.st_mtime_ns))
    return out


def _describe(exc):
    from PIL import UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    if isinstance(exc, _BadImage):
        return str(exc)
    if isinstance(exc, DecompressionBombError):
        return f"too many pixels to decode safely (Pillow: {exc})"
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image (Pillow cannot identify its format)"
    return f"unreadable image ({type(exc).__name__}: {exc})"


class _BadImage(ValueError):
    pass


def _read_image(path, mode, shape, shape_hint=""):
    """Decode one file to a uint8 array in PIL ``mode`` ('L' or 'RGB')."""
    from PIL import Image

    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise _BadImage("empty file (0 bytes)")
    with Image.open(io.BytesIO(data)) as im:
        if shape is not None and im.size != (shape[1], shape[0]):
            raise _BadImage(
                f"image is {im.size[1]}x{im.size[0]} (height x width) pixels, not "
                f"{shape[0]}x{shape[1]}{shape_hint}"
            )
        try:
            return pil_to_uint8(_image_files.open_image(im), mode)
        except ValueError as exc:
            raise _BadImage(str(exc)) from None


def _decode_files(paths, *, mode, shape, n_jobs, progress, shape_hint=""):
    """Decode ``paths`` with a thread pool (Pillow releases the GIL while it
    decodes).

    Returns ``(images, failures)``: a uint8 array ``(n,) + shape`` (zeros
    where decoding failed) when ``shape`` is given, else a list of arrays
    (None where it failed); ``failures`` maps index -> reason.
    """
    n = len(paths)
    channels = () if mode == "L" else (3,)
    images = np.zeros((n,) + tuple(shape) + channels, np.uint8) if shape else [None] * n

    def work(bounds):
        start, stop = bounds
        failed = []
        for i in range(start, stop):
            try:
                images[i] = _read_image(paths[i], mode, shape, shape_hint)
            except MemoryError:
                raise
            except Exception as exc:  # any decoder error is the file's problem
                failed.append((i, _describe(exc)))
        return stop - start, failed

    chunks = [(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]
    failures, n_done = {}, 0
    if n_jobs == 1 or len(chunks) <= 1:
        results = map(work, chunks)
        for done, failed in results:
            n_done += done
            progress.update(n_done)
            failures.update(failed)
    else:
        with ThreadPoolExecutor(max_workers=min(n_jobs, len(chunks))) as pool:
            for done, failed in pool.map(work, chunks):
                n_done += done
                progress.update(n_done)
                failures.update(failed)
    return images, failures


def _apply_errors_policy(bad, errors, what, func, name_fmt=str):
    """Raise on bad samples, or warn about them (errors='skip').

    ``bad`` is a list of ``(identifier, reason)``.
    """
    if not bad:
        return
    shown = "; ".join(f"{name_fmt(name)}: {reason}" for name, reason in bad[:_MAX_NAMED])
    more = f" (and {len(bad) - _MAX_NAMED} more)" if len(bad) > _MAX_NAMED else ""
    if errors == "raise":
        summary = f"{len(bad)} {what} could not be loaded: {shown}{more}. Fix or remove them"
        error = ValueError(
            f"{summary}, or pass errors='skip' to drop them (with a warning; the "
            f"dropped names are recorded in the result's 'skipped')."
        )
        # The command line has no errors= argument: it prints this instead.
        error.without_python_hint = f"{summary}."
        raise error
    _warn(
        f"{func} skipped {len(bad)} {what} (errors='skip'): {shown}{more}. "
        f"All are listed, with the reason, in the result's 'skipped'.",
        SkippedImagesWarning,
    )


# --------------------------------------------------------------------------
# Cache of decoded FER-2013 data


def _default_cache_dir():
    env = os.environ.get("FERSK_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fersk"


def _digest(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _cache_file(cache_dir, kind, source, usages, key):
    prefix = f"fer2013-{kind}-{_digest(str(source))[:12]}-{'+'.join(usages)}"
    return Path(cache_dir) / f"{prefix}-{key[:24]}.npz", prefix


def _cache_load(file, key, func, verbose):
    try:
        with np.load(file, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            content = {name: npz[name] for name in npz.files if name != "key"}
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged cache is rebuilt, not trusted
        _warn(f"{func}: ignoring unreadable cache file {file} ({exc}); "
              "it will be rebuilt.")
        return None
    if verbose:
        log(func, f"read from cache {file}")
    return content


def _cache_save(file, prefix, key, content, func, verbose):
    """Write atomically; remove older entries of the same source and usages."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=file.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, key=np.array(key), **content)
            os.replace(tmp, file)
        except BaseException:
            os.unlink(tmp)
            raise
        for old in file.parent.glob(prefix + "-*.npz"):
            if old != file:
                old.unlink(missing_ok=True)
    except OSError as exc:
        _warn(f"{func}: could not write the cache file {file} ({exc}); "
              "loading still works, only not faster next time. Pass "
              "cache=False or another cache_dir.")
        return
    if verbose:
        log(func, f"wrote cache {file}")


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
            for rel, full, size, mtime in _walk_files(d.path, extensions, rel_prefix):
                prefix = os.path.basename(rel).split("_", 1)[0].lower()
                usage = _USAGE_CANON.get(prefix)
                if usage is None:
                    bad.append((rel, "file name does not start with a FER-2013 usage "
                                     "(Training_, PublicTest_ or PrivateTest_)"))
                elif usage in usages:
                    files.append((rel, full, size, mtime, label, usage))
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
        + [f"{rel}\t{size}\t{mtime}" for rel, _, size, mtime, _, _ in files]
    ))
    cache_path = prefix = content = None
    if cache and files:
        cache_path, prefix = _cache_file(cache_dir, "folder", root, usages, key)
        content = _cache_load(cache_path, key, func, verbose)
        if content is not None and len(content["images"]) != len(files):
            content = None
    if content is None:
        progress = _decoding_progress(func, len(files), verbose)
        images, failures = _decode_files(
            [f[1] for f in files], mode="L", shape=FER2013_SHAPE, n_jobs=n_jobs,
            progress=progress, shape_hint=" as FER-2013 images are",
        )
        content = {
            "images": images,
            "failed_index": np.array(sorted(failures), dtype=np.int64),
            "failed_reason": np.array([failures[i] for i in sorted(failures)], dtype=str),
        }
        if cache and files:
            _cache_save(cache_path, prefix, key, content, func, verbose)
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


def _parse_fer_csv(path, usages, verbose):
    """Parse the Kaggle CSV; returns the selected rows' arrays and the bad rows
    (row id, reason) among those selected or of unknown usage."""
    func = "load_fer2013"
    start = time.perf_counter()
    images, target, usage_col, row_ids, bad = [], [], [], [], []
    # undecodable bytes become U+FFFD, so that their row is reported as bad
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
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
                    bad.append((row, f"line {reader.line_num}: not valid CSV ({exc})"))
                    continue
                if not fields:  # blank line: not a sample
                    continue
                row += 1
                where = f"line {reader.line_num}"
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
                if not (label.isdigit() and int(label) < len(FER2013_CLASSES)):
                    bad.append((row, f"{where}: emotion {label[:30]!r} is not a label "
                                     f"0..{len(FER2013_CLASSES) - 1}"))
                    continue
                try:
                    pixels = np.fromstring(fields[i_pixels], dtype=np.int32, sep=" ")
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
                  f"{st.st_mtime_ns}\n{'+'.join(usages)}")
    content = None
    if cache:
        cache_path, prefix = _cache_file(cache_dir, "csv", path, usages, key)
        content = _cache_load(cache_path, key, func, verbose)
    if content is None:
        content = _parse_fer_csv(path, usages, verbose)
        if cache:
            _cache_save(cache_path, prefix, key, content, func, verbose)
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


# --------------------------------------------------------------------------
# Public API


@validate_params(
    {
        "path": [str, os.PathLike],
        "usage": [str, list, tuple, None],
        "errors": [StrOptions({"raise", "skip"})],
        "cache": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_fer2013(
    path,
    *,
    usage=None,
    errors="raise",
    cache=True,
    cache_dir=None,
    n_jobs=None,
    verbose=0,
    return_X_y=False,
):
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
        path, size and modification time (for the CSV, its size and
        modification time), so adding, removing or changing a file
        invalidates it.  Bad samples are remembered too (the ``errors``
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
            The faces, grey (colour files are converted to luminance by
            Pillow's ``convert("L")``).
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
    name, then classes in FER label order, then file names sorted (as
    strings); for the CSV, row order.  Nothing is shuffled.  Hidden files
    and folders (names starting with ``.`` or ``__``) and files without an
    image extension (e.g. a ``README.txt`` or ``ferplus_votes.csv``) are not
    samples and are ignored; image files lying outside class folders are
    not loaded, with a warning.  For the CSV every row's Usage is checked,
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
    cache_dir = _default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
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


#: FER+ class names (Barsoum et al. 2016), index = label of :func:`load_ferplus`.
FERPLUS_CLASSES = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"
)
#: Columns of FER+'s votes after ``path``: the 8 emotions, "unknown" and
#: "NF" (not a face).
FERPLUS_VOTE_COLUMNS = FERPLUS_CLASSES + ("unknown", "NF")
#: Why :func:`load_ferplus` drops an image (keys of ``dropped_counts``).
FERPLUS_DROP_REASONS = ("no_majority", "unknown", "not_a_face", "no_votes")

FERPLUS_DESCR = """\
FER+ relabelling of FER-2013
----------------------------

Barsoum, Zhang, Canton Ferrer & Zhang, "Training Deep Networks for Facial
Expression Recognition with Crowd-Sourced Label Distribution", ICMI 2016
(Microsoft's FERPlus, MIT licence).  Ten crowd taggers voted for each
FER-2013 image among neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown and NF (not a face).  The images are
FER-2013's pixels; the 8 classes and their order are FER+'s, not
FER-2013's (contempt is new).

Majority labels follow FER+'s own code (``src/ferplus.py``, "majority"
mode): a vote count of 1 is an outlier and set to 0; the label is the
column with more than half of the remaining votes; images where no column
has that majority, or where the majority is "unknown" or "NF", are
dropped.  ``distribution`` holds the remaining emotion votes normalised
to sum to 1 (the paper's label distribution, after the same outlier
removal).
"""


def _read_ferplus_votes(path):
    """``{relative path: int votes (10,)}`` from FER+'s votes CSV, checked."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        expected = ["path", *FERPLUS_VOTE_COLUMNS]
        if header is None or [h.strip() for h in header] != expected:
            raise ValueError(
                f"{str(path)!r} is not a FER+ votes file: its header is {header}, "
                f"expected {expected}."
            )
        votes, bad = {}, []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                if len(row) != len(expected):
                    raise ValueError(f"{len(row)} fields instead of {len(expected)}")
                counts = np.array([int(v) for v in row[1:]], dtype=np.int64)
                if np.any(counts < 0):
                    raise ValueError("negative vote count")
            except ValueError as exc:
                bad.append(f"line {line}: {exc}")
                continue
            votes[row[0].strip().replace("\\", "/")] = counts
    if bad:
        raise ValueError(
            f"{len(bad)} bad row(s) in {str(path)!r}: " + "; ".join(bad[:_MAX_NAMED])
        )
    return votes


def ferplus_majority(votes):
    """FER+ majority labels of vote counts, with FER+'s own rule.

    The rule of FER+'s reference code (Microsoft ``FERPlus``,
    ``src/ferplus.py``, ``_process_data`` in "majority" mode): each count
    of 1 is an outlier and set to 0; the label is the column holding
    strictly more than half of the remaining votes; without such a column
    there is no majority.  A majority of "unknown" or "NF" (not a face)
    is no emotion either.

    Parameters
    ----------
    votes : array-like of shape (n_samples, 10)
        Vote counts in the columns of :data:`FERPLUS_VOTE_COLUMNS`
        (neutral, happiness, surprise, sadness, anger, disgust, fear,
        contempt, unknown, NF).

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype int64
        The majority column, 0-9, or -1 where there is no majority
        (labels 8 and 9 are "unknown" and "NF", not emotions).
    distribution : ndarray of shape (n_samples, 8), dtype float64
        The emotion votes after the outlier removal, normalised to sum to
        1 (rows without any emotion vote left are all zero).

    Examples
    --------
    >>> from fersk.datasets import ferplus_majority
    >>> labels, dist = ferplus_majority([[6, 3, 0, 0, 1, 0, 0, 0, 0, 0],   # neutral
    ...                                  [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],   # no majority
    ...                                  [1, 0, 0, 0, 0, 0, 0, 0, 0, 9]])  # not a face
    >>> labels.tolist()
    [0, -1, 9]
    >>> dist[0].round(3).tolist()
    [0.667, 0.333, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """
    v = np.asarray(votes, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(FERPLUS_VOTE_COLUMNS):
        raise ValueError(
            f"votes must have shape (n_samples, {len(FERPLUS_VOTE_COLUMNS)}) in the columns "
            f"{list(FERPLUS_VOTE_COLUMNS)}; got {v.shape}."
        )
    v = np.where(v <= 1, 0.0, v)  # FER+'s outlier removal
    top = v.argmax(axis=1)
    total = v.sum(axis=1)
    majority = (total > 0) & (v.max(axis=1) > 0.5 * total)
    labels = np.where(majority, top, -1).astype(np.int64)
    emotions = v[:, : len(FERPLUS_CLASSES)]
    sums = emotions.sum(axis=1, keepdims=True)
    distribution = np.divide(emotions, sums, out=np.zeros_like(emotions), where=sums > 0)
    return labels, distribution


def load_ferplus(
    path,
    *,
    votes=None,
    usage=None,
    cache=True,
    cache_dir=None,
    n_jobs=None,
    verbose=0,
    return_X_y=False,
):
    """Load FER+ (FER-2013 images with crowd-sourced labels): 8 classes.

    Joins FER+'s ten votes per image (Barsoum et al., ICMI 2016) to the
    FER-2013 image folders read by :func:`load_fer2013`, and labels each
    image by FER+'s majority rule (:func:`ferplus_majority`): vote counts
    of 1 are outliers set to 0; the label is the column with strictly more
    than half of the remaining votes.  Images are dropped, and reported,
    when there is no such majority ("no_majority"), when the majority is
    "unknown" or "NF" ("unknown", "not_a_face"), or when the votes file has
    no row for them ("no_votes", also a warning).  ``images``, ``target``,
    ``distribution``, ``votes``, ``usage`` and ``filenames`` stay aligned.

    Parameters
    ----------
    path : str or os.PathLike
        Root of the FER-2013 image folders (``train/<class>/Training_*.jpg``,
        ``test/<class>/PublicTest_*.jpg``...).  Kaggle's ``fer2013.csv``
        is not accepted: FER+'s votes are keyed by image path.
    votes : str, os.PathLike or None, default=None
        FER+'s votes CSV: a header ``path,neutral,happiness,surprise,
        sadness,anger,disgust,fear,contempt,unknown,NF`` and one row per
        image, ``path`` relative to ``path`` (e.g.
        ``test/angry/PublicTest_10116449.jpg``).  None reads
        ``<path>/ferplus_votes.csv``.
    usage : str or list of str, default=None
        FER-2013 usage(s) to load ("Training", "PublicTest",
        "PrivateTest"); None loads all.
    cache, cache_dir, n_jobs : see :func:`load_fer2013`
        Passed on to it for the images.
    verbose : int, default=0
        When positive, prints how many images were kept and dropped, and
        why.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        images : ndarray of shape (n_samples, 48, 48), dtype uint8
            The kept faces.
        data : ndarray of shape (n_samples, 2304), dtype uint8
            The same pixels as rows.
        target : ndarray of shape (n_samples,), dtype int64
            FER+ majority labels: 0 neutral, 1 happiness, 2 surprise,
            3 sadness, 4 anger, 5 disgust, 6 fear, 7 contempt.
        target_names : ndarray of str
            The class names above, index = label.
        distribution : ndarray of shape (n_samples, 8), dtype float64
            Each image's emotion votes after the outlier removal,
            normalised to sum to 1, in the order of ``target_names``: the
            soft targets of ``CNNClassifier.fit(X, y, sample_proba=...)``
            (all 8 columns, also for a subset of images whose majority
            labels miss a class: the fitted ``classes_`` are then 0-7).
        votes : ndarray of shape (n_samples, 10), dtype int64
            The raw votes, columns ``vote_names``.
        vote_names : ndarray of str
            The 8 emotions, "unknown" and "NF".
        usage : ndarray of shape (n_samples,), dtype str
            FER-2013 usage of each image.
        filenames : ndarray of str
            Paths relative to ``path``.
        fer2013_target : ndarray of shape (n_samples,), dtype int64
            The original FER-2013 label (class folder) of each image.
        dropped : list of tuple
            ``(filename, reason)`` for every image not kept.
        dropped_counts : dict
            Number of dropped images per reason (keys
            :data:`FERPLUS_DROP_REASONS`).
        DESCR : str
            Description of FER+ and of the rule.

    (images, target) : tuple
        When ``return_X_y`` is True.

    See Also
    --------
    load_fer2013 : The images with FER-2013's own 7 labels.
    ferplus_majority : The labelling rule on vote counts.

    Notes
    -----
    FER+'s reference code trains its "crossentropy" and "probability"
    modes on a truncated distribution (the top emotions covering 75 % of
    the votes, at most three) and keeps a slightly different set of images
    in those modes; here one set of images (those with a majority emotion)
    carries both the majority label and the full distribution, so that the
    two trainings are compared on the same images.

    On the project's copy of FER-2013 and FER+'s votes this keeps 3,199 of
    the 3,589 PublicTest images (367 without a majority, 13 with a
    majority of "unknown", 10 without a row in the votes file) and 25,055
    of the 28,555 Training images (3,422 without a majority, 76 "unknown",
    2 "NF").

    Examples
    --------
    >>> from fersk.datasets import load_ferplus
    >>> data = load_ferplus("../shared/data/fer2013", usage="PublicTest")  # doctest: +SKIP
    >>> data.images.shape, data.distribution.shape  # doctest: +SKIP
    ((3199, 48, 48), (3199, 8))
    """
    func = "load_ferplus"
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(
            f"path {str(root)!r} is not a folder: load_ferplus reads the FER-2013 image "
            "folders (FER+'s votes are keyed by image path), not the Kaggle CSV."
        )
    votes_path = root / "ferplus_votes.csv" if votes is None else Path(votes).expanduser()
    if not votes_path.is_file():
        raise ValueError(
            f"FER+ votes file {str(votes_path)!r} not found; give it as votes=..."
        )
    table = _read_ferplus_votes(votes_path)
    fer = load_fer2013(
        root, usage=usage, errors="raise", cache=cache, cache_dir=cache_dir, n_jobs=n_jobs,
        verbose=max(0, verbose - 1),
    )
    missing = np.array([f not in table for f in fer.filenames], dtype=bool)
    raw = np.zeros((len(fer.filenames), len(FERPLUS_VOTE_COLUMNS)), dtype=np.int64)
    for i, f in enumerate(fer.filenames):
        if not missing[i]:
            raw[i] = table[f]
    labels, distribution = ferplus_majority(raw)
    reason = np.full(len(labels), "", dtype=object)
    reason[labels == -1] = "no_majority"
    reason[labels == 8] = "unknown"
    reason[labels == 9] = "not_a_face"
    reason[missing] = "no_votes"
    keep = reason == ""
    dropped = [(str(f), r) for f, r in zip(fer.filenames[~keep], reason[~keep])]
    counts = {r: int(np.sum(reason == r)) for r in FERPLUS_DROP_REASONS}
    if counts["no_votes"]:
        names = fer.filenames[missing][:_MAX_NAMED].tolist()
        _warn(
            f"{func}: {counts['no_votes']} image(s) have no row in {str(votes_path)!r} and "
            f"are dropped, e.g. {names}."
        )
    if verbose > 0:
        log(func, f"kept {int(keep.sum())} of {len(keep)} images; dropped "
                  + ", ".join(f"{n} {r}" for r, n in counts.items()))
    if not keep.any():
        raise ValueError(f"No FER+ image with a majority emotion in {str(root)!r}.")
    images = fer.images[keep]
    target = labels[keep]
    if return_X_y:
        return images, target
    return Bunch(
        images=images,
        data=images.reshape(len(images), -1),
        target=target,
        target_names=np.array(FERPLUS_CLASSES),
        distribution=distribution[keep],
        votes=raw[keep],
        vote_names=np.array(FERPLUS_VOTE_COLUMNS),
        usage=fer.usage[keep],
        filenames=fer.filenames[keep],
        fer2013_target=fer.target[keep],
        dropped=dropped,
        dropped_counts=counts,
        DESCR=FERPLUS_DESCR,
    )


@validate_params(
    {
        "path": [str, os.PathLike],
        "size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "color": ["boolean"],
        "errors": [StrOptions({"raise", "skip"})],
        "extensions": [None, str, list, tuple],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_image_folder(
    path,
    *,
    size=None,
    color=False,
    errors="raise",
    extensions=IMAGE_EXTENSIONS,
    n_jobs=None,
    verbose=0,
    return_X_y=False,
):
    """Load a labelled image folder ``<root>/<class>/<file>``.

    Every sub-folder of ``path`` is a class; its image files (also in
    nested folders) are its samples.  Images may be of any size, grey or
    colour, in any format Pillow reads.

    Parameters
    ----------
    path : str or os.PathLike
        Root folder.
    size : int or (height, width), default=None
        Resize every image whose size differs to this size with
        :func:`skimage.transform.resize` (``preserve_range=True``,
        anti-aliased, values rounded back to uint8); an int means a square.
        None keeps the sizes: see ``images`` below.
    color : bool, default=False
        False gives grey ``(h, w)`` images (Pillow's ``convert("L")``,
        ITU-R 601 luma); True gives RGB ``(h, w, 3)`` (grey images are
        repeated on the three channels, alpha is dropped).  16-bit grey
        images are brought to 8 bits by dropping the low byte
        (``v >> 8``); floating-point images are bad images (see
        ``errors``).
    errors : {"raise", "skip"}, default="raise"
        An empty, unreadable, corrupt or truncated image file is a
        ValueError naming it (up to 10, with the count) with "raise"; with
        "skip" it is dropped, a :class:`SkippedImagesWarning` gives the
        count, and the result's ``skipped`` lists each with the reason.
    extensions : str or sequence of str or None, default=IMAGE_EXTENSIONS
        File extensions (case-insensitive) that are images: ``.jpg``,
        ``.jpeg``, ``.png``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff``,
        ``.webp``, ``.pgm``, ``.ppm``, ``.pbm``, ``.pnm`` by default.  Other
        files are ignored.  None tries every file, so a non-image is an
        unreadable image (see ``errors``).
    n_jobs : int, default=None
        Threads decoding the files (and resizing): None means 1 unless in a
        :func:`joblib.parallel_config` context, -1 one per CPU.  The result
        does not depend on it.
    verbose : int, default=0
        When positive, prints file counts, timings and decoding progress
        every 10% to stdout (to stderr under the ``fersk predict``/
        ``evaluate`` commands); above 1 after every chunk of 512 images.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with:

        images : ndarray
            uint8, ``(n_samples, h, w)`` grey or ``(n_samples, h, w, 3)``
            colour when all images have one size (always with ``size``).
            When sizes differ and ``size`` is None, a 1-D object array of
            ``n_samples`` arrays of their own sizes (it indexes like an
            array, e.g. ``images[mask]``; :class:`fersk.FaceCropper` takes
            it as a list).
        target : ndarray of shape (n_samples,), dtype int64
            Index of the class folder in ``target_names``.
        target_names : ndarray of str
            Class folder names, sorted.  A class folder without images is
            kept (with a warning) so that labels match the folder names.
        filenames : ndarray of str
            Each image's path relative to ``path`` (posix separators).
        skipped : list of tuple
            ``(filename, reason)`` for each file dropped by
            ``errors="skip"``.
        DESCR : str
            What was loaded.

    (images, target) : tuple
        When ``return_X_y`` is True.

    See Also
    --------
    load_fer2013 : FER-2013, from the CSV or its image folders.
    sklearn.datasets.load_files : Text files in class folders.

    Notes
    -----
    Samples come ordered by class, then by path (as strings); nothing is
    shuffled.  Hidden files and folders (names starting with ``.`` or
    ``__``) are ignored; image files directly under ``path`` (outside class
    folders) are not loaded, with a warning.  Multi-frame files (GIF, TIFF)
    give their first frame; EXIF orientation is not applied.  An empty
    folder, a folder without class folders, or class folders without a
    single image file is a ValueError.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from skimage import data
    >>> from fersk.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for cls, image in [("astronaut", data.astronaut()), ("coffee", data.coffee())]:
    ...     os.mkdir(os.path.join(root, cls))
    ...     Image.fromarray(image).save(os.path.join(root, cls, "0.png"))
    >>> faces = load_image_folder(root, size=(64, 64), color=True)
    >>> faces.images.shape, faces.images.dtype, faces.target_names.tolist()
    ((2, 64, 64, 3), dtype('uint8'), ['astronaut', 'coffee'])
    >>> load_image_folder(root).images.dtype  # sizes differ: one array each
    dtype('O')
    >>> import shutil; shutil.rmtree(root)
    """
    func = "load_image_folder"
    size = _check_size(size)
    exts = _check_extensions(extensions)
    n_jobs = _resolve_n_jobs(n_jobs)
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(f"path {str(path)!r} is not a folder.")
    start = time.perf_counter()
    class_dirs, root_files = _subdirs(root)
    loose = [f.name for f in root_files if _has_extension(f.name, exts)]
    if not class_dirs:
        raise ValueError(
            f"path {str(path)!r} has no class sub-folders (expected "
            f"<root>/<class>/<image file>)"
            + (f"; it holds {len(loose)} image file(s) directly, whose class is "
               f"unknown." if loose else ".")
        )
    if loose:
        _warn(f"{func}: {len(loose)} image file(s) directly under {path} "
              f"are not loaded (no class folder): {loose[:_MAX_NAMED]}.")
    files, target, empty = [], [], []
    for label, d in enumerate(class_dirs):
        found = _walk_files(d.path, exts, d.name + "/")
        if not found:
            empty.append(d.name)
        files += found
        target += [label] * len(found)
    if not files:
        raise ValueError(
            f"No image files in the class folders of {str(path)!r} "
            f"({[d.name for d in class_dirs][:_MAX_NAMED]}) with extensions "
            f"{list(exts) if exts else 'any'}."
        )
    if empty:
        _warn(f"{func}: class folder(s) {empty} hold no image file; kept in "
              "target_names.")
    if verbose:
        log(func, f"found {len(files)} files in {len(class_dirs)} class folders "
                  f"({time.perf_counter() - start:.2f} s)")
    mode = "RGB" if color else "L"
    images, failures = _decode_files(
        [f[1] for f in files], mode=mode, shape=None, n_jobs=n_jobs,
        progress=_decoding_progress(func, len(files), verbose),
    )
    bad = [(files[i][0], failures[i]) for i in sorted(failures)]
    _apply_errors_policy(bad, errors, "image file(s)", func)
    keep = [i for i in range(len(files)) if i not in failures]
    images = [images[i] for i in keep]
    if size is not None:
        images = _resize_all(images, size, n_jobs)
    shapes = {im.shape for im in images}
    if len(shapes) == 1:
        out = np.stack(images)
    else:
        out = np.empty(len(images), dtype=object)
        out[:] = images
    if verbose:
        log(func, f"loaded {len(images)} images, {len(shapes)} distinct shape(s) "
                  f"({time.perf_counter() - start:.1f} s)")
    target = np.array([target[i] for i in keep], dtype=np.int64)
    if return_X_y:
        return out, target
    names = np.array([d.name for d in class_dirs])
    shape_text = (f"shape {out.shape[1:]}" if out.dtype != object
                  else f"{len(shapes)} different shapes")
    return Bunch(
        images=out,
        target=target,
        target_names=names,
        filenames=np.array([files[i][0] for i in keep], dtype=str),
        skipped=bad,
        DESCR=(f"Image folder {root}: {len(keep)} {'RGB' if color else 'grey'} uint8 "
               f"images ({shape_text}) in {len(names)} classes "
               f"{names.tolist()[:20]}" + (", ..." if len(names) > 20 else "")
               + (f"; {len(bad)} unreadable file(s) skipped." if bad else ".")),
    )


def _resize_one(image, size):
    from skimage.transform import resize

    if image.shape[:2] == size:
        return image
    out = resize(image, size + image.shape[2:], order=1, preserve_range=True,
                 anti_aliasing=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _resize_all(images, size, n_jobs):
    if n_jobs == 1 or len(images) < 2:
        return [_resize_one(im, size) for im in images]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(lambda im: _resize_one(im, size), images))


# Faces in the wild (other sources than FER-2013), in their own module.
from fersk._wild_data import (  # noqa: E402
    bundled_cropper,
    load_expw,
    load_in_the_wild,
    load_muxspace,
    load_sfew,
    source_sample_weight,
)
