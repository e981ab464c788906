"""Keras layers of the fersk networks, written with ``keras.ops`` only.

* :class:`TernaryAnchors` - the initializer drawing LBCNN's sparse
  ternary anchor filters from a seed;
* :class:`LocalBinaryConv2D` - the local binary convolution (LBC) layer of
  Juefei-Xu, Boddeti & Savvides, "Local Binary Convolutional Neural
  Networks", CVPR 2017: fixed sparse ternary anchor filters, a
  non-linearity, then a learnable 1x1 convolution;
* :class:`ShuntingInhibition` - the shunting inhibitory field of the
  FaceChannel (Barros, Churamani & Sciutti, 2020);
* :class:`RandomCenterCrop` - a random crop per image in training, the
  centre crop in inference (the crop augmentation of the FER recipes);
* :class:`RandomErasing` - Zhong et al.'s random erasing (AAAI 2020);
* :class:`RandomAffine` - random rotation, shift and zoom in one
  bilinear resampling that XLA can compile.

Every layer is registered with
``keras.saving.register_keras_serializable(package="fersk")``, so models
using them save to and load from Keras's ``.keras`` format with
``safe_mode=True`` (no Python code is deserialised).  Nothing here calls a
backend directly, so the layers run on TensorFlow (the default) and on JAX.
"""

import random
from numbers import Integral, Real

import keras
import numpy as np
from keras import ops
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from fersk._constraints import Number, _is_number_in, _number_text

__all__ = [
    "TernaryAnchors", "LocalBinaryConv2D", "ShuntingInhibition", "RandomCenterCrop",
    "RandomErasing", "RandomAffine",
]


#: Fraction of non-zero anchor weights.
_SPARSITY = Interval(Real, 0, 1, closed="right")
#: Sizes and counts (filters, anchors, kernel, crop): ints >= 1, not bools.
_COUNT = Number(Interval(Integral, 1, None, closed="left"))
#: Seeds of NumPy's generator (the anchors' draw).
_NUMPY_SEED = Number(Interval(Integral, 0, 2**32 - 1, closed="both"))


def _validate(owner, **arguments):
    """Check ``__init__`` arguments against ``owner._parameter_constraints``.

    scikit-learn's parameter validation, called from ``__init__`` because
    ``validate_params`` cannot wrap it here: Keras reads the argument list
    of a layer's ``__init__`` (``getfullargspec``, which sees the wrapper's
    ``*args``).
    """
    validate_parameter_constraints(
        owner._parameter_constraints, arguments, caller_name=type(owner).__name__
    )


def _default_seed():
    # Keras's own draw for seed=None.  Inside a fersk fit that is a private
    # generator seeded with random_state (fersk._keras_base._SeededContext),
    # which other threads (a Dask client's or worker's event loop) cannot
    # advance as they can Python's global one; elsewhere it is the global
    # one, which keras.utils.set_random_seed seeds.
    try:
        from keras.src.random.seed_generator import make_default_seed
    except ImportError:  # pragma: no cover  (another Keras layout)
        return random.randint(1, int(1e9))
    return make_default_seed()


@keras.saving.register_keras_serializable(package="fersk")
class TernaryAnchors(keras.initializers.Initializer):
    """Sparse ternary filters in {-1, 0, +1} drawn from a seed.

    Exactly ``round(sparsity * size)`` weights of the tensor are non-zero;
    their positions are drawn uniformly without replacement and each is +1
    or -1 with probability 1/2 (Juefei-Xu et al., 2017, Sec. 3: the anchor
    weights are Bernoulli-distributed ternary values).  The draw uses
    :class:`numpy.random.RandomState` seeded with ``seed``, so the same seed
    gives the same anchors on every backend.

    Parameters
    ----------
    sparsity : float
        Fraction of non-zero weights, in (0, 1].
    seed : int
        Seed of the draw.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.asarray(TernaryAnchors(sparsity=0.5, seed=0)((3, 3, 1, 4)))
    >>> sorted(np.unique(w).tolist()), int(np.count_nonzero(w))
    ([-1.0, 0.0, 1.0], 18)
    """

    _parameter_constraints = {"sparsity": [_SPARSITY]}

    def __init__(self, sparsity, seed):
        _validate(self, sparsity=sparsity)
        self.sparsity = float(sparsity)
        self.seed = int(seed)

    def __call__(self, shape, dtype=None):
        rng = np.random.RandomState(self.seed)
        size = int(np.prod(shape))
        n_nonzero = max(1, int(round(self.sparsity * size)))
        weights = np.zeros(size, dtype=np.float32)
        where = rng.choice(size, n_nonzero, replace=False)
        weights[where] = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), n_nonzero)
        return ops.convert_to_tensor(weights.reshape(shape), dtype=dtype or "float32")

    def get_config(self):
        return {"sparsity": self.sparsity, "seed": self.seed}


