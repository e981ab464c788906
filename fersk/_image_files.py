"""Decoding image files to uint8 arrays, one rule for every reader in fersk.

``datasets``, ``face`` (file paths given to ``FaceCropper``) and ``cli``
read files through :func:`pil_to_uint8`, so a 16-bit or palette image
means the same everywhere.
"""

import functools

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS", "pil_to_uint8", "open_image", "array_to_uint8", "stretch_to_uint8",
    "n_workers", "pixels_for_network", "read_image_file", "VIDEO_EXTENSIONS", "VideoError",
    "iter_video", "walk_files",
]

#: File extensions fersk reads as images (compared case-insensitively):
#: datasets' folders, the CLI's folders and FaceCropper's paths alike.
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
    ".pgm", ".ppm", ".pbm", ".pnm",
)

#: Files read as videos (with imageio): ``fersk predict``, ``fersk live``
#: and :func:`fersk.stream.stream` alike.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# Image formats that may be animated or hold several pages: read as a
# video (each frame or page a row) when they do, never their first alone.
ANIMATABLE = (".gif", ".webp", ".png", ".tif", ".tiff")
# Pages, not frames in time: read by Pillow as still images are.
_PAGED = (".tif", ".tiff")
VIDEO_HINT = "pip install av (or pip install imageio-ffmpeg)"


class VideoError(ValueError):
    """A video (or animated image) that cannot be read; the message says why.

    Parameters
    ----------
    message : str
        What went wrong, without the file name (callers add it).

    Examples
    --------
    >>> str(VideoError("the video has no frames"))
    'the video has no frames'
    """


def _video_backends():
    import importlib.util

    return [m for m in ("av", "imageio_ffmpeg") if importlib.util.find_spec(m) is not None]


def _without_alpha(frame):
    """A decoded frame as still images are read: grey+alpha (h, w, 2) as
    grey, RGBA (h, w, 4) as RGB (an animated PNG's frames stopped the whole
    ``fersk predict`` run at the cropper)."""
    if frame.ndim == 3 and frame.shape[-1] == 2:
        return frame[..., 0]
    if frame.ndim == 3 and frame.shape[-1] == 4:
        return frame[..., :3]
    return frame


def iter_video(path, every=1):
    """Yield ``(frame_index, time_s, frame)`` for every ``every``-th frame.

    Times, in seconds from the first frame: a video's from its frames'
    presentation times when PyAV reads it (variable frame rates too), else
    from the file's frame rate (``fps`` metadata); an animated image's from
    its frames' durations; None when unknown.  A TIFF's pages are its
    frames (Pillow alone, each read as a still image is; no times).
    Frames are read one at a time (a long video is never held whole).

    Parameters
    ----------
    path : str or os.PathLike
        A video file (read with imageio and PyAV or ffmpeg), an animated
        image or a multi-page TIFF.
    every : int, default=1
        Yield every ``every``-th frame (indices stay those of the file).

    Yields
    ------
    frame_index : int
    time_s : float or None
    frame : ndarray of shape (height, width[, 3])

    Raises
    ------
    VideoError
        imageio or a video back end missing (with what to install), a file
        that cannot be read, no frames, or a decoding error part way (after
        the frames read before it were yielded).

    Examples
    --------
    >>> next(iter_video("missing.mp4"))  # doctest: +SKIP
    Traceback (most recent call last):
    VideoError: cannot read this video (...)
    """
    import math
    import os
    import warnings

    if os.path.splitext(os.fspath(path))[1].lower() in _PAGED:
        yield from _pages(path, every)
        return
    try:
        import imageio.v3 as iio  # optional (fersk[video]): needed for videos only
    except ImportError:
        raise VideoError(
            "reading videos needs imageio: pip install 'fersk[video]' (imageio and av)"
        ) from None
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    # PyAV for videos when installed, whatever else imageio finds: its
    # OpenCV plugin (present with fersk[live]) "opens" a broken mp4 as a
    # video without frames instead of saying it cannot be read.
    plugin = "pyav" if suffix in VIDEO_EXTENSIONS and "av" in _video_backends() else None
    if plugin == "pyav":
        yield from _pyav_frames(path, every)
        return
    try:
        with warnings.catch_warnings():
            # imageio probes its plugins; the legacy ones warn of deprecation.
            warnings.simplefilter("ignore", DeprecationWarning)
            reader = iio.imopen(path, "r", plugin=plugin)
    except Exception as exc:
        if suffix in VIDEO_EXTENSIONS and not _video_backends():
            raise VideoError(
                f"cannot read this video: imageio has no {suffix} reader "
                f"installed; {VIDEO_HINT}"
            ) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise VideoError(f"cannot read this video ({type(exc).__name__}: {first})") from None
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
        # Pillow's animated PNG/WebP/GIF: upright by EXIF, as their first frame
        # read as a still image is (read_image_file); other readers have no tag.
        frames = reader.iter(rotate=True) if type(reader).__name__ == "PillowPlugin" else reader.iter()
        try:
            for index, frame in enumerate(frames):
                if fps is not None:
                    t = index / fps
                elif per_frame:
                    t = elapsed
                    elapsed += float(reader.metadata(index=index).get("duration", 0) or 0) / 1000.0
                else:
                    t = None
                if index % every == 0:
                    yield index, t, _without_alpha(frame)
        except Exception as exc:
            raise _stopped(index, exc) from None
        if index < 0:
            raise VideoError("the video has no frames")


