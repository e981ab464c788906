"""LBCNN (Juefei-Xu et al., CVPR 2017) on FER-2013, learnable vs fixed weights.

Trains :class:`fersk.LBCNNClassifier` - stacked local binary convolution
layers: fixed sparse ternary anchor filters, a non-linearity and a
learnable 1x1 convolution - on FER-2013 Training faces, with PublicTest as
validation data (early stopping, best weights restored), then prints the
PublicTest accuracy, the learnable and fixed parameter counts, and checks
that a joblib round trip predicts identically.

Usage::

    python examples/lbcnn_fer2013.py [--data ../shared/data/fer2013]
        [--n-train 3000] [--epochs 5] [--depth 4] [--full]

The defaults (3,000 stratified Training faces, 5 epochs, depth 4) show the
estimator working, not the paper's accuracy: measured on 2 CPU cores, 381 s
of training (about 70 s an epoch, most of it the full-resolution 3x3
anchor convolutions), PublicTest accuracy 0.3151 after 5 epochs, 535,335
learnable and 74,112 fixed parameters; ``--full`` trains on all of Training for up to 50 epochs with
augmentation (hours on a CPU; use a GPU).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.model_selection import train_test_split

from fersk import LBCNNClassifier
from fersk.datasets import load_fer2013

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("FERSK_FER2013", ROOT.parent / "shared/data/fer2013"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="FER-2013 folder or fer2013.csv")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args(argv)

    fer = load_fer2013(args.data, usage=["Training", "PublicTest"])
    train = fer.usage == "Training"
    X, y = fer.images[train], fer.target[train]
    X_test, y_test = fer.images[~train], fer.target[~train]
    epochs, augment = (50, True) if args.full else (args.epochs, False)
    if not args.full and args.n_train < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=args.n_train, stratify=y, random_state=0)
    print(f"{len(y)} Training / {len(y_test)} PublicTest faces, up to {epochs} epochs")

    lbcnn = LBCNNClassifier(
        depth=args.depth, epochs=epochs, augment=augment, n_iter_no_change=8,
        random_state=0, verbose=1,
    )
    start = time.perf_counter()
    lbcnn.fit(X, y, validation_data=(X_test, y_test))
    print(f"trained {lbcnn.n_epochs_} epochs (best {lbcnn.best_epoch_ + 1}) "
          f"in {time.perf_counter() - start:.0f} s")
    print(f"PublicTest accuracy {lbcnn.score(X_test, y_test):.4f}; parameters: "
          f"{lbcnn.n_trainable_params_:,} learnable, {lbcnn.n_fixed_params_:,} fixed "
          "(the anchors and batch-norm statistics)")

    with tempfile.TemporaryDirectory() as tmp:
        joblib.dump(lbcnn, Path(tmp) / "lbcnn.joblib")
        again = joblib.load(Path(tmp) / "lbcnn.joblib")
        assert np.array_equal(again.predict_proba(X_test[:256]), lbcnn.predict_proba(X_test[:256]))
    print("joblib round trip: identical probabilities")


if __name__ == "__main__":
    main()
