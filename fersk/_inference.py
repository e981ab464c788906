"""Inference copies of trained networks: batch norm folded into convolutions.

In inference a batch normalisation after a convolution is an affine map per
channel, ``gamma * (conv(x) - mean) / sqrt(var + eps) + beta``, so it can be
folded into the convolution's kernel and bias.  Folding also lets
TensorFlow fuse convolution, bias and ReLU into one kernel; on this
project's CPU that is about 1.3x the faces/s of the unfolded network
(``benchmarks/bench_predict.py``).  Training keeps the unfolded network:
only prediction uses the copy.
"""

import keras
import numpy as np

__all__ = ["features_network", "fold_batch_norm"]


def _chain_layers(network):
    """The layers of ``network`` after its input when each reads the output
    of the one before (a plain chain, as the VGG-style networks are); None
    for any other graph (branches, skips, several inputs)."""
    if not isinstance(network, keras.Model):
        return None
    try:
        config = network.get_config()["layers"]
    except (KeyError, NotImplementedError, TypeError):
        return None
    if len(config) != len(network.layers) or len(config) < 2:
        return None
    for previous, layer in zip(config, config[1:]):
        nodes = layer.get("inbound_nodes") or []
        if len(nodes) != 1 or len(nodes[0].get("args", [])) != 1:
            return None
        arg = nodes[0]["args"][0]
        history = arg.get("config", {}).get("keras_history") if isinstance(arg, dict) else None
        if not history or history[0] != previous["name"]:
            return None
    return network.layers[1:]


def _folded_conv(conv, bn, relu):
    """A new Conv2D with ``bn`` (and a ReLU after it, if ``relu``) folded in."""
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    bias = (
        keras.ops.convert_to_numpy(conv.bias).astype(np.float64)
        if conv.use_bias else np.zeros(kernel.shape[-1])
    )
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma).astype(np.float64) if bn.scale else 1.0
    beta = keras.ops.convert_to_numpy(bn.beta).astype(np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(var + bn.epsilon)
    config = {
        **conv.get_config(), "use_bias": True, "kernel_regularizer": None,
        "bias_regularizer": None, "activity_regularizer": None,
        "activation": "relu" if relu else conv.get_config()["activation"],
        "name": f"{conv.name}_folded",
    }
    folded = keras.layers.Conv2D.from_config(config)
    return folded, [(kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def _foldable(conv, bn):
    return (
        type(conv) is keras.layers.Conv2D
        and conv.get_config()["activation"] == "linear"
        and conv.data_format == "channels_last"
        and isinstance(bn, keras.layers.BatchNormalization)
        and bn.axis in (-1, 3)
    )


def _is_relu(layer):
    return isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] == "relu"


def fold_batch_norm(network):
    """An inference copy of ``network`` with batch norm folded into its convolutions.

    Every ``Conv2D -> BatchNormalization [-> ReLU]`` of a chain-shaped
    network becomes one ``Conv2D`` with a bias (and the ReLU as its
    activation); dropout layers, identities in inference, are left out.
    The other layers are shared with ``network``, the folded convolutions
    are copies: the result is valid for the weights of the moment (build
    it again after training further).  Networks that are not a plain chain,
    or have nothing to fold, are returned unchanged.

    Parameters
    ----------
    network : keras.Model
        A trained network.

    Returns
    -------
    model : keras.Model
        The network for inference (the same outputs up to float rounding,
        about 1e-6 on softmax outputs), or ``network`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.architectures import vgg_fer
    >>> from fersk._inference import fold_batch_norm
    >>> net = vgg_fer((16, 16, 1), 3, width=0.125, dense_units=8)
    >>> x = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")
    >>> folded = fold_batch_norm(net)
    >>> bool(np.allclose(net(x), folded(x), atol=1e-5))
    True
    >>> len(folded.layers) < len(net.layers)
    True
    """
    layers = _chain_layers(network)
    if layers is None or not any(
        _foldable(a, b) for a, b in zip(layers, layers[1:])
    ):
        return network
    inputs = keras.Input(shape=network.input_shape[1:], dtype=network.inputs[0].dtype)
    x, i = inputs, 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1 : i + 3]
        if len(following) >= 1 and _foldable(layer, following[0]):
            relu = len(following) == 2 and _is_relu(following[1])
            folded, weights = _folded_conv(layer, following[0], relu)
            x = folded(x)
            folded.set_weights(weights)
            i += 3 if relu else 2
            continue
        if not isinstance(layer, keras.layers.Dropout):
            x = layer(x)
        i += 1
    return keras.Model(inputs, x, name=f"{network.name}_inference")


def features_network(network):
    """The part of ``network`` before its output layer: what that layer reads.

    For a network ending in a ``Dense`` output layer (every fersk
    architecture, and FaceChannel's replaced heads), the model from its
    input to that layer's input: the features a new last layer can be
    fitted on (:class:`fersk.NetworkFeatures`).  Every layer is shared with
    ``network`` (no weight is copied).

    Parameters
    ----------
    network : keras.Model
        A network ending in a ``Dense`` layer (folded or not, see
        :func:`fold_batch_norm`).

    Returns
    -------
    model : keras.Model
        ``network`` without its output layer.

    Raises
    ------
    ValueError
        If the network's last layer is not a ``Dense`` layer.

    Examples
    --------
    >>> import numpy as np
    >>> from fersk.architectures import vgg_fer
    >>> from fersk._inference import features_network
    >>> net = vgg_fer((16, 16, 1), 3, width=0.125, dense_units=8)
    >>> features_network(net).output_shape
    (None, 8)
    """
    last = network.layers[-1] if isinstance(network, keras.Model) and network.layers else None
    if not isinstance(last, keras.layers.Dense):
        raise ValueError(
            f"the network {getattr(network, 'name', network)!r} does not end in a Dense output "
            f"layer ({type(last).__name__}): it has no features before its output to give."
        )
    layers = _chain_layers(network)
    if layers is None:
        # Any other graph: the output layer's input in the network's own
        # graph (its first call is the one that built the network).
        return keras.Model(network.inputs, last.input, name=f"{network.name}_features")
    # A chain (the folded networks are built as one): its layers called again
    # on a new input, as the output layer's input tensor may belong to the
    # graph of the network they were folded from.
    inputs = keras.Input(shape=network.input_shape[1:], dtype=network.inputs[0].dtype)
    x = inputs
    for layer in layers[:-1]:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{network.name}_features")
