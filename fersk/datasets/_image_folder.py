"""Any labelled folder of images, ``<root>/<class>/<file>``."""

import numbers
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params

from fersk._constraints import IntPair
from fersk._image_files import walk_files
from fersk._progress import log

from ._common import (
    _MAX_NAMED,
    IMAGE_EXTENSIONS,
    LOADER_CONSTRAINTS,
    _apply_errors_policy,
    _check_extensions,
    _decoding_progress,
    _resolve_n_jobs,
    _size_pair,
    _warn,
)
from ._decoding import _check_distinct, _decode_files, _has_extension, _subdirs


@validate_params(
    {
        **LOADER_CONSTRAINTS,
        "size": [None, Interval(numbers.Integral, 1, None, closed="left"), IntPair()],
        "color": ["boolean"],
        "extensions": [None, str, list, tuple],
    },
    prefer_skip_nested_validation=True,
)
def load_image_folder(path, *, size=None, color=False, errors="raise",
                      extensions=IMAGE_EXTENSIONS, n_jobs=None, verbose=0, return_X_y=False):
    """Load a labelled image folder ``<root>/<class>/<file>``.

    Every sub-folder of ``path`` is a class; its image files (also in
    nested folders) are its samples.  Images may be of any size, grey or
    colour, in any format Pillow reads.

    Parameters
    ----------
    path : str or os.PathLike
        Root folder.
    size : int or (height, width), default=None
        Resize every image whose size differs to this size with
        :func:`skimage.transform.resize` (``preserve_range=True``,
        anti-aliased, values rounded back to uint8); an int means a square.
        None keeps the sizes: see ``images`` below.
    color : bool, default=False
        False gives grey ``(h, w)`` images (colour by scikit-image's
        ``rgb2gray``, ITU-R 709 luma, as :class:`~fersk.FaceCropper` reads
        photos at prediction); True gives RGB ``(h, w, 3)`` (grey images are
        repeated on the three channels, alpha is dropped).  16-bit grey
        images are brought to 8 bits by dropping the low byte
        (``v >> 8``); floating-point images are bad images (see
        ``errors``).
    errors : {"raise", "skip"}, default="raise"
        An empty, unreadable, corrupt or truncated image file is a
        ValueError naming it (up to 10, with the count) with "raise"; with
        "skip" it is dropped, a :class:`SkippedImagesWarning` gives the
        count, and the result's ``skipped`` lists each with the reason.
    extensions : str or sequence of str or None, default=IMAGE_EXTENSIONS
        File extensions (case-insensitive) that are images: ``.jpg``,
        ``.jpeg``, ``.png``, ``.bmp``, ``.gif``, ``.tif``, ``.tiff``,
        ``.webp``, ``.pgm``, ``.ppm``, ``.pbm``, ``.pnm`` by default.  Other
        files in the class folders are not loaded, with a warning naming
        them.  None tries every file, so a non-image is an unreadable image
        (see ``errors``).
    n_jobs : int, default=None
        Threads decoding the files (and resizing): None means 1 unless in a
        :func:`joblib.parallel_config` context, -1 one per CPU.  The result
        does not depend on it.
    verbose : int, default=0
        When positive, prints file counts, timings and decoding progress
        every 10% to stdout (to stderr under the ``fersk predict``/
        ``evaluate`` commands); above 1 after every chunk of 512 images.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of the Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with, for the images read:

        images : ndarray
            uint8, ``(n_samples, h, w)`` grey or ``(n_samples, h, w, 3)``
            colour when all images have one size (always with ``size``).
            When sizes differ and ``size`` is None, a 1-D object array of
            ``n_samples`` arrays of their own sizes (it indexes like an
            array, e.g. ``images[mask]``; :class:`fersk.FaceCropper` takes
            it as a list).
        target : ndarray of shape (n_samples,), dtype int64
            Index of the class folder in ``target_names``.
        target_names : ndarray of str
            Class folder names, sorted.  A class folder without images is
            kept (with a warning) so that labels match the folder names.
        filenames : ndarray of str
            Each image's path relative to ``path`` (posix separators).
        skipped : list of tuple
            ``(filename, reason)`` for each file dropped by
            ``errors="skip"``.
        DESCR : str
            What was loaded.

    (images, target) : tuple
        When ``return_X_y`` is True.

    See Also
    --------
    load_fer2013 : FER-2013, from the CSV or its image folders.
    sklearn.datasets.load_files : Text files in class folders.

    Notes
    -----
    Samples come ordered by class, then as each class folder is walked:
    each folder's entries sorted by name, depth first (``a/x/y.png`` before
    ``a/x.png``); nothing is shuffled.  Hidden files and folders (names starting with ``.`` or
    ``__``) are ignored; image files directly under ``path`` (outside class
    folders) are not loaded, with a warning.  Linked folders are followed,
    except a link to (or into) another class folder: its images are that
    class's alone; two class folders that are one folder on disk (``joy ->
    happy``), or one folder linked from two class folders, are a
    ValueError, and a class folder that is a broken link (a drive not
    mounted) a FileNotFoundError.  Multi-frame files (GIF, TIFF)
    give their first frame; EXIF orientation is applied (photos upright, as
    fersk reads every file).  An empty
    folder, a folder without class folders, or class folders without a
    single image file is a ValueError.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from skimage import data
    >>> from fersk.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for cls, image in [("astronaut", data.astronaut()), ("coffee", data.coffee())]:
    ...     os.mkdir(os.path.join(root, cls))
    ...     Image.fromarray(image).save(os.path.join(root, cls, "0.png"))
    >>> faces = load_image_folder(root, size=(64, 64), color=True)
    >>> faces.images.shape, faces.images.dtype, faces.target_names.tolist()
    ((2, 64, 64, 3), dtype('uint8'), ['astronaut', 'coffee'])
    >>> load_image_folder(root).images.dtype  # sizes differ: one array each
    dtype('O')
    >>> import shutil; shutil.rmtree(root)
    """
    func = "load_image_folder"
    size = _size_pair(size)
    exts = _check_extensions(extensions)
    n_jobs = _resolve_n_jobs(n_jobs)
    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(f"path {str(path)!r} is not a folder.")
    start = time.perf_counter()
    class_dirs, root_files = _subdirs(root)
    loose = [f.name for f in root_files if _has_extension(f.name, exts)]
    if not class_dirs:
        raise ValueError(
            f"path {str(path)!r} has no class sub-folders (expected "
            f"<root>/<class>/<image file>)"
            + (f"; it holds {len(loose)} image file(s) directly, whose class is "
               f"unknown." if loose else ".")
        )
    if loose:
        _warn(f"{func}: {len(loose)} image file(s) directly under {path} "
              f"are not loaded (no class folder): {loose[:_MAX_NAMED]}.")
    files, target, empty, others = [], [], [], []
    classes = _check_distinct(class_dirs, func)
    claimed = {}  # a folder linked from two class folders would carry both labels
    for label, d in enumerate(class_dirs):
        found = walk_files(d.path, exts, d.name + "/", others=others, avoid=classes,
                           claimed=claimed)
        if not found:
            empty.append(d.name)
        files += found
        target += [label] * len(found)
    if not files:
        raise ValueError(
            f"No image files in the class folders of {str(path)!r} "
            f"({[d.name for d in class_dirs][:_MAX_NAMED]}) with extensions "
            f"{list(exts) if exts else 'any'}."
        )
    if empty:
        _warn(f"{func}: class folder(s) {empty} hold no image file; kept in "
              "target_names.")
    if others:  # a photo in a format not listed (.heic, .avif) is a sample: said
        kinds = sorted({Path(f).suffix.lower() or "(none)" for f in others})
        _warn(f"{func}: {len(others)} file(s) in the class folders are not loaded, their "
              f"extensions {kinds[:_MAX_NAMED]} not being image extensions: "
              f"{others[:_MAX_NAMED]}; to read them as images, add their extensions "
              "to `extensions`.")
    if verbose:
        log(func, f"found {len(files)} files in {len(class_dirs)} class folders "
                  f"({time.perf_counter() - start:.2f} s)")
    mode = "RGB" if color else "L"
    images, failures = _decode_files(
        [f[1] for f in files], mode=mode, shape=None, n_jobs=n_jobs,
        progress=_decoding_progress(func, len(files), verbose),
    )
    bad = [(files[i][0], failures[i]) for i in sorted(failures)]
    _apply_errors_policy(bad, errors, "image file(s)", func)
    if len(failures) == len(files):  # errors="skip": nothing left to load
        raise ValueError(
            f"{func}: none of the {len(files)} image files under {str(path)!r} could be read "
            f"(e.g. {bad[0][0]}: {bad[0][1]})."
        )
    keep = [i for i in range(len(files)) if i not in failures]
    images = [images[i] for i in keep]
    if size is not None:
        images = _resize_all(images, size, n_jobs)
    shapes = {im.shape for im in images}
    if len(shapes) == 1:
        out = np.stack(images)
    else:
        out = np.empty(len(images), dtype=object)
        out[:] = images
    if verbose:
        log(func, f"loaded {len(images)} images, {len(shapes)} distinct shape(s) "
                  f"({time.perf_counter() - start:.1f} s)")
    target = np.array([target[i] for i in keep], dtype=np.int64)
    if return_X_y:
        return out, target
    names = np.array([d.name for d in class_dirs])
    shape_text = (f"shape {out.shape[1:]}" if out.dtype != object
                  else f"{len(shapes)} different shapes")
    return Bunch(
        images=out,
        target=target,
        target_names=names,
        filenames=np.array([files[i][0] for i in keep], dtype=str),
        skipped=bad,
        DESCR=(f"Image folder {root}: {len(keep)} {'RGB' if color else 'grey'} uint8 "
               f"images ({shape_text}) in {len(names)} classes "
               f"{names.tolist()[:20]}" + (", ..." if len(names) > 20 else "")
               + (f"; {len(bad)} unreadable file(s) skipped." if bad else ".")),
    )


def _resize_one(image, size):
    from skimage.transform import resize

    if image.shape[:2] == size:
        return image
    out = resize(image, size + image.shape[2:], order=1, preserve_range=True,
                 anti_aliasing=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _resize_all(images, size, n_jobs):
    if n_jobs == 1 or len(images) < 2:
        return [_resize_one(im, size) for im in images]
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(lambda im: _resize_one(im, size), images))

