"""fersk's cache folder: where it is, what fersk keeps there, clearing it.

fersk keeps two kinds of files in one folder, each named by a hash of what
it was made from, so a changed input is never read from a stale file:

- decoded and cropped faces of the dataset loaders (:mod:`fersk.datasets`,
  ``<source>-...-<24 hex>.npz`` at the top of the folder);
- networks and MTCNN exported to ONNX (:mod:`fersk.onnx`, in ``onnx/``).

Nothing there is needed for correctness: a missing file is made again
(faces cropped again, a network exported again -- which needs TensorFlow:
on a machine that predicts with ONNX Runtime alone, the graphs copied there
cannot be remade).  The folder only grows,
as datasets, crop settings and models change; :func:`clear_cache` removes
what fersk wrote there and nothing else (``fersk cache --clear`` on the
command line).
"""

import mmap
import os
import re
import time
from pathlib import Path

import numpy as np

__all__ = ["cache_home", "cache_contents", "clear_cache"]

# What fersk writes (fersk.datasets._cache, fersk.onnx._common): the only
# names clear_cache removes.
_DATASET = re.compile(r"^(fer2013|sfew|expw|muxspace)-.+-(?P<hash>[0-9a-f]{24})\.npz$")
_ONNX_NAME = r"(.+-[0-9a-f]{16}|mtcnn-[0-9a-f]+-(pnet|rnet|onet))\.onnx"
_ONNX = re.compile(f"^{_ONNX_NAME}$")
#: The metadata key every graph fersk exports carries (fersk.onnx): a file of
#: a fersk-like name without it is not fersk's.
_ONNX_MARK = b"fersk_graph"
# Temporary files of an interrupted write: fersk's own names (tempfile's eight
# random characters), removed only when old enough that no write can still be
# under way.
_DATASET_TMP = re.compile(r"^\.tmp-fersk-[a-z0-9_]{8}\.npz$")
_ONNX_TMP = re.compile(f"^\\.{_ONNX_NAME}\\.[a-z0-9_]{{8}}\\.tmp$")
_TMP_AGE_S = 3600


def cache_home(cache_dir=None):
    """The folder fersk caches in.

    Parameters
    ----------
    cache_dir : str or path-like, default=None
        Returned as given (``~`` expanded, made absolute) when not None.

    Returns
    -------
    path : pathlib.Path
        ``cache_dir``; else ``$FERSK_CACHE`` when that environment variable
        is set; else ``$XDG_CACHE_HOME/fersk``; else ``~/.cache/fersk``.
        Always absolute, ``~`` expanded: a relative one is taken from the
        working directory of the call (a model loaded on ONNX keeps its
        graphs' paths, which a later ``os.chdir`` must not move).
        Not created here.

    Examples
    --------
    >>> from fersk.cache import cache_home
    >>> cache_home("/tmp/my-fersk-cache").as_posix()
    '/tmp/my-fersk-cache'
    """
    if cache_dir is not None:
        return _absolute(cache_dir)
    env = os.environ.get("FERSK_CACHE")
    if env:
        return _absolute(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return _absolute(base / "fersk")


def _absolute(path):
    """``path`` with ``~`` expanded, made absolute now: a graph's path kept by a
    loaded model must name the same file after the working directory changes."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def _is_dataset_file(path):
    """A dataset cache file fersk wrote: its name, and the key inside it that
    the name's hash comes from (a file another program wrote is never taken)."""
    match = _DATASET.match(path.name)
    if match is None:
        return False
    try:
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["key"]).startswith(match["hash"])
    except Exception:  # unreadable or not fersk's: not taken
        return False


def _is_onnx_file(path):
    """A graph fersk exported: its name, and fersk's metadata key inside."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(_ONNX_MARK) >= 0
    except (OSError, ValueError):  # unreadable, or empty (mmap refuses): not taken
        return False


def _kind(path, now, in_onnx):
    """``path``'s kind if fersk wrote it, else None; ``in_onnx``: the path
    lies in the cache's ``onnx`` folder (not a cache folder named onnx)."""
    name = path.name
    if in_onnx:
        if _ONNX.match(name):
            return "onnx" if _is_onnx_file(path) else None
        if _ONNX_TMP.match(name):
            return "unfinished" if now - path.stat().st_mtime > _TMP_AGE_S else None
        return None
    if _DATASET_TMP.match(name):
        return "unfinished" if now - path.stat().st_mtime > _TMP_AGE_S else None
    return "dataset" if _is_dataset_file(path) else None


def cache_contents(cache_dir=None):
    """The files in fersk's cache folder, each with whether fersk wrote it.

    Parameters
    ----------
    cache_dir : str or path-like, default=None
        The folder (default :func:`cache_home`).

    Returns
    -------
    files : list of dict
        One per file at the top of the folder or in its ``onnx`` folder,
        sorted by path: ``path`` (pathlib.Path), ``bytes``, ``modified``
        (seconds since the epoch) and ``kind``: ``"dataset"`` (faces of a
        dataset loader, its key inside), ``"onnx"`` (a graph fersk exported,
        its metadata key inside; graphs of MTCNN exported before fersk
        marked them count as not fersk's), ``"unfinished"``
        (the temporary file of a write interrupted over an hour ago) or
        None (not written by fersk: never removed by :func:`clear_cache`).
        Empty when the folder does not exist.

    Examples
    --------
    >>> from fersk.cache import cache_contents
    >>> cache_contents("/nonexistent/folder")
    []
    """
    root = cache_home(cache_dir)
    now = time.time()
    out = []
    for folder, in_onnx in ((root, False), (root / "onnx", True)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.is_symlink():
                continue
            try:
                st = path.stat()
                kind = _kind(path, now, in_onnx)
            except FileNotFoundError:  # a write renamed it away since the listing
                continue
            out.append({"path": path, "bytes": st.st_size, "modified": st.st_mtime,
                        "kind": kind})
    return out


def clear_cache(cache_dir=None):
    """Remove the files fersk wrote to its cache folder, and nothing else.

    Cropped faces and exported networks are made again when next needed
    (exporting needs TensorFlow and tf2onnx: on a machine without them,
    cleared graphs must be copied there again).
    Files fersk did not write (another name, or a ``.npz`` without fersk's
    key inside) stay, as do folders and temporary files of a write that may
    still be under way (younger than an hour).

    Parameters
    ----------
    cache_dir : str or path-like, default=None
        The folder (default :func:`cache_home`).

    Returns
    -------
    removed : list of dict
        The entries of :func:`cache_contents` that were removed.

    Examples
    --------
    >>> import tempfile
    >>> from fersk.cache import clear_cache
    >>> folder = tempfile.mkdtemp()
    >>> with open(f"{folder}/notes.txt", "w") as f:
    ...     _ = f.write("mine")
    >>> clear_cache(folder)  # nothing of fersk's there: nothing removed
    []
    """
    removed = []
    for entry in cache_contents(cache_dir):
        if entry["kind"] is None:
            continue
        try:
            entry["path"].unlink()
        except FileNotFoundError:  # another process removed it first
            continue
        removed.append(entry)
    return removed
