"""One scikit-learn base class for every fersk Keras network.

:class:`BaseKerasImageClassifier` does what all network estimators need:
image validation (batches or flattened rows), label encoding, building the
network from the parameters in ``fit``, input scaling and augmentation
inside the model, training through ``model.fit`` (validation split, early
stopping with best-weights restore, class weights), seeding, batched
prediction and pickling through Keras's own ``.keras`` format.

Subclasses implement ``_build_network(input_shape, n_classes, seed)``
returning an uncompiled :class:`keras.Model` with a softmax output.
"""

import inspect
import os
import random
import tempfile
import weakref
from numbers import Integral, Real

import keras
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

import fersk.layers  # noqa: F401  (registers the custom layers for loading)
from fersk import _checkpoint
from fersk._batches import DegradedBatches
from fersk._image_files import pixels_for_network
from fersk._inference import fold_batch_norm
from fersk._validation import check_random_state_int, validate_images
from fersk.layers import RandomAffine, RandomCenterCrop, RandomErasing

OPTIMIZERS = {"adam", "adamw", "sgd", "rmsprop", "adamax", "nadam", "adagrad", "adadelta"}

#: Fits of at most this many optimisation steps in all (batches x epochs)
#: run eagerly: tracing a training graph costs seconds, more than the whole
#: computation of such a fit (e.g. cross-validating on a few images).
EAGER_MAX_STEPS = 32

#: Values of ``learning_rate_schedule``.  "plateau" halves the rate after
#: half the early-stopping patience without improvement (Keras's
#: ReduceLROnPlateau); "cosine" decays it to 0 over all the fit's steps
#: (Keras's CosineDecay, Loshchilov & Hutter's SGDR without restarts).
LEARNING_RATE_SCHEDULES = ("constant", "plateau", "cosine", "warmup_cosine")

#: Values of ``test_time_crops``: the centre window only, or the five
#: windows of the ten-crop protocol (four corners and the centre; with
#: ``test_time_flip`` their mirror images too, ten views).
TEST_TIME_CROPS = ("center", "five")

#: Strength of the ``augment=True`` transformations (standard FER practice:
#: horizontal flips, shifts and zoom of 10 %, rotations of +-10 degrees).
AUGMENTATION = {"shift": 0.1, "zoom": 0.1, "rotation_degrees": 10.0}


def _choices(values):
    return "{" + ", ".join(f'"{v}"' for v in values) + "}"


