"""Multi-domain training as estimator parameters: per-sample (per-source)
weights, class balancing, the ``degrade`` augmentation, and cross-validation
grouped by source inside GridSearchCV."""

import numpy as np
import pytest
from sklearn import config_context
from sklearn.model_selection import GridSearchCV, GroupKFold, LeaveOneGroupOut
from sklearn.pipeline import make_pipeline

from conftest import half_bright_faces
from fersk import CNNClassifier, FaceCropper
from fersk.datasets import source_sample_weight

TINY = dict(architecture="kaggle_cnn", architecture_params={"width": 0.0625, "dense_units": 8},
            batch_size=16, random_state=0, epochs=2)


def _proba(clf, X):
    return clf.predict_proba(X)


def test_unit_weights_equal_no_weights():
    X, y = half_bright_faces(48, 16)
    a = CNNClassifier(**TINY).fit(X, y)
    b = CNNClassifier(**TINY).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(_proba(a, X), _proba(b, X), atol=1e-6)


def test_weights_decide_how_much_samples_count():
    X, y = half_bright_faces(48, 16)
    extra, _ = half_bright_faces(16, 16, seed=5)
    # Extra images labelled 0 whatever they show: heavy, the network leans
    # towards 0 on them; weightless, it does not learn them at all.
    Xa = np.concatenate([X, extra])
    ya = np.concatenate([y, np.zeros(16, int)])
    params = {**TINY, "epochs": 6, "learning_rate": 0.01}
    heavy = CNNClassifier(**params).fit(Xa, ya, sample_weight=np.r_[np.ones(len(y)),
                                                                    np.full(16, 50.0)])
    light = CNNClassifier(**params).fit(Xa, ya, sample_weight=np.r_[np.ones(len(y)),
                                                                    np.zeros(16)])
    assert heavy.predict_proba(extra)[:, 0].mean() > light.predict_proba(extra)[:, 0].mean()


def test_sample_weight_errors():
    X, y = half_bright_faces(32, 16)
    with pytest.raises(ValueError, match="sample_weight"):
        CNNClassifier(**TINY).fit(X, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="(?i)negative"):
        CNNClassifier(**TINY).fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero"):
        CNNClassifier(**TINY).fit(X, y, sample_weight=np.zeros(len(y)))


def test_sample_weight_with_class_weight_and_validation_fraction():
    X, y = half_bright_faces(48, 16)
    clf = CNNClassifier(**TINY, class_weight="balanced", validation_fraction=0.25)
    clf.fit(X, y, sample_weight=np.linspace(0.5, 2, len(y)))
    assert clf.predict(X).shape == y.shape


def test_degrade_is_seeded_and_changes_training():
    X, y = half_bright_faces(48, 16)
    a = CNNClassifier(**TINY, degrade=True).fit(X, y)
    b = CNNClassifier(**TINY, degrade=True).fit(X, y)
    np.testing.assert_allclose(_proba(a, X), _proba(b, X), atol=1e-6)
    c = CNNClassifier(**TINY, degrade={"noise": 1.0, "blur": 1.0}).fit(X, y)
    assert not np.allclose(_proba(a, X), _proba(c, X), atol=1e-4)
    assert a.n_epochs_ == 2


