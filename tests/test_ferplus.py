"""FER+: the majority rule, load_ferplus, and training on vote distributions.

The loader is tested on a small synthetic folder (always) and on the
project's FER-2013 copy with FER+'s real votes (skipped when absent).  Soft
labels go through ``fit(X, y, sample_proba=...)``, directly and through
scikit-learn's metadata routing in a Pipeline and in GridSearchCV.
"""

import warnings

import numpy as np
import pytest

from fersk.datasets import (
    FERPLUS_CLASSES,
    FERPLUS_VOTE_COLUMNS,
    ferplus_majority,
    load_ferplus,
)

HEADER = "path," + ",".join(FERPLUS_VOTE_COLUMNS) + "\n"


# ---------------------------------------------------------------- the rule
def test_majority_rule_of_ferplus_code():
    votes = [
        [8, 0, 0, 1, 1, 0, 0, 0, 0, 0],  # neutral; the single votes are outliers
        [3, 0, 0, 0, 6, 1, 0, 0, 0, 0],  # anger: 6 of the 9 votes left
        [5, 5, 0, 0, 0, 0, 0, 0, 0, 0],  # a tie is no majority
        [4, 3, 0, 0, 0, 0, 0, 0, 3, 0],  # 4 of 10: no majority
        [2, 0, 0, 0, 0, 0, 0, 0, 6, 2],  # unknown
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 9],  # not a face
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # every vote an outlier: no majority
        [0, 0, 0, 0, 0, 0, 0, 5, 0, 4],  # contempt: 5 of 9
        [1, 2, 0, 0, 0, 0, 0, 0, 0, 0],  # happiness: 2 of 2 after the outlier
    ]
    labels, dist = ferplus_majority(votes)
    assert labels.tolist() == [0, 4, -1, -1, 8, 9, -1, 7, 1]
    np.testing.assert_allclose(dist[0], np.eye(8)[0])
    np.testing.assert_allclose(dist[1], [3 / 9, 0, 0, 0, 6 / 9, 0, 0, 0])
    np.testing.assert_allclose(dist[3], [4 / 7, 3 / 7, 0, 0, 0, 0, 0, 0])
    assert dist[5].sum() == 0 and dist[6].sum() == 0
    with pytest.raises(ValueError, match="shape"):
        ferplus_majority(np.zeros((2, 8)))
    # Not counts: refused (NaN gave "no majority", -7 a label, without a word).
    for bad in (np.nan, -7, 2.5):
        with pytest.raises(ValueError, match=r"votes must be counts.*rows \[1\]"):
            ferplus_majority([votes[0], [bad, 5, 0, 0, 0, 0, 0, 0, 0, 0]])


# ------------------------------------------------------ synthetic folder
def _write_folder(root, rows):
    """Write 48x48 PNG faces and a votes CSV; rows = (relpath, votes or None)."""
    from PIL import Image

    lines = [HEADER]
    for i, (rel, votes) in enumerate(rows):
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 48), 10 * i, np.uint8)).save(f)
        if votes is not None:
            lines.append(rel + "," + ",".join(map(str, votes)) + "\n")
    (root / "ferplus_votes.csv").write_text("".join(lines))


def test_load_ferplus_joins_drops_and_reports(tmp_path):
    rows = [
        ("train/angry/Training_1.png", [0, 0, 0, 0, 9, 1, 0, 0, 0, 0]),  # anger, kept
        ("train/happy/Training_2.png", [2, 7, 0, 0, 0, 0, 0, 0, 1, 0]),  # happiness, kept
        ("train/happy/Training_3.png", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0]),  # tie
        ("train/neutral/Training_4.png", [0, 0, 0, 0, 0, 0, 0, 0, 2, 8]),  # NF
        ("test/sad/PublicTest_5.png", [0, 0, 0, 8, 0, 0, 0, 0, 2, 0]),  # sadness, kept
        ("test/sad/PublicTest_6.png", [0, 0, 0, 3, 0, 0, 0, 0, 7, 0]),  # unknown
        ("test/fear/PublicTest_7.png", None),  # no votes
    ]
    _write_folder(tmp_path, rows)
    with pytest.warns(UserWarning, match="1 image.*no row"):
        data = load_ferplus(tmp_path, cache=False)
    assert data.filenames.tolist() == [
        "test/sad/PublicTest_5.png", "train/angry/Training_1.png", "train/happy/Training_2.png"
    ]
    assert data.target.tolist() == [3, 4, 1]
    assert data.target_names.tolist() == list(FERPLUS_CLASSES)
    assert data.fer2013_target.tolist() == [4, 0, 3]
    assert data.usage.tolist() == ["PublicTest", "Training", "Training"]
    # images, votes and distributions stay aligned with the file names
    np.testing.assert_array_equal(data.images[:, 0, 0], [40, 0, 10])
    np.testing.assert_array_equal(data.votes[1], rows[0][1])
    np.testing.assert_allclose(data.distribution[2], [2 / 9, 7 / 9, 0, 0, 0, 0, 0, 0])
    assert data.dropped_counts == {"no_majority": 1, "unknown": 1, "not_a_face": 1, "no_votes": 1}
    assert sorted(data.dropped) == [
        ("test/fear/PublicTest_7.png", "no_votes"),
        ("test/sad/PublicTest_6.png", "unknown"),
        ("train/happy/Training_3.png", "no_majority"),
        ("train/neutral/Training_4.png", "not_a_face"),
    ]
    assert data.data.shape == (3, 48 * 48)
    X, y = load_ferplus(tmp_path, usage="Training", cache=False, return_X_y=True)
    assert X.shape == (2, 48, 48) and y.tolist() == [4, 1]