#: The numpydoc entries of the parameters the Keras estimators share,
#: written once (without defaults: :func:`document_parameters` takes each
#: estimator's from its signature, and keeps only the parameters it has).
PARAMETERS_DOC = """
image_shape : tuple of int or None
    How flattened 2-D rows are images, ``(height, width[, channels])``
    (one entry may be -1); None means square grey images.  Ignored for
    3-D/4-D input.
batch_size : int
    Training mini-batch size.
epochs : int
    Maximum number of training epochs.
optimizer : str
    Keras optimizer name: "adam", "adamw", "sgd", "rmsprop", "adamax",
    "nadam", "adagrad" or "adadelta".
learning_rate : float
    Learning rate of the optimizer: its initial value under "plateau"
    and "cosine", the peak reached after the warm-up under
    "warmup_cosine".
learning_rate_schedule : {schedules}
    "constant" keeps ``learning_rate``; "plateau" halves it whenever
    the monitored loss (``val_loss``, else the training loss) has not
    improved for ``n_iter_no_change // 2`` epochs (at least 1; 5 when
    ``n_iter_no_change`` is None; Keras's ``ReduceLROnPlateau``);
    "cosine" decays it along half a cosine to 0 over the ``epochs``
    of the fit (Keras's ``CosineDecay``; stopping early cuts the
    decay short); "warmup_cosine" first rises linearly from 0 to
    ``learning_rate`` over ``warmup_fraction`` of the steps, then
    decays along half a cosine to 0 (Goyal et al. 2017's warm-up, the
    schedule of the strong FER-2013 recipes; Keras's ``CosineDecay``
    with ``warmup_steps``).  ``history_["learning_rate"]`` holds the
    rate at the end of each epoch (before a plateau reduction).
validation_fraction : float in (0, 1) or None
    Fraction of the training set held out (seeded by ``random_state``;
    stratified by class in the classifiers) to monitor ``val_loss``; the
    weights of the best epoch are restored at the end.  ``fit(X, y, validation_data=(Xv,
    yv))`` gives an explicit validation set instead (e.g. FER-2013's
    PublicTest).
n_iter_no_change : int or None
    Early stopping patience: training stops after this many epochs
    without improvement of ``val_loss`` (or of the training loss when
    there is no validation data; then the last weights are kept).
    None trains all ``epochs`` (still restoring the best epoch when
    there is validation data).
class_weight : dict, "balanced" or None
    Weights of the classes in the loss; "balanced" uses
    ``n_samples / (n_classes * bincount(y))`` (FER-2013 is imbalanced:
    "disgust" has 16 times fewer faces than "happy").  Dict keys are
    labels of ``y``; an unknown key is a ValueError.
augment : bool or dict
    Standard FER augmentation in training only: random horizontal
    flips, then shifts and zoom of up to 10 % and rotations up to +-10
    degrees in one bilinear resampling
    (:class:`fersk.layers.RandomAffine`, which XLA compiles), seeded
    from ``random_state``.  A dict sets the strengths, any of
    ``{"shift": 0.1, "zoom": 0.1, "rotation_degrees": 10.0}`` (the
    defaults; 0 turns one off), e.g. ``{"shift": 0.05, "zoom": 0}``.
input_scaling : {"standardize", "none"}
    "standardize" puts a ``keras.layers.Normalization`` with the
    per-channel mean and variance of the training images at the
    model's input (saved with the model); "none" feeds values as they
    are.
random_state : int, RandomState instance or None
    Seeds weights, LBC anchors, dropout, shuffling, augmentation and the
    validation split (``keras.utils.set_random_seed``; Python's and
    NumPy's global states are restored after ``fit``).  The same value
    gives identical predictions on CPU, in any process or thread, under
    the same TensorFlow thread settings (the number of intra-op threads
    changes the rounding; see the "Scaling out" page for clusters).
verbose : int
    0 silent; 1 one line per epoch (loss, metrics, validation loss and
    metrics); 2 or more Keras's progress bars.
predict_batch_size : int or None
    Batch size of ``predict``/``predict_proba``; None uses
    ``max(batch_size, 256)``.
test_time_flip : bool
    Test-time augmentation: prediction averages the network's outputs
    (probabilities) for each image and for its horizontal mirror image
    (faces are nearly symmetric, so the two views err differently;
    twice the prediction work).  Used by ``predict``, ``predict_proba``
    and ``score``; training is unchanged.
warm_start : bool
    When True and the estimator is fitted, ``fit`` continues training
    ``model_`` (e.g. a fine-tuning phase with a lower
    ``learning_rate``) instead of building a new network, as in
    scikit-learn's ``MLPClassifier``.  The network, its input scaling
    and augmentation stay those of the first fit (``architecture``,
    ``augment``, ``input_scaling`` and the image shape are not read
    again); the optimizer is new, with this fit's ``optimizer``,
    ``learning_rate`` and schedule.  ``y`` must have the classes (a
    regressor: the number of outputs) of the previous fit (a ValueError
    otherwise); ``history_``,
    ``n_epochs_`` and ``best_epoch_`` describe the last fit.
crop_size : int, (int, int) or None
    Random-crop training: each training image is cut to a random
    ``crop_size`` window (a new one per image and epoch, after the
    ``augment`` transformations), and prediction uses the centre window
    (:class:`fersk.layers.RandomCenterCrop`), so the network sees faces
    at one scale; e.g. 40 or 44 for FER-2013's 48x48 faces.  None
    trains on whole images.
test_time_crops : {crops}
    Windows averaged at prediction by a network trained with
    ``crop_size``: the centre one, or the four corners and the centre.
    With ``test_time_flip=True``, "five" is the ten-crop protocol (each
    window and its mirror image, ten views, ten times the work).
label_smoothing : float in [0, 1)
    Cross-entropy against targets mixed with the uniform distribution
    (Szegedy et al. 2016): the true class gets ``1 - label_smoothing +
    label_smoothing / n_classes``.  Discourages over-confidence on
    FER-2013's noisy labels.
momentum : float in [0, 1)
    Momentum of the "sgd" optimizer (other optimizers ignore it).
nesterov : bool
    Nesterov momentum for "sgd".
weight_decay : float >= 0 or None
    Decoupled weight decay of the optimizer (Loshchilov & Hutter;
    Keras's ``weight_decay``: each step shrinks every weight by
    ``learning_rate * weight_decay``).  None keeps the optimizer's
    default (0, or 0.004 for "adamw").
warmup_fraction : float in [0, 1)
    Share of all the fit's steps spent warming up under
    ``learning_rate_schedule="warmup_cosine"`` (ignored otherwise).
random_erasing : float in [0, 1]
    Probability that a training image has a random rectangle (2-25 %
    of it) set to the mean pixel (Zhong et al., AAAI 2020;
    :class:`fersk.layers.RandomErasing`); 0 turns it off.
degrade : bool, dict or None
    Domain-robust augmentation, in training only: each training image is,
    anew every epoch, blurred, JPEG re-encoded, given sensor noise,
    re-exposed (gamma and contrast), shifted and scaled as a detector's
    boxes are, or partly covered, each with its own probability
    (:func:`fersk.degrade.degrade_faces`; a dict sets some of the
    probabilities of :data:`fersk.degrade.DEGRADATIONS`, True uses them
    all).  Runs on the CPU beside the network; needs uint8 images (the
    crops of :class:`~fersk.FaceCropper`).  None or False: off.
jit_compile : bool or "auto"
    XLA compilation of the training step and of prediction (Keras's
    ``jit_compile``).  Every fersk layer, the augmentation included,
    supports it; "auto" lets Keras decide (XLA on JAX).  Numbers
    differ from a run without XLA in the last digits.
checkpoint_dir : str, path-like or None
    Folder where ``fit`` saves its state after every epoch (weights,
    optimizer state including its step count, so the learning-rate
    schedule, and the epoch), in a sub-folder of its own,
    ``fersk-state-<key>``, keyed on the parameters (less ``verbose``,
    ``checkpoint_dir`` and the prediction-time ones) and the training
    data: a fit with the same parameters and data that finds a state
    there continues from it instead of starting again, so an interrupted
    long run resumes where it stopped, while other fits (cross-validation
    folds, even in parallel) keep apart.  Files are written under a
    temporary name then renamed, the previous epoch's state is kept too,
    and a damaged file is set aside with a warning; a second process
    fitting the same data meanwhile gets an error (a lock file).  The
    sub-folder is removed when the fit completes; nothing else in the
    folder is touched.  The resumed epochs see the batches shuffled
    anew, so the result equals an uninterrupted run's in schedule and
    epochs but not bit for bit; ``history_`` and early stopping cover
    the resumed epochs only.  The docs' "What survives a crash" says
    more.""".replace("{schedules}", _choices(LEARNING_RATE_SCHEDULES)).replace(
    "{crops}", _choices(TEST_TIME_CROPS)
)

