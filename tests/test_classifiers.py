"""CNNClassifier and LBCNNClassifier: scikit-learn behaviour and real learning.

Networks are tiny (``width``/depth parameters), images few and epochs 1-10,
so the whole module runs in a couple of minutes on a 2-core CPU; fitted
models are shared through module-scoped fixtures.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, PredefinedSplit, cross_validate  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fersk.architectures import ARCHITECTURES  # noqa: E402
from fersk.classifiers import CNNClassifier, LBCNNClassifier  # noqa: E402

TINY = {
    "vgg_s": {"width": 0.0625, "dense_units": 16},
    "facechannel": {"width": 0.0625, "dense_units": 16},
    "kaggle_cnn": {"width": 0.0625, "dense_units": 16},
    "vgg_fer": {"width": 0.125, "dense_units": 16},
    "mtcnn_cnn": {"width": 0.25, "dense_units": 16},
    "lbcnn": {"depth": 2, "n_anchors": 8, "filters": 4, "head_units": 16},
}
TINY_LBCNN = dict(depth=2, n_anchors=8, filters=4, head_units=16)


def _halves(n=80, side=16, seed=0):
    """Two classes: the left or the right half is brighter (noisy)."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, side, side).astype(np.float32)
    y = np.arange(n) % 2
    X[y == 0, :, : side // 2] += 0.6
    X[y == 1, :, side // 2 :] += 0.6
    return X, y


def _double(x):
    return 2.0 * x


# ---------------------------------------------------------------- architectures
@pytest.fixture(scope="module")
def fitted_per_architecture(fer_small):
    X, y, _ = fer_small
    out = {}
    for name in ARCHITECTURES:
        clf = CNNClassifier(name, TINY[name], epochs=1, batch_size=32, random_state=0)
        out[name] = clf.fit(X, y)
    return out


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_architecture_trains_on_real_faces(name, fitted_per_architecture, fer_small):
    X, y, _ = fer_small
    clf = fitted_per_architecture[name]
    proba = clf.predict_proba(X[:9])
    assert proba.shape == (9, 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= set(range(7))
    np.testing.assert_array_equal(clf.classes_, np.arange(7))
    assert clf.n_features_in_ == 48 * 48 and clf.image_shape_ == (48, 48)
    assert clf.n_epochs_ == 1 and len(clf.history_["loss"]) == 1
    assert clf.n_trainable_params_ == sum(int(np.prod(w.shape)) for w in clf.model_.trainable_weights)
    assert clf.n_trainable_params_ > 0
    assert (clf.n_fixed_params_ > 0) == (name != "mtcnn_cnn")  # no batch norm in O-Net
    # flattened rows give the same probabilities as the batch layout
    np.testing.assert_allclose(clf.predict_proba(X[:9].reshape(9, -1)), proba, atol=1e-6)


def test_facechannel_has_shunting_inhibition(fitted_per_architecture):
    net = fitted_per_architecture["facechannel"].model_.layers[-1]
    assert any(type(layer).__name__ == "ShuntingInhibition" for layer in net.layers)


# ------------------------------------------------------------------- learning
@pytest.mark.parametrize(
    "make",
    [
        lambda: CNNClassifier("kaggle_cnn", {"width": 0.125, "dense_units": 16}),
        lambda: LBCNNClassifier(**TINY_LBCNN),
    ],
    ids=["kaggle_cnn", "lbcnn"],
)
def test_learns_easy_task(make):
    X, y = _halves(120)
    clf = make().set_params(epochs=8, batch_size=16, learning_rate=3e-3, random_state=0)
    clf.fit(X[:80], y[:80])
    assert clf.history_["loss"][-1] < clf.history_["loss"][0]
    assert clf.score(X[80:], y[80:]) >= 0.9  # chance is 0.5


def test_lbcnn_anchors_fixed_and_counted():
    X, y = _halves(40)
    clf = LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0).fit(X, y)
    lbc = [w for w in clf.model_.non_trainable_weights if w.name == "anchors"]
    assert len(lbc) == 2
    assert clf.n_anchor_params_ == 2 * 3 * 3 * 4 * 8
    assert clf.n_fixed_params_ >= clf.n_anchor_params_
    # same seed -> same anchors, and training does not move them
    other = LBCNNClassifier(**TINY_LBCNN, epochs=3, random_state=0).fit(X, y)
    for a, b in zip(lbc, [w for w in other.model_.non_trainable_weights if w.name == "anchors"]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert set(np.unique(np.asarray(a))) <= {-1.0, 0.0, 1.0}


# --------------------------------------------------------------- determinism
def test_same_seed_same_result_different_seed_differs():
    X, y = _halves(48)
    kw = dict(**TINY_LBCNN, epochs=2, batch_size=16)
    p0 = LBCNNClassifier(**kw, random_state=0).fit(X, y).predict_proba(X)
    p0b = LBCNNClassifier(**kw, random_state=0).fit(X, y).predict_proba(X)
    p1 = LBCNNClassifier(**kw, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p0, p0b)
    assert not np.allclose(p0, p1)


def test_fit_leaves_global_random_state_alone():
    X, y = _halves(20)
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0).fit(X, y)
    assert np.random.rand() == expected


def test_fit_leaves_keras_random_streams_alone():
    """keras.utils.set_random_seed inside a seeded fit replaced Keras's global
    seed and the generator keras.random draws unseeded numbers from: a
    caller's seeded keras.random stream jumped to the fit's."""
    import keras

    X, y = _halves(20)
    keras.utils.set_random_seed(42)
    keras.random.uniform((2,))
    expected = keras.ops.convert_to_numpy(keras.random.uniform((3,)))
    keras.utils.set_random_seed(42)
    keras.random.uniform((2,))
    LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.random.uniform((3,))), expected)
    from keras.src.utils.rng_utils import get_random_seed

    assert get_random_seed() == 42


# ---------------------------------------------------------------- persistence
@pytest.fixture(scope="module")
def small_fitted():
    X, y = _halves(40)
    labels = np.where(y == 0, "left", "right")
    clf = LBCNNClassifier(**TINY_LBCNN, epochs=2, random_state=0).fit(X, labels)
    pipe = make_pipeline(
        FunctionTransformer(_double),
        CNNClassifier("facechannel", TINY["facechannel"], epochs=1, random_state=0),
    ).fit(X, labels)
    return X, labels, clf, pipe


