"""Builders of the fersk networks: ``f(input_shape, n_classes, **kwargs)``.

Each builder returns an uncompiled :class:`keras.Model` mapping images of
``input_shape`` ``(height, width, channels)`` to class probabilities
(softmax over ``n_classes``).  Input scaling and augmentation are *not*
part of these networks: :class:`~fersk.CNNClassifier` puts them in front
(a ``Normalization`` layer adapted on the training images, then the
optional random augmentation layers), so a builder sees standardised
images.  A user callable with the same signature can be passed as
``CNNClassifier(architecture=f)``.

All networks use ``padding="same"`` convolutions and poolings, so they
accept any image size (FER-2013's 48x48 faces, 64x64 FaceChannel crops,
even the 1-pixel-high "images" of scikit-learn's estimator checks); at the
sizes the papers used this is the published geometry, elsewhere it is the
documented adaptation.  Every builder takes ``width`` (a multiplier of all
channel counts) so that tests and CPU benchmarks can run tiny versions of
the same topology.

Model code uses ``keras.layers``/``keras.ops`` only (plus the layers of
:mod:`fersk.layers`), so it runs on the TensorFlow and JAX backends.

Available names (:data:`ARCHITECTURES`): ``"vgg_s"``, ``"facechannel"``,
``"kaggle_cnn"``, ``"vgg_fer"``, ``"mtcnn_cnn"``, ``"lbcnn"``.
"""

from numbers import Integral, Real

import keras
from keras import layers
from sklearn.utils._param_validation import Interval, validate_params

from fersk._constraints import Number
from fersk.layers import LocalBinaryConv2D, ShuntingInhibition, _default_seed

__all__ = ["vgg_s", "facechannel", "kaggle_cnn", "vgg_fer", "mtcnn_cnn", "lbcnn"]

#: What the builders' arguments allow, written once: each builder validates
#: its own with it, and the estimators take their entries for
#: ``architecture_params`` and LBCNNClassifier's parameters (a builder
#: called inside ``fit`` skips validation, as scikit-learn's nested calls do).
BUILDER_CONSTRAINTS = {
    "n_classes": [Number(Interval(Integral, 1, None, closed="left"))],
    "width": [Number(Interval(Real, 0, None, closed="neither"))],
    "stem_stride": [Number(Interval(Integral, 1, 2, closed="both"))],
    "stem_stride_conv": [Number(Interval(Integral, 1, 2, closed="both"))],
    "dense_units": [Number(Interval(Integral, 1, None, closed="left"))],
    "head_units": [Number(Interval(Integral, 1, None, closed="left"))],
    "dropout": [Number(Interval(Real, 0, 1, closed="left"))],
    "l2": [Number(Interval(Real, 0, None, closed="left")), None],
    "trainable_decay": ["boolean"],
    "conv_bias": ["boolean"],
    "depth": [Number(Interval(Integral, 0, None, closed="left"))],
    "n_anchors": [Number(Interval(Integral, 1, None, closed="left"))],
    "filters": [Number(Interval(Integral, 1, None, closed="left"))],
    "sparsity": [Number(Interval(Real, 0, 1, closed="right"))],
    "shortcut": ["boolean"],
    "pool_size": [Number(Interval(Integral, 1, None, closed="left"))],
    "seed": [Number(Interval(Integral, 0, None, closed="left")), None],
}

_validated = validate_params(BUILDER_CONSTRAINTS, prefer_skip_nested_validation=True)

# Inputs are (height, width, channels) whatever Keras's global image format:
# a process set to channels-first (FaceChannel's published code does so) built
# other networks, reading image rows as channels.
_CHANNELS_LAST = {"data_format": "channels_last"}


def _ch(n, width):
    return max(1, int(round(n * width)))


