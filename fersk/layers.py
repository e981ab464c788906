"""Keras layers of the fersk networks, written with ``keras.ops`` only.

* :class:`TernaryAnchors` - the initializer drawing LBCNN's sparse
  ternary anchor filters from a seed;
* :class:`LocalBinaryConv2D` - the local binary convolution (LBC) layer of
  Juefei-Xu, Boddeti & Savvides, "Local Binary Convolutional Neural
  Networks", CVPR 2017: fixed sparse ternary anchor filters, a
  non-linearity, then a learnable 1x1 convolution;
* :class:`ShuntingInhibition` - the shunting inhibitory field of the
  FaceChannel (Barros, Churamani & Sciutti, 2020).

Every layer is registered with
``keras.saving.register_keras_serializable(package="fersk")``, so models
using them save to and load from Keras's ``.keras`` format with
``safe_mode=True`` (no Python code is deserialised).  Nothing here calls a
backend directly, so the layers run on TensorFlow (the default) and on JAX.
"""

import random

import keras
import numpy as np
from keras import ops

__all__ = ["TernaryAnchors", "LocalBinaryConv2D", "ShuntingInhibition"]


def _default_seed():
    # What Keras itself does for seed=None: draw from Python's generator,
    # which keras.utils.set_random_seed seeds.
    return random.randint(1, int(1e9))


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

    def __init__(self, sparsity, seed):
        if not 0.0 < float(sparsity) <= 1.0:
            raise ValueError(f"sparsity must be in (0, 1]; got {sparsity!r}.")
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
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.n_anchors = int(n_anchors)
        self.kernel_size = int(kernel_size)
        self.sparsity = float(sparsity)
        self.activation = keras.activations.get(activation)
        self.seed = _default_seed() if seed is None else int(seed)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if not 0.0 < self.sparsity <= 1.0:
            raise ValueError(f"sparsity must be in (0, 1]; got {sparsity!r}.")

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
        maps = ops.conv(inputs, self.anchors, strides=1, padding="same")
        maps = self.activation(maps)
        out = ops.conv(maps, self.pointwise_kernel, strides=1, padding="same")
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
        Learn a per-channel decay, initialised at ``decay`` (kept positive
        with an absolute value).
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

    def __init__(self, decay=0.5, trainable_decay=False, **kwargs):
        super().__init__(**kwargs)
        if not float(decay) > 0:
            raise ValueError(f"decay must be > 0; got {decay!r}.")
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
        decay = ops.abs(self.decay_weight) if self.trainable_decay else self.decay
        return excitation / (decay + inhibition)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(decay=self.decay, trainable_decay=self.trainable_decay)
        return config
