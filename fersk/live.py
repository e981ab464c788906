"""Facial expressions of a live stream: cameras, videos, image sequences.

:func:`stream` reads frames from a camera, a video file, a folder of
images or any iterable of arrays and classifies every face of every frame
with a fitted pipeline that starts with a :class:`~fersk.FaceCropper`
(such as :func:`fersk.pretrained.load`'s).  Faces are followed from frame
to frame (stable track ids, by the overlap of their boxes), their
probabilities are smoothed per track (exponential moving average), and the
detector may run only every ``detect_every`` frames: in between, each
track's last box is cropped with the same FaceCropper geometry and
classified, which is far cheaper than a detection.

:class:`FaceStream` does the same one frame at a time (for a loop that also
draws the frames, as ``fersk live`` does), and :func:`read_frames` gives
the frames of any source :func:`stream` takes.
"""

import glob
import numbers
import os
import re
import time
import warnings

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from . import _image_files
from ._constraints import without_bools
from ._keras_params import finite_outputs
from ._labels import check_class_names, class_names_of
from ._tracking import Tracker
from ._validation import _one_image_with_channels, check_image

__all__ = ["FaceStream", "read_frames", "stream"]

_LIVE_HINT = "pip install 'fersk[live]' (opencv-python-headless<5)"

#: The tracking parameters of FaceStream and stream, with what they allow.
_TRACKING = without_bools({
    "detect_every": [Interval(numbers.Integral, 1, None, closed="left")],
    "alpha": [Interval(numbers.Real, 0, 1, closed="right")],  # 1: no smoothing
    "iou_threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
    "max_missed": [Interval(numbers.Integral, 0, None, closed="left")],
    "detect_scale": [Interval(numbers.Real, 0, 1, closed="right")],
    "views": [StrOptions({"model", "center"})],
})

#: The reading parameters of read_frames and stream.
_READING = without_bools({
    "fps": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "max_frames": [Interval(numbers.Integral, 0, None, closed="left"), None],
})


class _FixedFaces:
    """A FaceCropper detector that "finds" the faces it is given: the
    tracks' boxes (and eyes, for ``align``) between detections."""

    def __init__(self):
        self.faces = []

    def __call__(self, image):
        return [(*box, eyes) for box, eyes in self.faces]


def _check_model(model):
    from sklearn.pipeline import Pipeline

    from .face import FaceCropper

    if not isinstance(model, Pipeline) or not isinstance(model.steps[0][1], FaceCropper) \
            or len(model.steps) < 2:
        raise ValueError(
            "model must be a fitted Pipeline whose first step is a FaceCropper followed "
            f"by a classifier with predict_proba (e.g. fersk.pretrained.load()); got "
            f"{type(model).__name__}."
        )


