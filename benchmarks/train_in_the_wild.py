"""Train a bundled network further on faces from several sources (resumable).

FER-2013 Training plus the development sources beyond it (SFEW 2.0 Train
film frames, ExpW web faces, muxspace web photos), each cut by the bundled
pipeline's own FaceCropper (``fersk.datasets.load_in_the_wild``), the wild
ones repeated and degraded (``fersk.degrade.degrade_faces``), starting from a
bundled network (warm start).  Each wild source is split 80/20 (stratified,
seed 0; less the test faces sharing a film clip, a person or a photo with
training), or, with ``--split group``, by group (SFEW by film, muxspace by
person, ExpW by photo: ``StratifiedGroupKFold``'s first of five folds): the
20 % and PublicTest are the per-source held-out results printed at the end
and stored in ``<work>/<name>/results.json``.  Films never seen, as SFEW 2.0
Val's::

    python benchmarks/train_in_the_wild.py --name group12d --split group --epochs 12 \
        --teacher runs/wild/fer2013_ensemble_2v --teacher-weight 0.5

``--exclude S`` leaves source S out of training altogether and tests on all
of it (a leave-one-source-out row); for ``fer2013`` the test is PublicTest.

``--teacher A,B`` distils: the targets mix the labels with the mean of the
named models' probabilities (each as loaded, with its own test-time views)
on the very faces trained on, degraded copies included (``--teacher-weight``
its share; the probabilities are computed once a teacher and kept in
``<work>/<name>/teacher-*.npz``, keyed on the faces and on the teacher's
``pipeline.json``, so a model re-saved under the same name is asked again);
``--teacher-sources fer2013`` distils on those sources' faces only, the others
learning from their labels alone.
``--ferplus-weight F`` replaces that share of each FER-2013 face's label
by its FER+ vote distribution (``fer2013/ferplus_votes.csv``, Barsoum et
al. 2016: ten taggers a face; contempt's votes left out, faces without an
emotion vote keep their label), before any teacher's share is mixed in.
``--class-weight-power P`` weighs each face by its class's share of the
training faces to the power ``-P`` (mean weight 1; ``1`` is balanced), so
that rare classes (disgust) count more in the loss.
``--views center`` saves the network predicting from one centre view.

Interrupted runs continue from their last completed epoch: run the same
command again.

    python benchmarks/train_in_the_wild.py --work runs/wild --name mix --epochs 12
    python benchmarks/train_in_the_wild.py --work runs/wild --name no_sfew --exclude sfew
    python benchmarks/train_in_the_wild.py --name student --init runs/student/pruned \
        --teacher fer2013_ensemble,wild_vgg_fast --views center --epochs 30
"""

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from _common import DATA, add_split_options, split_sources

WILD = ("sfew", "expw", "muxspace")


# The teachers' probabilities are the same on ONNX Runtime (within 1e-4: tests/test_onnx.py),
# and a ten-view ensemble runs ~1.6x faster there on the 2 cores.
_TEACHER_BACKEND = "onnx" if importlib.util.find_spec("onnxruntime") else "keras"


def _predict_in_chunks(model, X, name, chunk=4096):
    """``model.predict_proba(X)`` a chunk at a time, reporting progress."""
    parts, t0 = [], time.perf_counter()
    for start in range(0, len(X), chunk):
        parts.append(model.predict_proba(X[start:start + chunk]))
        done = min(start + chunk, len(X))
        print(f"teacher {name}: {done}/{len(X)} faces, {time.perf_counter() - t0:.0f} s",
              flush=True)
    return np.concatenate(parts)


def spec_sha256(name):
    """SHA-256 of a model's ``pipeline.json`` (its weights' SHA-256 and its
    settings): which model a name stood for when a run read it."""
    from fersk.pretrained._folders import _model_dir

    return hashlib.sha256((_model_dir(name) / "pipeline.json").read_bytes()).hexdigest()


