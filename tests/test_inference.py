"""The inference copy of a network (batch norm folded) predicts as the network."""

import keras
import numpy as np
import pytest

from fersk import CNNClassifier
from fersk._inference import fold_batch_norm
from fersk.architectures import facechannel, kaggle_cnn, vgg_fer


def _random_batch_norm(network, seed=0):
    """Give every batch norm non-trivial statistics, as training would."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 2.0, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.3, n).astype("float32"))


@pytest.fixture(scope="module")
def tiny_faces():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 12)
    X = rng.integers(0, 200, (36, 24, 24)).astype(np.uint8)
    X[y == 1, :12] += 50  # something to learn
    X[y == 2, :, :12] += 50
    return X, y


@pytest.mark.parametrize("build", [vgg_fer, kaggle_cnn])
def test_folded_network_gives_the_same_outputs(build):
    net = build((24, 24, 1), 5, width=0.125, dense_units=16)
    _random_batch_norm(net)
    x = np.random.default_rng(1).random((6, 24, 24, 1)).astype("float32")
    folded = fold_batch_norm(net)
    assert folded is not net
    names = [type(la).__name__ for la in folded.layers]
    assert "Dropout" not in names
    assert ("Conv2D", "BatchNormalization") not in set(zip(names, names[1:]))
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(net(x)), atol=1e-5)
    # The network itself is untouched and still trains as before.
    assert any(isinstance(la, keras.layers.BatchNormalization) for la in net.layers)


def test_networks_that_are_not_a_chain_are_left_alone():
    net = facechannel((32, 32, 1), 3, width=0.125)
    assert fold_batch_norm(net) is net


def test_predict_proba_equals_the_unfolded_network(tiny_faces):
    X, y = tiny_faces
    clf = CNNClassifier("vgg_fer", {"width": 0.125, "dense_units": 8}, epochs=1, batch_size=16,
                        random_state=0).fit(X, y)
    _random_batch_norm(clf.model_.layers[-1])
    from fersk._keras_base import _INFERENCE_MODELS

    _INFERENCE_MODELS.pop(clf.model_, None)  # weights changed behind fit's back
    expected = np.asarray(clf.model_(X[..., None].astype("float32"), training=False), dtype=np.float64)
    np.testing.assert_allclose(clf.predict_proba(X), expected / expected.sum(1, keepdims=True),
                               atol=1e-5)
    clf.set_params(predict_batch_size=8)  # the compiled several-batch path
    np.testing.assert_allclose(clf.predict_proba(X), expected / expected.sum(1, keepdims=True),
                               atol=1e-5)


def test_warm_start_refit_is_not_predicted_with_stale_folded_weights(tiny_faces):
    X, y = tiny_faces
    clf = CNNClassifier("vgg_fer", {"width": 0.125, "dense_units": 8}, epochs=1, batch_size=16,
                        learning_rate=0.05, random_state=0, warm_start=True).fit(X, y)
    before = clf.predict_proba(X)
    clf.fit(X, y)
    after = clf.predict_proba(X)
    expected = np.asarray(clf.model_(X[..., None].astype("float32"), training=False), dtype=np.float64)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_estimators_pickled_before_a_parameter_existed_load_with_its_default(tiny_faces):
    import pickle

    X, y = tiny_faces
    clf = CNNClassifier("vgg_fer", {"width": 0.125, "dense_units": 8}, epochs=1, batch_size=16,
                        random_state=0).fit(X, y)
    state = clf.__getstate__()
    del state["test_time_crops"], state["label_smoothing"]  # as an older fersk pickled it
    old = CNNClassifier.__new__(CNNClassifier)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.get_params()["test_time_crops"] == "center"
    assert old.get_params()["label_smoothing"] == 0.0
    np.testing.assert_allclose(old.predict_proba(X), clf.predict_proba(X), atol=1e-6)