def _pages(path, every):
    """:func:`iter_video` for a multi-page TIFF (scans, microscope stacks,
    a burst saved as one file): every ``every``-th page read as a still
    image is (EXIF orientation, 16-bit high bytes: :func:`pil_to_uint8`),
    with Pillow alone; pages have no time."""
    import os

    from PIL import Image, ImageSequence

    try:
        im = Image.open(path)
    except Exception as exc:
        raise VideoError(f"cannot read this file ({type(exc).__name__}: {exc})") from None
    with im:
        index = -1
        try:
            for index, page in enumerate(ImageSequence.Iterator(im)):
                if index % every == 0:
                    yield index, None, pil_to_uint8(
                        open_image(page), where=f"{os.fspath(path)} page {index}")
        except Exception as exc:
            raise _stopped(index, exc) from None
    if index < 0:
        raise VideoError("the file has no pages")


def _stopped(index, exc):
    """The VideoError of a decoding failure after frame ``index`` (the
    frames before it were yielded)."""
    return VideoError(f"reading stopped after {index + 1} frames ({type(exc).__name__}: {exc})")


def _pyav_frames(path, every):
    """:func:`iter_video` on PyAV: each frame's own time (its presentation
    time less the first frame's), so that a variable-rate video (phones
    record them) is not timed as index / frame rate."""
    import os

    import av

    try:
        container = av.open(os.fspath(path))
        stream = container.streams.video[0]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise VideoError(f"cannot read this video ({type(exc).__name__}: {first})") from None
    with container:
        rate = stream.guessed_rate or stream.average_rate
        start = None
        last = None  # (index, time) of the last frame timed
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if frame.time is not None:
                    if start is None:  # the frames before it, untimed, ran at the rate
                        start = frame.time - (index / float(rate) if rate else 0.0)
                    t = round(frame.time - start, 6)
                elif last is not None and rate:  # no timestamp: on from the last time
                    t = round(last[1] + (index - last[0]) / float(rate), 6)
                else:
                    t = index / float(rate) if rate else None
                if t is not None:
                    last = (index, t)
                if index % every == 0:
                    yield index, t, _upright(frame)
        except Exception as exc:
            raise _stopped(index, exc) from None
    if index < 0:
        raise VideoError("the video has no frames")