def changed_models(read):
    """The names in ``read`` ({"init NAME"/"teacher NAME": sha256}) whose
    model is another now: a bundled model replaced in the working tree
    while the run read it (2026-12-07: a seed's replicate learnt from the
    very network it was to replicate, unseen until its teacher file's key)."""
    return sorted(k for k, sha in read.items() if spec_sha256(k.split(" ", 1)[1]) != sha)


def teacher_probabilities(teachers, X, y, path):
    """Mean probabilities of the ``teachers`` (names or folders, each as
    loaded) on ``X``, columns in label order; each teacher's kept beside
    ``path`` keyed on the faces and on the teacher's ``pipeline.json``
    (weights' SHA-256, test-time views), so an interrupted run does not
    compute a finished one again and a changed teacher is never read stale."""
    from fersk import pretrained
    from fersk.pretrained._folders import _model_dir
    from fersk.training.recipes import _check_fer2013_teacher

    # Columns are added by position and read as FER-2013's codes: a teacher
    # coded otherwise (a folder-trained model's 4 is neutral, FER+ has 8) is
    # refused before any face goes through a teacher.
    for name in teachers:
        _check_fer2013_teacher(name)
    faces = hashlib.sha256(X.tobytes()).hexdigest()
    total = 0.0
    for name in teachers:
        slug = hashlib.sha256(name.encode()).hexdigest()[:12]
        kept = path.with_name(f"{path.stem}-{Path(name).name}-{slug}.npz")
        spec = (_model_dir(name) / "pipeline.json").read_bytes()
        key = faces + "-" + hashlib.sha256(spec).hexdigest()
        proba = None
        if kept.is_file():
            cached = np.load(kept)
            if str(cached["key"]) == key:
                proba = cached["proba"]
        t0 = time.perf_counter()
        if proba is None:
            proba = _predict_in_chunks(pretrained.load(name, backend=_TEACHER_BACKEND), X, name)
            tmp = kept.with_suffix(".tmp.npz")
            np.savez(tmp, key=key, proba=proba)
            os.replace(tmp, kept)  # atomic: a killed run leaves no half-written file
        total = total + proba
        accuracy = np.mean(total.argmax(1) == y)
        print(f"teacher {name}: {time.perf_counter() - t0:.0f} s, running mean's accuracy on the "
              f"training faces {accuracy:.4f}", flush=True)
    return total / len(teachers)


def ferplus_targets(filenames, fer_root):
    """Each FER-2013 file's FER+ vote distribution in FER-2013's class order
    (rows of zeros where FER+ has no emotion for it: no row, no emotion vote
    left, or a majority of "unknown" or "not a face", the faces
    :func:`fersk.datasets.load_ferplus` drops): FER+'s outlier rule
    (:func:`fersk.datasets.ferplus_majority`), contempt left out (no such
    FER-2013 class) and the rest normalised again.  The votes file is read
    as ``load_ferplus`` reads it (its checks, a path's folders in any case)."""
    from fersk.datasets import FER2013_CLASSES, FERPLUS_CLASSES, FERPLUS_VOTE_COLUMNS, ferplus_majority
    from fersk.datasets._ferplus import _canonical_path, _read_ferplus_votes

    root = Path(fer_root)
    table = _read_ferplus_votes(root / "ferplus_votes.csv")
    canonical = {_canonical_path(k): v for k, v in table.items()}
    none = np.zeros(len(FERPLUS_VOTE_COLUMNS), dtype=np.int64)
    rows = []
    for f in filenames:
        try:
            rel = Path(f).relative_to(root).as_posix()
        except ValueError:
            raise ValueError(
                f"--ferplus-weight needs FER-2013 as image folders under {root} (FER+'s votes "
                f"are keyed by file path); {f!r} is not one of them."
            ) from None
        rows.append(table.get(rel, canonical.get(_canonical_path(rel), none)))
    labels, dist = ferplus_majority(np.array(rows))
    dist[np.isin(labels, (8, 9))] = 0.0  # "unknown" or "not a face": no emotion to learn
    spelt = {"angry": "anger", "happy": "happiness", "sad": "sadness"}  # FER+'s names
    out = dist[:, [FERPLUS_CLASSES.index(spelt.get(c, c)) for c in FER2013_CLASSES]]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def label_targets(y, source, ferplus, weight):
    """One-hot labels, ``weight`` of each FER-2013 face's replaced by its
    FER+ distribution (``ferplus``: a row per face, zeros where none)."""
    onehot = (y[:, None] == np.arange(ferplus.shape[1])[None, :]).astype(np.float64)
    share = np.where((source == "fer2013") & (ferplus.sum(axis=1) > 0), float(weight), 0.0)[:, None]
    return (1 - share) * onehot + share * ferplus