def test_load_ferplus_joins_class_folders_of_another_case(tmp_path):
    """test/Angry (read by load_fer2013, any case) made every image of it
    "no_votes": FER+'s votes name test/angry."""
    import os

    rows = [("train/angry/Training_1.png", [0, 0, 0, 0, 9, 1, 0, 0, 0, 0]),
            ("test/happy/PublicTest_2.png", [2, 7, 0, 0, 0, 0, 0, 0, 1, 0])]
    _write_folder(tmp_path, rows)
    os.rename(tmp_path / "test" / "happy", tmp_path / "test" / "Happy")
    os.rename(tmp_path / "train", tmp_path / "Train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no row" warning
        data = load_ferplus(tmp_path, cache=False)
    assert data.filenames.tolist() == ["Train/angry/Training_1.png", "test/Happy/PublicTest_2.png"]
    assert data.target.tolist() == [4, 1] and data.dropped == []
    np.testing.assert_array_equal(data.votes, [rows[0][1], rows[1][1]])


def test_load_ferplus_verbose_and_errors(tmp_path, capsys):
    _write_folder(tmp_path, [("train/angry/Training_1.png", [0, 0, 0, 0, 9, 1, 0, 0, 0, 0]),
                             ("train/angry/Training_2.png", [5, 5, 0, 0, 0, 0, 0, 0, 0, 0])])
    load_ferplus(tmp_path, cache=False, verbose=1)
    assert "kept 1 of 2 images; dropped 1 no_majority" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not a folder"):
        load_ferplus(tmp_path / "ferplus_votes.csv")
    with pytest.raises(ValueError, match="not found"):
        load_ferplus(tmp_path, votes=tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("path,a,b\nx,1,2\n")
    with pytest.raises(ValueError, match="not a FER\\+ votes file"):
        load_ferplus(tmp_path, votes=tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text(HEADER + "train/angry/Training_1.png,1,2,x,0,0,0,0,0,0,0\n")
    with pytest.raises(ValueError, match="line 2"):
        load_ferplus(tmp_path, votes=tmp_path / "bad.csv")
    # one image voted twice: which row counted was silent
    twice = "train/angry/Training_1.png,0,0,0,0,9,1,0,0,0,0\n"
    (tmp_path / "twice.csv").write_text(HEADER + twice + twice)
    with pytest.raises(ValueError, match=r"line 3: 'train/angry/Training_1.png' again "
                                         r"\(first on line 2\)"):
        load_ferplus(tmp_path, votes=tmp_path / "twice.csv", cache=False)
    # one image voted twice with its folders spelt in two cases: the map that joins
    # folders of another case (TRAIN/ANGRY) kept the later row's votes without a word
    (tmp_path / "cases.csv").write_text(
        HEADER + twice + "train/Angry/Training_1.png,9,0,0,0,0,1,0,0,0,0\n")
    with pytest.raises(ValueError, match=r"line 3: 'train/Angry/Training_1.png' is "
                                         r"'train/angry/Training_1.png' \(line 2\) with its "
                                         r"folders in another case"):
        load_ferplus(tmp_path, votes=tmp_path / "cases.csv", cache=False)
    # a spreadsheet's byte-order mark before the header
    (tmp_path / "bom.csv").write_text("\ufeff" + HEADER + twice, encoding="utf-8")
    with pytest.warns(UserWarning, match="1 image.*no row"):  # Training_2 not in it
        assert load_ferplus(tmp_path, votes=tmp_path / "bom.csv", cache=False).target.tolist() == [4]
    (tmp_path / "none.csv").write_text(HEADER + "train/angry/Training_2.png,5,5,0,0,0,0,0,0,0,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="No FER\\+ image"):
            load_ferplus(tmp_path, votes=tmp_path / "none.csv", cache=False)


def test_load_ferplus_says_when_no_path_matches_the_votes(tmp_path):
    """FER-2013 laid out <class>/<file> (no split folder), or votes keyed
    ./test/...: no path matched, and the error blamed the votes ("No FER+
    image with a majority emotion")."""
    import os

    _write_folder(tmp_path, [("test/angry/PublicTest_1.png", [0, 0, 0, 0, 9, 1, 0, 0, 0, 0])])
    flat = tmp_path / "flat"
    os.rename(tmp_path / "test", flat)
    os.rename(tmp_path / "ferplus_votes.csv", flat / "ferplus_votes.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"none of the 1 image paths .* has a row.*named like "
                                             r"'angry/PublicTest_1.png', the votes like "
                                             r"'test/angry/PublicTest_1.png'"):
            load_ferplus(flat, cache=False)


# ------------------------------------------------------------- real votes
def test_load_ferplus_real_votes_publictest(fer2013_root):
    with pytest.warns(UserWarning, match="10 image"):
        data = load_ferplus(fer2013_root, usage="PublicTest")
    assert data.images.shape == (3199, 48, 48)
    assert data.dropped_counts == {"no_majority": 367, "unknown": 13, "not_a_face": 0,
                                   "no_votes": 10}
    assert len(data.dropped) == 3589 - 3199
    assert set(data.usage) == {"PublicTest"}
    np.testing.assert_allclose(data.distribution.sum(axis=1), 1.0)
    # every kept label is its distribution's strict majority
    np.testing.assert_array_equal(data.distribution.argmax(axis=1), data.target)
    assert np.all(data.distribution.max(axis=1) > 0.5)
    # the first row of FER+'s file: 8 neutral, 1 sadness, 1 anger -> neutral
    i = data.filenames.tolist().index("test/angry/PublicTest_10116449.jpg")
    assert data.target[i] == 0 and data.fer2013_target[i] == 0
    np.testing.assert_array_equal(data.votes[i], [8, 0, 0, 1, 1, 0, 0, 0, 0, 0])
    assert np.bincount(data.target, minlength=8).min() > 0  # all 8 classes present


# ------------------------------------------------------------ soft labels
keras = pytest.importorskip("keras")

from sklearn import config_context  # noqa: E402
from sklearn.model_selection import GridSearchCV, PredefinedSplit  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

from fersk import CNNClassifier, LBCNNClassifier  # noqa: E402

TINY = dict(architecture="kaggle_cnn", architecture_params={"width": 0.0625, "dense_units": 8},
            batch_size=16, random_state=0)


def _three_classes(n=48, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, 12, 12).astype(np.float32)
    y = np.arange(n) % 3
    X[y == 1, :, :6] += 0.7
    X[y == 2, :, 6:] += 0.7
    proba = np.full((n, 3), 0.1)
    proba[np.arange(n), y] = 0.5
    proba[np.arange(n), (y + 1) % 3] = 0.4  # the next class is a close second
    return X, y, proba


def _scale(x):
    return 1.0 * x


def test_soft_targets_change_training_and_one_hot_equals_hard():
    X, y, proba = _three_classes()
    # Enough training to move the outputs off chance (4 epochs at the default
    # rate left them within 1e-4 of 1/3: the comparison below was a coin flip
    # on the batch order); here the gap is 0.17-0.30 for seeds 0, 1 and 2.
    kw = {**TINY, "epochs": 10, "learning_rate": 0.01}
    hard = CNNClassifier(**kw).fit(X, y)
    one_hot = CNNClassifier(**kw).fit(X, y, sample_proba=np.eye(3)[y] * 7.0)
    np.testing.assert_allclose(one_hot.predict_proba(X), hard.predict_proba(X), atol=1e-4)
    soft = CNNClassifier(**kw).fit(X, y, sample_proba=proba)
    p = soft.predict_proba(X)
    assert not np.allclose(p, hard.predict_proba(X), atol=1e-3)
    # trained toward the distributions: the second class gets more mass
    second = p[np.arange(len(y)), (y + 1) % 3].mean()
    assert second > hard.predict_proba(X)[np.arange(len(y)), (y + 1) % 3].mean()
    # the loss is the cross-entropy against the distributions
    model_p = np.asarray(soft.model_(soft._as_model_input(X), training=False), dtype=np.float64)
    target = proba / proba.sum(axis=1, keepdims=True)
    ce = -np.mean(np.sum(target * np.log(np.clip(model_p, 1e-7, 1)), axis=1))
    evaluated = soft.model_.evaluate(soft._as_model_input(X), target, verbose=0)[0]
    assert evaluated == pytest.approx(ce, rel=1e-3)


def test_ragged_sample_proba_is_named():
    X, y, proba = _three_classes()
    ragged = [list(row) for row in proba]
    ragged[3] = ragged[3][:2]
    with pytest.raises(ValueError, match="sample_proba"):
        CNNClassifier(**TINY, epochs=1).fit(X, y, sample_proba=ragged)


def test_soft_targets_with_validation_fraction_label_smoothing_and_class_weight():
    X, y, proba = _three_classes()
    clf = CNNClassifier(**TINY, epochs=2, validation_fraction=0.25, label_smoothing=0.1,
                        class_weight="balanced").fit(X, y, sample_proba=proba)
    assert len(clf.history_["val_loss"]) == 2
    clf = LBCNNClassifier(depth=1, n_anchors=4, filters=2, head_units=4, epochs=1,
                          random_state=0).fit(X, y, sample_proba=proba,
                                              validation_data=(X[:6], y[:6]))
    assert clf.predict_proba(X).shape == (48, 3)


def test_distribution_columns_are_the_classes_when_y_misses_one():
    X, y, proba = _three_classes()
    two = y < 2  # no image labelled 2, but every image has votes for it
    clf = CNNClassifier(**TINY, epochs=1).fit(X[two], y[two], sample_proba=proba[two])
    assert clf.classes_.tolist() == [0, 1, 2]
    assert clf.predict_proba(X).shape == (48, 3)
    # "balanced" weighs the classes y names; the one only the votes name keeps 1
    balanced = CNNClassifier(**TINY, epochs=1, class_weight="balanced")
    balanced.fit(X[two], y[two], sample_proba=proba[two])
    assert balanced.classes_.tolist() == [0, 1, 2]
    assert balanced._class_weight_dict(y[two])[2] == 1.0
    # string labels name their classes: the columns must match them
    with pytest.raises(ValueError, match=r"\(32, 2\)"):
        CNNClassifier(**TINY, epochs=1).fit(X[two], np.array(["a", "b"])[y[two]],
                                            sample_proba=proba[two])


def test_soft_targets_are_validated():
    X, y, proba = _three_classes()
    clf = CNNClassifier(**TINY, epochs=1)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_classes\) = \(48, 3\)"):
        clf.fit(X, y, sample_proba=proba[:, :2])
    with pytest.raises(ValueError, match="negative"):
        clf.fit(X, y, sample_proba=proba - 0.2)
    bad = proba.copy()
    bad[3] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        clf.fit(X, y, sample_proba=bad)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(X, y, sample_proba=bad)


def test_metadata_routing_pipeline_and_grid_search():
    X, y, proba = _three_classes()
    with config_context(enable_metadata_routing=True):
        net = CNNClassifier(**TINY, epochs=2).set_fit_request(sample_proba=True)
        pipe = make_pipeline(FunctionTransformer(_scale), net)
        pipe.fit(X, y, sample_proba=proba)
        direct = CNNClassifier(**TINY, epochs=2).fit(X, y, sample_proba=proba)
        np.testing.assert_allclose(pipe.predict_proba(X), direct.predict_proba(X), atol=1e-6)

        split = PredefinedSplit(np.r_[-np.ones(36, int), np.zeros(12, int)])
        search = GridSearchCV(pipe, {"cnnclassifier__learning_rate": [1e-3, 1e-2]}, cv=split)
        search.fit(X, y, sample_proba=proba)
        assert search.cv_results_["mean_test_score"].shape == (2,)
        # the training fold got its own rows of the distributions
        fold = CNNClassifier(**TINY, epochs=2, learning_rate=1e-3).fit(
            X[:36], y[:36], sample_proba=proba[:36]
        )
        assert search.cv_results_["split0_test_score"][0] == pytest.approx(fold.score(X[36:], y[36:]))

        # not requested: routing refuses to drop it silently
        plain = make_pipeline(FunctionTransformer(_scale), CNNClassifier(**TINY, epochs=1))
        with pytest.raises(Exception, match="sample_proba"):
            plain.fit(X, y, sample_proba=proba)


def test_soft_label_training_on_real_ferplus_votes(fer2013_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_ferplus(fer2013_root, usage="PublicTest")
    rng = np.random.RandomState(0)
    idx = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(data.target == k), min(12, np.sum(data.target == k)),
                   replace=False) for k in range(8)
    ]))
    X, y, dist = data.images[idx], data.target[idx], data.distribution[idx]
    clf = CNNClassifier(**TINY, epochs=1).fit(X, y, sample_proba=dist)
    assert clf.classes_.tolist() == list(range(8))
    assert clf.predict_proba(X).shape == (len(idx), 8)
