"""FaceChannel's two categorical heads on FER-2013 PublicTest, a small run.

The published FaceChannel (Barros, Churamani & Sciutti 2020) ends in a
``tanh`` layer trained with mean squared error (Adamax, learning rate
0.002, ReduceLROnPlateau); fersk's default is a softmax trained with
cross-entropy.  This trains both on the same Training images and prints
their PublicTest accuracy (7 FER-2013 classes):

* ``softmax``: ``CNNClassifier("facechannel")`` with Adam 1e-3, constant;
* ``tanh (published)``: ``CNNClassifier("facechannel", head="tanh",
  optimizer="adamax", learning_rate=0.002, learning_rate_schedule="plateau")``;
* ``tanh, Adam 1e-3``: the published head with the softmax run's
  optimizer, to tell the head's effect from the optimizer's.

Usage::

    python benchmarks/bench_facechannel_heads.py [--n-train 5000] [--epochs 12]
        [--width 0.25] [--size 48] [--configs softmax "tanh (published)" ...]

Measured with the defaults on this project's shared 2-core CPU (PublicTest
majority class 0.249): softmax 0.4433 (249 s), tanh (published) 0.2577
(228 s), tanh with Adam 1e-3 0.3580 (363 s); with ``--n-train 3000
--epochs 6``: softmax 0.1831, tanh (published) 0.2494.

The defaults are a reduced run sized for a shared 2-core CPU (a stratified
subset, quarter-width network, 48x48 input, a few epochs); the full
measurement (``--n-train 0 --width 1 --size 64 --epochs 100``: all of
Training at the published 64x64, 3.6 M parameters) takes many hours on a
CPU and was not run for this project.
"""

import argparse
import time

import numpy as np
from sklearn.model_selection import train_test_split

from _common import FER2013
from fersk import CNNClassifier
from fersk.datasets import load_fer2013


def resize(images, size):
    if size == images.shape[1]:
        return images
    from skimage.transform import resize as sk_resize

    out = [sk_resize(im, (size, size), order=1, preserve_range=True, anti_aliasing=False)
           for im in images]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=FER2013)
    parser.add_argument("--n-train", type=int, default=5000, help="0: all of Training")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--configs", nargs="+",
                        default=["softmax", "tanh (published)", "tanh, Adam 1e-3"],
                        help="which of the three trainings to run (default: all)")
    args = parser.parse_args(argv)

    fer = load_fer2013(args.data, usage=["Training", "PublicTest"])
    train = fer.usage == "Training"
    X, y = fer.images[train], fer.target[train]
    X_test, y_test = fer.images[~train], fer.target[~train]
    if args.n_train and args.n_train < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=args.n_train, stratify=y, random_state=0)
    X, X_test = resize(X, args.size), resize(X_test, args.size)
    print(f"{len(y)} Training / {len(y_test)} PublicTest faces at {args.size}x{args.size}, "
          f"facechannel width {args.width}, {args.epochs} epochs")
    heads = {
        "softmax": dict(),
        "tanh (published)": dict(head="tanh", optimizer="adamax", learning_rate=0.002,
                                 learning_rate_schedule="plateau"),
        "tanh, Adam 1e-3": dict(head="tanh"),
    }
    unknown = set(args.configs) - set(heads)
    if unknown:
        parser.error(f"--configs: unknown {sorted(unknown)}; choose among {list(heads)}")
    print(f"{'head':<18} PublicTest acc  train s  learnable")
    for name, params in heads.items():
        if name not in args.configs:
            continue
        net = CNNClassifier("facechannel", {"width": args.width}, epochs=args.epochs,
                            n_iter_no_change=None, random_state=0, **params)
        start = time.perf_counter()
        net.fit(X, y)
        seconds = time.perf_counter() - start
        print(f"{name:<18} {net.score(X_test, y_test):>14.4f}  {seconds:>7.0f}  "
              f"{net.n_trainable_params_:>9}", flush=True)


if __name__ == "__main__":
    main()
