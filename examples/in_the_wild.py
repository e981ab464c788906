"""Training beyond FER-2013: several sources, weighted, degraded, cross-validated by source.

Faces from FER-2013, SFEW 2.0 film frames and ExpW web photos
(``fersk.datasets.load_in_the_wild``; muxspace's photos are left out here:
press photos, mostly neutral and happy; every face cut by the bundled
pipeline's own FaceCropper, so training and prediction see the same
framing), the sources weighted (``source_weight``, an estimator parameter:
"balanced" gives each source of a fit the same total, a dict each source
its own weight), trained with or without domain degradations
(``degrade``), both searched with leave-one-source-out cross-validation:
each score is a source the network never saw.

    python examples/in_the_wild.py            # a few minutes: small subsets
    python examples/in_the_wild.py --per-source 2000 --epochs 10

The first run crops the web photos (about 10 minutes on 2 cores; cached
afterwards, see ``fersk.datasets``).
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn import config_context
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from fersk import CNNClassifier
from fersk.datasets import load_in_the_wild

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--per-source", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    if not (Path(args.data) / "sfew-train").is_dir():
        raise SystemExit(f"no development data at {args.data} (see the README's Data section)")

    wild = load_in_the_wild(args.data, sources=["fer2013", "sfew", "expw"], verbose=1)
    rng = np.random.RandomState(0)
    keep = np.concatenate([
        rng.permutation(np.flatnonzero(wild.source == s))[:args.per_source]
        for s in np.unique(wild.source)
    ])
    X, y, source = wild.images[keep], wild.target[keep], wild.source[keep]
    print({str(s): int((source == s).sum()) for s in np.unique(source)})

    net = CNNClassifier("vgg_fer", {"width": 0.25}, epochs=args.epochs, batch_size=64,
                        optimizer="sgd", learning_rate=0.02,
                        learning_rate_schedule="warmup_cosine", class_weight="balanced",
                        random_state=0)
    grid = {"degrade": [None, True],
            # A source a fold leaves out is ignored in its fit (LeaveOneGroupOut).
            "source_weight": ["balanced", {"sfew": 4.0, "expw": 4.0}]}
    with config_context(enable_metadata_routing=True):
        net.set_fit_request(source=True)  # each image's source reaches fit
        search = GridSearchCV(net, grid, cv=LeaveOneGroupOut())
        search.fit(X, y, groups=source, source=source)
    for params, score, fold_scores in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"],
        zip(*[search.cv_results_[f"split{k}_test_score"] for k in range(search.n_splits_)]),
    ):
        print(params, f"mean {score:.3f}", "left out:",
              dict(zip(np.unique(source).tolist(), np.round(fold_scores, 3).tolist())))


if __name__ == "__main__":
    main()
