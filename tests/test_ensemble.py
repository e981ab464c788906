"""CNNEnsembleClassifier: soft voting, members, nested parameters, validation."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.utils import estimator_html_repr
from sklearn.utils.estimator_checks import parametrize_with_checks

from fersk import CNNEnsembleClassifier, LBPHistogram


def _flatten(images):
    """Images (n, h, w[, c]) to rows (module level, so members pickle)."""
    return np.asarray(images).reshape(len(images), -1)


def _lr(**kw):
    return LogisticRegression(max_iter=300, **kw)


def _members():
    return [
        ("raw", _lr()),
        ("scaled", make_pipeline(StandardScaler(), _lr(C=0.05))),
    ]


@pytest.fixture(scope="module")
def blobs():
    """Three classes of 6x6 'images', flattened, with string labels."""
    rng = np.random.RandomState(0)
    y = np.repeat(np.array(["angry", "happy", "sad"]), 30)
    X = rng.normal(size=(90, 36))
    X[y == "happy", :6] += 1.5
    X[y == "sad", 6:12] += 1.5
    return X, y


# ----------------------------------------------------------------------
# scikit-learn's own checks
# ----------------------------------------------------------------------
@parametrize_with_checks(
    [CNNEnsembleClassifier(_members()), CNNEnsembleClassifier(_members(), weights=[1, 3])],
    # Every check passes: nothing is expected to fail.
    expected_failed_checks=lambda est: {},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------
# Soft voting
# ----------------------------------------------------------------------
def _independent_proba(X, y, estimator, X_test):
    """A member fitted by hand on the encoded labels, as the ensemble should."""
    classes, y_enc = np.unique(y, return_inverse=True)
    return clone(estimator).fit(X, y_enc).predict_proba(X_test)


@pytest.mark.parametrize("weights", [None, [1, 1], [3, 1], [0.2, 0.7]])
def test_proba_is_exactly_the_weighted_mean_of_members(blobs, weights):
    X, y = blobs
    members = _members()
    ens = CNNEnsembleClassifier(members, weights=weights).fit(X, y)
    P = [_independent_proba(X, y, e, X) for _, e in members]
    w = np.ones(2) if weights is None else np.asarray(weights, dtype=float)
    expected = (w[0] * P[0] + w[1] * P[1]) / w.sum()
    np.testing.assert_allclose(ens.predict_proba(X), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ens.predict(X), ens.classes_[expected.argmax(1)])
    # and the fitted members are the ones that vote
    for member, p in zip(ens.estimators_, P):
        np.testing.assert_allclose(member.predict_proba(X), p, rtol=1e-12)
    np.testing.assert_array_equal(ens.weights_, w)


def test_weights_set_after_fit_take_effect_and_survive_a_save(blobs, tmp_path):
    """As in VotingClassifier, weights are read when predicting: set after
    fit they were ignored by predict_proba but saved, so the loaded copy
    predicted otherwise than the ensemble in memory."""
    X, y = blobs
    ens = CNNEnsembleClassifier(_members()).fit(X, y)
    before = ens.predict_proba(X)
    ens.set_params(weights=[1, 0])
    assert not np.allclose(ens.predict_proba(X), before)
    np.testing.assert_array_equal(ens.weights_, [1, 0])
    np.testing.assert_allclose(ens.predict_proba(X), ens.estimators_[0].predict_proba(X))
    joblib.dump(ens, tmp_path / "ens.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "ens.joblib").predict_proba(X),
                               ens.predict_proba(X))
    ens.set_params(weights=[1, 1, 1])
    with pytest.raises(ValueError, match="one number per member"):
        ens.predict_proba(X)


def test_settings_set_after_fit_are_checked_when_predicting(blobs):
    """weights and test_time_views are read at prediction, but were checked
    in fit only: a negative weight gave negative probabilities, a NaN one
    NaN rows that predict read as the first class, a misspelt view setting
    every member's full views."""
    X, y = blobs
    ens = CNNEnsembleClassifier(_members()).fit(X, y)
    for params in ({"weights": [1, -0.9]}, {"weights": [1, np.nan]}, {"weights": [np.inf, 1]},
                   {"test_time_views": "centre"}):
        ens.set_params(**params)
        for method in (ens.predict_proba, ens.predict):
            with pytest.raises(ValueError, match="parameter of CNNEnsembleClassifier"):
                method(X)
        ens.set_params(weights=None, test_time_views="model")
    assert (ens.predict_proba(X) >= 0).all()