def training_set(data, train, *, repeats, caps, fer_degraded, seed):
    """Faces and labels to train on: wild faces repeated and degraded, and
    each face's row of ``data`` (``rows``)."""
    from fersk.degrade import degrade_faces

    rng = np.random.RandomState(seed)
    X, y, source, rows = [], [], [], []
    for s in np.unique(data.source[train]):
        idx = train[data.source[train] == s]
        if s in caps:  # at most caps[s] faces of any one class (muxspace: neutral, happy)
            keep = []
            for c in np.unique(data.target[idx]):
                members = idx[data.target[idx] == c]
                keep.append(rng.permutation(members)[:caps[s]])
            idx = np.sort(np.concatenate(keep))
        faces = data.images[idx]
        if s == "fer2013":
            chosen = rng.uniform(size=len(idx)) < fer_degraded
            faces = faces.copy()
            faces[chosen] = degrade_faces(faces[chosen], random_state=rng)
            X.append(faces)
            y.append(data.target[idx])
            source += [s] * len(idx)
            rows.append(idx)
            continue
        for r in range(repeats.get(s, 1)):
            X.append(faces if r == 0 else degrade_faces(faces, random_state=rng))
            y.append(data.target[idx])
            source += [s] * len(idx)
            rows.append(idx)
    return np.concatenate(X), np.concatenate(y), np.array(source), np.concatenate(rows)


def taught_probabilities(teachers, X, y, source, sources, path):
    """The teachers' mean probabilities for the faces of ``sources`` (all
    when None), zeros for the others: faces that keep their labels alone are
    not run through the teachers (minutes per run at two views)."""
    if sources is None:
        return teacher_probabilities(teachers, X, y, path)
    taught = np.isin(source, sources)
    out = np.zeros((len(y), int(np.max(y)) + 1))
    if taught.any():
        proba = teacher_probabilities(teachers, X[taught], y[taught], path)
        out = np.zeros((len(y), proba.shape[1]))
        out[taught] = proba
    return out


def tempered_class_weight(y, power):
    """A weight per class, ``(share of the faces) ** -power``, scaled so the
    faces' mean weight is 1 (the loss's scale, so the learning rate, stays):
    0 leaves every class at 1, 1 is sklearn's "balanced" up to that scale."""
    classes, counts = np.unique(y, return_counts=True)
    w = (counts / counts.sum()) ** -float(power)
    w = w / (w * counts).sum() * counts.sum()
    return {int(c): float(v) for c, v in zip(classes, w)}