def _upright(frame):
    """A PyAV frame as an RGB array, turned as the video says it is shown.

    Phones store portrait video as landscape frames and the turn in the
    container (a display matrix), as photos get an EXIF orientation: the
    detector must see the upright faces.  PyAV's ``rotation`` is in degrees
    counter-clockwise, as :func:`numpy.rot90` turns.
    """
    arr = frame.to_ndarray(format="rgb24")
    k = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def walk_files(folder, extensions=IMAGE_EXTENSIONS, rel_prefix="", *, avoid=(), others=None,
               hidden=(".", "__"), unreadable=None, claimed=None):
    """The files under a folder with one of ``extensions``, every folder once.

    One walk for every reader of folders (the dataset loaders, ``fersk
    predict``): recursive, each folder's entries sorted by name, names
    starting with one of ``hidden`` left out.  Linked folders are followed,
    each at most once: a link to a folder already walked or to one holding
    ``folder`` (a loop, ``loop -> ..``) is not entered (it listed other
    folders' images under this one, then failed with "Too many levels of
    symbolic links").  A broken link with an image extension is listed, so
    that reading it fails with its name instead of the file missing without
    a word.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to walk.
    extensions : tuple of str or None, default=IMAGE_EXTENSIONS
        Lower-case suffixes, dot included (compared case-insensitively);
        None lists every file.
    rel_prefix : str, default=""
        Prefix of the relative paths returned (``folder`` relative to a
        root, ending in ``/``).
    avoid : set of (int, int), default=()
        The ``(st_dev, st_ino)`` of folders never entered (another class's
        folder: a link to it listed its images under two labels).  Linked
        folders and files that lie inside one of them (``happy/more ->
        ../sad/old``) are left out too: their images carry that class's
        label alone.
    others : list or None, default=None
        Gets the relative paths of the files left out for their extension
        (a photo in another format is said, not passed over).
    hidden : tuple of str, default=(".", "__")
        Name prefixes of files and folders left out.
    unreadable : list or None, default=None
        Gets ``(relative posix path, OSError)`` of each folder that cannot
        be listed (no permission), whose walk then goes on without it;
        None: the OSError is raised.
    claimed : dict or None, default=None
        Shared by the walks of one loader's class folders: ``(st_dev,
        st_ino)`` of every folder walked -> its relative path.  A folder
        reached from two of them (one outside folder linked from ``happy/``
        and from ``sad/``) raises ValueError: its images would carry both
        labels.  None: each walk on its own.

    Returns
    -------
    files : list of (str, str, int, tuple)
        ``(relative posix path, path, size, stamp)``, the path joined onto
        ``folder`` as given, ``stamp`` the file's :func:`file_stamp`; size
        -1 and stamp ``(-1, -1)`` for a broken link.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "b"))
    >>> for name in ("a.png", "b/c.JPG", "notes.txt", ".hidden.png"):
    ...     open(os.path.join(root, name), "wb").close()
    >>> others = []
    >>> [rel for rel, *_ in walk_files(root, others=others)], others
    (['a.png', 'b/c.JPG'], ['notes.txt'])
    >>> import shutil; shutil.rmtree(root)
    """
    import os

    # (device, inode) of the folder and every folder above it, and those avoided.
    seen, path = set(avoid), os.path.realpath(folder)
    while True:
        try:
            st = os.stat(path)
        except OSError:  # a folder above that cannot be read: no link reaches it
            break
        seen.add((st.st_dev, st.st_ino))
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent

    def listed(name):
        return extensions is None or os.path.splitext(name)[1].lower() in extensions

    try:
        st = os.stat(folder)
        own = {(st.st_dev, st.st_ino)}
    except OSError:
        own = set()
    other_classes = set(avoid) - own

    def in_other_class(path):
        """Whether the folder ``path`` (links resolved) is, or lies inside,
        another class's folder."""
        if not other_classes:
            return False
        while True:
            try:
                st = os.stat(path)
            except OSError:
                return False
            if (st.st_dev, st.st_ino) in other_classes:
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def walk(current, prefix):
        out = []
        try:
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if unreadable is None:
                raise
            unreadable.append((prefix, exc))  # said by the caller, never passed over
            return out
        for entry in entries:
            if entry.name.startswith(tuple(hidden)):
                continue
            if _is_dir(entry):
                st = entry.stat()
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                # A link into another class's folder: those images are that
                # class's (the check looks at the target's folders above it).
                if entry.is_symlink() and in_other_class(os.path.realpath(entry.path)):
                    continue
                if claimed is not None:
                    first = claimed.setdefault(key, prefix + entry.name)
                    if first != prefix + entry.name:
                        raise ValueError(
                            f"folders {first!r} and {prefix + entry.name!r} are one folder "
                            "on disk (links to it from two class folders), so its images "
                            "would carry both labels; keep one link, or make copies."
                        )
                out += walk(entry.path, prefix + entry.name + "/")
            elif listed(entry.name) and (_is_file(entry) or entry.is_symlink()):
                if entry.is_symlink() and in_other_class(
                        os.path.dirname(os.path.realpath(entry.path))):
                    continue
                try:
                    st = entry.stat()
                    size, stamp = st.st_size, file_stamp(st)
                except OSError:
                    size, stamp = -1, (-1, -1)
                out.append((prefix + entry.name, entry.path, size, stamp))
            elif others is not None and _is_file(entry):
                others.append(prefix + entry.name)
        return out

    return walk(folder, rel_prefix)