def test_weights_change_the_result(blobs):
    X, y = blobs
    # Two members that disagree: raw pixels vs. only the last 6 (noise) pixels.
    members = [
        ("signal", _lr()),
        ("noise", make_pipeline(FunctionTransformer(lambda Z: Z[:, -6:]), _lr())),
    ]
    p_signal = CNNEnsembleClassifier(members, weights=[1, 0]).fit(X, y).predict_proba(X)
    p_noise = CNNEnsembleClassifier(members, weights=[0, 1]).fit(X, y).predict_proba(X)
    p_mix = CNNEnsembleClassifier(members, weights=[1, 3]).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(p_signal, _independent_proba(X, y, _lr(), X))
    assert not np.allclose(p_signal, p_noise)
    np.testing.assert_allclose(p_mix, (p_signal + 3 * p_noise) / 4)
    acc = {
        w: np.mean(CNNEnsembleClassifier(members, weights=w).fit(X, y).predict(X) == y)
        for w in [(1, 0), (0, 1)]
    }
    assert acc[(1, 0)] > acc[(0, 1)] + 0.2


def test_drop_member(blobs):
    X, y = blobs
    members = [("raw", _lr()), ("off", "drop")]
    ens = CNNEnsembleClassifier(members, weights=[1, 5]).fit(X, y)
    assert len(ens.estimators_) == 1
    assert ens.named_estimators_["off"] == "drop"
    assert ens.named_estimators_["raw"] is ens.estimators_[0]
    np.testing.assert_array_equal(ens.weights_, [1.0])
    np.testing.assert_allclose(
        ens.predict_proba(X), _independent_proba(X, y, _lr(), X), rtol=1e-12
    )
    # a dropped member's zero weight does not count as "all zero"
    CNNEnsembleClassifier(members, weights=[1, 0]).fit(X, y)
    with pytest.raises(ValueError, match="all zero"):
        CNNEnsembleClassifier(members, weights=[0, 1]).fit(X, y)


def test_string_labels_and_encoded_members(blobs):
    X, y = blobs
    ens = CNNEnsembleClassifier(_members()).fit(X, y)
    np.testing.assert_array_equal(ens.classes_, ["angry", "happy", "sad"])
    pred = ens.predict(X)
    assert pred.dtype == y.dtype and set(pred) <= set(y)
    assert np.mean(pred == y) > 0.8
    # every member learned the same encoded classes: y was encoded once
    for member in ens.estimators_:
        np.testing.assert_array_equal(member.classes_, [0, 1, 2])
    np.testing.assert_array_equal(
        ens.classes_[ens.estimators_[0].predict(X)],
        ens.classes_[ens.estimators_[0].predict_proba(X).argmax(1)],
    )
    assert ens.predict_proba(X).shape == (90, 3)


def test_prefit_members_join_frozen(blobs):
    from sklearn.frozen import FrozenEstimator

    X, y = blobs
    # Fitted elsewhere, on the labels themselves (not their codes).
    prefit = _lr().fit(X, y)
    scaled = make_pipeline(StandardScaler(), _lr(C=0.05)).fit(X, y)
    coef = prefit.coef_.copy()
    ens = CNNEnsembleClassifier(
        [("a", FrozenEstimator(prefit)), ("b", FrozenEstimator(scaled))]
    )
    # The labels of fit must be the members' own.
    with pytest.raises(ValueError, match="Member 'a' learned the classes.*not the classes of y"):
        ens.fit(X, np.where(y == "sad", "unhappy", y))
    ens.fit(X, y)
    np.testing.assert_array_equal(prefit.coef_, coef)  # not refitted
    # A refit that fails leaves the fitted ensemble as it was.
    classes, members = ens.classes_, ens.estimators_
    with pytest.raises(ValueError, match="Member 'a' learned the classes"):
        ens.fit(X, np.where(y == "sad", "unhappy", y))
    assert ens.classes_ is classes and ens.estimators_ is members
    np.testing.assert_allclose(
        ens.predict_proba(X), (prefit.predict_proba(X) + scaled.predict_proba(X)) / 2
    )
    np.testing.assert_array_equal(clone(ens).fit(X, y).predict_proba(X), ens.predict_proba(X))


def test_trained_member_with_codes_under_other_integer_labels_warns(blobs):
    import warnings

    from sklearn.frozen import FrozenEstimator

    X, y = blobs
    labels = np.unique(y, return_inverse=True)[1] + 1  # 1, 2, 3
    on_codes = _lr().fit(X, labels - 1)  # 0..2: codes, or labels of other data
    ens = CNNEnsembleClassifier([("a", FrozenEstimator(on_codes))])
    with pytest.warns(UserWarning, match=r"'a' has the classes 0..2.*0 -> 1"):
        ens.fit(X, labels)
    np.testing.assert_allclose(ens.predict_proba(X), on_codes.predict_proba(X))
    # The member's own labels, or codes under labels 0..n-1: nothing ambiguous.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CNNEnsembleClassifier([("a", FrozenEstimator(_lr().fit(X, labels)))]).fit(X, labels)
        CNNEnsembleClassifier([("a", FrozenEstimator(on_codes))]).fit(X, labels - 1)
        CNNEnsembleClassifier([("a", _lr())]).fit(X, labels)


