"""Decoded data kept on disk, keyed on what it was made from.

One file per source and key, written atomically; a damaged file is
rebuilt, never trusted.
"""

import hashlib
from pathlib import Path

import numpy as np

from fersk._fsync import written_atomically
from fersk._progress import log
from fersk.cache import _is_dataset_file

from ._common import _warn

# Bump when the cache content or its meaning changes.
_CACHE_VERSION = 2  # 2: colour files read grey by rgb2gray (709), not Pillow's 601


def _digest(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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
        with written_atomically(file, prefix=".tmp-fersk-", suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, key=np.array(key), **content)
        for old in file.parent.glob(prefix + "-*.npz"):
            # Only an older entry fersk wrote (its name's hash matches the
            # key inside): a user's file of a similar name in a cache_dir
            # they chose is never taken.
            if old != file and _is_dataset_file(old):
                old.unlink(missing_ok=True)
    except OSError as exc:
        _warn(f"{func}: could not write the cache file {file} ({exc}); "
              "loading still works, only not faster next time. Pass "
              "cache=False or another cache_dir.")
        return
    if verbose:
        log(func, f"wrote cache {file}")



def _cached(use, cache_dir, prefix, key, build, func, verbose, valid=None):
    """The content stored for ``key`` under ``cache_dir``, else ``build()``'s,
    stored (when ``use``); ``valid(content)`` False makes a stored one stale.

    The one read-or-build rule of every cached loader (FER-2013's CSV and
    folders, the faces in the wild).
    """
    if not use:
        return build()
    file = Path(cache_dir) / f"{prefix}-{key[:24]}.npz"
    content = _cache_load(file, key, func, verbose)
    if content is not None and valid is not None and not valid(content):
        content = None
    if content is None:
        content = build()
        _cache_save(file, prefix, key, content, func, verbose)
    return content
