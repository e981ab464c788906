"""The ``fersk`` command line: demo, predict, train and evaluate.

``fersk demo`` runs a pretrained model on scikit-image's astronaut photo;
``fersk predict`` classifies the faces in image files, folders and videos;
``fersk train`` trains a network on FER-2013 and writes a pretrained-model
folder; ``fersk evaluate`` scores a model on a FER-2013 split.  Nothing
here touches the network.  TensorFlow is imported only by the commands
that run a model, so ``fersk --help`` is fast.

Exit status: 0 when everything went well, 1 when some input failed (a file
that cannot be read, a photo without a face, bad data), 2 for usage errors
(unknown option or model, missing data path); see :func:`main`.

The reference is ``docs/cli.rst``; ``fersk COMMAND --help`` lists the
options of each command.
"""

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from fersk import _image_files, training

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Files read as images when found in a folder (compared case-insensitively).
IMAGE_EXTENSIONS = _image_files.IMAGE_EXTENSIONS
#: Files read as videos (with imageio) when given or found in a folder.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# Image formats that may be animated: read as a video when they are.
_ANIMATABLE = (".gif", ".webp", ".png")
# Images with both sides at most this many pixels are taken to be face
# crops already under --on-no-face auto (FER-2013's faces are 48x48).
_CROP_MAX_SIDE = 64
# Annotated copies of small images are enlarged to about this many pixels.
_ANNOTATE_MIN_SIDE = 192
_VIDEO_HINT = "pip install av (or pip install imageio-ffmpeg)"
_DEMO_OUT = "fersk_demo.png"
#: Files ``fersk demo --out`` writes: formats both matplotlib and Pillow save.
_DEMO_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


class _UsageError(Exception):
    """Bad command line: exit status 2."""


class _Failure(Exception):
    """The command could not do its work: exit status 1."""


class _FileError(Exception):
    """One input file failed; reported, the others go on."""


