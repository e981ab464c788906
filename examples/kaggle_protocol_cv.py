"""The Kaggle-protocol CNN, trained on Training + PublicTest, cross-validated.

The Kaggle-protocol source project trains its CNN
(:func:`fersk.architectures.kaggle_cnn`: three stages of two 3x3
convolutions, 64-128-256 channels, a 512-unit dense layer) on FER-2013's
Training and PublicTest images together and reports PrivateTest.
PrivateTest is held out of this project (it is measured independently of
this code), so the number this script reports is the stratified k-fold
cross-validated accuracy on the images the project trains on, Training +
PublicTest, with ``sklearn.model_selection.cross_validate``; the final
model is then fitted on all of them, as the source project does.

Usage::

    python examples/kaggle_protocol_cv.py [--data ../shared/data/fer2013]
        [--n 3000] [--folds 3] [--epochs 6] [--width 0.25] [--full] [--no-final]

The defaults are a CPU-sized run (a stratified 3,000-image subset of the
32,144 Training + PublicTest images, 3 folds, a quarter-width network, 6
epochs, no augmentation), which shows the protocol, not the network's
accuracy at full size; ``--full`` uses every image, the full-width network,
5 folds and 30 epochs with augmentation (days on a CPU).  Measured with
the defaults on this project's shared 2-core CPU: cross-validated accuracy
0.2663 +- 0.0088 (majority class 0.2513) in 184 s - the small network has
barely left the majority class at this budget; see ``docs/seeds.rst``.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split

from fersk import CNNClassifier
from fersk.datasets import load_fer2013

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("FERSK_FER2013", ROOT.parent / "shared/data/fer2013"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="FER-2013 folder or fer2013.csv")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--no-final", action="store_true",
                        help="report the cross-validated accuracy only, without the final fit")
    args = parser.parse_args(argv)

    data = load_fer2013(args.data, usage=["Training", "PublicTest"])
    X, y = data.images, data.target
    folds, epochs, width = (5, 30, 1.0) if args.full else (args.folds, args.epochs, args.width)
    if not args.full and args.n < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=args.n, stratify=y, random_state=0)
    print(f"{len(y)} Training + PublicTest faces, {folds}-fold CV, kaggle_cnn width {width}, "
          f"{epochs} epochs")
    net = CNNClassifier("kaggle_cnn", {"width": width}, epochs=epochs, augment=args.full,
                        n_iter_no_change=None, random_state=0)
    start = time.perf_counter()
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    res = cross_validate(net, X, y, cv=cv, return_train_score=True)
    print(f"fold accuracies: {np.round(res['test_score'], 4).tolist()}")
    print(f"cross-validated accuracy {res['test_score'].mean():.4f} "
          f"+- {res['test_score'].std():.4f} (training folds "
          f"{res['train_score'].mean():.4f}); majority class "
          f"{np.bincount(y).max() / len(y):.4f}; {time.perf_counter() - start:.0f} s")
    if args.no_final:
        return
    # The deployed model: fitted on all of them, as the source project does.
    net.fit(X, y)
    print(f"final model fitted on all {len(y)} images ({net.n_trainable_params_} parameters)")


if __name__ == "__main__":
    main()
