"""Balanced classes: each model's recall per class, and a prior shift p / prior**tau, beside fer.

FER-2013's classes are imbalanced (disgust 1.5 % of Training) and so are
PublicTest and PrivateTest; class-balanced test sets (lab-posed faces, the
class-balanced ExpW subset) weigh every class alike.  This prints, on
PublicTest, each bundled model's recall per class and its balanced
accuracy over the six expressive classes (what a 6-class lab-posed set
rewards), for the probabilities as loaded and divided by FER-2013
Training's class shares to the power ``tau`` (logit adjustment: 0 leaves
them as they are, 1 is Bayes' rule for balanced classes); then, with
``--folds``, the same shift on the group folds' held-out films, photos and
people (``_common.held_out_rows(by="group")``), each fold's run of the
default's recipe at the default's views, ``fer`` on the same crops.

    python benchmarks/class_priors.py --models wild_vgg_fast,fer2013_vgg_fast,wild_ensemble \\
        --folds "runs/s48w/group_second_f{k}_gated/model"

(fold 0 may be named without ``_f0``, as in ``seed_ensemble.py``.)
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA, held_out_rows, load_peer, locate_peer, peer_scale, resize_faces, run_model)
from seed_ensemble import fold_folder  # noqa: E402

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
TAUS = (0.0, 0.2, 0.3, 0.5, 0.7, 1.0)


def shifted(proba, prior, tau):
    """Labels after dividing the probabilities by ``prior ** tau``."""
    return np.argmax(proba / prior**tau, axis=1)


def recalls(labels, y):
    """Recall of each of the seven classes (NaN where a class is absent)."""
    return np.array([np.mean(labels[y == k] == k) if np.any(y == k) else np.nan for k in range(7)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--models", default="wild_vgg_fast,fer2013_vgg_fast,wild_ensemble")
    parser.add_argument("--folds", default=None,
                        help="a model-folder pattern, '{k}' for the group fold: score the shift "
                             "on each fold's held-out wild rows too")
    args = parser.parse_args(argv)

    from fersk import pretrained
    from fersk.datasets import load_fer2013

    train = load_fer2013(Path(args.data) / "fer2013", usage="Training").target
    prior = np.bincount(train, minlength=7) / len(train)
    public = load_fer2013(Path(args.data) / "fer2013", usage="PublicTest")
    folder = locate_peer()
    peer = load_peer(folder)  # its label order checked: columns read in FER-2013's order below

    def peer_proba(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras on the peer's input name, every call
            return run_model(peer, peer_scale(resize_faces(X, 64)), 512)

    probas = {"fer": peer_proba(public.images)}
    for name in [m for m in args.models.split(",") if m]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probas[name] = pretrained.load(name).predict_proba(public.images)
    y = public.target
    print(f"PublicTest, {len(y)} faces; classes " + ", ".join(
        f"{c} {n}" for c, n in zip(CLASSES, np.bincount(y, minlength=7))))
    print("\n| model | accuracy | " + " | ".join(CLASSES) + " | balanced, 6 expressive |")
    print("|---" * (3 + len(CLASSES)) + "|")
    for name, p in probas.items():
        r = recalls(p.argmax(1), y)
        print(f"| {name} | {np.mean(p.argmax(1) == y):.3f} | " + " | ".join(f"{v:.3f}" for v in r)
              + f" | {np.nanmean(r[:6]):.3f} |")
    print("\nprior shift, PublicTest: accuracy / balanced accuracy over the 6 expressive classes\n")
    print("| model | " + " | ".join(f"tau {t}" for t in TAUS) + " |")
    print("|---" * (1 + len(TAUS)) + "|")
    for name, p in probas.items():
        cells = []
        for t in TAUS:
            labels = shifted(p, prior, t)
            cells.append(f"{np.mean(labels == y):.3f} / {np.nanmean(recalls(labels, y)[:6]):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if not args.folds:
        return

    pooled = {}  # (row, who) -> [probabilities], and (row, "y") -> [labels]
    for k in range(5):
        folder = fold_folder(args.folds, k)
        if folder is None:
            print(f"class_priors: fold {k} left out: no model folder", file=sys.stderr)
            continue
        model = pretrained.load(folder, backend="keras")
        rows = held_out_rows(args.data, by="group", fold=k)
        rows.pop("fer2013")  # PublicTest is scored above
        for row, (X, yk) in rows.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pooled.setdefault((row, "net"), []).append(model.predict_proba(X))
            pooled.setdefault((row, "fer"), []).append(peer_proba(X))
            pooled.setdefault((row, "y"), []).append(yk)
    print("\nprior shift, group folds pooled (never seen): accuracy\n")
    print("| row | faces | model | " + " | ".join(f"tau {t}" for t in TAUS) + " |")
    print("|---" * (3 + len(TAUS)) + "|")
    for row in sorted({r for r, _ in pooled}):
        yr = np.concatenate(pooled[row, "y"])
        for who in ("net", "fer"):
            p = np.concatenate(pooled[row, who])
            cells = [f"{np.mean(shifted(p, prior, t) == yr):.3f}" for t in TAUS]
            print(f"| {row} | {len(yr)} | {'fold run' if who == 'net' else 'fer'} | "
                  + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