# --------------------------------------------------------------------------
# Argument parsing.


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _build_parser():
    from fersk import __version__

    parser = argparse.ArgumentParser(
        prog="fersk",
        description="Facial expression recognition from the command line (no network "
        "access). Exit status: 0 all fine, 1 some input failed, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"fersk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    model_help = (
        "a bundled model's name or a folder written by fersk.pretrained.save / "
        "'fersk train' (default: the bundled fer2013_vgg)"
    )

    demo = sub.add_parser(
        "demo",
        help="run a model on scikit-image's astronaut photo",
        description="Run a pretrained model on skimage.data.astronaut(): print the face "
        "box, the emotion and the 7 probabilities, and write an annotated PNG.",
    )
    demo.add_argument("--model", default=None, metavar="NAME_OR_FOLDER", help=model_help)
    demo.add_argument(
        "--out", default=_DEMO_OUT, metavar="PNG", help=f"annotated image (default: ./{_DEMO_OUT})"
    )
    demo.set_defaults(handler=_cmd_demo)

    predict = sub.add_parser(
        "predict",
        help="classify the faces in images, folders and videos",
        description="Classify the face in each image file, each image in folders "
        "(recursed), and each sampled frame of videos. Problems (unreadable files, "
        "folders without images, photos without a face) are reported per file and "
        "make the exit status 1; the other files are still classified.",
    )
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image/video files or folders")
    predict.add_argument("--model", default=None, metavar="NAME_OR_FOLDER", help=model_help)
    predict.add_argument(
        "--json", action="store_true", help="print one JSON document (records and errors)"
    )
    predict.add_argument(
        "--csv",
        default=None,
        metavar="OUT",
        help="write the rows (image results and video frames) as CSV to OUT ('-': stdout, "
        "instead of the table)",
    )
    predict.add_argument(
        "--annotate",
        default=None,
        metavar="DIR",
        help="write a copy of each image with its box and label",
    )
    predict.add_argument(
        "--on-no-face",
        choices=("auto", "skip", "whole", "center"),
        default="auto",
        help="auto (default): images no larger than the model's FaceCropper "
        "precropped_max_side (64 pixels for the bundled models and models saved without "
        "one) are taken to be face crops already and classified whole, as the Python "
        "pipeline does; larger ones without a face are reported as "
        "'no face'; skip: detect in every image, report 'no face'; whole/center: "
        "classify the whole image / its centre when no face is found",
    )
    predict.add_argument(
        "--faces",
        choices=("largest", "all"),
        default="largest",
        help="largest (default): one row per image, its largest face; all: a row per "
        "face found (group photos), and --annotate draws every face",
    )
    predict.add_argument(
        "--every",
        type=_positive_int,
        default=1,
        metavar="N",
        help="videos: every N-th frame (default 1)",
    )
    predict.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        metavar="N",
        help="images per batch (default 32)",
    )
    predict.add_argument("-v", "--verbose", action="store_true", help="progress to stderr")
    predict.set_defaults(handler=_cmd_predict)

    train = sub.add_parser(
        "train",
        help="train a network on FER-2013 and write a model folder",
        description="Train a network on the FER-2013 Training split, with PublicTest as "
        "validation data (early stopping, best weights restored), and write a "
        "pretrained-model folder (FaceCropper + network) with its metrics.",
    )
    train.add_argument(
        "--data", required=True, metavar="PATH", help="fer2013.csv or the image-folder root"
    )
    train.add_argument(
        "--model",
        default=None,
        metavar="ARCH",
        help="architecture: vgg_fer, kaggle_cnn, lbcnn, facechannel, mtcnn_cnn or vgg_s "
        "(required unless --init)",
    )
    train.add_argument("--out", required=True, metavar="FOLDER", help="model folder to write")
    train.add_argument(
        "--epochs", type=_positive_int, default=30, metavar="N", help="maximum epochs (default 30)"
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=8,
        metavar="N",
        help="early-stopping patience in epochs (default 8)",
    )
    train.add_argument(
        "--width",
        type=_positive_float,
        default=None,
        metavar="W",
        help="channel multiplier (default: the architecture's, 1.0)",
    )
    train.add_argument(
        "--dense-units",
        type=_positive_int,
        default=None,
        metavar="N",
        help="units of the dense layer (head_units for lbcnn; default: the architecture's)",
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=64, metavar="N", help="default 64"
    )
    train.add_argument(
        "--learning-rate", type=_positive_float, default=1e-3, metavar="LR", help="default 0.001"
    )
    train.add_argument("--augment", action="store_true", help="flips, shifts, zoom, rotations")
    train.add_argument(
        "--representation",
        choices=training.REPRESENTATIONS,
        default="raw",
        help="what the network reads: the grey face (raw, default) or Levi & Hassner's "
        "mapped-LBP image",
    )
    train.add_argument(
        "--schedule",
        choices=("constant", "plateau", "cosine", "warmup_cosine"),
        default="constant",
        help="learning-rate schedule (default constant; see CNNClassifier)",
    )
    train.add_argument(
        "--param",
        action="append",
        default=[],
        type=training.parse_param,
        metavar="KEY=VALUE",
        help="any other CNNClassifier parameter, VALUE in JSON or a bare word: "
        "crop_size=40, optimizer=sgd, label_smoothing=0.1, augment='{\"zoom\": 0}'; "
        "repeatable",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run whose state is in --out/training_state "
        "(weights, optimizer, schedule, epoch); give the same options again",
    )
    train.add_argument(
        "--test-time-flip",
        action="store_true",
        help="the model averages each face and its mirror image when predicting",
    )
    train.add_argument(
        "--init",
        default=None,
        metavar="NAME_OR_FOLDER",
        help="fine-tune this pretrained model (warm start) instead of training a new "
        "network; its architecture, representation and augmentation are kept",
    )
    train.add_argument(
        "--n-train",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stratified Training subset (smoke runs)",
    )
    train.add_argument(
        "--n-test",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stratified PublicTest subset (smoke runs)",
    )
    train.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    train.add_argument(
        "--description", default=None, metavar="TEXT", help="one line for the model card"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    train.add_argument("--no-cache", action="store_true", help="do not use load_fer2013's cache")
    train.add_argument("-v", "--verbose", action="store_true", help="data-loading details")
    train.set_defaults(handler=_cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="score a model on a FER-2013 split",
        description="Accuracy, per-class report and confusion matrix of a model on a "
        "FER-2013 split. FER-2013's faces are crops already, so face detection is "
        "switched off (the cropper's detector=None) unless --detect is given.",
    )
    evaluate.add_argument(
        "--data", required=True, metavar="PATH", help="fer2013.csv or the image-folder root"
    )
    evaluate.add_argument("--model", default=None, metavar="NAME_OR_FOLDER", help=model_help)
    evaluate.add_argument(
        "--usage",
        default="PublicTest",
        metavar="USAGE",
        help="split to score: Training, PublicTest (default) or PrivateTest",
    )
    evaluate.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write confusion_matrix.png, training_curve.png and evaluation.json "
        "(needs matplotlib)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON document")
    evaluate.add_argument(
        "--detect", action="store_true", help="keep face detection (scores the end-to-end pipeline)"
    )
    evaluate.add_argument("--no-cache", action="store_true", help="do not use load_fer2013's cache")
    evaluate.add_argument("-v", "--verbose", action="store_true", help="progress to stderr")
    evaluate.set_defaults(handler=_cmd_evaluate)
    return parser


def _warning_printer(command):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"fersk {command}: warning: {message}", file=sys.stderr if file is None else file)

    return show


