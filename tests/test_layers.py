"""The LBC layer, its ternary anchors and the shunting inhibition layer."""

import numpy as np
import pytest
from scipy.signal import correlate2d

keras = pytest.importorskip("keras")

from fersk.layers import LocalBinaryConv2D, ShuntingInhibition, TernaryAnchors  # noqa: E402


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9, 1.0])
def test_anchors_ternary_with_exact_sparsity(sparsity):
    shape = (3, 3, 4, 32)
    w = np.asarray(TernaryAnchors(sparsity, seed=3)(shape))
    assert w.shape == shape
    assert set(np.unique(w)) <= {-1.0, 0.0, 1.0}
    assert np.count_nonzero(w) == round(sparsity * w.size)
    # both signs present, roughly balanced
    pos, neg = (w > 0).sum(), (w < 0).sum()
    assert pos > 0 and neg > 0 and abs(pos - neg) < 0.25 * (pos + neg)


def test_anchors_reproducible_from_seed():
    a = np.asarray(TernaryAnchors(0.5, seed=7)((3, 3, 1, 16)))
    b = np.asarray(TernaryAnchors(0.5, seed=7)((3, 3, 1, 16)))
    c = np.asarray(TernaryAnchors(0.5, seed=8)((3, 3, 1, 16)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the layer draws the same anchors from the same seed
    l1 = LocalBinaryConv2D(4, n_anchors=16, seed=7)
    l1.build((None, 8, 8, 1))
    np.testing.assert_array_equal(np.asarray(l1.anchors), a)


def test_bad_sparsity():
    with pytest.raises(ValueError, match="sparsity"):
        TernaryAnchors(0.0, seed=0)
    with pytest.raises(ValueError, match="sparsity"):
        LocalBinaryConv2D(4, sparsity=1.5)


def test_lbc_layer_computes_anchor_relu_pointwise():
    rng = np.random.RandomState(0)
    x = rng.randn(2, 7, 9, 1).astype("float32")
    layer = LocalBinaryConv2D(3, n_anchors=5, sparsity=0.6, seed=1)
    out = np.asarray(layer(x))
    anchors = np.asarray(layer.anchors)  # (3, 3, 1, 5)
    kernel = np.asarray(layer.pointwise_kernel)[0, 0]  # (5, 3)
    bias = np.asarray(layer.bias)
    maps = np.stack(
        [
            np.stack([correlate2d(x[i, :, :, 0], anchors[:, :, 0, k], mode="same") for k in range(5)], -1)
            for i in range(2)
        ]
    )
    expected = np.maximum(maps, 0) @ kernel + bias
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert [w.name for w in layer.trainable_weights] == ["pointwise_kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["anchors"]


def _tiny_lbc_model(seed=0):
    inputs = keras.Input((8, 8, 1))
    x = LocalBinaryConv2D(4, n_anchors=6, sparsity=0.5, seed=seed, name="lbc")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def test_anchors_not_trained_but_pointwise_is():
    keras.utils.set_random_seed(0)
    model = _tiny_lbc_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    layer = model.get_layer("lbc")
    anchors0 = np.asarray(layer.anchors).copy()
    kernel0 = np.asarray(layer.pointwise_kernel).copy()
    rng = np.random.RandomState(0)
    model.fit(rng.randn(32, 8, 8, 1), rng.randint(0, 2, 32), epochs=2, verbose=0)
    np.testing.assert_array_equal(np.asarray(layer.anchors), anchors0)
    assert not np.allclose(np.asarray(layer.pointwise_kernel), kernel0)


def test_lbc_save_load_round_trip(tmp_path):
    model = _tiny_lbc_model(seed=5)
    x = np.random.RandomState(1).randn(3, 8, 8, 1).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        np.asarray(loaded.get_layer("lbc").anchors), np.asarray(model.get_layer("lbc").anchors)
    )
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    config = loaded.get_layer("lbc").get_config()
    assert config["seed"] == 5 and config["n_anchors"] == 6 and config["sparsity"] == 0.5


def test_default_seed_drawn_and_kept():
    keras.utils.set_random_seed(11)
    a = LocalBinaryConv2D(2).seed
    keras.utils.set_random_seed(11)
    b = LocalBinaryConv2D(2).seed
    assert a == b
    assert LocalBinaryConv2D.from_config(LocalBinaryConv2D(2, seed=a).get_config()).seed == a


def test_default_seed_inside_a_fit_ignores_other_threads_draws():
    # Inside fersk's seeded fit a layer's drawn seed comes from Keras's
    # private generator, so another thread drawing from Python's global one
    # (as a Dask event loop does) does not change the network built.
    import random

    from fersk._keras_base import _SeededContext

    with _SeededContext(3):
        a = LocalBinaryConv2D(2).seed
    with _SeededContext(3):
        random.random()  # "another thread's" draw
        b = LocalBinaryConv2D(2).seed
    assert a == b


def test_shunting_inhibition(tmp_path):
    exc = np.full((1, 2, 2, 3), 3.0, dtype="float32")
    inh = np.full((1, 2, 2, 3), 1.0, dtype="float32")
    np.testing.assert_allclose(np.asarray(ShuntingInhibition(0.5)([exc, inh])), 2.0)
    np.testing.assert_allclose(np.asarray(ShuntingInhibition(1.0)([exc, inh])), 1.5)
    with pytest.raises(ValueError, match="decay"):
        ShuntingInhibition(0.0)
    a, b = keras.Input((2, 2, 3)), keras.Input((2, 2, 3))
    layer = ShuntingInhibition(0.5, trainable_decay=True, name="inh")
    model = keras.Model([a, b], layer([a, b]))
    assert len(layer.trainable_weights) == 1
    model.save(tmp_path / "s.keras")
    loaded = keras.saving.load_model(tmp_path / "s.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded([exc, inh])), 2.0)


def test_named_architecture_params_are_checked_inside_fit():
    """Inside fit the builders skip their own checks (nested validation):
    depth=-3 built no block, filters=0 one filter, shortcut="no" counted as
    True, silently; now each is the builder's own clear error, for
    CNNClassifier and CNNRegressor alike."""
    from fersk import CNNClassifier, CNNRegressor

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (8, 12, 12)).astype(np.uint8), np.arange(8) % 2
    for params, match in [({"depth": -3}, "'depth'"), ({"filters": 0}, "'filters'"),
                          ({"shortcut": "no"}, "'shortcut'")]:
        with pytest.raises(ValueError, match=rf"{match} parameter of architecture_params of "
                                             r"'lbcnn' must be"):
            CNNClassifier("lbcnn", {"head_units": 4, **params}, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="'conv_bias' parameter"):
        CNNRegressor("facechannel", {"conv_bias": "no", "width": 0.125}, epochs=1).fit(
            X, rng.uniform(-1, 1, (8, 2)))


def test_vgg_fer_strided_stem_keeps_the_later_stages_and_parameters():
    """stem_stride=2 runs stage 1 at half size without its pooling: the
    later stages see the sizes they saw, the weights have the same shapes
    (so a trained network's weights carry over), and a bad stride is a
    clear error inside fit."""
    from fersk import CNNClassifier
    from fersk.architectures import vgg_fer

    plain = vgg_fer((40, 40, 1), 7, width=0.25, dense_units=8)
    strided = vgg_fer((40, 40, 1), 7, width=0.25, dense_units=8, stem_stride=2)
    assert strided.get_layer("conv1_1").strides == (2, 2)
    assert strided.get_layer("conv1_2").output.shape[1:3] == (20, 20)
    for stage in (2, 3, 4):
        name = f"conv{stage}_1"
        assert strided.get_layer(name).input.shape == plain.get_layer(name).input.shape
    assert [w.shape for w in strided.weights] == [w.shape for w in plain.weights]
    pools = [layer for layer in strided.layers if type(layer).__name__ == "MaxPooling2D"]
    assert len(pools) == 3

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (8, 12, 12)).astype(np.uint8), np.arange(8) % 2
    clf = CNNClassifier("vgg_fer", {"width": 0.125, "dense_units": 4, "stem_stride": 2},
                        epochs=1, batch_size=4, random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (8, 2)
    with pytest.raises(ValueError, match=r"'stem_stride' parameter of architecture_params of "
                                         r"'vgg_fer' must be"):
        CNNClassifier("vgg_fer", {"width": 0.125, "stem_stride": 3}, epochs=1).fit(X, y)


def test_vgg_fer_stride_on_the_second_convolution():
    """stem_stride_conv=2 strides stage 1's second convolution instead: the
    first sees every pixel, the second and the later stages run at the sizes
    of stem_stride=2, with the same weight shapes."""
    from fersk import CNNClassifier
    from fersk.architectures import vgg_fer

    first = vgg_fer((40, 40, 1), 7, width=0.25, dense_units=8, stem_stride=2)
    second = vgg_fer((40, 40, 1), 7, width=0.25, dense_units=8, stem_stride=2,
                     stem_stride_conv=2)
    assert second.get_layer("conv1_1").strides == (1, 1)
    assert second.get_layer("conv1_1").output.shape[1:3] == (40, 40)
    assert second.get_layer("conv1_2").strides == (2, 2)
    assert second.get_layer("conv1_2").output.shape[1:3] == (20, 20)
    for stage in (2, 3, 4):
        name = f"conv{stage}_1"
        assert second.get_layer(name).input.shape == first.get_layer(name).input.shape
    assert [w.shape for w in second.weights] == [w.shape for w in first.weights]
    # Without a stride of 2 there is nothing to place: the plain network.
    plain = vgg_fer((40, 40, 1), 7, width=0.25, dense_units=8, stem_stride_conv=2)
    assert plain.get_layer("conv1_2").output.shape[1:3] == (40, 40)
    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (8, 12, 12)).astype(np.uint8), np.arange(8) % 2
    with pytest.raises(ValueError, match=r"'stem_stride_conv' parameter of architecture_params "
                                         r"of 'vgg_fer' must be"):
        CNNClassifier("vgg_fer", {"width": 0.125, "stem_stride_conv": 0}, epochs=1).fit(X, y)


def test_lbcnn_seeds_near_numpys_limit():
    """Each block's anchors are drawn from seed + i: random_state near 2**32
    (which scikit-learn allows) crashed NumPy; the seeds wrap around."""
    from fersk.architectures import lbcnn

    model = lbcnn((12, 12, 1), 2, depth=3, filters=4, n_anchors=2, head_units=4,
                  seed=2**32 - 2)
    seeds = [layer.seed for layer in model.layers if isinstance(layer, LocalBinaryConv2D)]
    assert seeds == [2**32 - 2, 2**32 - 1, 0]
    with pytest.raises(ValueError, match="'seed' parameter"):
        lbcnn((12, 12, 1), 2, depth=1, seed=-1)


def test_lbc_layer_is_channels_last_whatever_the_global_setting():
    """The layer's weights are laid out channels last; its convolutions
    followed Keras's global image_data_format, so a saved LBCNN crashed in a
    process set to channels_first."""
    import keras

    layer = LocalBinaryConv2D(3, n_anchors=2, sparsity=0.5, seed=0)
    x = np.random.RandomState(0).rand(2, 6, 5, 1).astype(np.float32)
    expected = np.asarray(layer(x))
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-6)
    finally:
        keras.config.set_image_data_format(before)