#: The Notes section of the Keras estimators' docstrings.
NOTES_DOC = f"""
    Notes
    -----
    The fitted ``model_`` is ``input -> [Normalization] -> [augmentation]
    -> network``; it runs on the GPU whenever the Keras backend sees one.
    Fits of at most {EAGER_MAX_STEPS} optimisation steps in all (batches times
    epochs) run eagerly, because tracing a training graph costs seconds,
    more than such a fit computes; larger fits run as a compiled graph.  Prediction of
    more than one batch (``predict_batch_size``) runs through Keras's
    compiled predict loop on an inference model (input scaling, the
    test-time views, the network; built once per fitted model and
    setting), one batch is computed directly, where tracing would cost
    more than it saves.

    **Input.** ``X`` is a batch ``(n_samples, height, width[, channels])``
    or flattened rows ``(n_samples, n_features)``.  A single image must be
    wrapped, ``[image]`` or ``image[np.newaxis]``; it is never read as a
    batch: after ``fit`` a 2-D array must have the ``n_features_in_``
    values per row seen in ``fit``, and a 3-D array ``(a, b, c)`` whose
    last axis is at most 4 and shorter than the one before is refused as
    one image with channels, unless ``fit`` saw images of shape ``(b, c)``
    (pass grey images that narrow as ``(a, b, c, 1)``).  A network fitted
    on uint8 pixels (``input_dtype_ == '|u1'``, as every bundled one) reads
    the input of ``predict`` by the pipeline's pixel rule, so the network
    step alone gives its pipeline's answer or a ValueError, never a silent
    wrong one: uint8 as is; uint16 by its high byte (a warning when it
    holds only 8-bit values); other integers with values 0..255; floats on
    the training scale, 0 to 255, as is; floats in [0, 1] or outside
    0..255 refused.

    Pickle/joblib store the model as Keras ``.keras`` zip bytes and load it
    with ``keras.saving.load_model(..., safe_mode=True)``; predictions of a
    reloaded estimator, in any process, are identical.

    Parallel model selection (``GridSearchCV``/``cross_validate`` with
    ``n_jobs=k``) runs ``k`` worker processes, each importing TensorFlow
    (roughly 0.5-1 GB resident before any data) and holding its own copy
    of the training images and one network; on a small CPU machine
    ``n_jobs=1`` is usually as fast, since Keras already uses every core."""

#: The line of a Keras estimator's docstring that :func:`document_parameters`
#: replaces by the shared parameter entries.
PARAMETERS_MARKER = "    {keras_parameters}"


def _parameter_entries(doc):
    """``{name: (header, description lines)}`` of a numpydoc parameter list."""
    entries = {}
    for line in doc.strip("\n").split("\n"):
        if line and not line.startswith(" "):
            name = line.split(" : ")[0]
            entries[name] = (line, [])
        else:
            entries[name][1].append(line)
    return entries


def _default_text(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)


def document_parameters(cls):
    """Class decorator: the shared parameter entries in ``cls``'s docstring.

    Replaces its :data:`PARAMETERS_MARKER` line with the entries of
    :data:`PARAMETERS_DOC` for the parameters of ``cls.__init__`` (in
    signature order, those ``cls`` has), each with its default as the
    signature gives it, so one text serves every estimator and no default
    is written twice.
    """
    if cls.__doc__ is None:  # python -OO
        return cls
    if cls.__doc__.count(PARAMETERS_MARKER) != 1:
        raise RuntimeError(f"{cls.__name__}'s docstring needs one {PARAMETERS_MARKER!r} line")
    shared = _parameter_entries(PARAMETERS_DOC)
    lines = []
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in shared:
            header, description = shared[name]
            lines.append(f"    {header}, default={_default_text(param.default)}")
            lines.extend(f"    {line}" if line else "" for line in description)
    cls.__doc__ = cls.__doc__.replace(PARAMETERS_MARKER, "\n".join(lines))
    return cls


#: Inference models (test-time views + network) of fitted Keras models, by
#: setting; an entry goes with its fitted model.
_INFERENCE_MODELS = weakref.WeakKeyDictionary()