def _load_and_predict_in_fresh_process(path, X, tmp_path):
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np
        est = joblib.load({str(path)!r})
        np.save({str(tmp_path / "proba.npy")!r}, est.predict_proba(np.load({str(tmp_path / "X.npy")!r})))
        print(est.classes_.tolist())
        """
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return np.load(tmp_path / "proba.npy"), res.stdout


def test_pickle_round_trip_in_fresh_process(small_fitted, tmp_path):
    X, _, clf, _ = small_fitted
    joblib.dump(clf, tmp_path / "clf.joblib")
    proba, out = _load_and_predict_in_fresh_process(tmp_path / "clf.joblib", X, tmp_path)
    np.testing.assert_array_equal(proba, clf.predict_proba(X))
    assert "'left', 'right'" in out


def test_pipeline_pickle_round_trip_in_fresh_process(small_fitted, tmp_path):
    X, _, _, pipe = small_fitted
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    proba, _ = _load_and_predict_in_fresh_process(tmp_path / "pipe.joblib", X, tmp_path)
    np.testing.assert_array_equal(proba, pipe.predict_proba(X))


def test_pickled_state_holds_keras_zip_not_the_model(small_fitted):
    import pickle

    _, _, clf, _ = small_fitted
    state = clf.__getstate__()
    assert state["model_"].data[:2] == b"PK"  # .keras is a zip archive
    assert "model_" in clf.__dict__ and isinstance(clf.model_, keras.Model)
    assert pickle.loads(pickle.dumps(clf.__class__(**TINY_LBCNN))).get_params() == clf.__class__(
        **TINY_LBCNN
    ).get_params()


def test_string_labels(small_fitted):
    X, labels, clf, pipe = small_fitted
    assert clf.classes_.tolist() == ["left", "right"]
    assert set(clf.predict(X)) <= {"left", "right"}
    assert set(pipe.predict(X)) <= {"left", "right"}


# ---------------------------------------------------------- clone / set_params
def test_clone_set_params_refit_rebuilds(small_fitted):
    X, labels, clf, _ = small_fitted
    fresh = clone(clf)
    assert not hasattr(fresh, "model_")
    assert fresh.get_params() == clf.get_params()
    fresh.set_params(depth=1, filters=6).fit(X, labels)
    assert fresh.n_anchor_params_ == 3 * 3 * 6 * 8
    assert fresh.n_trainable_params_ != clf.n_trainable_params_
    assert fresh.model_ is not clf.model_


# --------------------------------------------------------------- model selection
def test_grid_search_predefined_split():
    X, y = _halves(60)
    split = PredefinedSplit(np.r_[-np.ones(40, int), np.zeros(20, int)])
    search = GridSearchCV(
        LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0),
        {"learning_rate": [1e-3, 1e-2]},
        cv=split,
    ).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.best_estimator_.learning_rate in (1e-3, 1e-2)
    assert search.predict(X).shape == (60,)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_cross_validate(n_jobs):
    X, y = _halves(40)
    res = cross_validate(
        LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0), X, y, cv=2, n_jobs=n_jobs
    )
    assert res["test_score"].shape == (2,)
    assert np.all((res["test_score"] >= 0) & (res["test_score"] <= 1))


# ----------------------------------------------------- validation / early stopping
def test_early_stopping_restores_best_weights():
    X, y = _halves(80)
    # validation labels are the opposite rule: learning the task makes
    # val_loss rise, so the best epoch is an early one and training stops.
    clf = CNNClassifier(
        "kaggle_cnn", {"width": 0.125, "dense_units": 16}, epochs=15, batch_size=16,
        learning_rate=3e-3, n_iter_no_change=2, random_state=0,
    ).fit(X[:60], y[:60], validation_data=(X[60:], 1 - y[60:]))
    assert clf.n_epochs_ < 15
    assert clf.best_epoch_ < clf.n_epochs_ - 1
    assert clf.best_epoch_ == int(np.argmin(clf.history_["val_loss"]))
    loss = clf.model_.evaluate(clf._as_model_input(X[60:]), 1 - y[60:], verbose=0)[0]
    np.testing.assert_allclose(loss, clf.history_["val_loss"][clf.best_epoch_], rtol=1e-4)
    assert not np.isclose(loss, clf.history_["val_loss"][-1], rtol=1e-4)


def test_validation_fraction_stratified_split():
    X, y = _halves(40)
    clf = LBCNNClassifier(**TINY_LBCNN, epochs=2, validation_fraction=0.25, n_iter_no_change=None,
                          random_state=0).fit(X, y)
    assert len(clf.history_["val_loss"]) == 2 and clf.n_epochs_ == 2
    # the normaliser saw only the 30 training images, not the 10 held out
    from sklearn.model_selection import train_test_split

    x_tr = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)[0]
    mean = np.asarray(clf.model_.get_layer("standardize").mean).ravel()[0]
    np.testing.assert_allclose(mean, x_tr.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="validation_fraction"):
        LBCNNClassifier(**TINY_LBCNN, epochs=1, validation_fraction=0.01).fit(X, y)


# ----------------------------------------------------------- class weights / aug
def test_class_weight_balanced_favours_minority():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 12, 12).astype(np.float32)
    y = np.r_[np.zeros(52, int), np.ones(8, int)]
    kw = dict(**TINY_LBCNN, epochs=3, batch_size=16, random_state=0)
    plain = LBCNNClassifier(**kw).fit(X, y).predict_proba(X)[:, 1].mean()
    balanced = LBCNNClassifier(**kw, class_weight="balanced").fit(X, y).predict_proba(X)[:, 1].mean()
    assert balanced > plain + 0.05
    with pytest.raises(ValueError, match="class_weight"):
        LBCNNClassifier(**kw, class_weight={0: 1.0, 7: 2.0}).fit(X, y)


def test_augment_runs_only_in_training():
    X, y = _halves(32)
    kw = dict(**TINY_LBCNN, epochs=1, batch_size=16, random_state=0)
    aug = LBCNNClassifier(**kw, augment=True).fit(X, y)
    names = [layer.name for layer in aug.model_.layers]
    assert {"augment_flip", "augment_affine"} <= set(names)
    np.testing.assert_array_equal(aug.predict_proba(X), aug.predict_proba(X))
    x = aug._as_model_input(X[:4])
    flip = aug.model_.get_layer("augment_flip")
    np.testing.assert_array_equal(np.asarray(flip(x, training=False)), x)
    plain = LBCNNClassifier(**kw).fit(X, y)
    assert not np.allclose(aug.predict_proba(X), plain.predict_proba(X))


# ------------------------------------------- schedules, warm start, test-time flip
def test_learning_rate_schedules():
    X, y = _halves(64)
    kw = dict(**TINY_LBCNN, epochs=4, batch_size=16, learning_rate=1e-2, random_state=0)
    constant = LBCNNClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(constant.history_["learning_rate"], 1e-2, rtol=1e-6)

    cosine = LBCNNClassifier(**kw, learning_rate_schedule="cosine", n_iter_no_change=None).fit(X, y)
    # CosineDecay over 4 epochs of 4 steps: after epoch e the rate is
    # lr * (1 + cos(pi * 4e / 16)) / 2, reaching 0 at the end.
    expected = 1e-2 * (1 + np.cos(np.pi * np.arange(1, 5) / 4)) / 2
    np.testing.assert_allclose(cosine.history_["learning_rate"], expected, atol=1e-7)

    # Validation labels opposite to the rule: val_loss rises from the first
    # epochs on, so the rate halves every n_iter_no_change // 2 = 1 epochs
    # without improvement.
    plateau = LBCNNClassifier(
        **{**kw, "epochs": 5}, learning_rate_schedule="plateau", n_iter_no_change=3
    ).fit(X[:48], y[:48], validation_data=(X[48:], 1 - y[48:]))
    rates = np.array(plateau.history_["learning_rate"])
    assert rates[0] == pytest.approx(1e-2)
    assert np.all(np.diff(rates) <= 0) and rates[-1] < 1e-2
    assert set(np.round(rates / 1e-2, 6)) <= {1.0, 0.5, 0.25, 0.125, 0.0625}
    with pytest.raises(ValueError, match="learning_rate_schedule"):
        LBCNNClassifier(**TINY_LBCNN, learning_rate_schedule="step").fit(X, y)


def test_warm_start_continues_training():
    X, y = _halves(64)
    kw = dict(**TINY_LBCNN, epochs=3, batch_size=16, learning_rate=3e-3, random_state=0)
    clf = LBCNNClassifier(**kw).fit(X, y)
    first_loss = clf.history_["loss"]
    model = clf.model_
    before = [w.copy() for w in model.get_weights()]
    # Brighter images would move a rebuilt normaliser; a warm fit keeps it.
    clf.set_params(warm_start=True, epochs=2, learning_rate=1e-3).fit(X + 1.0, y)
    assert clf.model_ is model
    np.testing.assert_allclose(
        np.asarray(model.get_layer("standardize").mean).ravel()[0], X.mean(), rtol=1e-5
    )
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert clf.n_epochs_ == 2 and len(clf.history_["loss"]) == 2
    np.testing.assert_allclose(clf.history_["learning_rate"], 1e-3, rtol=1e-6)
    # A cold fit starts from scratch (the same first loss again); a warm fit
    # of the same data starts below it.
    assert LBCNNClassifier(**kw).fit(X, y).history_["loss"][0] == pytest.approx(first_loss[0])
    warm = LBCNNClassifier(**kw).fit(X, y).set_params(warm_start=True, epochs=1).fit(X, y)
    assert warm.history_["loss"][0] < first_loss[0]
    # Not fitted yet (or cloned): warm_start=True is a cold fit.
    fresh = clone(clf).fit(X, y)
    assert fresh.model_ is not model and fresh.n_epochs_ == 2
    with pytest.raises(ValueError, match="classes of the previous fit"):
        clf.fit(X, y + 1)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        clf.fit(X[:, :8], y)


def test_warm_start_after_a_pickle_round_trip_is_the_warm_start_in_process():
    """A .keras file leaves out the states of the network's random generators
    (dropout): unpickled, they were drawn anew from Python's global
    generator, so a warm start after joblib.load depended on the caller's
    random state, not on random_state (dropout 0.25: max |dp| 0.01)."""
    import pickle
    import random

    X, y = _halves(32)
    fitted = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4, "dropout": 0.25},
                           epochs=1, batch_size=8, random_state=0).fit(X, y)
    blob = pickle.dumps(fitted)
    in_process = fitted.set_params(warm_start=True).fit(X, y).predict_proba(X)
    for seed in (1, 2):
        random.seed(seed)  # what the generators were drawn from at load
        loaded = pickle.loads(blob)
        np.testing.assert_array_equal(
            loaded.set_params(warm_start=True).fit(X, y).predict_proba(X), in_process)


def test_interrupted_warm_start_puts_the_weights_back(monkeypatch):
    """A warm fit stopped part way (Ctrl-C) kept its partly trained weights
    in model_ (a checkpointed rerun then missed its state, keyed on the
    starting weights); now it puts them back, as any failed fit leaves the
    estimator as it was: predictions are those before the fit, through a
    fresh inference copy, and the object in memory and its pickled copy
    agree."""
    import pickle

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (48, 16, 16), dtype=np.uint8)
    y = np.arange(48) % 3
    est = CNNClassifier("vgg_fer", TINY["vgg_fer"], epochs=1, batch_size=8, random_state=0,
                        n_iter_no_change=5, learning_rate=0.01).fit(X, y)
    before = est.predict_proba(X)  # builds the folded inference copy

    def ctrl_c(self, epoch, logs=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(keras.callbacks.EarlyStopping, "on_epoch_end", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            est.set_params(warm_start=True, epochs=3).fit(X, y)
    after = est.predict_proba(X)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-6)
    np.testing.assert_allclose(after, pickle.loads(pickle.dumps(est)).predict_proba(X),
                               atol=1e-5)


def test_warm_start_refuses_settings_built_into_the_network():
    # The old network was trained with the loss of the new head (a tanh
    # network on cross-entropy) and its old crop window, without a word.
    X, y = _halves(32)
    tanh = CNNClassifier("mtcnn_cnn", TINY["mtcnn_cnn"], head="tanh", epochs=1,
                         random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="output activation.*'tanh'"):
        tanh.set_params(warm_start=True, head="softmax").fit(X, y)
    cropped = CNNClassifier("mtcnn_cnn", TINY["mtcnn_cnn"], crop_size=14, epochs=1,
                            random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"crop_size \(the network crops \(14, 14\)"):
        cropped.set_params(warm_start=True, crop_size=12).fit(X, y)
    cropped.set_params(crop_size=14).fit(X, y)  # as built: continues



def test_warm_start_refuses_builder_settings_changed_after_fit():
    """LBCNN's depth, anchors, sparsity... (and a CNN's architecture_params,
    augment, input_scaling) changed before a warm start were ignored: the
    old network trained on while get_params described another, and a model
    saved from it carried the wrong settings."""
    from fersk import LBCNNClassifier

    X, y = _halves(30, side=32)
    lbcnn = LBCNNClassifier(depth=1, filters=2, head_units=4, n_anchors=4, epochs=1,
                            random_state=0).fit(X, y)
    for change in ({"sparsity": 0.9}, {"n_anchors": 8}, {"depth": 2}, {"head_units": 8}):
        key = next(iter(change))
        with pytest.raises(ValueError, match=rf"{key} \(the network was built with"):
            clone_fit = lbcnn.set_params(warm_start=True, **change)
            clone_fit.fit(X, y)
        lbcnn.set_params(**{key: LBCNNClassifier(depth=1, filters=2, head_units=4,
                                                 n_anchors=4).get_params()[key]})
    lbcnn.fit(X, y)  # as built: continues
    cnn = CNNClassifier("mtcnn_cnn", TINY["mtcnn_cnn"], epochs=1, random_state=0).fit(X, y)
    for change in ({"architecture_params": {**TINY["mtcnn_cnn"], "width": 0.5}},
                   {"augment": True}, {"input_scaling": "none"}):
        with pytest.raises(ValueError, match="the network was built with"):
            cnn.set_params(warm_start=True, **change).fit(X, y)
        cnn.set_params(**{k: CNNClassifier("mtcnn_cnn", TINY["mtcnn_cnn"]).get_params()[k]
                          for k in change})
    cnn.fit(X, y)

def test_a_failed_refit_leaves_the_fitted_estimator_as_it_was():
    # The new classes and pixel rule were set before the checks that failed,
    # over the previous network: other labels, floats taken as 0..255.
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (24, 16, 16)).astype(np.uint8)
    y = np.where(np.arange(24) % 2, 3, 6)
    clf = CNNClassifier("mtcnn_cnn", TINY["mtcnn_cnn"], epochs=1, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    state = {k: v for k, v in vars(clf).items() if k.endswith("_")}
    failing = [
        ((X / 255.0, np.zeros(24, int)), {}),  # one class
        ((X, np.where(y == 3, 0, 5)), {"validation_data": (X[:2], [9, 9])}),
        ((X[:, :8], y), {"sample_weight": np.ones(3)}),
    ]
    for args, kwargs in failing:
        with pytest.raises(ValueError):
            clf.fit(*args, **kwargs)
        assert {k: v for k, v in vars(clf).items() if k.endswith("_")}.keys() == state.keys()
        assert all(vars(clf)[k] is v for k, v in state.items())
        np.testing.assert_array_equal(clf.predict_proba(X), expected)
    with pytest.raises(ValueError, match="0..255|pixel"):
        clf.predict(X / 255.0)  # the uint8 pixel rule still holds


def test_best_epoch_is_the_one_early_stopping_restores():
    # np.argmin took a NaN validation loss for the best epoch; Keras's
    # EarlyStopping never counts NaN as an improvement.
    from fersk._keras_base import _best_epoch

    nan = float("nan")
    assert _best_epoch([0.9, nan, 0.5, 0.5]) == 2
    assert _best_epoch([0.5, nan]) == 0
    assert _best_epoch([nan, nan]) == 0


def test_test_time_flip_averages_mirror_images():
    X, y = _halves(32)
    X = X * np.linspace(0.5, 1.5, 16)[np.newaxis, :]  # not mirror-symmetric
    clf = LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0).fit(X, y)
    plain, mirrored = clf.predict_proba(X), clf.predict_proba(X[:, :, ::-1])
    assert not np.allclose(plain, mirrored)
    clf.set_params(test_time_flip=True)
    both = clf.predict_proba(X)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[both.argmax(axis=1)])
    # flattened rows are mirrored as images, not as rows
    np.testing.assert_allclose(clf.predict_proba(X.reshape(32, -1)), both, rtol=1e-5)


def test_verbose_prints_each_epoch(capsys):
    X, y = _halves(20)
    LBCNNClassifier(**TINY_LBCNN, epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss" in out


def test_custom_callable_architecture():
    X, y = _halves(20)

    def tiny(input_shape, n_classes, units=4, seed=None):
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(units, activation="relu")(x)
        return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))

    clf = CNNClassifier(tiny, {"units": 3}, epochs=1, random_state=0).fit(X, y)
    assert clf.n_trainable_params_ == 16 * 16 * 3 + 3 + 3 * 2 + 2
    with pytest.raises(ValueError, match="architecture_params"):
        CNNClassifier(tiny, {"nope": 1}, epochs=1).fit(X, y)

    def wrong(input_shape, n_classes):
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))

    with pytest.raises(ValueError, match="one probability per class"):
        CNNClassifier(wrong, epochs=1).fit(X, y)


def test_checkpoint_dir_refuses_a_callable_it_cannot_recognise_again(tmp_path):
    """A nested function's key was its repr (a memory address): each process
    made a new key, so an interrupted fit never resumed and its state stayed."""
    X, y = _halves(20)

    def tiny(input_shape, n_classes, seed=None):
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(inputs)
        return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))

    with pytest.raises(ValueError, match="architecture cannot be pickled"):
        CNNClassifier(tiny, epochs=1, checkpoint_dir=tmp_path / "ck").fit(X, y)
    assert not (tmp_path / "ck").exists()


# ----------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def fitted_tiny():
    X, y = _halves(20)
    return X, y, LBCNNClassifier(**TINY_LBCNN, epochs=1, random_state=0).fit(X, y)


def test_bad_inputs(fitted_tiny):
    X, y, clf = fitted_tiny
    with pytest.raises(NotFittedError):
        LBCNNClassifier().predict(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        clf.predict(np.zeros((2, 20, 20)))
    one_class = LBCNNClassifier(**TINY_LBCNN)
    with pytest.raises(ValueError, match="at least 2 classes"):
        one_class.fit(X, np.zeros(len(X)))
    assert not hasattr(one_class, "classes_")  # nothing half-fitted is left behind
    with pytest.raises(ValueError, match="Unknown label type"):
        LBCNNClassifier(**TINY_LBCNN).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises((ValueError, TypeError)):
        LBCNNClassifier(**TINY_LBCNN).fit(X, np.array([0, "a"] * 10, dtype=object))
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LBCNNClassifier(**TINY_LBCNN).fit(bad, y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        clf.predict(np.where(np.isnan(bad), np.inf, bad))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LBCNNClassifier(**TINY_LBCNN).fit(X, y[:-1])
    with pytest.raises(ValueError, match="not seen in y"):
        LBCNNClassifier(**TINY_LBCNN, epochs=1).fit(X, y, validation_data=(X[:2], [0, 5]))
    with pytest.raises(ValueError, match="requires y"):
        LBCNNClassifier(**TINY_LBCNN).fit(X, None)
    with pytest.raises(ValueError, match="optimizer"):
        LBCNNClassifier(optimizer="nope").fit(X, y)
    with pytest.raises(ValueError, match="architecture"):
        CNNClassifier("resnet999").fit(X, y)


# ------------------------------------------------------------ backend neutrality
def test_architectures_run_on_jax_backend():
    pytest.importorskip("jax")
    script = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        import keras, numpy as np
        assert keras.backend.backend() == "jax"
        from fersk.architectures import ARCHITECTURES
        x = np.random.RandomState(0).rand(2, 48, 48, 1).astype("float32")
        for name, build in ARCHITECTURES.items():
            kw = {"width": 0.0625} if name != "lbcnn" else {"depth": 1, "n_anchors": 4, "filters": 2, "seed": 0}
            p = np.asarray(build((48, 48, 1), 7, **kw)(x))
            assert p.shape == (2, 7) and np.allclose(p.sum(1), 1, atol=1e-5), name
        from fersk import LBCNNClassifier
        y = np.array([0, 1] * 10)
        clf = LBCNNClassifier(depth=1, n_anchors=4, filters=2, head_units=4, epochs=1,
                              random_state=0).fit(np.random.rand(20, 16, 16), y)
        import pickle
        assert pickle.loads(pickle.dumps(clf)).predict(np.random.rand(3, 16, 16)).shape == (3,)
        print("ok")
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


# -------------------------------------------------------- scikit-learn checks
#: The accuracy thresholds are skipped by the classifiers' poor_score tag;
#: this one fails whatever the score.
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": "a weight of 2 is not the same fit as "
    "the sample twice for a network trained by mini-batches: other batches, other "
    "gradient steps (probabilities up to about 2e-3 apart, the check allows 1e-7); "
    "weights of 0 are the samples removed",
}


def _check_instances():
    return [
        CNNClassifier("kaggle_cnn", {"width": 1 / 64, "dense_units": 4}, epochs=1, image_shape=(1, -1)),
        LBCNNClassifier(depth=1, n_anchors=4, filters=2, head_units=4, epochs=1, image_shape=(1, -1)),
    ]


@pytest.mark.slow
@parametrize_with_checks(
    _check_instances(),
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_classifier_base_is_where_the_classifiers_take_it_from():
    # The private estimator base knows no classifier (no import back up):
    # the classifier base is fersk.classifiers', beside the classes built on it.
    from sklearn.base import ClassifierMixin

    import fersk._keras_base
    from fersk._keras_base import BaseKerasImageEstimator
    from fersk.classifiers import BaseKerasImageClassifier

    assert not hasattr(fersk._keras_base, "BaseKerasImageClassifier")

    for cls in (CNNClassifier, LBCNNClassifier):
        assert issubclass(cls, BaseKerasImageClassifier)
        assert cls.__mro__.index(ClassifierMixin) < cls.__mro__.index(BaseKerasImageEstimator)


def test_prediction_settings_changed_after_fit_are_validated():
    """set_params(test_time_crops="ten") after fit: refused at predict, not
    read as the centre view (the ONNX network refuses it too)."""
    from sklearn.utils._param_validation import InvalidParameterError

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (12, 16, 16)).astype(np.uint8), np.arange(12) % 2
    clf = CNNClassifier("mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4},
                        epochs=1, crop_size=12, random_state=0).fit(X, y)
    clf.set_params(test_time_crops="ten")
    with pytest.raises(InvalidParameterError, match="test_time_crops"):
        clf.predict_proba(X)



def test_test_time_margin_of_a_tanh_head_reads_its_outputs_scale():
    """A tanh head's gate read the first view's clipped, normalised outputs:
    a row with one output barely above 0 (0.02, -0.01, -0.9) became one-hot,
    a margin of 1, and kept its single view under test_time_margin=1, which
    promises (nearly) every face all the views.  The gate is now half the
    gap between its two highest outputs (they range over [-1, 1])."""
    from fersk._keras_params import view_margin

    outputs = np.array([[0.02, -0.01, -0.9], [0.9, -0.9, -0.9], [-0.2, -0.5, -0.9]])
    np.testing.assert_allclose(view_margin(outputs, "tanh"), [0.015, 0.9, 0.15])
    np.testing.assert_allclose(view_margin(np.array([[0.7, 0.2, 0.1]]), "softmax"), [0.5])
    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (30, 16, 16)).astype(np.uint8), np.arange(30) % 3
    clf = CNNClassifier("kaggle_cnn", {"width": 0.0625, "dense_units": 8}, head="tanh",
                        crop_size=12, epochs=2, random_state=0).fit(X, y)
    clf.set_params(test_time_crops="five", test_time_flip=True)
    every = clf.predict_proba(X)
    np.testing.assert_allclose(clf.set_params(test_time_margin=1.0).predict_proba(X), every,
                               rtol=1e-5, atol=1e-6)

def test_test_time_margin_gives_the_other_views_to_unsure_faces_only():
    """``test_time_margin``: the centre view for every face, the other views
    (here nine more) only where the centre view's top two probabilities are
    closer than the margin; those faces get all the views' mean."""
    from sklearn.utils._param_validation import InvalidParameterError

    from fersk._keras_params import proba_margin

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (40, 16, 16)).astype(np.uint8), np.arange(40) % 3
    clf = CNNClassifier("mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4},
                        epochs=2, crop_size=12, random_state=0).fit(X, y)
    clf.set_params(test_time_crops="five", test_time_flip=True)
    every = clf.predict_proba(X)
    centre = clone(clf).set_params(test_time_crops="center", test_time_flip=False)
    centre.__dict__.update({k: v for k, v in clf.__dict__.items() if k.endswith("_")})
    first = centre.predict_proba(X)
    assert np.abs(every - first).max() > 1e-3

    margins = proba_margin(first)
    cut = float(np.median(margins))
    seen = []
    outputs_of_views = clf._outputs_of_views

    def spy(x, views="all"):
        seen.append((views, len(x)))
        return outputs_of_views(x, views)

    clf._outputs_of_views = spy
    gated = clf.set_params(test_time_margin=cut).predict_proba(X)
    del clf._outputs_of_views
    unsure = margins < cut
    assert 0 < unsure.sum() < len(X)
    assert seen == [("first", len(X)), ("rest", int(unsure.sum()))]
    np.testing.assert_allclose(gated[unsure], every[unsure], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gated[~unsure], first[~unsure], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[gated.argmax(axis=1)])

    np.testing.assert_allclose(clf.set_params(test_time_margin=1.0).predict_proba(X), every,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.set_params(test_time_margin=0.0).predict_proba(X), first,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="0 sample"):  # as without the gate
        clf.set_params(test_time_margin=0.5).predict_proba(X[:0])
    for bad in (1.5, -0.1, "half"):
        with pytest.raises(InvalidParameterError, match="test_time_margin"):
            clf.set_params(test_time_margin=bad).predict_proba(X)


