"""Train a bundled pretrained model of :mod:`fersk.pretrained` on FER-2013.

This is the reproducible recipe behind ``fersk/models/<name>/``: the
network is trained on the FER-2013 Training split with the PublicTest
split as validation data (early stopping and best-weights restore: model
selection on PublicTest only; PrivateTest is never used), then wrapped in
the end-to-end pipeline ``FaceCropper -> network`` and written with
:func:`fersk.pretrained.save` (a ``.keras`` file and a JSON description,
no pickle).  The PublicTest metrics, the training time and the machine are
written into the model's JSON and printed.

The fitted estimator is first dumped with joblib under ``--work``, so the
packaging step can be re-run alone with ``--from-checkpoint``.

Usage (the bundled ``fer2013_cnn`` model; about an hour on 2 CPU cores)::

    python benchmarks/train_pretrained.py --name fer2013_cnn \\
        --architecture kaggle_cnn --width 0.25 --dense-units 256 \\
        --epochs 45 --patience 8 --augment
"""

import argparse
import json
import sys
from pathlib import Path

# This folder on the path for _common: the tests run this script with
# runpy.run_path, which (unlike `python script.py`) does not add it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FER2013, ROOT, add_options
from fersk._keras_base import LEARNING_RATE_SCHEDULES
from fersk.training import parse_param


def _training_state(folder, resume):
    """The run's training-state folder; one left by an interrupted run is
    continued with --resume and refused without it (it would be resumed
    silently by a run with other settings)."""
    if folder.exists() and any(folder.iterdir()) and not resume:
        sys.exit(f"{folder} holds an interrupted run: pass --resume to continue it, or "
                 "delete the folder to start again.")
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(FER2013), help="FER-2013 CSV or folder root")
    add_options(parser, name="fer2013_cnn", architecture="kaggle_cnn", width=0.25,
                dense_units=256, epochs=45, patience=8, batch_size=64, learning_rate=1e-3)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--representation", choices=("raw", "mapped_lbp"), default="raw")
    parser.add_argument("--schedule", choices=LEARNING_RATE_SCHEDULES, default="constant")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", type=parse_param,
        help="any other CNNClassifier parameter, VALUE in JSON (crop_size=40, "
        "optimizer=sgd, augment='{\"zoom\": 0}'); repeatable",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run interrupted in --work (weights, optimizer, schedule, epoch)",
    )
    parser.add_argument("--test-time-flip", action=argparse.BooleanOptionalAction, default=None,
                        help="default: as the --init model does; off for a new network")
    parser.add_argument("--init", default=None, help="fine-tune this pretrained model")
    parser.add_argument("--teacher", default=None, help="distil this pretrained model")
    parser.add_argument("--teacher-weight", type=float, default=0.5,
                        help="the teacher's share of the targets")
    parser.add_argument(
        "--ensemble", nargs="+", default=None, metavar="MODEL",
        help="instead of training, join these trained models (names or folders) into a "
        "soft-voting CNNEnsembleClassifier",
    )
    parser.add_argument("--weights", nargs="+", type=float, default=None,
                        help="ensemble weights, one per --ensemble model")
    parser.add_argument("--n-train", type=int, default=None, help="stratified subset (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="/tmp/fersk_train")
    parser.add_argument("--out", default=str(ROOT / "fersk" / "models"), help="models folder")
    parser.add_argument("--from-checkpoint", action="store_true", help="skip training")
    args = parser.parse_args(argv)
    network_params = dict(args.param)

    from fersk import pretrained
    from fersk.training import describe, discard_training_state, ensemble_fer2013, train_fer2013

    command = "python benchmarks/train_pretrained.py " + " ".join(argv or sys.argv[1:])
    if args.ensemble:
        pipe, metrics = ensemble_fer2013(
            args.data, args.ensemble, weights=args.weights,
            test_time_flip=bool(args.test_time_flip), seed=args.seed, command=command,
        )
        print(json.dumps({k: v for k, v in metrics.items() if "matrix" not in k}, indent=1))
        members = ", ".join(
            f"{name} ({pretrained.info(model)['metrics'].get('representation', 'raw')})"
            for name, model in zip(metrics["members"], args.ensemble)
        )
        path = pretrained.save(
            pipe, Path(args.out) / args.name, metrics=metrics,
            description=f"Soft-voting ensemble (Levi & Hassner) of {len(args.ensemble)} "
            f"networks, each on its own representation: {members}; FaceCropper in front "
            "for photos.",
        )
        print(f"saved {path}")
        return

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    # The shared recipe (also behind `fersk train`): Training for fit,
    # PublicTest for early stopping, metrics of the model card.
    pipe, metrics = train_fer2013(
        args.data,
        architecture=args.architecture,
        architecture_params={"width": args.width, "dense_units": args.dense_units},
        epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        augment=args.augment,
        representation=args.representation,
        learning_rate_schedule=args.schedule,
        test_time_flip=args.test_time_flip,
        init_from=args.init,
        teacher=args.teacher,
        teacher_weight=args.teacher_weight,
        network_params=network_params,
        training_state=_training_state(work / f"{args.name}.state", args.resume),
        keep_training_state=True,
        n_train=args.n_train,
        seed=args.seed,
        command=command,
        checkpoint=work / f"{args.name}.joblib",
        from_checkpoint=args.from_checkpoint,
    )
    print(json.dumps({k: v for k, v in metrics.items() if "matrix" not in k}, indent=1))

    description = describe(
        architecture=args.architecture,
        shape=f"width {args.width}",
        representation=args.representation,
        init_from=args.init,
        learning_rate=args.learning_rate,
        schedule=args.schedule,
    )
    path = pretrained.save(pipe, Path(args.out) / args.name, description=description,
                           metrics=metrics)
    discard_training_state(pipe)  # only once the model is saved
    print(f"saved {path}")


if __name__ == "__main__":
    main()
