"""MTCNN (the ``mtcnn`` package's three networks) as ONNX graphs, with
its NumPy glue: :class:`OnnxMTCNN`."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import validate_params

from .._tf_image_ops import AreaPyramid, crop_and_resize
from .._mtcnn_pyramid import _pyramid_scales
from ._common import OPSET, _atomic_write, _convert, _digest, _session, _tf2onnx, cache_dir

# The numpy glue below follows the mtcnn package (1.0, MIT licence:
# mtcnn/utils/bboxes.py, images.py, landmarks.py and the three stages) step
# by step, with the same dtypes, so that the boxes are the package's up to
# float rounding; its TensorFlow image operations (tf.image.resize with
# method="area", tf.image.crop_and_resize) are fersk._tf_image_ops, equal
# to TensorFlow's bit for bit.  Sorts by score are stable, as fersk pins
# them for the Keras path (fersk.face._stable_mtcnn_sort).

_MTCNN_NETS = ("pnet", "rnet", "onet")


def _mtcnn_weights_digest():
    """Hash of the installed mtcnn package's weight files, found without
    importing it (importing mtcnn imports TensorFlow); None without it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("mtcnn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"
    files = [folder / f"{net}.lz4" for net in _MTCNN_NETS]
    if not all(f.is_file() for f in files):
        return None
    return _digest(*(f.read_bytes() for f in files), OPSET)


#: MTCNN's graphs as fersk ships them (exported by :func:`export_mtcnn` from
#: mtcnn 1.0.0's weights): a first prediction on ONNX Runtime needs no export,
#: so no TensorFlow, where the installed package's weights are these.
SHIPPED = Path(__file__).resolve().parent / "graphs"


def _mtcnn_paths(folder=None, digest=None):
    """The three ONNX files of MTCNN in ``folder``; by default the cache's,
    else those fersk ships when the cache lacks them (the same weights)."""
    if folder is None:
        cached = _mtcnn_paths(cache_dir(), digest)
        if cached is not None and all(p.is_file() for p in cached.values()):
            return cached
        shipped = _mtcnn_paths(SHIPPED, digest)
        if shipped is not None and all(p.is_file() for p in shipped.values()):
            return shipped
        return cached
    folder = Path(folder)
    digest = digest or _mtcnn_weights_digest()
    if digest is None:  # mtcnn not installed here: the files exported elsewhere
        found = sorted(folder.glob("mtcnn-*-pnet.onnx"), key=lambda p: p.stat().st_mtime)
        if not found:
            return None
        digest = found[-1].name[len("mtcnn-") : -len("-pnet.onnx")]
    return {net: folder / f"mtcnn-{digest}-{net}.onnx" for net in _MTCNN_NETS}


@validate_params(
    {"folder": [str, os.PathLike, None], "overwrite": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def export_mtcnn(folder=None, *, overwrite=False):
    """Export the ``mtcnn`` package's PNet, RNet and ONet to ONNX files.

    Needs TensorFlow, ``tf2onnx`` and ``mtcnn``.  The files are named
    ``mtcnn-<hash>-pnet.onnx`` (and ``rnet``, ``onet``), the hash of the
    package's weight files; :class:`OnnxMTCNN` reads them.

    Parameters
    ----------
    folder : str or path-like or None, default=None
        Where to write them; None means :func:`cache_dir`.
    overwrite : bool, default=False
        Export again files that exist already.

    Returns
    -------
    paths : dict
        ``{"pnet": path, "rnet": path, "onet": path}``.

    Examples
    --------
    >>> from fersk.onnx import export_mtcnn
    >>> sorted(export_mtcnn())  # doctest: +SKIP
    ['onet', 'pnet', 'rnet']
    """
    # Into the cache (or folder), never into fersk's own shipped graphs.
    paths = _mtcnn_paths(folder if folder is not None else cache_dir(),
                         _mtcnn_weights_digest() or "missing")
    if not overwrite and all(p.is_file() for p in paths.values()):
        return paths
    tf, _ = _tf2onnx()
    try:
        from mtcnn.stages import StageONet, StagePNet, StageRNet
    except ImportError as exc:
        raise ImportError(f"exporting MTCNN needs the mtcnn package ({exc}): pip install mtcnn.") from exc
    if _mtcnn_weights_digest() is None:  # pragma: no cover
        raise ImportError("the installed mtcnn package has no weight files to export.")
    shapes = {"pnet": (None, None), "rnet": (24, 24), "onet": (48, 48)}
    for net, stage in zip(_MTCNN_NETS, (StagePNet, StageRNet, StageONet)):
        model = stage().model
        signature = [tf.TensorSpec((None, *shapes[net], 3), tf.float32, name="images")]

        def run(images, model=model):
            return [tf.identity(out) for out in model(images)]

        # fersk's mark (as on every network graph): fersk.cache removes no graph without it.
        _atomic_write(paths[net], _convert(run, signature, metadata={"fersk_graph": f"mtcnn-{net}"}))
    return paths


def _mtcnn_missing_message(folder=None, paths=None):
    if folder is None:
        return (
            f"detector='mtcnn-onnx' needs MTCNN exported to ONNX in {cache_dir()}; run "
            "`fersk export` (or fersk.onnx.export_mtcnn()) once where TensorFlow is installed."
        )
    wanted = (f"the files {sorted(p.name for p in paths.values())} (named for the installed "
              "mtcnn package's weights)" if paths else "files mtcnn-<weights>-{pnet,rnet,onet}.onnx")
    return (
        f"OnnxMTCNN(folder={str(folder)!r}): {wanted} are not all there; export them with "
        f"fersk.onnx.export_mtcnn(folder={str(folder)!r}) where TensorFlow is installed, "
        "with the same mtcnn version."
    )


def _sort_by_scores(tensor, scores, ascending=True):
    return tensor[np.argsort(scores if ascending else -scores, kind="stable")]


def _pad_stack(images):
    """mtcnn's pad_stack_np with the default "center" justification."""
    sizes = np.stack([img.shape for img in images], axis=0)
    diff = sizes.max(axis=0, keepdims=True) - sizes
    mod = diff % 2
    diff = diff - mod
    pad_mask = np.asarray([[[0.5, 0.5], [0.5, 0.5], [0, 0]]])
    mod_mask = np.asarray([[[0, 1], [0, 1], [0, 0]]])
    pad = (pad_mask * diff[:, :, None] + mod_mask * mod[:, :, None]).astype(int)
    padded = np.stack([np.pad(img, p) for img, p in zip(images, pad)], axis=0)
    return padded, sizes, pad


def _generate_bounding_box(bbox_reg, bbox_class, threshold, strides=2, cell_size=12):
    confidence = bbox_class[:, :, :, 1]
    index = np.stack(np.where(confidence > threshold))
    reg_x1, reg_y1, reg_x2, reg_y2 = np.transpose(bbox_reg[index[0], index[1], index[2]], (1, 0))
    strides = np.asarray([[1], [strides], [strides]])
    up_left = index * strides + np.asarray([[0], [1], [1]])
    bottom_right = index * strides + np.asarray([[0], [cell_size], [cell_size]])
    reg_w = bottom_right[2] - up_left[2]
    reg_h = bottom_right[1] - up_left[1]
    x1 = up_left[2] + reg_x1 * reg_w
    y1 = up_left[1] + reg_y1 * reg_h
    x2 = bottom_right[2] + reg_x2 * reg_w
    y2 = bottom_right[1] + reg_y2 * reg_h
    boxes = np.stack(
        [index[0], x1, y1, x2, y2, confidence[index[0], index[1], index[2]]], axis=0
    ).T
    return _sort_by_scores(boxes, boxes[:, -1], ascending=False)


def _iou(boxes, method):
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    a, b = boxes[None], boxes[:, None]
    top = np.maximum(a[:, :, 0], b[:, :, 0])
    left = np.maximum(a[:, :, 1], b[:, :, 1])
    bottom = np.minimum(a[:, :, 2], b[:, :, 2])
    right = np.minimum(a[:, :, 3], b[:, :, 3])
    inter = np.maximum(0, bottom - top) * np.maximum(0, right - left)
    if method == "union":
        return inter / (area[:, None] + area[None, :] - inter)
    return inter / np.minimum(area[:, None], area[None, :])


def _nms(boxes, threshold, method="union", initial_sort=True):
    if initial_sort:
        boxes = _sort_by_scores(boxes, boxes[:, 5], ascending=False)
    result = []
    for image_id in np.unique(boxes[:, 0]):
        target = boxes[boxes[:, 0] == image_id]
        iou = _iou(target[:, 1:5], method)
        allowed = np.triu(np.ones((len(target), len(target))), k=1)
        failed = (iou > threshold).astype(int)
        keep = np.where((failed * allowed).sum(axis=0) == 0)[0]
        result.append(target[keep])
    return np.concatenate(result, axis=0) if result else np.empty((0, boxes.shape[1]))


def _resize_to_square(boxes):
    boxes = boxes.copy()
    h = boxes[:, 4] - boxes[:, 2]
    w = boxes[:, 3] - boxes[:, 1]
    largest = np.maximum(w, h)
    boxes[:, 1] = boxes[:, 1] + w * 0.5 - largest * 0.5
    boxes[:, 2] = boxes[:, 2] + h * 0.5 - largest * 0.5
    boxes[:, 3:5] = boxes[:, 1:3] + np.tile(largest, (2, 1)).T
    return boxes


def _adjust_boxes(boxes, offsets):
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    boxes[:, 1:5] += offsets * np.stack([w, h, w, h], axis=-1)
    return boxes


def _extract_patches(images, boxes, size):
    shape = images.shape
    coords = boxes[:, [2, 1, 4, 3]] / np.asarray([[shape[1], shape[2], shape[1], shape[2]]])
    return crop_and_resize(images, coords, boxes[:, 0].astype(int), size)


class OnnxMTCNN:
    """MTCNN (Zhang et al., 2016) as the ``mtcnn`` package runs it, on ONNX Runtime.

    The package's three networks, exported by :func:`export_mtcnn`, with
    its glue in NumPy: the same boxes, confidences and landmarks as
    ``mtcnn.MTCNN().detect_faces`` (with fersk's stable sort by score) up
    to float rounding, without TensorFlow.  ``FaceCropper(detector=
    "mtcnn-onnx")`` uses it; it is rarely needed directly.

    Parameters
    ----------
    folder : str or path-like or None, default=None
        Where the exported files are; None means :func:`cache_dir`, else
        the graphs fersk ships (exported from the weights of mtcnn 1.0.0,
        used where the installed package has the same weights or none).

    Examples
    --------
    >>> from skimage import data
    >>> from fersk.onnx import OnnxMTCNN
    >>> faces = OnnxMTCNN().detect_faces([data.astronaut()])[0]  # doctest: +SKIP
    >>> sorted(faces[0])  # doctest: +SKIP
    ['box', 'confidence', 'keypoints']
    """

    def __init__(self, folder=None):
        paths = _mtcnn_paths(folder)
        if paths is None or not all(p.is_file() for p in paths.values()):
            raise FileNotFoundError(_mtcnn_missing_message(folder, paths))
        self.paths = paths
        # MTCNN runs many short networks (a pyramid level each) between
        # steps in NumPy: threads spinning between runs took the CPU those
        # steps, and other processes, need (half the speed on 2 busy cores).
        self._sessions = {net: _session(p, spinning=False) for net, p in paths.items()}

    def _run(self, net, x):
        session = self._sessions[net]
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})

    def detect_faces(self, images, min_face_size=20, scale_factor=0.709, threshold_pnet=0.6,
                     threshold_rnet=0.7, threshold_onet=0.8, nms_pnet1=0.5, nms_pnet2=0.7,
                     nms_rnet=0.7, nms_onet=0.7):
        """Faces in a batch of RGB images, as ``mtcnn.MTCNN.detect_faces``.

        Parameters
        ----------
        images : list of ndarray of shape (height, width, 3)
            uint8 RGB images (of one shape for exact batch results).
        min_face_size : float, default=20
            Smallest face searched for, in pixels (at most 20, as mtcnn
            1.0 needs).
        scale_factor, threshold_pnet, threshold_rnet, threshold_onet, \
nms_pnet1, nms_pnet2, nms_rnet, nms_onet : float
            As mtcnn's parameters of the same names (their defaults).

        Returns
        -------
        faces : list of list of dict
            Per image, its faces: ``box`` ``[x, y, width, height]`` (ints),
            ``confidence`` and ``keypoints`` (``left_eye``, ``right_eye``,
            ``nose``, ``mouth_left``, ``mouth_right``, each ``[x, y]``).

        Examples
        --------
        See :class:`OnnxMTCNN`.
        """
        images = [np.asarray(img) for img in images]
        n = len(images)
        if n == 0:
            return []
        padded, shapes, pad = _pad_stack(images)
        if padded.dtype == np.uint8:  # exact in float32: mtcnn's float64 values
            normalized = padded.astype(np.float32)
            normalized -= np.float32(127.5)
            normalized /= np.float32(128)
        else:
            normalized = ((padded - 127.5) / 128).astype(np.float32)
        boxes = self._stages(normalized, shapes, min_face_size, scale_factor, threshold_pnet,
                             threshold_rnet, threshold_onet, nms_pnet1, nms_pnet2, nms_rnet,
                             nms_onet)
        if boxes is None:
            return [[] for _ in range(n)]
        boxes = self._postprocess(boxes, shapes, pad)
        return self._to_json(boxes, n)

    def _stages(self, normalized, shapes, min_face_size, scale_factor, t_pnet, t_rnet, t_onet,
                nms_pnet1, nms_pnet2, nms_rnet, nms_onet):
        # PNet on every pyramid level (of the image with the most levels).
        groups = [_pyramid_scales(s[1], s[0], min_face_size, scale_factor) for s in shapes]
        scales = groups[int(np.argmax([g.shape[0] for g in groups]))]
        batch = len(normalized)
        pyramid = AreaPyramid(normalized)
        proposals = []
        for scale in scales:
            new_shape = (np.asarray(normalized.shape[1:3]) * scale).astype(np.int32)
            if new_shape.min() < 12:  # TensorFlow fails there: mtcnn reports no face
                return None
            level = pyramid.resize(new_shape)
            reg, cls = self._run("pnet", level)
            b = _generate_bounding_box(reg, cls, t_pnet)
            b[:, 1:5] = b[:, 1:5] / np.expand_dims(np.asarray([scale] * batch)[b[:, 0].astype(int)], -1)
            proposals.append(_nms(b, nms_pnet1, "union", initial_sort=False))
        boxes = np.concatenate(proposals, axis=0) if proposals else np.empty((0, 6))
        boxes = _resize_to_square(_nms(boxes, nms_pnet2, "union"))
        if not len(boxes):
            return None
        # RNet refines them.
        offsets, scores = self._run("rnet", _extract_patches(normalized, boxes, (24, 24)))
        boxes[:, -1] = scores[:, -1]
        boxes = _adjust_boxes(boxes, offsets)
        boxes = boxes[np.where(boxes[:, -1] > t_rnet)[0]]
        boxes = _resize_to_square(_nms(boxes, nms_rnet, "union"))
        if not len(boxes):
            return None
        # ONet gives the final boxes and the landmarks.
        offsets, landmarks, scores = self._run("onet", _extract_patches(normalized, boxes, (48, 48)))
        landmarks = landmarks.copy()
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        landmarks[:, 0:5] = w * landmarks[:, 0:5] + boxes[:, 1:2] - 1
        landmarks[:, 5:10] = h * landmarks[:, 5:10] + boxes[:, 2:3] - 1
        boxes[:, -1] = scores[:, -1]
        boxes = _adjust_boxes(boxes, offsets)
        boxes = np.concatenate([boxes, landmarks], axis=-1)
        boxes = boxes[np.where(boxes[:, 5] > t_onet)[0]]
        return _nms(boxes, nms_onet, "min")

    @staticmethod
    def _postprocess(boxes, shapes, pad):
        boxes = boxes.copy()
        # mtcnn's fix_bboxes_offsets, each box by its own image's pad (mtcnn
        # pairs the k-th image with boxes with the k-th pad: boxes shift
        # when an image before them found none)
        for image_id in np.unique(boxes[:, 0]):
            p = pad[int(image_id)]
            sel = boxes[:, 0] == image_id
            boxes[np.ix_(sel, [1, 3])] -= p[1, 0]
            boxes[np.ix_(sel, [2, 4])] -= p[0, 0]
            boxes[np.ix_(sel, [6, 7, 8, 9, 10])] -= p[1, 0]
            boxes[np.ix_(sel, [11, 12, 13, 14, 15])] -= p[0, 0]
        # limit_bboxes (fit_to_image=True, landmarks left alone)
        expected = shapes[boxes[:, 0].astype(int)]
        for col, dim in ((1, 1), (3, 1), (2, 0), (4, 0)):
            boxes[:, col] = np.minimum(np.maximum(boxes[:, col], 0), expected[:, dim] - 1)
        return boxes

    @staticmethod
    def _to_json(boxes, n):
        out = []
        names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        for image_id in range(n):
            faces = []
            for b in boxes[boxes[:, 0] == image_id]:
                x1, y1 = b[1], b[2]
                box = np.asarray([x1, y1, b[3] - x1, b[4] - y1]).round().astype(int)
                lm = b[6:16].round().astype(int)
                faces.append({
                    "box": box.tolist(),
                    "confidence": b[5],
                    "keypoints": {k: [lm[i], lm[i + 5]] for i, k in enumerate(names)},
                })
            out.append(faces)
        return out
