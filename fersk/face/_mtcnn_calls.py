"""How fersk calls the mtcnn package (TensorFlow): the same faces, faster.

For fersk's calls only, under one lock, mtcnn 1.0 runs with a stable sort
of its boxes (a batch gives each image what it gets alone), its image
pyramid and patches made in NumPy with TensorFlow's values bit for bit
(:mod:`fersk._tf_image_ops`), and its three networks as TensorFlow graphs;
mtcnn's own functions and networks are put back after each call.
"""

import contextlib
import functools
import threading

import numpy as np

from .._mtcnn_pyramid import _pyramid_scales
from .._tf_image_ops import AreaPyramid, crop_and_resize

__all__ = []


def _stable_sort_by_scores(tensor, scores, ascending=True):
    """mtcnn's ``sort_by_scores``, with equal scores kept in their order."""
    return tensor[np.argsort(scores if ascending else -scores, kind="stable")]


_MTCNN_LOCK = threading.Lock()


@contextlib.contextmanager
def _stable_mtcnn_sort():
    """Run mtcnn with a stable sort of its boxes by score.

    mtcnn 1.0 sorts the boxes of a whole batch by score with NumPy's
    default (unstable) sort before each non-maximum suppression.  Equal
    scores are common (PNet's face probability saturates at 1.0 in
    float32), so which of two tied boxes survives depended on the other
    images of the batch: 4 of 61 web photos sent in batches of their size
    got other boxes than alone.  With a stable sort each image's boxes
    keep the order they have alone, so a batch gives every image exactly
    what a call on that image alone gives.  The sort is swapped in for
    fersk's calls only (under a lock), not for other users of mtcnn.
    """
    from mtcnn.utils import bboxes

    with _MTCNN_LOCK:
        saved = bboxes.sort_by_scores
        bboxes.sort_by_scores = _stable_sort_by_scores
        try:
            yield
        finally:
            bboxes.sort_by_scores = saved


def _numpy_apply_scales(images_normalized, scales_groups):
    """mtcnn's ``apply_scales`` (its image pyramid), with the area resize of
    :mod:`fersk._tf_image_ops`: TensorFlow's values, bit for bit."""
    scales = scales_groups[int(np.argmax([g.shape[0] for g in scales_groups]))]
    shapes = [(np.asarray(images_normalized.shape[1:3]) * s).astype(np.int32) for s in scales]
    if min((min(shape) for shape in shapes), default=1) < 1:
        # TensorFlow's error there is how mtcnn reports no face
        from mtcnn.utils.images import apply_scales

        return apply_scales(images_normalized, scales_groups)
    pyramid = AreaPyramid(images_normalized)
    return [pyramid.resize(shape) for shape in shapes], scales


def _numpy_extract_patches(images_normalized, bboxes_batch, expected_size=(24, 24)):
    """mtcnn's ``extract_patches`` with the ``crop_and_resize`` of
    :mod:`fersk._tf_image_ops`: TensorFlow's values, bit for bit."""
    shape = images_normalized.shape
    coords = bboxes_batch[:, [2, 1, 4, 3]] / np.asarray([[shape[1], shape[2], shape[1], shape[2]]])
    return crop_and_resize(
        images_normalized, coords, bboxes_batch[:, 0].astype(int), expected_size
    )


def _float32_normalize_images(images):
    """mtcnn's ``normalize_images``, ``(images - 127.5) / 128``, in float32
    for uint8 batches.

    mtcnn computes it in float64, and every later step takes the values as
    float32: for uint8 pixels the result is exact in both (half-integers
    divided by a power of two), so the values are the same, and the batch
    is made, and read by the pyramid and patches, at half the size, with
    no float64 to float32 conversion of the whole batch for the pyramid.
    """
    if getattr(images, "dtype", None) != np.uint8:
        return (images - 127.5) / 128  # as mtcnn does
    normalized = images.astype(np.float32)
    normalized -= np.float32(127.5)
    normalized /= np.float32(128)
    return normalized


# mtcnn 1.0's steps that call TensorFlow's image operations (and the float64
# normalisation before them), and its pyramid's scales, by the module that
# calls them, and their replacements.
_MTCNN_IMAGE_STEPS = (
    ("mtcnn.utils.images", "normalize_images", _float32_normalize_images),
    ("mtcnn.stages.stage_pnet", "build_scale_pyramid", _pyramid_scales),
    ("mtcnn.stages.stage_pnet", "apply_scales", _numpy_apply_scales),
    ("mtcnn.stages.stage_rnet", "extract_patches", _numpy_extract_patches),
    ("mtcnn.stages.stage_onet", "extract_patches", _numpy_extract_patches),
)