@keras.saving.register_keras_serializable(package="fersk")
class LocalBinaryConv2D(keras.layers.Layer):
    """Local binary convolution (LBC): fixed ternary anchors, then a 1x1 conv.

    The LBC layer of Juefei-Xu, Boddeti & Savvides (CVPR 2017) replaces a
    learnable ``k x k`` convolution by

    1. a convolution with ``n_anchors`` fixed, sparse ternary anchor filters
       (weights in {-1, 0, +1}, a fraction ``sparsity`` of them non-zero;
       non-trainable, so they never change during training);
    2. a non-linearity (``activation``, ReLU by default; the paper also uses
       a sigmoid);
    3. a learnable 1x1 convolution mixing the ``n_anchors`` bit maps into
       ``filters`` output channels.

    Only step 3 is learned, so the layer has ``n_anchors * filters (+
    filters)`` learnable and ``k * k * in_channels * n_anchors`` fixed
    weights.  The anchors are stored as a non-trainable weight, so a saved
    and reloaded model holds exactly the same anchors.

    Parameters
    ----------
    filters : int
        Output channels of the learnable 1x1 convolution.
    n_anchors : int, default=64
        Number of fixed anchor filters (intermediate bit maps).
    kernel_size : int, default=3
        Side of the anchor filters.
    sparsity : float, default=0.5
        Fraction of non-zero anchor weights, in (0, 1].
    activation : str, default="relu"
        Non-linearity between the anchors and the 1x1 convolution (any
        name :func:`keras.activations.get` knows).
    seed : int or None, default=None
        Seed of the anchors.  None draws one from Python's ``random`` (as
        Keras does, so ``keras.utils.set_random_seed`` makes it repeatable);
        the drawn seed is kept in the layer's config.
    use_bias : bool, default=True
        Whether the 1x1 convolution has a bias.
    kernel_initializer : str, default="glorot_uniform"
        Initializer of the 1x1 convolution.
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ``dtype``...).

    Examples
    --------
    >>> import numpy as np
    >>> layer = LocalBinaryConv2D(filters=8, n_anchors=16, sparsity=0.5, seed=0)
    >>> tuple(layer(np.zeros((2, 12, 12, 3), dtype="float32")).shape)
    (2, 12, 12, 8)
    >>> layer.count_params(), int(sum(np.prod(w.shape) for w in layer.trainable_weights))
    (568, 136)
    """

    _parameter_constraints = {
        "filters": [_COUNT], "n_anchors": [_COUNT], "kernel_size": [_COUNT],
        "sparsity": [_SPARSITY], "seed": [_NUMPY_SEED, None],
    }

    def __init__(
        self,
        filters,
        n_anchors=64,
        kernel_size=3,
        sparsity=0.5,
        activation="relu",
        seed=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        _validate(self, filters=filters, n_anchors=n_anchors, kernel_size=kernel_size,
                  sparsity=sparsity, seed=seed)
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.n_anchors = int(n_anchors)
        self.kernel_size = int(kernel_size)
        self.sparsity = float(sparsity)
        self.activation = keras.activations.get(activation)
        self.seed = _default_seed() if seed is None else int(seed)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        k = self.kernel_size
        self.anchors = self.add_weight(
            name="anchors",
            shape=(k, k, in_channels, self.n_anchors),
            initializer=TernaryAnchors(self.sparsity, self.seed),
            trainable=False,
        )
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel",
            shape=(1, 1, self.n_anchors, self.filters),
            initializer=self.kernel_initializer,
            trainable=True,
        )
        self.bias = (
            self.add_weight(
                name="bias", shape=(self.filters,), initializer="zeros", trainable=True
            )
            if self.use_bias
            else None
        )

    def call(self, inputs):
        # Channels last, as the weights are laid out, whatever Keras's global
        # image_data_format (a saved LBCNN crashed in a channels-first process).
        maps = ops.conv(inputs, self.anchors, strides=1, padding="same",
                        data_format="channels_last")
        maps = self.activation(maps)
        out = ops.conv(maps, self.pointwise_kernel, strides=1, padding="same",
                       data_format="channels_last")
        if self.bias is not None:
            out = out + self.bias
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            n_anchors=self.n_anchors,
            kernel_size=self.kernel_size,
            sparsity=self.sparsity,
            activation=keras.activations.serialize(self.activation),
            seed=self.seed,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="fersk")
