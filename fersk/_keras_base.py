"""One scikit-learn base class for every fersk Keras network.

:class:`BaseKerasImageEstimator` does what all network estimators need,
whatever their targets: image validation (batches or flattened rows),
building the network from the parameters in ``fit``, input scaling and
augmentation inside the model, training through ``model.fit`` (validation
split, early stopping with best-weights restore, checkpoints), seeding,
batched prediction of the network's raw outputs with the test-time views,
and pickling through Keras's own ``.keras`` format.  It knows nothing of
labels or of what the outputs mean: :class:`fersk._keras_classifier.BaseKerasImageClassifier`
adds the classifier (labels, class weights, soft targets, probabilities)
and :class:`fersk.CNNRegressor` the regressor, each with its own ``fit``.

Subclasses implement ``_build_network(input_shape, n_outputs, seed)``
returning an uncompiled :class:`keras.Model` with ``n_outputs`` outputs.
The parameter values and their shared documentation are in
:mod:`fersk._keras_params`.
"""

import inspect
import os
import random
import tempfile
import threading
import warnings
import weakref
from numbers import Integral

import keras
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

import fersk.layers  # noqa: F401  (registers the custom layers for loading)
from fersk import _checkpoint
from fersk._batches import DegradedBatches, ShuffledBatches
from fersk._image_files import check_float32_range, pixels_for_network
from fersk._inference import features_network, fold_batch_norm

# Re-exported: the estimators' modules (and user code) import them from here.
from fersk._keras_params import (  # noqa: F401
    AUGMENTATION,
    EAGER_MAX_STEPS,
    LEARNING_RATE_SCHEDULES,
    NOTES_DOC,
    OPTIMIZERS,
    PARAMETERS_DOC,
    PARAMETERS_MARKER,
    SHARED_CONSTRAINTS,
    TEST_TIME_CROPS,
    view_corners,
    finite_outputs,
    document_parameters,
)
from fersk._source_weights import _check_source_weights, source_sample_weight
from fersk._validation import validate_images
from fersk._warnings import warn_user
from fersk.layers import RandomAffine, RandomCenterCrop, RandomErasing


#: Inference models (test-time views + network) of fitted Keras models, by
#: setting; an entry goes with its fitted model.
_INFERENCE_MODELS = weakref.WeakKeyDictionary()
_INFERENCE_LOCK = threading.Lock()


def _folded_source(network, folded):
    """``(variable, value)`` of every weight of ``network`` that ``folded``
    holds a copy of (the convolutions and batch norms folded): the layers it
    shares read the network's variables, these copies do not."""
    shared = {id(layer) for layer in folded.layers}
    return [
        (v, np.array(keras.ops.convert_to_numpy(v), copy=True))
        for layer in network.layers if id(layer) not in shared for v in layer.weights
    ]


def _inference_cache(model):
    """The cache of ``model``'s inference models (in :data:`_INFERENCE_MODELS`),
    its ``"network"`` the network with batch norm folded.

    The folded copy holds weights of the moment it was built, so it, and
    every inference model built on it, is dropped and built again when the
    weights it was folded from have changed in place since (``model_``'s
    ``set_weights``, ``load_weights`` or ``fit``).  Only those weights are
    compared (those the folded copy shares are read live), exactly: a few
    milliseconds for the bundled networks at full width, far less than a
    forward pass over a batch.

    A new cache replaces a stale one whole, in one assignment: a prediction
    in another thread holds the old one or the new one, never one emptied
    while it reads it (``KeyError: 'network'``).  Predicting while the
    weights change in place gives answers of either weights or of a mix of
    them (the folded copy shares the dense layers' live weights): a
    prediction must not overlap a change of the weights it reads.
    """
    cached = _INFERENCE_MODELS.get(model)
    if cached is not None and _fresh(cached):
        return cached
    with _INFERENCE_LOCK:  # one fold at a time, not one per thread that found it stale
        cached = _INFERENCE_MODELS.get(model)
        if cached is None or not _fresh(cached):
            network = model.layers[-1]
            # Batch norm folded into the convolutions: the same outputs up to
            # float rounding, faster (fersk._inference).
            folded = fold_batch_norm(network)
            cached = {"folded_from": _folded_source(network, folded), "network": folded}
            _INFERENCE_MODELS[model] = cached
    return cached


def _fresh(cached):
    """Whether the weights a cache's folded copy was made from are unchanged."""
    source = cached.get("folded_from")
    return source is not None and all(
        np.array_equal(keras.ops.convert_to_numpy(v), value, equal_nan=True)
        for v, value in source
    )