def test_learnt_decay_stays_positive():
    """A learnt decay driven to 0 divided by zero where the inhibition is 0
    (inf); the docstring promised a positive decay."""
    layer = ShuntingInhibition(decay=0.5, trainable_decay=True)
    ones = np.ones((1, 2, 2, 3), np.float32)
    layer([ones, ones])  # built
    layer.decay_weight.assign(np.zeros(3, np.float32))
    out = np.asarray(layer([ones, np.zeros_like(ones)]))
    assert np.all(np.isfinite(out))


def test_builders_are_channels_last_whatever_the_global_setting():
    """Every builder's convolutions and poolings followed Keras's global
    image format: in a channels-first process (FaceChannel's published code
    sets it) vgg_fer built another network (1,380,647 parameters, image rows
    read as channels) and a fit trained it without a word; the flip
    augmentation flipped the channel axis (nothing)."""
    from fersk import CNNClassifier
    from fersk.architectures import ARCHITECTURES

    shapes = {name: builder((40, 40, 1), 7).count_params() for name, builder in ARCHITECTURES.items()
              if name != "lbcnn"}
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        assert {name: ARCHITECTURES[name]((40, 40, 1), 7).count_params() for name in shapes} == shapes
        rng = np.random.default_rng(0)
        X = rng.integers(0, 256, (8, 16, 16), dtype=np.uint8)
        X[:, :, :8] = 0  # a left half dark: its mirror differs
        clf = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                            augment=True, random_state=0).fit(X, np.arange(8) % 2)
        flip = clf.model_.get_layer("augment_flip")
        flipped = np.asarray(flip(X[..., None].astype("float32"), training=True))
        assert (flipped != X[..., None]).any()
    finally:
        keras.config.set_image_data_format(before)