def test_views_ablation_gives_each_face_the_views_it_names():
    """ablate_test_time_views scores N views for every face, whatever the
    network's test_time_margin, and leaves the margin as it was."""
    from fersk.training import ablate_test_time_views

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (40, 16, 16)).astype(np.uint8), np.arange(40) % 3
    net = CNNClassifier("mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4},
                        epochs=1, crop_size=12, random_state=0).fit(X, y)
    net.set_params(test_time_margin=0.0)  # would leave every face at the centre view
    asked = []
    outputs_of_views = net._outputs_of_views

    def spy(x, views="all"):
        asked.append(views)
        return outputs_of_views(x, views)

    net._outputs_of_views = spy
    scores = ablate_test_time_views([("network", net)], X, y)
    del net._outputs_of_views
    assert len(scores) == 4 and asked == ["all"] * 4
    assert net.test_time_margin == 0.0


# ------------------------------------------------- fixes of the estimator audit
def _dense_net(input_shape, n_classes, seed=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))


def _logits_net(input_shape, n_classes, seed=None):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(n_classes)(keras.layers.Flatten()(inputs)))


def _softmax_layer_net(input_shape, n_classes, seed=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(n_classes)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Softmax()(x))



def _logits_then_reshape_net(input_shape, n_classes, seed=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(n_classes)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Reshape((n_classes,))(x))