class ShuntingInhibition(keras.layers.Layer):
    """Shunting inhibitory field: ``excitation / (decay + inhibition)``.

    The last layer of the FaceChannel's feature extractor (Barros,
    Churamani & Sciutti, "The FaceChannel: A Fast & Furious Deep Neural
    Network for Facial Expression Recognition", SN Computer Science 2020;
    FG 2020 workshop) divides each unit of an excitatory feature map by a
    passive decay term plus the matching unit of an inhibitory map
    computed in parallel from the same input.  The published code
    (``pablovin/FaceChannel``, ``Model.py``) uses a ``Lambda`` with a fixed
    decay of 0.5 and ReLU maps for both; this layer does the same, can
    learn the decay (one value per channel) when ``trainable_decay=True``,
    and, unlike a ``Lambda``, loads with ``safe_mode=True``.

    Parameters
    ----------
    decay : float, default=0.5
        Passive decay (must be > 0 so that the division is safe for the
        non-negative ReLU inhibition).
    trainable_decay : bool, default=False
        Learn a per-channel decay, initialised at ``decay`` (kept positive:
        its absolute value, at least 1e-6).
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> import numpy as np
    >>> layer = ShuntingInhibition(decay=0.5)
    >>> out = layer([np.full((1, 2, 2, 1), 3.0), np.full((1, 2, 2, 1), 1.0)])
    >>> float(np.asarray(out)[0, 0, 0, 0])
    2.0
    """

    _parameter_constraints = {"decay": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, decay=0.5, trainable_decay=False, **kwargs):
        _validate(self, decay=decay)
        super().__init__(**kwargs)
        self.decay = float(decay)
        self.trainable_decay = bool(trainable_decay)

    def build(self, input_shape):
        if self.trainable_decay:
            self.decay_weight = self.add_weight(
                name="decay",
                shape=(input_shape[0][-1],),
                initializer=keras.initializers.Constant(self.decay),
                trainable=True,
            )

    def call(self, inputs):
        excitation, inhibition = inputs
        # |w| alone reaches 0 (then inf where the ReLU inhibition is 0).
        decay = (ops.maximum(ops.abs(self.decay_weight), 1e-6) if self.trainable_decay
                 else self.decay)
        return excitation / (decay + inhibition)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(decay=self.decay, trainable_decay=self.trainable_decay)
        return config


def _crop_offsets(size, crop):
    if crop > size:
        raise ValueError(f"the crop ({crop} pixels) is larger than the image ({size} pixels).")
    return (size - crop) // 2


@keras.saving.register_keras_serializable(package="fersk")
class RandomCenterCrop(keras.layers.Layer):
    """A random ``height`` x ``width`` window of each image in training, the centre one otherwise.

    The crop augmentation of the strong FER-2013 recipes (random 40x40 or
    44x44 windows of the 48x48 faces; Pramerdorfer & Kampel 2016,
    Khaireddin & Chen 2021).  Unlike ``keras.layers.RandomCrop``, whose
    inference mode resizes the whole image, inference here takes the
    centre window, so training and prediction see faces at the same scale;
    and every image of a batch gets its own window.  The window is selected
    with two one-hot matrix products (``keras.ops.einsum``), which stay
    differentiable, batched and compilable on every backend.

    Parameters
    ----------
    height, width : int
        Size of the window.
    seed : int or None, default=None
        Seed of the windows' positions.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(36, dtype="float32").reshape(1, 6, 6, 1)
    >>> np.asarray(RandomCenterCrop(2, 2)(x))[0, :, :, 0].tolist()
    [[14.0, 15.0], [20.0, 21.0]]
    >>> np.asarray(RandomCenterCrop(2, 2, seed=0)(x, training=True)).shape
    (1, 2, 2, 1)
    """

    _parameter_constraints = {"height": [_COUNT], "width": [_COUNT]}

    def __init__(self, height, width, seed=None, **kwargs):
        _validate(self, height=height, width=width)
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        h, w = ops.shape(inputs)[1], ops.shape(inputs)[2]
        # Checked in training too: there a window larger than the image failed
        # inside the random draw ("Need minval < maxval").
        top, left = _crop_offsets(h, self.height), _crop_offsets(w, self.width)
        if not training:
            return inputs[:, top : top + self.height, left : left + self.width, :]
        n = ops.shape(inputs)[0]
        top = keras.random.randint((n, 1), 0, h - self.height + 1, seed=self.seed_generator)
        left = keras.random.randint((n, 1), 0, w - self.width + 1, seed=self.seed_generator)
        # rows[b, i, y] = 1 where y == top[b] + i (and the same for columns)
        rows = ops.cast(
            ops.expand_dims(top + ops.arange(self.height), -1) == ops.arange(h), inputs.dtype
        )
        cols = ops.cast(
            ops.expand_dims(left + ops.arange(self.width), -1) == ops.arange(w), inputs.dtype
        )
        out = ops.einsum("biy,byxc->bixc", rows, inputs)
        return ops.einsum("bjx,bixc->bijc", cols, out)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="fersk")