def distillation_targets(y, source, teacher, weight, sources=None, labels=None):
    """Each face's training target: ``1 - weight`` of its label (one-hot, or
    the rows of ``labels``) plus ``weight`` of the teacher's probabilities,
    for the faces of ``sources`` (all when None); the other faces keep their
    label alone."""
    onehot = (y[:, None] == np.arange(teacher.shape[1])[None, :]).astype(np.float64)
    if labels is not None:
        onehot = labels
    share = np.full((len(y), 1), float(weight))
    if sources is not None:  # a teacher of one domain may teach its conventions to another
        share[~np.isin(source, sources)] = 0.0
    return (1 - share) * onehot + share * teacher


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--work", default="runs/wild")
    parser.add_argument("--name", default="mix")
    parser.add_argument("--init", default="fer2013_vgg_fast",
                        help="a bundled model or model folder to train further, or 'scratch'")
    parser.add_argument("--exclude", choices=("fer2013", *WILD), default=None)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=4, help="copies of sfew and expw faces")
    parser.add_argument("--repeat-expw", type=int, default=None,
                        help="copies of expw faces (default: --repeat): ExpW's labelling convention "
                        "(shouts are 'surprise') is outweighed by FER-2013's at four copies")
    parser.add_argument("--muxspace-cap", type=int, default=1500)
    parser.add_argument("--fer-degraded", type=float, default=0.3)
    parser.add_argument("--fer-max", type=int, default=None,
                        help="at most this many FER-2013 Training faces (a random subset)")
    parser.add_argument("--seed", type=int, default=0, help="the held-out split's seed (keep 0: the "
                        "rows every model is scored on)")
    add_split_options(parser)
    parser.add_argument("--fit-seed", type=int, default=None,
                        help="the training's seed (degraded copies, batches, initial weights); "
                        "default: --seed.  Vary it, not --seed, for runs scored on the same rows")
    parser.add_argument("--teacher", default=None,
                        help="comma-separated models whose mean probabilities are distilled")
    parser.add_argument("--teacher-weight", type=float, default=0.5)
    parser.add_argument("--teacher-sources", default=None,
                        help="comma-separated sources whose faces are distilled (default: all); "
                        "the others train on their labels alone")
    parser.add_argument("--ferplus-weight", type=float, default=0.0,
                        help="share of each FER-2013 face's label replaced by its FER+ votes")
    parser.add_argument("--class-weight-power", type=float, default=0.0,
                        help="weigh each class by its share of the training faces to this power, "
                        "negated (0: none, 1: balanced): the rare classes (disgust) count more")
    parser.add_argument("--views", choices=("as-init", "center"), default="as-init",
                        help="test-time views of the saved network")
    args = parser.parse_args(argv)
    unknown = set((args.teacher_sources or "fer2013").split(",")) - {"fer2013", *WILD}
    if unknown:
        parser.error(f"--teacher-sources: unknown source(s) {sorted(unknown)}; "
                     f"the sources are fer2013, {', '.join(WILD)}")
    if not 0.0 <= args.ferplus_weight <= 1.0:
        parser.error("--ferplus-weight: a share, from 0 to 1")
    if not 0.0 <= args.class_weight_power <= 1.0:
        parser.error("--class-weight-power: from 0 (no weights) to 1 (balanced)")
    if min(args.repeat, args.repeat if args.repeat_expw is None else args.repeat_expw) < 1:
        parser.error("--repeat and --repeat-expw: at least 1 copy (0 would drop the source's "
                     "faces; --exclude leaves a source out)")
    fit_seed = args.seed if args.fit_seed is None else args.fit_seed

    from fersk import pretrained
    from fersk.datasets import load_fer2013, load_in_the_wild

    out = Path(args.work) / args.name
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = load_in_the_wild(args.data, verbose=1)
    print(f"loaded {len(data.target)} faces in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{s} {n}" for s, n in zip(*np.unique(data.source, return_counts=True))),
          flush=True)
    public = load_fer2013(Path(args.data) / "fer2013", usage="PublicTest")
    train, tests = split_sources(data, args.exclude, args.seed, by=args.split, fold=args.fold)
    fer = train[data.source[train] == "fer2013"]
    if args.fer_max is not None and len(fer) > args.fer_max:
        drop = np.random.RandomState(fit_seed).permutation(fer)[args.fer_max:]
        train = np.setdiff1d(train, drop)
    X, y, src, rows = training_set(
        data, train, repeats={"sfew": args.repeat,
                          "expw": args.repeat if args.repeat_expw is None else args.repeat_expw},
        caps={"muxspace": args.muxspace_cap}, fer_degraded=args.fer_degraded, seed=fit_seed)
    print(f"training on {len(y)} faces: "
          + ", ".join(f"{s} {n}" for s, n in zip(*np.unique(src, return_counts=True))),
          flush=True)

    read = {f"init {pretrained.DEFAULT_MODEL if args.init == 'scratch' else args.init}":
            spec_sha256(None if args.init == "scratch" else args.init)}
    read.update({f"teacher {t}": spec_sha256(t) for t in (args.teacher or "").split(",") if t})
    if args.init == "scratch":  # the default's network and recipe, new weights
        from sklearn.base import clone

        pipe = pretrained.load(backend="keras")
        pipe.steps[-1] = (pipe.steps[-1][0], clone(pipe.steps[-1][1]))
    else:
        pipe = pretrained.load(args.init, backend="keras")  # trained further
    net = pipe.steps[-1][1]
    net.set_params(warm_start=args.init != "scratch", epochs=args.epochs, learning_rate=args.learning_rate,
                   learning_rate_schedule="warmup_cosine", n_iter_no_change=1000,
                   random_state=fit_seed, verbose=1, checkpoint_dir=str(out / "state"))
    fit_params, labels = {}, None
    if args.class_weight_power > 0:
        weights = tempered_class_weight(y, args.class_weight_power)
        net.set_params(class_weight=weights)
        print("class weights: " + ", ".join(f"{c} {w:.2f}" for c, w in weights.items()), flush=True)
    if args.ferplus_weight > 0:
        from fersk.datasets import FER2013_CLASSES

        ferplus = np.zeros((len(y), len(FER2013_CLASSES)))
        fer_rows = src == "fer2013"
        ferplus[fer_rows] = ferplus_targets(data.filenames[rows[fer_rows]], Path(args.data) / "fer2013")
        print(f"FER+ votes for {int((ferplus.sum(1) > 0).sum())} of {int(fer_rows.sum())} FER-2013 "
              f"faces; their labels agree with FER+'s top vote on "
              f"{np.mean(ferplus[ferplus.sum(1) > 0].argmax(1) == y[ferplus.sum(1) > 0]):.3f}", flush=True)
        labels = label_targets(y, src, ferplus, args.ferplus_weight)
        fit_params["sample_proba"] = labels
    if args.teacher:
        sources = args.teacher_sources.split(",") if args.teacher_sources else None
        teacher = taught_probabilities(args.teacher.split(","), X, y, src, sources,
                                       out / "teacher.npz")
        fit_params["sample_proba"] = distillation_targets(
            y, src, teacher, args.teacher_weight, sources, labels)
    if args.views == "center":  # the validation score below is then the one view's
        net.set_params(test_time_crops="center", test_time_flip=False)
    start = time.perf_counter()
    net.fit(X, y, validation_data=(public.images, public.target), **fit_params)
    seconds = time.perf_counter() - start
    net.set_params(warm_start=False, checkpoint_dir=None, verbose=0)

    changed = changed_models(read)
    if changed:
        print(f"WARNING: {', '.join(changed)}: another model under that name now than when this run "
              "read it (replaced during the run): the run's start or teachers are not what its "
              "command says", file=sys.stderr, flush=True)
    results = {"command": "python " + " ".join(sys.argv), "models_read": read,
               "models_changed_during_run": changed, "train_seconds": round(seconds),
               "n_train": {s: int(n) for s, n in zip(*np.unique(src, return_counts=True))},
               "accuracy": {}}
    results["accuracy"]["fer2013 PublicTest"] = round(float(
        pipe.score(public.images, public.target)), 4)
    for s, idx in tests.items():
        results["accuracy"][s] = round(float(pipe.score(data.images[idx], data.target[idx])), 4)
    print(json.dumps(results, indent=1), flush=True)
    pretrained.save(pipe, out / "model", description=f"{args.init} trained further on "
                    f"in-the-wild sources ({args.name})", metrics=results)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, out / "results.json")


if __name__ == "__main__":
    main()
