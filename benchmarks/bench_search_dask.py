"""An 8-candidate CNN search on 1 and 2 Dask workers, and what changes a seeded fit's numbers.

Two tables, measured in one run (docs/scaling.rst):

1. ``GridSearchCV`` of a small ``CNNClassifier`` (kaggle_cnn at width 0.25,
   1 epoch) over 8 candidates with 2-fold CV (16 fits) on ``--n`` FER-2013
   Training faces (generated images when the data is absent): in this
   process (``n_jobs=1``) and through ``joblib.parallel_backend("dask")`` on
   a ``LocalCluster`` of 1 and of 2 worker processes (1 thread each,
   started with this process's thread settings, so TensorFlow in each
   worker uses every core), and of 2 workers whose TensorFlow uses half
   the cores each (``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``:
   no oversubscription, other numbers).  Per setting: the
   cluster's start, the workers' first import of TensorFlow and fersk, the
   search itself, the sum of the 16 fit and score times the search
   recorded, the ratio to ``n_jobs=1``, the resident memory of each worker
   after the search, and whether ``cv_results_`` equal ``n_jobs=1``'s.
2. One seeded fit (400 faces, 3 epochs of batch 32: a compiled fit) in a
   fresh process per setting: TensorFlow's default thread pools,
   ``OMP_NUM_THREADS=1`` (what distributed puts in its workers' and
   client's environment), one intra-op thread, each with and without
   ``tf.config.experimental.enable_op_determinism()``: fit time, its ratio
   to the default, and how far the probabilities are from the default's.

Usage::

    python benchmarks/bench_search_dask.py [--n 400] [--part search|threads|all]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import FER2013
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
THREAD_ENV = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
)


def faces(n, data=FER2013, seed=0):
    """``n`` FER-2013 Training faces (uint8, 48x48) and labels, or generated ones."""
    root = Path(data) / "train"
    rng = np.random.RandomState(seed)
    if not root.is_dir():
        X = rng.randint(0, 200, size=(n, 48, 48))
        y = np.arange(n) % 7
        for k in range(7):  # something to learn: a brighter band per class
            X[y == k, :, 6 * k : 6 * k + 6] += 55
        return X.astype(np.uint8), y, "generated"
    from PIL import Image

    X, y = [], []
    per_class = -(-n // len(CLASSES))
    for label, cls in enumerate(CLASSES):
        files = sorted((root / cls).glob("*.jpg"))
        for i in sorted(rng.choice(len(files), min(per_class, len(files)), replace=False)):
            with Image.open(files[i]) as im:
                X.append(np.asarray(im.convert("L")))
            y.append(label)
    order = rng.permutation(len(y))[:n]
    return np.stack(X)[order], np.array(y)[order], "FER-2013 Training"


def _estimator():
    from fersk import CNNClassifier

    return CNNClassifier("kaggle_cnn", {"width": 0.25}, epochs=1, random_state=0)


GRID = {"batch_size": [32, 64], "learning_rate": [1e-3, 3e-3], "label_smoothing": [0.0, 0.1]}


def _warm_up():
    import keras

    import fersk.classifiers  # noqa: F401

    keras.ops.convert_to_numpy(keras.ops.zeros(1))
    return os.getpid()


def _rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def search_table(X, y):
    import dask
    import distributed
    import joblib
    from sklearn.model_selection import GridSearchCV

    _warm_up()
    rows = []

    def run():
        start = time.perf_counter()
        search = GridSearchCV(_estimator(), GRID, cv=2, refit=False).fit(X, y)
        wall = time.perf_counter() - start
        res = search.cv_results_
        compute = float(np.sum((res["mean_fit_time"] + res["mean_score_time"]) * 2))
        return wall, compute, res

    wall, compute, reference = run()
    rows.append(("n_jobs=1 (this process)", 0.0, 0.0, wall, compute, "-", "-"))
    mirror = {k: os.environ[k] for k in THREAD_ENV if k in os.environ}
    cores = os.cpu_count()
    settings = [(1, {}, ""), (2, {}, "")]
    if cores >= 2:  # each worker's TensorFlow on its share of the cores
        share = str(cores // 2)
        settings.append((2, {"TF_NUM_INTRAOP_THREADS": share, "TF_NUM_INTEROP_THREADS": share},
                         f", {share} TF thread{'s' * (cores > 3)} each"))
    for n_workers, threads, label in settings:
        start = time.perf_counter()
        with dask.config.set({"distributed.nanny.pre-spawn-environ": mirror}):
            cluster = distributed.LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True,
                dashboard_address=None, env={"TF_CPP_MIN_LOG_LEVEL": "3", **threads},
            )
            client = distributed.Client(cluster)
        started = time.perf_counter() - start
        start = time.perf_counter()
        client.run(_warm_up)
        warm = time.perf_counter() - start
        with joblib.parallel_backend("dask"):
            wall, compute, res = run()
        rss = client.run(_rss_mb)
        same = all(
            np.array_equal(res[k], reference[k]) for k in reference
            if k.startswith(("split", "mean_test", "std_test", "rank"))
        )
        rows.append((
            f"dask, {n_workers} worker{'s' * (n_workers > 1)}{label}", started, warm, wall, compute,
            " / ".join(f"{v:.0f}" for v in rss.values()), "yes" if same else "NO",
        ))
        client.close()
        cluster.close()
    base = rows[0][3]
    print(f"\n8 candidates x 2 folds, {len(y)} images, kaggle_cnn width 0.25, 1 epoch\n")
    print("| setting | cluster start s | workers' imports s | search s | ratio to n_jobs=1 "
          "| fit+score s (sum) | worker RSS MB | cv_results_ = n_jobs=1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, started, warm, wall, compute, rss, same in rows:
        print(f"| {name} | {started:.1f} | {warm:.1f} | {wall:.1f} | {base / wall:.2f}x "
              f"| {compute:.1f} | {rss} | {same} |")


_FIT = """
import json, os, sys, time
import numpy as np
sys.path.insert(0, {bench_dir!r})
from bench_search_dask import faces
if {det}:
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
from fersk import CNNClassifier
X, y, _ = faces({n}, data={data!r})
clf = CNNClassifier("kaggle_cnn", {{"width": 0.25}}, epochs=3, batch_size=32, random_state=0)
clf.fit(X[:10], y[:10])  # start TensorFlow outside the timing
start = time.perf_counter()
clf.fit(X, y)
fit = time.perf_counter() - start
np.save({out!r}, clf.predict_proba(X))
print(json.dumps({{"fit": fit}}))
"""


def threads_table(n, data, tmp):
    settings = [
        ("default thread pools", {}),
        ("OMP_NUM_THREADS=1 (distributed's default)", {"OMP_NUM_THREADS": "1"}),
        ("TF_NUM_INTRAOP_THREADS=1", {"TF_NUM_INTRAOP_THREADS": "1"}),
    ]
    results = []
    for det in (False, True):
        for name, extra in settings:
            out = os.path.join(tmp, f"p{len(results)}.npy")
            env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
            env.update(extra, TF_CPP_MIN_LOG_LEVEL="3")
            script = _FIT.format(bench_dir=str(Path(__file__).parent), det=det, n=n,
                                 data=str(data), out=out)
            res = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                 capture_output=True, text=True)
            fit = json.loads(res.stdout.strip().splitlines()[-1])["fit"]
            results.append((name + (", op determinism" if det else ""), fit, np.load(out)))
    base_fit, base_p = results[0][1], results[0][2]
    print(f"\nOne seeded fit, {n} images, kaggle_cnn width 0.25, 3 epochs of batch 32, "
          "fresh process each\n")
    print("| setting | fit s | time ratio | max abs diff of probabilities to the default "
          "| same predicted class | = same threads without op determinism |")
    print("|---|---|---|---|---|---|")
    for i, (name, fit, p) in enumerate(results):
        twin = results[i - 3][2] if i >= 3 else None
        print(f"| {name} | {fit:.1f} | {fit / base_fit:.2f} | {np.abs(p - base_p).max():.2g} "
              f"| {np.mean(p.argmax(1) == base_p.argmax(1)):.1%} "
              f"| {'-' if twin is None else ('identical' if np.array_equal(p, twin) else 'differs')} |")
    det = [r for r in results[3:]]
    print("\nOp determinism across thread settings: "
          + ("identical" if all(np.array_equal(det[0][2], r[2]) for r in det) else "still differs"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="images (default 400)")
    parser.add_argument("--data", default=str(FER2013), help="FER-2013 folder root")
    parser.add_argument("--part", choices=["search", "threads", "all"], default="all")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    X, y, source = faces(args.n, args.data)
    print(f"{source}: {len(y)} images; {os.cpu_count()} CPU cores")
    if args.part in ("search", "all"):
        search_table(X, y)
    if args.part in ("threads", "all"):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            threads_table(args.n, args.data, tmp)


if __name__ == "__main__":
    main()