class RandomErasing(keras.layers.Layer):
    """Random erasing (Zhong, Zheng, Kang, Li & Yang, AAAI 2020), training only.

    With probability ``rate`` each image gets one rectangle of area
    ``scale`` (a fraction of the image, uniform in the range) and aspect
    ratio ``ratio`` (log-uniform in the range) set to ``value``; placed
    after the input standardisation, the default 0 is the mean pixel.  It
    teaches the network to use the whole face rather than one region (an
    occluded mouth, a hand over an eye).  Inference passes images through.

    Parameters
    ----------
    rate : float in [0, 1], default=0.5
        Probability that an image is erased.
    scale : tuple of float, default=(0.02, 0.25)
        Range of the erased area as a fraction of the image.
    ratio : tuple of float, default=(0.3, 3.3)
        Range of the rectangle's height/width ratio.
    value : float, default=0.0
        Value written into the rectangle.
    seed : int or None, default=None
        Seed of the draws.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((4, 8, 8, 1), dtype="float32")
    >>> erased = np.asarray(RandomErasing(rate=1.0, seed=0)(x, training=True))
    >>> bool((erased == 0).any(axis=(1, 2, 3)).all()), float(np.asarray(RandomErasing()(x)).min())
    (True, 1.0)
    """

    _parameter_constraints = {"rate": [Number(Interval(Real, 0, 1, closed="both"))],
                              "value": [Number(Interval(Real, None, None, closed="neither"))]}

    def __init__(self, rate=0.5, scale=(0.02, 0.25), ratio=(0.3, 3.3), value=0.0, seed=None,
                 **kwargs):
        _validate(self, rate=rate, value=value)
        for name, pair, interval in (("scale", scale, Interval(Real, 0, 1, closed="right")),
                                     ("ratio", ratio, Interval(Real, 0, None, closed="neither"))):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                    and all(_is_number_in(v, interval) for v in pair) and pair[0] <= pair[1]):
                raise ValueError(
                    f"RandomErasing's {name} must be a pair (low, high), low <= high, each "
                    f"{_number_text(interval)}; got {pair!r}."
                )
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.scale = tuple(float(v) for v in scale)
        self.ratio = tuple(float(v) for v in ratio)
        self.value = float(value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        shape = ops.shape(inputs)
        n, h, w = shape[0], shape[1], shape[2]
        hf, wf = ops.cast(h, "float32"), ops.cast(w, "float32")

        def uniform(low, high):
            return keras.random.uniform((n, 1, 1), low, high, seed=self.seed_generator)

        area = uniform(*self.scale) * hf * wf
        aspect = ops.exp(uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
        eh = ops.minimum(ops.sqrt(area * aspect), hf)
        ew = ops.minimum(ops.sqrt(area / aspect), wf)
        top = uniform(0.0, 1.0) * (hf - eh)
        left = uniform(0.0, 1.0) * (wf - ew)
        ys = ops.reshape(ops.cast(ops.arange(h), "float32"), (1, -1, 1))
        xs = ops.reshape(ops.cast(ops.arange(w), "float32"), (1, 1, -1))
        inside = (ys >= top) & (ys < top + eh) & (xs >= left) & (xs < left + ew)
        erase = inside & (uniform(0.0, 1.0) < self.rate)
        return ops.where(ops.expand_dims(erase, -1), ops.cast(self.value, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, scale=list(self.scale), ratio=list(self.ratio),
                      value=self.value, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="fersk")
class RandomAffine(keras.layers.Layer):
    """Random rotation, shift and zoom of each image in training, in one resampling.

    The geometric augmentation of FER training (rotations of about 10
    degrees, shifts and zooms of 5-10 %) as one bilinear resampling per
    image, edges repeated outwards (Keras's ``fill_mode="nearest"``).
    Keras's ``RandomRotation``/``RandomTranslation``/``RandomZoom`` do the
    same in three resamplings through TensorFlow image ops that XLA cannot
    compile (``supports_jit=False``, which turns ``jit_compile`` off for the
    whole model); this layer is written with ``keras.ops`` gathers, so it
    compiles on every backend.  Inference passes images through.

    Parameters
    ----------
    rotation_degrees : float, default=10.0
        Largest rotation, either way (uniform).
    shift : float, default=0.1
        Largest shift as a fraction of the height (vertical) and width
        (horizontal), each uniform.
    zoom : float, default=0.0
        Largest relative change of scale, either way (uniform).
    seed : int or None, default=None
        Seed of the draws.
    **kwargs
        Passed to :class:`keras.layers.Layer`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.RandomState(0).rand(2, 8, 8, 1).astype("float32")
    >>> np.allclose(RandomAffine(0.0, 0.0)(x, training=True), x, atol=1e-6)
    True
    >>> out = np.asarray(RandomAffine(10.0, 0.1, seed=0)(x, training=True))
    >>> out.shape, bool(np.allclose(out, x))
    ((2, 8, 8, 1), False)
    """

    def __init__(self, rotation_degrees=10.0, shift=0.1, zoom=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_degrees = float(rotation_degrees)
        self.shift = float(shift)
        self.zoom = float(zoom)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        n, h, w, c = shape[0], shape[1], shape[2], shape[3]
        hf, wf = ops.cast(h, "float32"), ops.cast(w, "float32")

        def uniform(limit):
            return keras.random.uniform((n, 1, 1), -limit, limit, seed=self.seed_generator)

        angle = uniform(self.rotation_degrees) * (np.pi / 180.0)
        scale = 1.0 + uniform(self.zoom)
        ty, tx = uniform(self.shift) * hf, uniform(self.shift) * wf
        cy, cx = (hf - 1.0) / 2.0, (wf - 1.0) / 2.0
        dy = ops.reshape(ops.cast(ops.arange(h), "float32"), (1, -1, 1)) - cy
        dx = ops.reshape(ops.cast(ops.arange(w), "float32"), (1, 1, -1)) - cx
        # Where each output pixel comes from: the inverse transform.
        cos, sin = ops.cos(angle), ops.sin(angle)
        sy = (cos * dy - sin * dx) / scale + cy - ty
        sx = (sin * dy + cos * dx) / scale + cx - tx
        y0, x0 = ops.floor(sy), ops.floor(sx)
        wy, wx = ops.expand_dims(sy - y0, -1), ops.expand_dims(sx - x0, -1)
        flat = ops.reshape(inputs, (n, h * w, c))

        def pixels(yy, xx):
            yy = ops.cast(ops.clip(yy, 0.0, hf - 1.0), "int32")
            xx = ops.cast(ops.clip(xx, 0.0, wf - 1.0), "int32")
            index = ops.reshape(yy * w + xx, (n, h * w, 1))
            taken = ops.take_along_axis(flat, ops.broadcast_to(index, (n, h * w, c)), axis=1)
            return ops.reshape(taken, (n, h, w, c))

        wy, wx = ops.cast(wy, inputs.dtype), ops.cast(wx, inputs.dtype)
        top = pixels(y0, x0) * (1 - wx) + pixels(y0, x0 + 1) * wx
        bottom = pixels(y0 + 1, x0) * (1 - wx) + pixels(y0 + 1, x0 + 1) * wx
        return top * (1 - wy) + bottom * wy

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(rotation_degrees=self.rotation_degrees, shift=self.shift, zoom=self.zoom,
                      seed=self.seed)
        return config
