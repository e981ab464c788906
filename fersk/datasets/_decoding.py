"""Listing image files under a folder and decoding them, in threads."""

import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fersk import _image_files
from fersk._image_files import _is_dir, _is_file, pil_to_uint8

# Images per task of the decoding pool (and per progress report).
_CHUNK = 512


def _is_hidden(name):
    return name.startswith(".") or name.startswith("__")


def _has_extension(name, extensions):
    return extensions is None or os.path.splitext(name)[1].lower() in extensions


def _entry_kind(entry):
    """'dir', 'file' or None for a scandir entry: None for a broken link, a
    link loop (whose is_dir() raises ELOOP) or anything else."""
    if _is_dir(entry):
        return "dir"
    return "file" if _is_file(entry) else None


def _broken_links(entries):
    """The links among ``entries`` (not hidden) that lead nowhere: broken, or a loop."""
    return [e for e in entries if not _is_hidden(e.name) and e.is_symlink()
            and _entry_kind(e) is None]


def _refuse_broken_links(folder, broken):
    if broken:
        raise FileNotFoundError(
            f"{os.fspath(folder)!r} holds broken link(s) or link loop(s) "
            f"{[f'{e.name} -> {os.readlink(e.path)}' for e in broken][:5]}: a class or split "
            "folder there would be missing and the others' label codes would shift; "
            "mount or fix the link's target, or remove the link."
        )


def _subdirs(folder):
    """The class (or split) folders under ``folder`` and the files beside them.

    A broken link where a folder could be (``angry -> /mnt/drive/angry``,
    the drive not mounted) raises: left out, its class would vanish from
    ``target_names`` and every later class's code would shift, unsaid."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    _refuse_broken_links(folder, _broken_links(entries))
    dirs = [e for e in entries if _entry_kind(e) == "dir" and not _is_hidden(e.name)]
    files = [e for e in entries if _entry_kind(e) == "file" and not _is_hidden(e.name)]
    return dirs, files


def _check_distinct(dirs, where):
    """Raise if two of ``dirs`` (scandir entries) are one folder on disk (a
    link to another): its images would be listed twice, under two labels
    or as two copies of each sample.  Returns their (device, inode) set."""
    first = {}
    for d in dirs:
        st = os.stat(d.path)
        key = (st.st_dev, st.st_ino)
        if key in first:
            raise ValueError(
                f"{where}: folders {first[key]!r} and {d.path!r} are one folder on disk "
                "(one links to the other), so its images would be read twice, under "
                "both names; remove the link or make it a copy."
            )
        first[key] = d.path
    return set(first)


def _describe(exc):
    from PIL import UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    if isinstance(exc, _BadImage):
        return str(exc)
    if isinstance(exc, DecompressionBombError):
        return f"too many pixels to decode safely (Pillow: {exc})"
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image (Pillow cannot identify its format)"
    return f"unreadable image ({type(exc).__name__}: {exc})"


class _BadImage(ValueError):
    pass


#: How a failure to read a file (not to decode it) starts: permissions, I/O
#: errors.  A cache must not keep it: the file may read next time, and
#: fixing permissions does not change the modification time a key holds.
READ_FAILURE = "cannot read the file"


class _ReadError(_BadImage):
    pass


def _read_image(path, mode, shape, shape_hint=""):
    """Decode one file to a uint8 array in PIL ``mode`` ('L' or 'RGB')."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:  # the file, not its content: may read another time
        raise _ReadError(f"{READ_FAILURE} ({type(exc).__name__}: {exc})") from None
    if not data:
        raise _BadImage("empty file (0 bytes)")
    with Image.open(io.BytesIO(data)) as im:
        if shape is not None and im.size != (shape[1], shape[0]):
            raise _BadImage(
                f"image is {im.size[1]}x{im.size[0]} (height x width) pixels, not "
                f"{shape[0]}x{shape[1]}{shape_hint}"
            )
        try:
            return pil_to_uint8(_image_files.open_image(im), mode, where=os.fspath(path))
        except ValueError as exc:
            raise _BadImage(str(exc)) from None


def _decode_files(paths, *, mode, shape, n_jobs, progress, shape_hint=""):
    """Decode ``paths`` with a thread pool (Pillow releases the GIL while it
    decodes).

    Returns ``(images, failures)``: a uint8 array ``(n,) + shape`` (zeros
    where decoding failed) when ``shape`` is given, else a list of arrays
    (None where it failed); ``failures`` maps index -> reason.
    """
    n = len(paths)
    channels = () if mode == "L" else (3,)
    images = np.zeros((n,) + tuple(shape) + channels, np.uint8) if shape else [None] * n

    def work(bounds):
        start, stop = bounds
        failed = []
        for i in range(start, stop):
            try:
                images[i] = _read_image(paths[i], mode, shape, shape_hint)
            except MemoryError:
                raise
            except Exception as exc:  # any decoder error is the file's problem
                failed.append((i, _describe(exc)))
        return stop - start, failed

    chunks = [(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]
    failures, n_done = {}, 0
    if n_jobs == 1 or len(chunks) <= 1:
        results = map(work, chunks)
        for done, failed in results:
            n_done += done
            progress.update(n_done)
            failures.update(failed)
    else:
        with ThreadPoolExecutor(max_workers=min(n_jobs, len(chunks))) as pool:
            for done, failed in pool.map(work, chunks):
                n_done += done
                progress.update(n_done)
                failures.update(failed)
    return images, failures