def test_public_layers_refuse_bad_arguments_when_made():
    """Sizes of 0 gave empty outputs, rates and ranges outside theirs were
    clipped or divided by zero, a float seed was truncated, and a seed past
    NumPy's range failed at build without naming the layer."""
    from fersk.layers import RandomCenterCrop, RandomErasing

    for make in (lambda: RandomCenterCrop(0, 4), lambda: RandomCenterCrop(4, True),
                 lambda: RandomErasing(rate=2.0), lambda: LocalBinaryConv2D(0),
                 lambda: LocalBinaryConv2D(4, n_anchors=0), lambda: LocalBinaryConv2D(4, seed=1.7),
                 lambda: LocalBinaryConv2D(4, seed=2**32)):
        with pytest.raises(ValueError, match="parameter of"):
            make()
    for pair in ({"scale": (2, 3)}, {"scale": (0.3, 0.1)}, {"ratio": (0, 1)}, {"ratio": 2.0}):
        with pytest.raises(ValueError, match="must be a pair"):
            RandomErasing(**pair)
    x = np.zeros((2, 10, 10, 1), "float32")
    for training in (False, True):  # the same message in both modes
        with pytest.raises(ValueError, match="larger than the image"):
            RandomCenterCrop(12, 12, seed=0)(x, training=training)
    assert LocalBinaryConv2D(4, seed=2**32 - 1).seed == 2**32 - 1


def test_builder_arguments_refuse_bools():
    """True passed as an int (scikit-learn's Interval takes it as 1):
    vgg_s(width=True) built a 25-million-parameter network, LBCNNClassifier
    (depth=True) trained one block; architecture_params refused the same."""
    from fersk import LBCNNClassifier
    from fersk.architectures import kaggle_cnn, vgg_s

    with pytest.raises(ValueError, match="'width' parameter of vgg_s must be a number > 0"):
        vgg_s((16, 16, 1), 3, width=True)
    with pytest.raises(ValueError, match="dense_units"):
        kaggle_cnn((16, 16, 1), 3, dense_units=True)
    X, y = np.zeros((4, 16, 16), np.uint8), np.arange(4) % 2
    with pytest.raises(ValueError, match="'depth' parameter of LBCNNClassifier"):
        LBCNNClassifier(depth=True, epochs=1).fit(X, y)
