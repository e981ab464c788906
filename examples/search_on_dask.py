"""A CNN grid search on a cluster, through joblib: Dask (default) or Ray.

The search of the scikit-learn user, unchanged: only the joblib backend
says where the fits run.  ``GridSearchCV`` sends each worker a small pickled
estimator and a fold; joblib's Dask backend scatters the images once per
search.  With ``--check`` the same search also runs in this process
(``n_jobs=1``) and the script fails unless the results are identical.

Faces: FER-2013 PublicTest (``--data``, default ``../shared/data/fer2013``)
or, when absent, generated images.

Usage::

    pip install -e ".[dask]"
    python examples/search_on_dask.py --check           # LocalCluster: 2 worker processes
    OMP_NUM_THREADS=1 python examples/search_on_dask.py --scheduler tcp://HOST:8786 --check
    OMP_NUM_THREADS=1 python examples/search_on_dask.py --backend ray --check  # Ray (pip install ray)

A Dask cluster over several machines: on one, ``dask scheduler``; on each
machine, ``OMP_NUM_THREADS=1 dask worker tcp://HOST:8786 --nworkers 1
--nthreads 1`` (distributed's workers run with ``OMP_NUM_THREADS=1``: set
it here too for ``--check``); then ``--scheduler tcp://HOST:8786`` here.  The workers need fersk and the same
versions of TensorFlow, Keras and scikit-learn as this process.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013"


def load_faces(path, n):
    """``n`` FER-2013 PublicTest faces, or generated 48x48 'faces' when absent."""
    if Path(path).is_dir():
        from fersk.datasets import load_fer2013

        X, y = load_fer2013(path, usage="PublicTest", return_X_y=True)
        keep = np.random.RandomState(0).permutation(len(y))[:n]  # the files come by class
        return X[keep], y[keep]
    rng = np.random.RandomState(0)
    X = rng.randint(0, 200, size=(n, 48, 48))
    y = np.arange(n) % 7
    for k in range(7):
        X[y == k, :, 6 * k : 6 * k + 6] += 55
    return X.astype(np.uint8), y


def local_dask_cluster(n_workers):
    """A LocalCluster whose workers keep this process's thread settings.

    distributed's default writes ``OMP_NUM_THREADS=1`` (and MKL's and
    OpenBLAS's) into each worker's environment and into this process's;
    TensorFlow started under another ``OMP_NUM_THREADS`` rounds differently,
    so the workers' networks would not be this process's to the last digit.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536}}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, dashboard_address=None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["dask", "ray"], default="dask")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    parser.add_argument("--workers", type=int, default=2, help="local workers (default 2)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--n", type=int, default=400, help="faces (default 400)")
    parser.add_argument("--check", action="store_true", help="compare with n_jobs=1 here")
    args = parser.parse_args(argv)

    import joblib
    from sklearn.model_selection import GridSearchCV

    from fersk import CNNClassifier

    X, y = load_faces(args.data, args.n)
    net = CNNClassifier("kaggle_cnn", {"width": 0.25}, epochs=1, random_state=0)
    grid = {"batch_size": [32, 64]}

    if args.backend == "dask":
        from distributed import Client

        client = Client(args.scheduler) if args.scheduler else Client(local_dask_cluster(args.workers))
        print(f"Dask: {len(client.scheduler_info()['workers'])} workers")
    else:
        if args.check and "OMP_NUM_THREADS" not in os.environ:
            # Ray sets OMP_NUM_THREADS=1 in workers that do not have it.
            raise SystemExit("Ray's workers run with OMP_NUM_THREADS=1 unless it is set: "
                             "start with OMP_NUM_THREADS=1 so this process matches them.")
        import ray
        from ray.util.joblib import register_ray

        register_ray()
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else args.workers,
                 log_to_driver=False)
        print(f"Ray: {ray.cluster_resources().get('CPU', 0):.0f} CPUs")

    start = time.perf_counter()
    with joblib.parallel_backend(args.backend):
        remote = GridSearchCV(net, grid, cv=2).fit(X, y)
    print(f"{args.backend}: scores {np.round(remote.cv_results_['mean_test_score'], 4).tolist()}, "
          f"best {remote.best_params_} ({time.perf_counter() - start:.0f} s)")

    if args.check:
        start = time.perf_counter()
        local = GridSearchCV(net, grid, cv=2).fit(X, y)
        print(f"n_jobs=1: scores {np.round(local.cv_results_['mean_test_score'], 4).tolist()} "
              f"({time.perf_counter() - start:.0f} s)")
        for key in ("split0_test_score", "split1_test_score"):
            np.testing.assert_array_equal(local.cv_results_[key], remote.cv_results_[key])
        np.testing.assert_array_equal(
            local.best_estimator_.predict_proba(X), remote.best_estimator_.predict_proba(X)
        )
        print("identical to n_jobs=1")


if __name__ == "__main__":
    main()