class FaceStream:
    """Classify the faces of successive frames, following each face.

    Feed frames one at a time to :meth:`update`; each call returns a record
    per face of that frame.  :func:`stream` runs this over a whole source.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        Fitted; its first step a :class:`~fersk.FaceCropper`, its last a
        classifier with ``predict_proba`` (the bundled models are).
    detect_every : int, default=1
        Run the face detector on every ``detect_every``-th frame (the
        first, then every k-th); in between, the faces found by the last
        detection are cropped at their last boxes (the FaceCropper's own
        geometry: margin, size, alignment with the last eyes) and
        classified.  1 detects in every frame.  A frame of another size
        than the last detected one, or one taken whole as a face crop, is
        always detected.
    alpha : float, default=0.5
        Weight of the newest frame in each track's exponential moving
        average of probabilities, in (0, 1]:
        ``smoothed = alpha * proba + (1 - alpha) * previous_smoothed``, the
        first frame of a track taken as it is.  1 switches smoothing off
        (every record's ``"proba"`` is that frame's own answer).
    iou_threshold : float, default=0.3
        Least intersection over union between a detected box and a track's
        last box for the face to continue that track, in (0, 1).
    max_missed : int, default=5
        Detections in a row that may miss a track's face before the track
        ends (a face found again within them keeps its id and smoothing).
    views : {'model', 'center'}, default='model'
        'model': the network's own test-time views (the default,
        ``wild_vgg_fast``, adds the centre window's mirror image for the
        faces the centre leaves unsure, ``test_time_margin``; other
        bundled models one or ten views).  'center': one centre view, no
        mirror -- about four fifths of the default's work per face (a
        tenth for ten views), with slightly different (less accurate)
        answers.
        Applies to fersk's networks (``test_time_crops``/``test_time_flip``),
        those inside a :class:`~fersk.CNNEnsembleClassifier` too
        (:func:`fersk.ensemble.one_view`); other classifiers are used as
        they are.
    detect_scale : float, default=1.0
        Detect faces on a copy of the frame reduced by this factor, in
        (0, 1]; the boxes (and eyes) are mapped back and the faces cropped
        from the full frame.  0.5 makes MTCNN about twice as fast on
        640x480 frames and still finds faces from 24 pixels (at the
        cropper's default ``min_face_size``, a tenth of the shorter side).
    class_names : list of str or None, default=None
        Names of ``model.classes_`` for the records' ``"name"``; None uses
        those of the model's folder (:func:`fersk.pretrained.load`), else
        FER-2013's emotion names for classes 0..6, else ``str(class)``.

    Attributes
    ----------
    n_detections_ : int
        Frames the detector has run on so far.
    n_frames_ : int
        Frames seen so far.

    See Also
    --------
    stream : This over every frame of a camera, a video or a sequence.
    fersk.predict_faces : Every face of independent photos.

    Notes
    -----
    A frame without a face gives no record.  Between detections a face
    that left the picture is still cropped at its last box until the next
    detection; ``detect_every`` trades that lag for speed.  The detector is
    the model's own FaceCropper, so a model whose cropper takes small
    images whole (``precropped_max_side``) does so for small frames too,
    decided on the frame itself whatever ``detect_scale`` (a reduced copy is
    always searched); a ``min_face_size`` in pixels is the frame's pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import pretrained
    >>> from fersk.live import FaceStream
    >>> faces = FaceStream(pretrained.load(), detect_every=5)
    >>> frame = data.astronaut()
    >>> [(r["frame"], r["track"], r["box"], r["name"]) for r in faces.update(frame)]
    [(0, 0, (64.0, 182.0, 107.0, 83.0), 'happy')]
    >>> [(r["frame"], r["track"], r["detected"]) for r in faces.update(frame)]
    [(1, 0, False)]
    """

    @validate_params(_TRACKING, prefer_skip_nested_validation=True)
    def __init__(self, model, *, detect_every=1, alpha=0.5, iou_threshold=0.3, max_missed=5,
                 detect_scale=1.0, views="model", class_names=None):
        from sklearn.base import clone

        from .ensemble import one_view

        _check_model(model)
        self.model = model
        self.detect_scale = float(detect_scale)
        self.views = views
        self.detect_every = int(detect_every)
        self.alpha = float(alpha)
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.classes = list(model.classes_)
        if class_names is None:
            class_names = class_names_of(model)  # a model folder's, else FER-2013's for 0..6
        self.class_names = check_class_names(class_names, self.classes)
        self.cropper = model.steps[0][1]
        # Shallow copies share the fitted networks; only the views differ
        # (the user's model is left as it is), ensemble members' included.
        self.rest = one_view(model[1:]) if views == "center" else model[1:]
        self._net = self.rest[-1]
        # The same cropper, its detector replaced by the tracks' boxes: the
        # crops between detections are framed exactly as detected ones.
        self._fixed = clone(self.cropper).set_params(
            detector=_FixedFaces(), precropped_max_side=None
        )
        # The reduced copy of a frame is no face crop, however small.
        minimum = self.cropper.min_face_size  # pixels of the frame, not of its copy
        if isinstance(minimum, numbers.Integral):
            minimum = max(1, round(minimum * self.detect_scale))
        self._reduced_detector = clone(self.cropper).set_params(
            detector=self.cropper.detector, precropped_max_side=None,  # the same detector
            min_face_size=minimum)
        self._tracker = Tracker(self.iou_threshold, self.max_missed)
        self.n_detections_ = 0
        self.n_frames_ = 0
        self._detected_shape = None

    def reset(self):
        """Forget the tracks (a new video): ids start again from 0.

        Returns
        -------
        self : FaceStream
            The stream, emptied.

        Examples
        --------
        >>> from fersk import pretrained
        >>> from fersk.live import FaceStream
        >>> FaceStream(pretrained.load()).reset().n_frames_
        0
        """
        self._tracker.reset()
        self.n_detections_ = 0
        self.n_frames_ = 0
        self._detected_shape = None
        return self

    def update(self, frame, index=None, time=None):
        """Classify the faces of the next frame.

        Parameters
        ----------
        frame : array-like of shape (height, width[, 3 or 4]) or path
            One image, as :class:`~fersk.FaceCropper` takes it.
        index : int or None, default=None
            The frame's index for the records; None counts the frames fed.
        time : float or None, default=None
            The frame's time in seconds for the records.

        Returns
        -------
        records : list of dict
            One per face, largest first: ``"frame"`` (index), ``"time"``
            (seconds or None), ``"track"`` (id, stable while the face is
            followed), ``"box"`` ``(row, col, height, width)`` in the
            frame's pixels, ``"label"`` (a class of the model, the argmax of
            ``"proba"``), ``"name"`` (its name), ``"proba"`` (smoothed
            probabilities over ``model.classes_``), ``"raw_proba"`` (this
            frame's own), ``"detected"`` (True when the detector ran on
            this frame, False for a box carried from the last detection)
            and ``"kind"`` (as :func:`~fersk.face.predict_faces` says it:
            'detected', or 'precropped' for a frame of at most the
            cropper's ``precropped_max_side`` pixels a side, taken whole as
            a face crop).  Empty when the frame has no face.

        Examples
        --------
        >>> import numpy as np
        >>> from fersk import pretrained
        >>> from fersk.live import FaceStream
        >>> FaceStream(pretrained.load()).update(np.zeros((120, 160), np.uint8))
        []
        """
        if isinstance(frame, (str, os.PathLike)):
            frame = _read_image(frame)
        # Checked first, named as the frame: None or a 0-d array failed on
        # max() of no sizes (detect_scale) or "X: a 1-D input, reshape it",
        # and a refused frame still counted in n_frames_.  Kept as checked:
        # a PIL image upright (EXIF), so that its size is the one compared
        # with the last detection's (a portrait photo stored landscape kept
        # a landscape photo's boxes).
        frame = check_image(frame, "frame", self.cropper.float_max)
        index = self.n_frames_ if index is None else int(index)
        detect = self.n_frames_ % self.detect_every == 0
        self.n_frames_ += 1
        shape = np.shape(frame)[:2]
        # Boxes found on a frame of another size are not this frame's, and a
        # frame taken whole needs no detector: either is found afresh.
        detect = detect or shape != self._detected_shape or self._taken_whole(frame)
        if detect:
            self._detected_shape = shape
            self.n_detections_ += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a frame without a face is no news
                if self.detect_scale < 1 and not self._taken_whole(frame):
                    crops, faces = self._detect_reduced(frame)
                else:
                    crops, faces = self.cropper.crop_faces([frame])
            tracks = self._tracker.update(faces)
        else:
            tracks = self._tracker.active()
            if not tracks:
                return []
            self._fixed.detector.faces = [(t.box, t.eyes) for t in tracks]
            crops, faces = self._fixed.crop_faces([frame])
            # crop_faces orders faces largest first: back to their tracks.
            by_box = {}
            for t in tracks:
                by_box.setdefault(tuple(float(v) for v in t.box), []).append(t)
            tracks = [by_box[f["box"]].pop(0) for f in faces]
        if not len(crops):
            return []
        proba = self._predict_proba(crops)
        # As predict_faces says it: a small frame is a face crop, not searched.
        kind = "precropped" if self._taken_whole(frame) else "detected"
        records = []
        for track, face, p in zip(tracks, faces, proba):
            smoothed = track.smooth(p, self.alpha)
            k = int(np.argmax(smoothed))
            records.append({
                "frame": index,
                "time": None if time is None else float(time),
                "track": track.id,
                "box": tuple(float(v) for v in face["box"]),
                "label": self.classes[k],
                "name": self.class_names[k],
                "proba": smoothed.copy(),
                "raw_proba": np.asarray(p, dtype=np.float64),
                "detected": detect,
                "kind": kind,
            })
        return records

    def _taken_whole(self, frame):
        """Whether the model's cropper takes this frame whole as a face crop
        (``precropped_max_side``): decided on the frame, never on its reduced copy."""
        side = self.cropper.precropped_max_side
        return side is not None and max(np.shape(frame)[:2]) <= side

    def _detect_reduced(self, frame):
        """Detect on the frame reduced by ``detect_scale``; crop the full frame."""
        from .face import _downscale

        # As FaceCropper reads a frame: a PIL image as its file, (h, w, 1) as grey.
        image = check_image(frame, "frame", self.cropper.float_max)
        if image.ndim == 3:
            image = image[..., :3]
        small = _downscale(image, self.detect_scale)
        back = image.shape[0] / small.shape[0], image.shape[1] / small.shape[1]
        found = self._reduced_detector.detect([small])[0]
        self._fixed.detector.faces = [(
            (f["box"][0] * back[0], f["box"][1] * back[1], f["box"][2] * back[0],
             f["box"][3] * back[1]),
            None if f["eyes"] is None else tuple((r * back[0], c * back[1]) for r, c in f["eyes"]),
        ) for f in found]
        if not found:
            return [], []
        return self._fixed.crop_faces([image])

    def _predict_proba(self, crops):
        """``model[1:].predict_proba(crops)``, through the network's traced
        predict step when it is a fersk Keras network.

        ``predict_proba`` calls the network eagerly for one small batch
        (tracing would not pay for one call), but a stream sends a batch of
        the same few shapes every frame: the traced (compiled) step is 5-10
        times faster there.  Batches are padded to a power of two so that
        a changing number of faces traces only a few shapes.  Other final
        steps use their own ``predict_proba``.
        """
        net = self._net
        if not all(hasattr(net, name) for name in
                   ("_inference_model", "_validate_X", "_outputs_to_proba", "_gated_outputs")):
            return self.rest.predict_proba(crops)
        x = self.rest[:-1].transform(crops) if len(self.rest) > 1 else crops
        net._validate_params()
        x = net._validate_X(x, reset=False)

        def traced(x, views):
            n = len(x)
            size = 1 << (n - 1).bit_length()
            if size > n:
                x = np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)])
            outputs = net._inference_model(views).predict_on_batch(x)
            # As predict_proba: a diverged network's NaN refused, not read as class 0.
            return finite_outputs(np.asarray(outputs, dtype=np.float64)[:n], type(net).__name__)

        # The network's test-time views, gated by its test_time_margin as in predict_proba.
        return net._outputs_to_proba(net._gated_outputs(x, traced))


