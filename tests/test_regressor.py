"""CNNRegressor and the concordance correlation coefficient.

No face set labelled with arousal and valence is available offline, so the
regressor learns targets that are a known function of synthetic images:
the brightness of the left and of the right half, scaled to [-1, 1].
Networks are tiny and epochs few.
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

from sklearn import config_context  # noqa: E402
from sklearn.base import clone, is_regressor  # noqa: E402
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fersk import CNNRegressor  # noqa: E402
from fersk.architectures import ARCHITECTURES, facechannel  # noqa: E402
from fersk.metrics import ccc_scorer, concordance_correlation_coefficient  # noqa: E402

TINY_FC = {"width": 0.0625, "dense_units": 16}


def _halves_av(n=96, side=16, seed=0):
    """Images whose (arousal, valence) is the brightness of their two halves.

    Each half has a random level in [0, 1] plus noise; the targets are the
    levels mapped to [-1, 1]: arousal = left half, valence = right half.
    """
    rng = np.random.RandomState(seed)
    levels = rng.rand(n, 2)
    X = 0.3 * rng.rand(n, side, side)
    X[:, :, : side // 2] += levels[:, :1, None]
    X[:, :, side // 2 :] += levels[:, 1:, None]
    return X.astype(np.float32), (2 * levels - 1).astype(np.float64)


def _double(x):
    return 2.0 * x


# ------------------------------------------------------------------- the CCC
def test_ccc_matches_lins_formula():
    rng = np.random.RandomState(0)
    t, p = rng.randn(50, 2), rng.randn(50, 2) * 0.5 + 0.2
    raw = concordance_correlation_coefficient(t, p, multioutput="raw_values")
    for j in range(2):
        a, b = t[:, j], p[:, j]
        cov = np.mean((a - a.mean()) * (b - b.mean()))
        expected = 2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
        assert raw[j] == pytest.approx(expected)
    assert concordance_correlation_coefficient(t, p) == pytest.approx(raw.mean())


def test_ccc_special_values():
    t = np.linspace(-1, 1, 11)
    assert concordance_correlation_coefficient(t, t) == pytest.approx(1.0)
    assert concordance_correlation_coefficient(t, -t) == pytest.approx(-1.0)
    # perfectly correlated but shifted or scaled: below 1 (Pearson's r is 1)
    assert concordance_correlation_coefficient(t, t + 0.3) < 0.95
    assert concordance_correlation_coefficient(t, 0.5 * t) < 0.95
    assert concordance_correlation_coefficient(np.ones(5), np.ones(5)) == 1.0
    assert concordance_correlation_coefficient(t, np.zeros_like(t)) == 0.0
    # weights: zero weight drops a sample
    w = np.r_[np.ones(10), 0.0]
    p = t.copy()
    p[-1] = 5.0
    assert concordance_correlation_coefficient(t, p, sample_weight=w) == pytest.approx(1.0)
    # one weight per sample: a column of weights broadcast to a wrong answer
    for bad in (w[:, None], np.c_[w, w]):
        with pytest.raises(ValueError, match="1D"):
            concordance_correlation_coefficient(t, p, sample_weight=bad)
    with pytest.raises(ValueError, match="outputs"):
        concordance_correlation_coefficient(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="multioutput"):
        concordance_correlation_coefficient(t, t, multioutput="variance_weighted")


def _exact_ccc(t, p, w=None):
    """Lin's formula in exact rational arithmetic on the float inputs."""
    from fractions import Fraction

    t, p = [Fraction(float(x)) for x in t], [Fraction(float(x)) for x in p]
    w = [Fraction(1)] * len(t) if w is None else [Fraction(float(x)) for x in w]
    w = [x / sum(w) for x in w]
    mt, mp = sum(a * b for a, b in zip(w, t)), sum(a * b for a, b in zip(w, p))
    var_t = sum(a * (b - mt) ** 2 for a, b in zip(w, t))
    var_p = sum(a * (b - mp) ** 2 for a, b in zip(w, p))
    cov = sum(a * (b - mt) * (c - mp) for a, b, c in zip(w, t, p))
    denominator = var_t + var_p + (mt - mp) ** 2
    return 1.0 if denominator == 0 else float(2 * cov / denominator)