def test_member_class_weight_is_keyed_by_the_labels_of_y(blobs):
    # Members learn codes: {1: 5.0} for label 1 (code 0) weighed label 2.
    X, y = blobs
    labels = np.unique(y, return_inverse=True)[1] + 1  # 1, 2, 3
    weights = {1: 50.0, 2: 1.0, 3: 1.0}
    alone = _lr(class_weight=weights).fit(X, labels)
    ens = CNNEnsembleClassifier([("a", _lr(class_weight=weights))]).fit(X, labels)
    np.testing.assert_allclose(ens.predict_proba(X), alone.predict_proba(X))
    assert ens.estimators_[0].class_weight == {0: 50.0, 1: 1.0, 2: 1.0}
    assert ens.estimators[0][1].class_weight == weights  # the parameter as given
    in_pipe = CNNEnsembleClassifier(
        [("p", make_pipeline(StandardScaler(), _lr(class_weight={4: 2.0})))])
    with pytest.raises(ValueError, match=r"Member 'p': class_weight has keys .* \[4\]"):
        in_pipe.fit(X, labels)


def test_sample_weight_reaches_every_member(blobs):
    """fit(sample_weight=...) as VotingClassifier takes it: each member is
    the member fitted alone with those weights; checked once, up front."""
    X, y = blobs
    w = np.linspace(0.1, 3, len(y))
    ens = CNNEnsembleClassifier([("a", _lr()), ("b", _lr(C=0.05))]).fit(X, y, sample_weight=w)
    for member, alone in zip(ens.estimators_, (_lr(), _lr(C=0.05))):
        alone.fit(X, np.unique(y, return_inverse=True)[1], sample_weight=w)
        np.testing.assert_allclose(member.coef_, alone.coef_)
    unweighted = CNNEnsembleClassifier([("a", _lr())]).fit(X, y)
    assert not np.allclose(unweighted.estimators_[0].coef_, ens.estimators_[0].coef_)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(90,\)"):
        CNNEnsembleClassifier([("a", _lr())]).fit(X, y, sample_weight=[1, 2, 3])
    # A Pipeline member takes weights only under routing: said before any member's fit.
    piped = CNNEnsembleClassifier([("a", _lr()), ("p", make_pipeline(StandardScaler(), _lr()))])
    with pytest.raises(ValueError, match=r"Members \['p'\] take no sample_weight"):
        piped.fit(X, y, sample_weight=w)
    assert not hasattr(piped, "estimators_")
    with pytest.raises(ValueError, match=r"enable_metadata_routing=True.*\{'source'\}"):
        CNNEnsembleClassifier([("a", _lr())]).fit(X, y, source=np.zeros(len(y)))


def test_metadata_routing_sends_each_member_what_it_requests(blobs):
    """With routing on, a Pipeline member gets the weights it requests (and
    fersk's CNNClassifier its ``source``); one that requests none, none."""
    import sklearn

    X, y = blobs
    w = np.linspace(0.1, 3, len(y))
    codes = np.unique(y, return_inverse=True)[1]
    with sklearn.config_context(enable_metadata_routing=True):
        ens = CNNEnsembleClassifier([
            ("weighted", make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                                       _lr().set_fit_request(sample_weight=True))),
            ("plain", _lr().set_fit_request(sample_weight=False)),
        ]).fit(X, y, sample_weight=w)
    alone = make_pipeline(StandardScaler(), _lr()).fit(
        X, codes, logisticregression__sample_weight=w)
    np.testing.assert_allclose(ens.estimators_[0][-1].coef_, alone[-1].coef_)
    np.testing.assert_allclose(ens.estimators_[1].coef_, _lr().fit(X, codes).coef_)


def test_image_batches_and_layout(blobs):
    X, y = blobs
    images = X.reshape(-1, 6, 6)
    members = [
        ("raw", make_pipeline(FunctionTransformer(_flatten), _lr())),
        ("scaled", make_pipeline(FunctionTransformer(_flatten), StandardScaler(), _lr())),
    ]
    ens = CNNEnsembleClassifier(members).fit(images, y)
    # the same attributes as every fersk estimator
    assert ens.n_features_in_ == 36 and ens.image_shape_ == (6, 6)
    assert not hasattr(ens, "input_shape_")
    flat_ens = CNNEnsembleClassifier(members).fit(X, y)
    assert flat_ens.image_shape_ == (36,)
    np.testing.assert_allclose(ens.predict_proba(images), flat_ens.predict_proba(X))
    # Flattened rows after fitting on a batch are read in fit's layout, as a
    # single network reads them (they were refused: the bundled ensembles
    # took no FER-2013 CSV rows that the single-network models took).
    np.testing.assert_allclose(ens.predict_proba(X), ens.predict_proba(images))
    with pytest.raises(ValueError, match="X has 30 features, but CNNEnsembleClassifier is "
                       "expecting 36"):
        ens.predict(X[:, :30])  # rows of another length
    with pytest.raises(ValueError, match="shape"):
        ens.predict(images[:, :5, :])
    # 4-D colour batches are accepted too
    rgb = np.repeat(images[..., None], 3, axis=-1)
    assert CNNEnsembleClassifier(members).fit(rgb, y).predict(rgb).shape == (90,)


