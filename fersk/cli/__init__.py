"""The ``fersk`` command line: demo, predict, train, evaluate, live, serve, export and cache.

``fersk demo`` runs a pretrained model on scikit-image's astronaut photo;
``fersk predict`` classifies the faces in image files, folders and videos;
``fersk train`` trains a network on FER-2013 and writes a pretrained-model
folder; ``fersk evaluate`` scores a model on a FER-2013 split; ``fersk
live`` classifies a camera's or a video's faces frame by frame; ``fersk
serve`` runs a local web app (webcam page and JSON API); ``fersk export``
writes a model's networks as ONNX files and ``fersk cache`` lists (or
clears) fersk's cache folder.  Nothing here touches the network (``fersk
serve`` binds 127.0.0.1 by default).  TensorFlow is imported only by the
commands that run a model on Keras, so ``fersk --help``, ``fersk cache``
and the commands on ONNX Runtime (``--backend onnx``, ``onnx-int8``, and
``auto`` for a model that ships int8 graphs) never load it.

This package holds :func:`main` and the argument parser, which import
nothing heavy; each command lives in its own module
(:mod:`fersk.cli.demo`, :mod:`fersk.cli.predict`, :mod:`fersk.cli.train`,
:mod:`fersk.cli.evaluate`, :mod:`fersk.cli.live`, :mod:`fersk.cli.serve`, with the helpers they share in ``_common`` and
``_faces``), imported only when that command runs.

Exit status: 0 when everything went well, 1 when some input failed (a file
that cannot be read, a photo without a face, bad data), 2 for usage errors
(unknown option or model, missing data path); see :func:`main`.

The reference is ``docs/cli.rst``; ``fersk COMMAND --help`` lists the
options of each command.
"""

import argparse
import contextlib
import importlib
import os
import signal
import sys
import warnings

from fersk import __version__, _progress, training

from ._common import (
    _DEMO_OUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    _Failure,
    _positive_float,
    _nonnegative_int,
    _port,
    _positive_int,
    _seed,
    _unit_float,
    _UsageError,
)

__all__ = ["main"]

# The commands: each is run by the ``run`` function of the module of its name,
# imported only when that command runs.
_COMMANDS = ("demo", "predict", "train", "adapt", "evaluate", "live", "serve", "export", "cache")

# Where each command's progress lines go, its own and those of the library
# code it calls (the stream rule of fersk._progress): stderr where stdout
# carries the results; stdout for ``train``, whose output is its log.
_PROGRESS_STREAM = {"demo": "stderr", "predict": "stderr", "train": "stdout", "adapt": "stdout",
                    "evaluate": "stderr", "live": "stderr", "serve": "stderr",
                    "export": "stderr", "cache": "stderr"}

# Names of the former single-module fersk/cli.py that now live in one of this
# package's modules.  They resolve on first use (module __getattr__), so that
# ``import fersk.cli`` still loads no command module.
_MOVED = {
    name: (module, name)
    for module, names in {
        "fersk.cli._common": (
            "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "_FileError", "_check_data",
        ),
        "fersk.cli._faces": (
            "_ANNOTATE_MIN_SIDE", "_Model", "_load_model", "_predict", "_box_list", "_record",
            "_label", "_draw_box", "_annotate",
        ),
        "fersk.cli.predict": (
            "_ANIMATABLE", "_VIDEO_HINT", "_read_image", "_video_backends", "_iter_video",
            "_collect", "_Reporter", "_dump_rows_json", "_fmt_time", "_Annotator",
            "_predict_video",
        ),
        "fersk.cli.demo": ("_DEMO_SUFFIXES",),
        "fersk.cli.train": ("TRAINING_STATE", "_architecture_params"),
        "fersk.cli.evaluate": ("_plot_confusion", "_plot_history"),
    }.items()
    for name in names
}
_MOVED.update({f"_cmd_{command}": (f"fersk.cli.{command}", "run") for command in _COMMANDS})


def __getattr__(name):
    """A name of the former ``fersk/cli.py``, from the module that now holds it."""
    if name in _MOVED:
        module, attr = _MOVED[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'fersk.cli' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MOVED))


