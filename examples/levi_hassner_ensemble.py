"""Levi & Hassner's recipe on FER-2013: CNNs x (raw pixels, mapped LBP), averaged.

Levi & Hassner (ICMI 2015, "Emotion Recognition in the Wild via
Convolutional Neural Networks and Mapped Binary Patterns") train several
CNN architectures, each on several representations of the face - the raw
grey image and LBP codes mapped to 3-D points by multidimensional scaling
(so that similar codes get similar "colours") with different LBP radii -
and average the networks' class probabilities.  Here that is one
:class:`fersk.CNNEnsembleClassifier` whose members are every
(architecture, representation) pair::

    members = [("cnn_raw", CNNClassifier(arch, ...)),
               ("cnn_mlbp_r1", make_pipeline(MDSMappedLBP(R=1), CNNClassifier(arch, ...))),
               ...]   # every architecture x representation

The networks are trained on (a stratified subset of) the Training split and
the script prints the PublicTest accuracy of each member and of the
ensemble.  The paper's networks are VGG-S-sized and trained for many
epochs on a GPU; the defaults here (quarter-width networks, a 1,400-image
subset, 6 epochs, 6 members) only show the recipe working: on 2 shared CPU
cores they took about 4.5 minutes, the members reached 0.28-0.34 PublicTest
accuracy and the ensemble 0.347, above its best member (the majority class
is 0.249).  With ``--epochs 2`` it takes half as long, but most members
barely leave the majority class.  ``--full`` uses the whole Training split, full-width networks
and 30 epochs with early stopping on a validation fraction.

Usage::

    python examples/levi_hassner_ensemble.py [--data ../shared/data/fer2013]
        [--n-train 1400] [--n-test N] [--epochs 6] [--width 0.25]
        [--architectures kaggle_cnn,mtcnn_cnn] [--radii 1,2] [--full]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from fersk import CNNClassifier, CNNEnsembleClassifier, MDSMappedLBP
from fersk.datasets import load_fer2013

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("FERSK_FER2013", ROOT.parent / "shared/data/fer2013"))


def subset(X, y, n, seed):
    """A stratified random subset of ``n`` samples (all when n is None)."""
    if n is None or n >= len(y):
        return X, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return X[keep], y[keep]


def build_ensemble(architectures, radii, *, width, epochs, batch_size, full, seed, verbose):
    """The (architecture x representation) members, as one ensemble."""
    representations = [("raw", None)] + [
        (f"mlbp_r{r:g}".replace(".", "_"), MDSMappedLBP(P=8, R=r, random_state=seed))
        for r in radii
    ]
    members = []
    for arch in architectures:
        for rep_name, representation in representations:
            network = CNNClassifier(
                architecture=arch,
                architecture_params={"width": width},
                epochs=epochs,
                batch_size=batch_size,
                validation_fraction=0.1 if full else None,
                augment=full,
                random_state=seed,
            )
            # A member is a network, or a pipeline of its representation and network.
            member = network if representation is None else make_pipeline(
                clone(representation), network
            )
            members.append((f"{arch}_{rep_name}", member))
    return CNNEnsembleClassifier(members, verbose=verbose)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="FER-2013 folder or fer2013.csv")
    parser.add_argument("--n-train", type=int, default=1400,
                        help="stratified subset of the Training split (default 1400)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="stratified subset of PublicTest (default: all 3589)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25,
                        help="channel multiplier of every network (1 = published size)")
    parser.add_argument(
        "--architectures",
        default="kaggle_cnn,mtcnn_cnn",
        help="comma-separated: vgg_s, facechannel, kaggle_cnn, mtcnn_cnn, lbcnn",
    )
    parser.add_argument("--radii", default="1,2",
                        help="LBP radii of the mapped-LBP representations")
    parser.add_argument(
        "--full",
        action="store_true",
        help="whole Training split, width 1, 30 epochs, early stopping, augmentation",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.full:
        args.n_train, args.width, args.epochs = None, 1.0, 30

    start = time.perf_counter()
    data = load_fer2013(args.data, usage=["Training", "PublicTest"])
    train, test = data.usage == "Training", data.usage == "PublicTest"
    X_train, y_train = subset(data.images[train], data.target[train], args.n_train, args.seed)
    X_test, y_test = subset(data.images[test], data.target[test], args.n_test, args.seed)
    print(f"Training {len(y_train)} / PublicTest {len(y_test)} faces "
          f"(loaded in {time.perf_counter() - start:.1f} s)")

    ensemble = build_ensemble(
        [a.strip() for a in args.architectures.split(",") if a.strip()],
        [float(r) for r in args.radii.split(",") if r.strip()],
        width=args.width,
        epochs=args.epochs,
        batch_size=args.batch_size,
        full=args.full,
        seed=args.seed,
        verbose=1,
    )
    start = time.perf_counter()
    ensemble.fit(X_train, y_train)
    print(f"{len(ensemble.estimators_)} members fitted in {time.perf_counter() - start:.0f} s\n")

    # Members were fitted on the encoded labels: map their predictions back.
    width = max(len(name) for name in ensemble.named_estimators_)
    print(f"{'member':<{width}}  PublicTest accuracy")
    for name, member in ensemble.named_estimators_.items():
        pred = ensemble.classes_[member.predict(X_test)]
        print(f"{name:<{width}}  {np.mean(pred == y_test):.4f}")
    accuracy = np.mean(ensemble.predict(X_test) == y_test)
    print(f"{'ensemble':<{width}}  {accuracy:.4f}")
    print(f"(chance: {np.bincount(y_test).max() / len(y_test):.4f} for the majority class)")


if __name__ == "__main__":
    main()
