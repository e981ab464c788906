"""One new last layer for every source, by group folds: FER-2013's weight against the wild faces'.

Each model given is the default's recipe trained on one fold of
``train_in_the_wild.py --split group``; a scikit-learn
``LogisticRegression`` on its ``NetworkFeatures`` (the softmax's input, its
views averaged) is fitted on the fold's training faces, FER-2013's total
weight ``x`` times the wild faces' (or the natural mix), and scored on
PublicTest and the fold's held-out groups (SFEW films, muxspace people,
ExpW photos) beside the network as loaded.  Pooled over the folds
(PublicTest: every fold's network on the same 3,589 faces, summed).  A
probe of whether the default's last layer should change; nothing is
bundled.

    python benchmarks/head_folds.py \\
        --models runs/s48w/group_second_gated/model,runs/s48w/group_second_f1_gated/model,...
"""

import argparse
import warnings

import numpy as np

from _common import DATA, split_sources


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--models", required=True,
                        help="comma-separated model folders, one per fold (trained with --split group)")
    parser.add_argument("--heads", default="0.1:0.3,0.1:1,0.1:3,1:0.3,1:1,0.1:natural",
                        help="C:x pairs (x: FER-2013's total weight against the wild faces', "
                             "or 'natural')")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    from fersk import NetworkFeatures, pretrained
    from fersk.datasets import load_fer2013, load_in_the_wild

    heads = []
    for pair in args.heads.split(","):
        C, x = pair.split(":")
        heads.append((f"C={C}, FER-2013 {'natural' if x == 'natural' else 'x' + x}",
                      float(C), None if x == "natural" else float(x)))
    data = load_in_the_wild(args.data)
    public = load_fer2013(f"{args.data}/fer2013", usage="PublicTest")
    hits, counts = {}, {}
    for fold, model in enumerate(args.models.split(",")):
        train, tests = split_sources(data, None, by="group", fold=fold)
        rows = {"fer2013": (public.images, public.target)}
        rows.update({s: (data.images[i], data.target[i]) for s, i in tests.items()})
        features = NetworkFeatures(model).fit(None)
        F, y = features.transform(data.images[train]), data.target[train]
        wild = data.source[train] != "fer2013"
        row_features = {r: features.transform(X) for r, (X, _) in rows.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = pretrained.load(model)
            predictions = {"as loaded": {r: loaded.predict(X) for r, (X, _) in rows.items()}}
        for name, C, x in heads:
            weight = None if x is None else np.where(wild, 1.0, x * wild.sum() / (~wild).sum())
            head = LogisticRegression(C=C, max_iter=3000).fit(F, y, sample_weight=weight)
            predictions[name] = {r: head.predict(f) for r, f in row_features.items()}
        for name, by_row in predictions.items():
            for r, (_, target) in rows.items():
                hits.setdefault(name, {}).setdefault(r, 0)
                hits[name][r] += int(np.sum(by_row[r] == target))
            print(f"fold {fold} {name}: " + ", ".join(
                f"{r} {np.mean(by_row[r] == rows[r][1]):.3f}" for r in rows), flush=True)
        for r, (_, target) in rows.items():
            counts[r] = counts.get(r, 0) + len(target)
    print("\n| head | " + " | ".join(f"{r} ({counts[r]})" for r in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for name in hits:
        print(f"| {name} | " + " | ".join(f"{hits[name][r] / counts[r]:.3f} ({hits[name][r]})"
                                          for r in counts) + " |")


if __name__ == "__main__":
    main()
