"""Weight-space ensembles of a bundled network and its in-the-wild fine-tune.

WiSE-FT (Wortsman et al., CVPR 2022): the weights ``(1 - a) * start + a *
fine_tuned`` of two networks of one architecture, one fine-tuned from the
other, keep most of the fine-tune's gain on the new domains and most of the
start's accuracy on the old one, for no cost at prediction.  Prints, for
each ``a``, accuracy as loaded (the model's own test-time views, or
``--test-time-crops``) on
FER-2013 PublicTest and on the 20 % held-out part of each development
source (the split of ``train_in_the_wild.py``), and saves the model of
``--save-alpha`` as a model folder.

    python benchmarks/wise_ft.py --start fer2013_vgg_fast --tuned runs/wild/mix/model \\
        --alphas 0.65,0.75,0.85,1 --save-alpha 0.75 --test-time-crops center --out runs/wild/wise
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from _common import DATA, held_out_rows

from fersk._fsync import written_atomically


def average_weights(pipes, coefficients):
    """The last pipeline of ``pipes`` (fitted, networks of one architecture)
    with its network's weights replaced by ``sum(c * weights)`` over them."""
    from fersk._keras_base import _INFERENCE_MODELS

    from fersk._labels import class_names_of

    # One architecture is not one model: the soup keeps the last pipeline's
    # classes, names and steps before the network, so they must be the same
    # in every ingredient (a network of classes 4-6 averaged into one of 0-2).
    first = pipes[0]
    for pipe in pipes[1:]:
        if (pipe.classes_.tolist() != first.classes_.tolist()
                or class_names_of(pipe) != class_names_of(first)):
            raise SystemExit(
                f"the models differ in classes ({first.classes_.tolist()} named "
                f"{class_names_of(first)} against {pipe.classes_.tolist()} named "
                f"{class_names_of(pipe)}): their weights cannot be averaged")
        before = [(n, type(e).__name__, repr(e.get_params())) for n, e in pipe.steps[:-1]]
        if before != [(n, type(e).__name__, repr(e.get_params())) for n, e in first.steps[:-1]]:
            raise SystemExit(f"the models' steps before the network differ: {before}")
    models = [pipe.steps[-1][1].model_ for pipe in pipes]
    weights = [m.get_weights() for m in models]
    if any([w.shape for w in ws] != [w.shape for w in weights[0]] for ws in weights):
        raise SystemExit("the networks differ in shape: not one architecture")
    models[-1].set_weights([sum(c * w for c, w in zip(coefficients, layer))
                            for layer in zip(*weights)])
    _INFERENCE_MODELS.pop(models[-1], None)  # its folded inference copy is stale
    return pipes[-1]


def interpolate(start, tuned, alpha):
    """``tuned`` (a fitted pipeline) with its network's weights mixed with ``start``'s."""
    return average_weights([start, tuned], [1 - alpha, alpha])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--start", default="fer2013_vgg_fast")
    parser.add_argument("--tuned", default="runs/wild/mix/model")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--save-alpha", type=float, default=None)
    parser.add_argument("--out", default="runs/wild/wise")
    parser.add_argument("--test-time-crops", default=None, choices=["center", "five"],
                        help="score and save with these crops (the tuned model's flip kept): "
                             "'center' gives the bundled default's two views")
    args = parser.parse_args(argv)

    from fersk import pretrained

    rows = held_out_rows(args.data)
    start = pretrained.load(args.start, backend="keras")
    table = {}
    for alpha in [float(a) for a in args.alphas.split(",")]:
        pipe = interpolate(start, pretrained.load(args.tuned, backend="keras"), alpha)
        if args.test_time_crops is not None:
            pipe.steps[-1][1].set_params(test_time_crops=args.test_time_crops)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table[alpha] = {r: round(float(pipe.score(X, y)), 4) for r, (X, y) in rows.items()}
        wild = [table[alpha][r] for r in rows if r != "fer2013"]
        table[alpha]["wild mean"] = round(float(np.mean(wild)), 4)
        print(alpha, table[alpha], flush=True)
        if args.save_alpha is not None and alpha == args.save_alpha:
            meta = pretrained.info(args.tuned)
            pretrained.save(pipe, Path(args.out), description=meta.get("description", ""),
                            metrics={**meta.get("metrics", {}), "wise_ft": {
                                "start": args.start, "tuned": args.tuned, "alpha": alpha}})
    names = list(next(iter(table.values())))
    print("\n| a | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for alpha, scores in table.items():
        print(f"| {alpha:g} | " + " | ".join(f"{scores[n]:.3f}" for n in names) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = Path(args.out).parent / "wise_ft.json"
    if out.exists() and not _is_table(out):  # beside --out: maybe a file of the user's
        raise SystemExit(f"wise_ft: {out} exists and is not a table this script wrote; "
                         "move it (the table is printed above).")
    with written_atomically(out) as tmp:
        Path(tmp).write_text(json.dumps(table, indent=1))


def _is_table(path):
    """Whether ``path`` holds a table an earlier run wrote ({alpha: {row: accuracy}})."""
    try:
        table = json.loads(Path(path).read_text())
        return isinstance(table, dict) and all(isinstance(v, dict) for v in table.values())
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    main()
