"""What the network and MTCNN exports share: the cache folder and its
atomically written files, ONNX Runtime sessions and the converter."""

import hashlib
import threading
from pathlib import Path

from fersk._fsync import written_atomically

#: ONNX opset of the exported graphs.
OPSET = 17

#: Version of the export recipe: part of every cache file's hash, so that
#: a fersk exporting differently never reads files of an older recipe.
_RECIPE = "fersk-onnx-1"

_ORT_HINT = "pip install 'fersk[onnx]'"
_EXPORT_HINT = (
    "exporting needs TensorFlow and tf2onnx: pip install 'fersk[onnx]' on a machine "
    "with fersk's TensorFlow (or run `fersk export` there and copy the cache folder)"
)


def _import_ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            f"backend='onnx' needs onnxruntime, which is not installed ({exc}): {_ORT_HINT}."
        ) from exc
    return onnxruntime


def cache_dir():
    """The folder exported ONNX files are written to and read from.

    Returns
    -------
    path : pathlib.Path
        The folder ``onnx`` in fersk's cache folder
        (:func:`fersk.cache.cache_home`: ``$FERSK_CACHE`` when that
        environment variable is set, else ``$XDG_CACHE_HOME/fersk`` or
        ``~/.cache/fersk``).  Not created here.

    Examples
    --------
    >>> import os
    >>> from fersk.onnx import cache_dir
    >>> cache_dir().name
    'onnx'
    """
    from fersk.cache import cache_home

    return cache_home() / "onnx"


def _digest(*parts):
    h = hashlib.sha256(_RECIPE.encode())
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, bytes) else str(part).encode())
    return h.hexdigest()[:16]


def _file_digest(path, *extra):
    return _digest(Path(path).read_bytes(), OPSET, *extra)


def _atomic_write(path, data):
    """``data`` (bytes) to ``path`` through a temporary file in its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as tmp:  # a power cut leaves the old file or the whole new one
        with open(tmp, "wb") as f:
            f.write(data)
    return path


# ---------------------------------------------------------------- sessions
_SESSIONS = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path, spinning=True):
    """One ``onnxruntime.InferenceSession`` per file (and modification time)
    and setting of ``spinning`` (whether idle worker threads spin, waiting
    for work, rather than sleep)."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns, spinning)
    return _cached_session(key, str(path), spinning)


def _session_of_bytes(digest, data, spinning=True):
    """:func:`_session` for a graph held in memory (``data``, its SHA-256
    ``digest``): a network unpickled with its graph."""
    return _cached_session(("sha256", digest, spinning), data, spinning)


def _cached_session(key, source, spinning):
    ort = _import_ort()
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if not spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(
                source, sess_options=options, providers=["CPUExecutionProvider"]
            )
            _SESSIONS[key] = session
    return session


# ------------------------------------------------------------------ export
def _tf2onnx():
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise ImportError(f"cannot export to ONNX ({exc}): {_EXPORT_HINT}.") from exc
    try:  # tf2onnx 1.17 still uses np.object (removed in NumPy 2): Keras patches it
        import warnings

        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            patch_tf2onnx()
    except ImportError:  # pragma: no cover
        pass
    return tf, tf2onnx


def _convert(fn, signature, metadata=None):
    """ONNX bytes of a ``tf.function`` over ``signature``, with ``metadata``
    (a dict of strings) as the model's metadata properties."""
    import logging

    tf, tf2onnx = _tf2onnx()
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(
        tf.function(fn, input_signature=signature), input_signature=signature, opset=OPSET
    )
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