def test_ccc_huge_finite_weights_do_not_overflow():
    """Weights of 1e308 summed to inf, so every normalised weight was 0 and
    the coefficient came out 1.0 for predictions that are not the targets:
    only the weights' ratios may matter."""
    t = np.linspace(-1, 1, 6)
    p = 0.8 * t + 0.1
    expected = concordance_correlation_coefficient(t, p)
    assert expected == pytest.approx(_exact_ccc(t, p), rel=1e-12) and expected < 0.99
    for w in (np.full(6, 1e308), np.full(6, 5e-324), np.r_[np.full(5, 1e308), 1e307]):
        assert concordance_correlation_coefficient(t, p, sample_weight=w) == pytest.approx(
            _exact_ccc(t, p, w), rel=1e-12)


def test_ccc_of_the_largest_finite_values_is_lins():
    """Values from 2**1023 up were scaled by 2**1024 = inf: every value became
    0, both columns "constant" and equal, and the coefficient 1.0 for
    predictions that are the targets negated."""
    t = np.array([1e308, -1e308, 9e307])
    for p in (-t, 0.5 * t):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow on the way either
            got = concordance_correlation_coefficient(t, p)
        assert got == pytest.approx(concordance_correlation_coefficient(t / 1e300, p / 1e300),
                                    rel=1e-12)
    assert concordance_correlation_coefficient(t, -t) < -0.8


def test_ccc_constant_cases_hold_exactly():
    """The documented constant cases held only up to rounding: 0.3 ten times
    has a weighted mean that is not 0.3, so constant targets against
    predictions one ulp off in one sample gave 0.947, and two constants one
    ulp apart 0.667, where both are exactly 0 (and equal constants 1).
    Predictions equal to the targets give exactly 1 (they gave 1 + 2e-16)."""
    ccc = concordance_correlation_coefficient
    t = np.full(10, 0.3)
    up = np.nextafter(0.3, 1)
    p = t.copy()
    p[0] = up
    assert ccc(t, p) == _exact_ccc(t, p) == 0.0  # only t constant
    assert ccc(p, t) == 0.0  # only p constant
    assert ccc(t, np.full(10, up)) == _exact_ccc(t, np.full(10, up)) == 0.0  # both, different
    assert ccc(t, t.copy()) == 1.0  # both, equal
    tiny = np.full(3, 1e-300)  # differences whose squares underflow
    assert ccc(tiny, np.nextafter(tiny, 1)) == 0.0
    # constant among the samples that count: a zero-weight sample is no part
    w = np.r_[np.ones(9), 0.0]
    q = np.r_[np.linspace(0, 1, 9), 0.3]
    assert ccc(np.r_[t[:9], 5.0], q, sample_weight=w) == 0.0
    assert ccc(np.r_[t[:9], 5.0], np.r_[t[:9], -1.0], sample_weight=w) == 1.0
    # multi-output: each column on its own
    raw = ccc(np.c_[t, t, q], np.c_[p, t, q], multioutput="raw_values")
    np.testing.assert_array_equal(raw, [0.0, 1.0, 1.0])


def test_ccc_agrees_with_exact_arithmetic_where_rounding_is_hard():
    """Nearly constant data (one ulp of spread), a large common offset, and
    values whose squares underflow or overflow: the moments, taken about a
    value of the data after an exact power-of-two scaling, agree with exact
    rational arithmetic (the direct formula gave 0.89 for -1/9, 1.0 for
    0.29, NaN, or a wrong third digit)."""
    rng = np.random.RandomState(0)
    u = np.nextafter(0.3, 1) - 0.3
    cases = [
        (np.r_[np.full(9, 0.3), 0.3 + u], np.r_[0.3 + u, np.full(9, 0.3)], None),
        (np.r_[np.full(9, 0.3), 0.3 + u], np.r_[np.full(9, 0.3 + u), 0.3 + 2 * u], None),
        (1e8 + 1e-6 * rng.randn(12), 1e8 + 1e-6 * rng.randn(12), None),
        (np.array([0, 1e-300, 3e-300]), np.array([0, 2e-300, 1e-300]), None),
        (np.array([1e300, -1e300, 5e299]), np.array([9e299, -1e300, 1e299]), None),
        (rng.randn(15), rng.randn(15), rng.rand(15)),
    ]
    for t, p, w in cases:
        assert concordance_correlation_coefficient(t, p, sample_weight=w) == pytest.approx(
            _exact_ccc(t, p, w), rel=1e-12, abs=1e-15)