class _KerasModelBytes:
    """A Keras model serialised in the ``.keras`` zip format (for pickling),
    with the states of its random generators (dropout, random crops), which
    the format leaves out: loaded, they were drawn anew from Python's global
    generator, so a warm start after a pickle round trip depended on the
    caller's random state, not on ``random_state``."""

    def __init__(self, model):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            with open(path, "rb") as f:
                self.data = f.read()
        self.seed_states = _checkpoint._seed_states(model)

    def load(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            with open(path, "wb") as f:
                f.write(self.data)
            model = keras.saving.load_model(path, safe_mode=True)
        # getattr: bytes pickled by an earlier fersk hold no states.
        _checkpoint._set_seed_states(model, getattr(self, "seed_states", []))
        return model


try:  # Keras's random globals: put back after a seeded fit
    from keras.src.backend.common import global_state as _keras_global_state
except ImportError:  # pragma: no cover  (another Keras layout: left at the fit's seed)
    _keras_global_state = None
#: ``keras.utils.set_random_seed`` sets the first and drops the second.
_KERAS_RANDOM_GLOBALS = ("global_random_seed", "global_seed_generator")

try:  # where Keras 3 draws the seeds it is not given (Python's global ``random``)
    from keras.src.random import seed_generator as _keras_seed_generator
except ImportError:  # pragma: no cover  (another Keras layout: global seeding only)
    _keras_seed_generator = None


class _ThreadRandom:
    """Keras's source of missing seeds, one per thread.

    Keras draws every seed it is not given (layers, initializers, seed
    generators) from ``keras.src.random.seed_generator.python_random``,
    Python's global generator.  This stands in for it: a thread inside a
    seeded fersk fit draws from that fit's private generator, every other
    thread from Python's global one as before.  So a model built in another
    thread meanwhile (a prediction's inference model, a user's layers)
    takes no draws from the fit's generator.
    """

    def __init__(self):
        self._local = threading.local()

    def __getattr__(self, name):
        return getattr(getattr(self._local, "rng", None) or random, name)

    def swap(self, rng):
        """Make ``rng`` this thread's generator (None: Python's global one);
        return the previous one."""
        previous = getattr(self._local, "rng", None)
        self._local.rng = rng
        return previous


_THREAD_RANDOM = None
if _keras_seed_generator is not None and hasattr(_keras_seed_generator, "python_random"):
    _THREAD_RANDOM = _keras_seed_generator.python_random
    if not isinstance(_THREAD_RANDOM, _ThreadRandom):  # a reload of this module keeps the first
        _THREAD_RANDOM = _keras_seed_generator.python_random = _ThreadRandom()

#: Held by every fit while it builds and trains its network (see _SeededContext).
_FIT_LOCK = threading.RLock()


class _SeededContext:
    """Seed Python, NumPy and the backend; restore Python's and NumPy's state after.

    ``keras.utils.set_random_seed`` seeds the global generators that Keras
    draws layer seeds, initial weights, dropout masks and shuffling from.
    The global Python and NumPy states and Keras's global seed and
    generator (``keras.random`` without a seed) are put back afterwards,
    so fitting does not change those streams of the caller; TensorFlow's
    global seed (``tf.random.set_seed``) is left at the fit's seed (TF has
    no public way to read it back).

    Keras draws the seed of every layer, initializer and random op made
    without one from Python's global generator, which the other threads of
    the process draw from too (a Dask worker's or client's event loop:
    retry jitter, worker choice; a prediction building its inference
    model), so the same seed could build another network there.  Inside
    the context this thread's Keras draws come from a private generator
    with the same seed instead (:class:`_ThreadRandom`; the same draws as
    the global one gives a process with no other thread), which no other
    thread touches.

    TensorFlow's global seed and its operation-seed counter (the data
    shuffling draws from them) are one per process: two fits running at
    once in threads of one process would reseed and advance each other's
    (nested ``joblib`` calls on Dask run an ensemble's members as tasks in
    threads of one worker; ``prefer="threads"``).  So every fit, seeded or
    not, holds one process-wide lock while inside: fits in threads of one
    process run one after the other, each as it would alone.  Fits in
    separate processes (joblib's default ``loky``, Dask workers) still run
    in parallel.
    """

    def __init__(self, seed):
        self.seed = seed

    def __enter__(self):
        _FIT_LOCK.acquire()
        try:
            if self.seed is not None:
                self._py = random.getstate()
                self._np = np.random.get_state()
                # Keras's own global seed and the generator keras.random draws
                # unseeded numbers from: set_random_seed replaces both.
                self._keras = () if _keras_global_state is None else tuple(
                    _keras_global_state.get_global_attribute(name) for name in _KERAS_RANDOM_GLOBALS)
                keras.utils.set_random_seed(self.seed)
                if _THREAD_RANDOM is not None:
                    self._previous = _THREAD_RANDOM.swap(random.Random(self.seed))
        except BaseException:
            _FIT_LOCK.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.seed is not None:
                if _THREAD_RANDOM is not None:
                    _THREAD_RANDOM.swap(self._previous)
                random.setstate(self._py)
                np.random.set_state(self._np)
                for name, value in zip(_KERAS_RANDOM_GLOBALS, self._keras):
                    _keras_global_state.set_global_attribute(name, value)
        finally:
            _FIT_LOCK.release()
        return False


def _weighted(sample_weight, class_weight, y):
    """One weight per sample: ``sample_weight`` (None: 1) times the weight
    ``class_weight`` gives its class, the class read from ``y`` as Keras
    reads it for its own ``class_weight`` (codes, or the argmax of rows).
    The classifiers pass no ``class_weight`` here: their ``fit`` weighs each
    image by its label's class itself, soft targets included."""
    if class_weight is None:
        return sample_weight
    y = np.asarray(y)
    if y.ndim == 2:
        codes = np.rint(y[:, 0]) if y.shape[1] == 1 else y.argmax(axis=1)
    else:
        codes = y
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    return w * np.array([class_weight[int(c)] for c in codes])


def _same_setting(a, b):
    """Whether two parameter values are the same setting (``==``; a value
    that cannot be compared so, such as an array, by identity)."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return a is b


def _last_layer(network):
    """``network``'s output layer (the last layer, looking into nested models)."""
    last = network
    while isinstance(last, keras.Model) and last.layers:
        last = last.layers[-1]
    return last


def _output_activation(network):
    """The name of the activation of ``network``'s output layer; "softmax"
    when that layer names none (a ``Softmax`` layer, a custom one:
    :func:`_outputs_probabilities` tells the rest apart)."""
    activation = getattr(_last_layer(network), "activation", None)
    return getattr(activation, "__name__", "softmax")


def _outputs_probabilities(network):
    """Whether ``network``, whose output layer names no activation, outputs
    probabilities (rows >= 0 summing to 1) for a few random images: a
    ``Softmax`` layer does, logits behind a ``Reshape`` do not.  True when
    its output layer names an activation (read by name) or it cannot be
    called on such images (nothing to tell)."""
    last = _last_layer(network)
    if hasattr(last, "activation") or isinstance(last, keras.layers.Softmax):
        return True
    if len(network.inputs) != 1:
        return True
    shape = [48 if d is None else int(d) for d in network.inputs[0].shape[1:]]
    x = np.random.RandomState(0).uniform(0, 1, (4, *shape)).astype("float32")
    try:
        out = keras.ops.convert_to_numpy(network(x, training=False)).astype(np.float64)
    except Exception:  # noqa: BLE001  (a network that takes other images)
        return True
    return bool(np.isfinite(out).all() and out.min() >= -1e-6
                and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3))