def _is_image_file(path):
    return os.path.splitext(path)[1].lower() in _image_files.IMAGE_EXTENSIONS


def _is_video_file(path):
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _image_files.VIDEO_EXTENSIONS:
        return True
    if suffix in _image_files.ANIMATABLE:
        from PIL import Image

        try:
            with Image.open(path) as im:
                return bool(getattr(im, "is_animated", False))
        except OSError:
            return False
    return False


def _read_image(path):
    from PIL import Image

    try:
        with Image.open(path) as im:
            return _image_files.pil_to_uint8(_image_files.open_image(im),
                                             where=f"source {os.fspath(path)!r}")
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"source: cannot read the image {os.fspath(path)!r} ({exc}).") from exc


def _camera_frames(index, max_frames):
    try:
        import cv2
    except ImportError:
        raise ImportError(
            f"source={index!r} is a camera, which needs OpenCV: {_LIVE_HINT}. Video files "
            "and image sequences need only imageio and av (pip install 'fersk[video]')."
        ) from None
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise ValueError(f"source={index!r}: cannot open camera {index} (is it connected?).")
    try:
        start = time.monotonic()
        n = 0
        while max_frames is None or n < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            yield n, time.monotonic() - start, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            n += 1
    finally:
        capture.release()


def _sequence_frames(items, fps, max_frames):
    n = 0
    for item in items:
        for frame in _frames_of(item):
            if max_frames is not None and n >= max_frames:
                return
            yield n, (None if fps is None else n / fps), frame
            n += 1


