"""What every FER-2013 and image-folder loader shares: the constants, the
warning for skipped samples, the ``errors=`` policy and the argument checks."""

import numbers
import os

from sklearn.utils._param_validation import StrOptions

from fersk import _image_files
from fersk._labels import FER2013_CLASSES  # noqa: F401  (re-exported by fersk.datasets)
from fersk._progress import Progress
from fersk._warnings import warn_user

#: Values of the ``Usage`` column / file-name prefixes of FER-2013.
FER2013_USAGES = ("Training", "PublicTest", "PrivateTest")
#: Shape of a FER-2013 image.
FER2013_SHAPE = (48, 48)
#: File extensions read by default (compared case-insensitively; one list
#: for all of fersk: :data:`fersk._image_files.IMAGE_EXTENSIONS`).
IMAGE_EXTENSIONS = _image_files.IMAGE_EXTENSIONS

_CLASS_INDEX = {name: i for i, name in enumerate(FER2013_CLASSES)}
_USAGE_CANON = {u.lower(): u for u in FER2013_USAGES}
_N_PIXELS = FER2013_SHAPE[0] * FER2013_SHAPE[1]
# Bad samples named in an error or warning message.
_MAX_NAMED = 10


class SkippedImagesWarning(UserWarning):
    """Warning issued when ``errors="skip"`` drops bad images or CSV rows.

    The warning gives the count and the first names; the returned Bunch's
    ``skipped`` lists every dropped sample with the reason.  Filter it as any
    warning, e.g. ``warnings.simplefilter("error", SkippedImagesWarning)``
    to make skipping fatal again.

    Parameters
    ----------
    message : str
        What was skipped.

    Examples
    --------
    >>> import warnings
    >>> from fersk.datasets import SkippedImagesWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("2 images skipped", SkippedImagesWarning)
    >>> caught[0].category.__name__
    'SkippedImagesWarning'
    """


#: Constraints that several loaders' parameters of the same name share
#: (for ``validate_params``), written once so that they cannot drift apart.
LOADER_CONSTRAINTS = {
    "path": [str, os.PathLike],
    "errors": [StrOptions({"raise", "skip"})],
    "cache": ["boolean"],
    "cache_dir": [str, os.PathLike, None],
    "n_jobs": [numbers.Integral, None],
    "verbose": ["verbose"],
    "return_X_y": ["boolean"],
}


def _warn(message, category=UserWarning):
    """Warn at the user's call site (past fersk's and sklearn's frames)."""
    warn_user(message, category)


def _decoding_progress(func, total, verbose):
    """Decoding progress: every ~10% (verbose=1) or every chunk (>1)."""
    return Progress(func, total, verbose, text="decoded {done}/{total} images")


def _resolve_n_jobs(n_jobs):
    if n_jobs == 0:
        raise ValueError("n_jobs=0 has no meaning: use None or 1 (one thread), "
                         "-1 (one per CPU) or a positive count.")
    return _image_files.n_workers(n_jobs)


def _check_usages(usage, name="usage"):
    """Canonical tuple of FER usages from a str or a list of str."""
    values = [usage] if isinstance(usage, str) else list(usage)
    if not values:
        raise ValueError(f"{name} is empty; give one or more of {list(FER2013_USAGES)}.")
    out = []
    for value in values:
        canon = _USAGE_CANON.get(str(value).lower()) if isinstance(value, str) else None
        if canon is None:
            raise ValueError(
                f"Unknown FER-2013 usage {value!r} in {name}; expected one of "
                f"{list(FER2013_USAGES)}."
            )
        if canon not in out:
            out.append(canon)
    return tuple(out)


def _size_pair(size):
    """``(height, width)`` of a ``size`` its constraints admitted."""
    if size is None:
        return None
    if isinstance(size, numbers.Integral):
        size = (size, size)
    return tuple(int(s) for s in size)


def _check_extensions(extensions):
    if extensions is None:
        return None
    values = [extensions] if isinstance(extensions, str) else list(extensions)
    if not values or not all(isinstance(e, str) and e.strip(".") for e in values):
        raise ValueError(
            f"extensions must be None or non-empty strings such as '.png'; "
            f"got {extensions!r}."
        )
    return tuple("." + e.lower().lstrip(".") for e in values)


def _apply_errors_policy(bad, errors, what, func, name_fmt=str):
    """Raise on bad samples, or warn about them (errors='skip').

    ``bad`` is a list of ``(identifier, reason)``.
    """
    if not bad:
        return
    shown = "; ".join(f"{name_fmt(name)}: {reason}" for name, reason in bad[:_MAX_NAMED])
    more = f" (and {len(bad) - _MAX_NAMED} more)" if len(bad) > _MAX_NAMED else ""
    if errors == "raise":
        summary = f"{len(bad)} {what} could not be loaded: {shown}{more}. Fix or remove them"
        error = ValueError(
            f"{summary}, or pass errors='skip' to drop them (with a warning; the "
            f"dropped names are recorded in the result's 'skipped')."
        )
        # The command line has no errors= argument: it prints this instead.
        error.without_python_hint = f"{summary}."
        raise error
    _warn(
        f"{func} skipped {len(bad)} {what} (errors='skip'): {shown}{more}. "
        f"All are listed, with the reason, in the result's 'skipped'.",
        SkippedImagesWarning,
    )