def test_parallel_fit_equals_sequential(blobs):
    X, y = blobs
    seq = CNNEnsembleClassifier(_members()).fit(X, y).predict_proba(X)
    par = CNNEnsembleClassifier(_members(), n_jobs=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(seq, par)


def test_verbose_reports_each_member(blobs, capsys):
    X, y = blobs
    CNNEnsembleClassifier(_members(), verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "[CNNEnsembleClassifier]" in out
    assert "(1 of 2) member 'raw'" in out and "(2 of 2) member 'scaled'" in out
    assert "total=" in out  # the time it took, as scikit-learn's ensembles print it
    CNNEnsembleClassifier(_members()).fit(X, y)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------
# The triples of earlier versions
# ----------------------------------------------------------------------
def test_old_triples_are_read_as_pairs(blobs):
    X, y = blobs
    old = CNNEnsembleClassifier(
        [("raw", None, _lr()), ("scaled", StandardScaler(), _lr(C=0.05)),
         ("off", "passthrough", "drop")],
        weights=[1, 2, 5],
    ).fit(X, y)
    new = CNNEnsembleClassifier(_members() + [("off", "drop")], weights=[1, 2, 5]).fit(X, y)
    np.testing.assert_allclose(old.predict_proba(X), new.predict_proba(X), rtol=1e-12)
    raw, scaled = old.estimators_
    assert isinstance(raw, LogisticRegression)
    assert [name for name, _ in scaled.steps] == ["representation", "network"]
    assert old.named_estimators_["off"] == "drop"
    # clone and cross-validation need nothing more
    np.testing.assert_allclose(clone(old).fit(X, y).predict_proba(X), old.predict_proba(X))
    with pytest.raises(ValueError, match="representation of member 'bad' must be a transformer"):
        CNNEnsembleClassifier([("bad", _lr(), _lr())]).fit(X, y)


def test_old_triples_take_set_params_as_pairs(blobs):
    # set_params on triples failed with "too many values to unpack", so
    # GridSearchCV could not tune such an ensemble at all.
    X, y = blobs
    scaler, lr = StandardScaler(), _lr()
    old = CNNEnsembleClassifier([("raw", None, _lr()), ("scaled", scaler, lr)])
    params = old.get_params(deep=True)
    assert params["estimators"] is old.estimators  # the parameter as given
    assert params["scaled__network"] is lr and params["scaled__representation"] is scaler
    assert params["raw__C"] == 1.0
    given = old.estimators
    old.set_params(n_jobs=3)  # the ensemble's own parameter: the triples stay as given
    assert old.estimators is given and old.n_jobs == 3
    assert old.named_estimators["scaled"].steps[1][1] is lr  # read as pairs (it raised)
    old.set_params(n_jobs=2, raw__C=3.0, scaled__network__C=0.5)
    assert old.n_jobs == 2 and old.get_params()["raw__C"] == 3.0
    assert old.named_estimators["scaled"].steps[1][1] is lr and lr.C == 0.5
    search = GridSearchCV(
        CNNEnsembleClassifier([("raw", None, _lr()), ("scaled", StandardScaler(), _lr())]),
        {"scaled__network__C": [0.05, 1.0]}, cv=2,
    ).fit(X, y)
    assert search.best_params_["scaled__network__C"] in (0.05, 1.0)


# ----------------------------------------------------------------------
# Parameters: get/set, clone, GridSearchCV, persistence
# ----------------------------------------------------------------------
def test_get_params_exposes_the_members_themselves():
    members = _members()
    ens = CNNEnsembleClassifier(members)
    params = ens.get_params(deep=True)
    assert params["raw"] is members[0][1] and params["scaled"] is members[1][1]
    assert params["raw__C"] == 1.0
    assert params["scaled__logisticregression__C"] == 0.05
    assert params["scaled__standardscaler__with_mean"] is True
    assert set(ens.get_params(deep=False)) == {"estimators", "weights", "n_jobs", "verbose", "test_time_views"}


def test_set_params_nested_and_whole_members():
    members = _members()
    original = list(members)
    ens = CNNEnsembleClassifier(members)
    ens.set_params(scaled__logisticregression__C=7.0, scaled__standardscaler__with_mean=False)
    assert members[1][1][-1].C == 7.0 and members[1][1][0].with_mean is False
    # replacing a member builds a new list; the user's list is untouched
    new_lr = _lr(C=3.0)
    ens.set_params(raw=new_lr)
    assert ens.estimators[0][1] is new_lr and members == original
    ens.set_params(raw="drop")
    assert ens.get_params()["raw"] == "drop"
    # own parameters next to member ones
    ens.set_params(weights=[1, 2], raw=_lr(), raw__C=9.0)
    assert ens.weights == [1, 2] and ens.estimators[0][1].C == 9.0


def test_set_params_round_trip_and_clone(blobs):
    X, y = blobs
    ens = CNNEnsembleClassifier(_members(), weights=[2, 1], verbose=0)
    deep = ens.get_params(deep=True)
    ens.set_params(**deep)
    assert ens.get_params(deep=True).keys() == deep.keys()
    cloned = clone(ens)
    assert cloned.estimators is not ens.estimators
    assert cloned.estimators[1][1] is not ens.estimators[1][1]
    cloned.set_params(scaled__logisticregression__C=1e-3)
    assert ens.get_params()["scaled__logisticregression__C"] == 0.05
    np.testing.assert_allclose(
        clone(ens).fit(X, y).predict_proba(X), ens.fit(X, y).predict_proba(X)
    )
    # fit does not touch the parameters (members are cloned)
    assert not hasattr(ens.estimators[0][1], "coef_")


def test_set_params_errors():
    ens = CNNEnsembleClassifier(_members())
    with pytest.raises(ValueError, match="Invalid parameter"):
        ens.set_params(raw__foo=1)
    with pytest.raises(ValueError, match="Invalid parameter"):
        ens.set_params(scaled__logisticregression__not_a_param=1)
    with pytest.raises(ValueError, match="Invalid parameter 'nobody'"):
        ens.set_params(nobody=1)


def test_grid_search_over_nested_params(blobs):
    X, y = blobs
    ens = CNNEnsembleClassifier(_members())
    test_fold = np.where(np.arange(len(y)) % 3 == 0, 0, -1)  # one predefined split
    grid = {
        "raw__C": [1e-4, 1.0],
        "scaled": ["drop", make_pipeline(StandardScaler(), _lr())],
    }
    search = GridSearchCV(ens, grid, cv=PredefinedSplit(test_fold)).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and len(set(np.round(scores, 6))) > 1
    best = search.best_estimator_
    assert best.estimators[0][1].C == search.best_params_["raw__C"]
    assert best.estimators[0][1] is not ens.estimators[0][1]
    assert ens.estimators[0][1].C == 1.0  # the template is not modified
    # C=1e-4 shrinks the raw member to near-uniform probabilities: worse
    by_c = dict(zip(search.cv_results_["param_raw__C"], scores))
    assert search.best_params_["raw__C"] == 1.0 or by_c[1.0] >= by_c[1e-4]
    # the ensemble inside a Pipeline: keys nest one level further
    pipe = Pipeline([("ens", CNNEnsembleClassifier(_members()))])
    pipe.set_params(ens__raw__C=0.5)
    assert pipe.named_steps["ens"].estimators[0][1].C == 0.5


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_persistence_round_trip(blobs, tmp_path, dump):
    X, y = blobs
    ens = CNNEnsembleClassifier(
        [("raw", make_pipeline(FunctionTransformer(_flatten), _lr())),
         ("scaled", make_pipeline(StandardScaler(), _lr()))],
        weights=[1, 2],
    ).fit(X, y)
    path = tmp_path / "ens.bin"
    if dump == "pickle":
        path.write_bytes(pickle.dumps(ens))
        loaded = pickle.loads(path.read_bytes())
    else:
        joblib.dump(ens, path)
        loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), ens.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), ens.predict(X))


