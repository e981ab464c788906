"""FaceChannel as published: its layers, its parameter count, its tanh head.

The published layers are those of the authors' code
(``pablovin/FaceChannel``, ``src/FaceChannel/FaceChannelV1/Model.py``):
``buildFaceChannel`` and ``getCategoricalModel`` / ``getDimensionalModel``.
"""

import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fersk import CNNClassifier, CNNRegressor  # noqa: E402
from fersk.architectures import facechannel  # noqa: E402

# (name, filters) of the published 3x3 convolutions, in order; the last two
# read conv9 in parallel and meet in the shunting inhibition.
PUBLISHED_CONVS = [
    ("conv1", 64), ("conv2", 64), ("conv3", 128), ("conv4", 128), ("conv5", 128),
    ("conv6", 128), ("conv7", 128), ("conv8", 256), ("conv9", 256), ("conv10", 256),
    ("conv10_inhibition", 256),
]


def _published_count(n_outputs, conv_bias=True):
    """Parameters of the authors' model at 64x64, counted from their code."""
    n, c_in = 0, 1
    for name, c in PUBLISHED_CONVS:
        c_in = 256 if name == "conv10_inhibition" else c_in
        n += 9 * c_in * c + (c if conv_bias or name.startswith("conv10") else 0)
        if not name.startswith("conv10"):
            n += 4 * c  # batch norm: gamma, beta, moving mean and variance
        c_in = c
    flat = 4 * 4 * 256  # four 2x2 poolings: 64 -> 4
    return n + flat * 200 + 200 + 201 * n_outputs


def test_layers_follow_the_published_code():
    net = facechannel((64, 64, 1), 8)
    convs = [la for la in net.layers if isinstance(la, keras.layers.Conv2D)]
    assert [(la.name, la.filters) for la in convs] == PUBLISHED_CONVS
    assert all(la.kernel_size == (3, 3) and la.padding == "same" for la in convs)
    assert [la.activation.__name__ for la in convs[-2:]] == ["relu", "relu"]
    bns = [la for la in net.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(bns) == 9
    pools = [la for la in net.layers if isinstance(la, keras.layers.MaxPooling2D)]
    assert len(pools) == 4 and all(p.pool_size == (2, 2) for p in pools)
    drops = [la for la in net.layers if isinstance(la, keras.layers.Dropout)]
    assert [d.rate for d in drops] == [0.25] * 4
    inhibition = net.get_layer("inhibition")
    assert float(keras.ops.convert_to_numpy(inhibition.decay)) == 0.5
    dense = net.get_layer("dense")
    assert dense.units == 200 and dense.activation.__name__ == "relu"
    assert dense.input.shape[1:] == (4 * 4 * 256,)


def test_parameter_counts_against_the_published_code():
    assert facechannel((64, 64, 1), 8, conv_bias=True).count_params() == _published_count(8)
    assert _published_count(8) == 3_593_296
    # without the 1,280 conv biases that batch norm cancels (fersk's default)
    assert facechannel((64, 64, 1), 8).count_params() == 3_592_016
    assert _published_count(8, conv_bias=False) == 3_592_016
    # the tanh heads change only the output layer
    tanh = CNNClassifier("facechannel", head="tanh")._build_network((64, 64, 1), 8, 0)
    assert tanh.count_params() == 3_592_016
    assert tanh.layers[-1].activation.__name__ == "tanh"
    dim = CNNRegressor(architecture_params={"conv_bias": True})._build_network((64, 64, 1), 2, 0)
    assert dim.count_params() == _published_count(2)


def _halves(n=96, side=16, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, side, side).astype(np.float32)
    y = np.arange(n) % 3
    X[y == 1, :, : side // 2] += 0.8
    X[y == 2, :, side // 2 :] += 0.8
    return X, y


TANH = dict(architecture="facechannel",
            architecture_params={"width": 0.125, "dense_units": 16, "dropout": 0.0},
            head="tanh", optimizer="adamax", learning_rate=0.01, batch_size=16, random_state=0)


@pytest.fixture(scope="module")
def tanh_fitted():
    X, y = _halves()
    return X, y, CNNClassifier(**TANH, epochs=12).fit(X[:72], y[:72])


def test_tanh_head_is_trained_with_squared_error(tanh_fitted):
    X, y, clf = tanh_fitted
    assert isinstance(clf.model_.loss, keras.losses.MeanSquaredError)
    net = clf.model_.layers[-1]
    assert net.layers[-1].activation.__name__ == "tanh"
    # the loss is the squared error against the one-hot targets
    x = clf._as_model_input(X[:72])
    out = np.asarray(clf.model_(x, training=False), dtype=np.float64)
    mse = np.mean((out - np.eye(3)[y[:72]]) ** 2)
    assert clf.model_.evaluate(x, np.eye(3, dtype=np.float32)[y[:72]], verbose=0)[0] == pytest.approx(mse, rel=1e-4)
    assert clf.score(X[72:], y[72:]) >= 0.6  # chance is 1/3


def test_tanh_probabilities_are_clipped_normalised_outputs(tanh_fitted):
    X, _, clf = tanh_fitted
    proba = clf.predict_proba(X)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    raw = np.asarray(clf.model_(clf._as_model_input(X), training=False), np.float64)
    out = np.clip(raw, 0, 1)
    some = out.sum(axis=1) > 0
    np.testing.assert_allclose(proba[some], out[some] / out[some].sum(axis=1, keepdims=True),
                               atol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    # Rows whose outputs are all <= 0: the softmax of the outputs, not NaN and
    # not uniform (a uniform row made predict answer classes_[0] for every one
    # of them, whatever the network's highest output).
    assert np.allclose(clf._outputs_to_proba(-np.ones((2, 3))), 1 / 3)
    none = np.array([[-0.995, -0.197, -0.762]])
    np.testing.assert_allclose(clf._outputs_to_proba(none),
                               np.exp(none - none.max()) / np.exp(none - none.max()).sum())
    assert clf._outputs_to_proba(none).argmax() == 1


def test_tanh_head_pickles_and_takes_soft_targets(tanh_fitted):
    import pickle

    X, y, clf = tanh_fitted
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    proba = np.full((len(y), 3), 0.2)
    proba[np.arange(len(y)), y] = 0.6
    soft = CNNClassifier(**TANH, epochs=1, label_smoothing=0.1).fit(X, y, sample_proba=proba)
    assert soft.predict_proba(X).shape == (len(y), 3)
    with pytest.raises(ValueError, match="head"):
        CNNClassifier(head="sigmoid").fit(X, y)


def test_tanh_head_on_a_custom_builder_needs_a_dense_output():
    X, y = _halves(24)

    def no_dense(input_shape, n_classes):
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(n_classes)(x)
        return keras.Model(inputs, keras.layers.Softmax()(x))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="Dense output layer"):
            CNNClassifier(no_dense, head="tanh", epochs=1).fit(X, y)
