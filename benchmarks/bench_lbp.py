"""LBP throughput: fersk's batch LBP against scikit-image's per-image loop.

Both compute the same codes (checked here: identical output) on the 3,589
FER-2013 PublicTest faces; each timing is the best of ``--repeat`` runs,
measured side by side in one process, so the ratio is what to read.

Usage::

    python benchmarks/bench_lbp.py [--data ../shared/data/fer2013] [--repeat 3]
"""

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
from skimage.feature import local_binary_pattern

from _common import FER2013, best_of
from fersk.lbp import local_binary_pattern_batch


def read_public_test(root):
    from PIL import Image

    files = sorted((Path(root) / "test").glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no PublicTest images under {root}/test")
    return np.stack([np.asarray(Image.open(f).convert("L")) for f in files])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=FER2013)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    images = read_public_test(args.data)
    n = len(images)
    print(f"{n} PublicTest images of {images.shape[1]}x{images.shape[2]}, "
          f"{os.cpu_count()} CPU cores, best of {args.repeat}\n")
    header = (f"{'method':<12} {'P,R':<6} {'skimage img/s':>14} {'fersk 1 thr':>12} "
              f"{'ratio':>6} {'fersk n_jobs=-1':>16} {'ratio':>6}  identical")
    print(header)
    print("-" * len(header))
    cases = [(m, 8, 1) for m in ("default", "ror", "uniform", "nri_uniform", "var")]
    cases += [("uniform", 16, 2), ("uniform", 24, 3)]
    for method, P, R in cases:
        def ref():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.stack([local_binary_pattern(im, P, R, method) for im in images])

        t_ref, expected = best_of(ref, args.repeat)
        t_one, got = best_of(lambda: local_binary_pattern_batch(images, P, R, method), args.repeat)
        t_all, got_all = best_of(
            lambda: local_binary_pattern_batch(images, P, R, method, n_jobs=-1), args.repeat
        )
        same = np.array_equal(got, expected, equal_nan=True) and np.array_equal(
            got_all, expected, equal_nan=True
        )
        print(f"{method:<12} {f'{P},{R}':<6} {n / t_ref:>14,.0f} {n / t_one:>12,.0f} "
              f"{t_ref / t_one:>5.1f}x {n / t_all:>16,.0f} {t_ref / t_all:>5.1f}x  {same}")


if __name__ == "__main__":
    main()
