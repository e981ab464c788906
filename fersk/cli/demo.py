"""``fersk demo``: a pretrained model on scikit-image's astronaut photo.

Imported by :func:`fersk.cli.main` only when this command runs; the
argument parser (in :mod:`fersk.cli`) describes its options.
"""

from pathlib import Path

from skimage import data

from ._common import _DEMO_OUT, EXIT_FAILED, EXIT_OK, _Failure, _UsageError
from ._faces import _annotate, _box_list, _is_fersk_annotation, _label, _load_model, _predict

__all__ = ["run"]

#: Files ``fersk demo --out`` writes: formats Pillow saves.
_DEMO_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def run(args):
    """Run ``fersk demo``: classify the astronaut's face and draw it.

    Prints the model, the face box, the emotion and the probabilities of
    the face in :func:`skimage.data.astronaut`, and writes a copy of the
    photo with the box and its label (drawn with Pillow).

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``fersk demo`` as :func:`fersk.cli.main` parses them:
        ``model`` (a bundled model's name, a model folder or None for the
        default) and ``out`` (the image to write, or a folder for
        ``fersk_demo.png`` in it).

    Returns
    -------
    status : int
        0 when a face was found and classified, 1 when none was.

    Raises
    ------
    _UsageError
        An ``--out`` that is not an image file name or lies in a missing
        folder, or an unknown model (:func:`fersk.cli.main` returns 2).
    _Failure
        The image could not be written (:func:`fersk.cli.main` returns 1).

    See Also
    --------
    fersk.cli.main : Parses the command line and calls this function.

    Examples
    --------
    >>> from fersk.cli import main
    >>> main(["demo", "--out", "astronaut.txt"])  # not an image file name: usage error
    2

    From the shell::

        fersk demo --out astronaut.png
    """
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
    if out.exists() and not _is_fersk_annotation(out):  # a user's file is never replaced
        raise _UsageError(
            f"--out: {str(out)!r} exists and is not an annotated image fersk wrote: fersk will "
            "not replace it; choose another name or move the file."
        )
    model = _load_model(args.model, getattr(args, "backend", "auto"))
    image = data.astronaut()
    (result,) = _predict(model, [image], "skip")[0]  # a demo of a face: none is a failure
    print(f"model: {model.name} - {model.info['description']}")
    print(f"image: skimage.data.astronaut() ({image.shape[0]}x{image.shape[1]} RGB)")
    proba = result["proba"]
    if proba is None:
        print("no face found")
    else:
        box = " ".join(str(v) for v in _box_list(result["box"]))
        k = int(proba.argmax())
        print(f"face box (row col height width): {box}")
        print(f"emotion: {model.class_names[k]} ({proba[k]:.2f})")
        print("probabilities:")
        for name, p in sorted(zip(model.class_names, proba), key=lambda t: -t[1]):
            print(f"  {name:<9} {p:.3f}")
    try:
        _annotate(image, [(result["box"], _label(model, result))], out)
    except OSError as exc:
        raise _Failure(f"cannot write {str(out)!r} ({exc})") from None
    print(f"annotated image written to {out}")
    return EXIT_OK if proba is not None else EXIT_FAILED

