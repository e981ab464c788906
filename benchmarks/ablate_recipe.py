"""What each ingredient of the FER-2013 recipe gives, one short run each.

The full recipe (``vgg_fer``, random 40x40 crops with flips, small
rotations and shifts, SGD with Nesterov momentum, warm-up + cosine, label
smoothing 0.1, XLA) and the recipe with one ingredient changed, all with
the same network width, epochs, seed and data, trained with
:func:`fersk.training.train_fer2013` (Training to fit, PublicTest to
score; PrivateTest never read).  Each variant's metrics are written to
``--work/<variant>.json`` as soon as it finishes and a variant already
there is not run again, so an interrupted ablation continues where it
stopped (the variant in progress also resumes from its last epoch).
Prints a table of PublicTest accuracy (centre window and ten views)
against the full recipe.

Short schedules rank ingredients, they do not reproduce the bundled
models' numbers: a 15-epoch width-0.5 run took 19-21 minutes on the
project's two CPU cores (75-140 s an epoch with the host's load).  The
seconds column counts the variant's last sitting only (a resumed variant
shows less).

    python benchmarks/ablate_recipe.py --width 0.5 --epochs 15 --work runs/ablation
"""

import argparse
import json
import sys
import time
from pathlib import Path

# This folder on the path for _common: the tests run this script with
# runpy.run_path, which (unlike `python script.py`) does not add it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013  # also puts this checkout first on the path

from fersk._fsync import written_atomically  # noqa: E402

#: The recipe of the bundled vgg_fer networks (CNNClassifier parameters).
RECIPE = {
    "optimizer": "sgd", "learning_rate": 0.05, "learning_rate_schedule": "warmup_cosine",
    "crop_size": 40, "test_time_crops": "five", "test_time_flip": True,
    "label_smoothing": 0.1, "augment": {"shift": 0.05, "zoom": 0.0}, "jit_compile": True,
}

#: Each variant: what changes from RECIPE.
VARIANTS = {
    "full recipe": {},
    "no random crops (48x48 whole faces)": {"crop_size": None, "test_time_crops": "center"},
    "no label smoothing": {"label_smoothing": 0.0},
    "Adam 1e-3 instead of SGD 0.05": {"optimizer": "adam", "learning_rate": 1e-3},
    "constant rate instead of warm-up + cosine": {"learning_rate_schedule": "constant"},
    "random erasing 0.25": {"random_erasing": 0.25},
}


def slug(name):
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")[:40]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(FER2013), help="FER-2013 CSV or folder root")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--variants", default=None,
                        help="comma-separated indices into the variant list (default: all)")
    parser.add_argument("--n-train", type=int, default=None, help="stratified subset (smoke runs)")
    parser.add_argument("--n-test", type=int, default=None, help="stratified subset (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/ablation")
    args = parser.parse_args(argv)

    from fersk.training import discard_training_state, train_fer2013

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    results = {}
    for name in names:
        done = work / f"{slug(name)}.json"
        if done.is_file():
            results[name] = json.loads(done.read_text())
            continue
        params = {**RECIPE, **VARIANTS[name]}
        augment = params.pop("augment")
        start = time.perf_counter()
        pipe, metrics = train_fer2013(
            args.data, architecture="vgg_fer",
            architecture_params={"width": args.width, "dense_units": 256},
            epochs=args.epochs, patience=10**6, batch_size=args.batch_size,
            learning_rate=params.pop("learning_rate"), augment=augment,
            learning_rate_schedule=params.pop("learning_rate_schedule"),
            test_time_flip=params.pop("test_time_flip"), network_params=params,
            training_state=work / f"{slug(name)}.state", keep_training_state=True,
            n_train=args.n_train,
            n_test=args.n_test, seed=args.seed, command=f"ablate_recipe.py: {name}",
        )
        views = metrics.get("publictest_accuracy_by_test_time_views", {})
        results[name] = {
            "centre": views.get("1 views (center)", metrics.get("publictest_accuracy_without_flip")),
            "ten views": views.get("10 views (five + mirror)"),
            "with flip": metrics["publictest_accuracy"],
            "seconds": round(time.perf_counter() - start),
        }
        with written_atomically(done) as tmp:  # a kill mid-write left a file that broke reruns
            Path(tmp).write_text(json.dumps(results[name]))
        discard_training_state(pipe)  # only once the variant's results are written

    base = results.get("full recipe")
    print(f"\nvgg_fer width {args.width}, {args.epochs} epochs, seed {args.seed}; PublicTest\n")
    print("| variant | centre window | vs full | ten views (or + mirror) | vs full | seconds |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        best = r["ten views"] if r["ten views"] is not None else r["with flip"]
        base_best = None if base is None else (base["ten views"] or base["with flip"])
        d1 = "" if base is None else f"{r['centre'] - base['centre']:+.4f}"
        d2 = "" if base_best is None else f"{best - base_best:+.4f}"
        print(f"| {name} | {r['centre']:.4f} | {d1} | {best:.4f} | {d2} | {r['seconds']} |")


if __name__ == "__main__":
    main()
