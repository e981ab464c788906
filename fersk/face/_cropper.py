"""The cropper: :class:`FaceCropper`, a scikit-learn transformer over photos.

It validates its parameters and input, splits the images into chunks for
joblib, runs the per-image work of :mod:`fersk.face._records` on each
(detection through :mod:`fersk.face._detectors`) and gathers the results.
"""

import math
import numbers

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from .._constraints import N_JOBS, ImageShape, IntPair, without_bools
from .._image_files import array_to_uint8
from .._progress import Progress
from .._validation import (
    ImageBatchOutputMixin,
    check_image,
    image_feature_names,
    restore_layout,
    validate_images,
)
from ._detectors import (
    _BACKENDS,
    _MTCNN_HINT,
    _OPENCV_HINT,
    _check_backend,
    _chunk,
    _Config,
    _is_precropped,
)
from ._geometry import _is_own_crop
from ._inputs import _as_image_list, _is_path
from ._records import _crop_every_face, _crop_one, _detect_one, _warn_no_face

__all__ = ["FaceCropper"]

#: Largest ``size`` side: a crop is a network's input (48 to a few hundred
#: pixels); (100000, 100000) would be 10 GB a crop, found only at predict.
MAX_CROP_SIDE = 4096


# Images per task: small enough for progress reports and load balancing.
_MAX_CHUNK = 64


