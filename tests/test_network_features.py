"""NetworkFeatures: a trained network's last hidden layer as a transformer."""

import pickle
import warnings

import joblib
import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import half_bright_faces
from fersk import (
    CNNClassifier,
    CNNEnsembleClassifier,
    CNNRegressor,
    LBCNNClassifier,
    LBPCodeTransformer,
    NetworkFeatures,
    pretrained,
)
from fersk._inference import features_network
from fersk.network_features import fold_head

FACES = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)


def _softmax_of(network, features):
    """The network's output layer applied to ``features`` by hand."""
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in network.model_.layers[-1].layers[-1].weights)
    z = features @ kernel + bias
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _small_classifier(**kw):
    return CNNClassifier("kaggle_cnn", {"width": 1 / 16, "dense_units": 6}, epochs=1,
                         random_state=0, **kw)


# ---------------------------------------------------------------- a bundled model
def test_bundled_default_features_are_what_its_softmax_reads():
    features = NetworkFeatures(test_time_views="center").fit(FACES)
    F = features.transform(FACES)
    assert F.shape == (10, 256) and F.dtype == np.float64
    assert list(features.get_feature_names_out()[:2]) == ["networkfeatures0", "networkfeatures1"]
    # The loaded pipeline, one view (centre, no mirror): its probabilities
    # are the output layer on these features.
    model = pretrained.load(backend="keras").set_params(
        network__test_time_flip=False, network__test_time_margin=None)
    np.testing.assert_allclose(_softmax_of(model[-1], F), model.predict_proba(FACES),
                               rtol=1e-4, atol=1e-5)


def test_bundled_default_features_average_its_views():
    # The default's views: the centre window and its mirror, both for every
    # face (the margin gates probabilities, not features).
    centre = NetworkFeatures(test_time_views="center").fit(FACES)
    both = NetworkFeatures().fit(FACES).transform(FACES)
    mirrored = centre.transform(FACES[:, :, ::-1])
    np.testing.assert_allclose(both, (centre.transform(FACES) + mirrored) / 2, rtol=1e-5, atol=1e-5)


def test_bundled_model_reads_photos_through_its_own_cropper():
    # The steps before the network are the bundled pipeline's: a photo is
    # found, cropped and resized as the pipeline predicts it.
    from skimage import data

    photo = data.astronaut()
    features = NetworkFeatures().fit([photo])
    model = pretrained.load(backend="keras")
    face = model[:-1].transform([photo])
    np.testing.assert_allclose(features.transform([photo]), features.transform(face), atol=1e-6)


