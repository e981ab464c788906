"""The parameters of the fersk Keras estimators: their values and their documentation.

The option values (optimizers, schedules, test-time crops, augmentation
strengths) that the estimators validate, and the numpydoc text of the
parameters they share, written once: :func:`document_parameters` puts the
entries each estimator has, with its own defaults, into its docstring.
"""

import inspect
import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from fersk._constraints import ImageShape, IntPair, KeywordDict, without_bools
from fersk.degrade import PROBABILITIES

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


def view_corners(image_hw, window_hw, test_time_crops):
    """Top-left corners of the test-time windows of ``window_hw`` in images
    of ``image_hw``: the centre, then (``"five"``) the four corners.  The
    one rule of the Keras networks and their ONNX twins; the mirror images
    (``test_time_flip``) are added by the caller.  ``window_hw`` None: the
    network was fitted without crops, its one view is the whole image."""
    if window_hw is None or tuple(window_hw) == tuple(image_hw):
        if test_time_crops == "five":
            raise ValueError(
                "test_time_crops='five' needs a network trained on crops smaller than the "
                "images; crop_size is None or as large as the image "
                f"({image_hw[0]}x{image_hw[1]}). Set a smaller crop_size, or "
                "test_time_crops='center'."
            )
        return [(0, 0)]
    (height, width), (h, w) = image_hw, window_hw
    corners = [((height - h) // 2, (width - w) // 2)]
    if test_time_crops == "five":
        corners += [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w)]
    return corners

def proba_margin(proba):
    """Each row's highest probability minus its second highest: how sure
    the view was (the gate of ``test_time_margin``)."""
    top = np.sort(np.asarray(proba), axis=1)
    return top[:, -1] - top[:, -2] if top.shape[1] > 1 else np.ones(len(top))


def finite_outputs(outputs, owner):
    """``outputs`` (a network's, one row an image), refused where not finite.

    A network whose weights diverged in training (a learning rate too high)
    gives NaN rows, and ``argmax`` read them as the first class: a label
    for every image without a word.

    Examples
    --------
    >>> finite_outputs(np.array([[0.2, 0.8]]), "CNNClassifier").tolist()
    [[0.2, 0.8]]
    """
    bad = ~np.isfinite(outputs).all(axis=1) if outputs.ndim == 2 else ~np.isfinite(outputs)
    if bad.any():
        raise ValueError(
            f"{owner}: the network's outputs are not finite (NaN or infinity) for "
            f"{int(bad.sum())} of {len(bad)} images (the first: "
            f"{np.flatnonzero(bad)[:5].tolist()}): its weights are not finite, a training "
            "that diverged (fit again with a lower learning_rate, or with sample or class "
            "weights nearer 1)."
        )
    return outputs


def tanh_proba(outputs):
    """Probabilities from a tanh head's outputs (one row per image).

    A tanh output trained by squared error on one-hot targets estimates
    P(class | image) (the regression function of a 0/1 target): clipped to
    [0, 1] and normalised.  A row whose every output is <= 0 says no class
    is likely; its probabilities are then the softmax of the outputs, so
    that the most probable class is still the network's highest output
    (uniform rows made ``predict`` answer ``classes_[0]`` for all of them).

    Examples
    --------
    >>> tanh_proba(np.array([[0.6, 0.2, -0.1], [-0.9, -0.2, -0.7]])).argmax(axis=1)
    array([0, 1])
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    proba = np.clip(outputs, 0.0, 1.0)
    empty = proba.sum(axis=1) == 0
    if empty.any():
        rows = np.exp(outputs[empty] - outputs[empty].max(axis=1, keepdims=True))
        proba[empty] = rows
    return proba / proba.sum(axis=1, keepdims=True)


def view_margin(outputs, head):
    """How sure one view is, in [0, 1], from the network's ``outputs`` (one
    row an image): a softmax head's top-two probability margin; a tanh
    head's half gap between its two highest outputs (they range over
    [-1, 1]), read on their own scale: clipped and normalised, one output
    barely above 0 became one-hot, as sure as can be.

    Examples
    --------
    >>> view_margin(np.array([[0.02, -0.01, -0.9]]), "tanh").round(3).tolist()
    [0.015]
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if head == "tanh":
        return np.clip(proba_margin(outputs) / 2, 0.0, 1.0)
    return proba_margin(outputs / outputs.sum(axis=1, keepdims=True))


def gated_mean(first, sureness, margin, n_views, outputs_of_rest):
    """The mean over ``n_views`` test-time views, the views beyond the first
    computed only where the first view's ``sureness`` (:func:`view_margin`)
    is below ``margin``: ``first`` (the first view's outputs) there mixed
    with ``outputs_of_rest(unsure)`` (the mean of the other views for those
    rows), as ``(first + (n - 1) * rest) / n``, which is the mean of all
    the views to float rounding."""
    if n_views == 1 or not len(first):
        return first
    unsure = np.asarray(sureness) < margin
    if not unsure.any():
        return first
    outputs = np.array(first, copy=True)
    outputs[unsure] = (outputs[unsure] + (n_views - 1) * outputs_of_rest(unsure)) / n_views
    return outputs