class FaceCropper(ImageBatchOutputMixin, TransformerMixin, BaseEstimator):
    """Find the face in each image, crop it, optionally align it, resize it.

    Each input image gives exactly one output crop, in order: the largest
    face found, widened to the output's aspect ratio, enlarged by
    ``margin``, optionally rotated so that the eyes are level, and resized
    (with anti-aliasing) to ``size``.  Images without a face are never
    dropped: ``on_no_face`` says what they become.

    Parameters
    ----------
    detector : {'mtcnn', 'mtcnn-onnx', 'skimage', 'opencv'}, callable or None, \
            default='mtcnn'
        Face detector.

        - 'mtcnn': the MTCNN network of the ``mtcnn`` package (a dependency
          of fersk; its weights ship in the wheel), run on the CPU, with eye
          keypoints for alignment and a confidence per face.  Built once
          per process; images whose searched copies have the same size go
          through its networks together (see Notes).
        - 'mtcnn-onnx': the same networks exported to ONNX and run by
          ONNX Runtime, their glue in NumPy (:class:`fersk.onnx.OnnxMTCNN`):
          the same faces without TensorFlow.  Needs ``pip install
          'fersk[onnx]'`` and the networks exported once where TensorFlow
          is installed (``fersk export``).
        - 'skimage': scikit-image's multi-block LBP frontal-face cascade
          (:class:`skimage.feature.Cascade`), without TensorFlow.  It gives
          no landmarks, so ``align=True`` is refused.
        - 'opencv': OpenCV's Haar cascade ``haarcascade_frontalface_default``
          on the histogram-equalised grey image, and ``haarcascade_eye`` in
          the upper part of the face for alignment.  Needs OpenCV 4
          (``pip install 'opencv-python-headless<5'``; OpenCV 5 dropped the
          cascades).
        - a callable ``detector(image) -> list of faces``: ``image`` is one
          input image (``(h, w)`` grey or ``(h, w, 3)`` RGB, alpha dropped)
          as uint8, converted by the pixel rule of every input (floats from
          0 to ``float_max`` scaled to 0-255; see Notes); each face is
          ``(row, col, height, width)`` of its box, or ``(row, col, height,
          width, landmarks)`` with ``landmarks`` the two eye centres
          ``((row, col), (row, col))`` or a mapping with 'left_eye' and
          'right_eye' ``(row, col)`` entries (or None).
        - None: no detection; every image is taken to be a face crop already
          (the whole image is the face box), e.g. FER-2013.  See Notes.

    size : int or tuple of (int, int), default=(48, 48)
        Output ``(height, width)``; an int means a square.  Each side is at
        most 4096 pixels (``fersk.face.MAX_CROP_SIDE``): larger is refused by
        :meth:`fit`, not found out of memory at prediction.
    margin : float, default=0.0
        Fraction of the face box added on each side (0.1 makes the crop 20%
        larger; negative values, above -0.5, crop tighter).  0 frames
        faces best for networks trained on FER-2013, with MTCNN's boxes on
        web photos and with the cascade's on FER faces (see Notes).
        Parts of the crop outside the image repeat the edge pixels.
    align : bool, default=False
        Rotate each crop about the face centre so that the eyes are level.
        Needs eye landmarks: 'mtcnn', 'opencv', or a callable that returns
        them; refused for 'skimage' and None.  A face whose eyes are not
        found is cropped unrotated (its angle in :meth:`crop`'s info is NaN).
    color : bool, default=False
        Output RGB crops ``(n, height, width, 3)`` instead of grey ones.
        Grey inputs are repeated over the three channels; alpha is dropped.
    on_no_face : {'whole', 'center', 'raise'}, default='whole'
        What an image without a face becomes: 'whole' the whole image
        resized to ``size`` (aspect not kept); 'center' the largest centred
        region with the output's aspect ratio, resized; 'raise' a
        ValueError naming the image (and its file).  With 'whole' and
        'center' a :class:`NoFaceWarning` gives the count and the first
        indices; :meth:`crop` returns them all.

        The no-face policy of fersk: the bundled pipelines use 'whole', so
        ``model.predict`` labels every image, and ``fersk predict`` does the
        same by default, marking such rows "none (whole image)" (its
        ``--on-no-face skip`` reports "no face" instead; see
        :ref:`the no-face policy <no-face-policy>`).  :func:`predict_faces` says which records
        had no face (``"kind"`` 'none').
    min_face_size : float or int, default=0.1
        Smallest face searched for: a float is a fraction of the image's
        shorter side, an int is pixels (as scikit-learn's ``max_features``
        reads floats and ints); never below the detector's own window (24
        pixels for the cascades, 12 for MTCNN).  Larger values are faster
        and ignore small background faces.  Large photos are searched on a
        reduced copy (longest side 1024 pixels for the cascades, 640 for
        MTCNN) unless that would shrink this smallest face below the
        detector's window: a 99-pixel face is found in a 10000 x 10000
        photo with ``min_face_size=99``.
    precropped_max_side : int or None, default=None
        Images whose height and width are both at most this many pixels
        are face crops already: the whole image is the face (as with
        ``detector=None``), without detection.  FER-2013's faces are 48 x
        48; the bundled models use 64, so their pipelines classify such
        crops exactly as their networks do.  None: every image goes
        through the detector.
    scale_factor : float, default=1.1
        Growth of the search window from one scale to the next (cascades
        only; 'opencv' ``scaleFactor``).  Smaller is slower and finds more.
    step_ratio : float, default=1.0
        Search step relative to the window scale ('skimage' only; 1 is the
        exhaustive search, values up to 1.5 are faster and nearly as good).
    min_neighbors : int, default=4
        Overlapping detections needed to accept a face (cascades only:
        scikit-image's ``min_neighbor_number``, OpenCV's ``minNeighbors``).
        Larger means fewer false faces.
    retry_padding : float, default=0.3
        MTCNN only: an image in which no face is found is searched once
        more with a black border of this fraction of its height and width
        on each side (boxes are given in the image's own pixels, and may
        reach past its edge, where crops repeat the edge pixels).  MTCNN
        misses faces that fill the whole image (aligned film frames such as
        SFEW's, webcam close-ups): with a 0.3 border it finds 91 % of SFEW
        2.0 Train's frames instead of 4 %.  0 disables the second search.
    float_max : float, default=1.0
        The value of white in float images: 1.0 reads them as
        scikit-image does (intensities in [0, 1]); 255.0 reads 0-255
        values stored as floats.  Float values outside ``[0, float_max]``
        are a ValueError (see the pixel rule in the Notes).
    image_shape : tuple of int, default=None
        Shape ``(height, width[, channels])`` of each row when ``X`` comes as
        flattened rows; None means square grey images in ``fit``, and after
        it rows as long as the images ``fit`` saw are read in their shape.
        One entry may be -1.
    n_jobs : int, default=None
        Processes (joblib) over chunks of images; None means 1, -1 all cores.
        Results do not depend on it (MTCNN's confidences up to their last
        float32 digit, see Notes).
    verbose : int, default=0
        When positive, progress (images done, images without a face,
        elapsed time) is printed after each chunk of images, as fersk's
        other progress lines are (:mod:`fersk._progress`: stdout, or
        stderr under the ``fersk`` commands).

    Attributes
    ----------
    n_features_in_ : int
        Values per image, when :meth:`fit` saw an array (not set for a list
        of images, whose sizes may differ).
    feature_names_in_ : ndarray of str
        Names of features seen in :meth:`fit`, when ``X`` is a DataFrame.
    image_shape_ : tuple of int
        Shape of one image, when :meth:`fit` saw an array.

    See Also
    --------
    mtcnn.MTCNN : The default detector.
    skimage.feature.Cascade : The cascade of ``detector='skimage'``.
    LBPHistogram : LBP descriptors of the crops.

    Notes
    -----
    **Input.** ``X`` is a list (or tuple) of images of any sizes, each a
    grey ``(h, w)`` or colour ``(h, w, 3|4)`` array, or the path (str or
    :class:`os.PathLike`) of an image file (read with Pillow, EXIF
    orientation applied, as 8-bit grey or RGB; an unreadable file is a
    ValueError naming it); a 1-D array or Series of paths is a list too.
    ``X`` may also be an array: a batch ``(n, h, w)`` or ``(n, h, w, c)``, or
    flattened rows ``(n, h*w)`` read as in the rest of fersk (square grey
    images unless ``image_shape`` says otherwise).  A single image must be
    wrapped: ``[image]`` or ``image[np.newaxis]``; it is never read as a
    batch.  A 2-D array is read as rows by :meth:`fit`, and after it only
    when its rows have the ``n_features_in_`` values that :meth:`fit` saw,
    or when ``image_shape`` is set: given to a cropper never fitted on an
    array (as in the pretrained pipelines), ``(256, 256)`` is refused, not
    cropped as 256 images of 16x16.  A 3-D array ``(a, b, c)`` whose last
    axis is at most 4 and shorter than the one before is one image with
    channels (``(48, 48, 3)``, ``(40, 15, 3)``, ``(48, 48, 1)``) and is
    refused, unless the cropper was fitted on images of shape ``(b, c)``;
    pass grey images that narrow with their channel axis, ``(a, b, c, 1)``.

    **Output.** ``(n, height, width)`` grey or ``(n, height, width, 3)``
    colour crops, one per input in order; for flattened input, flattened
    rows ``(n, height * width[* 3])``.  Colour is converted to grey by
    luminance (:func:`fersk._image_files.to_gray`).

    **Pixel values.** One rule for arrays and files, so that the same
    image gives the same answer however it is passed
    (:func:`fersk._image_files.array_to_uint8`): uint8 as is; bool as 0/255;
    uint16 by its high byte (as 16-bit files are read); other integer types
    by their values, which must lie in 0..255 (int64 from a list of Python
    ints is fine; 0..1020 is a ValueError: its scale is unknown).  A uint16
    image of at least 64 values all at most 255 is almost surely 8-bit values
    in a wider type, which the high byte would turn black: a
    :class:`UserWarning` says so and gives the fix, ``.astype(np.uint8)``.
    Floats as
    intensities from 0 to ``float_max`` (1.0: scikit-image's convention, so
    ``img_as_float(photo)`` gives the answer of ``photo``), values outside
    it a ValueError.  Crops are uint8 (the resized values rounded), the
    values the bundled networks were trained on.

    **Detection.** The default 'mtcnn' detector searches faces from
    ``min_face_size`` of the shorter side (at least 12 pixels) on the photo,
    or on a reduced copy at most 640 pixels long for large photos, and maps
    its boxes and eye keypoints back to the photo's pixels.  Its boxes are
    taller than wide (they are widened about their centre to the output's
    aspect ratio when cropped): on scikit-image's astronaut the face box is
    ``(64, 182, 107, 83)``.  It takes about 0.1-0.2 s for a 512x512
    photograph on one CPU core; images whose searched copies have the same
    size (48x48 faces, frames of a video, photos resized alike) go through
    its networks together, by up to 2 million pixels, which is several
    times faster for small images (about 10x for 48x48 faces) and gives the
    same boxes and eyes as one image at a time (confidences may differ in
    their last float32 digit).  The cascades ('skimage', 'opencv') search
    windows from ``min_face_size`` (at least 24 pixels) up to the shorter
    side, growing by ``scale_factor`` = 1.1 (scikit-image also steps by
    ``step_ratio`` = 1 times the window scale), and a face needs
    ``min_neighbors`` = 4 overlapping detections; on the astronaut
    scikit-image's box is ``(65, 175, 99, 99)``.  Cascades are frontal-face
    detectors: profiles and strongly tilted faces are often missed.  When
    several faces are found the largest is cropped.

    **Faces already cropped (FER-2013).**  Detectors need some context
    around a face, so on 48x48 FER-2013 faces, which the face fills, MTCNN
    finds a face in only about a fifth of the images (the cascade in about
    a quarter), and the rest fall to ``on_no_face``: the crops would be
    framed inconsistently.  For such datasets use ``detector=None``: no
    detection, each image is taken whole as the face's box (the cropper is
    then a pass-through resize; an image of another aspect than ``size``
    is first widened to it with its edge pixels repeated, as a detected
    box is; ``margin`` < 0 zooms in), or
    ``precropped_max_side`` for a mix of crops and photos.  Conversely,
    FER-2013 frames faces as the scikit-image cascade's box with
    ``margin=0``: on FER faces padded so the cascade can find them, the
    median box side is 47.5 of 48 pixels, centred.  MTCNN's boxes are
    framed best with ``margin=0`` too (for networks trained on FER-2013, on
    web photos: benchmarks/RESULTS.md).

    **Pickling and parallelism.** The detectors are built lazily, once per
    process, and are never stored on the estimator, so a FaceCropper
    pickles (``joblib.dump``) and clones freely and joblib workers build
    their own (scikit-image's Cascade cannot be pickled at all).  A callable
    ``detector`` must itself be picklable for ``joblib.dump`` (a
    module-level function, not a lambda); ``n_jobs`` works with any.
    'mtcnn' (the default) loads TensorFlow and builds its networks in every
    worker (seconds), so ``n_jobs`` pays off only for long lists.  A list
    item may also be any object NumPy turns into an image array; a PIL
    image is read as its file would be (EXIF orientation, palette, CMYK,
    16 bits per channel).

    The estimator is stateless: :meth:`fit` only validates the parameters
    and the input, and :meth:`transform` may be called without it.
    :meth:`transform` returns the crops only; :meth:`crop` returns what was
    found in each image too (boxes, face counts, images without a face,
    rotation angles), :meth:`detect` every face with its confidence and
    landmarks, :meth:`crop_faces` a crop of every face.  Nothing is stored
    on the estimator by any of them.

    ``set_output(transform="pandas")`` (or ``sklearn.set_config(
    transform_output="pandas")``) gives a DataFrame of flattened crops
    (flattened rows in), its columns :meth:`get_feature_names_out`; crops
    of images (an image batch or a list) stay ndarrays, which no DataFrame
    can hold, so a pipeline of FaceCropper and a network works under a
    global pandas setting.  :meth:`crop` is never wrapped.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> from fersk import FaceCropper
    >>> cropper = FaceCropper(size=(64, 64))
    >>> faces = cropper.fit_transform([data.astronaut()])
    >>> faces.shape, faces.dtype
    ((1, 64, 64), dtype('uint8'))
    >>> cropper.detect([data.astronaut()])[0][0]["box"]  # (row, col, height, width)
    (64.0, 182.0, 107.0, 83.0)

    Faces that are crops already, such as FER-2013's, need no detection:

    >>> fer_like = np.zeros((5, 48, 48), dtype=np.uint8)
    >>> FaceCropper(detector=None, size=(32, 32)).fit_transform(fer_like).shape
    (5, 32, 32)
    """

    # Fitted attributes pipeline.json records (fersk.pretrained reads them).
    _saved_attributes = ("n_features_in_", "feature_names_in_", "image_shape_")

    _parameter_constraints = without_bools({
        "detector": [StrOptions(set(_BACKENDS)), callable, None],
        # At most MAX_CROP_SIDE a side: a crop is a network's input.
        "size": [
            Interval(numbers.Integral, 1, MAX_CROP_SIDE, closed="both"),
            IntPair(max_value=MAX_CROP_SIDE),
        ],
        "margin": [Interval(numbers.Real, -0.5, None, closed="neither")],
        "align": ["boolean"],
        "color": ["boolean"],
        "on_no_face": [StrOptions({"whole", "center", "raise"})],
        "min_face_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
        ],
        "precropped_max_side": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "scale_factor": [Interval(numbers.Real, 1, None, closed="neither")],
        "step_ratio": [Interval(numbers.Real, 0, None, closed="neither")],
        "min_neighbors": [Interval(numbers.Integral, 0, None, closed="left")],
        "retry_padding": [Interval(numbers.Real, 0, None, closed="left")],
        "float_max": [Interval(numbers.Real, 0, None, closed="neither")],
        "image_shape": [None, ImageShape()],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    })

    def __init__(
        self,
        detector="mtcnn",
        *,
        size=(48, 48),
        margin=0.0,
        align=False,
        color=False,
        on_no_face="whole",
        min_face_size=0.1,
        precropped_max_side=None,
        scale_factor=1.1,
        step_ratio=1.0,
        min_neighbors=4,
        retry_padding=0.3,
        float_max=1.0,
        image_shape=None,
        n_jobs=None,
        verbose=0,
    ):
        self.detector = detector
        self.size = size
        self.margin = margin
        self.align = align
        self.color = color
        self.on_no_face = on_no_face
        self.min_face_size = min_face_size
        self.precropped_max_side = precropped_max_side
        self.scale_factor = scale_factor
        self.step_ratio = step_ratio
        self.min_neighbors = min_neighbors
        self.retry_padding = retry_padding
        self.float_max = float_max
        self.image_shape = image_shape
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the input; nothing is learnt.

        The detector's package is imported (an ImportError says what to
        install).  For an array, ``n_features_in_`` and ``image_shape_`` are
        recorded; for a list, each array item is checked (files are read only
        by :meth:`transform`).

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images (see Notes of :class:`FaceCropper`).
        y : None
            Ignored.

        Returns
        -------
        self : FaceCropper
            The cropper.
        """
        self._config(np.uint8)
        items = _as_image_list(X)
        if items is None:
            images, _ = validate_images(self, X, reset=True, image_shape=self.image_shape)
            array_to_uint8(images, "X", self.float_max)  # refused in fit as in transform
        else:
            for i, item in enumerate(items):
                if not _is_path(item):
                    check_image(item, f"X[{i}]", self.float_max)
            for name in ("n_features_in_", "feature_names_in_", "image_shape_"):
                if hasattr(self, name):
                    delattr(self, name)
        return self

    def transform(self, X):
        """Crop the face of every image of ``X``.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of any size (see Notes of :class:`FaceCropper`).  Flattened
            rows must have the number of features seen in :meth:`fit`.

        Returns
        -------
        crops : ndarray of shape (n_samples, height, width[, 3]) or \
                (n_samples, height * width[* 3])
            One crop per image, in order; flattened when ``X`` was; uint8
            (see the pixel rule in the Notes).

        Raises
        ------
        ValueError
            For invalid input, an unreadable file (named), or, with
            ``on_no_face='raise'``, an image without a face (named).
        """
        return self.crop(X)[0]

    def crop(self, X):
        """:meth:`transform`, with what was found in each image.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of any size (see Notes of :class:`FaceCropper`).

        Returns
        -------
        crops : ndarray
            As :meth:`transform` returns them.
        info : sklearn.utils.Bunch
            ``boxes`` (n_samples, 4): ``(row, col, height, width)`` of the
            face cropped from each image (the largest; before aspect and
            margin), NaN where none was found; ``n_faces`` (n_samples,):
            faces found per image (1 with ``detector=None``);
            ``no_face_indices``: the images without a face (cropped as
            ``on_no_face`` says); ``angles`` (n_samples,): degrees each crop
            was rotated by ``align`` (the eye line's angle, positive when
            the eye on the image's right is lower), NaN where it was not.
            Nothing is stored on the estimator, so one cropper can serve
            several threads.

        Examples
        --------
        >>> from skimage import data
        >>> from fersk import FaceCropper
        >>> crops, info = FaceCropper(size=(64, 64)).crop([data.astronaut()])
        >>> crops.shape, info.boxes
        ((1, 64, 64), array([[ 64., 182., 107.,  83.]]))
        """
        from sklearn.utils import Bunch

        images, flat = self._images(X)
        cfg = self._config(np.uint8)
        if isinstance(images, np.ndarray) and len(images) and not self.verbose \
                and _is_precropped(images[0], cfg) and _is_own_crop(images.shape[1:], cfg):
            # Face crops of the output's size (what a pipeline's network step
            # is fed): each is its own crop, as the per-image path (which
            # reports progress when verbose) finds.
            n = len(images)
            info = Bunch(boxes=np.tile(np.array([0.0, 0.0, *images.shape[1:3]]), (n, 1)),
                         n_faces=np.ones(n, dtype=np.intp), no_face_indices=np.zeros(0, np.intp),
                         angles=np.full(n, np.nan))
            return restore_layout(images.copy(), flat), info
        results = self._run(images, cfg, _crop_one)
        crops = np.stack([res[0] for res in results])
        n_faces = np.array([res[2] for res in results], dtype=np.intp)
        info = Bunch(
            boxes=np.array([res[1] for res in results], dtype=np.float64).reshape(-1, 4),
            n_faces=n_faces,
            no_face_indices=np.flatnonzero(n_faces == 0),
            angles=np.array([res[3] for res in results], dtype=np.float64),
        )
        if cfg.on_no_face != "raise":
            _warn_no_face(info.no_face_indices, len(results), cfg.on_no_face)
        return restore_layout(crops, flat), info

    def _images(self, X):
        """Validated images (uint8 arrays or paths) and whether X was flat rows."""
        self._validate_params()
        items = _as_image_list(X)
        if items is None:
            images, flat = validate_images(
                self, X, reset=False, image_shape=self.image_shape, check_shape=False
            )
            return array_to_uint8(images, "X", self.float_max), flat
        return [
            item if _is_path(item) else check_image(item, f"X[{i}]", self.float_max)
            for i, item in enumerate(items)
        ], False

    def detect(self, X):
        """Every face of every image: boxes, confidences, eye landmarks.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images or image files (see Notes of :class:`FaceCropper`).

        Returns
        -------
        faces : list of list of dict
            For each image, in order, its faces, largest first (empty when
            none is found), each a dict with ``"box"`` ``(row, col, height,
            width)`` in the image's pixels, ``"confidence"`` (MTCNN's score;
            None for the cascades, callables and ``detector=None``) and
            ``"eyes"`` (``((row, col), (row, col))``, or None when the
            detector gives no landmarks).  Nothing is stored on the
            estimator.

        Examples
        --------
        >>> from skimage import data
        >>> from fersk import FaceCropper
        >>> faces = FaceCropper().detect([data.astronaut()])
        >>> faces[0][0]["box"], round(faces[0][0]["confidence"], 3)
        ((64.0, 182.0, 107.0, 83.0), 0.999)
        """
        images, _ = self._images(X)
        return self._run(images, self._config(np.uint8), _detect_one)

    def crop_faces(self, X):
        """A crop of every face of every image, with what each one is.

        :meth:`transform` gives one crop per image (the largest face);
        this gives one per face, for photos of several people.

        Parameters
        ----------
        X : list of (array-like or path) or array-like of shape \
                (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images or image files.

        Returns
        -------
        crops : ndarray of shape (n_faces, height, width[, 3])
            The faces, image by image, largest first within an image;
            uint8.
        faces : list of dict
            One per crop: ``"image"`` (index into ``X``), ``"face"`` (rank
            within the image, 0 the largest), ``"box"``, ``"confidence"``,
            ``"eyes"`` as in :meth:`detect`, and ``"angle"`` (degrees the
            crop was rotated by ``align``, or None).  Images without a face
            have no entry; :func:`predict_faces` lists them.

        Examples
        --------
        >>> import numpy as np
        >>> from skimage import data
        >>> from fersk import FaceCropper
        >>> crops, faces = FaceCropper().crop_faces([data.astronaut(), np.zeros((64, 64))])
        >>> crops.shape, [(f["image"], f["face"], f["box"]) for f in faces]
        ((1, 48, 48), [(0, 0, (64.0, 182.0, 107.0, 83.0))])

        The black image has no face, hence no entry.  scikit-image's
        cascade also "finds" a face on the suit; ``min_face_size=0.15`` (of
        the shorter side) drops it:

        >>> [f["box"] for f in FaceCropper("skimage").crop_faces([data.astronaut()])[1]]
        [(65.0, 175.0, 99.0, 99.0), (421.0, 405.0, 59.0, 59.0)]
        """
        images, _ = self._images(X)
        cfg = self._config(np.uint8)
        per_image = self._run(images, cfg, _crop_every_face)
        pairs = [pair for faces in per_image for pair in faces]
        shape = (0, *cfg.size) + ((3,) if cfg.color else ())
        crops = np.stack([c for c, _ in pairs]) if pairs else np.zeros(shape, np.uint8)
        return crops, [record for _, record in pairs]

    def _config(self, dtype):
        """Check the parameters' combination; the settings for the workers.

        Each parameter on its own is checked by ``_parameter_constraints``
        (``fit`` and :meth:`_images` validate them first).
        """
        size = self.size
        size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
        if self.align and (self.detector is None or self.detector == "skimage"):
            raise ValueError(
                f"align=True needs eye landmarks, which detector={self.detector!r} "
                "does not give; use detector='opencv' "
                f"({_OPENCV_HINT}), detector='mtcnn' ({_MTCNN_HINT}) or a "
                "callable that returns landmarks, or set align=False."
            )
        _check_backend(self.detector)
        dtype = np.dtype(dtype)
        if dtype != np.uint8 and dtype != np.float32:
            dtype = np.dtype(np.float64)
        return _Config(
            detector=self.detector,
            size=(int(size[0]), int(size[1])),
            margin=float(self.margin),
            align=bool(self.align),
            color=bool(self.color),
            on_no_face=self.on_no_face,
            min_face_size=(
                int(self.min_face_size) if isinstance(self.min_face_size, numbers.Integral)
                else float(self.min_face_size)
            ),
            precropped_max_side=self.precropped_max_side,
            scale_factor=float(self.scale_factor),
            step_ratio=float(self.step_ratio),
            min_neighbors=int(self.min_neighbors),
            dtype=dtype,
            retry_padding=float(self.retry_padding),
        )

    def _run(self, images, cfg, func):
        """``func`` on every image, in chunks, in parallel when asked; in order.

        With ``verbose``, a progress line after each chunk (fersk's
        progress printer, :mod:`fersk._progress`, so the commands keep it
        off their results).
        """
        n = len(images)
        n_workers = effective_n_jobs(self.n_jobs)
        step = max(1, min(_MAX_CHUNK, math.ceil(n / (4 * n_workers))))
        starts = range(0, n, step)
        tasks = (delayed(_chunk)(func, images[s : s + step], s, cfg) for s in starts)
        results = []
        n_missing = 0
        what = "cropped" if func is _crop_one else "searched"
        progress = Progress(
            "FaceCropper", n, self.verbose, text=f"{{done}}/{{total}} images {what}", every=0
        )
        parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
        for chunk in parallel(tasks):
            results.extend(chunk)
            if self.verbose:
                n_missing += sum(_without_face(res) for res in chunk)
                progress.update(len(results), f"{n_missing} without a face")
        return results

    def get_feature_names_out(self, input_features=None):
        """Names of the crop's pixels when the output is flattened rows.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the names seen in :meth:`fit` when given.

        Returns
        -------
        feature_names_out : ndarray of str
            ``pixel_row{i}_col{j}`` (grey) or ``{red,green,blue}_row{i}_col{j}``
            (``color=True``), in the order of the flattened crops.

        Examples
        --------
        >>> from fersk import FaceCropper
        >>> FaceCropper(size=(2, 2)).get_feature_names_out().tolist()
        ['pixel_row0_col0', 'pixel_row0_col1', 'pixel_row1_col0', 'pixel_row1_col1']
        """
        self._validate_params()
        size = self._config(np.uint8).size
        if self.color:
            return image_feature_names(
                self, input_features, (*size, 3), lambda k: ("red", "green", "blue")[k]
            )
        return image_feature_names(self, input_features, size, lambda k: "pixel")

    def __sklearn_is_fitted__(self):
        # Stateless: transform needs nothing from fit.
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = []  # crops are uint8 (one pixel rule)
        tags.input_tags.positive_only = True
        return tags


def _without_face(result):
    """Whether one image's result in ``_run`` has no face: ``_crop_one`` gives
    (crop, box, n_faces, angle); detect a list of faces; predict_faces a list
    of (crop, record) pairs, one record of kind 'none' when it takes the
    image whole (counted as a face before: "0 without a face")."""
    if isinstance(result, tuple):
        return result[2] == 0
    return all(isinstance(item, tuple) and isinstance(item[-1], dict)
               and item[-1].get("kind") == "none" for item in result)