def test_html_repr_shows_members():
    html = estimator_html_repr(CNNEnsembleClassifier(_members()))
    assert "raw" in html and "scaled" in html and "StandardScaler" in html


# ----------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"estimators": []}, "non-empty"),
        ({"estimators": [("raw",)]}, "entry 0"),
        ({"estimators": [(1, _lr())]}, "names must be strings"),
        ({"estimators": [("a", _lr()), ("a", _lr())]}, "not unique"),
        ({"estimators": [("a__b", _lr())]}, "must not contain __"),
        ({"estimators": [("weights", _lr())]}, "conflict with constructor"),
        ({"estimators": [("a", "drop")]}, "at least one"),
        ({"estimators": [("a", SVC())]}, "must be a classifier with predict_proba"),
        ({"estimators": _members(), "weights": [1]}, "one number per member"),
        ({"estimators": _members(), "weights": [1, -1]}, "'weights' parameter .* finite numbers >= 0"),
        ({"estimators": _members(), "weights": [1, np.nan]}, "'weights' parameter .* finite numbers"),
        ({"estimators": _members(), "weights": [0, 0]}, "all zero"),
        ({"estimators": _members(), "weights": ["a", "b"]}, "'weights' parameter .* sequence of finite numbers"),
        ({"estimators": _members(), "n_jobs": "two"}, "n_jobs"),
        ({"estimators": (("a", _lr()),)}, "'estimators' parameter"),
    ],
)
def test_bad_parameters(blobs, kwargs, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        CNNEnsembleClassifier(**kwargs).fit(X, y)


def test_class_instead_of_instance(blobs):
    with pytest.raises(TypeError, match=r"pass an instance \(LogisticRegression\(\)\)"):
        CNNEnsembleClassifier([("a", LogisticRegression)]).fit(*blobs)


def test_bad_input(blobs):
    X, y = blobs
    ens = CNNEnsembleClassifier(_members())
    with pytest.raises(NotFittedError):
        ens.predict(X)
    with pytest.raises(NotFittedError):
        ens.predict_proba(X)
    with pytest.raises(ValueError, match="0 sample"):
        ens.fit(X[:0], y[:0])
    X_nan = X.copy()
    X_nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ens.fit(X_nan, y)
    with pytest.raises(ValueError, match="1-D input"):
        ens.fit(X[0], y)
    with pytest.raises(ValueError, match="5-D input"):
        ens.fit(X.reshape(90, 1, 6, 6, 1), y)
    with pytest.raises(ValueError, match="requires y"):
        ens.fit(X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        ens.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        ens.fit(X, np.linspace(0, 1, 90))
    with pytest.raises(ValueError, match="different shapes"):  # grey beside colour
        ens.fit([np.zeros((6, 6))] * 45 + [np.zeros((6, 6, 3))] * 45, y)
    ens.fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        ens.predict(X_nan)
    with pytest.raises(ValueError, match="35 features"):
        ens.predict(X[:, :35])


# ----------------------------------------------------------------------
# Real faces
# ----------------------------------------------------------------------
def test_real_faces_lbp_and_raw_members(fer_train_small, fer_small):
    X_train, y_train, _ = fer_train_small  # 350 Training faces
    X_test, y_test, _ = fer_small  # 140 PublicTest faces
    ens = CNNEnsembleClassifier(
        [
            ("lbp", make_pipeline(LBPHistogram(grid=(4, 4)), StandardScaler(), _lr(C=0.01))),
            ("raw", make_pipeline(FunctionTransformer(_flatten), StandardScaler(), _lr(C=1e-3))),
        ],
    ).fit(X_train, y_train)
    np.testing.assert_array_equal(ens.classes_, np.arange(7))
    proba = ens.predict_proba(X_test)
    pred = ens.predict(X_test)
    assert proba.shape == (140, 7) and pred.shape == (140,)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(pred, ens.classes_[proba.argmax(axis=1)])
    members = [ens.named_estimators_[n].predict_proba(X_test) for n in ("lbp", "raw")]
    np.testing.assert_allclose(proba, (members[0] + members[1]) / 2)
    # real faces, 50 per class: clearly better than the 1/7 chance level
    assert np.mean(pred == y_test) > 0.2


# ----------------------------------------------------------------------
# With the fersk networks and mapped LBP (once those modules exist)
# ----------------------------------------------------------------------
@pytest.mark.slow
def test_cnn_members_on_raw_and_mapped_lbp(fer_train_small, fer_small, tmp_path):
    from fersk import CNNClassifier, MDSMappedLBP

    X_train, y_train, _ = fer_train_small
    X_train, y_train = X_train[::7], y_train[::7]  # 50 faces, every class
    X_test = fer_small[0][::4]

    def cnn():
        return CNNClassifier(
            architecture="kaggle_cnn",
            architecture_params={"width": 0.125, "dense_units": 32},
            epochs=1,
            batch_size=16,
            random_state=0,
        )

    ens = CNNEnsembleClassifier(
        [("raw", cnn()), ("mapped", make_pipeline(MDSMappedLBP(random_state=0), cnn()))]
    )
    ens.set_params(mapped__cnnclassifier__epochs=1, mapped__mdsmappedlbp__n_components=3)
    ens.fit(X_train, y_train)
    proba = ens.predict_proba(X_test)
    assert proba.shape == (len(X_test), 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    members = [m.predict_proba(X_test) for m in ens.estimators_]
    np.testing.assert_allclose(proba, (members[0] + members[1]) / 2, rtol=1e-6)
    assert ens.estimators_[1].named_steps["cnnclassifier"].n_features_in_ == 48 * 48 * 3
    # the Keras members travel with the ensemble
    joblib.dump(ens, tmp_path / "cnn_ensemble.joblib")
    loaded = joblib.load(tmp_path / "cnn_ensemble.joblib")
    np.testing.assert_allclose(loaded.predict_proba(X_test), proba, rtol=1e-6, atol=1e-7)
    # same random_state, same ensemble
    again = clone(ens).fit(X_train, y_train).predict_proba(X_test)
    np.testing.assert_allclose(again, proba, rtol=1e-5, atol=1e-6)



def test_one_view_reaches_the_members_of_a_fitted_ensemble():
    # test_time_views="center" (and fersk.ensemble.one_view, which fersk.stream's
    # views="center" uses) must reach every member's network, in a Pipeline or
    # a FrozenEstimator too, and leave the fitted members as they were.
    from sklearn.frozen import FrozenEstimator

    from conftest import half_bright_faces
    from fersk import CNNClassifier, MDSMappedLBP
    from fersk.ensemble import one_view

    X, y = half_bright_faces(24, 20, 0)

    def cnn(seed):
        return CNNClassifier("kaggle_cnn", {"width": 0.0625, "dense_units": 8}, epochs=1,
                             crop_size=16, test_time_crops="five", test_time_flip=True,
                             random_state=seed)

    ens = CNNEnsembleClassifier([
        ("raw", cnn(0)),
        ("mapped", make_pipeline(MDSMappedLBP(n_components=3), cnn(1))),
        ("frozen", FrozenEstimator(cnn(2).fit(X, y))),
    ]).fit(X, y)
    ten = ens.predict_proba(X)
    # The expected one-view answer, member by member.
    networks = [ens.estimators_[0], ens.estimators_[1][-1], ens.estimators_[2].estimator]
    settings = [(n.test_time_crops, n.test_time_flip) for n in networks]
    for n in networks:
        n.set_params(test_time_crops="center", test_time_flip=False)
    expected = np.mean([m.predict_proba(X) for m in ens.estimators_], axis=0)
    for n, (crops, flip) in zip(networks, settings):
        n.set_params(test_time_crops=crops, test_time_flip=flip)
    assert not np.allclose(expected, ten)

    np.testing.assert_allclose(one_view(ens).predict_proba(X), expected, rtol=1e-6)
    np.testing.assert_allclose(
        ens.set_params(test_time_views="center").predict_proba(X), expected, rtol=1e-6
    )
    # The fitted members are as they were.
    assert [(n.test_time_crops, n.test_time_flip) for n in networks] == settings
    np.testing.assert_allclose(ens.set_params(test_time_views="model").predict_proba(X), ten)
    with pytest.raises(ValueError, match="test_time_views"):
        clone(ens).set_params(test_time_views="one").fit(X, y)


def test_trained_member_of_numbers_under_names_is_refused(blobs):
    """A trained member of classes 0..n-1 and y of names: its columns were
    read as the sorted names without a word (a bundled model's 4, sad, as
    the fifth sorted FER-2013 name, neutral: 0.295 where the member alone
    scored 0.595)."""
    from sklearn.frozen import FrozenEstimator

    X, y = blobs
    codes = np.unique(y, return_inverse=True)[1]
    names = np.array(["sad", "angry", "happy"])[codes]  # not in sorted order
    ens = CNNEnsembleClassifier([("a", FrozenEstimator(_lr().fit(X, codes)))])
    with pytest.raises(ValueError, match=r"'a' learned the classes 0..2, and y holds the names"):
        ens.fit(X, names)
    assert not hasattr(ens, "estimators_")
    # its own labels: fine
    ens.fit(X, codes)
    np.testing.assert_array_equal(ens.classes_, [0, 1, 2])


def test_huge_weights_average_as_their_ratio(blobs):
    """Weights near the largest float summed to inf: all-zero probabilities."""
    X, y = blobs
    members = [("a", _lr()), ("b", _lr(C=0.01))]
    huge = CNNEnsembleClassifier(members, weights=[1e308, 1e308]).fit(X, y)
    one = CNNEnsembleClassifier(members, weights=[1, 1]).fit(X, y)
    np.testing.assert_allclose(huge.predict_proba(X), one.predict_proba(X))


def test_saved_ensemble_keeps_its_members_class_weight_by_label(tmp_path):
    """fit keys a member's class_weight by codes; the model folder stored
    them so, and a refit of the loaded ensemble weighed another class
    (integer labels) or refused its own weights (names)."""
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained

    X = np.random.default_rng(0).integers(0, 256, (24, 16, 16)).astype(np.uint8)

    def net(**kw):
        return CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                             batch_size=8, **{"random_state": 0, **kw})

    for y, weights in ((np.array([1, 2, 3] * 8), {3: 5.0}),
                       (np.array(["sad", "happy", "zz"] * 8), {"zz": 5.0})):
        ens = CNNEnsembleClassifier([("a", net(class_weight=weights)), ("b", net(random_state=1))])
        pipe = Pipeline([("crop", FaceCropper(detector=None, size=16)), ("ens", ens)]).fit(X, y)
        loaded = pretrained.load(pretrained.save(pipe, tmp_path / str(y[0])), backend="keras")
        assert loaded.get_params()["ens__a__class_weight"] == weights
        np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X), atol=1e-6)
        refit = clone(loaded).fit(X, y)  # the same class weighed as by the original
        assert refit[-1].named_estimators_["a"].class_weight == \
            clone(pipe).fit(X, y)[-1].named_estimators_["a"].class_weight
        assert pipe[-1].named_estimators_["a"].class_weight != weights  # in memory: by code
        # Saved again from the loaded model (its members keyed by label
        # already): the same weights, not mapped twice ({1: 5.0} became
        # {2: 5.0}; names failed with int('zz')).
        again = pretrained.load(pretrained.save(loaded, tmp_path / f"again-{y[0]}"),
                                backend="keras")
        assert again.get_params()["ens__a__class_weight"] == weights
        converted = pretrained.convert(tmp_path / str(y[0]), tmp_path / f"conv-{y[0]}")
        assert pretrained.load(converted, backend="keras").get_params()[
            "ens__a__class_weight"] == weights


