"""What the ``fersk`` commands share: exit statuses, errors, constants, argument types.

Light on purpose: :mod:`fersk.cli` builds its argument parser from this
module, so importing it must not load TensorFlow, Keras, scikit-learn or a
face detector (``fersk --help`` stays fast).
"""

import argparse
import math
import os
import tempfile
from pathlib import Path

from fersk import _image_files
from fersk._fsync import give_mode, replace_durably

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


def _int_at_least(minimum):
    """An argparse ``type``: an int >= ``minimum``, or a message saying why not."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}; got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _seed(text):
    """A random seed numpy takes: an int in [0, 2**32 - 1]."""
    value = _nonnegative_int(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"a seed is at most {2**32 - 1}; got {value}")
    return value


def _port(text):
    value = _nonnegative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is at most 65535; got {value}")
    return value


def _float_where(ok, what):
    """An argparse ``type``: a float for which ``ok`` holds, else "must be ``what``"."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text}")
        return value

    return parse


_unit_float = _float_where(lambda v: 0 < v <= 1, "in (0, 1]")
_positive_float = _float_where(lambda v: math.isfinite(v) and v > 0, "a positive number")


def _check_data(path):
    if not Path(path).exists():
        raise _UsageError(
            f"--data: {path!r} does not exist; give the Kaggle fer2013.csv or the root of "
            "the FER-2013 image folders (train/, test/)."
        )


def _output_file(path):
    """The file an output option really writes: a symbolic link's target, so
    that ``latest.csv -> runs/3.csv`` keeps its link and gets its file
    replaced (renaming over the link would cut it and leave the file old)."""
    return Path(os.path.realpath(path))


def _temp_beside(path):
    """A new temporary file next to the file ``path`` names (its link's target:
    :func:`_output_file`), in the same folder, so that :func:`_replace_output`
    is an atomic rename."""
    path = _output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    give_mode(tmp, path)  # mkstemp's 0o600 would make a user's file private
    return tmp


def _replace_output(tmp, path):
    """Rename the finished temporary file ``tmp`` (:func:`_temp_beside`) over
    the file ``path`` names, durably."""
    replace_durably(tmp, _output_file(path))


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (links and ``..`` resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def _refuse_input_as_output(option, out, inputs):
    """A usage error when the output file ``out`` of ``option`` is one of
    ``inputs`` (a command never writes its result over what it reads) or a
    folder (said before the work, not at its end when the file is renamed)."""
    if out is None or out == "-":
        return
    if Path(out).is_dir():
        raise _UsageError(f"{option}: {str(out)!r} is a folder; give a file name.")
    if Path(out).exists() and not Path(out).is_file():  # a pipe, a device: no rename over it
        raise _UsageError(f"{option}: {str(out)!r} is not a regular file; give a file name "
                          "(or - for standard output).")
    for path in inputs:
        if path is not None and _same_file(out, path):
            raise _UsageError(
                f"{option}: {str(out)!r} is an input of this command ({str(path)!r}); "
                "fersk does not write over its inputs: choose another name."
            )


def _refuse_foreign_file(option, out, ours):
    """A usage error, before the work, when the file ``out`` names (a link's
    target) exists, holds something and ``ours(path)`` says no fersk command
    wrote it: a rerun replaces fersk's own output, never a file of the user's."""
    if out is None or out == "-":
        return
    path = _output_file(out)
    try:
        foreign = path.is_file() and path.stat().st_size > 0 and not ours(path)
    except OSError:  # unreadable: not known to be fersk's
        foreign = True
    if foreign:
        raise _UsageError(
            f"{option}: {str(out)!r} exists and fersk did not write it: fersk will not replace "
            "it; choose another name or move the file."
        )


def _first_line(path, limit=65536):
    """The first line of a text file (at most ``limit`` bytes), '' if not text."""
    with open(path, "rb") as f:
        line = f.readline(limit)
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return ""


def _file_holds(path, mark):
    """Whether a written file holds ``mark`` (a plot's Creator: PDF, SVG, PS)."""
    data = Path(path).read_bytes()
    return mark.encode() in data


#: EXIF's Software tag, where JPEG and TIFF files fersk writes are marked.
_EXIF_SOFTWARE = 0x0131


def _has_mark(path, mark):
    """Whether the image at ``path`` carries ``mark`` as its Software text
    (a PNG's text chunk, or EXIF's tag in JPEG and TIFF): a file a fersk
    command wrote, which a rerun may replace."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return (getattr(image, "text", {}).get("Software") == mark
                    or image.getexif().get(_EXIF_SOFTWARE) == mark)
    except (OSError, ValueError, Image.DecompressionBombError):
        # A picture too large for Pillow to open is no copy fersk writes: the
        # user's, left as it is (a rerun reports it rather than failing).
        return False


def _write_beside(path, write):
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary
    file beside it, which then replaces ``path``."""
    tmp = _temp_beside(path)
    try:
        write(tmp)
        _replace_output(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