def _is_dir(entry):
    """``entry.is_dir()``, False for a link loop (ELOOP raised there): a
    link that leads nowhere, as a broken one."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry):
    """``entry.is_file()``, False for a link loop."""
    try:
        return entry.is_file()
    except OSError:
        return False


def file_stamp(st):
    """What a cache key holds of a file's times: ``(st_mtime_ns, st_ctime_ns)``.

    The modification time alone misses an edit that keeps the size and puts
    the old time back (``cp -p``, ``rsync -t``, ``touch -r``, a tar
    extracted over the folder): the change time (ctime) is set by the
    system at every such write and no tool can set it back.  It also
    changes on a copy or a ``chmod``: the cache is then built once more.

    Parameters
    ----------
    st : os.stat_result
        The file's ``os.stat``.

    Returns
    -------
    stamp : tuple of (int, int)

    Examples
    --------
    >>> import os
    >>> st = os.stat(__file__)
    >>> file_stamp(st) == (st.st_mtime_ns, st.st_ctime_ns)
    True
    """
    return st.st_mtime_ns, st.st_ctime_ns


def open_image(im):
    """An opened Pillow image as fersk reads every file: EXIF orientation applied.

    Phones store photos sideways with an orientation tag; the dataset
    loaders, FaceCropper and the CLI must see the same upright pixels.

    Parameters
    ----------
    im : PIL.Image.Image
        An opened image.

    Returns
    -------
    image : PIL.Image.Image
        Upright (``PIL.ImageOps.exif_transpose``); the same object when no
        tag says otherwise.  An uncompressed TIFF file tagged orientation
        5-8 is read from memory where this Pillow scrambles it through its
        memory map (Pillow 13.0.0 maps its rows at the turned size).

    Examples
    --------
    >>> from PIL import Image
    >>> open_image(Image.new("L", (4, 2))).size
    (4, 2)
    """
    from PIL import ImageOps

    if _scrambled_by_pillow(im):
        im = _read_from_memory(im)
    return ImageOps.exif_transpose(im) or im


def _scrambled_by_pillow(im):
    """Whether ``im`` (opened from a file, not loaded) is a TIFF that this
    Pillow would give scrambled: uncompressed, tagged orientation 5-8 (turned
    a quarter), read through a memory map (a file name), and this Pillow
    found to get such a file wrong."""
    if (getattr(im, "format", None) != "TIFF" or getattr(im, "use_load_libtiff", True)
            or not getattr(im, "filename", None)):
        return False
    try:
        orientation = im.getexif().get(0x0112)
    except Exception:  # an unreadable tag: Pillow's own reading says what is wrong
        return False
    return orientation in (5, 6, 7, 8) and _pillow_scrambles_turned_tiffs()


@functools.lru_cache(maxsize=None)
def _pillow_scrambles_turned_tiffs():
    """Asked of this Pillow once, on a 2x3 uncompressed TIFF file tagged 6."""
    import tempfile
    from pathlib import Path

    from PIL import Image, ImageOps

    pixels = np.arange(6, dtype=np.uint8).reshape(2, 3)
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6  # shown turned a quarter clockwise
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "probe.tif"
            im.save(path, exif=exif)
            with Image.open(path) as read:
                shown = np.asarray(ImageOps.exif_transpose(read) or read)
    except Exception:  # pragma: no cover  (no TIFF support or no temp folder: nothing to do)
        return False
    return not np.array_equal(shown, np.rot90(pixels, -1))


def _read_from_memory(im):
    """``im``'s file (and page) opened again from its bytes: Pillow 13.0.0
    reads such a TIFF right from a file object, wrong only through the
    memory map it uses for a file name (its rows at the turned size)."""
    import io

    from PIL import Image

    with open(im.filename, "rb") as f:
        read = Image.open(io.BytesIO(f.read()))
    if im.tell():
        read.seek(im.tell())
    return read


def n_workers(n_jobs):
    """Workers for ``n_jobs`` by joblib's rule (None 1, -1 all CPUs, -2 all but one).

    Parameters
    ----------
    n_jobs : int or None
        The estimator's ``n_jobs``.

    Returns
    -------
    n : int
        At least 1.

    Examples
    --------
    >>> n_workers(None), n_workers(1), n_workers(-1) >= 1
    (1, 1, True)
    """
    from joblib import effective_n_jobs

    return max(1, effective_n_jobs(n_jobs))

_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N")


def pil_to_uint8(im, mode=None, where=None):
    """A Pillow image as a uint8 array, grey (h, w) or RGB (h, w, 3).

    Parameters
    ----------
    im : PIL.Image.Image
        An opened image.
    mode : {'L', 'RGB'} or None, default=None
        Force grey or colour; None keeps grey images grey and makes every
        other image RGB (palette images included, alpha dropped).  Colour
        read as grey is the luma :class:`~fersk.FaceCropper` computes
        (scikit-image's ``rgb2gray``, ITU-R 709), not Pillow's ``convert("L")``.
    where : str or None, default=None
        The image's name (its file) in the warning below: each file so
        named is warned about, not only the first of a run.

    Returns
    -------
    image : ndarray of uint8
        16-bit images keep their high byte (Pillow's ``convert`` would clip
        them at 255, turning most of them white).

    Raises
    ------
    ValueError
        For floating-point images (mode 'F') and 32-bit images with values
        outside 0..65535, which have no agreed 8-bit scale.

    Warns
    -----
    UserWarning
        For a 16- or 32-bit image (of at least 64 pixels) whose values are all
        at most 255: 8-bit values in a wider file, read nearly black.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> im = Image.fromarray(np.array([[0, 4096, 65535]], dtype=np.uint16))
    >>> pil_to_uint8(im)
    array([[  0,  16, 255]], dtype=uint8)
    >>> pil_to_uint8(im, "RGB").shape
    (1, 3, 3)
    """
    if mode is None:
        mode = "L" if im.mode in _GREY_MODES else "RGB"
    if im.mode == mode:
        return np.array(im)
    if im.mode == "F":
        raise ValueError(
            "floating-point image (Pillow mode 'F'): save it with 8 or 16 bits per channel"
        )
    if im.mode == "I" or im.mode.startswith("I;16"):
        wide = np.asarray(im)
        if wide.min() < 0 or wide.max() > 65535:
            raise ValueError(f"{im.mode!r} image with values outside 0..65535")
        if wide.size >= _MIN_WARN_SIZE and int(wide.max()) <= 255:
            import warnings

            # As for a uint16 array (array_to_uint8): the same image, the same word.
            warnings.warn(
                ("" if where is None else f"{where}: ")
                + f"a {im.mode!r} (16- or 32-bit) image whose values are all at most 255: "
                "fersk reads such files as 16-bit pixels (by their high byte), so it is "
                "nearly black. If it holds 8-bit values, save it with 8 bits per channel.",
                UserWarning,
                stacklevel=2,
            )
        grey = (wide.astype(np.uint32) >> 8).astype(np.uint8)
        return grey if mode == "L" else np.repeat(grey[..., None], 3, axis=2)
    if mode == "L" and im.mode not in _GREY_MODES:
        # Colour read grey by FaceCropper's luma (scikit-image's rgb2gray,
        # ITU-R 709), not Pillow's (601): faces loaded grey for training are
        # the pixels the pipeline computes from the same photo at prediction.
        return to_gray(np.array(im.convert("RGB"))[np.newaxis])[0]
    return np.array(im.convert(mode))


def to_gray(images):
    """Turn ``(n, h, w, c)`` colour images into ``(n, h, w)`` grey ones.

    The rule used across fersk: one channel is squeezed; RGB is converted
    to luminance with :func:`skimage.color.rgb2gray` (ITU-R BT.709 weights);
    RGBA drops alpha first.  Integer images stay integer (the luminance is
    rounded back into their dtype's range), so that LBP sees grey levels, as
    scikit-image recommends; float images stay float.

    Parameters
    ----------
    images : ndarray of shape (n, h, w) or (n, h, w, c)
        Grey or colour images.

    Returns
    -------
    gray : ndarray of shape (n, h, w)

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.full((1, 2, 2, 3), 200, dtype=np.uint8)
    >>> to_gray(rgb)[0, 0, 0]
    np.uint8(200)
    """
    from skimage.color import rgb2gray

    if images.ndim == 3:
        return images
    if images.shape[-1] == 1:
        return images[..., 0]
    rgb = images[..., :3]
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        # rgb2gray of an integer image is a weighted sum, computed in float.
        gray = rgb2gray(rgb.astype(np.float64))
        return np.clip(np.rint(gray), info.min, info.max).astype(images.dtype)
    return rgb2gray(rgb)


def array_to_uint8(image, where="X", float_max=1.0):
    """Pixel values of an image array as uint8, by fersk's one rule.

    The rule every photo entry point uses (:class:`~fersk.FaceCropper`, so
    the pretrained pipelines and the command line), the same as for files:

    * uint8: as is;
    * bool: False 0, True 255;
    * uint16: the high byte, as 16-bit image files are read
      (:func:`pil_to_uint8`; scikit-image's ``img_as_ubyte`` does the same).
      A uint16 array of at least 64 values that are all at most 255 is
      almost surely 8-bit values in a wider type (it would become black):
      a :class:`UserWarning` says so and gives the fix, ``.astype(np.uint8)``;
    * other integer types: their values, which must lie in 0..255 (a list
      of Python ints becomes int64: it is read as 8-bit values); outside
      that range there is no agreed scale, so it is a ValueError;
    * floats: intensities from 0 to ``float_max`` (1.0, scikit-image's
      convention, or 255.0), scaled and rounded to 0..255; values outside
      that range, NaN or infinity are a ValueError.

    Parameters
    ----------
    image : ndarray
        An image or a batch of images.
    where : str, default="X"
        Name used in error messages.
    float_max : float, default=1.0
        The value of white in float images.

    Returns
    -------
    image : ndarray of uint8

    Examples
    --------
    >>> import numpy as np
    >>> array_to_uint8(np.array([[0.0, 0.5, 1.0]]))
    array([[  0, 128, 255]], dtype=uint8)
    >>> array_to_uint8(np.array([[0, 4096, 65535]], dtype=np.uint16))
    array([[  0,  16, 255]], dtype=uint8)
    """
    kind = image.dtype.kind
    if image.dtype == np.uint8:
        return image
    if kind == "b":
        return image.astype(np.uint8) * np.uint8(255)
    if kind == "u" and image.dtype.itemsize == 2:  # either byte order (a '>u2' is uint16 too)
        _warn_8bit_in_uint16(image, where)
        return (image >> 8).astype(np.uint8)
    if kind in "ui":
        lo, hi = (int(image.min()), int(image.max())) if image.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(
                ("Negative values in data: " if lo < 0 else "")
                + f"{where} holds {image.dtype} pixel values from {lo} to {hi}, outside "
                "0..255, and fersk cannot tell their scale: give 8-bit values as uint8, "
                "16-bit ones as uint16 (read by their high byte, as 16-bit files), or "
                "scale them to uint8 yourself."
            )
        return image.astype(np.uint8)
    if kind == "f":
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{where} contains NaN or infinity.")
        lo, hi = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
        if lo < 0 or hi > float_max:
            fix = (
                "divide 0-255 values by 255, give them as uint8, or set "
                "FaceCropper(float_max=255)" if float_max == 1.0 else
                f"scale them into 0..{float_max:g}"
            )
            convention = (
                "as scikit-image does, intensities from 0 to 1" if float_max == 1.0
                else f"as intensities from 0 to {float_max:g}"
            )
            raise ValueError(
                ("Negative values in data: " if lo < 0 else "")
                + f"{where} is a float image with values from {lo:.4g} to {hi:.4g}; fersk "
                f"reads float pixels {convention}: {fix}."
            )
        return np.rint(image * (255.0 / float_max)).astype(np.uint8)
    raise ValueError(
        f"{where} must hold numeric pixel values; got an array of dtype {image.dtype}."
    )


#: uint16 arrays with fewer values than this are not warned about: a few
#: dark 16-bit pixels are plausible, a dark 8x8 image is not.
_MIN_WARN_SIZE = 64


def _warn_8bit_in_uint16(image, where):
    """Warn when a uint16 array holds only 8-bit values (max <= 255)."""
    if image.size >= _MIN_WARN_SIZE and int(image.max()) <= 255:
        import warnings

        warnings.warn(
            f"{where} is uint16 but all its values are at most 255: 8-bit pixel values "
            "stored as uint16? fersk reads uint16 as 16-bit pixels (by their high "
            "byte, as 16-bit image files), so these are nearly black. If they are "
            "8-bit values, pass X.astype(np.uint8).",
            UserWarning,
            stacklevel=3,
        )


def check_float32_range(images, where="X", what="images"):
    """Raise if float64 ``images`` hold finite values beyond float32's range.

    The networks compute in float32 (Keras and ONNX Runtime alike): such a
    value becomes infinity there and the outputs NaN, which would be blamed
    on the weights.

    Parameters
    ----------
    images : ndarray
        Validated images (finite), or a regressor's targets.
    where : str, default="X"
        Name used in the message.
    what : str, default="images"
        What the message says to scale ("targets" for a regressor's ``y``).

    Examples
    --------
    >>> import numpy as np
    >>> check_float32_range(np.array([[0.0, 1e30]]))
    >>> check_float32_range(np.array([[0.0, 1e39]]))
    Traceback (most recent call last):
        ...
    ValueError: X holds values beyond float32's range (|x| > 3.4e38), which the network reads as infinity; scale the images.
    """
    if images.dtype.kind == "f" and images.dtype.itemsize > 4 and images.size and (
            np.abs(images).max() > np.finfo(np.float32).max):
        raise ValueError(
            f"{where} holds values beyond float32's range (|x| > 3.4e38), which the "
            f"network reads as infinity; scale the {what}."
        )


def pixels_for_network(images, input_dtype, owner, where="X", input_range=None):
    """Images for a network fitted on ``input_dtype`` input, by the pixel rule.

    A network fitted on uint8 pixels (``input_dtype_ == '|u1'``, as every
    bundled network) takes its input by the rule of :func:`array_to_uint8`,
    so that the network step alone agrees with its pipeline: uint8 as is;
    bool, uint16 (high byte, with the 8-bit warning) and other integers
    (values 0..255) as uint8; floats on the training scale, 0 to 255, as is.
    An image of floats all within [0, 1] with a fraction among them
    (scikit-image's convention, which a network fitted on 0-255 values would
    see as black; judged image by image, so that the answer for one image
    never depends on the others in its batch; an image of whole numbers
    only, 0 and 1, is a nearly black 0-255 frame and passes, as it would as
    uint8) and floats outside 0..255 are a ValueError.  Networks fitted on
    any other dtype (features such as mapped LBP codes, floats) take their
    input as is, except that a network fitted on images within [0, 1]
    (``input_range``, to rounding) refuses 0-255 pixels, which it would read
    as glare, image by image: above 2 and whole numbers (any integer dtype,
    or floats without a fraction), or reaching 10 or more.  Other images
    above 2 (a contrast stretch) are taken, with a warning.

    Parameters
    ----------
    images : ndarray
        Validated images (finite).
    input_dtype : str or None
        The network's ``input_dtype_`` (None when it has none).
    owner : str
        Name of the network's class, for messages.
    where : str, default="X"
        Name used in messages.
    input_range : tuple of float or None, default=None
        The network's ``input_range_``: (lowest, highest) value of its
        training images (None when it has none, as a model saved before it).

    Returns
    -------
    images : ndarray
        uint8 or float images on the 0-255 scale for a uint8 network;
        ``images`` unchanged otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> pixels_for_network(np.array([[0, 32768]], np.uint16), "|u1", "Net")
    array([[  0, 128]], dtype=uint8)
    >>> pixels_for_network(np.array([[0.0, 0.5]]), "<f4", "Net")
    array([[0. , 0.5]])
    """
    if input_dtype != "|u1":
        # To rounding: MinMaxScaler's maximum is 1.0000000000000002.
        if (input_range is not None and images.size and input_range[0] >= -1e-6
                and input_range[1] <= 1 + 1e-6):
            _refuse_pixels_for_unit_network(images, owner, where)
        return images
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind != "f":
        return array_to_uint8(images, where)
    if not images.size:
        return images
    per_image = images.reshape(len(images), -1)
    peak = per_image.max(axis=1)
    faint = np.flatnonzero((peak <= 1.0) & (peak > 0) & (per_image.min(axis=1) >= 0))
    # Whole numbers only (0 and 1): a nearly black 0-255 frame, as uint8 takes it.
    faint = faint[[bool(np.any(per_image[i] != np.round(per_image[i]))) for i in faint]]
    if faint.size:
        # Standardised with 0-255 statistics, [0, 1] floats would all look
        # black to the network: a silent wrong answer.
        raise ValueError(
            f"{owner} was fitted on uint8 pixel values (0-255); {where} holds floats "
            f"in [0, 1], scikit-image's convention (image{'s' if faint.size > 1 else ''} "
            f"{', '.join(map(str, faint[:5]))}{' ...' if faint.size > 5 else ''}). Pass them "
            f"on the training scale: skimage.util.img_as_ubyte({where}), or {where} * 255."
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 255:
        raise ValueError(
            f"{owner} was fitted on uint8 pixel values (0-255); {where} holds floats "
            f"from {lo:.4g} to {hi:.4g}, which are not on that scale (already "
            "standardised, or 16-bit values?). Pass the pixels as uint8, or as floats "
            "from 0 to 255."
        )
    return images


def _refuse_pixels_for_unit_network(images, owner, where):
    """A ValueError for images that are 0-255 pixels fed to a network fitted
    on [0, 1] images (read as glare): judged image by image, an image whose
    peak is above 2 and that is whole numbers (any integer dtype, or floats
    without a fraction) or reaches 10 or more (0-255 floats from a channel
    mean or a resize).  Other images above 2 (a contrast stretch) are taken
    with a warning."""
    per_image = images.reshape(len(images), -1)
    peak = per_image.max(axis=1).astype(np.float64)
    above = np.flatnonzero(peak > 2)
    if not above.size:
        return
    whole = images.dtype.kind in "biu"
    pixels = [i for i in above
              if whole or peak[i] >= 10 or np.all(per_image[i] == np.round(per_image[i]))]
    if pixels:
        raise ValueError(
            f"{owner} was fitted on images within [0, 1] (scikit-image's convention); "
            f"{where} holds 0-255 pixels, it seems (image{'s' if len(pixels) > 1 else ''} "
            f"{', '.join(map(str, pixels[:5]))}{' ...' if len(pixels) > 5 else ''}: values up "
            f"to {float(peak[pixels].max()):.4g}). Pass them on the training scale: "
            f"skimage.util.img_as_float({where})."
        )
    from ._warnings import warn_user

    warn_user(
        f"{owner} was fitted on images within [0, 1]; {where} reaches "
        f"{float(peak.max()):.4g}, off the training scale (taken as given).", UserWarning)


def stretch_to_uint8(image):
    """Min-max stretch to 0..255, rounded: for display and 8-bit-only detectors.

    Unlike :func:`array_to_uint8` (the pixel rule, which keeps values), this
    maps the image's own range onto 0..255; a constant image becomes 0.

    Parameters
    ----------
    image : ndarray
        Any real image.

    Returns
    -------
    stretched : ndarray of uint8
        Of the shape of ``image``.

    Examples
    --------
    >>> import numpy as np
    >>> stretch_to_uint8(np.array([[1.0, 1.5, 2.0]]))
    array([[  0, 128, 255]], dtype=uint8)
    """
    if image.dtype == np.uint8:
        return image
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros(image.shape, dtype=np.uint8)
    return np.rint((image - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def read_image_file(path, where="X"):
    """One image file as uint8 grey ``(h, w)`` or RGB ``(h, w, 3)``.

    Read with Pillow, EXIF orientation applied (:func:`open_image`), by
    the pixel rule of :func:`pil_to_uint8`; any failure to read it is a
    ValueError naming ``where`` and the file.
    """
    import os

    from PIL import Image

    try:
        with Image.open(path) as im:
            return pil_to_uint8(open_image(im), where=f"{where}: {os.fspath(path)!r}")
    # DecompressionBombError (a huge image, refused by Pillow before it is
    # decoded) derives from Exception only: it is this file's problem too.
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"{where}: cannot read an image from the file {os.fspath(path)!r} "
            f"({type(exc).__name__}: {exc})."
        ) from exc