def _softmax_then_reshape_net(input_shape, n_classes, seed=None):
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(n_classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Reshape((n_classes,))(x))

def _no_training(monkeypatch):
    """Make any training start fail loudly: the refusals below come before."""
    import fersk._keras_base

    def boom(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(fersk._keras_base, "ShuffledBatches", boom)


def test_class_weight_with_soft_targets_weighs_each_image_by_its_label():
    """class_weight with sample_proba took each image's class from y when
    sample_weight was given, from the argmax of its soft row when not: the
    same data trained two different models."""
    X, y = _halves(24, side=8)
    proba = np.eye(2)[y]
    proba[y == 0] = [0.2, 0.8]  # labelled 0, most probably 1
    kw = dict(epochs=1, batch_size=8, random_state=0, class_weight={0: 10.0, 1: 1.0})
    without = CNNClassifier(_dense_net, **kw).fit(X, y, sample_proba=proba)
    ones = CNNClassifier(_dense_net, **kw).fit(X, y, sample_proba=proba,
                                               sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(without.predict_proba(X), ones.predict_proba(X))


def test_prediction_follows_weights_changed_in_place_on_model_():
    """The batch-norm-folded inference copy was cached per model_ only: after
    model_.set_weights, predict_proba mixed the old convolutions and batch
    norms with the new dense weights."""
    from fersk._keras_base import _INFERENCE_MODELS

    X, y = _halves(16)
    kw = dict(epochs=1, batch_size=8)
    a = CNNClassifier("vgg_fer", TINY["vgg_fer"], random_state=0, **kw).fit(X, y)
    b = CNNClassifier("vgg_fer", TINY["vgg_fer"], random_state=1, **kw).fit(X, y)
    a.predict_proba(X)
    folded = _INFERENCE_MODELS[a.model_]["network"]
    assert len(folded.layers) < len(a.model_.layers[-1].layers)  # batch norm folded
    infer = a._inference_model()
    assert a._inference_model() is infer  # unchanged weights: the cached copy
    a.model_.set_weights(b.model_.get_weights())
    expected = keras.ops.convert_to_numpy(a.model_(X[..., None], training=False))
    np.testing.assert_allclose(a.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_a_stale_inference_cache_is_replaced_whole(monkeypatch):
    """A stale cache was emptied, then refilled after the fold (milliseconds):
    a prediction in another thread reading it in between failed with
    KeyError: 'network'.  Now the new cache replaces the old in one step."""
    import threading

    import fersk._keras_base as base

    X, y = _halves(16)
    kw = dict(epochs=1, batch_size=8)
    a = CNNClassifier("vgg_fer", TINY["vgg_fer"], random_state=0, **kw).fit(X, y)
    b = CNNClassifier("vgg_fer", TINY["vgg_fer"], random_state=1, **kw).fit(X, y)
    a.predict_proba(X)
    folding, go_on = threading.Event(), threading.Event()
    real_fold = base.fold_batch_norm

    def slow_fold(network):
        folding.set()
        go_on.wait(30)
        return real_fold(network)

    monkeypatch.setattr(base, "fold_batch_norm", slow_fold)
    a.model_.set_weights(b.model_.get_weights())
    rebuild = threading.Thread(target=base._inference_cache, args=(a.model_,))
    rebuild.start()
    try:
        assert folding.wait(30)
        seen = base._INFERENCE_MODELS.get(a.model_)  # what another thread finds meanwhile
        assert seen is not None and "network" in seen
    finally:
        go_on.set()
        rebuild.join(30)
    assert "network" in base._INFERENCE_MODELS[a.model_]
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_softmax_head_refuses_a_network_without_a_softmax_output(monkeypatch):
    """A builder ending in logits was trained, and predict_proba returned its
    raw outputs normalised: negative "probabilities"."""
    X, y = _halves(12, side=8)
    kw = dict(epochs=1, batch_size=8, random_state=0)
    # Softmax as a layer of its own, or tanh replacing the output layer, go.
    layer_softmax = CNNClassifier(_softmax_layer_net, **kw).fit(X, y)
    assert layer_softmax.predict_proba(X).min() >= 0
    CNNClassifier(_logits_net, head="tanh", **kw).fit(X, y)
    _no_training(monkeypatch)
    clf = CNNClassifier(_logits_net, **kw)
    with pytest.raises(ValueError, match="output must be a softmax layer.*'linear'"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")



def test_softmax_head_refuses_logits_behind_a_shape_only_layer(monkeypatch):
    """A last layer that names no activation (Reshape, Flatten, Identity,
    global pooling) was taken for a softmax: logits behind it were trained
    with cross-entropy and given as "probabilities" from -6 to 7.  What such
    a network outputs is now checked to be probabilities."""
    X, y = _halves(12, side=8)
    kw = dict(epochs=1, batch_size=8, random_state=0)
    fine = CNNClassifier(_softmax_then_reshape_net, **kw).fit(X, y)
    assert fine.predict_proba(X).min() >= 0
    _no_training(monkeypatch)
    clf = CNNClassifier(_logits_then_reshape_net, **kw)
    with pytest.raises(ValueError, match="output must be a softmax layer.*not probabilities"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")

def test_five_test_time_crops_need_a_smaller_crop_before_training(monkeypatch):
    """test_time_crops="five" without a crop smaller than the images trained
    the whole network and failed only at predict, the message saying
    crop_size=None also when crop_size was the image size."""
    X, y = _halves(12, side=8)
    kw = dict(epochs=1, batch_size=8, random_state=0)
    fitted = CNNClassifier(_dense_net, **kw).fit(X, y)
    _no_training(monkeypatch)
    for crop in (None, 8, (8, 8)):
        clf = CNNClassifier(_dense_net, crop_size=crop, test_time_crops="five", **kw)
        with pytest.raises(ValueError, match="crop_size is None or as large as the image"):
            clf.fit(X, y)
        assert not hasattr(clf, "model_")
    # Set after fit, refused at predict with the same words.
    fitted.set_params(test_time_crops="five")
    with pytest.raises(ValueError, match="crop_size is None or as large as the image"):
        fitted.predict(X)


def test_numpy_scalars_train_as_their_python_numbers():
    """np.float32 learning_rate and np.int64 dense_units/head_units passed
    every constraint, then Keras refused them once the network was built."""
    X = np.random.default_rng(0).integers(0, 256, (16, 16, 16)).astype(np.uint8)
    y = np.arange(16) % 2
    for schedule in ("constant", "cosine", "warmup_cosine"):
        CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": np.int64(4)}, epochs=1,
                      batch_size=8, learning_rate=np.float32(0.01),
                      learning_rate_schedule=schedule).fit(X, y)
    LBCNNClassifier(depth=1, n_anchors=4, filters=4, head_units=np.int64(4), epochs=1,
                    batch_size=8).fit(X, y)


@pytest.mark.parametrize("weights", [{0: float("nan"), 1: 1.0}, {0: float("inf"), 1: 1.0},
                                     {0: None, 1: 1.0}, {0: -1.0, 1: 1.0}, {0: 0, 1: 0.0}])
def test_class_weight_values_are_checked_before_training(weights):
    """NaN, inf, None or negative class weights trained to NaN probabilities
    (predict returning the first class for every image), all zeros to a
    loss of 0."""
    X = np.random.default_rng(0).integers(0, 256, (16, 16, 16)).astype(np.uint8)
    clf = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                        class_weight=weights)
    with pytest.raises(ValueError, match="class_weight values must be finite numbers >= 0"):
        clf.fit(X, np.arange(16) % 2)
    assert not hasattr(clf, "model_")


def test_class_weight_key_true_is_not_class_one():
    """{True: 5.0} weighed class 1 (True == 1) without a word."""
    X = np.random.default_rng(0).integers(0, 256, (16, 16, 16)).astype(np.uint8)
    clf = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                        class_weight={True: 5.0})
    with pytest.raises(ValueError, match=r"class_weight has keys that are not classes of y: \[True\]"):
        clf.fit(X, np.arange(16) % 2)


def test_zero_weight_removes_the_image():
    """A weight of 0 left the image in the input standardisation and in the
    validation_fraction hold-out (so in early stopping): not the fit without
    it, as scikit-learn's weights mean."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 100, (24, 12, 12)).astype(np.uint8)
    y = np.arange(24) % 2
    X[:4] = 255  # saturated frames the user excludes
    w = np.ones(24)
    w[:4] = 0

    def make():
        return CNNClassifier("kaggle_cnn", {"width": 1 / 64, "dense_units": 4}, epochs=2,
                             batch_size=8, validation_fraction=0.25, random_state=0)

    weighted = make().fit(X, y, sample_weight=w)
    removed = make().fit(X[4:], y[4:])
    a, b = (clf.model_.get_layer("standardize") for clf in (weighted, removed))
    np.testing.assert_allclose(np.ravel(a.mean), np.ravel(b.mean), rtol=1e-6)
    np.testing.assert_allclose(np.ravel(a.variance), np.ravel(b.variance), rtol=1e-6)
    np.testing.assert_allclose(weighted.history_["val_loss"], removed.history_["val_loss"],
                               rtol=1e-5)
    np.testing.assert_allclose(weighted.predict_proba(X), removed.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    # classes_ still comes from all of y, as in scikit-learn's classifiers.
    only_removed = make().fit(X, np.where(w == 0, 2, y), sample_weight=w)
    assert only_removed.classes_.tolist() == [0, 1, 2]


def test_constant_training_channel_is_centred_not_divided_by_epsilon():
    """A channel constant in every training image had variance 0, so Keras's
    Normalization divided it by 1e-7: any other value at prediction became
    millions and swamped the network (StandardScaler keeps such scales at 1)."""
    rng = np.random.RandomState(0)
    X = np.full((12, 8, 8, 3), 255, dtype=np.uint8)  # blue constant
    X[..., :2] = rng.randint(0, 256, (12, 8, 8, 2))
    y = np.arange(12) % 2
    for w in (None, np.arange(1, 13)):
        clf = CNNClassifier(_dense_net, epochs=1, batch_size=4, random_state=0)
        clf.fit(X, y, sample_weight=w)
        layer = clf.model_.get_layer("standardize")
        variance = np.ravel(layer.variance)
        assert variance[2] == 1.0 and (variance[:2] > 100).all()
        other = X.copy()
        other[..., 2] = 0
        assert np.isfinite(clf.predict_proba(other)).all()


def test_integer_weights_standardise_as_repeated_images():
    X, y = _halves(12, side=8)
    w = np.array([1, 2, 3] * 4)
    kw = dict(epochs=1, batch_size=8, random_state=0)
    weighted = CNNClassifier(_dense_net, **kw).fit(X, y, sample_weight=w)
    repeated = CNNClassifier(_dense_net, **kw).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    a, b = (clf.model_.get_layer("standardize") for clf in (weighted, repeated))
    np.testing.assert_allclose(np.ravel(a.mean), np.ravel(b.mean), rtol=1e-6)
    np.testing.assert_allclose(np.ravel(a.variance), np.ravel(b.variance), rtol=1e-6)


def test_classifiers_declare_poor_score():
    # So scikit-learn's checks skip only their accuracy thresholds on tiny
    # networks, not every other assertion of those checks (as an xfail did).
    from sklearn.utils import get_tags

    for clf in (CNNClassifier(), LBCNNClassifier()):
        assert get_tags(clf).classifier_tags.poor_score


def test_weights_and_targets_beyond_float32_are_refused_before_training():
    """Keras weighs the loss in float32 without normalising the weights:
    sample_weight of 1e20 fitted infinite weights (blamed on the learning
    rate at prediction), 1e-50 became 0 and nothing was learnt; regression
    targets of 1e39 trained on infinity.  CNNEnsembleClassifier passed
    negative weights to its members one after another, a fersk network
    refusing them only after the members before it had trained."""
    from sklearn.linear_model import LogisticRegression

    from fersk import CNNEnsembleClassifier, CNNRegressor

    rng = np.random.RandomState(0)
    X, y = rng.randn(12, 16, 16), np.arange(12) % 2
    net = CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1, random_state=0)
    for scale in (1e20 * 1e20, 1e-50):
        with pytest.raises(ValueError, match="sample_weight holds weights from .* beyond what "
                                             "float32 .* scale them nearer 1"):
            net.fit(X, y, sample_weight=np.full(12, scale))
    assert net.fit(X, y, sample_weight=np.full(12, 1e10)).n_epochs_ == 1  # within float32
    with pytest.raises(ValueError, match="y holds values beyond float32's range"):
        CNNRegressor("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                     output_activation="linear").fit(X, np.full((12, 2), 1e39))
    ensemble = CNNEnsembleClassifier([("lr", LogisticRegression()), ("net", clone(net))])
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        ensemble.fit(X.reshape(12, -1)[:, :16].reshape(12, 4, 4), y, sample_weight=-np.ones(12))
    assert not hasattr(ensemble, "estimators_")


def test_a_network_whose_weights_diverged_refuses_to_predict():
    """A training that diverged (learning rate 1e12) left NaN weights: every
    probability NaN and predict answered classes_[0] for every image."""
    from fersk import CNNRegressor

    rng = np.random.RandomState(0)
    X, y = rng.randn(12, 24, 24), np.arange(12) % 2
    bad = CNNClassifier("kaggle_cnn", {"width": 0.125}, epochs=1, optimizer="sgd",
                        learning_rate=1e12, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="not finite .* for 3 of 3 images.*diverged"):
        bad.predict(X[:3])
    # Finite in float64 (a network fitted on float64 images keeps them so),
    # infinite in the network's float32: NaN probabilities, argmax's first class.
    net = CNNClassifier("kaggle_cnn", {"width": 0.125}, epochs=1, random_state=0).fit(X, y)
    huge = X[:3].copy()
    huge[0, 5, 5] = 1e39
    for call in (lambda: net.predict(huge), lambda: net.fit(huge, y[:3])):
        with pytest.raises(ValueError, match="beyond float32's range"):
            call()
    reg = CNNRegressor("kaggle_cnn", {"width": 0.125}, epochs=1, random_state=0).fit(
        X, np.c_[y, 1 - y] - 0.5)
    for w in reg.model_.weights:
        w.assign(np.full(w.shape, np.nan, dtype="float32"))
    reg.__dict__.pop("_inference_models", None)
    with pytest.raises(ValueError, match="not finite"):
        reg.predict(X[:3])