def _frames_of(item):
    """The frames of one item of a sequence: an array is one; an image file
    one, an animated image or a multi-page TIFF each of its frames in place
    (its first alone would pass over the rest without a word)."""
    if not isinstance(item, (str, os.PathLike)):
        yield item
    elif _is_video_file(item) and os.path.splitext(item)[1].lower() in _image_files.ANIMATABLE:
        try:
            for _, _, frame in _image_files.iter_video(item):
                yield frame
        except _image_files.VideoError as exc:
            raise ValueError(f"source: cannot read {os.fspath(item)!r} ({exc}).") from None
    else:
        yield _read_image(item)


@validate_params(
    {"source": "no_validation", **_READING},  # source: checked below, by kind
    prefer_skip_nested_validation=True,
)
def read_frames(source, *, fps=None, max_frames=None):
    """The frames of a camera, a video, an image sequence or arrays.

    Parameters
    ----------
    source : int, str, os.PathLike or iterable
        - int: a camera index (OpenCV, ``pip install 'fersk[live]'``);
          frames come until the camera stops or ``max_frames``.
        - a video file (.mp4, .avi, .mov, .mkv, .webm... or an animated
          GIF/WebP/PNG; read with imageio and PyAV, ``fersk[video]``).
        - a folder: its image files in name order, numbers by value
          (``frame2`` before ``frame10``; its other files are not read,
          with a warning naming them); a glob pattern
          (``"frames/*.png"``): the matching files in that order; an
          image file: that one frame.  An animated image or multi-page
          TIFF among a sequence's files gives each of its frames, in place.
        - an ndarray ``(n_frames, height, width[, channels])``, or any
          iterable (list, generator) of image arrays or image paths.  A
          single frame must be wrapped in a list.
    fps : float or None, default=None
        Frames per second of an image sequence or iterable, for the times;
        None gives them no time.  Videos use their frames' own times
        (variable frame rates too), cameras the clock.
    max_frames : int or None, default=None
        Stop after this many frames (cameras never end otherwise).

    Yields
    ------
    index : int
        The frame's index in the source.
    time : float or None
        Its time in seconds.
    frame : ndarray
        The frame (RGB or grey; arrays as given).

    Raises
    ------
    ValueError
        A source that is none of these, a missing file, an unreadable
        video or image (naming it), a camera that cannot be opened.
    ImportError
        A camera without OpenCV (saying what to install).

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.live import read_frames
    >>> [(i, t, f.shape) for i, t, f in read_frames(np.zeros((2, 4, 6)), fps=10)]
    [(0, 0.0, (4, 6)), (1, 0.1, (4, 6))]
    """
    if isinstance(source, numbers.Integral) and not isinstance(source, bool):
        if source < 0:  # OpenCV 4.14's VideoCapture(-1) killed the process (SIGSEGV)
            raise ValueError(f"source: a camera index is 0 or more; got {int(source)}.")
        return _camera_frames(int(source), max_frames)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            names = [n for n in os.listdir(path) if not n.startswith(".")]
            # A folder named like an image (``x.png/``) is no frame.
            files = sorted((os.path.join(path, n) for n in names if _is_image_file(n)
                            and not os.path.isdir(os.path.join(path, n))), key=_natural_key)
            others = sorted(n for n in names if not _is_image_file(n)
                            and os.path.isfile(os.path.join(path, n)))
            if not files:
                raise ValueError(f"source: the folder {path!r} has no image files.")
            if others:  # a frame in another format (.heic) would leave a gap in the sequence
                warnings.warn(
                    f"read_frames: {len(others)} file(s) in {path!r} are not image files "
                    f"({', '.join(_image_files.IMAGE_EXTENSIONS)}) and are not read: "
                    f"{others[:5]}.", UserWarning, stacklevel=2)
            return _sequence_frames(files, fps, max_frames)
        if os.path.isfile(path):
            if _is_video_file(path):
                return _video_frames(path, max_frames)
            return _sequence_frames([path], fps, max_frames)
        if glob.has_magic(path):
            files = sorted((f for f in glob.glob(path) if _is_image_file(f)
                            and not os.path.isdir(f)), key=_natural_key)
            if not files:
                raise ValueError(f"source: no image file matches {path!r}.")
            return _sequence_frames(files, fps, max_frames)
        raise ValueError(f"source: no such file or folder: {path!r}.")
    if isinstance(source, np.ndarray):
        if source.ndim not in (3, 4):
            raise ValueError(
                "source: an array must hold frames, of shape (n_frames, height, width"
                f"[, channels]); got shape {source.shape}."
            )
        a, b, c = source.shape[:3]
        if source.ndim == 3 and _one_image_with_channels(None, source.shape, reset=True):
            raise ValueError(
                f"source has shape {source.shape}: one {a}x{b} image with {c} channel"
                f"{'s' if c > 1 else ''}, not {a} frames {c} pixels wide; pass [image] "
                "(or image[np.newaxis]) for one image."
            )
        return _sequence_frames(source, fps, max_frames)
    try:
        items = iter(source)
    except TypeError:
        raise ValueError(
            "source must be a camera index (int), a video file, a folder or glob of "
            f"images, or an iterable of frames; got {type(source).__name__}."
        ) from None
    return _sequence_frames(items, fps, max_frames)


