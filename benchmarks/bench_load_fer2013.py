"""Load time of the FER-2013 image folders: fersk's load_fer2013 against a
naive sequential ``skimage.io.imread`` loop, side by side in one run.

Rows:

* naive: ``skimage.io.imread`` on every file, one after the other, then
  ``np.stack`` (what a hand-written loader does);
* fersk cold: ``load_fer2013(cache=False)`` (scan + decode every JPEG with
  Pillow), with 1 thread and with ``n_jobs=-1``;
* fersk first load: ``load_fer2013`` with an empty cache (decode + write
  the cache);
* fersk warm: ``load_fer2013`` again (scan the folder for the cache key +
  read the cache).

All methods must give the same pixels and labels (checked).  The files are
read once before timing, so every row runs with the operating system's file
cache warm: "cold" means no fersk cache, not a cold disk.  Each timing is the
best of ``--repeat`` runs.

Usage::

    python benchmarks/bench_load_fer2013.py [--data ../shared/data/fer2013] [--repeat 1]
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from _common import FER2013, best_of
from fersk.datasets import FER2013_CLASSES, load_fer2013


def naive_load(root):
    """Sequential skimage.io.imread of every <split>/<class>/*.jpg."""
    from skimage.io import imread

    images, target, names = [], [], []
    for split in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for label, cls in enumerate(FER2013_CLASSES):
            for f in sorted((split / cls).glob("*.jpg")):
                images.append(imread(f))
                target.append(label)
                names.append(f"{split.name}/{cls}/{f.name}")
    return np.stack(images), np.array(target), np.array(names)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=FER2013,
                        help="FER-2013 image-folder root (train/, test/)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    root = Path(args.data)
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        raise SystemExit(f"no FER-2013 image folders (train/, test/) under {root}")

    files = [p for p in root.glob("*/*/*.jpg")]
    for f in files:  # warm the OS file cache: every row then reads from memory
        f.read_bytes()

    rows = []
    t_naive, (X_ref, y_ref, names_ref) = best_of(lambda: naive_load(root), args.repeat)
    n = len(y_ref)
    rows.append(("naive skimage.io.imread loop", t_naive))

    def check(data):
        order = np.argsort(data.filenames)
        ref = np.argsort(names_ref)
        assert np.array_equal(data.filenames[order], names_ref[ref])
        assert np.array_equal(data.images[order], X_ref[ref])
        assert np.array_equal(data.target[order], y_ref[ref])

    t, data = best_of(lambda: load_fer2013(root, cache=False, n_jobs=1), args.repeat)
    check(data)
    rows.append(("fersk cold, no cache, 1 thread", t))
    t, data = best_of(lambda: load_fer2013(root, cache=False, n_jobs=-1), args.repeat)
    check(data)
    rows.append((f"fersk cold, no cache, n_jobs=-1 ({os.cpu_count()} thr)", t))

    with tempfile.TemporaryDirectory() as cache_dir:
        def empty_cache():
            for f in Path(cache_dir).glob("*.npz"):
                f.unlink()

        t, data = best_of(lambda: load_fer2013(root, cache_dir=cache_dir), args.repeat,
                          before=empty_cache)
        check(data)
        rows.append(("fersk first load (decode + write cache)", t))
        cache_mb = sum(f.stat().st_size for f in Path(cache_dir).glob("*.npz")) / 2**20
        t, data = best_of(lambda: load_fer2013(root, cache_dir=cache_dir), args.repeat)
        check(data)
        rows.append(("fersk warm (cache hit)", t))

    print(f"FER-2013 folders ({Path(root).name}/): {n} images of 48x48 "
          f"({np.sum(np.char.startswith(names_ref, 'train/'))} train, "
          f"{np.sum(np.char.startswith(names_ref, 'test/'))} test), "
          f"{os.cpu_count()} CPU cores, best of {args.repeat}; OS file cache warm; "
          f"cache file {cache_mb:.0f} MiB; all outputs identical\n")
    header = f"{'method':<45} {'time (s)':>9} {'images/s':>10} {'vs naive':>9}"
    print(header)
    print("-" * len(header))
    for name, t in rows:
        print(f"{name:<45} {t:>9.2f} {n / t:>10,.0f} {t_naive / t:>8.1f}x")


if __name__ == "__main__":
    main()