def _weights_of(model, values):
    """The arrays of ``model.weights`` among ``values``, the arrays of
    ``model.variables`` (a superset: random generator states too)."""
    by_variable = {id(v): a for v, a in zip(model.variables, values)}
    return [by_variable[id(w)] if id(w) in by_variable else keras.ops.convert_to_numpy(w)
            for w in model.weights]


def _best_epoch(val_loss):
    """The epoch whose weights EarlyStopping restores: the first lowest
    finite validation loss (a NaN epoch is never an improvement; with none
    finite, the first epoch's weights are kept).

    Examples
    --------
    >>> _best_epoch([float("nan"), 0.5, 0.4, 0.4])
    2
    """
    loss = np.asarray(val_loss, dtype=np.float64)
    finite = np.isfinite(loss)
    return int(np.argmin(np.where(finite, loss, np.inf))) if finite.any() else 0


def _channel_moments(x, sample_weight=None):
    """Per-channel mean and variance of images ``x`` (n, h, w, c), float64.

    With ``sample_weight`` each image counts as many times as its weight
    says (scikit-learn's reading of weights: 2 is the image twice), so the
    input standardisation is that of the data the loss is weighted by.

    Examples
    --------
    >>> x = np.array([0.0, 4.0]).reshape(2, 1, 1, 1)
    >>> _channel_moments(x, [1, 3])  # as the images 0, 4, 4, 4
    (array([3.]), array([3.]))
    """
    if sample_weight is None:
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        return flat.mean(axis=0), flat.var(axis=0)
    # Each image's channel means of x and x**2, a chunk at a time (a float64
    # copy of every pixel, and its weights, would double a large fit's memory).
    w = np.asarray(sample_weight, dtype=np.float64)
    first, second = [], []
    for start in range(0, len(x), 4096):
        part = x[start:start + 4096].reshape(min(4096, len(x) - start), -1, x.shape[-1])
        part = part.astype(np.float64)
        first.append(part.mean(axis=1))
        second.append((part ** 2).mean(axis=1))
    mean = np.average(np.concatenate(first), axis=0, weights=w)
    square = np.average(np.concatenate(second), axis=0, weights=w)
    return mean, np.maximum(square - mean ** 2, 0.0)


def count_params(weights):
    """Number of values in ``weights`` (Keras variables or arrays): one rule for
    every parameter count of fersk's networks."""
    return int(sum(int(np.prod(w.shape)) for w in weights))


