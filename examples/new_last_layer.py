"""A new last layer for your own faces: a bundled network's features, a logistic regression on top.

Web photos labelled by ExpW's convention (an open-mouthed shout is
"surprise", where FER-2013's labellers say "angry") disagree with the
bundled network's last layer, not with what it sees.  ``NetworkFeatures``
gives the network's last hidden layer (256 values a face, the centre view
and its mirror averaged) to any scikit-learn estimator; a
``LogisticRegression`` fitted on labelled faces of one's own domain is a new
last layer, trained in seconds on the CPU.  Scored here by cross-validation
over ExpW's development faces, folds by photo (the faces of one photo stay
together), beside the bundled pipeline as loaded on the same faces:

    python examples/new_last_layer.py                 # five folds, about a minute
    python examples/new_last_layer.py --C 0.01 --folds 10
    python examples/new_last_layer.py --save my_expw_model   # then: fersk predict --model my_expw_model ...

``--save`` fits the head on every face, folds it into the network
(``fold_head``: the head becomes the network's output layer) and writes a
model folder that ``fersk predict``, ``fersk serve``, ``fersk live`` and the
ONNX back end load as any bundled model.

The model is ``fer2013_vgg_fast`` by default: trained on FER-2013 alone, it
never saw an ExpW photo, so every figure printed is held out (the bundled
``wild_*`` models trained on about four fifths of these photos: with
``--model wild_vgg_fast`` both columns are optimistic).  On the same faces,
``benchmarks/new_last_layer.py`` (folds by photo, stratified) gives 0.440
against 0.332 as loaded (benchmarks/RESULTS.md, "A new last layer for one's
own faces").  The first run crops the photos (a few minutes; cached
afterwards, see ``fersk.datasets``).
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from fersk import NetworkFeatures, pretrained
from fersk.datasets import FER2013_CLASSES, load_in_the_wild
from fersk.network_features import fold_head

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--model", default="fer2013_vgg_fast",
                        help="a bundled model or model folder (default: one that never saw ExpW)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--C", type=float, default=0.1, help="LogisticRegression's C")
    parser.add_argument("--max-faces", type=int, default=None, help="the first faces only (a quick look)")
    parser.add_argument("--save", default=None,
                        help="a model folder to write: the head fitted on every face, in the network")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "expw-dev").is_dir():
        raise SystemExit(f"no ExpW development photos at {args.data} (see the README's Data section)")

    expw = load_in_the_wild(args.data, sources=["expw"], verbose=1)
    X, y, photos = expw.images, expw.target, expw.filenames
    if args.max_faces is not None:
        X, y, photos = X[: args.max_faces], y[: args.max_faces], photos[: args.max_faces]

    loaded = pretrained.load(args.model)
    as_loaded = loaded.predict(X)
    head = make_pipeline(NetworkFeatures(args.model), LogisticRegression(C=args.C, max_iter=3000))
    folds = list(GroupKFold(args.folds).split(X, y, groups=photos))
    new_layer = cross_val_predict(head, X, y, cv=folds)

    print(f"ExpW development faces, {args.folds} folds by photo ({len(y)} faces, "
          f"{len(set(photos))} photos); {args.model} as loaded beside a new last layer")
    print("| fold | faces | as loaded | new last layer |")
    print("|---|---|---|---|")
    for k, (_, test) in enumerate(folds):
        print(f"| {k} | {len(test)} | {np.mean(as_loaded[test] == y[test]):.3f} | "
              f"{np.mean(new_layer[test] == y[test]):.3f} |")
    print(f"| all | {len(y)} | {np.mean(as_loaded == y):.3f} | {np.mean(new_layer == y):.3f} |")

    if args.save:
        model = fold_head(head.fit(X, y))
        # The head's classes are FER-2013 codes, some perhaps absent from a
        # small subset: named, so the folder prints "happy", not "3".
        names = [FER2013_CLASSES[c] for c in model.steps[-1][1].classes_]
        pretrained.save(model, args.save, class_names=names, description=(
            f"{args.model} with a new last layer: LogisticRegression(C={args.C:g}) on its "
            f"features, fitted on {len(y)} ExpW development faces (examples/new_last_layer.py)."))
        print(f"wrote {args.save}: {model.steps[-1][1].classes_.size} classes")


if __name__ == "__main__":
    main()
