"""Keras against ONNX Runtime (float32 and int8) on a bundled model.

In one run, on FER-2013 PublicTest faces (48x48, as the network reads
them after the cropper) and on a few photos (detection included):

* ``keras``: ``pretrained.load(model, backend="keras")`` (TensorFlow);
* ``onnx``: ``pretrained.load(model, backend="onnx")`` (no TensorFlow on
  its path: MTCNN runs as ``detector="mtcnn-onnx"``);
* ``onnx int8``: the network statically quantised to int8
  (:func:`fersk.onnx.quantize_network`, QDQ, per-channel weights,
  activations calibrated on ``--calibration`` Training faces).  fersk keeps
  int8 only where it costs at most 0.5 point of PublicTest accuracy.

Prints faces/s and accuracy per path, and photos/s end to end.  Times
are each path's best of ``--rounds`` (shared machines are noisy).

Usage::

    python benchmarks/bench_onnx.py [--model fer2013_vgg_fast] [--data PATH]
        [--n 3589] [--rounds 1] [--calibration 512]
"""

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np

from _common import FER2013, best_of


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fer2013_vgg_fast")
    parser.add_argument("--data", default=FER2013)
    parser.add_argument("--n", type=int, default=None, help="PublicTest faces (default: all)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--calibration", type=int, default=512)
    args = parser.parse_args()

    from skimage import data as skdata

    from fersk import pretrained
    from fersk.datasets import load_fer2013
    from fersk.onnx import OnnxNetworkClassifier, quantize_network

    warnings.simplefilter("ignore")
    root = Path(args.data)
    test = load_fer2013(root / "test", usage="PublicTest")
    X, y = test.data[: args.n], test.target[: args.n]
    train = load_fer2013(root / "train")
    rng = np.random.default_rng(0)
    calib = train.data[rng.choice(len(train.data), args.calibration, replace=False)]
    calib = np.asarray(calib, dtype=np.float32).reshape(-1, 48, 48)

    pretrained.export(args.model)
    keras_model = pretrained.load(args.model, backend="keras")
    onnx_model = pretrained.load(args.model, backend="onnx")
    int8_model = None
    network = onnx_model[-1]
    if isinstance(network, OnnxNetworkClassifier):
        tmp = tempfile.mkdtemp()
        int8 = quantize_network(network.path, Path(tmp) / "int8.onnx", calib)
        int8_model = pretrained.load(args.model, backend="onnx")
        int8_model[-1].path = int8
    paths = {"keras": keras_model, "onnx": onnx_model, "onnx int8": int8_model}

    photos = [skdata.astronaut(), np.ascontiguousarray(skdata.astronaut()[:, ::-1]),
              skdata.coffee(), skdata.chelsea()]
    rows = []
    for label, model in paths.items():
        if model is None:
            continue
        model.predict_proba(X[:8])  # warm-up (tracing, sessions)
        model.predict_proba(photos[:1])
        seconds, proba = best_of(lambda: model.predict_proba(X), args.rounds)
        acc = float((model.classes_[proba.argmax(1)] == y).mean())
        photo_s, _ = best_of(lambda: model.predict_proba(photos), args.rounds)
        rows.append((label, len(X) / seconds, acc, len(photos) / photo_s))
        print(f"  {label}: done", flush=True)
    print(f"\n{args.model}: {len(X)} PublicTest faces, {len(photos)} photos, "
          f"best of {args.rounds}")
    print(f"{'path':<10} {'faces/s':>9} {'accuracy':>9} {'Δ points':>9} {'photos/s':>9}")
    base = rows[0][2]
    for label, fps, acc, pps in rows:
        print(f"{label:<10} {fps:9.1f} {acc:9.4f} {100 * (acc - base):+9.2f} {pps:9.2f}")


if __name__ == "__main__":
    main()