def _import_keras_quietly():
    """Import Keras (and TensorFlow) without their native start-up lines.

    TensorFlow's C++ layer writes oneDNN and CUDA-probing lines straight to
    file descriptor 2 at import, before its log level applies, and a
    cuInit error at first use unless ``TF_CPP_MIN_LOG_LEVEL`` hides it: on
    a terminal they drown the command's own messages, and in ``--json``
    mode they are not JSON.  Both are silenced here (a level the user set
    is kept); Python-level errors still reach stderr.
    """
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real file descriptor 2 (embedded interpreters)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import keras  # noqa: F401
        except ImportError:
            pass  # reported where a command needs it
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv=None):
    """Run the ``fersk`` command line.

    Commands (``fersk COMMAND --help`` for their options):

    - ``fersk demo [--model M] [--out PNG]``: the model on scikit-image's
      astronaut photo; prints the face box, the emotion and the
      probabilities, writes an annotated PNG.
    - ``fersk predict PATH... [--model M] [--json] [--csv OUT]
      [--annotate DIR] [--on-no-face auto|skip|whole|center] [--every N]``:
      a row per image with a face (file, box, emotion, probabilities); a
      row per sampled frame of a video.
    - ``fersk train --data PATH --model ARCH --out FOLDER [--epochs N]
      [--width W] [--augment] [--representation raw|mapped_lbp]
      [--schedule S] [--test-time-flip] [--param KEY=VALUE]... [--resume]
      [--n-train N] [--seed S]``: train on FER-2013 and write a model folder
      that ``--model`` accepts; ``--init M`` instead of ``--model``
      fine-tunes a saved model; ``--param`` sets any other network
      parameter (``crop_size=40``, ``optimizer=sgd``...); an interrupted
      run continues with ``--resume``.
    - ``fersk evaluate --data PATH [--model M] [--usage PublicTest]
      [--out DIR] [--json]``: accuracy, per-class report, confusion
      matrix and training-curve plots.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 when everything went well; 1 when some input failed (an
        unreadable file, a folder without images, a photo without a face,
        bad FER-2013 data), the rest still being processed and reported; 2
        for a usage error (unknown option, model or architecture, missing
        data path, existing output folder without ``--overwrite``).  Help
        and ``--version`` return 0.

    See Also
    --------
    fersk.pretrained.load : The models that ``--model`` names.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["--version"])
    fersk 0.1.0.dev0
    0
    >>> main(["predict"])  # a usage error: PATH is missing (message on stderr)
    2

    Classify the faces of a folder of photos as JSON, or a video's frames
    as a CSV time series (shell)::

        fersk predict photos/ --json > emotions.json
        fersk predict clip.mp4 --every 5 --csv clip_emotions.csv
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        if exc.code is None:
            return EXIT_OK
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("fersk: error: give a command: demo, predict, train or evaluate.", file=sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    _import_keras_quietly()
    try:
        with warnings.catch_warnings():
            # One line per warning, as the command's other messages, not
            # Python's "file:line: Category" form with a source line.
            warnings.showwarning = _warning_printer(args.command)
            return args.handler(args)
    except _UsageError as exc:
        print(f"fersk {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Failure as exc:
        print(f"fersk {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        hint = (" (the last finished epoch is saved: run the same command with --resume to "
                "continue)" if args.command == "train" else "")
        print(f"fersk {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `fersk predict ... | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_FAILED


# --------------------------------------------------------------------------
# Models and classification.


@dataclass
class _Model:
    name: str
    pipeline: object
    cropper: object
    rest: object
    class_names: list
    classes: list
    info: dict


def _load_model(name):
    """Load a pretrained model; unknown models are usage errors."""
    from fersk import pretrained
    from fersk.face import FaceCropper

    try:
        meta = pretrained.info(name)
        pipeline = pretrained.load(name)
    except ValueError as exc:
        raise _UsageError(f"--model: {exc}") from None
    first_name, first = pipeline.steps[0]
    if not isinstance(first, FaceCropper) or len(pipeline.steps) < 2:
        raise _UsageError(
            f"--model: the model's first step must be a FaceCropper followed by a "
            f"classifier; {meta['name']} has steps {[s for s, _ in pipeline.steps]}."
        )
    return _Model(
        name=meta["name"] if name is None else str(name),
        pipeline=pipeline,
        cropper=first,
        rest=pipeline[1:],
        class_names=list(meta["class_names"]),
        classes=list(meta["classes"]),
        info=meta,
    )


@dataclass
class _Result:
    face: str  # "detected", "crop" (taken as a face crop) or "none"
    box: tuple  # (row, col, height, width) or None
    proba: object  # ndarray of shape (n_classes,) or None (not classified)
    index: object = None  # rank of the face in its image (0: the largest) or None


def _taken_whole(model, image, policy):
    """Whether ``image`` is a face crop already: under 'auto', the model's
    FaceCropper rule (``precropped_max_side``; the bundled models' 64 pixels
    for a model saved without one), so that the CLI answers as the
    pipeline does; the other policies detect in every image."""
    if policy != "auto":
        return False
    rule = model.cropper.precropped_max_side
    return max(image.shape[:2]) <= (_CROP_MAX_SIDE if rule is None else rule)


def _classify(model, images, policy):
    """Find the face of each image and classify it.

    ``images`` is a list of arrays of any sizes.  Under ``policy`` 'auto',
    images within the model's ``precropped_max_side`` are taken whole as
    face crops; larger ones (and all under the other policies) go through
    detection.  Images without a face are left unclassified ('auto',
    'skip') or classified whole / centre-cropped ('whole', 'center').
    """
    import numpy as np
    from sklearn.base import clone

    from fersk.face import NoFaceWarning

    n = len(images)
    results = [None] * n
    crops = [None] * n
    is_crop = [_taken_whole(model, image, policy) for image in images]
    groups = {
        "crop": ([i for i in range(n) if is_crop[i]], {"detector": None}),
        "detect": (
            [i for i in range(n) if not is_crop[i]],
            {"on_no_face": policy if policy in ("whole", "center") else "whole",
             "precropped_max_side": None},
        ),
    }
    detects = model.cropper.detector is not None
    for kind, (indices, params) in groups.items():
        if not indices:
            continue
        cropper = clone(model.cropper).set_params(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)
            out, info = cropper.crop([images[i] for i in indices])
        for k, i in enumerate(indices):
            found = bool(info.n_faces[k])
            box = tuple(float(v) for v in info.boxes[k]) if found else None
            face = "detected" if kind == "detect" and detects else "crop"
            if not found:
                face = "none"
            results[i] = _Result(face, box, None)
            if found or policy in ("whole", "center"):
                crops[i] = out[k]
    todo = [i for i in range(n) if crops[i] is not None]
    if todo:
        proba = model.rest.predict_proba(np.stack([crops[i] for i in todo]))
        for k, i in enumerate(todo):
            results[i].proba = proba[k]
    return results


def _classify_all(model, images, policy):
    """Every face of each image, classified: a list of _Result per image.

    Detection runs once per image (:meth:`FaceCropper.crop_faces`); images
    taken whole ('auto' and small) or without a face give the one result
    :func:`_classify` gives them.
    """
    import numpy as np
    from sklearn.base import clone

    from fersk.face import NoFaceWarning

    if model.cropper.detector is None:
        return [[r] for r in _classify(model, images, policy)]
    whole = {i for i, image in enumerate(images) if _taken_whole(model, image, policy)}
    detect = [i for i in range(len(images)) if i not in whole]
    per_image = [None] * len(images)
    if detect:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoFaceWarning)
            cropper = clone(model.cropper).set_params(precropped_max_side=None)
            crops, faces = cropper.crop_faces([images[i] for i in detect])
        proba = model.rest.predict_proba(crops) if len(crops) else []
        for face, p in zip(faces, proba):
            i = detect[face["image"]]
            per_image[i] = (per_image[i] or []) + [
                _Result("detected", face["box"], np.asarray(p), face["face"])
            ]
    # Taken whole, or no face: as without --faces all (the policy decides).
    rest = [i for i in range(len(images)) if per_image[i] is None]
    if rest:
        for i, result in zip(rest, _classify(model, [images[i] for i in rest], policy)):
            per_image[i] = [result]
    return per_image


def _box_list(box):
    if box is None:
        return None
    return [int(v) if float(v).is_integer() else round(float(v), 1) for v in box]


def _record(model, file, result, **extra):
    """The JSON-able record of one classified (or face-less) image/frame."""
    rec = {"file": file, **extra, "face": result.face, "box": _box_list(result.box)}
    if result.index is not None:
        rec["face_index"] = result.index
    if result.proba is None:
        rec["emotion"] = None
        rec["probabilities"] = None
    else:
        rec["emotion"] = model.class_names[int(result.proba.argmax())]
        rec["probabilities"] = {
            name: round(float(p), 4) for name, p in zip(model.class_names, result.proba)
        }
    return rec


# --------------------------------------------------------------------------
# Reading inputs.


def _read_image(path):
    """Read one image file as uint8 grey or RGB; 'video' if it is animated.

    As :func:`fersk.datasets.load_fer2013` does: 16-bit images keep their
    high byte (Pillow's ``convert`` would clip them at 255), floating-point
    images are refused, palette images become RGB, alpha is dropped.
    """
    from PIL import Image

    from fersk._image_files import pil_to_uint8

    try:
        with Image.open(path) as im:
            if path.suffix.lower() in _ANIMATABLE and getattr(im, "is_animated", False):
                return "video"
            im = _image_files.open_image(im)
            try:
                return pil_to_uint8(im)
            except ValueError as exc:
                raise _FileError(str(exc)) from None
    except _FileError:
        raise
    except Exception as exc:  # any decoding failure is this file's problem only
        raise _FileError(
            f"cannot read an image from this file ({type(exc).__name__}: {exc})"
        ) from None


def _video_backends():
    import importlib.util

    return [m for m in ("av", "imageio_ffmpeg") if importlib.util.find_spec(m) is not None]


def _iter_video(path, every):
    """Yield ``(frame_index, time_s, frame)`` for every ``every``-th frame.

    Times come from the file's frame rate (``fps`` metadata) or, for
    animated images, from the frames' durations; None when unknown.
    """
    try:
        import imageio.v3 as iio
    except ImportError:
        raise _FileError(
            "reading videos needs imageio: pip install 'fersk[video]' (imageio and av)"
        ) from None
    try:
        with warnings.catch_warnings():
            # imageio probes its plugins; the legacy ones warn of deprecation.
            warnings.simplefilter("ignore", DeprecationWarning)
            reader = iio.imopen(path, "r")
    except Exception as exc:
        if path.suffix.lower() in VIDEO_EXTENSIONS and not _video_backends():
            raise _FileError(
                f"cannot read this video: imageio has no {path.suffix.lower()} reader "
                f"installed; {_VIDEO_HINT}"
            ) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise _FileError(f"cannot read this video ({type(exc).__name__}: {first})") from None
    with reader:
        try:
            meta = reader.metadata()
        except Exception:
            meta = {}
        fps = meta.get("fps")
        fps = float(fps) if fps and math.isfinite(float(fps)) and float(fps) > 0 else None
        per_frame = fps is None and type(reader).__name__ == "PillowPlugin"
        elapsed = 0.0
        index = -1
        try:
            for index, frame in enumerate(reader.iter()):
                if fps is not None:
                    t = index / fps
                elif per_frame:
                    t = elapsed
                    elapsed += float(reader.metadata(index=index).get("duration", 0) or 0) / 1000.0
                else:
                    t = None
                if index % every == 0:
                    yield index, t, frame
        except _FileError:
            raise
        except Exception as exc:
            raise _FileError(
                f"reading stopped after {index + 1} frames ({type(exc).__name__}: {exc})"
            ) from None
        if index < 0:
            raise _FileError("the video has no frames")


def _collect(paths):
    """Expand PATH arguments: (display name, Path, annotate name) or errors."""
    entries, errors = [], []
    wanted = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and name.lower().endswith(wanted):
                        found.append(Path(root) / name)
            if not found:
                errors.append(
                    (arg, f"folder with no image or video files ({' '.join(wanted)})")
                )
            for file in found:
                rel = file.relative_to(path)
                entries.append((os.path.join(arg, str(rel)), file, Path(path.resolve().name) / rel))
        elif path.is_file():
            entries.append((arg, path, Path(path.name)))
        elif path.exists():
            errors.append((arg, "not a regular file or folder"))
        else:
            errors.append((arg, "no such file or folder"))
    return entries, errors


# --------------------------------------------------------------------------
# Output of predict.


class _Reporter:
    """Streams predict's rows (table or CSV) and problems; JSON at the end."""

    def __init__(self, args, model, width):
        self.model = model
        self.json = args.json
        self.records, self.errors = [], []
        self.width = max(width, 4)
        self.n_rows = 0
        self.csv_file = None
        self.csv = None
        self.table = not args.json and args.csv != "-"
        self.all_faces = getattr(args, "faces", "largest") == "all"
        if args.csv is not None:
            if args.csv == "-":
                self.csv_file = sys.stdout
            else:
                try:
                    self.csv_file = open(args.csv, "w", newline="")
                except OSError as exc:
                    raise _UsageError(f"--csv: cannot write {args.csv!r} ({exc})") from None
            self.csv = csv.writer(self.csv_file)
            self.csv.writerow(
                ["file", "frame", "time_s", "face"]
                + (["face_index"] if self.all_faces else [])
                + ["row", "col", "height", "width", "emotion"]
                + model.class_names
            )
        self.prob_widths = [max(len(name), 5) for name in model.class_names]

    def _header(self):
        names = zip(self.model.class_names, self.prob_widths)
        probs = "  ".join(f"{name:>{w}}" for name, w in names)
        print(
            f"{'file':<{self.width}}  {'face':<8}  {'box (row col h w)':<18}  "
            f"{'emotion':<8}  {probs}"
        )

    def record(self, rec):
        if self.json:
            self.records.append(rec)
        if self.csv is not None:
            box = rec["box"] or [""] * 4
            probs = rec["probabilities"]
            self.csv.writerow(
                [rec["file"], rec.get("frame", ""), _fmt_time(rec.get("time_s")), rec["face"]]
                + ([rec.get("face_index", "")] if self.all_faces else [])
                + [*box, rec["emotion"] or ""]
                + (
                    [f"{p:.4f}" for p in probs.values()]
                    if probs
                    else [""] * len(self.model.class_names)
                )
            )
        if self.table:
            if self.n_rows == 0:
                self._header()
            name = rec["file"]
            if "frame" in rec:
                t = rec.get("time_s")
                name += f"#{rec['frame']}" + (f" ({t:.2f} s)" if t is not None else "")
            box = " ".join(str(v) for v in rec["box"]) if rec["box"] else "-"
            probs = rec["probabilities"]
            cells = "  ".join(
                f"{(f'{probs[n]:.3f}' if probs else '-'):>{w}}"
                for n, w in zip(self.model.class_names, self.prob_widths)
            )
            face = rec["face"] + (f"#{rec['face_index']}" if "face_index" in rec else "")
            print(
                f"{name:<{self.width}}  {face:<8}  {box:<18}  "
                f"{rec['emotion'] or '-':<8}  {cells}"
            )
        self.n_rows += 1

    def error(self, file, message):
        self.errors.append({"file": file, "error": message})
        if not self.json:
            print(f"fersk predict: {file}: {message}", file=sys.stderr)

    def close(self, policy, n_files, seconds):
        if self.csv_file is not None and self.csv_file is not sys.stdout:
            self.csv_file.close()
        if self.json:
            doc = {
                "model": self.model.name,
                "on_no_face": policy,
                "class_names": self.model.class_names,
                "records": self.records,
                "errors": self.errors,
                "summary": {
                    "files": n_files,
                    "rows": self.n_rows,
                    "failed": len(self.errors),
                    "seconds": round(seconds, 2),
                },
            }
            _dump_rows_json(doc)
        else:
            print(
                f"fersk predict: {self.n_rows} rows from {n_files} files, "
                f"{len(self.errors)} problems, {seconds:.1f} s",
                file=sys.stderr,
            )
        return EXIT_FAILED if self.errors else EXIT_OK


def _dump_rows_json(doc):
    """Print ``doc`` as indented JSON, each record and error on one line."""
    lines = ["{"]
    items = list(doc.items())
    for k, (key, value) in enumerate(items):
        comma = "," if k < len(items) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rows = ",\n".join(f"  {json.dumps(v)}" for v in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    print("\n".join(lines))


def _fmt_time(t):
    return "" if t is None else f"{t:.3f}"


# --------------------------------------------------------------------------
# Annotated images.


def _label(model, result):
    if result.proba is None:
        return "no face"
    k = int(result.proba.argmax())
    return f"{model.class_names[k]} {result.proba[k]:.2f}"


def _draw_box(rgb, box, thickness, color=(0, 255, 0)):
    """Draw the edges of ``box`` (row, col, height, width) into ``rgb``.

    Four filled bars of :func:`skimage.draw.rectangle` (its
    ``rectangle_perimeter`` needs matplotlib), clipped to the image.
    """
    from skimage.draw import rectangle

    h, w = rgb.shape[:2]
    r, c, bh, bw = box
    r0, c0 = int(round(r)), int(round(c))
    r1, c1 = r0 + max(1, int(round(bh))) - 1, c0 + max(1, int(round(bw))) - 1
    t = thickness - 1
    bars = (
        ((r0, c0), (r0 + t, c1)),
        ((r1 - t, c0), (r1, c1)),
        ((r0, c0), (r1, c0 + t)),
        ((r0, c1 - t), (r1, c1)),
    )
    for (ra, ca), (rb, cb) in bars:
        ra, rb = max(ra, 0), min(rb, h - 1)
        ca, cb = max(ca, 0), min(cb, w - 1)
        if ra <= rb and ca <= cb:
            rr, cc = rectangle((ra, ca), end=(rb, cb), shape=(h, w))
            rgb[rr, cc] = color


def _annotate(image, faces, path):
    """Write ``image`` with each face's box drawn and label written, as a PNG.

    ``faces`` is a list of ``(box, label)``; a None box (no face) puts its
    label in the top-left corner.

    The box is drawn with :func:`skimage.draw.rectangle`; the label needs
    matplotlib.  Returns whether the label could be written.
    """
    import numpy as np

    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    rgb = rgb[..., :3]
    rgb = _image_files.stretch_to_uint8(rgb)  # display: the image's own range
    scale = max(1, math.ceil(_ANNOTATE_MIN_SIDE / min(rgb.shape[:2])))
    if scale > 1:  # small faces: enlarge (nearest neighbour) so the label is legible
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    else:
        rgb = rgb.copy()
    h, w = rgb.shape[:2]
    thickness = max(1, round(min(h, w) / 150))
    for box, _ in faces:
        if box is not None:
            _draw_box(rgb, [v * scale for v in box], thickness)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        from PIL import Image

        Image.fromarray(rgb).save(path)
        return False
    dpi = 100
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    font_px = max(10.0, min(h, w) / 25)
    for box, label in faces:
        r, c = (box[0] * scale, box[1] * scale) if box is not None else (0, 0)
        above = r >= font_px + 2 * thickness + 4
        ax.text(
            max(c, 0),
            r - thickness if above else max(r, 0) + thickness,
            label,
            fontsize=font_px * 72 / dpi,
            color="black",
            va="bottom" if above else "top",
            ha="left",
            bbox={"facecolor": (0, 1, 0), "edgecolor": "none", "pad": 1.5},
        )
    fig.savefig(path, dpi=dpi)
    return True


class _Annotator:
    """Unique PNG names under DIR; says once when labels cannot be drawn."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.used = set()
        self.warned = False
        self.written = 0

    def write(self, model, rel, image, faces):
        target = self.folder / rel.with_suffix(".png")
        k = 2
        while target in self.used:
            target = self.folder / rel.with_name(f"{rel.stem}_{k}.png")
            k += 1
        self.used.add(target)
        labelled = _annotate(image, [(f.box, _label(model, f)) for f in faces], target)
        if not labelled and not self.warned:
            print(
                "fersk: matplotlib is not installed: annotated images show the box only "
                "(pip install matplotlib for the label).",
                file=sys.stderr,
            )
            self.warned = True
        self.written += 1


# --------------------------------------------------------------------------
# Commands.


def _cmd_demo(args):
    from skimage import data

    out = Path(args.out)
    if out.is_dir():  # a folder: the default file name inside it
        out = out / _DEMO_OUT
    if out.suffix.lower() not in _DEMO_SUFFIXES:
        raise _UsageError(
            f"--out: {args.out!r} is not an image file name; end it in "
            f"{', '.join(sorted(_DEMO_SUFFIXES))} (or give a folder)."
        )
    if not out.parent.is_dir():
        raise _UsageError(f"--out: the folder {str(out.parent)!r} does not exist.")
    model = _load_model(args.model)
    image = data.astronaut()
    result = _classify(model, [image], "skip")[0]
    print(f"model: {model.name} - {model.info['description']}")
    print(f"image: skimage.data.astronaut() ({image.shape[0]}x{image.shape[1]} RGB)")
    if result.proba is None:
        print("no face found")
    else:
        box = " ".join(str(v) for v in _box_list(result.box))
        k = int(result.proba.argmax())
        print(f"face box (row col height width): {box}")
        print(f"emotion: {model.class_names[k]} ({result.proba[k]:.2f})")
        print("probabilities:")
        for name, p in sorted(zip(model.class_names, result.proba), key=lambda t: -t[1]):
            print(f"  {name:<9} {p:.3f}")
    try:
        labelled = _annotate(image, [(result.box, _label(model, result))], out)
    except OSError as exc:
        raise _Failure(f"cannot write {str(out)!r} ({exc})") from None
    if not labelled:
        print(
            "matplotlib is not installed: the box is drawn without its label "
            "(pip install matplotlib)."
        )
    print(f"annotated image written to {out}")
    return EXIT_OK if result.proba is not None else EXIT_FAILED


def _cmd_predict(args):
    if args.annotate is not None:
        folder = Path(args.annotate)
        if folder.exists() and not folder.is_dir():
            raise _UsageError(f"--annotate: {args.annotate!r} exists and is not a folder.")
    if args.json and args.csv == "-":
        raise _UsageError("--json and --csv - both write to stdout; give --csv a file name.")
    entries, path_errors = _collect(args.paths)
    model = _load_model(args.model)
    width = min(max([len(name) for name, _, _ in entries] + [4]), 60)
    reporter = _Reporter(args, model, width)
    annotator = _Annotator(args.annotate) if args.annotate is not None else None
    for file, message in path_errors:
        reporter.error(file, message)
    start = time.perf_counter()
    progress = _Progress(len(entries), args.verbose, start)

    batch = []  # (name, rel, image)

    def flush():
        if not batch:
            return
        images = [image for _, _, image in batch]
        classify = _classify_all if args.faces == "all" else _classify
        try:
            results = classify(model, images, args.on_no_face)
        except ValueError:
            # An image the cropper refuses must not sink its batch: one by one.
            results = []
            for image in images:
                try:
                    results.append(classify(model, [image], args.on_no_face)[0])
                except ValueError as exc:
                    results.append(exc)
        for (name, rel, image), result in zip(batch, results):
            if isinstance(result, ValueError):
                reporter.error(name, f"cannot classify this image ({result})")
                continue
            faces = result if isinstance(result, list) else [result]
            if faces[0].proba is None:
                reporter.error(
                    name,
                    "no face found (use --on-no-face whole to classify the whole image, "
                    "e.g. for face crops larger than 64 px)",
                )
            else:
                for face in faces:
                    reporter.record(_record(model, name, face))
            if annotator is not None:
                try:
                    annotator.write(model, rel, image, faces)
                except OSError as exc:
                    reporter.error(name, f"cannot write its annotated copy ({exc})")
        batch.clear()

    for done, (name, path, rel) in enumerate(entries, 1):
        try:
            is_video = path.suffix.lower() in VIDEO_EXTENSIONS
            image = None if is_video else _read_image(path)
            if is_video or (isinstance(image, str) and image == "video"):
                flush()
                _predict_video(model, name, path, args, reporter, progress)
            else:
                batch.append((name, rel, image))
        except _FileError as exc:
            reporter.error(name, str(exc))
        if len(batch) >= args.batch_size:
            flush()
            progress.update(done, len(reporter.errors))
    flush()
    progress.update(len(entries), len(reporter.errors))
    if annotator is not None and args.verbose:
        print(
            f"fersk predict: {annotator.written} annotated images in {args.annotate}",
            file=sys.stderr,
        )
    n_files = len(entries)  # files found; missing paths are counted as problems only
    return reporter.close(args.on_no_face, n_files, time.perf_counter() - start)


def _predict_video(model, name, path, args, reporter, progress):
    frames = []  # (index, time, frame)
    n_sampled = 0

    def flush():
        if not frames:
            return
        results = _classify(model, [f for _, _, f in frames], args.on_no_face)
        for (index, t, _), result in zip(frames, results):
            reporter.record(_record(model, name, result, frame=index, time_s=t))
        frames.clear()

    try:
        for index, t, frame in _iter_video(path, args.every):
            frames.append((index, None if t is None else round(t, 3), frame))
            n_sampled += 1
            if len(frames) >= args.batch_size:
                flush()
                progress.note(f"{name}: {n_sampled} frames classified")
    finally:
        flush()  # the frames read before an error are still reported
    progress.note(f"{name}: {n_sampled} frames classified")


class _Progress:
    def __init__(self, total, verbose, start):
        self.total, self.verbose, self.start = total, verbose, start

    def update(self, done, n_errors):
        if self.verbose:
            print(
                f"[fersk predict] {done}/{self.total} files, {n_errors} problems, "
                f"{time.perf_counter() - self.start:.1f} s",
                file=sys.stderr,
                flush=True,
            )

    def note(self, text):
        if self.verbose:
            print(f"[fersk predict] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Training (shared with benchmarks/train_pretrained.py).


def _architecture_params(architecture, width, dense_units):
    """Builder keyword arguments from --width/--dense-units, checked."""
    import inspect

    from fersk.architectures import ARCHITECTURES

    if architecture not in ARCHITECTURES:
        raise _UsageError(
            f"--model: unknown architecture {architecture!r}; choose one of "
            f"{sorted(ARCHITECTURES)}."
        )
    accepted = inspect.signature(ARCHITECTURES[architecture]).parameters
    params = {}
    if width is not None:
        params["width"] = width
    if dense_units is not None:
        key = "dense_units" if "dense_units" in accepted else "head_units"
        params[key] = dense_units
    return params


#: The folder of ``fersk train --out`` holding an unfinished run's state.
TRAINING_STATE = "training_state"


def _check_data(path):
    if not Path(path).exists():
        raise _UsageError(
            f"--data: {path!r} does not exist; give the Kaggle fer2013.csv or the root of "
            "the FER-2013 image folders (train/, test/)."
        )


def _cmd_train(args):
    from fersk import pretrained

    _check_data(args.data)
    if args.init is not None:
        given = [
            flag for flag, value in (
                ("--model", args.model), ("--width", args.width),
                ("--dense-units", args.dense_units), ("--augment", args.augment or None),
                ("--representation", None if args.representation == "raw" else 1),
            ) if value is not None
        ]
        if given:
            raise _UsageError(
                f"--init fine-tunes a model with its own architecture, representation and "
                f"augmentation; drop {', '.join(given)}."
            )
        try:
            pretrained.info(args.init)
        except ValueError as exc:
            raise _UsageError(f"--init: {exc}") from None
        params = None
    elif args.model is None:
        raise _UsageError("give --model ARCH (a new network) or --init MODEL (fine-tuning).")
    else:
        params = _architecture_params(args.model, args.width, args.dense_units)
    network_params = dict(args.param)
    if network_params:
        from fersk import CNNClassifier

        own = {"architecture", "architecture_params", "checkpoint_dir", "random_state"}
        unknown = sorted(set(network_params) - (set(CNNClassifier().get_params()) - own))
        if unknown:
            raise _UsageError(
                f"--param: {', '.join(unknown)} is not a CNNClassifier parameter this "
                "command lets you set."
            )
    out = Path(args.out)
    state = out / TRAINING_STATE
    interrupted = state.is_dir() and any(state.iterdir())
    if args.resume and not interrupted:
        raise _UsageError(f"--resume: {args.out!r} holds no interrupted run ({state} is empty).")
    if interrupted and not args.resume and not args.overwrite:
        raise _UsageError(
            f"--out: {args.out!r} holds an interrupted run; --resume continues it, "
            "--overwrite starts again."
        )
    if interrupted and args.overwrite and not args.resume:
        shutil.rmtree(state)
    if (out.exists() and (not out.is_dir() or any(p.name != TRAINING_STATE for p in out.iterdir()))
            and not args.overwrite):
        raise _UsageError(
            f"--out: {args.out!r} exists and is not empty; give another folder or --overwrite."
        )
    try:  # before training, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"--out: cannot create {args.out!r} ({exc}).") from None
    command = "fersk " + " ".join(args.argv)
    try:
        pipe, metrics = training.train_fer2013(
            args.data,
            architecture=args.model,
            architecture_params=params,
            epochs=args.epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            augment=args.augment,
            representation=args.representation,
            learning_rate_schedule=args.schedule,
            test_time_flip=args.test_time_flip,
            init_from=args.init,
            network_params=network_params,
            training_state=state,
            n_train=args.n_train,
            n_test=args.n_test,
            seed=args.seed,
            command=command,
            load_verbose=int(args.verbose),
            cache=not args.no_cache,
        )
    except ValueError as exc:
        raise _Failure(getattr(exc, "without_python_hint", str(exc))) from None
    if state.is_dir() and not any(state.iterdir()):
        state.rmdir()  # the completed fit removed its files
    net = pipe.steps[-1][1]
    metrics.update(
        architecture=getattr(net, "architecture", type(net).__name__),
        architecture_params=getattr(net, "architecture_params", None),
        augment=bool(net.augment),
        seed=args.seed,
    )
    print(json.dumps({k: v for k, v in metrics.items() if "matrix" not in k}, indent=1))
    description = args.description or training.describe(
        architecture=args.model,
        shape=", ".join(f"{k} {v}" for k, v in (params or {}).items()),
        representation=args.representation,
        subset=f" ({metrics['n_train']} images)" if args.n_train else "",
        init_from=args.init,
        learning_rate=args.learning_rate,
        schedule=args.schedule,
    )
    path = pretrained.save(pipe, out, description=description, metrics=metrics)
    print(f"saved {path}")
    return EXIT_OK


def _cmd_evaluate(args):
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    from fersk.datasets import FER2013_CLASSES, FER2013_USAGES, load_fer2013
    from fersk.face import NoFaceWarning

    _check_data(args.data)
    usages = {u.lower(): u for u in FER2013_USAGES}
    if args.usage.lower() not in usages:
        raise _UsageError(f"--usage: {args.usage!r} is not one of {list(FER2013_USAGES)}.")
    args.usage = usages[args.usage.lower()]
    if args.out is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _UsageError(
                "--out writes plots with matplotlib, which is not installed: pip install "
                "matplotlib (or use --json for the numbers)."
            ) from None
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise _UsageError(f"--out: {args.out!r} exists and is not a folder.")
    model = _load_model(args.model)
    if not set(model.classes) <= set(range(len(FER2013_CLASSES))):
        raise _UsageError(
            f"--model: its classes {model.classes} are not FER-2013 labels (0-6)."
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
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoFaceWarning)
        crops, info = pipe.steps[0][1].crop(fer.images)
        y_pred = pipe[1:].predict(crops)
    seconds = time.perf_counter() - start
    n_no_face = len(info.no_face_indices) if args.detect else 0
    y = fer.target
    labels = model.classes
    names = model.class_names
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
    doc = {
        "model": model.name,
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
        Path(files["evaluation"]).write_text(json.dumps(doc, indent=1) + "\n")
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        print()
        return EXIT_OK
    print(f"model: {model.name} - {model.info['description']}")
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
        print(f"recorded at training: PublicTest accuracy {recorded}{on}")
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        y, y_pred, labels=labels, display_labels=names, ax=ax, colorbar=True,
        xticks_rotation=45, cmap="Blues",
    )
    ax.set_title(f"{model_name} on FER-2013 {usage}")
    fig.tight_layout()
    path = out / "confusion_matrix.png"
    fig.savefig(path)
    return path


def _plot_history(history, best_epoch, model_name, out):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
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
    path = out / "training_curve.png"
    fig.savefig(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