def test_member_parameters_set_after_fit_are_said_to_wait_for_the_next_fit():
    """After fit only estimators_ predict (scikit-learn's rule): a member's
    parameter set on the fitted ensemble changed nothing, silently; it is
    said now, and the ensemble's own test_time_views still reaches them."""
    from fersk import CNNClassifier

    X = np.random.default_rng(0).integers(0, 256, (24, 16, 16)).astype(np.uint8)
    y = np.array([0, 1, 2] * 8)
    ens = CNNEnsembleClassifier([
        (n, CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                          batch_size=8, random_state=i)) for i, n in enumerate("ab")]).fit(X, y)
    before = ens.predict_proba(X)
    with pytest.warns(UserWarning, match=r"'a' set on a fitted ensemble.*next fit") as caught:
        ens.set_params(a__test_time_flip=True)
    assert caught[0].filename == __file__  # at the user's line
    np.testing.assert_array_equal(ens.predict_proba(X), before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens.set_params(weights=[1, 2])  # the ensemble's own: no warning
        CNNEnsembleClassifier(ens.estimators).set_params(a__epochs=2)  # unfitted: none



def _two_member_ensemble():
    from fersk import CNNClassifier

    X = np.random.default_rng(0).integers(0, 256, (24, 16, 16)).astype(np.uint8)
    y = np.array([0, 1, 2] * 8)
    ens = CNNEnsembleClassifier([
        (n, CNNClassifier("mtcnn_cnn", {"width": 0.125, "dense_units": 4}, epochs=1,
                          batch_size=8, random_state=i)) for i, n in enumerate("ab")]).fit(X, y)
    return ens, X, y


def test_a_member_dropped_or_replaced_in_a_loaded_ensemble_takes_effect(tmp_path):
    """A loaded ensemble predicts with the very members it holds: setting one
    of them to "drop" (or to another fitted network) changed get_params but
    not the members that voted, and saving it again wrote the old one back."""
    from sklearn.pipeline import Pipeline

    from fersk import pretrained

    ens, X, y = _two_member_ensemble()
    folder = pretrained.save(Pipeline([("ens", ens)]), tmp_path / "m")
    loaded = pretrained.load(folder, backend="keras")
    a = loaded[-1].named_estimators_["a"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.set_params(ens__b="drop")
    np.testing.assert_allclose(loaded.predict_proba(X), a.predict_proba(X), rtol=1e-6)
    assert list(loaded[-1].named_estimators_) == ["a", "b"] and len(loaded[-1].estimators_) == 1
    again = pretrained.load(pretrained.save(loaded, tmp_path / "m2"), backend="keras")
    np.testing.assert_allclose(again.predict_proba(X), a.predict_proba(X), rtol=1e-6)
    loaded.set_params(ens__b=a)  # another fitted network in its place
    np.testing.assert_allclose(loaded.predict_proba(X), a.predict_proba(X), rtol=1e-6)


def test_members_reordered_after_fit_never_take_each_others_weights():
    """estimators set again on a fitted ensemble, in another order, with
    weights for that order: weights_ paired the new weights with the fitted
    members by position, so the weight meant for one voted for the other,
    without a word.  Said when set; refused at predict until the next fit."""
    ens, X, y = _two_member_ensemble()
    b, a = ens.estimators[1], ens.estimators[0]
    with pytest.warns(UserWarning, match=r"estimators set on a fitted ensemble"):
        ens.set_params(estimators=[b, a], weights=[0, 1])
    with pytest.raises(ValueError, match=r"fit again"):
        ens.predict_proba(X)
    ens.fit(X, y)
    np.testing.assert_allclose(ens.predict_proba(X),
                               ens.named_estimators_["a"].predict_proba(X), rtol=1e-6)