def test_a_new_last_layer_in_a_pipeline_and_a_grouped_search():
    X, y = FACES, np.array([0, 1] * 5)
    pipe = make_pipeline(NetworkFeatures(), LogisticRegression(max_iter=500))
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=GroupKFold(2))
    search.fit(X, y, groups=np.arange(10) // 2 % 2)
    assert search.predict(X).shape == (10,)


# ---------------------------------------------------------------- an estimator
def test_an_estimator_is_trained_as_a_clone():
    X, y = half_bright_faces(n=32, side=24)
    estimator = _small_classifier()
    features = NetworkFeatures(estimator).fit(X, y)
    assert not hasattr(estimator, "model_")  # the parameter is left untouched
    by_hand = clone(estimator).fit(X, y)
    expected = by_hand._outputs_of_views(by_hand._validate_X(X, reset=False), features=True)
    np.testing.assert_allclose(features.transform(X), expected, rtol=1e-6)
    assert features.n_features_in_ == 24 * 24
    assert features.transform(X).shape == (32, 6)


def test_fit_params_reach_the_estimator():
    X, y = half_bright_faces(n=32, side=24)
    weight = np.ones(len(y))
    weight[:8] = 0  # weight 0: those faces are not trained on
    a = NetworkFeatures(_small_classifier()).fit(X, y, sample_weight=weight).transform(X)
    b = NetworkFeatures(_small_classifier()).fit(X[8:], y[8:]).transform(X)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_frozen_estimator_is_not_trained_again():
    X, y = half_bright_faces(n=32, side=24)
    fitted = _small_classifier().fit(X, y)
    before = [w.copy() for w in fitted.model_.get_weights()]
    features = clone(NetworkFeatures(FrozenEstimator(fitted))).fit(X[:4])  # no y needed
    after = fitted.model_.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    single = features.transform(X)
    assert single.shape == (32, 6)
    # In a Pipeline: the steps before the network are applied first.
    pipe = make_pipeline(LBPCodeTransformer(P=4, R=1), LBCNNClassifier(
        depth=1, n_anchors=4, filters=2, head_units=5, epochs=1, random_state=0)).fit(X, y)
    lbp = NetworkFeatures(FrozenEstimator(pipe)).fit(X)
    net = pipe[-1]
    expected = net._outputs_of_views(net._validate_X(pipe[0].transform(X), reset=False), features=True)
    np.testing.assert_allclose(lbp.transform(X), expected, rtol=1e-6)


def test_regressor_features():
    X, _ = half_bright_faces(n=32, side=24)
    values = np.random.default_rng(0).uniform(-1, 1, (32, 2))
    reg = CNNRegressor("kaggle_cnn", {"width": 1 / 16, "dense_units": 5}, epochs=1, random_state=0)
    assert NetworkFeatures(reg).fit(X, values).transform(X).shape == (32, 5)


def test_rows_stay_in_order_and_persist(tmp_path):
    X, y = half_bright_faces(n=32, side=24)
    features = NetworkFeatures(_small_classifier()).fit(X, y)
    F = features.transform(X)
    np.testing.assert_allclose(features.transform(X[::-1]), F[::-1], rtol=1e-6, atol=1e-7)
    joblib.dump(features, tmp_path / "f.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "f.joblib").transform(X), F, rtol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(features)).transform(X), F, rtol=1e-6)


# ---------------------------------------------------------------- bad input
def test_clear_errors():
    X, y = half_bright_faces(n=32, side=24)
    with pytest.raises(NotFittedError):
        NetworkFeatures(_small_classifier()).transform(X)
    with pytest.raises(ValueError, match="requires y to be passed"):
        NetworkFeatures(_small_classifier()).fit(X)
    with pytest.raises(ValueError, match="test_time_views"):
        NetworkFeatures(test_time_views="ten").fit(X)
    with pytest.raises(TypeError, match="fersk network estimator.*LogisticRegression"):
        NetworkFeatures(LogisticRegression()).fit(X.reshape(32, -1), y)
    ensemble = CNNEnsembleClassifier([("a", _small_classifier()), ("b", LogisticRegression())])
    with pytest.raises(TypeError, match="fersk network estimator.*LogisticRegression"):
        NetworkFeatures(ensemble).fit(X.reshape(32, -1), y)
    features = NetworkFeatures(_small_classifier()).fit(X, y)
    with pytest.raises(ValueError, match="24x24|576|shape"):
        features.transform(X[:, :20, :20])
    bad = X.astype(float)
    bad[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        features.transform(bad)
    with pytest.raises(ValueError, match="no pretrained model .no_such_model."):
        NetworkFeatures("no_such_model").fit(X)


def test_a_network_without_a_dense_output_has_no_features():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3)(inputs)
    outputs = keras.layers.Activation("softmax")(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="does not end in a Dense output layer"):
        features_network(keras.Model(inputs, outputs))


# ---------------------------------------------------------------- scikit-learn's checks
@pytest.mark.slow
@parametrize_with_checks(
    [
        # One network inside is enough for the transformer's own conduct (the
        # regressor's features: test_regressor_features; each passes them all).
        NetworkFeatures(CNNClassifier("kaggle_cnn", {"width": 1 / 64, "dense_units": 4}, epochs=1,
                                      image_shape=(1, -1), random_state=0)),
    ],
    # Every check passes: nothing is expected to fail.
    expected_failed_checks=lambda est: {},
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


# ---------------------------------------------------------------- the example
def test_new_last_layer_example_runs_on_expw_faces(monkeypatch, capsys, tmp_path):
    import runpy
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = root.parent / "shared" / "data"
    if not (data / "expw-dev").is_dir():
        pytest.skip(f"ExpW development photos not found under {data}")
    monkeypatch.setattr(sys, "argv", ["new_last_layer.py", "--data", str(data), "--folds", "2",
                                      "--max-faces", "60", "--save", str(tmp_path / "mine")])
    runpy.run_path(str(root / "examples" / "new_last_layer.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "| all | 60 |" in out and "new last layer" in out
    assert pretrained.load(tmp_path / "mine").predict(FACES[:2]).shape == (2,)
    # Named as FER-2013's classes, whichever of them 60 faces hold.
    names = pretrained.info(tmp_path / "mine")["class_names"]
    assert set(names) <= {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


# ---------------------------------------------------------------- fold_head
def test_fold_head_makes_the_head_the_networks_output_layer(tmp_path):

    labels = np.array(["calm", "joy", "shout"] * 4)[:10]
    head = make_pipeline(NetworkFeatures(test_time_views="center"), LogisticRegression(max_iter=1000))
    head.fit(FACES, labels)
    model = fold_head(head)
    assert model[-1].classes_.tolist() == ["calm", "joy", "shout"]
    # One view: the folded network's probabilities are the head's.
    one = model.set_params(network__test_time_flip=False, network__test_time_margin=None)
    np.testing.assert_allclose(one.predict_proba(FACES), head.predict_proba(FACES), atol=1e-5)
    assert list(one.predict(FACES)) == list(head.predict(FACES))
    # The pipeline it came from is left as it was.
    assert head[0].estimator_[-1].classes_.tolist() == list(range(7))
    assert head[0].transform(FACES).shape == (10, 256)
    # A model folder like any other: saved, loaded, named by the head's labels.
    pretrained.save(model, tmp_path / "mine")
    assert pretrained.info(tmp_path / "mine")["class_names"] == ["calm", "joy", "shout"]
    loaded = pretrained.load(tmp_path / "mine", backend="keras")
    np.testing.assert_allclose(loaded.predict_proba(FACES), model.predict_proba(FACES), atol=1e-6)
    # The network's training record is not the new layer's: fersk evaluate drew
    # the bundled network's epochs as the adapted model's training curve.
    for attr in ("history_", "best_epoch_", "n_epochs_"):
        assert not hasattr(model[-1], attr) and not hasattr(loaded[-1], attr)


def test_fold_head_of_a_network_loaded_with_names_saves_the_heads_classes(tmp_path):
    """A network loaded with labels="names" kept its label codes through
    fold_head, and the saved folder named the head's classes by them: the
    model reloaded predicted 0..K-1 where it had predicted the head's labels."""
    from sklearn.frozen import FrozenEstimator

    named = pretrained.load("wild_vgg_fast", labels="names", backend="keras")
    labels = np.array(["calm", "joy", "shout"] * 4)[:10]
    head = make_pipeline(NetworkFeatures(FrozenEstimator(named), test_time_views="center"),
                         LogisticRegression(max_iter=1000)).fit(FACES, labels)
    model = fold_head(head)
    pretrained.save(model, tmp_path / "mine")
    loaded = pretrained.load(tmp_path / "mine", backend="keras")
    assert loaded[-1].classes_.tolist() == ["calm", "joy", "shout"]
    assert list(loaded.predict(FACES)) == list(model.predict(FACES))


def test_fold_head_of_a_binary_head_and_of_a_trained_estimator():

    X, y = half_bright_faces(n=32, side=24)
    fitted = _small_classifier(test_time_flip=False).fit(X, y)
    before = fitted.predict_proba(X)
    head = make_pipeline(NetworkFeatures(FrozenEstimator(fitted)), LogisticRegression()).fit(X, 1 - y)
    model = fold_head(head)
    assert model is not fitted and model.classes_.tolist() == [0, 1]
    np.testing.assert_allclose(model.predict_proba(X), head.predict_proba(X), atol=1e-5)
    # The trained estimator keeps its own output layer.
    np.testing.assert_array_equal(fitted.predict_proba(X), before)


def test_fold_head_refuses_what_is_not_a_network_with_a_linear_head():
    from sklearn.ensemble import RandomForestClassifier


    X, y = half_bright_faces(n=32, side=24)
    with pytest.raises(TypeError, match="NetworkFeatures then a linear classifier"):
        fold_head(make_pipeline(LogisticRegression()))
    forest = make_pipeline(NetworkFeatures(_small_classifier()), RandomForestClassifier(n_estimators=3))
    with pytest.raises(TypeError, match="not a linear classifier"):
        fold_head(forest.fit(X, y))
    with pytest.raises(NotFittedError):
        fold_head(make_pipeline(NetworkFeatures(_small_classifier()), LogisticRegression()))
    # A regressor's features with a classifier's head: no classifier output layer to hold it.
    values = np.random.default_rng(0).uniform(-1, 1, (32, 2))
    reg = CNNRegressor("kaggle_cnn", {"width": 1 / 16, "dense_units": 5}, epochs=1, random_state=0)
    features = NetworkFeatures(reg).fit(X, values)
    head = LogisticRegression().fit(features.transform(X), y)
    with pytest.raises(TypeError, match="CNNRegressor"):
        fold_head(make_pipeline(features, head))


def test_an_ensembles_features_are_its_members_side_by_side():
    from fersk import MDSMappedLBP

    X, y = half_bright_faces(n=32, side=24)
    members = [("raw", _small_classifier()),
               ("lbp", make_pipeline(MDSMappedLBP(random_state=0), _small_classifier()))]
    ensemble = CNNEnsembleClassifier(members).fit(X, y)
    features = NetworkFeatures(FrozenEstimator(ensemble)).fit(X)
    F = features.transform(X)
    assert F.shape == (32, 12) and len(features.get_feature_names_out()) == 12
    raw, lbp = ensemble.estimators_
    np.testing.assert_allclose(F[:, :6], NetworkFeatures(FrozenEstimator(raw)).fit(X).transform(X),
                               rtol=1e-6)
    np.testing.assert_allclose(F[:, 6:], NetworkFeatures(FrozenEstimator(lbp)).fit(X).transform(X),
                               rtol=1e-6)
    head = make_pipeline(features, LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="members' side by side"):
        fold_head(head)


def test_a_network_without_a_dense_output_is_refused_at_fit():
    import keras

    def pooled_softmax(input_shape, n_classes):
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(n_classes, 3)(inputs)
        return keras.Model(inputs, keras.layers.Softmax()(keras.layers.GlobalAveragePooling2D()(x)))

    X, y = half_bright_faces(n=32, side=24)
    with pytest.raises(ValueError, match="does not end in a Dense output layer"):
        NetworkFeatures(CNNClassifier(pooled_softmax, epochs=1, random_state=0)).fit(X, y)


def test_the_default_estimator_is_the_bundled_default_model():
    # Should the bundled default change, NetworkFeatures' default follows it.
    assert NetworkFeatures().estimator == pretrained.DEFAULT_MODEL


def test_verbose_reports_the_croppers_progress(capsys):
    from skimage import data

    photos = [data.astronaut(), data.astronaut()[:, ::-1]]
    quiet = NetworkFeatures().fit(photos)
    loud = NetworkFeatures(verbose=1).fit(photos)
    capsys.readouterr()
    np.testing.assert_allclose(loud.transform(photos), quiet.transform(photos), atol=1e-6)
    printed = capsys.readouterr()
    assert "[FaceCropper] 2/2 images cropped" in printed.out + printed.err
    assert quiet.estimator_[0].verbose == 0
    # the network's own cropper stays quiet: a folded, saved network predicts without progress lines
    assert loud.estimator_[0].verbose == 0
    head = LogisticRegression().fit(loud.transform(photos), [0, 1])
    capsys.readouterr()
    folded = fold_head(make_pipeline(loud, head))
    assert folded[0].verbose == 0
    folded.predict(photos)
    printed = capsys.readouterr()
    assert "images cropped" not in printed.out + printed.err


def test_one_view_reaches_network_features_in_a_pipeline_and_an_ensemble():
    """one_view (and an ensemble's test_time_views="center") left a member
    built on NetworkFeatures at all its network's views: the ensemble's
    "center" answer was its ten-view answer, without a word."""
    from fersk.ensemble import one_view

    X, y = half_bright_faces(n=32, side=24)
    net = _small_classifier(crop_size=20, test_time_crops="five", test_time_flip=True)
    member = make_pipeline(NetworkFeatures(net), LogisticRegression())
    ensemble = CNNEnsembleClassifier([("features", member)]).fit(X, y)
    fitted = ensemble.estimators_[0]
    assert one_view(fitted)[0].test_time_views == "center"
    assert fitted[0].test_time_views == "model"  # left as it is
    every = ensemble.predict_proba(X)
    centre = ensemble.set_params(test_time_views="center").predict_proba(X)
    fitted[0].set_params(test_time_views="center")
    np.testing.assert_allclose(centre, fitted.predict_proba(X), rtol=1e-6)
    assert np.abs(centre - every).max() > 1e-6


@pytest.mark.parametrize("views", [dict(test_time_flip=True),
                                   dict(crop_size=20, test_time_crops="five", test_time_flip=False)])
def test_fold_head_of_centre_view_features_predicts_from_that_view(views):
    """NetworkFeatures(test_time_views="center") trains the head on the centre
    view alone; the folded network kept its own views (a mirror, five crops)
    and answered otherwise on up to a third of the faces."""
    X, y = half_bright_faces(n=32, side=24)
    fitted = _small_classifier(**views).fit(X, y)
    head = make_pipeline(NetworkFeatures(FrozenEstimator(fitted), test_time_views="center"),
                         LogisticRegression(C=100.0)).fit(X, 1 - y)
    model = fold_head(head)
    assert (model.test_time_crops, model.test_time_flip) == ("center", False)
    np.testing.assert_allclose(model.predict_proba(X), head.predict_proba(X), atol=1e-5)
    assert (fitted.test_time_crops, fitted.test_time_flip) == (  # the original keeps its views
        views.get("test_time_crops", "center"), views["test_time_flip"])


def test_a_refit_on_another_estimator_forgets_n_features_in():
    """n_features_in_ of a network fitted on 24x24 images survived a refit on
    a bundled model, which takes images of any size (and so has none)."""
    X, y = half_bright_faces(n=8, side=24)
    features = NetworkFeatures(_small_classifier()).fit(X, y)
    assert features.n_features_in_ == 24 * 24
    features.set_params(estimator="fer2013_cnn").fit(FACES)
    assert not hasattr(features, "n_features_in_")