class _KerasModelBytes:
    """A Keras model serialised in the ``.keras`` zip format (for pickling)."""

    def __init__(self, model):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            with open(path, "rb") as f:
                self.data = f.read()

    def load(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as f:
                f.write(self.data)
            return keras.saving.load_model(path, safe_mode=True)


try:  # where Keras 3 draws the seeds it is not given (Python's global ``random``)
    from keras.src.random import seed_generator as _keras_seed_generator
except ImportError:  # pragma: no cover  (another Keras layout: global seeding only)
    _keras_seed_generator = None


class _SeededContext:
    """Seed Python, NumPy and the backend; restore Python's and NumPy's state after.

    ``keras.utils.set_random_seed`` seeds the global generators that Keras
    draws layer seeds, initial weights, dropout masks and shuffling from.
    The global Python and NumPy states are put back afterwards, so fitting
    does not change the caller's random streams.

    Keras draws the seed of every layer, initializer and random op made
    without one from Python's global generator, which the other threads of
    the process draw from too (a Dask worker's or client's event loop:
    retry jitter, worker choice), so the same seed could build another
    network there.  Inside the context Keras draws them from a private
    generator with the same seed instead (the same draws as the global one
    gives a process with no other thread), which no other thread touches.
    """

    def __init__(self, seed):
        self.seed = seed

    def __enter__(self):
        if self.seed is not None:
            self._py = random.getstate()
            self._np = np.random.get_state()
            keras.utils.set_random_seed(self.seed)
            self._keras_random = getattr(_keras_seed_generator, "python_random", None)
            if self._keras_random is not None:
                _keras_seed_generator.python_random = random.Random(self.seed)
        return self

    def __exit__(self, *exc):
        if self.seed is not None:
            if self._keras_random is not None:
                _keras_seed_generator.python_random = self._keras_random
            random.setstate(self._py)
            np.random.set_state(self._np)
        return False


def count_params(weights):
    """Number of values in ``weights`` (Keras variables or arrays): one rule for
    every parameter count of fersk's networks."""
    return int(sum(int(np.prod(w.shape)) for w in weights))


def _check_sample_proba(sample_proba, n_samples, n_classes):
    """Validated soft targets: float32 (n_samples, n_classes), rows summing to 1."""
    proba = check_array(sample_proba, dtype=np.float64, input_name="sample_proba")
    if proba.shape != (n_samples, n_classes):
        raise ValueError(
            f"sample_proba must have shape (n_samples, n_classes) = ({n_samples}, "
            f"{n_classes}), one column per class of y in the order of classes_; got "
            f"{proba.shape}."
        )
    if np.any(proba < 0):
        raise ValueError("sample_proba has negative values; it must hold distributions.")
    sums = proba.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError(
            f"sample_proba has {int(np.sum(sums <= 0))} all-zero rows; each row must have "
            "a positive sum (it is normalised to 1)."
        )
    return (proba / sums).astype(np.float32)


@document_parameters
class BaseKerasImageClassifier(ClassifierMixin, BaseEstimator):
    """Base of the fersk Keras classifiers (private; see the subclasses).

    The model fitted is ``input -> [Normalization] -> [augmentation] ->
    network``, where the network comes from ``_build_network``.  With
    ``input_scaling="standardize"`` the ``keras.layers.Normalization`` is
    given the per-channel mean and variance of the training images (after
    any validation split), so raw uint8 faces, float images or mapped-LBP
    codes all reach the network standardised, and the scaling is saved with
    the model.  The augmentation layers are Keras's random preprocessing
    layers, which are active only in training.

    Parameters
    ----------
    {keras_parameters}
    """

    _parameter_constraints = {
        "image_shape": [tuple, list, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(OPTIMIZERS)],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions(set(LEARNING_RATE_SCHEDULES))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "augment": ["boolean", dict],
        "input_scaling": [StrOptions({"standardize", "none"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "predict_batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "test_time_flip": ["boolean"],
        "warm_start": ["boolean"],
        "crop_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "test_time_crops": [StrOptions(set(TEST_TIME_CROPS))],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="left"), None],
        "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
        "random_erasing": [Interval(Real, 0, 1, closed="both")],
        "degrade": ["boolean", dict, None],
        "jit_compile": ["boolean", StrOptions({"auto"})],
        "checkpoint_dir": [str, os.PathLike, None],
    }

    def __init__(
        self,
        *,
        image_shape=None,
        batch_size=64,
        epochs=30,
        optimizer="adam",
        learning_rate=1e-3,
        learning_rate_schedule="constant",
        validation_fraction=None,
        n_iter_no_change=10,
        class_weight=None,
        augment=False,
        input_scaling="standardize",
        random_state=None,
        verbose=0,
        predict_batch_size=None,
        test_time_flip=False,
        warm_start=False,
        crop_size=None,
        test_time_crops="center",
        label_smoothing=0.0,
        momentum=0.9,
        nesterov=True,
        weight_decay=None,
        warmup_fraction=0.1,
        random_erasing=0.0,
        degrade=None,
        jit_compile="auto",
        checkpoint_dir=None,
    ):
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.epochs = epochs
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.augment = augment
        self.input_scaling = input_scaling
        self.random_state = random_state
        self.verbose = verbose
        self.predict_batch_size = predict_batch_size
        self.test_time_flip = test_time_flip
        self.warm_start = warm_start
        self.crop_size = crop_size
        self.test_time_crops = test_time_crops
        self.label_smoothing = label_smoothing
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.random_erasing = random_erasing
        self.degrade = degrade
        self.jit_compile = jit_compile
        self.checkpoint_dir = checkpoint_dir

    # ------------------------------------------------------------------ hooks
    def _build_network(self, input_shape, n_classes, seed):  # pragma: no cover
        raise NotImplementedError

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _as_model_input(images):
        x = np.asarray(images, dtype=np.float32)
        return x[..., np.newaxis] if x.ndim == 3 else x

    def _validate_X(self, X, *, reset, input_name="X"):
        images, _ = validate_images(
            self, X, reset=reset, image_shape=self.image_shape, input_name=input_name
        )
        if reset:
            self.input_dtype_ = images.dtype.str
        else:
            # The pipeline's pixel rule, for the network step on its own too.
            images = pixels_for_network(
                images, getattr(self, "input_dtype_", None), type(self).__name__,
                input_name,
            )
        return self._as_model_input(images)

    def _encode_validation(self, validation_data):
        try:
            Xv, yv = validation_data
        except (TypeError, ValueError):
            raise ValueError(
                "validation_data must be a pair (X_val, y_val); got "
                f"{type(validation_data).__name__}."
            ) from None
        xv = self._validate_X(Xv, reset=False, input_name="validation_data X")
        yv = column_or_1d(yv, warn=True)
        check_consistent_length(xv, yv)
        unknown = np.setdiff1d(yv, self.classes_)
        if unknown.size:
            raise ValueError(
                f"validation_data y has labels not seen in y: {unknown.tolist()}; "
                f"classes are {self.classes_.tolist()}."
            )
        return xv, np.searchsorted(self.classes_, yv).astype(np.int64)

    def _class_weight_dict(self, y_enc):
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            unknown = [k for k in self.class_weight if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight has keys that are not classes of y: {unknown}; "
                    f"classes are {self.classes_.tolist()}."
                )
        weights = compute_class_weight(
            self.class_weight, classes=self.classes_, y=self.classes_[y_enc]
        )
        return {i: float(w) for i, w in enumerate(weights)}

    def _augmentation_strengths(self):
        if not isinstance(self.augment, dict):
            return AUGMENTATION if self.augment else None
        unknown = sorted(set(self.augment) - set(AUGMENTATION))
        if unknown:
            raise ValueError(
                f"augment has unknown keys {unknown}; use some of {sorted(AUGMENTATION)}."
            )
        strengths = {**AUGMENTATION, **self.augment}
        for key, value in strengths.items():
            if not isinstance(value, Real) or not value >= 0:
                raise ValueError(f"augment[{key!r}] must be a number >= 0; got {value!r}.")
        return strengths

    def _crop_shape(self, input_shape):
        """The (height, width) of ``crop_size`` for images of ``input_shape``, or None."""
        if self.crop_size is None:
            return None
        size = self.crop_size
        size = (size, size) if isinstance(size, Integral) else tuple(size)
        if len(size) != 2 or not all(isinstance(v, Integral) and v >= 1 for v in size):
            raise ValueError(
                f"crop_size must be an int or a pair of ints >= 1; got {self.crop_size!r}."
            )
        if size[0] > input_shape[0] or size[1] > input_shape[1]:
            raise ValueError(
                f"crop_size={self.crop_size!r} is larger than the images "
                f"({input_shape[0]}x{input_shape[1]})."
            )
        return tuple(int(v) for v in size)

    def _augmentation_layers(self, seed):
        def s(i):
            return None if seed is None else seed + 101 + i

        a = self._augmentation_strengths()
        if a is None:
            return []
        layers = [keras.layers.RandomFlip("horizontal", seed=s(0), name="augment_flip")]
        if a["shift"] or a["zoom"] or a["rotation_degrees"]:
            # One XLA-compilable resampling (Keras's rotation and
            # translation layers would switch jit_compile off).
            layers.append(RandomAffine(
                a["rotation_degrees"], a["shift"], a["zoom"], seed=s(1), name="augment_affine"
            ))
        return layers

    def _assemble_model(self, x_train, n_classes, seed):
        input_shape = tuple(x_train.shape[1:])
        crop = self._crop_shape(input_shape)
        net_shape = input_shape if crop is None else (*crop, input_shape[-1])
        network = self._build_network(net_shape, n_classes, seed)
        if not isinstance(network, keras.Model):
            raise ValueError(
                f"the network builder must return a keras.Model; got {type(network).__name__}."
            )
        out_shape = tuple(network.output_shape)
        if out_shape[1:] != (n_classes,):
            raise ValueError(
                f"the network must output one probability per class, shape (None, "
                f"{n_classes}); it outputs {out_shape}."
            )
        inputs = keras.Input(shape=input_shape, name="images")
        z = inputs
        if self.input_scaling == "standardize":
            flat = x_train.reshape(-1, input_shape[-1]).astype(np.float64)
            z = keras.layers.Normalization(
                axis=-1, mean=flat.mean(axis=0), variance=flat.var(axis=0), name="standardize"
            )(z)
        for layer in self._augmentation_layers(seed):
            z = layer(z)
        # The crop comes after the geometric augmentation, so rotated and
        # shifted faces are cut without their filled-in borders.
        if crop is not None:
            z = RandomCenterCrop(*crop, seed=None if seed is None else seed + 201, name="crop")(z)
        if self.random_erasing > 0:
            z = RandomErasing(
                rate=self.random_erasing, seed=None if seed is None else seed + 202,
                name="augment_erase",
            )(z)
        outputs = network(z)
        return keras.Model(inputs, outputs, name=f"fersk_{network.name}")

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, validation_data=None, sample_proba=None, sample_weight=None):
        """Build the network from the parameters and train it.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Training images (flattened rows are reshaped with
            ``image_shape``; square grey images when it is None).
        y : array-like of shape (n_samples,)
            Labels of any type (integers, strings...), at least two classes.
        validation_data : tuple (X_val, y_val) or None, default=None
            Held-out images for early stopping and best-weights restore;
            takes precedence over ``validation_fraction``.  Labels must be
            classes of ``y``.
        sample_proba : array-like of shape (n_samples, n_classes) or None, default=None
            Soft targets: each image's distribution over the classes, in
            the order of ``classes_`` (the sorted unique labels of ``y``),
            e.g. FER+'s vote distributions
            (:func:`fersk.datasets.load_ferplus`).  When ``y`` holds
            integer labels and ``sample_proba`` has more columns than
            ``y`` has classes, the columns are the classes
            ``0..n_columns-1`` and ``classes_`` lists them all, so a class
            without a label in ``y`` (a rare class missing from a
            cross-validation fold) keeps its share.  Rows must be
            non-negative with a positive sum; they are normalised to sum to
            1.  The network is then trained with the cross-entropy against
            these distributions instead of the one-hot labels (``y`` still
            gives ``classes_``, the stratification of
            ``validation_fraction`` and the classes of ``class_weight``,
            which Keras applies by each row's most probable class);
            ``label_smoothing`` mixes them with the uniform distribution
            like one-hot targets.  Validation images held out by
            ``validation_fraction`` keep their distributions;
            ``validation_data`` is scored against its one-hot labels.  A
            metadata-routed parameter: in a ``Pipeline`` or
            ``GridSearchCV`` under ``sklearn.set_config(
            enable_metadata_routing=True)``, request it with
            ``set_fit_request(sample_proba=True)``.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weight of each image in the loss (times ``class_weight``'s
            weight of its class), e.g. per source of a multi-domain
            training set (:func:`fersk.datasets.source_sample_weight`).
            Held-out images of ``validation_fraction`` keep theirs out of
            training.  Metadata-routed like ``sample_proba``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        warm = self.warm_start and hasattr(self, "model_")
        x = self._validate_X(X, reset=not warm)
        y = column_or_1d(y, warn=True)
        check_consistent_length(x, y)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        n_columns = np.shape(sample_proba)[1] if np.ndim(sample_proba) == 2 else 0
        if (
            n_columns > len(encoder.classes_) and y.dtype.kind in "iu"
            and encoder.classes_[0] >= 0 and encoder.classes_[-1] < n_columns
        ):
            # Integer labels and wider distributions: the columns are the
            # classes 0..n_columns-1, also those without a label in y (a
            # rare class missing from a cross-validation fold).
            encoder.classes_ = np.arange(n_columns, dtype=y.dtype)
        if warm and not np.array_equal(encoder.classes_, self.classes_):
            raise ValueError(
                "warm_start=True continues training on the classes of the previous fit, "
                f"{self.classes_.tolist()}; y has {encoder.classes_.tolist()}. Set "
                "warm_start=False to train a new network."
            )
        if len(encoder.classes_) < 2:  # checked before anything is set on self
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; got 1 "
                f"class ({encoder.classes_[0]!r})."
            )
        self.classes_ = encoder.classes_
        y_enc = encoder.transform(y).astype(np.int64)
        n_classes = len(self.classes_)
        seed = check_random_state_int(self.random_state)
        proba = None if sample_proba is None else _check_sample_proba(sample_proba, len(y_enc), n_classes)
        weight = None
        if sample_weight is not None:
            weight = _check_sample_weight(
                sample_weight, x, dtype=np.float64, ensure_non_negative=True
            )
        if self.degrade and getattr(self, "input_dtype_", None) != "|u1":
            raise ValueError(
                f"degrade needs uint8 images (face crops as FaceCropper gives them); "
                f"{type(self).__name__} was fitted on {np.dtype(self.input_dtype_)}."
            )

        p_train = p_val = None
        w_train = weight
        if validation_data is not None:
            x_train, y_train, p_train = x, y_enc, proba
            x_val, y_val = self._encode_validation(validation_data)
        elif self.validation_fraction is not None:
            arrays = (x, y_enc) if proba is None else (x, y_enc, proba)
            # The split draws the same rows with or without weights.
            index = np.arange(len(y_enc))
            try:
                parts = train_test_split(
                    *arrays, index, test_size=self.validation_fraction, stratify=y_enc,
                    random_state=seed,
                )
            except ValueError as exc:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} cannot make a "
                    f"stratified split of these {len(y_enc)} samples ({exc}); lower it, "
                    "set it to None or pass validation_data."
                ) from None
            x_train, x_val, y_train, y_val = parts[:4]
            if proba is not None:
                p_train, p_val = parts[4:6]
            if weight is not None:
                w_train = weight[parts[-2]]
        else:
            x_train, y_train, x_val, y_val, p_train = x, y_enc, None, None, proba
        class_weight = self._class_weight_dict(y_train)
        if w_train is not None or self.degrade:
            # One weight per image: the sample's times its class's.
            w_train = np.ones(len(y_train)) if w_train is None else w_train
            if class_weight is not None:
                w_train = w_train * np.array([class_weight[c] for c in y_train])
            class_weight = None
        loss, t_train = self._loss_and_targets(y_train, p_train, n_classes)
        if x_val is None or np.ndim(t_train) == 1:
            t_val = y_val
        else:  # validation labels as distributions too (one-hot without their own)
            p_val = np.eye(n_classes, dtype=np.float32)[y_val] if p_val is None else p_val
            t_val = self._loss_and_targets(y_val, p_val, n_classes)[1]
        self._train(
            x_train, t_train, x_val, t_val, loss=loss, metrics=["accuracy"],
            n_outputs=n_classes, seed=seed, warm=warm, class_weight=class_weight,
            sample_weight=w_train,
        )
        return self

    def _head_activation(self):
        """Activation of the network's output layer: "softmax" (or "tanh")."""
        return "softmax"

    def _loss_and_targets(self, y_enc, proba, n_classes):
        """The Keras loss and the targets of encoded labels (or soft targets).

        Softmax heads: sparse cross-entropy on the labels, or categorical
        cross-entropy (with ``label_smoothing``) on one-hot or soft targets.
        Tanh heads (FaceChannel's published training): mean squared error
        against the same targets, smoothed the same way.
        """
        if proba is None and self.label_smoothing == 0 and self._head_activation() == "softmax":
            return keras.losses.SparseCategoricalCrossentropy(), y_enc
        targets = np.eye(n_classes, dtype=np.float32)[y_enc] if proba is None else proba
        targets = np.asarray(targets, dtype=np.float32)
        if self._head_activation() == "tanh":
            if self.label_smoothing > 0:
                targets = (1 - self.label_smoothing) * targets + self.label_smoothing / n_classes
            return keras.losses.MeanSquaredError(), targets
        # Keras smooths one-hot and soft targets alike.
        return keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing), targets

    def _train(
        self, x_train, y_train, x_val, y_val, *, loss, metrics, n_outputs, seed, warm,
        class_weight=None, sample_weight=None,
    ):
        """Build (unless ``warm``), compile and train ``model_``; set the fit attributes."""
        has_val = x_val is not None
        monitor = "val_loss" if has_val else "loss"
        callbacks = []
        if has_val or self.n_iter_no_change is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor,
                    patience=self.n_iter_no_change or self.epochs,
                    restore_best_weights=has_val,
                )
            )
        if self.learning_rate_schedule == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor, factor=0.5, patience=max(1, (self.n_iter_no_change or 10) // 2)
                )
            )
        state = None
        if self.checkpoint_dir is not None:
            # This fit's own sub-folder (keyed on the parameters and data, so
            # cross-validation folds never share one), locked while it runs.
            key = _checkpoint.fit_key(
                self, seed, (x_train, y_train, x_val, y_val, sample_weight), extra=class_weight,
                warm_model=self.model_ if warm else None,
            )
            state = _checkpoint.TrainingState.of_fit(self.checkpoint_dir, key).acquire()
            # Weights, optimizer state (its step count drives the schedule)
            # and the epoch reached, saved after every epoch.
            callbacks.append(_checkpoint.SaveEachEpoch(state))
        keras_verbose = {0: 0, 1: 2}.get(int(self.verbose), 1)
        steps_per_epoch = -(-len(x_train) // self.batch_size)
        n_steps = steps_per_epoch * self.epochs
        eager = n_steps <= EAGER_MAX_STEPS

        try:
            with _SeededContext(seed):
                # A warm start keeps the network, its input scaling and its
                # augmentation; only the training (optimizer, rate, epochs) is new.
                model = self.model_ if warm else self._assemble_model(x_train, n_outputs, seed)
                learning_rate = self._learning_rate(n_steps)
                # Recorded first, so a plateau reduction shows from the next epoch.
                callbacks.insert(0, keras.callbacks.LambdaCallback(
                    on_epoch_end=lambda epoch, logs: logs.update(learning_rate=float(
                        keras.ops.convert_to_numpy(model.optimizer.learning_rate)
                    ))
                ))
                model.compile(
                    optimizer=self._make_optimizer(learning_rate),
                    loss=loss,
                    metrics=metrics,
                    run_eagerly=eager,
                    jit_compile=False if eager else self.jit_compile,
                )
                initial_epoch, history = 0, None
                if state is not None:
                    initial_epoch, history = state.restore(model)
                if history is None:  # a final state (history) needs no more training
                    if self.degrade:
                        probabilities = self.degrade if isinstance(self.degrade, dict) else None
                        data = {"x": DegradedBatches(
                            x_train, y_train, sample_weight, self.batch_size, probabilities,
                            seed=0 if seed is None else seed, initial_epoch=initial_epoch,
                        )}
                    else:
                        data = {"x": x_train, "y": y_train, "batch_size": self.batch_size,
                                "sample_weight": sample_weight, "class_weight": class_weight,
                                "shuffle": True}
                    history = model.fit(
                        **data,
                        epochs=self.epochs,
                        initial_epoch=initial_epoch,
                        verbose=keras_verbose,
                        validation_data=(x_val, y_val) if has_val else None,
                        callbacks=callbacks,
                    ).history
            history = {k: [float(v) for v in vals] for k, vals in history.items()}
            if state is not None:
                if getattr(self, "_keep_checkpoint", False):
                    # The caller removes it once the model is saved
                    # (_discard_checkpoint): a kill before then loses nothing.
                    state.save_final(model, history)
                    self._kept_checkpoint = str(state.folder)
                else:
                    state.discard()
        finally:
            if state is not None:
                state.release()
        self.model_ = model
        # A warm start trained the same model further: its inference
        # copies (folded weights) are stale.
        _INFERENCE_MODELS.pop(model, None)
        # A state saved after the last epoch leaves no epoch to train.
        self.history_ = history or {"loss": []}
        self.n_epochs_ = len(self.history_["loss"])
        if has_val and self.n_epochs_:
            self.best_epoch_ = int(np.argmin(self.history_["val_loss"]))
        else:
            self.best_epoch_ = self.n_epochs_ - 1
        self.n_trainable_params_ = count_params(model.trainable_weights)
        self.n_fixed_params_ = count_params(model.non_trainable_weights)
        return self

    def _discard_checkpoint(self):
        """Remove the training state a fit kept, once its model is saved.

        A fit with ``checkpoint_dir`` removes its state when it ends,
        unless ``_keep_checkpoint`` was set to True on the estimator
        beforehand (:func:`fersk.training.train_fer2013` does): then the
        state stays, holding the fitted network, so that a process killed
        before the model is saved resumes without training again, and the
        caller calls this method after saving.  Does nothing when no state
        was kept.
        """
        folder = self.__dict__.pop("_kept_checkpoint", None)
        if folder is not None:
            _checkpoint.TrainingState(folder).discard()

    def _learning_rate(self, n_steps):
        """The learning rate or schedule of a fit of ``n_steps`` steps."""
        if self.learning_rate_schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(self.learning_rate, decay_steps=n_steps)
        if self.learning_rate_schedule == "warmup_cosine":
            warmup = int(round(self.warmup_fraction * n_steps))
            return keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps=max(1, n_steps - warmup), warmup_target=self.learning_rate,
                warmup_steps=warmup,
            )
        return self.learning_rate

    def _make_optimizer(self, learning_rate):
        config = {"learning_rate": learning_rate}
        if self.optimizer == "sgd":
            config.update(momentum=float(self.momentum), nesterov=bool(self.nesterov))
        if self.weight_decay is not None:
            config["weight_decay"] = float(self.weight_decay)
        return keras.optimizers.get({"class_name": self.optimizer, "config": config})

    # --------------------------------------------------------------- predict
    def predict_proba(self, X):
        """Class probabilities, computed in batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_`` (float64, rows sum
            to 1).
        """
        check_is_fitted(self)
        x = self._validate_X(X, reset=False)
        batch = self.predict_batch_size or max(self.batch_size, 256)
        infer = self._inference_model()
        if len(x) > batch:
            # Keras's compiled predict step, traced once per inference
            # model (cached) and reused for every batch.
            proba = np.concatenate(
                [infer.predict_on_batch(x[i : i + batch]) for i in range(0, len(x), batch)]
            )
        else:
            # One batch: tracing would cost more than it saves.
            proba = keras.ops.convert_to_numpy(infer(x, training=False))
        return self._outputs_to_proba(np.asarray(proba, dtype=np.float64))

    def _outputs_to_proba(self, outputs):
        """Probabilities from the network's (view-averaged) outputs."""
        if self._fitted_head_activation() == "tanh":
            # A tanh output trained by squared error on one-hot targets
            # estimates P(class | image) (the regression function of a 0/1
            # target): clipped to [0, 1] and normalised; uniform where every
            # output is <= 0.
            outputs = np.clip(outputs, 0.0, 1.0)
            empty = outputs.sum(axis=1) == 0
            outputs[empty] = 1.0
        return outputs / outputs.sum(axis=1, keepdims=True)

    def _fitted_head_activation(self):
        """The activation of the fitted network's output layer (by name)."""
        last = self.model_.layers[-1]
        last = last.layers[-1] if hasattr(last, "layers") else last
        activation = getattr(last, "activation", None)
        return getattr(activation, "__name__", "softmax")

    def _views(self, z):
        """The test-time views of standardised images ``z`` (a Keras tensor)."""
        crop = self._crop_layer()
        if crop is None:
            if self.test_time_crops == "five":
                raise ValueError(
                    "test_time_crops='five' needs a network trained on crops; this one was "
                    "fitted with crop_size=None."
                )
            views = [z]
        else:
            h, w = crop.height, crop.width
            height, width = self.model_.input_shape[1:3]
            top, left = (height - h) // 2, (width - w) // 2
            corners = [(top, left)]
            if self.test_time_crops == "five":
                corners += [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w)]
            views = [z[:, t : t + h, c : c + w, :] for t, c in corners]
        if self.test_time_flip:
            views += [keras.ops.flip(v, axis=2) for v in views]
        return views

    def _crop_layer(self):
        return next((la for la in self.model_.layers if isinstance(la, RandomCenterCrop)), None)

    def _inference_model(self):
        """``model_``'s inference path with the test-time views averaged.

        Built from the fitted layers (input scaling, then the views, then
        the network with its batch norm folded); cached per fitted model and per
        test-time setting, outside the estimator (prediction leaves its
        ``__dict__`` alone, as scikit-learn requires).
        """
        key = (self.test_time_flip, self.test_time_crops, self.jit_compile is True)
        cached = _INFERENCE_MODELS.setdefault(self.model_, {})
        if key in cached:
            return cached[key]
        inputs = keras.Input(shape=self.model_.input_shape[1:], name="images")
        z = inputs
        for layer in self.model_.layers:
            if isinstance(layer, keras.layers.Normalization):
                z = layer(z)
        if "network" not in cached:
            # Batch norm folded into the convolutions: the same outputs up
            # to float rounding, faster (fersk._inference).
            cached["network"] = fold_batch_norm(self.model_.layers[-1])
        network = cached["network"]
        probas = [network(v) for v in self._views(z)]
        outputs = probas[0] if len(probas) == 1 else keras.layers.Average()(probas)
        infer = keras.Model(inputs, outputs, name="fersk_inference")
        # XLA only when asked for: Keras's "auto" picks it, and on CPUs its
        # convolutions are slower than TensorFlow's own (bench_predict.py).
        infer.compile(jit_compile=self.jit_compile is True)
        cached[key] = infer
        return infer

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_features)
            Images of the shape seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The most probable class of each image, from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # ----------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(super().__getstate__())
        if isinstance(state.get("model_"), keras.Model):
            state["model_"] = _KerasModelBytes(state["model_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("model_"), _KerasModelBytes):
            state["model_"] = state["model_"].load()
        # Pickled by an older fersk: parameters added since take their
        # defaults, which keep the old behaviour (get_params and clone work).
        defaults = inspect.signature(type(self).__init__).parameters
        for name in self._get_param_names():
            if name not in state and defaults[name].default is not inspect.Parameter.empty:
                state[name] = defaults[name].default
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False  # random_state makes CPU runs repeatable
        tags.input_tags.allow_nan = False
        return tags