# -------------------------------------------------------------- learning
@pytest.fixture(scope="module")
def fitted_av():
    X, y = _halves_av(160)
    # Few steps leave batch norm's moving statistics far from the data's
    # with the default rate: a higher rate, no dropout.
    reg = CNNRegressor(
        architecture_params={"width": 0.125, "dense_units": 16, "dropout": 0.0},
        learning_rate=0.01, epochs=15, batch_size=16, random_state=0,
    ).fit(X[:120], y[:120])
    return X, y, reg


def test_learns_a_known_function_of_the_image(fitted_av):
    X, y, reg = fitted_av
    pred = reg.predict(X[120:])
    assert pred.shape == (40, 2) and pred.dtype == np.float64
    assert np.all(np.abs(pred) <= 1.0)
    ccc = concordance_correlation_coefficient(y[120:], pred, multioutput="raw_values")
    assert np.all(ccc > 0.5), ccc  # 0 for a constant or unrelated prediction
    assert reg.score(X[120:], y[120:]) > 0.2
    assert ccc_scorer(reg, X[120:], y[120:]) == pytest.approx(ccc.mean())
    assert reg.history_["loss"][-1] < reg.history_["loss"][0]


def test_default_is_facechannels_dimensional_model(fitted_av):
    _, _, reg = fitted_av
    assert is_regressor(reg) and not hasattr(reg, "predict_proba")
    assert reg.n_outputs_ == 2
    p = CNNRegressor().get_params()
    assert (p["architecture"], p["output_activation"], p["optimizer"]) == ("facechannel", "tanh", "adamax")
    assert (p["learning_rate"], p["learning_rate_schedule"]) == (0.002, "plateau")
    net = reg.model_.layers[-1]
    out = net.layers[-1]
    assert out.name == "outputs" and out.activation.__name__ == "tanh" and out.units == 2
    assert net.get_layer("dense").units == 16
    assert any(type(layer).__name__ == "ShuntingInhibition" for layer in net.layers)
    # Published sizes: the categorical FaceChannel has 3,592,016 parameters at
    # 64x64 with 8 outputs; the dimensional one differs by the output layer only.
    full = CNNRegressor()._build_network((64, 64, 1), 2, seed=0)
    assert full.count_params() == 3_592_016 - 201 * 8 + 201 * 2
    assert facechannel((64, 64, 1), 8).count_params() == 3_592_016


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_takes_the_dimensional_head(name):
    tiny = {"lbcnn": {"depth": 1, "n_anchors": 4, "filters": 2, "head_units": 8}}.get(
        name, {"width": 0.0625 if name != "mtcnn_cnn" else 0.25, "dense_units": 8}
    )
    X, y = _halves_av(16)
    reg = CNNRegressor(name, tiny, epochs=1, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (16, 2)


def test_one_dimensional_y_and_linear_outputs():
    X, y = _halves_av(32)
    reg = CNNRegressor(architecture_params=TINY_FC, epochs=1, random_state=0).fit(X, y[:, 0])
    assert reg.n_outputs_ == 1 and reg.predict(X).shape == (32,)
    with pytest.warns(UserWarning, match=r"outside \[-1, 1\]"):
        CNNRegressor(architecture_params=TINY_FC, epochs=1, random_state=0).fit(X, 5 * y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        lin = CNNRegressor(architecture_params=TINY_FC, output_activation="linear", epochs=1,
                           random_state=0).fit(X, 5 * y)
    assert lin.model_.layers[-1].layers[-1].activation.__name__ == "linear"


def test_same_seed_same_predictions():
    X, y = _halves_av(32)
    kw = dict(architecture_params=TINY_FC, epochs=2, batch_size=16)
    a = CNNRegressor(**kw, random_state=0).fit(X, y).predict(X)
    b = CNNRegressor(**kw, random_state=0).fit(X, y).predict(X)
    c = CNNRegressor(**kw, random_state=1).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_degrade_trains_a_regressor_too():
    # Without sample weights the degraded batches weigh every image 1.
    X, y = _halves_av(32)
    X = (np.clip(X / 1.3, 0, 1) * 255).astype(np.uint8)  # degrade takes face crops (uint8)
    kw = dict(architecture_params=TINY_FC, epochs=1, batch_size=16, degrade=True)
    a = CNNRegressor(**kw, random_state=0).fit(X, y).predict(X)
    b = CNNRegressor(**kw, random_state=0).fit(X, y).predict(X)
    assert a.shape == (32, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_a_failed_refit_leaves_the_regressor_as_it_was():
    X, y = _halves_av(32)
    reg = CNNRegressor(architecture_params=TINY_FC, epochs=1, random_state=0).fit(X, y)
    expected, outputs = reg.predict(X), reg.n_outputs_
    with pytest.raises(ValueError):
        reg.fit(X, y[:, :1], validation_data=(X[:4], y[:4]))  # 1 target, validation 2
    assert reg.n_outputs_ == outputs
    np.testing.assert_array_equal(reg.predict(X), expected)


def test_warm_start_refuses_another_output_activation():
    X, y = _halves_av(32)
    reg = CNNRegressor(architecture_params=TINY_FC, epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="output activation"):
        reg.set_params(warm_start=True, output_activation="linear").fit(X, y)


def test_validation_data_and_fraction():
    X, y = _halves_av(48)
    reg = CNNRegressor(architecture_params=TINY_FC, epochs=3, n_iter_no_change=None,
                       random_state=0).fit(X[:32], y[:32], validation_data=(X[32:], y[32:]))
    assert len(reg.history_["val_loss"]) == 3 and "val_mae" in reg.history_
    assert reg.best_epoch_ == int(np.argmin(reg.history_["val_loss"]))
    reg = CNNRegressor(architecture_params=TINY_FC, epochs=2, validation_fraction=0.25,
                       random_state=0).fit(X, y)
    assert len(reg.history_["val_loss"]) == 2
    with pytest.raises(ValueError, match="outputs"):
        CNNRegressor(architecture_params=TINY_FC, epochs=1).fit(
            X[:32], y[:32], validation_data=(X[32:], y[32:, 0:1])
        )


def test_bad_inputs():
    X, y = _halves_av(16)
    with pytest.raises(ValueError, match="requires y"):
        CNNRegressor().fit(X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CNNRegressor(architecture_params=TINY_FC).fit(X, y[:-1])
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CNNRegressor(architecture_params=TINY_FC).fit(X, bad)
    with pytest.raises(ValueError, match="output_activation"):
        CNNRegressor(output_activation="sigmoid").fit(X, y)
    with pytest.raises(TypeError, match="class_weight"):  # a classifier's parameter
        CNNRegressor(class_weight="balanced")
    with pytest.raises(AttributeError, match="predict_proba"):
        CNNRegressor().predict_proba


# ------------------------------------------------------------ model selection
def test_grid_search_with_ccc_scorer():
    X, y = _halves_av(48)
    search = GridSearchCV(
        CNNRegressor(architecture_params=TINY_FC, epochs=2, batch_size=16, random_state=0),
        {"learning_rate": [1e-3, 1e-2]},
        scoring={"ccc": ccc_scorer, "r2": "r2"},
        refit="ccc",
        cv=2,
    ).fit(X, y)
    assert search.cv_results_["mean_test_ccc"].shape == (2,)
    assert np.all(np.abs(search.cv_results_["mean_test_ccc"]) <= 1)
    assert search.best_estimator_.learning_rate in (1e-3, 1e-2)
    assert search.predict(X).shape == (48, 2)


def test_cross_validate_pipeline_and_clone():
    X, y = _halves_av(32)
    pipe = make_pipeline(
        FunctionTransformer(_double),
        CNNRegressor(architecture_params=TINY_FC, epochs=1, random_state=0),
    )
    res = cross_validate(pipe, X, y, cv=2, scoring=ccc_scorer)
    assert res["test_score"].shape == (2,)
    fresh = clone(pipe[-1])
    assert not hasattr(fresh, "model_") and fresh.get_params() == pipe[-1].get_params()


def test_pickle_round_trip_in_fresh_process(fitted_av, tmp_path):
    X, _, reg = fitted_av
    joblib.dump(reg, tmp_path / "reg.joblib")
    np.save(tmp_path / "X.npy", X[:10])
    script = textwrap.dedent(
        f"""
        import joblib, numpy as np
        reg = joblib.load({str(tmp_path / "reg.joblib")!r})
        np.save({str(tmp_path / "pred.npy")!r}, reg.predict(np.load({str(tmp_path / "X.npy")!r})))
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ), timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), reg.predict(X[:10]))


# ------------------------------------------------------- weights and sources
def test_source_weight_is_the_sample_weight_of_its_sources():
    """source_weight weighs each image by its source exactly as that
    sample_weight would (the same seeded fit); weights change the fit, unit
    weights do not (until 2026-12-07 the regressor took neither)."""
    X, y = _halves_av(32)
    source = np.array(["afew"] * 24 + ["affectnet"] * 8)
    kw = dict(architecture_params=TINY_FC, epochs=2, batch_size=8, random_state=0)
    by_source = CNNRegressor(**kw, source_weight={"affectnet": 3.0}).fit(X, y, source=source)
    by_sample = CNNRegressor(**kw).fit(X, y, sample_weight=np.where(source == "affectnet", 3.0, 1.0))
    unweighted = CNNRegressor(**kw).fit(X, y).predict(X)
    np.testing.assert_array_equal(by_source.predict(X), by_sample.predict(X))
    assert not np.allclose(by_source.predict(X), unweighted)
    np.testing.assert_array_equal(
        CNNRegressor(**kw).fit(X, y, sample_weight=np.ones(32)).predict(X), unweighted)
    np.testing.assert_array_equal(  # without source_weight, source changes nothing
        CNNRegressor(**kw).fit(X, y, source=source).predict(X), unweighted)
    balanced = CNNRegressor(**kw, source_weight="balanced").fit(X, y, source=source)
    equal_totals = np.where(source == "afew", 32 / (2 * 24), 32 / (2 * 8))
    np.testing.assert_allclose(
        balanced.predict(X), CNNRegressor(**kw).fit(X, y, sample_weight=equal_totals).predict(X),
        atol=1e-6)


def test_zero_weight_removes_the_image_from_the_fit():
    """A weight of 0 is the image removed (scikit-learn's rule): from the
    loss, the input scale and the validation hold-out too."""
    X, y = _halves_av(32)
    kw = dict(architecture_params=TINY_FC, epochs=2, batch_size=8, random_state=0,
              validation_fraction=0.25)
    keep = np.arange(32) % 4 != 0
    X[~keep] *= 3  # brighter: would move the input scale if they counted
    weighted = CNNRegressor(**kw).fit(X, y, sample_weight=keep.astype(float))
    removed = CNNRegressor(**kw).fit(X[keep], y[keep])
    np.testing.assert_array_equal(weighted.predict(X), removed.predict(X))
    assert weighted.input_range_ == removed.input_range_


def test_weight_errors_name_the_parameter():
    X, y = _halves_av(16)
    reg = CNNRegressor(architecture_params=TINY_FC, epochs=1)
    with pytest.raises(ValueError, match=r"pass fit\(X, y, source=...\)"):
        clone(reg).set_params(source_weight="balanced").fit(X, y)
    with pytest.raises(ValueError, match="at least one non-zero"):
        clone(reg).fit(X, y, sample_weight=np.zeros(16))
    with pytest.raises(ValueError, match="source has 3 entries for 16 images"):
        clone(reg).fit(X, y, source=["a"] * 3)
    with pytest.raises(ValueError, match="source_weight"):
        clone(reg).set_params(source_weight={"a": -1.0}).fit(X, y, source=["a"] * 16)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        clone(reg).fit(X, y, sample_weight=-np.ones(16))


def test_grid_search_tunes_source_weight_over_folds_grouped_by_source():
    """source routed through a Pipeline to the regressor while GroupKFold
    holds out whole sources and the search tries source_weight values."""
    X, y = _halves_av(48)
    source = np.array(["a"] * 24 + ["b"] * 16 + ["c"] * 8)
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            FunctionTransformer(_double),
            CNNRegressor(architecture_params=TINY_FC, epochs=1, batch_size=16,
                         random_state=0).set_fit_request(source=True),
        )
        search = GridSearchCV(pipe, {"cnnregressor__source_weight": [None, "balanced"]},
                              cv=GroupKFold(3), scoring=ccc_scorer, error_score="raise")
        search.fit(X, y, groups=source, source=source)
    assert search.n_splits_ == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_[-1].source_weight in (None, "balanced")


# -------------------------------------------------------- scikit-learn checks
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": "a weight of 2 is not the same fit as "
    "the sample twice for a network trained by mini-batches: other batches, other "
    "gradient steps; weights of 0 are the samples removed "
    "(test_zero_weight_removes_the_image_from_the_fit)",
}


def _check_instances():
    return [
        CNNRegressor(
            "kaggle_cnn", {"width": 1 / 64, "dense_units": 4}, epochs=1, image_shape=(1, -1)
        ),
    ]


@pytest.mark.slow
@parametrize_with_checks(_check_instances(), expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_regressor_and_tanh_head_on_jax_backend():
    pytest.importorskip("jax")
    script = textwrap.dedent(
        """
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        import keras, numpy as np
        assert keras.backend.backend() == "jax"
        from fersk import CNNClassifier, CNNRegressor
        rng = np.random.RandomState(0)
        X = rng.rand(20, 16, 16)
        y = np.c_[X.mean(axis=(1, 2)), -X.mean(axis=(1, 2))]
        reg = CNNRegressor(architecture_params={"width": 0.0625, "dense_units": 4}, epochs=1,
                           random_state=0).fit(X, y)
        p = reg.predict(X)
        assert p.shape == (20, 2) and np.all(np.abs(p) <= 1)
        clf = CNNClassifier("facechannel", {"width": 0.0625, "dense_units": 4}, head="tanh",
                            epochs=1, random_state=0).fit(X, np.arange(20) % 2,
                                                          sample_proba=np.full((20, 2), 0.5))
        assert np.allclose(clf.predict_proba(X).sum(axis=1), 1)
        print("ok")
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


def test_regressor_class_hierarchy_holds_no_classifier():
    # The regressor shares the neutral Keras estimator base, not the
    # classifier's: no labels, no predict_proba, no classifier overrides.
    from sklearn.base import ClassifierMixin, is_classifier

    from fersk._keras_base import BaseKerasImageEstimator

    mro = CNNRegressor.__mro__
    assert BaseKerasImageEstimator in mro and ClassifierMixin not in mro
    assert not [cls.__name__ for cls in mro if "Classifier" in cls.__name__]
    assert not is_classifier(CNNRegressor()) and not hasattr(CNNRegressor, "predict_proba")


def test_model_folder_refuses_a_regressor_clearly(tmp_path):
    """pretrained.save is a classifier's folder (classes, names, card): a
    CNNRegressor pipeline gets a ValueError naming joblib, not an
    AttributeError from deep inside, and nothing is written."""
    from sklearn.pipeline import make_pipeline

    from fersk import pretrained

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (12, 12, 12)).astype(np.uint8), rng.uniform(-1, 1, (12, 2))
    reg = CNNRegressor("vgg_fer", {"width": 0.125, "dense_units": 4}, epochs=1,
                       random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"last step is a CNNRegressor.*joblib.dump"):
        pretrained.save(make_pipeline(reg), tmp_path / "reg")
    assert not (tmp_path / "reg").exists()