def _conv_bn_relu(x, filters, kernel_size, strides=1, name=None, l2=None, use_bias=False):
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias, name=name,
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None, **_CHANNELS_LAST,
    )(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _head(x, n_classes):
    return layers.Dense(n_classes, activation="softmax", name="probabilities")(x)


@_validated
def vgg_s(input_shape, n_classes, *, width=1.0, dense_units=4096, dropout=0.5):
    """VGG-S (Chatfield et al., BMVC 2014) adapted to small faces.

    Levi & Hassner (ICMI 2015, "Emotion Recognition in the Wild via
    Convolutional Neural Networks and Mapped Binary Patterns") fine-tuned
    the VGG_S network of Chatfield, Simonyan, Vedaldi & Zisserman ("Return
    of the Devil in the Details", BMVC 2014; "CNN-S") on mapped-LBP images
    resized to 224x224.  Layer by layer (channels times ``width``):

    1. conv1: 96 filters 7x7, stride 2, batch norm, ReLU; max pool 3x3
       stride 3 (the published net uses local response normalisation, which
       Keras 3 does not have: batch norm takes its place);
    2. conv2: 256 filters 5x5, batch norm, ReLU; max pool 2x2 stride 2;
    3. conv3, conv4, conv5: 512 filters 3x3 each, batch norm, ReLU; max
       pool 3x3 stride 3;
    4. fc6, fc7: ``dense_units`` (4096 published) ReLU units, each followed
       by dropout ``dropout``;
    5. fc8: softmax over ``n_classes``.

    Adaptations: "same" padding everywhere (at 48x48 the maps are 24, 8, 4
    and 2 pixels a side; with the published 224x224 input and valid
    padding they were 109, 37, 18 and 6), batch norm for LRN, and no
    ImageNet pre-training (the network is trained from scratch).

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of output classes.
    width : float, default=1.0
        Multiplier of every conv layer's channel count.
    dense_units : int, default=4096
        Units of fc6 and fc7.
    dropout : float, default=0.5
        Dropout rate after fc6 and fc7.

    Returns
    -------
    model : keras.Model
        Uncompiled, softmax output.

    Examples
    --------
    >>> model = vgg_s((48, 48, 1), 7, width=0.125, dense_units=32)
    >>> model.output_shape
    (None, 7)
    """
    inputs = keras.Input(shape=tuple(input_shape))
    x = _conv_bn_relu(inputs, _ch(96, width), 7, strides=2, name="conv1")
    x = layers.MaxPooling2D(3, strides=3, padding="same", **_CHANNELS_LAST)(x)
    x = _conv_bn_relu(x, _ch(256, width), 5, name="conv2")
    x = layers.MaxPooling2D(2, strides=2, padding="same", **_CHANNELS_LAST)(x)
    for i in (3, 4, 5):
        x = _conv_bn_relu(x, _ch(512, width), 3, name=f"conv{i}")
    x = layers.MaxPooling2D(3, strides=3, padding="same", **_CHANNELS_LAST)(x)
    x = layers.Flatten(**_CHANNELS_LAST)(x)
    for i in (6, 7):
        x = layers.Dense(int(dense_units), activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _head(x, n_classes), name="vgg_s")


@_validated
def facechannel(
    input_shape, n_classes, *, width=1.0, dense_units=200, dropout=0.25, trainable_decay=False,
    conv_bias=False,
):
    """The FaceChannel (Barros, Churamani & Sciutti, 2020), categorical head.

    "The FaceChannel: A Fast & Furious Deep Neural Network for Facial
    Expression Recognition" (SN Computer Science 1, 2020; FG 2020
    workshop).  Layers as in the authors' code (``pablovin/FaceChannel``,
    ``src/FaceChannel/FaceChannelV1/Model.py``, ``nch = 256``), channels
    times ``width``; every convolution is 3x3 with "same" padding and
    Glorot-uniform initialisation:

    1. conv1, conv2: 64 filters, each batch norm + ReLU; max pool 2x2;
       dropout 0.25;
    2. conv3, conv4: 128 filters, batch norm + ReLU; max pool 2x2;
       dropout 0.25;
    3. conv5, conv6, conv7: 128 filters, batch norm + ReLU; max pool 2x2;
       dropout 0.25;
    4. conv8, conv9: 256 filters, batch norm + ReLU;
    5. conv10 (256, ReLU) and, in parallel from conv9, conv10_inhibition
       (256, ReLU), combined by the shunting inhibitory field
       ``conv10 / (0.5 + conv10_inhibition)``
       (:class:`~fersk.layers.ShuntingInhibition`);
    6. max pool 2x2; dropout 0.25; flatten;
    7. dense 200 ReLU; output layer over ``n_classes``.

    The output layer here is a softmax (fersk's classifiers train it with
    cross-entropy); the published categorical head is a ``tanh`` layer
    trained with mean squared error (Adamax, learning rate 0.002,
    ``ReduceLROnPlateau``), which ``CNNClassifier("facechannel",
    head="tanh", optimizer="adamax", learning_rate=0.002,
    learning_rate_schedule="plateau")`` reproduces; the published
    dimensional model (two ``tanh`` units, arousal and valence) is
    :class:`fersk.CNNRegressor`'s default.  Both replace only this output
    layer, so the parameter count is the published one: 3,592,016 at 64x64
    with 8 outputs.  The published input is a 64x64 grey face, here any
    size (at 48x48 the last maps are 3x3 instead of 4x4).

    Parameter count: the authors' convolutions conv1-conv9 have biases
    (Keras's default), each followed by batch norm, which subtracts the
    batch mean and so cancels them; fersk leaves those 1,280 biases out by
    default, for 3,592,016 parameters at 64x64 with 8 outputs, and
    ``conv_bias=True`` keeps them, for the published code's 3,593,296.  The
    two compute the same functions.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of output classes.
    width : float, default=1.0
        Multiplier of every conv layer's channel count.
    dense_units : int, default=200
        Units of the dense layer.
    dropout : float, default=0.25
        Rate of the four dropout layers after the pools.
    trainable_decay : bool, default=False
        Learn the inhibition's decay per channel instead of the published
        fixed 0.5.
    conv_bias : bool, default=False
        Biases in conv1-conv9 as in the published code (redundant before
        batch norm; see above).

    Returns
    -------
    model : keras.Model
        Uncompiled, softmax output.

    Examples
    --------
    >>> model = facechannel((48, 48, 1), 7, width=0.0625, dense_units=16)
    >>> model.output_shape
    (None, 7)
    """
    nch = 256
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    stages = [(nch // 4, 2), (nch // 2, 2), (nch // 2, 3)]
    i = 0
    for filters, n_convs in stages:
        for _ in range(n_convs):
            i += 1
            x = _conv_bn_relu(x, _ch(filters, width), 3, name=f"conv{i}", use_bias=conv_bias)
        x = layers.MaxPooling2D(2, padding="same", **_CHANNELS_LAST)(x)
        x = layers.Dropout(dropout)(x)
    x = _conv_bn_relu(x, _ch(nch, width), 3, name="conv8", use_bias=conv_bias)
    x = _conv_bn_relu(x, _ch(nch, width), 3, name="conv9", use_bias=conv_bias)
    excitation = layers.Conv2D(_ch(nch, width), 3, padding="same", activation="relu",
                               name="conv10", **_CHANNELS_LAST)(x)
    inhibition = layers.Conv2D(
        _ch(nch, width), 3, padding="same", activation="relu", name="conv10_inhibition",
        **_CHANNELS_LAST,
    )(x)
    x = ShuntingInhibition(decay=0.5, trainable_decay=trainable_decay, name="inhibition")(
        [excitation, inhibition]
    )
    x = layers.MaxPooling2D(2, padding="same", **_CHANNELS_LAST)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Flatten(**_CHANNELS_LAST)(x)
    x = layers.Dense(int(dense_units), activation="relu", name="dense")(x)
    return keras.Model(inputs, _head(x, n_classes), name="facechannel")


@_validated
def kaggle_cnn(input_shape, n_classes, *, width=1.0, dense_units=512, dropout=0.5):
    """A classic FER-2013 Kaggle-protocol CNN.

    The usual network of the FER-2013 Kaggle protocol (train on Training,
    tune on PublicTest, report PrivateTest), as in the source project of
    this design: three stages of two 3x3 convolutions, channels times
    ``width``:

    1. conv 64, conv 64 (each batch norm + ReLU); max pool 2x2; dropout 0.25;
    2. conv 128, conv 128 (batch norm + ReLU); max pool 2x2; dropout 0.25;
    3. conv 256, conv 256 (batch norm + ReLU); max pool 2x2; dropout 0.25;
    4. flatten; dense ``dense_units`` + batch norm + ReLU; dropout
       ``dropout``;
    5. softmax over ``n_classes``.

    At 48x48 the last maps are 6x6x256.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of output classes.
    width : float, default=1.0
        Multiplier of every conv layer's channel count.
    dense_units : int, default=512
        Units of the dense layer.
    dropout : float, default=0.5
        Dropout before the output layer.

    Returns
    -------
    model : keras.Model
        Uncompiled, softmax output.

    Examples
    --------
    >>> model = kaggle_cnn((48, 48, 1), 7, width=0.125, dense_units=16)
    >>> model.output_shape
    (None, 7)
    """
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for stage, filters in enumerate((64, 128, 256), start=1):
        for j in (1, 2):
            x = _conv_bn_relu(x, _ch(filters, width), 3, name=f"conv{stage}_{j}")
        x = layers.MaxPooling2D(2, padding="same", **_CHANNELS_LAST)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten(**_CHANNELS_LAST)(x)
    x = layers.Dense(int(dense_units), use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _head(x, n_classes), name="kaggle_cnn")


@_validated
def vgg_fer(input_shape, n_classes, *, width=1.0, dense_units=256, dropout=0.4, l2=5e-4,
            stem_stride=1, stem_stride_conv=1):
    """A VGG-style network for 40-48 pixel faces (the strong FER-2013 recipe).

    The compact VGG of the FER-2013 results trained with random crops,
    SGD and a decaying schedule (Pramerdorfer & Kampel 2016; Khaireddin &
    Chen 2021, "Facial Emotion Recognition: State of the Art Performance on
    FER2013", whose VGGNet has the same four-stage shape at larger
    widths), sized to train on a CPU: four stages of two 3x3 convolutions,
    channels times ``width``:

    - stages 1-4: conv 32/64/128/256, twice (no bias, batch norm, ReLU,
      L2 ``l2`` on the kernels); max pool 2x2 after each stage;
    - flatten (3x3x256 at 40x40 and at 48x48 input: the poolings pad, as
      in every fersk network, so any size works; the reference CPU run's
      unpadded poolings give 2x2x256 at 40x40 and 1.44 M parameters);
      dropout ``dropout``; dense ``dense_units`` + ReLU; dropout
      ``dropout``;
    - softmax over ``n_classes``.

    1.77 M parameters at ``width=1`` on 40x40 crops.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of output classes.
    width : float, default=1.0
        Multiplier of every conv layer's channel count.
    dense_units : int, default=256
        Units of the dense layer.
    dropout : float, default=0.4
        Dropout before and after the dense layer.
    l2 : float or None, default=5e-4
        L2 penalty of the convolution kernels (None or 0: none).
    stem_stride : {1, 2}, default=1
        Stride of the first convolution.  2 runs stage 1 at half the input
        size and drops its pooling, so the later stages see the same sizes
        and the parameters are the same: on a CPU, stage 1's two
        convolutions at full size take about 40 % of an int8 network's time
        whatever their width (their cost goes by pixels, not channels).
    stem_stride_conv : {1, 2}, default=1
        Which of stage 1's two convolutions takes ``stem_stride``: 1, the
        first (stage 1 at half size); 2, the second, so that the first
        convolution still sees every pixel and only the second runs at half
        size (in place of stage 1's pooling).  The weights have the same
        shapes either way.

    Returns
    -------
    model : keras.Model
        Uncompiled, softmax output.

    Examples
    --------
    >>> model = vgg_fer((40, 40, 1), 7)
    >>> model.output_shape, model.count_params()
    ((None, 7), 1766439)
    >>> vgg_fer((40, 40, 1), 7, stem_stride=2).get_layer("conv1_2").output.shape
    (None, 20, 20, 32)
    >>> vgg_fer((40, 40, 1), 7, stem_stride=2, stem_stride_conv=2).get_layer("conv1_1").output.shape
    (None, 40, 40, 32)
    """
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    for stage, filters in enumerate((32, 64, 128, 256), start=1):
        for j in (1, 2):
            strides = stem_stride if (stage, j) == (1, stem_stride_conv) else 1
            x = _conv_bn_relu(x, _ch(filters, width), 3, strides=strides,
                              name=f"conv{stage}_{j}", l2=l2)
        if stage > 1 or stem_stride == 1:
            x = layers.MaxPooling2D(2, padding="same", **_CHANNELS_LAST)(x)
    x = layers.Flatten(**_CHANNELS_LAST)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(dense_units), activation="relu", name="dense")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _head(x, n_classes), name="vgg_fer")


@_validated
def mtcnn_cnn(input_shape, n_classes, *, width=1.0, dense_units=256, dropout=0.25):
    """The small CNN of an MTCNN + CNN pipeline: an O-Net-shaped classifier.

    Pipelines that detect faces with the Caffe MTCNN (Zhang, Zhang, Li &
    Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded
    Convolutional Networks", IEEE SPL 2016) and then classify the 48x48
    crop with a small Caffe CNN reuse the shape of MTCNN's last stage, the
    O-Net, whose input is exactly a 48x48 face.  The source project's own
    prototxt is not available to fersk, so this is that O-Net topology with
    its face/box/landmark heads replaced by an expression head (channels
    times ``width``):

    1. conv1: 32 filters 3x3, PReLU; max pool 3x3 stride 2;
    2. conv2: 64 filters 3x3, PReLU; max pool 3x3 stride 2;
    3. conv3: 64 filters 3x3, PReLU; max pool 2x2 stride 2;
    4. conv4: 128 filters 2x2, PReLU;
    5. flatten; fc5: ``dense_units`` (256 in O-Net) PReLU; dropout
       ``dropout`` (O-Net's Caffe file uses 0.25);
    6. softmax over ``n_classes``.

    Deviations: "same" padding (O-Net uses valid convolutions, giving 3x3
    final maps at 48x48 instead of 6x6 here); PReLU shared over the spatial
    axes as in Caffe (one slope per channel).

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of output classes.
    width : float, default=1.0
        Multiplier of every conv layer's channel count.
    dense_units : int, default=256
        Units of fc5.
    dropout : float, default=0.25
        Dropout before the output layer.

    Returns
    -------
    model : keras.Model
        Uncompiled, softmax output.

    Examples
    --------
    >>> model = mtcnn_cnn((48, 48, 1), 7, width=0.25, dense_units=16)
    >>> model.output_shape
    (None, 7)
    """
    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    spec = [(32, 3, (3, 2)), (64, 3, (3, 2)), (64, 3, (2, 2)), (128, 2, None)]
    for i, (filters, k, pool) in enumerate(spec, start=1):
        x = layers.Conv2D(_ch(filters, width), k, padding="same", name=f"conv{i}",
                          **_CHANNELS_LAST)(x)
        x = layers.PReLU(shared_axes=[1, 2])(x)
        if pool is not None:
            x = layers.MaxPooling2D(pool[0], strides=pool[1], padding="same", **_CHANNELS_LAST)(x)
    x = layers.Flatten(**_CHANNELS_LAST)(x)
    x = layers.Dense(int(dense_units), name="fc5")(x)
    x = layers.PReLU()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _head(x, n_classes), name="mtcnn_cnn")