# --------------------------------------------------------------------------
# Argument parsing.


_MODEL_HELP = (
    "a bundled model's name or a folder written by fersk.pretrained.save / "
    "'fersk train' (default: the bundled wild_vgg_fast)"
)


def _add_model_arguments(command):
    """--model and --backend, the same for every command that runs a model."""
    command.add_argument("--model", default=None, metavar="NAME_OR_FOLDER", help=_MODEL_HELP)
    command.add_argument(
        "--backend", choices=("auto", "keras", "onnx", "onnx-int8"), default="auto",
        help="run the networks with Keras (TensorFlow) or ONNX Runtime, without TensorFlow "
        "(needs pip install 'fersk[onnx]'; the ONNX files are exported on first use, see "
        "'fersk export'), in float32 or on the int8 graphs a model ships; auto (default): "
        "onnx-int8 where the model ships int8 graphs and onnxruntime is installed, else keras",
    )


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="fersk",
        description="Facial expression recognition from the command line (no network "
        "access). Exit status: 0 all fine, 1 some input failed, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"fersk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a model on scikit-image's astronaut photo",
        description="Run a pretrained model on skimage.data.astronaut(): print the face "
        "box, the emotion and the 7 probabilities, and write an annotated PNG.",
    )
    _add_model_arguments(demo)
    demo.add_argument(
        "--out", default=_DEMO_OUT, metavar="PNG", help=f"annotated image (default: ./{_DEMO_OUT})"
    )

    predict = sub.add_parser(
        "predict",
        help="classify the faces in images, folders and videos",
        description="Classify the face in each image file, each image in folders "
        "(recursed), and each sampled frame of videos. Problems (unreadable files, "
        "folders without images, photos without a face) are reported per file and "
        "make the exit status 1; the other files are still classified.",
    )
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image/video files or folders")
    _add_model_arguments(predict)
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
        choices=("whole", "center", "skip", "auto"),
        default="whole",
        help="an image without a face: whole (default, as the bundled pipelines' "
        "predict): classify the whole image, its row marked 'none (whole image)'; center: "
        "classify its centre, marked 'none (centre)'; skip: report 'no face' and give no "
        "label; auto: the former name of the default.  Images no larger than the model's "
        "FaceCropper precropped_max_side (64 pixels for the bundled models) are face "
        "crops, classified whole, as in Python",
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
        "(weights, optimizer, schedule, epoch, history); give the same options again "
        "(other options: an error, not a new run)",
    )
    train.add_argument(
        "--test-time-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the model averages each face and its mirror image when predicting "
        "(default: as the --init model does; off for a new network)",
    )
    train.add_argument(
        "--init",
        default=None,
        metavar="NAME_OR_FOLDER",
        help="fine-tune this pretrained model (warm start) instead of training a new "
        "network; its architecture, representation and augmentation are kept",
    )
    train.add_argument(
        "--teacher",
        default=None,
        metavar="NAME_OR_FOLDER",
        help="distil this pretrained model: train against a mix of the labels and its "
        "probabilities for each Training face (e.g. a narrower network from fer2013_vgg)",
    )
    train.add_argument(
        "--teacher-weight",
        type=float,
        default=None,
        metavar="W",
        help="with --teacher: its share of the targets, 0 to 1 (default: 0.5)",
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
    train.add_argument("--seed", type=_seed, default=0, metavar="S",
                       help="random seed, 0 to 2**32 - 1 (default 0)")
    train.add_argument(
        "--description", default=None, metavar="TEXT", help="one line for the model card"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    train.add_argument("--no-cache", action="store_true", help="do not use load_fer2013's cache")
    train.add_argument("-v", "--verbose", action="store_true", help="data-loading details")

    adapt = sub.add_parser(
        "adapt",
        help="a new last layer for a model, from a folder of labelled faces",
        description="Fit a new last layer for a model on labelled images of your own: a "
        "folder with one sub-folder of images (photos or face crops) per class, named by "
        "the class. The model's network reads them through the model's own FaceCropper "
        "(its no-face rule applies, and is reported); a LogisticRegression on the "
        "network's last hidden layer becomes its output layer, and the model folder "
        "written takes --model in every command. The network is not trained: seconds "
        "on a CPU for hundreds of images.",
    )
    adapt.add_argument("--data", required=True, metavar="FOLDER",
                       help="one sub-folder of images per class")
    adapt.add_argument("--out", required=True, metavar="FOLDER", help="model folder to write")
    adapt.add_argument("--model", default=None, metavar="NAME_OR_FOLDER", help=_MODEL_HELP)
    adapt.add_argument(
        "--C", type=_positive_float, default=0.1, metavar="C",
        help="the LogisticRegression's inverse regularisation strength (default 0.1)",
    )
    adapt.add_argument(
        "--cv", type=_nonnegative_int, default=5, metavar="K",
        help="report the new layer's accuracy by K-fold cross-validation first (default 5; "
        "0: none; fewer folds when a class has fewer images)",
    )
    adapt.add_argument("--overwrite", action="store_true",
                       help="replace a model folder at --out")
    adapt.add_argument("-v", "--verbose", action="store_true",
                       help="progress of loading and of cropping the faces")

    export = sub.add_parser(
        "export",
        help="export a model's networks to ONNX (for --backend onnx)",
        description="Export the networks of a model (one graph each, for every view setting) and, "
        "when it detects faces with MTCNN, MTCNN's three networks to ONNX files in the "
        "cache folder (the folder onnx of $FERSK_CACHE, else of $XDG_CACHE_HOME/fersk or "
        "~/.cache/fersk), written atomically. "
        "Needs TensorFlow and tf2onnx; predicting from them afterwards needs neither. "
        "Prints the files.",
    )
    export.add_argument(
        "models", nargs="*", metavar="NAME_OR_FOLDER",
        help="bundled model names or model folders (default: the bundled wild_vgg_fast)",
    )
    export.add_argument(
        "--overwrite", action="store_true", help="export again files already in the cache"
    )

    cache = sub.add_parser(
        "cache",
        help="list or clear fersk's cache folder",
        description="List the files in fersk's cache folder (cropped faces of the dataset "
        "loaders, networks exported to ONNX): path, size, kind. --clear removes those fersk "
        "wrote and nothing else; they are made again when next needed (ONNX graphs only "
        "where TensorFlow is installed). The folder is "
        "$FERSK_CACHE, else $XDG_CACHE_HOME/fersk or ~/.cache/fersk.",
    )
    cache.add_argument("--clear", action="store_true", help="remove the files fersk wrote")
    cache.add_argument("--dir", default=None, metavar="FOLDER",
                       help="the cache folder (default: as above)")

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
    _add_model_arguments(evaluate)
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
        "--detect", action="store_true",
        help="search every image for its face, as in a photo (scores detection and network together)"
    )
    evaluate.add_argument("--no-cache", action="store_true", help="do not use load_fer2013's cache")
    evaluate.add_argument("-v", "--verbose", action="store_true", help="progress to stderr")

    live = sub.add_parser(
        "live",
        help="classify the faces of a camera or a video, frame by frame",
        description="Follow and classify every face of a camera's or a video's frames "
        "(fersk.stream). With a display and OpenCV's GUI the annotated frames are shown "
        "in a window (q or Esc quits); --out writes them as an mp4, --json writes a JSON "
        "line per face per frame, --plot draws each track's emotions over time. Without a "
        "window, --out or --json, JSON lines go to stdout. A camera needs OpenCV: pip "
        "install 'fersk[live]'.",
    )
    source = live.add_mutually_exclusive_group(required=True)
    source.add_argument("--camera", type=_nonnegative_int, metavar="N",
                        help="camera index (0: the first camera; needs OpenCV)")
    source.add_argument("--video", metavar="PATH", help="a video file (or an animated GIF)")
    _add_model_arguments(live)
    live.add_argument(
        "--detect-every", type=_positive_int, default=1, metavar="K",
        help="run the face detector every K frames, reusing the faces' last boxes in "
        "between (faster; default 1)",
    )
    live.add_argument(
        "--detect-scale", type=_unit_float, default=1.0, metavar="S",
        help="detect faces on frames reduced by S, in (0, 1] (0.5: detection about "
        "twice as fast on 640x480); faces are cropped from the full frames (default 1)",
    )
    live.add_argument(
        "--views", choices=("model", "center"), default="model",
        help="model (default): the network's own test-time views (the default model: the "
        "centre, and its mirror for the faces the centre leaves unsure); center: one centre "
        "view, cheaper per face (1.3x for the default, 10x for ten views), slightly "
        "different answers",
    )
    live.add_argument(
        "--alpha", type=_unit_float, default=0.5, metavar="A",
        help="weight of the newest frame in each face's moving average of probabilities, "
        "in (0, 1]; 1: no smoothing (default 0.5)",
    )
    live.add_argument("--out", default=None, metavar="MP4", help="write the annotated video")
    live.add_argument("--json", default=None, metavar="OUT",
                      help="write a JSON line per face per frame to OUT ('-': stdout)")
    live.add_argument("--plot", default=None, metavar="PNG",
                      help="plot each track's emotions over time (needs matplotlib)")
    live.add_argument("--window", choices=("auto", "yes", "no"), default="auto",
                      help="show the frames in an OpenCV window: auto (default) when there is "
                      "a display and OpenCV has its GUI")
    live.add_argument("--max-frames", type=_positive_int, default=None, metavar="N",
                      help="stop after N frames")
    live.add_argument("--fps", type=_positive_float, default=None, metavar="F",
                      help="frame rate of --out (default: each frame at its source time: the "
                           "video's own frame times, the camera's clock)")

    serve = sub.add_parser(
        "serve",
        help="a local web app: webcam page and JSON API",
        description="Serve a page that classifies the browser's webcam or a photo live, "
        "and a JSON API: POST /api/predict (an image as the body or a form file: every "
        "face's box, emotion and probabilities), GET /api/health, GET /api/model. The "
        "model is loaded once. Needs pip install 'fersk[serve]'.",
    )
    _add_model_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8000, metavar="PORT",
                       help="TCP port (default 8000; 0: a free one, printed)")
    serve.add_argument("--max-upload-mb", type=_positive_float, default=10.0, metavar="MB",
                       help="largest upload accepted, in MiB (default 10); larger ones get a "
                       "413 JSON error")
    return parser