def test_degrade_without_random_state_draws_its_batches_from_numpy(monkeypatch):
    """random_state=None: the degraded batches' seed comes from NumPy's
    global generator, as scikit-learn's None means (before, always 0)."""
    import fersk._keras_base as base

    seeds = []
    real = base.DegradedBatches

    def spy(*args, **kwargs):
        seeds.append(kwargs["seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "DegradedBatches", spy)
    X, y = half_bright_faces(32, 16)
    params = {**TINY, "epochs": 1, "random_state": None, "degrade": True}
    for state in (1, 1, 2):
        np.random.seed(state)
        CNNClassifier(**params).fit(X, y)
    assert seeds[0] == seeds[1] != seeds[2]
    CNNClassifier(**{**params, "random_state": 5}).fit(X, y)
    assert seeds[3] == 5


def test_degrade_batches_differ_by_epoch_and_follow_the_seed():
    from fersk._batches import DegradedBatches

    X, y = half_bright_faces(32, 16)
    x = X[..., np.newaxis].astype(np.float32)
    data = DegradedBatches(x, y, np.ones(len(y)), 8, {"noise": 1.0}, seed=3)
    first = data[0][0].copy()
    np.testing.assert_array_equal(first, DegradedBatches(
        x, y, np.ones(len(y)), 8, {"noise": 1.0}, seed=3)[0][0])
    data.on_epoch_end()
    assert not np.array_equal(first, data[0][0])
    # A fit resumed at epoch 1 sees epoch 1's batches.
    resumed = DegradedBatches(x, y, np.ones(len(y)), 8, {"noise": 1.0}, seed=3, initial_epoch=1)
    np.testing.assert_array_equal(resumed[0][0], data[0][0])
    assert data[0][0].shape == (8, 16, 16, 1) and data[0][2].shape == (8,)


def test_degrade_needs_uint8_images():
    X, y = half_bright_faces(32, 16)
    with pytest.raises(ValueError, match="degrade needs uint8"):
        CNNClassifier(**TINY, degrade=True).fit(X.astype(np.float32), y)
    with pytest.raises(ValueError, match=r"'degrade' parameter .* some of 'blur', 'gamma'"):
        CNNClassifier(**TINY, degrade={"rain": 0.5}).fit(X, y)


def test_source_sample_weight():
    w = source_sample_weight(["a", "a", "a", "b"])
    assert w.sum() == pytest.approx(4) and w[3] == pytest.approx(3 * w[0])
    np.testing.assert_array_equal(source_sample_weight(["a", "b"], {"b": 3}), [1, 3])
    with pytest.raises(ValueError, match="not in source"):
        source_sample_weight(["a"], {"c": 2})
    with pytest.raises(ValueError, match=">= 0"):
        source_sample_weight(["a"], {"a": -1})


@pytest.mark.parametrize("cv", [LeaveOneGroupOut(), GroupKFold(3)])
def test_grid_search_grouped_by_source_with_routed_weights(cv):
    X, y = half_bright_faces(60, 16)
    source = np.array(["fer2013", "sfew", "expw"] * 20)
    weight = source_sample_weight(source)
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            FaceCropper(detector=None, size=(16, 16)),
            CNNClassifier(**{**TINY, "epochs": 1})
            .set_fit_request(sample_weight=True).set_score_request(sample_weight=True),
        )
        search = GridSearchCV(pipe, {"cnnclassifier__degrade": [None, {"noise": 0.5}]},
                              cv=cv, error_score="raise")
        search.fit(X, y, groups=source, sample_weight=weight)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.n_splits_ == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_source_weight_is_the_routed_sample_weight_of_its_sources():
    """source_weight with fit's source trains exactly as
    sample_weight=source_sample_weight(source, source_weight) does, and
    multiplies a sample_weight given beside it; source alone changes nothing."""
    X, y = half_bright_faces(48, 16)
    source = np.array(["fer2013", "fer2013", "sfew"] * 16)
    mine = {"sfew": 4.0}
    routed = CNNClassifier(**TINY).fit(X, y, sample_weight=source_sample_weight(source, mine))
    by_param = CNNClassifier(**TINY, source_weight=mine).fit(X, y, source=source)
    np.testing.assert_array_equal(_proba(by_param, X), _proba(routed, X))
    balanced = CNNClassifier(**TINY, source_weight="balanced").fit(X, y, source=list(source))
    np.testing.assert_array_equal(
        _proba(balanced, X),
        _proba(CNNClassifier(**TINY).fit(X, y, sample_weight=source_sample_weight(source)), X))
    assert np.abs(_proba(balanced, X) - _proba(by_param, X)).max() > 1e-4  # the weights count

    extra = np.linspace(0.5, 2, len(y))
    both = CNNClassifier(**TINY, source_weight=mine).fit(X, y, source=source, sample_weight=extra)
    np.testing.assert_array_equal(_proba(both, X), _proba(CNNClassifier(**TINY).fit(
        X, y, sample_weight=extra * source_sample_weight(source, mine)), X))
    unweighted = CNNClassifier(**TINY).fit(X, y, source=source)
    np.testing.assert_array_equal(_proba(unweighted, X), _proba(CNNClassifier(**TINY).fit(X, y), X))


def test_source_weight_errors_name_the_parameter():
    X, y = half_bright_faces(24, 16)
    source = np.array(["a", "b"] * 12)
    with pytest.raises(ValueError, match=r"source_weight='balanced' weighs .* fit\(X, y, source="):
        CNNClassifier(**TINY, source_weight="balanced").fit(X, y)
    with pytest.raises(ValueError, match="source has 5 entries for 24 images"):
        CNNClassifier(**TINY, source_weight="balanced").fit(X, y, source=source[:5])
    with pytest.raises(ValueError, match="source has 5 entries"):  # checked without source_weight too
        CNNClassifier(**TINY).fit(X, y, source=source[:5])
    for bad in (-1, np.inf, np.nan, "2", True):
        with pytest.raises(ValueError, match=r"source_weight\['a'\] must be a finite number >= 0"):
            CNNClassifier(**TINY, source_weight={"a": bad}).fit(X, y, source=source)
    with pytest.raises(ValueError, match="gives every image weight 0"):
        CNNClassifier(**TINY, source_weight={"a": 0, "b": 0.0}).fit(X, y, source=source)
    with pytest.raises(ValueError, match="source_weight"):  # scikit-learn's parameter validation
        CNNClassifier(**TINY, source_weight="equal").fit(X, y, source=source)


def test_source_weight_ignores_a_source_the_fold_lacks():
    """A dict naming a source that this fit has no image of (a fold leaving
    it out) weighs the sources the fit has, as if that key were absent."""
    X, y = half_bright_faces(32, 16)
    source = np.array(["fer2013", "expw"] * 16)
    a = CNNClassifier(**TINY, source_weight={"expw": 3.0, "sfew": 9.0}).fit(X, y, source=source)
    b = CNNClassifier(**TINY, source_weight={"expw": 3.0}).fit(X, y, source=source)
    np.testing.assert_array_equal(_proba(a, X), _proba(b, X))
    # Names of mixed types (a missing source as None) are read as text, not a sort error.
    mixed = np.array(["fer2013", None] * 16, dtype=object)
    c = CNNClassifier(**TINY, source_weight={None: 3.0}).fit(X, y, source=mixed)
    np.testing.assert_array_equal(_proba(c, X), _proba(CNNClassifier(**TINY).fit(
        X, y, sample_weight=np.where(mixed == None, 3.0, 1.0)), X))  # noqa: E711


def test_grid_search_tunes_source_weight_over_folds_grouped_by_source(monkeypatch):
    """source_weight as a hyperparameter: GridSearchCV searches it while
    LeaveOneGroupOut holds out one source a fold, source routed to fit; each
    candidate's fits get its own weights from the fold's own sources (sources
    of unequal size, so that "balanced" is not all ones)."""
    from fersk._keras_classifier import BaseKerasImageClassifier

    seen = []
    real = BaseKerasImageClassifier._source_sample_weight

    def spy(self, source, n_samples, kept=None):
        weight = real(self, source, n_samples, kept)
        seen.append((self.source_weight, np.asarray(source), weight))
        return weight

    monkeypatch.setattr(BaseKerasImageClassifier, "_source_sample_weight", spy)
    X, y = half_bright_faces(60, 16)
    source = np.array(["fer2013"] * 30 + ["sfew"] * 20 + ["expw"] * 10)
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(FaceCropper(detector=None, size=(16, 16)),
                             CNNClassifier(**{**TINY, "epochs": 1}).set_fit_request(source=True))
        grid = {"cnnclassifier__source_weight": [None, "balanced", {"sfew": 4.0}]}
        search = GridSearchCV(pipe, grid, cv=LeaveOneGroupOut(), error_score="raise",
                              refit=False)
        with pytest.warns(UserWarning, match="names no source of this fit"):  # sfew's fold
            search.fit(X, y, groups=source, source=source)
    assert search.n_splits_ == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert len(seen) == 9  # 3 candidates x 3 folds, each fit on its fold's sources only
    for param, fold_source, weight in seen:
        assert len(np.unique(fold_source)) == 2
        if param is None:
            assert weight is None
        elif param == "balanced":
            totals = [weight[fold_source == s].sum() for s in np.unique(fold_source)]
            assert totals[0] == pytest.approx(totals[1]) and len(set(weight)) == 2
        else:
            np.testing.assert_array_equal(weight, np.where(fold_source == "sfew", 4.0, 1.0))


def test_degrade_of_an_empty_dict_is_every_default_probability(monkeypatch):
    """degrade={} was falsy: no degradation at all, and float images got
    past the uint8 check, where {} means every default (as augment={})."""
    import fersk._keras_base as kb
    from fersk import CNNClassifier

    used = []
    real = kb.DegradedBatches

    class Spy(real):
        def __init__(self, *args, **kwargs):
            used.append(args[4])  # the probabilities
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(kb, "DegradedBatches", Spy)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (16, 16, 16)).astype(np.uint8)
    y = np.arange(16) % 2
    kw = dict(architecture="mtcnn_cnn", architecture_params={"width": 0.125, "dense_units": 4},
              epochs=1, batch_size=8, random_state=0)
    CNNClassifier(**kw, degrade={}).fit(X, y)
    assert used == [{}]
    with pytest.raises(ValueError, match="degrade needs uint8"):
        CNNClassifier(**kw, degrade={}).fit(X / 255.0, y)


