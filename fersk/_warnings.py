"""Warnings said at the user's line, past fersk's and scikit-learn's frames.

A fixed ``stacklevel`` points at the wrong line as soon as a call goes
through another path (``transform`` through scikit-learn's set_output
wrapper, ``crop`` directly, a ``validate_params`` wrapper): the frames
are counted instead.
"""

import os
import sys
import warnings

_FERSK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKLEARN_DIR = os.sep + "sklearn" + os.sep


def _inside(filename):
    path = os.path.abspath(filename)
    return path.startswith(_FERSK_DIR) or _SKLEARN_DIR in path


def warn_user(message, category=UserWarning):
    """Warn at the first caller outside fersk and scikit-learn.

    Parameters
    ----------
    message : str
        The warning's text.
    category : type of Warning, default=UserWarning
        Its class.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("said here")
    >>> caught[0].filename == __file__ or caught[0].filename.startswith("<doctest")
    True
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and _inside(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
