"""A model soup: the uniform weight average of networks fine-tuned from one start.

Wortsman et al. (ICML 2022): networks trained from the same start with other
seeds or schedules lie in one basin, and the mean of their weights is often
more accurate than each, for the cost of one network at prediction.  Prints
each ingredient's and the soup's accuracy as loaded (with ``--param``'s
prediction settings) on FER-2013 PublicTest and the held-out part of each
development source (``train_in_the_wild.py``'s split), and saves the soup.

    python benchmarks/model_soup.py runs/student/mix12d/model runs/student/mix12d_s1/model \\
        --param test_time_crops=center --param test_time_flip=true --param test_time_margin=0.3 \\
        --out runs/student/soup12/model
"""

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, held_out_rows, prediction_params  # noqa: E402
from wise_ft import average_weights  # noqa: E402

from fersk.training.params import parse_param  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders of one architecture and start")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        type=parse_param, help="a prediction setting of the network")
    parser.add_argument("--out", required=True, help="the model folder to write")
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args(argv)
    if len(args.models) < 2:
        parser.error("a soup needs two models or more")

    from fersk import pretrained

    params = prediction_params(args.param, parser)

    rows = held_out_rows(args.data)

    def scores(pipe):
        pipe.steps[-1][1].set_params(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {r: round(float(pipe.score(X, y)), 4) for r, (X, y) in rows.items()}

    table = {}
    for folder in args.models:
        table[folder] = scores(pretrained.load(folder, backend="keras"))
        print(folder, table[folder], flush=True)
    pipes = [pretrained.load(folder, backend="keras") for folder in args.models]
    soup = average_weights(pipes, [1 / len(pipes)] * len(pipes))
    table["soup"] = scores(soup)
    print("soup", table["soup"], flush=True)
    names = list(rows)
    print("\n| model | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for model, row in table.items():
        print(f"| {model} | " + " | ".join(f"{row[n]:.4f}" for n in names) + " |")
    meta = pretrained.info(args.models[-1])
    pretrained.save(soup, Path(args.out), description=meta.get("description", ""), metrics={
        "command": "python benchmarks/model_soup.py " + " ".join(argv or sys.argv[1:]),
        "soup_of": {m: pretrained.info(m)["metrics"] for m in args.models},
        "held_out_accuracy_by_source": table["soup"],
        "ingredients_held_out_accuracy_by_source": {m: table[m] for m in args.models},
    })
    print(f"saved {args.out}", flush=True)


if __name__ == "__main__":
    main()