def _natural_key(path):
    """Sort key reading runs of digits as numbers: ``frame2`` before
    ``frame10`` (exported frames are often numbered without zeros)."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", path)]


def _video_frames(path, max_frames):
    n = 0
    try:
        for index, t, frame in _image_files.iter_video(path):
            if max_frames is not None and n >= max_frames:
                return
            yield index, t, frame
            n += 1
    except _image_files.VideoError as exc:
        raise ValueError(f"source: {path!r}: {exc}") from None


@validate_params({**_TRACKING, **_READING}, prefer_skip_nested_validation=True)
def stream(model, source, *, detect_every=1, alpha=0.5, iou_threshold=0.3, max_missed=5,
           detect_scale=1.0, views="model", fps=None, max_frames=None, class_names=None):
    """Classify every face of every frame of a camera, video or sequence.

    A generator: frames are read, classified and their records yielded one
    frame at a time, so a camera runs for as long as it is iterated.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        Fitted, its first step a :class:`~fersk.FaceCropper` (the bundled
        models: ``fersk.pretrained.load()``).
    source : int, str, os.PathLike or iterable
        A camera index, a video file, a folder or glob pattern of images,
        or an iterable of image arrays or paths (see :func:`read_frames`).
    detect_every : int, default=1
        Detect faces on every ``detect_every``-th frame; in between, crop
        and classify the tracks' last boxes (see :class:`FaceStream`).
    alpha : float, default=0.5
        Weight of the newest frame in the per-track exponential moving
        average of probabilities; 1 is no smoothing.
    iou_threshold : float, default=0.3
        Least box overlap (IoU) for a detected face to continue a track.
    max_missed : int, default=5
        Detections that may miss a face before its track ends.
    detect_scale : float, default=1.0
        Detect on a copy of each frame reduced by this factor (faster);
        faces are cropped from the full frame.
    views : {'model', 'center'}, default='model'
        The network's own test-time views, or one centre view (faster;
        see :class:`FaceStream`).
    fps : float or None, default=None
        Frame rate of a sequence or iterable, for the records' times.
    max_frames : int or None, default=None
        Stop after this many frames.
    class_names : list of str or None, default=None
        Names of the model's classes (default: its folder's, else
        FER-2013's for 0..6).

    Yields
    ------
    record : dict
        One per face per frame, frames in order: ``"frame"``, ``"time"``,
        ``"track"``, ``"box"`` ``(row, col, height, width)``, ``"label"``,
        ``"name"``, ``"proba"`` (smoothed), ``"raw_proba"``, ``"detected"``,
        ``"kind"`` (see :meth:`FaceStream.update`).  Frames without a face yield
        nothing.

    See Also
    --------
    FaceStream : The same, one frame at a time.
    fersk.predict_faces : Every face of independent photos.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import pretrained, stream
    >>> frames = [data.astronaut(), np.roll(data.astronaut(), 8, axis=1)]
    >>> for r in stream(pretrained.load(), frames, fps=25):
    ...     print(r["frame"], r["time"], r["track"], r["box"], r["name"])
    0 0.0 0 (64.0, 182.0, 107.0, 83.0) happy
    1 0.04 0 (62.0, 188.0, 109.0, 86.0) happy

    A webcam, detecting every third frame (needs ``fersk[live]``)::

        for record in stream(pretrained.load(), 0, detect_every=3):
            print(record["track"], record["name"])
    """
    faces = FaceStream(model, detect_every=detect_every, alpha=alpha,
                       iou_threshold=iou_threshold, max_missed=max_missed,
                       detect_scale=detect_scale, views=views, class_names=class_names)
    for index, t, frame in read_frames(source, fps=fps, max_frames=max_frames):
        yield from faces.update(frame, index, t)
