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
import os
import platform
import time
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("FERSK_FER2013", ROOT.parent / "shared/data/fer2013"))


def machine():
    """A short description of where the training ran."""
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    devices = "CPU only"
    if keras.backend.backend() == "jax":
        import jax

        devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        devices = f"{len(gpus)} GPU" if gpus else "CPU only"
    return f"{cpu}, {os.cpu_count()} cores, {devices}, Keras {keras.__version__} ({keras.backend.backend()})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="FER-2013 CSV or folder root")
    parser.add_argument("--name", default="fer2013_cnn")
    parser.add_argument("--architecture", default="kaggle_cnn")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--dense-units", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=45)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--n-train", type=int, default=None, help="stratified subset (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="/tmp/fersk_train")
    parser.add_argument("--out", default=str(ROOT / "fersk" / "models"), help="models folder")
    parser.add_argument("--from-checkpoint", action="store_true", help="skip training")
    args = parser.parse_args(argv)

    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, FaceCropper
    from fersk.datasets import load_fer2013

    fer = load_fer2013(args.data, usage=["Training", "PublicTest"], verbose=1)
    train = fer.usage == "Training"
    X_train, y_train = fer.images[train], fer.target[train]
    X_test, y_test = fer.images[~train], fer.target[~train]
    if args.n_train is not None:
        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, train_size=args.n_train, stratify=y_train, random_state=args.seed
        )
    print(f"{len(X_train)} Training / {len(X_test)} PublicTest images", flush=True)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / f"{args.name}.joblib"
    if args.from_checkpoint:
        net, fit_seconds = joblib.load(checkpoint)
    else:
        net = CNNClassifier(
            args.architecture,
            {"width": args.width, "dense_units": args.dense_units},
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            n_iter_no_change=args.patience,
            augment=args.augment,
            random_state=args.seed,
            verbose=1,
        )
        start = time.perf_counter()
        net.fit(X_train, y_train, validation_data=(X_test, y_test))
        fit_seconds = time.perf_counter() - start
        joblib.dump((net, fit_seconds), checkpoint)

    from sklearn.metrics import accuracy_score, confusion_matrix

    start = time.perf_counter()
    y_pred = net.predict(X_test)
    infer = len(X_test) / (time.perf_counter() - start)
    acc = accuracy_score(y_test, y_pred)
    # The end-to-end pipeline: detection on photos; FER-2013's own faces are
    # crops already (see FaceCropper's notes), scored without detection.
    pipe = Pipeline([("facecropper", FaceCropper(size=(48, 48))), ("network", net)])
    pipe_acc = pipe.score(X_test, y_test)
    metrics = {
        "publictest_accuracy": round(float(acc), 4),
        "publictest_accuracy_with_detection": round(float(pipe_acc), 4),
        "publictest_confusion_matrix": confusion_matrix(y_test, y_pred).tolist(),
        "n_train": int(len(X_train)),
        "n_publictest": int(len(X_test)),
        "epochs_run": int(net.n_epochs_),
        "best_epoch": int(net.best_epoch_ + 1),
        "train_seconds": round(fit_seconds, 1),
        "inference_images_per_second": round(infer, 1),
        "learnable_parameters": int(net.n_trainable_params_),
        "fixed_parameters": int(net.n_fixed_params_),
        "hardware": machine(),
        "command": "python benchmarks/train_pretrained.py " + " ".join(argv or os.sys.argv[1:]),
    }
    print(json.dumps({k: v for k, v in metrics.items() if "matrix" not in k}, indent=1))

    from fersk import pretrained

    path = pretrained.save(
        pipe,
        Path(args.out) / args.name,
        description=(
            f"{args.architecture} (width {args.width}) on raw 48x48 grey faces, trained on "
            "FER-2013 Training, selected on PublicTest; FaceCropper in front for photos."
        ),
        metrics=metrics,
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
