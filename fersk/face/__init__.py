"""Find, crop, optionally align and resize faces (see :mod:`fersk.face._cropper`).

The module moves into a package first, unchanged, so that its history
follows it; the next commit splits it one module per job.
"""

from ._cropper import *  # noqa: F401,F403
from ._cropper import __all__  # noqa: F401
