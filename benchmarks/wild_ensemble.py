"""An ensemble for faces in the wild from trained networks, chosen on held-out rows.

Levi & Hassner's ensemble averages the probabilities of several networks.
Here the members are networks already trained (no training): the three of
``fer2013_ensemble`` (FER-2013 only) and networks trained on the in-the-wild
mixture (``train_in_the_wild.py``: ``mix``, the bundled ``wild_vgg_fast``...).
Each member's probabilities (as loaded, its own test-time views) are
computed once on the held-out rows of ``bench_transfer.py`` (PublicTest and
the 20 % of each development source) and kept in ``--work``, keyed on the
member's model folder (``pipeline.json`` and network files:
``_common.model_key``) and on the rows' faces and labels, so that a model
saved again under the same name, or other rows, are computed anew; every
candidate mixture is then scored from them, beside ``fer``'s mini-Xception
on the same faces in the same run.

``--save NAME`` builds the pipeline of candidate NAME (the bundled cropper,
then a :class:`fersk.CNNEnsembleClassifier` of the members, frozen) and saves
it to ``--out`` as a model folder, with the table as its metrics.

``--param`` sets prediction settings of every ``--mixture`` network (its
test-time views; part of its probabilities' key), ``--candidate`` adds
mixtures of any members to the table.

    python benchmarks/wild_ensemble.py --mixture runs/wild/mix/model
    python benchmarks/wild_ensemble.py --mixture runs/wild/mix/model --save trio+mix:3 \\
        --out runs/wild/ensemble/model
    python benchmarks/wild_ensemble.py --mixture runs/a/model --mixture runs/b/model \\
        --param test_time_crops=five --param test_time_flip=true \\
        --candidate "pair+lbp=a,b,gpu_vgg_lbp:0.5"
"""

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA,
    prediction_params,
    arrays_key,
    cached_arrays,
    held_out_rows,
    load_peer,
    locate_peer,
    model_key,
    peer_scale,
    resize_faces,
    run_model,
)

from fersk.training.params import parse_param  # noqa: E402

TRIO = ("gpu_vgg_a", "gpu_vgg_b", "gpu_vgg_lbp")


def members(mixture, params=None):
    """{name: fitted classifier of 48x48 faces}: the trio, the mixture
    networks (with the prediction settings ``params``)."""
    from fersk import pretrained
    from fersk.training.recipes import _check_fer2013_classes

    out = dict(pretrained.load("fer2013_ensemble", backend="keras")[-1].estimators)
    out["wild_vgg_fast"] = pretrained.load("wild_vgg_fast", backend="keras")[-1]
    for folder in mixture:
        name = Path(folder).parent.name
        if name in out:  # runs/a/mix/model beside runs/b/mix/model: one would vanish
            raise ValueError(
                f"--mixture {folder}: its name {name!r} (the folder above it) is already a "
                f"member's ({sorted(out)}); give each --mixture folder its own name."
            )
        # Its probabilities are averaged with the trio's by column: FER-2013's codes.
        _check_fer2013_classes(pretrained.info(folder), f"--mixture {folder}")
        pipe = pretrained.load(folder, backend="keras")
        if len(pipe.steps) > 2:  # faces go to the network alone here
            raise ValueError(
                f"--mixture {folder}: its pipeline has steps {[n for n, _ in pipe.steps]}; "
                "this script feeds the cropped faces to the network alone (FaceCropper -> "
                "network models only)."
            )
        out[name] = pipe[-1].set_params(**(params or {}))
    return out


def parse_candidate(text):
    """``LABEL=NAME[:WEIGHT],...`` as (label, {member: weight})."""
    label, _, spec = text.partition("=")
    if not label or not spec:
        raise ValueError(f"--candidate {text!r}: LABEL=NAME[:WEIGHT],NAME[:WEIGHT]...")
    weights = {}
    for part in spec.split(","):
        name, _, weight = part.partition(":")
        weights[name] = float(weight or 1)
    return label, weights


def member_model(name, mixture):
    """The bundled model or folder the member ``name`` of :func:`members`
    is loaded from: a ``--mixture`` folder, ``wild_vgg_fast``, else one of
    ``fer2013_ensemble``'s networks."""
    folders = {Path(folder).parent.name: folder for folder in mixture}
    if name in folders:
        return folders[name]
    return "wild_vgg_fast" if name == "wild_vgg_fast" else "fer2013_ensemble"


def member_probabilities(nets, mixture, rows, work, params=None):
    """{member: {row: probabilities}} of ``nets`` (:func:`members` of
    ``mixture``) on ``rows`` (``{row: (faces, labels)}``), each member's
    kept in ``work/proba-<member>.npz`` and read back only when its model
    folder (:func:`member_model`, ``_common.model_key``: ``pipeline.json``
    and network files) and the rows are those it was computed with (until
    2026-12-06 the member's name alone: a network saved again under the
    same name was read stale)."""
    faces = arrays_key(np.array(list(rows)), *(a for X, y in rows.values() for a in (X, y)))
    proba = {}
    for name, net in nets.items():
        settings = repr(sorted((params or {}).items())) if name in {
            Path(f).parent.name for f in mixture} else ""
        key = f"{name}-{model_key(member_model(name, mixture))}{settings}-{faces}"

        def compute(net=net, name=name):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = {row: net.predict_proba(X) for row, (X, _) in rows.items()}
            print(f"probabilities of {name} computed", flush=True)
            return out

        proba[name] = cached_arrays(Path(work) / f"proba-{name}.npz", key, compute)
    return proba


