"""What the ``fersk`` commands share: exit statuses, errors, constants, argument types.

Light on purpose: :mod:`fersk.cli` builds its argument parser from this
module, so importing it must not load TensorFlow, Keras, scikit-learn or a
face detector (``fersk --help`` stays fast).
"""

import argparse
import math
from pathlib import Path

from fersk import _image_files

__all__ = []

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Files read as images when found in a folder (compared case-insensitively).
IMAGE_EXTENSIONS = _image_files.IMAGE_EXTENSIONS
#: Files read as videos (with imageio) when given or found in a folder.
VIDEO_EXTENSIONS = _image_files.VIDEO_EXTENSIONS
_DEMO_OUT = "fersk_demo.png"


class _UsageError(Exception):
    """Bad command line: exit status 2."""


class _Failure(Exception):
    """The command could not do its work: exit status 1."""


class _FileError(Exception):
    """One input file failed; reported, the others go on."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def _nonnegative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0; got {value}")
    return value


def _port(text):
    value = _nonnegative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is at most 65535; got {value}")
    return value


def _unit_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {text}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _check_data(path):
    if not Path(path).exists():
        raise _UsageError(
            f"--data: {path!r} does not exist; give the Kaggle fer2013.csv or the root of "
            "the FER-2013 image folders (train/, test/)."
        )