@contextlib.contextmanager
def _numpy_mtcnn_image_steps():
    """Run mtcnn with its image pyramid and patches made in NumPy.

    mtcnn 1.0 resizes the whole batch with ``tf.image.resize`` once per
    pyramid level and cuts its patches with ``tf.image.crop_and_resize``,
    handing TensorFlow its float64 batch each time (a conversion of every
    pixel per call), and TensorFlow's area resize is single-threaded: 40% of
    the time of a 640x480 photo on 2 cores went there.
    :mod:`fersk._tf_image_ops` computes the same float32 values, bit for
    bit (tested against TensorFlow), in a fraction of the time, so the
    boxes are unchanged.  Swapped in for fersk's calls only, under
    :func:`_stable_mtcnn_sort`'s lock, and only for the mtcnn that has
    these steps (:func:`_mtcnn_batches_are_exact`).
    """
    import importlib

    modules = [importlib.import_module(name) for name, _, _ in _MTCNN_IMAGE_STEPS]
    saved = [getattr(m, attr) for m, (_, attr, _) in zip(modules, _MTCNN_IMAGE_STEPS)]
    try:
        for m, (_, attr, fast) in zip(modules, _MTCNN_IMAGE_STEPS):
            setattr(m, attr, fast)
        yield
    finally:
        for m, (_, attr, _), original in zip(modules, _MTCNN_IMAGE_STEPS, saved):
            setattr(m, attr, original)


# mtcnn's networks run as TensorFlow graphs: (network, callable, tf.function)
# by the network's id; the network is kept, so its id is not reused.
_MTCNN_GRAPHS = {}

# The smallest image side PNet's convolutions take (its cell is 12 pixels).
_MTCNN_NET_MIN_SIDE = 12


def _mtcnn_graph(network):
    """``network``'s forward pass as one TensorFlow graph, traced once.

    mtcnn calls its Keras networks eagerly: Python dispatches every layer's
    operations one at a time, for each pyramid level and batch of patches,
    and on a 640x480 photo that overhead was most of the time left.  The
    graph (``tf.function`` with the batch and image sides left open, so that
    every pyramid level and number of patches runs the one trace) runs the
    same kernels on the same float32 values: the outputs are equal bit for
    bit (tested), about twice as fast.  XLA (``jit_compile``) would compile
    anew for each shape and its kernels round differently.

    Parameters
    ----------
    network : keras.Model
        PNet, RNet or ONet of an mtcnn stage.

    Returns
    -------
    callable
        Takes the network's input batch and returns its outputs, as
        ``network(batch)`` does.
    """
    entry = _MTCNN_GRAPHS.get(id(network))
    if entry is None or entry[0] is not network:
        import tensorflow as tf

        graph = tf.function(
            network.call,
            input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
        )
        # Its one trace, called directly: the polymorphic function's argument
        # binding cost about 2.7 ms a call, a fifth of a web photo's search.
        concrete = graph.get_concrete_function()

        def run(batch):
            # Too small for the convolutions: Keras raises where the graph
            # would raise TensorFlow's error, which mtcnn reads as "no face".
            if min(batch.shape[1:3]) < _MTCNN_NET_MIN_SIDE:
                return network(batch)
            if getattr(batch, "dtype", None) != np.float32:
                batch = tf.cast(batch, tf.float32)  # as Keras casts its input
            return concrete(tf.convert_to_tensor(batch))

        entry = _MTCNN_GRAPHS[id(network)] = (network, run, graph)
    return entry[1]


@contextlib.contextmanager
def _graph_mtcnn_networks(model):
    """Run ``model``'s stages with their networks as graphs
    (:func:`_mtcnn_graph`): same outputs, bit for bit, in less time.

    Swapped in on fersk's own MTCNN for fersk's calls only, under
    :func:`_stable_mtcnn_sort`'s lock; the Keras networks are put back
    after each call.
    """
    stages = [
        s for s in model.stages if callable(getattr(getattr(s, "_model", None), "call", None))
    ]
    saved = [s._model for s in stages]
    try:
        for stage, network in zip(stages, saved):
            stage._model = _mtcnn_graph(network)
        yield
    finally:
        for stage, network in zip(stages, saved):
            stage._model = network


@functools.lru_cache(maxsize=None)
def _mtcnn_batches_are_exact():
    """Whether the installed mtcnn has the sort :func:`_stable_mtcnn_sort`
    and the image steps :func:`_numpy_mtcnn_image_steps` replace (mtcnn
    1.0); other versions get one image per call, as they are."""
    import importlib

    try:
        from mtcnn.utils import bboxes

        steps = [getattr(importlib.import_module(name), attr, None)
                 for name, attr, _ in _MTCNN_IMAGE_STEPS]
    except ImportError:
        return False
    return all(callable(f) for f in [getattr(bboxes, "sort_by_scores", None), *steps])
