"""Keep TensorFlow's native start-up lines off the user's terminal.

Importing TensorFlow prints absl/oneDNN/CUDA lines ("Could not find cuda
drivers", "failed call to cuInit: UNKNOWN ERROR (303)") from C++ static
initialisers, before any environment variable is read, straight to file
descriptor 2.  fersk imports TensorFlow only when a network or the MTCNN
detector is first used; that one import (and TensorFlow's device discovery,
where the cuInit line comes from) runs with descriptor 2 pointed at
/dev/null.  Python exceptions still propagate; nothing else is hidden.

TensorFlow's own Python logger is set to show errors only (its warnings,
such as tf.function retracing notices, are about TensorFlow's internals,
not the user's call).

Set ``FERSK_TF_LOGS=1`` to see those lines (e.g. to check that a GPU is
found).
"""

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 to /dev/null for the duration (unless FERSK_TF_LOGS)."""
    if os.environ.get("FERSK_TF_LOGS", "") not in ("", "0"):
        yield
        return
    try:
        sys.stderr.flush()
    except Exception:  # a closed or replaced stderr: nothing to flush
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_silenced():
            self._loader.exec_module(module)
            try:  # device discovery prints the cuInit line: do it now
                module.config.list_physical_devices()
            except Exception:
                pass
        # TensorFlow's Python-side warnings (e.g. "5 out of the last 5 calls
        # ... triggered tf.function retracing", once a session has predicted
        # with a few models: an ensemble's members in both view settings) go
        # to its own logger; errors still show.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, and loads it quietly."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders find it
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install():
    """Load TensorFlow quietly when it is first imported (idempotent)."""
    if os.environ.get("FERSK_TF_LOGS", "") not in ("", "0") or "tensorflow" in sys.modules or any(
        isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path
    ):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the Python-side INFO/WARNING lines
    sys.meta_path.insert(0, _QuietTensorFlowFinder())
