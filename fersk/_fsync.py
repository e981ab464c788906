"""Flushing files and folders to disk, for the writers that must survive a
crash (model folders, training checkpoints)."""

import os


def fsync_path(path):
    """Flush a file, or a folder's entries, to disk; a no-op where the
    system cannot (e.g. Windows cannot open a folder).

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
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
