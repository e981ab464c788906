"""Flushing files and folders to disk, for the writers that must survive a
crash (model folders, training checkpoints)."""

import contextlib
import errno
import os
import tempfile

# fsync's answers that mean "this file system does not flush" (some FUSE and
# network mounts), not "the flush failed".
_NO_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EROFS}


def fsync_path(path):
    """Flush a file, or a folder's entries, to disk; a no-op where the
    system cannot (Windows cannot open a folder; some file systems do not
    flush).

    A file's failed flush (EIO, ENOSPC, EDQUOT: the data may not be on
    disk) raises OSError, so that a writer does not rename an unflushed
    file over a good one; a folder's is passed over, as its entry only
    orders the rename.

    Parameters
    ----------
    path : str or os.PathLike
        A file or a folder.

    Examples
    --------
    >>> import tempfile
    >>> from fersk._fsync import fsync_path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     fsync_path(folder)
    """
    folder = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if not folder and exc.errno not in _NO_FSYNC:
            raise
    finally:
        os.close(fd)


def replace_durably(tmp, path):
    """Put the complete file ``tmp`` at ``path`` so that it survives a power
    cut too: ``tmp`` flushed to disk, renamed over ``path`` in one step
    (``os.replace``), then the folder's entry flushed.

    Parameters
    ----------
    tmp : str or os.PathLike
        The finished file, in the folder of ``path``.
    path : str or os.PathLike
        Where it goes.

    Examples
    --------
    >>> import os, tempfile
    >>> from fersk._fsync import replace_durably
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     tmp = os.path.join(folder, ".out.tmp")
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("done")
    ...     replace_durably(tmp, os.path.join(folder, "out.txt"))
    ...     os.listdir(folder)
    ['out.txt']
    """
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


def give_mode(tmp, path):
    """Give the temporary file ``tmp`` the mode ``path`` will be expected to
    have once ``tmp`` replaces it: the mode of the file there now, else what
    ``open`` would give a new file (0o666 less the umask).

    ``tempfile.mkstemp`` makes its files private (0o600): renamed over a
    user's readable file, the file would turn private.

    Examples
    --------
    >>> import os, stat, tempfile
    >>> from fersk._fsync import give_mode
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     old = os.path.join(folder, "old.txt")
    ...     with open(old, "w") as f:
    ...         _ = f.write("x")
    ...     os.chmod(old, 0o640)
    ...     fd, tmp = tempfile.mkstemp(dir=folder)
    ...     os.close(fd)
    ...     give_mode(tmp, old)
    ...     oct(stat.S_IMODE(os.stat(tmp).st_mode))
    '0o640'
    """
    import stat

    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # nothing there yet
        mode = 0o666 & ~_umask()
    try:
        os.chmod(tmp, mode)
    except OSError:  # a file system without modes: nothing to keep
        pass


def _umask():
    """The process's umask, read without changing it where Linux says it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the usual read-and-restore
    os.umask(mask)
    return mask


@contextlib.contextmanager
def written_atomically(path, *, prefix=None, suffix=".tmp"):
    """A temporary file beside ``path`` to write; once the block ends
    without an error it replaces ``path`` (with the mode a new file there
    would get, :func:`replace_durably`), else it is removed: ``path`` holds
    the old content or the whole new one, never a part.

    A symbolic link at ``path`` is kept and its target's file replaced
    (``latest.onnx -> runs/model.onnx``: renaming over the link would cut
    it and leave the target old).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    prefix : str or None, default=None
        The temporary file's name prefix (default ``.<name>.``).
    suffix : str, default=".tmp"
        Its suffix (keep ``path``'s extension where a writer reads it).

    Yields
    ------
    tmp : str
        The temporary file's path (created empty).

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = os.path.join(folder, "out.txt")
    ...     with written_atomically(out) as tmp:
    ...         with open(tmp, "w") as f:
    ...             _ = f.write("done")
    ...     os.listdir(folder), open(out).read()
    (['out.txt'], 'done')
    """
    path = os.path.realpath(os.fspath(path))
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}." if prefix is None else prefix, suffix=suffix,
                               dir=folder)
    os.close(fd)
    try:
        yield tmp
        give_mode(tmp, path)  # mkstemp's 0o600 would make a user's file private
        replace_durably(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