def candidates(names):
    """{label: {member: weight}}: each member alone, the trio, the trio with
    each mixture network at weights 1-3 (the trio's members count 1 each)."""
    wild = [n for n in names if n not in TRIO]
    out = {n: {n: 1.0} for n in names}
    out["trio"] = {n: 1.0 for n in TRIO}
    for w in wild:
        for k in (1, 2, 3):
            out[f"trio+{w}:{k}"] = {**out["trio"], w: float(k)}
    if len(wild) > 1:
        out["trio+" + "+".join(wild)] = {**out["trio"], **{w: 1.5 for w in wild}}
        trained = [w for w in wild if w != "wild_vgg_fast"]  # mix is its fine-tune
        out["+".join(trained)] = {w: 1.0 for w in trained}
        out["trio+" + "+".join(trained)] = {**out["trio"], **{w: 1.0 for w in trained}}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--mixture", action="append", default=[],
                        help="model folder of a network trained on the mixture (repeatable)")
    parser.add_argument("--work", default="runs/wild/ensemble")
    parser.add_argument("--save", default=None, help="a candidate's label")
    parser.add_argument("--out", default=None)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        type=parse_param, help="a prediction setting of every --mixture network")
    parser.add_argument("--candidate", action="append", default=[],
                        help="LABEL=NAME[:WEIGHT],...: another mixture of members (repeatable)")
    args = parser.parse_args(argv)
    params = prediction_params(args.param, parser)
    try:
        extra = dict(parse_candidate(c) for c in args.candidate)
    except ValueError as exc:
        parser.error(str(exc))

    from fersk import CNNEnsembleClassifier, pretrained
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = held_out_rows(args.data)
    nets = members(args.mixture, params)
    unknown = sorted({n for w in extra.values() for n in w} - set(nets))
    if unknown:
        parser.error(f"--candidate: no member named {unknown}; the members are {sorted(nets)}")
    proba = member_probabilities(nets, args.mixture, rows, work, params)
    every = {**candidates(list(nets)), **extra}

    peer = load_peer(locate_peer())
    fer = {row: float((run_model(peer, peer_scale(resize_faces(X, 64)), 512).argmax(1) == y).mean())
           for row, (X, y) in rows.items()}
    table = {}
    for label, weights in every.items():
        scores = {}
        for row, (_, y) in rows.items():
            p = sum(w * proba[n][row] for n, w in weights.items()) / sum(weights.values())
            scores[row] = round(float((p.argmax(1) == y).mean()), 4)
        scores["wild mean"] = round(float(np.mean([scores[r] for r in rows if r != "fer2013"])), 4)
        table[label] = scores
    table["peer: fer"] = {**{r: round(v, 4) for r, v in fer.items()},
                          "wild mean": round(float(np.mean([fer[r] for r in rows if r != "fer2013"])), 4)}
    cols = list(rows) + ["wild mean"]
    print("| candidate | " + " | ".join(f"{c} ({len(rows[c][1])})" if c in rows else c for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for label, scores in table.items():
        print(f"| {label} | " + " | ".join(f"{scores[c]:.3f}" for c in cols) + " |")

    if args.save:
        if args.save not in every:
            parser.error(f"--save: no candidate {args.save!r}")
        weights = every[args.save]
        cropper = pretrained.load("wild_vgg_fast", backend="keras")[0]
        ensemble = CNNEnsembleClassifier(
            [(n, FrozenEstimator(nets[n])) for n in weights], weights=list(weights.values()))
        X, y = rows["fer2013"]
        # Only the ensemble is fitted (on faces, as its members were): a
        # cropper fitted on an array would read 2-D input as rows of 2,304.
        ensemble.fit(X[::5], y[::5])
        pipe = Pipeline([("facecropper", clone(cropper)), ("cnnensembleclassifier", ensemble)])
        metrics = {"command": "python " + " ".join(sys.argv), "held_out_accuracy": table[args.save],
                   "peer_fer_same_run": table["peer: fer"]}
        trio = [n for n in weights if n in TRIO]
        wild = [n for n in weights if n not in TRIO]
        parts = ([f"fer2013_ensemble's networks {', '.join(trio)} (FER-2013 only)"] if trio else []) + (
            [f"the networks {', '.join(wild)} (trained on FER-2013 and in-the-wild sources)"] if wild else [])
        path = pretrained.save(pipe, args.out, description=(
            "Probabilities averaged (weights " + ", ".join(f"{w:g}" for w in weights.values())
            + ") over " + " and ".join(parts)), metrics=metrics)
        print(f"saved {path}")
        (work / "table.json.tmp").write_text(json.dumps(table, indent=1))
        os.replace(work / "table.json.tmp", work / "table.json")


if __name__ == "__main__":
    main()