class BaseKerasImageEstimator(BaseEstimator):
    """Base of the fersk Keras estimators (private; see the subclasses).

    The model fitted is ``input -> [Normalization] -> [augmentation] ->
    network``, where the network comes from ``_build_network``.  With
    ``input_scaling="standardize"`` the ``keras.layers.Normalization`` is
    given the per-channel mean and variance of the training images (after
    any validation split, weighted by ``sample_weight``), so raw uint8
    faces, float images or mapped-LBP codes all reach the network
    standardised, and the scaling is saved with the model.  The augmentation layers are Keras's random preprocessing
    layers, which are active only in training.

    The subclasses' ``fit`` validates the targets, then calls ``_train``;
    their prediction methods read the network's outputs from
    ``_predict_outputs``.

    It has no ``__init__``: each estimator lists its parameters in its own
    explicit signature (scikit-learn reads them there) and stores them with
    :func:`store_parameters`; :data:`PARAMETERS_DOC` documents them and
    ``_parameter_constraints`` validates them.
    """

    #: Fitted attributes a model folder (:mod:`fersk.pretrained`) stores in
    #: ``pipeline.json``; ``model_`` travels in its own ``.keras`` file.
    _saved_attributes = (
        "n_features_in_", "feature_names_in_", "image_shape_", "input_dtype_", "input_range_",
        "history_",
        "n_epochs_", "best_epoch_", "n_trainable_params_", "n_fixed_params_",
    )

    #: What the network's last layer must give, for the error of a builder
    #: whose output has another shape.
    _outputs_meaning = "one value per output"

    # Kept apart from Keras (fersk._keras_params): the ONNX loader checks a
    # folder's saved settings with them, without TensorFlow.
    _parameter_constraints = dict(SHARED_CONSTRAINTS)

    def _source_sample_weight(self, source, n_samples, kept=None):
        """Each image's weight from its ``source`` by ``source_weight``
        (None when ``source_weight`` is None), counting only the images
        ``kept`` (a mask; the others get 0)."""
        if source is not None:
            source = column_or_1d(np.asarray(source), warn=True)
            if source.dtype == object:  # names of mixed types (None, str) sort as text
                source = source.astype(str)
            if len(source) != n_samples:
                raise ValueError(
                    f"source has {len(source)} entries for {n_samples} images; it must name "
                    "each image's source, in order."
                )
        if self.source_weight is None:
            return None
        if source is None:
            raise ValueError(
                f"source_weight={self.source_weight!r} weighs the images by their source: pass "
                "fit(X, y, source=...) (in a Pipeline or GridSearchCV, under "
                "sklearn.set_config(enable_metadata_routing=True), request it with "
                "set_fit_request(source=True))."
            )
        if kept is not None and not kept.all():
            weight = np.zeros(n_samples)
            if kept.any():
                weight[kept] = self._source_sample_weight(source[kept], int(kept.sum()))
            return weight
        names = set(source.tolist())
        weights = self.source_weight
        if isinstance(weights, dict):
            if source.dtype.kind == "U":  # sources are text: so are the keys (None -> "None")
                weights = {str(k): v for k, v in weights.items()}
            _check_source_weights(weights, "source_weight")
            if weights and not names & set(weights):
                # A fold that leaves a source out is fine; a misspelt key is not.
                warn_user(
                    f"source_weight names no source of this fit ({sorted(map(str, weights))}; the fit's "
                    f"sources are {sorted(map(str, names))}): every image keeps weight 1."
                )
            # A source absent from this fit (a cross-validation fold that
            # leaves it out) keeps its weight for the fits that have it.
            weights = {k: v for k, v in weights.items() if k in names}
        weight = source_sample_weight(source, weights)
        if not (weight > 0).any():
            raise ValueError(
                f"source_weight={self.source_weight!r} gives every image weight 0 (sources "
                f"{sorted(map(str, names))})."
            )
        return weight

    def _fit_sample_weight(self, x, sample_weight, source):
        """Each image's weight in this fit: ``sample_weight`` (checked, 1 when
        None) times its source's by ``source_weight``; None when neither is
        given.  Images of weight 0 are for the caller to leave out."""
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, x, dtype=np.float64, ensure_non_negative=True
            )
        # Images of weight 0 are removed (scikit-learn's rule): not counted
        # in source_weight="balanced"'s shares either.
        by_source = self._source_sample_weight(
            source, len(x), None if sample_weight is None else sample_weight > 0)
        if sample_weight is None and by_source is None:
            return None
        weight = np.ones(len(x)) if sample_weight is None else sample_weight
        if by_source is not None:
            weight = weight * by_source
        if not (weight > 0).any():  # older scikit-learn lets all-zero weights through
            raise ValueError(
                "sample_weight must contain at least one non-zero weight"
                + ("." if by_source is None else " (times source_weight's).")
            )
        positive = weight[weight > 0]
        f32 = np.finfo(np.float32)
        if positive.max() > f32.max or positive.min() < f32.tiny:
            # Keras weighs the loss in float32 and does not normalise the
            # weights: 1e20 fitted to infinite weights, blamed at prediction
            # on the learning rate; 1e-50 became 0 and nothing was learnt.
            raise ValueError(
                f"sample_weight{'' if by_source is None else ' (times source_weight)'} holds "
                f"weights from {positive.min():.3g} to {positive.max():.3g}, beyond what "
                "float32 (the loss) holds ({:.3g} to {:.3g}); scale them nearer 1.".format(
                    f32.tiny, f32.max)
            )
        return weight

    def _without_zero_weight(self, weight, warm, x, *arrays):
        """``(weight, x, *arrays)`` less the images of weight 0 (None arrays
        stay None).  A weight of 0 removes the image (scikit-learn's rule):
        out of the standardisation, the validation hold-out and the batches,
        not only out of the loss; the scale learnt on (``input_range_``)
        becomes that of the images kept, unless the fit is warm."""
        if weight is None or (weight > 0).all():
            return (weight, x, *arrays)
        kept = weight > 0
        x = x[kept]
        if not warm:
            self.input_range_ = (float(x.min()), float(x.max()))
        return (weight[kept], x, *(None if a is None else a[kept] for a in arrays))

    # ------------------------------------------------------------------ hooks
    def _build_network(self, input_shape, n_outputs, seed):  # pragma: no cover
        """The uncompiled network for images of ``input_shape``: ``n_outputs`` outputs."""
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
            # What scale the network learnt on: 0-255 pixels fed to a network
            # of [0, 1] images are refused, not read as glare.
            self.input_range_ = ((float(images.min()), float(images.max()))
                                 if images.size else None)
        else:
            # The pipeline's pixel rule, for the network step on its own too.
            images = pixels_for_network(
                images, getattr(self, "input_dtype_", None), type(self).__name__,
                input_name, getattr(self, "input_range_", None),
            )
        check_float32_range(images, input_name)  # finite here, infinite in float32
        return self._as_model_input(images)

    def _augmentation_strengths(self):
        # augment's keys and values are checked by _parameter_constraints.
        if not isinstance(self.augment, dict):
            return AUGMENTATION if self.augment else None
        return {**AUGMENTATION, **self.augment}

    def _crop_shape(self, input_shape):
        """The (height, width) of ``crop_size`` for images of ``input_shape``, or None.

        ``crop_size``'s form is checked by ``_parameter_constraints``; whether
        it fits the images is known only here.
        """
        if self.crop_size is None:
            return None
        size = self.crop_size
        size = (size, size) if isinstance(size, Integral) else tuple(size)
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
        layers = [keras.layers.RandomFlip("horizontal", seed=s(0), data_format="channels_last",
                                          name="augment_flip")]
        if a["shift"] or a["zoom"] or a["rotation_degrees"]:
            # One XLA-compilable resampling (Keras's rotation and
            # translation layers would switch jit_compile off).
            layers.append(RandomAffine(
                a["rotation_degrees"], a["shift"], a["zoom"], seed=s(1), name="augment_affine"
            ))
        return layers

    def _assemble_model(self, x_train, n_outputs, seed, sample_weight=None):
        """The model of this fit: input, [standardisation, of ``x_train``
        weighted by ``sample_weight``], [augmentation], [crop], network."""
        input_shape = tuple(x_train.shape[1:])
        crop = self._crop_shape(input_shape)
        net_shape = input_shape if crop is None else (*crop, input_shape[-1])
        network = self._build_network(net_shape, n_outputs, seed)
        if not isinstance(network, keras.Model):
            raise ValueError(
                f"the network builder must return a keras.Model; got {type(network).__name__}."
            )
        out_shape = tuple(network.output_shape)
        if out_shape[1:] != (n_outputs,):
            raise ValueError(
                f"the network must output {self._outputs_meaning}, shape (None, "
                f"{n_outputs}); it outputs {out_shape}."
            )
        self._check_network(network)
        inputs = keras.Input(shape=input_shape, name="images")
        z = inputs
        if self.input_scaling == "standardize":
            mean, variance = _channel_moments(x_train, sample_weight)
            # A channel constant in training (an alpha plane, a grey image
            # stored as RGB) is centred, not divided by Keras's epsilon: a
            # different value at prediction would otherwise come out 1e7 times
            # larger (scikit-learn's StandardScaler keeps such a scale at 1).
            variance = np.where(variance <= 1e-12 * (1.0 + mean ** 2), 1.0, variance)
            z = keras.layers.Normalization(
                axis=-1, mean=mean, variance=variance, name="standardize"
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

    # ------------------------------------------------------- fit (shared)
    def _start_fit(self, X, y):
        """``(x, warm)``: the training images, validated (their shape and
        dtype recorded unless a warm start keeps the previous fit's)."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        warm = self.warm_start and hasattr(self, "model_")
        x = self._validate_X(X, reset=not warm)
        # Windows the images cannot give (test_time_crops="five" without a
        # crop smaller than them) are refused now, not at predict after training.
        view_corners(x.shape[1:3], self._crop_shape(x.shape[1:3]), self.test_time_crops)
        return x, warm

    def _head_activation(self):
        """The activation this fit's parameters give the output layer."""
        raise NotImplementedError

    def _fitted_head_activation(self):
        """The activation of the fitted network's output layer (by name)."""
        return _output_activation(self.model_.layers[-1])

    def _check_network(self, network):
        """Refuse (ValueError) a built ``network`` whose output the estimator
        cannot read; called before training.  Here any output of the right
        shape goes (the classifier asks for a softmax)."""

    def _check_warm_network(self, x):
        """A warm start trains ``model_`` as built: parameters built into it
        (the output activation, the crop window) cannot change; a ValueError
        says so rather than training the old network with another loss or
        crop than the parameters say."""
        layer = self._crop_layer()
        fitted_crop = None if layer is None else (layer.height, layer.width)
        changed = []
        if self._crop_shape(x.shape[1:3]) != fitted_crop:
            changed.append(f"crop_size (the network crops {fitted_crop}, the parameter "
                           f"says {self.crop_size!r})")
        # tanh or not is what the loss and the outputs' reading follow (a
        # callable architecture may end in any other activation).
        if (self._head_activation() == "tanh") != (self._fitted_head_activation() == "tanh"):
            changed.append(f"the output activation (the network's is "
                           f"{self._fitted_head_activation()!r}, the parameters give "
                           f"{self._head_activation()!r})")
        # The builder's settings and the layers put in front of it, as this
        # estimator built them (or as the folder it was loaded from saved them).
        built = getattr(self, "_built_settings", None) or {}
        for key, now in self._network_settings().items():
            if key in built and not _same_setting(built[key], now):
                changed.append(f"{key} (the network was built with {built[key]!r}, the "
                               f"parameter says {now!r})")
        if changed:
            raise ValueError(
                f"warm_start=True continues training the fitted network, built with other "
                f"settings: {'; '.join(changed)}. Set them back, or warm_start=False to train "
                "a new network."
            )

    def _network_settings(self):
        """The parameters built into ``model_`` besides the crop window and
        the output activation: the builder's (``architecture`` and
        ``architecture_params``, or a subclass's own) and the layers in front
        of it (input scaling, augmentation, random erasing)."""
        return {key: getattr(self, key) for key in (
            "architecture", "architecture_params", "input_scaling", "augment", "random_erasing",
        ) if hasattr(self, key)}

    def _degrading(self):
        """Whether ``degrade`` is on: True or a dict, ``{}`` (every default
        probability) too, as ``augment={}`` is on."""
        return self.degrade is True or isinstance(self.degrade, dict)

    def _check_degrade(self):
        """``degrade`` needs the uint8 faces of the fit."""
        if self._degrading() and getattr(self, "input_dtype_", None) != "|u1":
            raise ValueError(
                f"degrade needs uint8 images (face crops as FaceCropper gives them); "
                f"{type(self).__name__} was fitted on {np.dtype(self.input_dtype_)}."
            )

    def _validation_pair(self, validation_data):
        """``(x_val, y_val)`` of ``validation_data``: the images validated,
        the targets as given (the subclass checks them)."""
        try:
            Xv, yv = validation_data
        except (TypeError, ValueError):
            raise ValueError(
                "validation_data must be a pair (X_val, y_val); got "
                f"{type(validation_data).__name__}."
            ) from None
        return self._validate_X(Xv, reset=False, input_name="validation_data X"), yv

    def _split_validation(self, *arrays, seed, stratify=None):
        """``train_test_split`` of ``arrays`` holding out ``validation_fraction``
        (seeded; stratified when ``stratify`` is given), with an error that
        says what to change."""
        try:
            return train_test_split(
                *arrays, test_size=self.validation_fraction, stratify=stratify,
                random_state=seed,
            )
        except ValueError as exc:
            how = "split" if stratify is None else "make a stratified split of"
            raise ValueError(
                f"validation_fraction={self.validation_fraction} cannot {how} these "
                f"{len(arrays[0])} samples ({exc}); lower it, set it to None or pass "
                "validation_data."
            ) from None

    def _train(
        self, x_train, y_train, x_val, y_val, *, loss, metrics, n_outputs, seed, warm,
        class_weight=None, sample_weight=None, scaling_weight=None, val_weight=None,
    ):
        """Build (unless ``warm``), compile and train ``model_``; set the fit attributes.

        ``sample_weight`` weighs the loss; ``scaling_weight`` (the caller's
        ``sample_weight`` alone, without class weights) the input
        standardisation's mean and variance; ``val_weight`` the validation
        loss (a hold-out of weighted images: scikit-learn weighs it too).
        """
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
        counted = list(callbacks)  # their counters go into the checkpoints
        # A warm start's network as the fit finds it (weights, normalisation,
        # random generators): put back if the fit fails part way, so that
        # the estimator is as it was and the same fit run again starts from
        # (and keys its training state on) the same weights.
        start = [keras.ops.convert_to_numpy(v) for v in self.model_.variables] if warm else None
        state = saver = None
        vars(self).pop("_training_seconds", None)  # set below for a checkpointed fit
        if self.checkpoint_dir is not None and getattr(self, "_restart", False):
            # fersk train --overwrite: the interrupted run's epochs go only
            # now, once the data has passed validation.
            _checkpoint.discard_states(self.checkpoint_dir)
        if self.checkpoint_dir is not None:
            # This fit's own sub-folder (keyed on the parameters and data, so
            # cross-validation folds never share one), locked while it runs.
            data = (x_train, y_train, x_val, y_val, sample_weight)
            key = _checkpoint.fit_key(
                self, seed, data if val_weight is None else (*data, val_weight),
                extra=class_weight,
                warm_weights=_weights_of(self.model_, start) if warm else None,
            )
            state = _checkpoint.TrainingState.of_fit(self.checkpoint_dir, key)
            if getattr(self, "_resume_only", False) and not state.has_saved():
                raise _checkpoint.NoStateToResumeError(
                    f"{self.checkpoint_dir} holds no training state of this fit (expected "
                    f"{state.folder.name}): the interrupted run had other parameters or data."
                )
            try:
                state.acquire()
            except _checkpoint.CheckpointInUseError as exc:
                # Another live fit of the same parameters and data holds it
                # (grid-search candidates differing only in prediction
                # settings, run in parallel): this one trains as it would,
                # without a state of its own, rather than fail.  A caller
                # that must resume or keep this state (fersk train) is told.
                if any(getattr(self, flag, False) for flag in ("_resume_only", "_keep_checkpoint")):
                    raise
                warn_user(
                    f"checkpoint_dir: {exc.owner_text} holds the training state {state.folder} "
                    "(a fit with the same parameters and data, e.g. a search candidate that "
                    "differs only in prediction settings): this fit trains without saving its "
                    "state, so an interruption loses its epochs."
                )
                state = None
        if state is not None:
            # Weights, optimizer state (its step count drives the schedule)
            # and the epoch reached, saved after every epoch.
            saver = _checkpoint.SaveEachEpoch(state, counted)
            callbacks.append(saver)
        keras_verbose = {0: 0, 1: 2}.get(int(self.verbose), 1)
        steps_per_epoch = -(-len(x_train) // self.batch_size)
        n_steps = steps_per_epoch * self.epochs
        eager = n_steps <= EAGER_MAX_STEPS

        try:
            with _SeededContext(seed):
                # A warm start keeps the network, its input scaling and its
                # augmentation; only the training (optimizer, rate, epochs) is new.
                model = self.model_ if warm else self._assemble_model(
                    x_train, n_outputs, seed, scaling_weight
                )
                if not warm:  # what a warm start must find unchanged
                    self._built_settings = self._network_settings()
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
                initial_epoch, history, before = 0, None, None
                if state is not None:
                    initial_epoch, history, before = state.restore(model)
                    saver.resume(before)
                    if initial_epoch and before is None:  # an earlier fersk's state: no record
                        saver.seconds_before = None
                    if initial_epoch and history is None and before is None:
                        warnings.warn(
                            f"the training state in {state.folder} was saved by an earlier "
                            f"fersk, without the history of its {initial_epoch} epochs: "
                            "history_, n_epochs_ and best_epoch_ count the epochs trained "
                            "from now on only, and early stopping starts counting afresh.",
                            UserWarning, stacklevel=4,
                        )
                trained_before = history is not None  # a final state: the fit was done
                # Early stopping had ended the training with the epoch saved
                # (killed before the fit returned): no epoch more, only the
                # end of the fit (best weights restored), as uninterrupted.
                last_epoch = initial_epoch if (before or {}).get("stopped") else self.epochs
                if history is None:  # a final state (history) needs no more training
                    # The batches come in their own seeded order per epoch, so
                    # that a fit resumed in a new process sees the batches an
                    # uninterrupted one would (Keras's shuffling starts over,
                    # and draws from generators other threads use too).
                    order_seed = np.random.randint(2**31 - 1) if seed is None else seed
                    if self._degrading():
                        probabilities = self.degrade if isinstance(self.degrade, dict) else None
                        batches = DegradedBatches(
                            x_train, y_train, sample_weight, self.batch_size, probabilities,
                            # random_state=None: drawn like any unseeded sklearn fit.
                            seed=order_seed, initial_epoch=initial_epoch,
                        )
                    else:
                        batches = ShuffledBatches(
                            x_train, y_train, _weighted(sample_weight, class_weight, y_train),
                            self.batch_size, seed=order_seed, initial_epoch=initial_epoch,
                        )
                    history = model.fit(
                        batches,
                        shuffle=False,
                        epochs=last_epoch,
                        initial_epoch=initial_epoch,
                        verbose=keras_verbose,
                        validation_data=None if not has_val else (x_val, y_val) if (
                            val_weight is None) else (
                            x_val, y_val, np.asarray(val_weight, dtype=np.float32)),
                        callbacks=callbacks,
                    ).history
                    if before is not None:  # the epochs before the interruption first
                        history = {k: before["history"].get(k, []) + list(history.get(k, []))
                                   for k in {**before["history"], **history}}
            history = {k: [float(v) for v in vals] for k, vals in history.items()}
            if state is not None:
                # Every process's training time (a resumed fit's, or one found
                # done); None where a state from an earlier fersk kept none.
                self._training_seconds = (getattr(state, "final_seconds", None) if trained_before
                                          else saver.seconds())
                if getattr(self, "_keep_checkpoint", False):
                    # The caller removes it once the model is saved
                    # (_discard_checkpoint): a kill before then loses nothing.
                    state.save_final(model, history, self._training_seconds)
                    self._kept_checkpoint = str(state.folder)
                else:
                    state.discard()
        except BaseException:
            if warm:  # the network as it was (see ``start``)
                for variable, value in zip(self.model_.variables, start):
                    variable.assign(value)
            raise
        finally:
            if warm:  # trained further, even part way: its inference copies are stale
                _INFERENCE_MODELS.pop(self.model_, None)
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
            self.best_epoch_ = _best_epoch(self.history_["val_loss"])
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
            return keras.optimizers.schedules.CosineDecay(float(self.learning_rate), decay_steps=n_steps)
        if self.learning_rate_schedule == "warmup_cosine":
            warmup = int(round(self.warmup_fraction * n_steps))
            return keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps=max(1, n_steps - warmup), warmup_target=float(self.learning_rate),
                warmup_steps=warmup,
            )
        return float(self.learning_rate)  # Keras refuses NumPy floats (np.float32(0.01))

    def _make_optimizer(self, learning_rate):
        config = {"learning_rate": learning_rate}
        if self.optimizer == "sgd":
            config.update(momentum=float(self.momentum), nesterov=bool(self.nesterov))
        if self.weight_decay is not None:
            config["weight_decay"] = float(self.weight_decay)
        return keras.optimizers.get({"class_name": self.optimizer, "config": config})

    # --------------------------------------------------------------- predict
    def _predict_outputs(self, X):
        """The network's outputs for ``X``, computed in batches (float64,
        averaged over the test-time views); the subclasses read them as
        probabilities or as predicted values."""
        check_is_fitted(self)
        # Settings changed after fit (test_time_crops="ten" by set_params) are
        # refused here, not read as the nearest valid one.
        self._validate_params()
        return self._outputs_of_views(self._validate_X(X, reset=False))

    def _outputs_of_views(self, x, views="all", features=False):
        """The network's outputs for validated images ``x``, averaged over
        the test-time ``views``: "all", "first" (the centre window, not
        mirrored) or "rest" (every view but the first); with ``features``,
        what its output layer reads instead (:class:`fersk.NetworkFeatures`)."""
        batch = self.predict_batch_size or max(self.batch_size, 256)
        infer = self._inference_model(views, features)
        if len(x) > batch:
            # Keras's compiled predict step, traced once per inference
            # model (cached) and reused for every batch.
            outputs = np.concatenate(
                [infer.predict_on_batch(x[i : i + batch]) for i in range(0, len(x), batch)]
            )
        else:
            # One batch: tracing would cost more than it saves.
            outputs = keras.ops.convert_to_numpy(infer(x, training=False))
        return finite_outputs(np.asarray(outputs, dtype=np.float64), type(self).__name__)

    def _view_windows(self):
        """The crop window (None: the whole image) and the top-left corners of
        the test-time windows, the centre first."""
        crop = self._crop_layer()
        window = None if crop is None else (crop.height, crop.width)
        return window, view_corners(self.model_.input_shape[1:3], window, self.test_time_crops)

    def _n_views(self):
        """How many test-time views a face gets (``test_time_crops`` times
        ``test_time_flip``'s mirror)."""
        return len(self._view_windows()[1]) * (2 if self.test_time_flip else 1)

    def _views(self, z):
        """The test-time views of standardised images ``z`` (a Keras tensor):
        the windows (the centre first), then their mirror images."""
        window, corners = self._view_windows()
        if window is None:
            views = [z]
        else:
            h, w = window
            views = [z[:, t : t + h, c : c + w, :] for t, c in corners]
        if self.test_time_flip:
            views += [keras.ops.flip(v, axis=2) for v in views]
        return views

    def _crop_layer(self):
        return next((la for la in self.model_.layers if isinstance(la, RandomCenterCrop)), None)

    def _inference_model(self, views="all", features=False):
        """``model_``'s inference path with the test-time ``views`` averaged
        ("all", "first" or "rest", as in :meth:`_outputs_of_views`); with
        ``features``, up to the network's output layer (its input averaged).

        Built from the fitted layers (input scaling, then the views, then
        the network with its batch norm folded); cached per fitted model and per
        test-time setting, outside the estimator (prediction leaves its
        ``__dict__`` alone, as scikit-learn requires), and built again once
        the weights folded have changed (:func:`_inference_cache`).
        """
        key = (self.test_time_flip, self.test_time_crops, self.jit_compile is True, views, features)
        cached = _inference_cache(self.model_)
        if key in cached:
            return cached[key]
        inputs = keras.Input(shape=self.model_.input_shape[1:], name="images")
        z = inputs
        for layer in self.model_.layers:
            if isinstance(layer, keras.layers.Normalization):
                z = layer(z)
        network = cached["network"]
        if features:
            if "features" not in cached:
                cached["features"] = features_network(network)
            network = cached["features"]
        chosen = self._views(z)
        chosen = {"all": chosen, "first": chosen[:1], "rest": chosen[1:]}[views]
        outputs = [network(v) for v in chosen]
        outputs = outputs[0] if len(outputs) == 1 else keras.layers.Average()(outputs)
        infer = keras.Model(inputs, outputs, name="fersk_inference")
        # XLA only when asked for: Keras's "auto" picks it, and on CPUs its
        # convolutions are slower than TensorFlow's own (bench_predict.py).
        infer.compile(jit_compile=self.jit_compile is True)
        cached[key] = infer
        return infer

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
        tags.input_tags.three_d_array = True  # image batches (n, h, w[, c]), as well as rows
        return tags