@_validated
def lbcnn(
    input_shape,
    n_classes,
    *,
    depth=6,
    n_anchors=64,
    filters=32,
    sparsity=0.5,
    head_units=256,
    dropout=0.5,
    shortcut=True,
    pool_size=6,
    width=1.0,
    seed=None,
):
    """Local Binary CNN (Juefei-Xu, Boddeti & Savvides, CVPR 2017).

    The LBCNN-ResNet of the paper and its reference code
    (``juefeix/lbcnn.torch``, ``resnet-binary-felix``), channels times
    ``width``:

    1. stem: learnable 3x3 conv to ``filters`` channels, batch norm, ReLU;
    2. ``depth`` LBC blocks, each batch norm, then
       :class:`~fersk.layers.LocalBinaryConv2D` (``n_anchors`` fixed sparse
       ternary 3x3 anchors, ReLU, learnable 1x1 conv back to ``filters``
       channels), plus the identity shortcut when ``shortcut``;
    3. batch norm, ReLU; average pool ``pool_size`` x ``pool_size`` (stride
       the same; the reference code pools 5x5 on 32x32 CIFAR images, 6x6
       gives 8x8 maps on 48x48 faces);
    4. flatten; dropout; dense ``head_units`` ReLU; dropout;
    5. softmax over ``n_classes``.

    Each block's anchors are drawn from ``seed + block index``, so the
    whole network's fixed weights are reproducible from one seed.

    Parameters
    ----------
    input_shape : tuple of int
        ``(height, width, channels)``.
    n_classes : int
        Number of output classes.
    depth : int, default=6
        Number of LBC blocks.
    n_anchors : int, default=64
        Fixed anchor filters per block.
    filters : int, default=32
        Output channels of each block's 1x1 conv (and of the stem).
    sparsity : float, default=0.5
        Fraction of non-zero anchor weights.
    head_units : int, default=256
        Hidden units of the fully connected head.
    dropout : float, default=0.5
        Dropout rate before and after the hidden layer.
    shortcut : bool, default=True
        Identity shortcut around each LBC block (LBCNN-ResNet).
    pool_size : int, default=6
        Average pooling before the head.
    width : float, default=1.0
        Multiplier of ``n_anchors`` and ``filters``.
    seed : int or None, default=None
        Seed of the anchors (None: drawn from Python's ``random``).

    Returns
    -------
    model : keras.Model
        Uncompiled, softmax output.

    Examples
    --------
    >>> model = lbcnn((48, 48, 1), 7, depth=2, n_anchors=8, filters=4, head_units=8, seed=0)
    >>> model.output_shape
    (None, 7)
    """
    if seed is None:  # Keras's draw, as the layer's own (fersk.layers._default_seed)
        seed = _default_seed()
    n_filters = _ch(filters, width)
    inputs = keras.Input(shape=tuple(input_shape))
    x = _conv_bn_relu(inputs, n_filters, 3, name="stem")
    for i in range(depth):
        y = layers.BatchNormalization()(x)
        y = LocalBinaryConv2D(
            n_filters,
            n_anchors=_ch(n_anchors, width),
            sparsity=sparsity,
            seed=(int(seed) + i) % 2**32,  # NumPy's seeds stop at 2**32 - 1
            name=f"lbc{i + 1}",
        )(y)
        x = layers.Add()([x, y]) if shortcut else y
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.AveragePooling2D(pool_size, padding="same", **_CHANNELS_LAST)(x)
    x = layers.Flatten(**_CHANNELS_LAST)(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(int(head_units), activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _head(x, n_classes), name="lbcnn")


def _replace_head(network, n_outputs, activation, name):
    """``network`` with its output layer replaced by a dense layer of ``n_outputs``.

    The new layer (``activation``, named ``name``) reads the features the
    old output layer read; every other layer (and weight) is shared.  Used
    for FaceChannel's published tanh heads (categorical, or arousal and
    valence) on any fersk architecture.
    """
    last = network.layers[-1]
    if not isinstance(last, layers.Dense):
        raise ValueError(
            f"the network {network.name!r} does not end in a Dense output layer "
            f"({type(last).__name__}); its head cannot be replaced. Give a builder whose "
            f"output is already {n_outputs} {activation} values."
        )
    outputs = layers.Dense(n_outputs, activation=activation, name=name)(last.input)
    return keras.Model(network.inputs, outputs, name=network.name)


#: Named architectures accepted by ``CNNClassifier(architecture=...)``.
ARCHITECTURES = {
    "vgg_s": vgg_s,
    "facechannel": facechannel,
    "kaggle_cnn": kaggle_cnn,
    "vgg_fer": vgg_fer,
    "mtcnn_cnn": mtcnn_cnn,
    "lbcnn": lbcnn,
}