#: Strength of the ``augment=True`` transformations (standard FER practice:
#: horizontal flips, shifts and zoom of 10 %, rotations of +-10 degrees).
AUGMENTATION = {"shift": 0.1, "zoom": 0.1, "rotation_degrees": 10.0}

#: The constraints of the parameters every fersk Keras estimator takes
#: (scikit-learn's ``_parameter_constraints``), here apart from Keras so that
#: the ONNX loader checks a model folder's saved settings as the Keras
#: loader does, without importing TensorFlow.
SHARED_CONSTRAINTS = without_bools({
    "image_shape": [ImageShape(), None],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "epochs": [Interval(Integral, 1, None, closed="left")],
    "optimizer": [StrOptions(OPTIMIZERS)],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "learning_rate_schedule": [StrOptions(set(LEARNING_RATE_SCHEDULES))],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
    "augment": ["boolean", KeywordDict({
        **dict.fromkeys(AUGMENTATION, Interval(Real, 0, None, closed="left")),
        # A scale of 1 +- zoom: from 1 on, a face is drawn at scale 0 or
        # below (mirrored through its centre, upside down).
        "zoom": Interval(Real, 0, 1, closed="left"),
    })],
    "input_scaling": [StrOptions({"standardize", "none"})],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "predict_batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "test_time_flip": ["boolean"],
    "warm_start": ["boolean"],
    "crop_size": [Interval(Integral, 1, None, closed="left"), IntPair(), None],
    "test_time_crops": [StrOptions(set(TEST_TIME_CROPS))],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "nesterov": ["boolean"],
    "weight_decay": [Interval(Real, 0, None, closed="left"), None],
    "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
    "random_erasing": [Interval(Real, 0, 1, closed="both")],
    "degrade": ["boolean", PROBABILITIES, None],
    "jit_compile": ["boolean", StrOptions({"auto"})],
    "checkpoint_dir": [str, os.PathLike, None],
    # Every subclass takes source_weight: the weights are read here (_fit_sample_weight).
    "source_weight": [StrOptions({"balanced"}), dict, None],
})

#: ``head`` of the classifiers (CNNClassifier's output activation).
HEAD_CONSTRAINT = [StrOptions({"softmax", "tanh"})]


def _choices(values):
    return "{" + ", ".join(f'"{v}"' for v in values) + "}"


