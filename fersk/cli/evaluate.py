"""``fersk evaluate``: score a model on a FER-2013 split.

Imported by :func:`fersk.cli.main` only when this command runs; the
argument parser (in :mod:`fersk.cli`) describes its options.  The plots
of ``--out`` need matplotlib, imported only when they are drawn.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
)

from fersk._labels import fer2013_labels
from fersk.datasets import FER2013_CLASSES, FER2013_USAGES, load_fer2013
from fersk.face import NoFaceWarning

from ._common import EXIT_OK, _check_data, _Failure, _has_mark, _UsageError, _write_beside
from ._faces import _load_model

__all__ = ["run"]

#: What --out holds: the only files written there.
OUT_FILES = ("evaluation.json", "confusion_matrix.png", "training_curve.png")
#: The PNG text that marks a plot as this command's (so a rerun may replace it).
EVALUATION_MARK = "fersk evaluate"
#: Keys every evaluation.json has.
_REPORT_KEYS = {"model", "data", "usage", "accuracy", "confusion_matrix", "classification_report"}


def _written_by_evaluate(file):
    """Whether ``file`` is a plot or report an earlier ``fersk evaluate`` wrote."""
    if file.suffix != ".json":
        return _has_mark(file, EVALUATION_MARK)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and _REPORT_KEYS <= set(doc)


def run(args):
    """Run ``fersk evaluate``: accuracy, per-class report and confusion matrix.

    Loads the FER-2013 split ``--usage`` with
    :func:`fersk.datasets.load_fer2013` and scores the model on it, face
    detection off unless ``--detect`` (FER-2013's faces are crops
    already).  Prints a report, or one JSON document with ``--json``;
    ``--out`` also writes the confusion matrix and training-curve plots
    and ``evaluation.json``.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk evaluate`` as :func:`fersk.cli.main` parses
        them (``data``, ``model``, ``usage``, ``out``, ``json``, ``detect``,
        ``no_cache``, ``verbose``).

    Returns
    -------
    status : int
        0 once the model is scored.

    Raises
    ------
    _UsageError
        Missing data, an unknown split or model, a model whose classes are
        not FER-2013's, or ``--out`` without matplotlib
        (:func:`fersk.cli.main` returns 2).
    _Failure
        Unreadable FER-2013 data (:func:`fersk.cli.main` returns 1).

    See Also
    --------
    fersk.cli.main : Parses the command line and calls this function.
    fersk.datasets.load_fer2013 : The data read.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["evaluate", "--data", "/nonexistent/fer2013.csv"])  # no such data: usage error
    2

    From the shell::

        fersk evaluate --data fer2013.csv --usage PrivateTest --out report/
    """
    _check_data(args.data)
    usages = {u.lower(): u for u in FER2013_USAGES}
    if args.usage.lower() not in usages:
        raise _UsageError(f"--usage: {args.usage!r} is not one of {list(FER2013_USAGES)}.")
    args.usage = usages[args.usage.lower()]
    if args.out is not None:
        try:  # optional (fersk[plots]): checked before the work, not after it
            import matplotlib  # noqa: F401
        except ImportError:
            raise _UsageError(
                "--out writes plots with matplotlib, which is not installed: pip install "
                "matplotlib (or use --json for the numbers)."
            ) from None
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise _UsageError(f"--out: {args.out!r} exists and is not a folder.")
        for name in OUT_FILES:  # replaced only if an earlier evaluate wrote them
            file = Path(args.out) / name
            if file.exists() and not _written_by_evaluate(file):
                raise _UsageError(
                    f"--out: {str(file)!r} exists and fersk evaluate did not write it: fersk "
                    "will not replace it; choose another folder or move the file."
                )
        try:  # before the work: a folder that cannot be made lost the whole evaluation
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _UsageError(f"--out: cannot create {args.out!r} ({exc}).") from None
    model = _load_model(args.model, getattr(args, "backend", "auto"))
    # Scored by name: a model's codes need not be FER-2013's (folder order).
    fer_labels = fer2013_labels(model.classes, model.class_names)
    if fer_labels is None:
        raise _UsageError(
            f"--model: its classes are named {model.class_names}, not with FER-2013's names "
            f"{list(FER2013_CLASSES)}: evaluate scores FER-2013 data."
        )
    try:
        fer = load_fer2013(
            args.data, usage=args.usage, verbose=int(args.verbose), cache=not args.no_cache
        )
    except ValueError as exc:
        raise _Failure(getattr(exc, "without_python_hint", str(exc))) from None
    pipe = model.pipeline
    first = pipe.steps[0][0]
    pipe.set_params(**{f"{first}__verbose": int(args.verbose)})
    if not args.detect:
        pipe.set_params(**{f"{first}__detector": None})
    else:
        # Every image searched: the bundled croppers take images of at most
        # 64 pixels (FER-2013's 48x48 faces) whole, without detection, so
        # --detect reported detection that never ran.
        # Faces not found are classified whole, as said (a cropper that
        # raises, or centre-crops, would not do what the report says).
        pipe.set_params(**{f"{first}__precropped_max_side": None, f"{first}__on_no_face": "whole"})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)
        crops, info = pipe.steps[0][1].crop(fer.images)
        y_pred = pipe[1:].predict(crops)
    to_fer = dict(zip(model.classes, fer_labels.tolist()))
    y_pred = np.array([to_fer[c] for c in y_pred.tolist()], dtype=int)
    seconds = time.perf_counter() - start
    n_no_face = len(info.no_face_indices) if args.detect else 0
    y = fer.target
    # Every FER-2013 class, those a model of fewer classes never predicts too:
    # labels= of its own classes left the other images out of matrix and report.
    labels = list(range(len(FER2013_CLASSES)))
    names = list(FER2013_CLASSES)
    acc = float(accuracy_score(y, y_pred))
    report = classification_report(
        y, y_pred, labels=labels, target_names=names, digits=3, zero_division=0
    )
    report_dict = classification_report(
        y, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0
    )
    cm = confusion_matrix(y, y_pred, labels=labels)
    usage = ", ".join(sorted(set(fer.usage.tolist())))
    files = {}
    history = getattr(pipe.steps[-1][1], "history_", None)
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        files["confusion_matrix"] = str(
            _plot_confusion(y, y_pred, labels, names, model.name, usage, out)
        )
        if history:
            best = getattr(pipe.steps[-1][1], "best_epoch_", None)
            files["training_curve"] = str(_plot_history(history, best, model.name, out))
        elif _has_mark(out / "training_curve.png", EVALUATION_MARK):
            # An earlier run's curve (another model's) would read as this one's.
            (out / "training_curve.png").unlink()
    from fersk.pretrained._loading import _backend_of

    backend = _backend_of(pipe)
    doc = {
        "model": model.name,
        "backend": backend,
        "data": str(args.data),
        "usage": usage,
        "n_samples": int(len(y)),
        "detection": bool(args.detect),
        "no_face": n_no_face,
        "accuracy": round(acc, 4),
        "seconds": round(seconds, 2),
        "class_names": names,
        "classification_report": report_dict,
        "confusion_matrix": cm.tolist(),
        "recorded_metrics": {
            k: v for k, v in model.info["metrics"].items() if "matrix" not in k
        },
        "files": files,
    }
    if args.out is not None:
        files["evaluation"] = str(Path(args.out) / "evaluation.json")
        text = json.dumps(doc, indent=1) + "\n"
        _write_beside(files["evaluation"], lambda tmp: Path(tmp).write_text(text))
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
        return EXIT_OK
    print(f"model: {model.name} - {model.info['description']}")
    print(f"backend: {backend}")
    if args.detect:
        detection = f"with face detection ({n_no_face} without a face, classified whole)"
    else:
        detection = "faces taken as crops (no detection)"
    print(f"data: {args.data} ({usage}, {len(y)} images), {detection}")
    print(f"accuracy: {acc:.4f}  ({seconds:.1f} s)")
    recorded = model.info["metrics"].get("publictest_accuracy")
    if recorded is not None:
        n_rec = model.info["metrics"].get("n_publictest")
        on = f" on {n_rec} images" if n_rec else ""
        # The folder's metrics.publictest_accuracy: for the bundled models the
        # figure as loaded (their views and back end), for a `fersk train`
        # folder the training run's own scoring.
        print(f"recorded in the model folder: PublicTest accuracy {recorded}{on}")
    for record in model.info.get("int8", {}).values() if backend == "onnx-int8" else ():
        print(f"int8 graph, recorded by quantize: {record['test_accuracy_int8']} on "
              f"{record['test_faces']} test faces (float32: {record['test_accuracy_float32']})")
    print()
    print(report)
    print("confusion matrix (rows: true, columns: predicted):")
    w = max(len(n) for n in names)
    print(" " * (w + 2) + " ".join(f"{n[:7]:>7}" for n in names))
    for name, row in zip(names, cm):
        print(f"{name:<{w}}  " + " ".join(f"{v:>7d}" for v in row))
    for what, path in files.items():
        print(f"wrote {path}")
    if args.out is not None and history is None:
        print("no training history in this model: no training curve.")
    return EXIT_OK


def _plot_confusion(y, y_pred, labels, names, model_name, usage, out):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # optional: --out only
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        y, y_pred, labels=labels, display_labels=names, ax=ax, colorbar=True,
        xticks_rotation=45, cmap="Blues",
    )
    ax.set_title(f"{model_name} on FER-2013 {usage}")
    fig.tight_layout()
    return _write_beside(out / "confusion_matrix.png", lambda tmp: fig.savefig(
        tmp, format="png", metadata={"Software": EVALUATION_MARK}))


def _plot_history(history, best_epoch, model_name, out):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # optional: --out only
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    for k, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for key, label in ((metric, "training"), (f"val_{metric}", "validation (PublicTest)")):
            if key in history:
                values = history[key]
                ax.plot(range(1, len(values) + 1), values, marker=".", label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch + 1, color="grey", linestyle="--", label="weights kept")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle(f"{model_name}: training curves")
    fig.tight_layout()
    return _write_beside(out / "training_curve.png", lambda tmp: fig.savefig(
        tmp, format="png", metadata={"Software": EVALUATION_MARK}))