def test_ensemble_routes_source_to_members_with_source_weight():
    """CNNEnsembleClassifier passes fit's ``source`` to the members that
    request it: a member with ``source_weight`` trains as it does alone."""
    from fersk import CNNEnsembleClassifier

    X, y = half_bright_faces(48, 16)
    source = np.array(["fer2013", "fer2013", "sfew"] * 16)
    member = dict(**{**TINY, "epochs": 1}, source_weight={"sfew": 3.0})
    with config_context(enable_metadata_routing=True):
        ens = CNNEnsembleClassifier(
            [("a", CNNClassifier(**member).set_fit_request(source=True))]).fit(X, y, source=source)
        alone = CNNClassifier(**member).set_fit_request(source=True).fit(X, y, source=source)
    unweighted = CNNClassifier(**{**TINY, "epochs": 1}).fit(X, y)
    np.testing.assert_allclose(ens.predict_proba(X), alone.predict_proba(X), atol=1e-6)
    assert not np.allclose(ens.predict_proba(X), unweighted.predict_proba(X), atol=1e-4)


def test_images_of_weight_zero_are_not_counted_in_balanced_source_weights():
    """source_weight="balanced" counted the images of weight 0 in each
    source's share, though such an image is removed from the fit: the same
    fit without them weighed the sources otherwise."""
    from fersk import CNNClassifier

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (24, 48, 48)).astype(np.uint8)
    y = np.arange(24) % 2
    source = np.array(["fer"] * 16 + ["wild"] * 8)
    weight = np.ones(24)
    weight[:8] = 0

    def fit(*args, **kw):
        return CNNClassifier("kaggle_cnn", {"width": 0.0625, "dense_units": 8}, epochs=2,
                             batch_size=8, random_state=0, source_weight="balanced").fit(
            *args, **kw)

    zeroed = fit(X, y, sample_weight=weight, source=source)
    removed = fit(X[8:], y[8:], source=source[8:])
    np.testing.assert_allclose(zeroed.predict_proba(X), removed.predict_proba(X), rtol=1e-5,
                               atol=1e-6)
