"""Prediction with ONNX Runtime, without TensorFlow.

A fitted fersk network (its input scaling and the network with batch norm
folded in, for one view) is exported once as an ONNX graph, with
TensorFlow; from then on :class:`OnnxNetworkClassifier` runs it with
``onnxruntime`` alone, cutting and averaging the test-time views itself.  The face detector of the bundled pipelines,
MTCNN, is exported the same way (its three networks, PNet, RNet and ONet),
and :class:`OnnxMTCNN` runs its glue (image pyramid, non-maximum
suppression, box regression, landmarks) in NumPy, as the ``mtcnn`` package
does with TensorFlow.  ``FaceCropper(detector="mtcnn-onnx")`` uses it.

Exported files go to a cache folder (:func:`cache_dir`): the folder
``onnx`` in fersk's cache folder (:func:`fersk.cache.cache_home`).  Their names hold a
hash of what they were made from (the ``.keras`` file, the view window
and input scaling, the opset), so a changed model is exported anew and never read from
a stale file.  Files are written atomically (a temporary file, then
``os.replace``); fersk deletes nothing there unless asked
(:func:`fersk.cache.clear_cache`, ``fersk cache --clear``).

Most users call :func:`fersk.pretrained.load` with ``backend="onnx"`` (or
the command ``fersk export``), which export what is missing and return a
pipeline of these classes.

One module per job; everything is imported from ``fersk.onnx``, the
submodules are private:

- ``_common``: the cache folder and its atomically written files, the
  runtime sessions and the TensorFlow-to-ONNX converter both exports use;
- ``_network``: :func:`export_network`, :func:`quantize_network` and
  :class:`OnnxNetworkClassifier`;
- ``_mtcnn``: :func:`export_mtcnn` and :class:`OnnxMTCNN`.

Examples
--------
>>> from skimage import data
>>> from fersk import pretrained
>>> model = pretrained.load("fer2013_vgg_fast", backend="onnx")  # doctest: +SKIP
>>> model.predict_proba([data.astronaut()]).shape  # doctest: +SKIP
(1, 7)
"""

from ._common import OPSET, _digest, _import_ort, cache_dir  # noqa: F401  (fersk.pretrained, fersk.face)
from ._mtcnn import OnnxMTCNN, _mtcnn_paths, export_mtcnn  # noqa: F401  (fersk.pretrained)
from ._network import (  # noqa: F401  (network_onnx_name: internal, kept where it was)
    OnnxNetworkClassifier,
    export_network,
    network_onnx_name,
    quantize_network,
)

__all__ = [
    "OPSET",
    "OnnxMTCNN",
    "OnnxNetworkClassifier",
    "cache_dir",
    "export_mtcnn",
    "export_network",
    "quantize_network",
]

# The public names keep the module users know (repr, pickles, Sphinx),
# wherever they are defined.
for _name in __all__:
    if callable(globals()[_name]):
        globals()[_name].__module__ = __name__
del _name