def _warning_printer(command):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"fersk {command}: warning: {message}", file=sys.stderr if file is None else file)

    return show


def _runs_keras(args):
    """Whether the command runs a model on Keras (then TensorFlow is imported
    up front, quietly): --backend keras, or auto for a model without int8
    graphs (or without onnxruntime)."""
    backend = getattr(args, "backend", "keras")
    if backend != "auto":
        return backend == "keras"
    from fersk.pretrained._folders import _model_dir
    from fersk.pretrained._int8 import _has_int8
    from fersk.pretrained._loading import _has_ort
    from fersk.pretrained._spec import _read_spec

    try:
        spec = _read_spec(_model_dir(getattr(args, "model", None)))
    except (ValueError, OSError):
        return True  # the command reports the model's problem
    return not (_has_int8(spec) and _has_ort())


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


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's stop) during a command: ended as
    Ctrl-C ends it, so its clean-up runs (temporary files removed, outputs
    as they were, a training's state resumable); Python's default for it
    ends the process at once, leaving ``.*.tmp`` files and staging folders."""


def _raise_terminated(signum, frame):
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError, AttributeError):  # not the main thread: left as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None):
    """Run the ``fersk`` command line.

    Commands (``fersk COMMAND --help`` for their options):

    - ``fersk demo [--model M] [--out PNG]``: the model on scikit-image's
      astronaut photo; prints the face box, the emotion and the
      probabilities, writes an annotated PNG.
    - ``fersk predict PATH... [--model M] [--json] [--csv OUT]
      [--annotate DIR] [--on-no-face whole|center|skip] [--every N]``:
      a row per image (file, face, box, emotion, probabilities; an image
      without a face is classified whole, its row marked, as the Python
      pipeline does); a row per sampled frame of a video.
    - ``fersk train --data PATH --model ARCH --out FOLDER [--epochs N]
      [--width W] [--augment] [--representation raw|mapped_lbp]
      [--schedule S] [--[no-]test-time-flip] [--param KEY=VALUE]... [--resume]
      [--n-train N] [--seed S]``: train on FER-2013 and write a model folder
      that ``--model`` accepts; ``--init M`` instead of ``--model``
      fine-tunes a saved model; ``--param`` sets any other network
      parameter (``crop_size=40``, ``optimizer=sgd``...); an interrupted
      run continues with ``--resume``.
    - ``fersk evaluate --data PATH [--model M] [--usage PublicTest]
      [--out DIR] [--json]``: accuracy, per-class report, confusion
      matrix and training-curve plots.
    - ``fersk live (--camera N | --video PATH) [--model M] [--detect-every K]
      [--detect-scale S] [--views model|center] [--alpha A] [--out MP4]
      [--json OUT] [--plot PNG]``: every face of
      every frame followed and classified; a window, an annotated video,
      JSON lines, a plot of each track's emotions.
    - ``fersk serve [--model M] [--host H] [--port P] [--max-upload-mb MB]``:
      a local web app (webcam page, JSON API).
    - ``fersk adapt --data FOLDER --out FOLDER [--model M] [--C C] [--cv K]``:
      a new last layer for a model, fitted on a folder of labelled images
      (a sub-folder per class), written as a model folder.
    - ``fersk export [M...] [--overwrite]``: a model's networks (and
      MTCNN) as ONNX files in the cache, for ``--backend onnx`` (demo,
      predict and evaluate), which then runs without TensorFlow.
    - ``fersk cache [--clear] [--dir FOLDER]``: the files in fersk's cache
      folder; ``--clear`` removes those fersk wrote
      (:func:`fersk.cache.clear_cache`).

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
        and ``--version`` return 0.  130 when interrupted (Ctrl-C), 143
        when stopped by SIGTERM: both end the command as Ctrl-C does, its
        outputs left as they were and its temporary files removed.

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
        print("fersk: error: give a command: demo, predict, train, adapt, evaluate, live, serve, "
              "export or cache.",
              file=sys.stderr)
        return EXIT_USAGE
    empty = sorted(dest for dest, value in vars(args).items() if dest != "argv" and (
        value == "" or (isinstance(value, list) and "" in value)))
    if empty:
        # Path("") is the working folder: `fersk predict "$PHOTOS"` with the
        # variable unset classified every photo of it.
        names = ", ".join(d if d == "paths" else "--" + d.replace("_", "-") for d in empty)
        print(f"fersk {args.command}: error: {names}: an empty value (an unset shell "
              "variable?) names no file, folder or model.", file=sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    # The ONNX back end and the cache listing run without TensorFlow: importing
    # it anyway would cost seconds of start-up (and memory) for nothing.
    if args.command != "cache" and _runs_keras(args):
        _import_keras_quietly()
    try:
        with warnings.catch_warnings(), _progress.printing_to(_PROGRESS_STREAM[args.command]), \
                _sigterm_as_interrupt():
            # One line per warning, as the command's other messages, not
            # Python's "file:line: Category" form with a source line.
            warnings.showwarning = _warning_printer(args.command)
            # The command's module (and what it imports: TensorFlow, the face
            # detector...) is loaded only now, for this command.
            command = importlib.import_module(f"fersk.cli.{args.command}")
            return command.run(args)
    except _UsageError as exc:
        print(f"fersk {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Failure as exc:
        print(f"fersk {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        hint = ""
        if args.command == "train":
            train = sys.modules.get("fersk.cli.train")
            if train is not None and train._holds_finished_training(args.out):
                hint = (" (the training had finished and is kept: run the same command with "
                        "--resume to save the model without training again)")
            elif train is not None and train._holds_interrupted_run(args.out):
                hint = (" (the last finished epoch is saved: run the same command with "
                        "--resume to continue)")
            else:
                hint = " (before an epoch finished: nothing to resume; run it again)"
        if isinstance(exc, _Terminated):
            print(f"fersk {args.command}: terminated (SIGTERM){hint}", file=sys.stderr)
            return 143
        print(f"fersk {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `fersk predict ... | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_FAILED
