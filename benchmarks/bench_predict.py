"""Classification speed of a fitted network: fersk's predict_proba against Keras.

On the network of a bundled model (default: ``fer2013_cnn``) and FER-2013
PublicTest faces (48x48, as the network reads them after the cropper), in
one run, alternating the paths and keeping each one's best of ``--rounds``
(shared machines are noisy; read the ratios):

* ``eager calls per batch``: ``model_(batch, training=False)`` batch by
  batch, what ``predict_proba`` did before it went through a compiled
  inference model;
* ``keras model.predict``: Keras's own compiled predict loop on the same
  ``model_``;
* ``fersk predict_proba``: the estimator as users call it (validation,
  the cached inference model with batch norm folded into the
  convolutions, float64 probabilities), traced without XLA
  (``jit_compile`` False or "auto") and with ``jit_compile=True`` (XLA);
  and the bundled test-time views, when the model has several.

Usage::

    python benchmarks/bench_predict.py [--model fer2013_cnn] [--n 3589] [--rounds 3]
"""

import argparse
import os
from pathlib import Path

import numpy as np

from _common import FER2013, best_of


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fer2013_cnn", help="bundled model name or folder")
    parser.add_argument("--data", default=str(FER2013), help="FER-2013 CSV or folder root")
    parser.add_argument("--n", type=int, default=3589, help="PublicTest faces (default all)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        raise SystemExit(f"no FER-2013 at {args.data}; pass --data or set FERSK_FER2013")

    import keras

    from fersk import pretrained
    from fersk.datasets import load_fer2013

    faces = load_fer2013(args.data, usage="PublicTest", verbose=0).images[: args.n]
    net = pretrained.load(args.model, backend="keras").steps[-1][1]
    # One view per face on every path (model_ itself has no test-time
    # augmentation); the bundled setting is timed separately below.
    bundled = {"test_time_flip": net.test_time_flip,
               "test_time_crops": getattr(net, "test_time_crops", "center")}
    net.set_params(test_time_flip=False)
    if hasattr(net, "test_time_crops"):
        net.set_params(test_time_crops="center")
    x = net._as_model_input(faces)
    batch = net.predict_batch_size or max(net.batch_size, 256)

    def eager():
        return np.concatenate([
            keras.ops.convert_to_numpy(net.model_(x[i : i + batch], training=False))
            for i in range(0, len(x), batch)
        ])

    def keras_predict():
        return net.model_.predict(x, batch_size=batch, verbose=0)

    def fersk_traced():
        return net.set_params(jit_compile=False).predict_proba(faces)

    def fersk_xla():
        return net.set_params(jit_compile=True).predict_proba(faces)

    def fersk_bundled():
        net.set_params(jit_compile=default_jit, **bundled)
        try:
            return net.predict_proba(faces)
        finally:
            net.set_params(test_time_flip=False)
            if hasattr(net, "test_time_crops"):
                net.set_params(test_time_crops="center")

    default_jit = net.jit_compile
    paths = {
        "eager calls per batch (before)": eager,
        "keras model.predict": keras_predict,
        "fersk predict_proba (traced, no XLA)": fersk_traced,
        "fersk predict_proba (jit_compile=True: XLA)": fersk_xla,
    }
    views = (5 if bundled["test_time_crops"] == "five" else 1) * (2 if bundled["test_time_flip"] else 1)
    reference = eager()
    for fn in paths.values():  # warm-up: tracing and compilation are not timed
        assert np.allclose(fn(), reference, atol=1e-4)
    if views > 1:
        paths[f"fersk predict_proba, bundled ({views} test-time views)"] = fersk_bundled
        fersk_bundled()
    best = {name: float("inf") for name in paths}
    for _ in range(args.rounds):
        for name, fn in paths.items():
            best[name] = min(best[name], best_of(fn, 1)[0])

    print(f"{args.model}: {len(faces)} PublicTest faces, batch {batch}, "
          f"{os.cpu_count()} CPU cores, Keras {keras.__version__} ({keras.backend.backend()})")
    header = f"{'path':<44} {'faces/s':>9} {'vs eager':>9} {'vs model.predict':>17}"
    print(header + "\n" + "-" * len(header))
    for name, seconds in best.items():
        rate = len(faces) / seconds
        print(f"{name:<44} {rate:>9.0f} {best[next(iter(best))] / seconds:>9.2f} "
              f"{best['keras model.predict'] / seconds:>17.2f}")


if __name__ == "__main__":
    main()