#: The numpydoc entries of the parameters the Keras estimators share,
#: written once (without defaults: :func:`document_parameters` takes each
#: estimator's from its signature, and keeps only the parameters it has).
PARAMETERS_DOC = """
image_shape : tuple of int or None
    How flattened 2-D rows are images, ``(height, width[, channels])``
    (one entry may be -1); None means square grey images in ``fit``, and
    after it rows as long as the images ``fit`` saw are read in their
    shape.  Ignored for 3-D/4-D input.
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
    "disgust" has 16 times fewer faces than "happy"), over the classes
    ``y`` names (a class only ``sample_proba`` adds keeps weight 1).
    Dict keys are labels of ``y``; an unknown key, or a value that is not
    a finite number >= 0 (or all values 0), is a ValueError before
    training.  Each
    image gets the weight of its label in ``y``, also when ``fit``'s
    ``sample_proba`` gives it another most probable class.
source_weight : dict, "balanced" or None
    Weights of the sources (domains) of a multi-domain training set,
    read from ``fit``'s ``source`` (each image's source): "balanced" gives
    every source of the fit the same total weight
    (``n_samples / (n_sources * n_in_its_source)``, as a classifier's
    ``class_weight`` does for classes); a dict the weight of each image
    of a source (sources not in it: 1.0; a source absent from the fit, as
    in a fold that leaves it out, is ignored; a value that is not a finite
    number >= 0 is a ValueError).  Multiplies ``sample_weight`` (and a
    classifier's ``class_weight``); as an estimator parameter,
    ``GridSearchCV`` can tune it.  Needs ``fit(..., source=...)``.
augment : bool or dict
    Standard FER augmentation in training only: random horizontal
    flips, then shifts and zoom of up to 10 % and rotations up to +-10
    degrees in one bilinear resampling
    (:class:`fersk.layers.RandomAffine`, which XLA compiles), seeded
    from ``random_state``.  A dict sets the strengths, any of
    ``{"shift": 0.1, "zoom": 0.1, "rotation_degrees": 10.0}`` (the
    defaults; 0 turns one off; ``zoom`` below 1), e.g.
    ``{"shift": 0.05, "zoom": 0}``.
input_scaling : {"standardize", "none"}
    "standardize" puts a ``keras.layers.Normalization`` with the
    per-channel mean and variance of the training images (weighted by
    ``fit``'s ``sample_weight`` where it takes one) at the model's input
    (saved with the model); "none" feeds values as they are.
random_state : int, RandomState instance or None
    Seeds weights, LBC anchors, dropout, shuffling, augmentation and the
    validation split (``keras.utils.set_random_seed``; Python's, NumPy's
    and Keras's global random states are restored after ``fit``,
    TensorFlow's global seed is left at this one).  The same value
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
    and augmentation stay those of the first fit: the settings built into
    the network (``architecture``, ``architecture_params`` or an LBCNN's
    own, ``augment``, ``random_erasing``, ``input_scaling``, ``crop_size``,
    the output activation) changed since the network was built by this
    estimator are a ValueError (a network loaded from a folder is taken as
    it is); the optimizer is new, with this fit's ``optimizer``,
    ``learning_rate`` and schedule.  ``y`` must have the classes (a
    regressor: the number of outputs) of the previous fit (a ValueError
    otherwise); ``history_``,
    ``n_epochs_`` and ``best_epoch_`` describe the last fit.  A warm fit
    that fails or is interrupted (Ctrl-C) puts the network's weights back
    as they were before it, as any failed fit leaves the estimator.
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
    window and its mirror image, ten views, ten times the work).  "five"
    needs a ``crop_size`` smaller than the images: ``fit`` refuses it
    otherwise (a ValueError, before training).
test_time_margin : float in [0, 1] or None
    Confidence-gated test-time views.  None: every face gets every view
    of ``test_time_crops`` and ``test_time_flip``.  A number: each face is
    first predicted from its centre view alone, and only the faces whose
    two highest probabilities there differ by less than
    ``test_time_margin`` (a tanh head: half the gap between its two
    highest outputs) get the other views, averaged with it as
    usual; the others keep the centre view's prediction.  0 leaves every
    face at one view, 1 gives (nearly) every face all of them.  A sure
    face rarely changes its answer with more views, so a margin of
    about 0.3 keeps the accuracy of all views at a fraction of their
    work (benchmarks/RESULTS.md, "Gated views").
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
    of it) set to 0 after input scaling: the mean pixel under
    ``input_scaling="standardize"``, black under ``"none"`` (Zhong et al., AAAI 2020;
    :class:`fersk.layers.RandomErasing`); 0 turns it off.
degrade : bool, dict or None
    Domain-robust augmentation, in training only: each training image is,
    anew every epoch, blurred, JPEG re-encoded, given sensor noise,
    re-exposed (gamma and contrast), shifted and scaled as a detector's
    boxes are, or partly covered, each with its own probability
    (:func:`fersk.degrade.degrade_faces`; a dict sets some of the
    probabilities of :data:`fersk.degrade.DEGRADATIONS`, True uses them
    all).  Runs on the CPU beside the network; needs uint8 images (the
    crops of :class:`~fersk.FaceCropper`).  None or False: off.  The
    draws follow ``random_state`` and the epoch of this fit: a
    ``warm_start`` fit with the same ``random_state`` degrades (and
    orders) its epochs as the fit before it did its own, as scikit-learn's
    warm starts redraw; give another ``random_state`` for others.
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
    ``checkpoint_dir`` and the prediction-time ones; they must pickle, so a
    callable ``architecture`` is defined at module level, and enters the
    key by its name and its own code: not the globals or other functions
    it calls), the training data and, for a warm start, the starting
    weights: a fit with the same parameters and data that finds a state
    there continues from it instead of starting again, so an interrupted
    long run resumes where it stopped, while other fits (cross-validation
    folds, even in parallel) keep apart.  Files are written under a
    temporary name then renamed, the previous epoch's state is kept too,
    and a damaged file is set aside with a warning.  A fit whose state
    another live fit holds meanwhile (a lock file: the same parameters
    and data, e.g. search candidates differing only in ``test_time_flip``
    run in parallel) trains without a state, with a warning, and never
    reads or writes the other's.  The
    sub-folder is removed when the fit completes; nothing else in the
    folder is touched.  A resumed fit ends as the uninterrupted one
    would, weights, ``history_`` and ``best_epoch_`` alike (same machine
    and versions): the batches come in a seeded order per epoch, and the
    state keeps the history so far, the counters of early stopping (and
    whether it had stopped the training) and of the plateau schedule,
    the best epoch's weights and the random generators of dropout and
    augmentation.  The docs' "What survives a crash" says more.""".replace("{schedules}", _choices(LEARNING_RATE_SCHEDULES)).replace(
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
    ``n_jobs=1`` is usually as fast, since Keras already uses every core.

    Threads may share a fitted estimator for prediction: each gets the
    answer it would alone.  A prediction that overlaps a change of the same
    network's weights (``fit``, ``model_.set_weights``) answers from the old
    weights, the new ones or a mix of them: change weights between
    predictions (``fersk serve`` runs one request at a time)."""

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
