"""Where the models go wrong on one in-the-wild source: recall and share of predictions per class.

For each model as loaded, on every face of the source (``load_in_the_wild``,
cut by the bundled FaceCropper) and on its held-out 20 % (the split of
``train_in_the_wild.py``, which the wild-trained models never saw): accuracy,
each class's recall, and how often each class is predicted against how often
it is the label.  A class predicted far more often than it occurs is the
models' bias on that source.

    python benchmarks/bench_wild_confusion.py --source expw \
        --models fer2013_vgg_fast,wild_vgg_fast,wild_ensemble
"""

import argparse
import warnings

import numpy as np

from _common import DATA, split_sources

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--source", default="expw", choices=("expw", "sfew", "muxspace"))
    parser.add_argument("--models", default="fer2013_vgg_fast,wild_vgg_fast,wild_vgg_small,wild_ensemble")
    parser.add_argument("--backend", default="keras", choices=("keras", "onnx"))
    parser.add_argument("--margin", type=float, default=None,
                        help="cut the faces with this FaceCropper margin instead of the bundled one")
    parser.add_argument("--align", action="store_true",
                        help="cut the faces aligned on the eyes (FaceCropper(align=True))")
    args = parser.parse_args(argv)

    from fersk import pretrained
    from fersk.datasets import bundled_cropper, load_in_the_wild

    # The held-out split follows the bundled crops (which faces the wild
    # models trained on), whatever geometry the faces are cut with here.
    held_out = split_sources(load_in_the_wild(args.data, sources=[args.source]), None)[1][
        args.source]
    cropper = bundled_cropper()
    if args.margin is not None or args.align:
        cropper.set_params(align=args.align,
                           margin=cropper.margin if args.margin is None else args.margin)
        print(f"faces cut with FaceCropper(margin={cropper.margin}, align={cropper.align})")
    data = load_in_the_wild(args.data, sources=[args.source], cropper=cropper)
    X, y = data.images, data.target
    share = np.bincount(y, minlength=7) / len(y)

    print(f"{args.source}: {len(y)} faces ({len(held_out)} held out); labels: "
          + ", ".join(f"{c} {s:.0%}" for c, s in zip(CLASSES, share)))
    header = "| model | acc. all | acc. held out | " + " | ".join(CLASSES) + " |"
    print("\nrecall per class (all faces), and predicted share / label share:\n")
    print(header)
    print("|---" * (3 + len(CLASSES)) + "|")
    for name in [m for m in args.models.split(",") if m]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = pretrained.load(name, backend=args.backend).predict(X)
        recall = [np.mean(pred[y == c] == c) if np.any(y == c) else float("nan") for c in range(7)]
        predicted = np.bincount(pred, minlength=7) / len(pred)
        cells = [f"{r:.2f} ({p / s:.1f}x)" if s else "–" for r, p, s in zip(recall, predicted, share)]
        print(f"| {name} | {np.mean(pred == y):.3f} | {np.mean(pred[held_out] == y[held_out]):.3f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
