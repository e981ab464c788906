"""Train the fersk networks on FER-2013 and print a comparison table.

Each model is trained on (a stratified subset of) the Training split, with
the PublicTest split as ``validation_data`` (early stopping and
best-weights restore: model selection on PublicTest only; PrivateTest is
never used).  The table gives PublicTest accuracy, seconds per epoch (training plus
the per-epoch PublicTest evaluation),
inference images per second and learnable/fixed parameter counts.

The wrapper's overhead is measured in the same run: the same network on
the same data trained for the same epochs by a plain ``model.fit`` loop
(``keras.Model`` compiled by hand, no validation) against
``CNNClassifier.fit`` with validation and early stopping off; the ratio
should be close to 1 (target <= 1.05).

Example (a reduced CPU run)::

    python benchmarks/bench_networks.py --n-train 3000 --epochs 3 --width 0.5
"""

import argparse
import time
from pathlib import Path

import numpy as np

from _common import FER2013

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def load_split(root, split, n=None, seed=0):
    """Read ``root/split/<class>/*.jpg`` as uint8 (n, 48, 48) and labels 0-6.

    With ``n``, a stratified random subset of ``n`` images.
    """
    from PIL import Image

    files, labels = [], []
    for label, name in enumerate(CLASSES):
        found = sorted((Path(root) / split / name).glob("*.jpg"))
        files += found
        labels += [label] * len(found)
    if not files:
        raise SystemExit(f"no images under {Path(root) / split}; set --data")
    labels = np.array(labels)
    idx = np.arange(len(files))
    if n is not None and n < len(files):
        from sklearn.model_selection import train_test_split

        idx = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)[0]
        idx.sort()
    images = np.stack([np.asarray(Image.open(files[i]).convert("L")) for i in idx])
    return images, labels[idx]


def model_params(name, width):
    """Builder keyword arguments: every architecture takes a channel multiplier."""
    return {"width": width}


def plain_fit_seconds(est, X, y):
    """Time a hand-written model.fit of the estimator's network on the same
    data, with the same optimizer, schedule, loss and XLA setting."""
    import keras

    x = est._as_model_input(X)
    keras.utils.set_random_seed(0)
    n_classes = len(np.unique(y))
    model = est._assemble_model(x, n_classes, 0)
    n_steps = -(-len(x) // est.batch_size) * est.epochs
    if est.label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=est.label_smoothing)
        y = np.eye(n_classes, dtype=np.float32)[y]
    else:
        loss = "sparse_categorical_crossentropy"
    model.compile(
        optimizer=est._make_optimizer(est._learning_rate(n_steps)),
        loss=loss,
        metrics=["accuracy"],
        jit_compile=est.jit_compile,
    )
    t = time.perf_counter()
    model.fit(x, y, batch_size=est.batch_size, epochs=est.epochs, verbose=0, shuffle=True)
    return time.perf_counter() - t


def _param(text):
    import json

    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(FER2013), help="FER-2013 folder with train/ and test/")
    parser.add_argument("--n-train", type=int, default=None, help="stratified subset of Training (default all)")
    parser.add_argument("--n-test", type=int, default=None, help="subset of PublicTest (default all 3589)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier of every network")
    parser.add_argument(
        "--models", default="kaggle_cnn,lbcnn,facechannel,mtcnn_cnn,vgg_s",
        help="comma-separated architectures",
    )
    parser.add_argument("--overhead-model", default=None, help="architecture for the overhead test (default: first)")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument(
        "--param", action="append", default=[], type=_param, metavar="KEY=VALUE",
        help="another CNNClassifier parameter for every network, VALUE in JSON "
        "(e.g. crop_size=40, optimizer=sgd, jit_compile=true); repeatable",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    from fersk import CNNClassifier

    t = time.perf_counter()
    X_train, y_train = load_split(args.data, "train", args.n_train, args.seed)
    X_test, y_test = load_split(args.data, "test", args.n_test, args.seed)
    print(
        f"backend {keras.backend.backend()}; {len(X_train)} Training / {len(X_test)} PublicTest "
        f"images read in {time.perf_counter() - t:.1f}s; epochs<={args.epochs}, batch {args.batch_size}, "
        f"width {args.width}",
        flush=True,
    )

    rows = []
    for name in args.models.split(","):
        est = CNNClassifier(
            name, model_params(name, args.width), epochs=args.epochs, batch_size=args.batch_size,
            augment=args.augment, n_iter_no_change=5, random_state=args.seed, verbose=1,
            **dict(args.param),
        )
        t = time.perf_counter()
        est.fit(X_train, y_train, validation_data=(X_test, y_test))
        fit_s = time.perf_counter() - t
        est.predict_proba(X_test[:256])  # warm
        t = time.perf_counter()
        acc = est.score(X_test, y_test)
        infer = len(X_test) / (time.perf_counter() - t)
        rows.append((name, acc, fit_s / est.n_epochs_, est.n_epochs_, est.best_epoch_ + 1, infer,
                     est.n_trainable_params_, est.n_fixed_params_))
        print(f"{name}: PublicTest accuracy {acc:.4f}", flush=True)

    header = f"{'model':<12} {'PublicTest acc':>14} {'s/epoch':>9} {'epochs':>6} {'best':>5} {'infer img/s':>12} {'learnable':>10} {'fixed':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r[0]:<12} {r[1]:>14.4f} {r[2]:>9.1f} {r[3]:>6d} {r[4]:>5d} {r[5]:>12.0f} {r[6]:>10d} {r[7]:>8d}")

    # Wrapper overhead: same network, data and epochs, no validation.
    name = args.overhead_model or args.models.split(",")[0]
    epochs = min(args.epochs, 2)
    est = CNNClassifier(name, model_params(name, args.width), epochs=epochs, batch_size=args.batch_size,
                        augment=args.augment, n_iter_no_change=None, random_state=args.seed,
                        **dict(args.param))
    plain, wrapped = [], []
    for _ in range(3):  # alternate; the best of three of each (shared machines are noisy)
        plain.append(plain_fit_seconds(est, X_train, y_train))
        t = time.perf_counter()
        est.fit(X_train, y_train)
        wrapped.append(time.perf_counter() - t)
    ratio = min(wrapped) / min(plain)
    n_seen = len(X_train) * epochs
    print(
        f"\nwrapper overhead ({name}, {epochs} epochs, {len(X_train)} images): "
        f"plain model.fit {min(plain):.1f}s ({n_seen / min(plain):.0f} img/s), "
        f"CNNClassifier.fit {min(wrapped):.1f}s ({n_seen / min(wrapped):.0f} img/s), ratio {ratio:.3f} "
        f"(all runs: plain {[round(v, 1) for v in plain]}, wrapped {[round(v, 1) for v in wrapped]})"
    )


if __name__ == "__main__":
    main()
