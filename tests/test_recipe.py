"""The FER training recipe as estimator parameters.

Random crops (``crop_size``) with centre-crop inference, ten-crop test-time
averaging (``test_time_crops`` + ``test_time_flip``), label smoothing,
SGD with Nesterov momentum and weight decay, the warm-up cosine schedule,
random erasing, XLA compilation and resumable fits (``checkpoint_dir``).
Each test checks what the parameter does, on tiny networks and images.
"""

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sklearn.model_selection import GridSearchCV  # noqa: E402

from fersk._checkpoint import SaveEachEpoch  # noqa: E402
from fersk.classifiers import CNNClassifier  # noqa: E402
from fersk.layers import RandomAffine, RandomCenterCrop, RandomErasing  # noqa: E402

TINY_VGG = dict(architecture="vgg_fer", architecture_params={"width": 0.125, "dense_units": 8})


def _faces(n=64, side=12, seed=0):
    """Two classes of asymmetric images: the left or the right half brighter."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, side, side).astype(np.float32) * np.linspace(0.5, 1.5, side)
    y = np.arange(n) % 2
    X[y == 0, :, : side // 2] += 0.6
    X[y == 1, :, side // 2 :] += 0.6
    return X, y


def _network_proba(clf, views):
    """Mean over views (standardised images) of the fitted network's output."""
    std = clf.model_.get_layer("standardize")
    network = clf.model_.layers[-1]
    return np.mean(
        [np.asarray(network(std(v), training=False)) for v in views], axis=0
    )


def test_crop_size_random_windows_in_training_centre_crop_in_inference():
    X, y = _faces()
    clf = CNNClassifier(**TINY_VGG, crop_size=8, epochs=1, random_state=0).fit(X, y)
    crop = clf.model_.get_layer("crop")
    assert isinstance(crop, RandomCenterCrop) and clf.model_.layers[-1].input_shape[1:3] == (8, 8)
    x = X[..., np.newaxis]
    centre = x[:, 2:10, 2:10]
    np.testing.assert_allclose(clf.predict_proba(X), _network_proba(clf, [centre]), rtol=1e-5)
    # In training each image gets its own window, always one of the 25.
    windows = {
        (t, c): x[:, t : t + 8, c : c + 8] for t in range(5) for c in range(5)
    }
    out = np.asarray(crop(x, training=True))
    found = [
        next(k for k, w in windows.items() if np.allclose(out[i], w[i], atol=1e-6)) for i in range(len(x))
    ]
    assert len(set(found)) > 5
    with pytest.raises(ValueError, match="larger than the images"):
        CNNClassifier(**TINY_VGG, crop_size=13, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"crop_size.*pair \(height, width\) of ints"):
        CNNClassifier(**TINY_VGG, crop_size=(8, 8, 1), epochs=1).fit(X, y)


def test_ten_crop_averages_corners_centre_and_mirrors():
    X, y = _faces(32)
    clf = CNNClassifier(**TINY_VGG, crop_size=(8, 10), epochs=1, random_state=0).fit(X, y)
    x = X[..., np.newaxis]
    corners = [(2, 1), (0, 0), (0, 2), (4, 0), (4, 2)]
    views = [x[:, t : t + 8, c : c + 10] for t, c in corners]
    mirrored = [v[:, :, ::-1] for v in views]
    clf.set_params(test_time_crops="five")
    np.testing.assert_allclose(clf.predict_proba(X), _network_proba(clf, views), rtol=1e-5)
    clf.set_params(test_time_flip=True)
    ten = clf.predict_proba(X)
    np.testing.assert_allclose(ten, _network_proba(clf, views + mirrored), rtol=1e-5)
    # Many images go through Keras's compiled predict loop: same numbers.
    clf.set_params(predict_batch_size=8)
    np.testing.assert_allclose(clf.predict_proba(X), ten, rtol=1e-5, atol=1e-6)
    plain = CNNClassifier(**TINY_VGG, epochs=1, test_time_crops="five")
    with pytest.raises(ValueError, match="trained on crops"):  # before training
        plain.fit(X, y)


def test_label_smoothing_sets_the_loss_and_bounds_confidence():
    X, y = _faces()
    kw = dict(**TINY_VGG, epochs=30, batch_size=16, learning_rate=3e-3, random_state=0)
    sharp = CNNClassifier(**kw).fit(X, y)
    smooth = CNNClassifier(**kw, label_smoothing=0.4).fit(X, y)
    assert smooth.model_.loss.get_config()["label_smoothing"] == pytest.approx(0.4)
    # Smoothed targets are 0.8 / 0.2 for two classes: the network is
    # trained away from certainty.
    assert smooth.predict_proba(X).max() < sharp.predict_proba(X).max()
    assert smooth.predict_proba(X).max() < 0.95
    assert smooth.score(X, y) > 0.9


def test_optimizer_momentum_nesterov_and_weight_decay():
    X, y = _faces(32)
    kw = dict(**TINY_VGG, epochs=1)
    sgd = CNNClassifier(**kw, optimizer="sgd", weight_decay=5e-4).fit(X, y).model_.optimizer
    assert isinstance(sgd, keras.optimizers.SGD)
    assert sgd.momentum == pytest.approx(0.9) and sgd.nesterov and sgd.weight_decay == 5e-4
    plain = CNNClassifier(**kw, optimizer="sgd", momentum=0.0, nesterov=False).fit(X, y)
    assert plain.model_.optimizer.momentum == 0 and not plain.model_.optimizer.nesterov
    adamw = CNNClassifier(**kw, optimizer="adamw", weight_decay=1e-2).fit(X, y).model_.optimizer
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 1e-2


def test_warmup_cosine_schedule_follows_its_formula():
    X, y = _faces(64)
    clf = CNNClassifier(
        **TINY_VGG, epochs=5, batch_size=16, learning_rate=0.1, optimizer="sgd",
        learning_rate_schedule="warmup_cosine", warmup_fraction=0.2, n_iter_no_change=None,
        random_state=0,
    ).fit(X, y)
    # 5 epochs of 4 steps: 4 steps of linear warm-up to 0.1, then 16 steps
    # of cosine decay to 0.
    steps = 4 * np.arange(1, 6)
    expected = np.where(
        steps <= 4, 0.1 * steps / 4, 0.1 * (1 + np.cos(np.pi * (steps - 4) / 16)) / 2
    )
    np.testing.assert_allclose(clf.history_["learning_rate"], expected, atol=1e-7)


def test_random_erasing_erases_rectangles_in_training_only():
    X, y = _faces(40)
    clf = CNNClassifier(**TINY_VGG, random_erasing=1.0, epochs=1, random_state=0).fit(X, y)
    layer = clf.model_.get_layer("augment_erase")
    assert isinstance(layer, RandomErasing) and layer.rate == 1.0
    x = np.ones((200, 20, 20, 1), np.float32)
    erased = np.asarray(layer(x, training=True))[..., 0] == 0
    area = erased.mean(axis=(1, 2))
    # up to a quarter of the image, plus the pixels a rectangle's edges cut
    assert area.min() > 0 and area.max() < 0.32 and 0.08 < area.mean() < 0.18
    rows, cols = erased.any(axis=2), erased.any(axis=1)
    # each erased region is one rectangle: its bounding box, filled
    assert np.array_equal(erased.sum(axis=(1, 2)), rows.sum(axis=1) * cols.sum(axis=1))
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    half = np.asarray(RandomErasing(rate=0.5, seed=0)(x, training=True))
    assert 0.3 < (half == 0).any(axis=(1, 2, 3)).mean() < 0.7


def test_augment_dict_sets_strengths_in_one_compilable_layer():
    X, y = _faces(32)
    clf = CNNClassifier(
        **TINY_VGG, augment={"shift": 0.05, "zoom": 0.0}, epochs=1, random_state=0
    ).fit(X, y)
    affine = clf.model_.get_layer("augment_affine")
    assert isinstance(affine, RandomAffine) and affine.supports_jit
    assert (affine.rotation_degrees, affine.shift, affine.zoom) == (10.0, 0.05, 0.0)
    flip_only = CNNClassifier(
        **TINY_VGG, augment={"shift": 0, "zoom": 0, "rotation_degrees": 0}, epochs=1
    ).fit(X, y)
    assert [la.name for la in flip_only.model_.layers if la.name.startswith("augment")] == [
        "augment_flip"
    ]
    with pytest.raises(ValueError, match=r"'augment' parameter .* 'rotation_degrees' a number"):
        CNNClassifier(**TINY_VGG, augment={"scale": 0.1}, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="'shift' a number >= 0"):
        CNNClassifier(**TINY_VGG, augment={"shift": -1}, epochs=1).fit(X, y)


def test_jit_compile_is_kept_with_the_whole_recipe():
    # 40 steps: compiled, not eager.  Keras silently turns XLA off when one
    # layer does not support it (its own rotation/translation layers).
    X, y = _faces(160)
    clf = CNNClassifier(
        **TINY_VGG, epochs=2, batch_size=8, augment=True, crop_size=10, random_erasing=0.5,
        jit_compile=True, random_state=0,
    ).fit(X, y)
    assert clf.model_.jit_compile is True
    assert all(layer.supports_jit for layer in clf.model_._flatten_layers())


def test_recipe_parameters_tunable_by_grid_search():
    X, y = _faces(48)
    search = GridSearchCV(
        CNNClassifier(**TINY_VGG, epochs=1, crop_size=8, random_state=0),
        {"label_smoothing": [0.0, 0.1], "test_time_crops": ["center", "five"]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4


class _Interrupt(Exception):
    pass


def test_checkpoint_dir_resumes_an_interrupted_fit(tmp_path, monkeypatch):
    X, y = _faces(96)
    state = tmp_path / "state"
    kw = dict(
        **TINY_VGG, epochs=3, batch_size=16, optimizer="sgd", learning_rate=0.01,
        learning_rate_schedule="warmup_cosine", n_iter_no_change=None, random_state=0,
    )
    full = CNNClassifier(**kw).fit(X, y)

    original = SaveEachEpoch.on_epoch_end

    def stop_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise _Interrupt  # as a killed process: the state of epoch 1 is on disk

    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", stop_after_first_epoch)
    with pytest.raises(_Interrupt):
        CNNClassifier(**kw, checkpoint_dir=state).fit(X, y)
    assert os.listdir(state)
    monkeypatch.setattr(SaveEachEpoch, "on_epoch_end", original)

    resumed = CNNClassifier(**kw, checkpoint_dir=str(state)).fit(X, y)
    # Epochs 2 and 3 trained, with the optimizer's step count (and so the
    # schedule) continued, then the state is removed; the history, the
    # batches' order and the dropout draws are the uninterrupted fit's, so
    # it is that fit to the last bit.
    assert resumed.n_epochs_ == 3
    assert int(resumed.model_.optimizer.iterations) == int(full.model_.optimizer.iterations) == 18
    assert resumed.history_ == full.history_
    assert not state.exists() or not os.listdir(state)
    for a, b in zip(resumed.model_.get_weights(), full.model_.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"width": -1.0}, r"'architecture_params' .*'width' a number > 0.* Got \{'width': -1.0\}"),
        ({"width": 0}, r"'width' a number > 0.* Got \{'width': 0\}"),
        ({"dense_units": -5}, r"'dense_units' an int >= 1.* Got \{'dense_units': -5\}"),
        ({"dense_units": 2.5}, r"'dense_units' an int >= 1.* Got \{'dense_units': 2.5\}"),
        ({"dropout": 1.0}, r"'dropout' a number in \[0, 1\).* Got \{'dropout': 1.0\}"),
    ],
)
def test_bad_architecture_params_are_clear_errors(params, message):
    X, y = _faces(16)
    with pytest.raises(ValueError, match=message):
        CNNClassifier("vgg_fer", params, epochs=1).fit(X, y)


def test_network_fitted_on_uint8_refuses_unit_floats():
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 12, 12), dtype=np.uint8), np.arange(24) % 2
    clf = CNNClassifier(**TINY_VGG, epochs=1, random_state=0).fit(X, y)
    assert clf.input_dtype_ == "|u1"
    with pytest.raises(ValueError, match=r"img_as_ubyte\(X\), or X \* 255"):
        clf.predict(X / 255.0)
    np.testing.assert_allclose(clf.predict_proba(X.astype(np.float32)), clf.predict_proba(X),
                               rtol=1e-5)
    floats = CNNClassifier(**TINY_VGG, epochs=1, random_state=0).fit(X / 255.0, y)
    assert floats.predict(X / 255.0).shape == (24,)


def test_pixel_scale_judged_image_by_image_and_both_ways(tmp_path):
    """A [0, 1] image among 0-255 float images is refused (it was read as
    nearly black whenever another image of its batch went above 1: the
    answer depended on the batch); an all-zero image is black on both scales
    and passes.  A network fitted on [0, 1] floats refuses 0-255 pixels (it
    read them as glare, silently), uint8 or float, on Keras and after
    joblib."""
    import joblib

    from fersk import CNNRegressor

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 12, 12), dtype=np.uint8), np.arange(24) % 2
    clf = CNNClassifier(**TINY_VGG, epochs=1, random_state=0).fit(X, y)
    mixed = np.stack([X[0].astype(float), X[1] / 255.0])
    with pytest.raises(ValueError, match=r"scikit-image's convention \(image 1\)"):
        clf.predict(mixed)
    black = np.stack([X[0].astype(float), np.zeros((12, 12))])
    np.testing.assert_allclose(clf.predict_proba(black),
                               clf.predict_proba(np.stack([X[0], X[0] * 0])), rtol=1e-5)

    targets = rng.uniform(-1, 1, (24, 2))
    reg = CNNRegressor(**TINY_VGG, epochs=1, random_state=0).fit(X / 255.0, targets)
    assert reg.input_range_ == (0.0, 1.0)
    for pixels in (X, X.astype(np.float32)):
        with pytest.raises(ValueError, match=r"within \[0, 1\].*up to 255.*img_as_float"):
            reg.predict(pixels)
    joblib.dump(reg, tmp_path / "reg.joblib")
    again = joblib.load(tmp_path / "reg.joblib")
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        again.predict(X)
    assert reg.predict(X / 255.0).shape == (24, 2)
    # Features of another range (mapped LBP codes, standardised floats) are as is.
    wide = CNNRegressor(**TINY_VGG, epochs=1, random_state=0).fit(X / 25.5 - 5, targets)
    assert wide.predict(X.astype(np.float64)).shape == (24, 2)


def test_pixel_scale_refuses_pixels_not_valid_input():
    """The scale guard refuses what is a scale mix-up, never valid input: a
    [0, 1]-trained network takes a contrast stretch above 2 (fractions, with
    a warning) and is on whether its training maximum is 1.0 or MinMaxScaler's
    1.0000000000000002; a uint8-trained network takes a nearly black float
    frame of whole numbers (0 and 1) as it takes the same frame as uint8."""
    import warnings

    from sklearn.preprocessing import MinMaxScaler

    from fersk import CNNRegressor

    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (24, 12, 12), dtype=np.uint8), np.arange(24) % 2
    targets = rng.uniform(-1, 1, (24, 2))
    unit = X / 255.0
    reg = CNNRegressor(**TINY_VGG, epochs=1, random_state=0).fit(unit, targets)
    with pytest.warns(UserWarning, match="off the training scale"):
        assert reg.predict(unit * 2.5).shape == (24, 2)
    scaled = MinMaxScaler().fit_transform(unit.reshape(24, -1)).reshape(unit.shape)
    assert scaled.max() > 1.0  # 1.0000000000000002: the guard once turned off here
    loose = CNNRegressor(**TINY_VGG, epochs=1, random_state=0).fit(scaled, targets)
    with pytest.raises(ValueError, match=r"within \[0, 1\].*0-255 pixels.*up to 255"):
        loose.predict(X)
    # 0-255 floats with fractions (a channel mean, a resize) are pixels too,
    # judged image by image: one fractional pixel lets no batch through.
    colour = rng.integers(0, 256, (24, 12, 12, 3)).astype(np.float64)
    with pytest.raises(ValueError, match=r"0-255 pixels, it seems \(images 0, 1, 2, 3, 4 \.\.\."):
        reg.predict(colour.mean(axis=-1))
    whole = X.astype(np.float64)
    whole[0, 0, 0] = 0.5
    with pytest.raises(ValueError, match=r"images 0, 1, 2"):
        reg.predict(whole)

    # A zero-weighted image is out of the fit, and out of the scale learnt:
    # one excluded frame of 255s no longer turns the guard off.
    clf_unit = CNNClassifier(**TINY_VGG, epochs=1, random_state=0)
    glare = np.concatenate([unit, np.full((1, 12, 12), 255.0)])
    clf_unit.fit(glare, np.append(y, 0), sample_weight=np.append(np.ones(24), 0))
    assert clf_unit.input_range_[1] <= 1
    with pytest.raises(ValueError, match="0-255 pixels"):
        clf_unit.predict(X)

    clf = CNNClassifier(**TINY_VGG, epochs=1, random_state=0).fit(X, y)
    dark = (rng.uniform(size=(12, 12)) < 0.5).astype(np.uint8)
    batch = np.stack([X[0].astype(np.float32), dark.astype(np.float32)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        np.testing.assert_allclose(clf.predict_proba(batch),
                                   clf.predict_proba(np.stack([X[0], dark])), rtol=1e-5)
    with pytest.raises(ValueError, match=r"scikit-image's convention \(image 1\)"):
        clf.predict(np.stack([X[0].astype(np.float32), dark * 0.5]))


def test_ablate_test_time_views_leaves_the_network_as_given_when_it_fails():
    """A network trained without crops cannot take five views: the error
    leaves its test-time views as they were (they stayed 'five')."""
    from fersk.training import ablate_test_time_views

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (16, 12, 12)).astype(np.uint8), np.repeat([0, 1], 8)
    net = CNNClassifier("kaggle_cnn", {"width": 1 / 32, "dense_units": 4}, epochs=1,
                        random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="five"):
        ablate_test_time_views([("net", net)], X, y)
    assert (net.test_time_crops, net.test_time_flip) == ("center", False)


def test_checkpoint_failing_to_write_keeps_the_previous_one(tmp_path, monkeypatch):
    """train_fer2013(checkpoint=...) dumps through a temporary file renamed
    over the checkpoint: a dump failing midway (a full disk) leaves the
    previous checkpoint whole, and no temporary file."""
    import errno

    import joblib

    from fersk.training import recipes

    X = np.random.RandomState(0).randint(0, 256, (14, 48, 48)).astype(np.uint8)
    y = np.arange(14) % 7
    monkeypatch.setattr(recipes, "fer2013_splits", lambda *a, **k: (X, y, X, y))
    checkpoint = tmp_path / "run.joblib"
    kw = dict(architecture="kaggle_cnn", architecture_params={"width": 0.125}, epochs=1,
              patience=1, batch_size=16, learning_rate=1e-3, augment=False,
              checkpoint=checkpoint, load_verbose=0)
    recipes.train_fer2013("unused", **kw)
    good = checkpoint.read_bytes()
    real_dump = joblib.dump

    def disk_full(value, filename, **kwargs):
        with open(filename, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(joblib, "dump", disk_full)
    with pytest.raises(OSError, match="No space left"):
        recipes.train_fer2013("unused", **kw)
    monkeypatch.setattr(joblib, "dump", real_dump)
    assert checkpoint.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.joblib"]
    pipe, _ = recipes.train_fer2013("unused", from_checkpoint=True, **kw)
    assert pipe.predict(X).shape == (14,)


def test_packaging_from_a_checkpoint_records_the_faces_trained_on(tmp_path, monkeypatch):
    """from_checkpoint=True with another n_train stated that call's count in
    the card, not the faces the steps were trained on."""
    from fersk.training import recipes

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (28, 48, 48)).astype(np.uint8)
    y = np.arange(28) % 7

    def splits(data, n_train=None, **kw):
        n = n_train or 28
        return X[:n], y[:n], X, y

    monkeypatch.setattr(recipes, "fer2013_splits", splits)
    checkpoint = tmp_path / "run.joblib"
    kw = dict(architecture="kaggle_cnn", architecture_params={"width": 0.125}, epochs=1,
              patience=1, batch_size=16, learning_rate=1e-3, augment=False,
              checkpoint=checkpoint, load_verbose=0)
    _, trained = recipes.train_fer2013("unused", n_train=14, **kw)
    _, packaged = recipes.train_fer2013("unused", n_train=28, from_checkpoint=True, **kw)
    assert trained["n_train"] == packaged["n_train"] == 14


def test_packaging_from_a_checkpoint_keeps_the_starts_card_and_cropper(tmp_path, monkeypatch):
    """from_checkpoint=True with init_from wrote init_from without the
    start's record (train_seconds, which ensembles add up) and packaged the
    default FaceCropper instead of the start's."""
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained
    from fersk.training import recipes

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (28, 48, 48)).astype(np.uint8)
    y = np.arange(28) % 7
    monkeypatch.setattr(recipes, "fer2013_splits", lambda *a, **k: (X, y, X, y))
    cropper = FaceCropper(detector=None, size=(48, 48), margin=0.3)
    start = make_pipeline(cropper, CNNClassifier("kaggle_cnn", {"width": 0.125}, epochs=1,
                                                 random_state=0)).fit(X, y)
    folder = pretrained.save(start, tmp_path / "start", metrics={"train_seconds": 123.0})
    kw = dict(architecture="kaggle_cnn", architecture_params={"width": 0.125},
              init_from=str(folder), epochs=1, patience=1, batch_size=16, learning_rate=1e-3,
              augment=False, checkpoint=tmp_path / "run.joblib", load_verbose=0)
    trained_pipe, trained = recipes.train_fer2013("unused", **kw)
    packaged_pipe, packaged = recipes.train_fer2013("unused", from_checkpoint=True, **kw)
    assert trained["init_from"]["train_seconds"] == 123.0
    assert packaged["init_from"] == trained["init_from"]
    for pipe in (trained_pipe, packaged_pipe):
        assert pipe.steps[0][1].get_params()["margin"] == 0.3


def test_ensemble_card_says_how_each_member_predicts(tmp_path, monkeypatch):
    """test_time_flip=False leaves the members' own views, and the card said
    no flip while a member saved with mirror averaging flipped."""
    from sklearn.pipeline import make_pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained
    from fersk.training import ensembling

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (28, 48, 48)).astype(np.uint8)
    y = np.arange(28) % 7
    monkeypatch.setattr(ensembling, "fer2013_splits", lambda *a, **k: (X, y, X, y))
    folders = []
    for flip in (True, False):
        net = CNNClassifier("kaggle_cnn", {"width": 0.125}, epochs=1, test_time_flip=flip,
                            random_state=0)
        pipe = make_pipeline(FaceCropper(detector=None, size=(48, 48)), net).fit(X, y)
        folders.append(str(pretrained.save(pipe, tmp_path / f"flip{flip}")))
    _, metrics = ensembling.ensemble_fer2013("unused", folders, load_verbose=0)
    flips = {name: m["test_time_flip"] for name, m in metrics["members"].items()}
    assert sorted(flips.values()) == [False, True] and metrics["test_time_flip"] is False
    _, metrics = ensembling.ensemble_fer2013("unused", folders, test_time_flip=True, load_verbose=0)
    assert metrics["test_time_flip"] is True
    assert all(m["test_time_flip"] for m in metrics["members"].values())
    # The faces the members learnt from, from their cards: the card said
    # len(Training split loaded), which trains nothing (members are frozen).
    assert "n_train" not in metrics  # these members' cards do not say
    said = [str(pretrained.save(pretrained.load(folder, backend="keras"), f"{folder}_n",
                                metrics={"n_train": n}))
            for n, folder in zip((500, {"fer2013": 700, "sfew": 200}), folders)]
    _, metrics = ensembling.ensemble_fer2013("unused", said, load_verbose=0)
    assert sorted(map(str, (m["n_train"] for m in metrics["members"].values()))) == [
        "500", "{'fer2013': 700, 'sfew': 200}"]
    assert metrics["n_train"] == {name: m["n_train"] for name, m in metrics["members"].items()}


_KILLED_DUMP = """
import os, signal, sys
import joblib
from fersk.training import recipes

real = joblib.dump
def dump_then_die(value, filename, **kw):
    with open(filename, "wb") as f:
        f.write(b"half a checkpoint")
        f.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # killed at the write point
joblib.dump = dump_then_die
recipes._dump_checkpoint(("new", 2.0), sys.argv[1])
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL: POSIX")
def test_a_checkpoint_dump_killed_midway_leaves_the_previous_one_whole(tmp_path):
    """Killed (SIGKILL) while the new checkpoint is written: the old one is
    still there, whole, and loads."""
    import signal
    import subprocess
    import sys

    import joblib

    from fersk.training import recipes

    checkpoint = tmp_path / "run.joblib"
    recipes._dump_checkpoint(("old", 1.0), checkpoint)
    child = subprocess.run([sys.executable, "-c", _KILLED_DUMP, str(checkpoint)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert joblib.load(checkpoint) == ("old", 1.0)


def test_the_cards_confusion_matrix_has_a_row_and_column_per_class():
    """A test subset without a class (fersk train --n-test 20 drew no
    disgusted face) gave a 6x6 matrix for a 7-class model: its rows no
    longer matched the card's class names, without a word."""
    from sklearn.dummy import DummyClassifier
    from sklearn.preprocessing import FunctionTransformer

    from fersk.training import publictest_metrics

    X = np.random.default_rng(0).integers(0, 256, (14, 48, 48), dtype=np.uint8)
    clf = DummyClassifier(strategy="most_frequent").fit(X.reshape(14, -1), np.arange(14) % 7)
    flat = FunctionTransformer(lambda a: np.asarray(a).reshape(len(a), -1))
    y_test = np.array([0, 0, 3, 3, 6, 6])
    _, metrics = publictest_metrics([("flat", flat), ("clf", clf)], X[:6], y_test)
    matrix = np.array(metrics["publictest_confusion_matrix"])
    assert matrix.shape == (7, 7)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(y_test, minlength=7))
    assert matrix[:, 0].sum() == 6  # every face predicted class 0 (the most frequent)


def test_train_fer2013_refuses_a_start_of_other_codes_and_a_warm_start_param(tmp_path):
    """The library's recipe: init_from a model of folder-order codes kept
    its names for FER-2013's codes; network_params warm_start with init_from
    was a TypeError (two values for one keyword)."""
    import pytest
    from sklearn.pipeline import Pipeline

    from fersk import CNNClassifier, FaceCropper, pretrained
    from fersk.training import train_fer2013

    rng = np.random.RandomState(0)
    X, y = rng.randint(0, 256, (14, 48, 48)).astype(np.uint8), np.arange(14) % 7

    net = CNNClassifier("kaggle_cnn", {"width": 0.0625, "dense_units": 8}, epochs=1,
                        random_state=0).fit(X, y)
    folder = pretrained.save(Pipeline([("facecropper", FaceCropper(None, size=48)),
                                       ("network", net)]), tmp_path / "m",
                             class_names=sorted(pretrained.info()["class_names"]))
    kw = dict(architecture=None, architecture_params=None, epochs=1, patience=None,
              batch_size=8, learning_rate=0.01, augment=False)
    with pytest.raises(ValueError, match="not FER-2013's labels"):
        train_fer2013(tmp_path / "no_data", init_from=folder, **kw)
    with pytest.raises(ValueError, match="warm_start is set by init_from"):
        train_fer2013(tmp_path / "no_data", network_params={"warm_start": False}, **kw)
    # Recorded in the card and never used; bad values before the data is read.
    with pytest.raises(ValueError, match="validation_fraction cannot apply here"):
        train_fer2013(tmp_path / "no_data", network_params={"validation_fraction": 0.5}, **kw)
    with pytest.raises(ValueError, match="network_params: .*'crop_size' parameter"):
        train_fer2013(tmp_path / "no_data", network_params={"crop_size": "abc"}, **kw)


def test_the_validation_hold_out_is_weighed_as_the_images_it_was_drawn_from():
    """validation_fraction's hold-out was scored unweighted: sample_weight,
    class_weight and source_weight shaped the training loss only, so early
    stopping and the best epoch followed every held-out image alike.  Here
    the weights differ on the held-out images alone: the same training,
    another validation loss."""
    from sklearn.model_selection import train_test_split

    from fersk import CNNClassifier, CNNRegressor
    from fersk._validation import check_random_state_int

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (40, 48, 48)).astype(np.uint8)
    y = np.arange(40) % 4
    kw = dict(architecture="kaggle_cnn", architecture_params={"width": 0.0625, "dense_units": 8},
              epochs=2, batch_size=16, random_state=0, validation_fraction=0.25)
    seed = check_random_state_int(0)
    for make, target, stratify in ((CNNClassifier, y, y), (CNNRegressor, y / 3.0, None)):
        _, held = train_test_split(np.arange(40), test_size=0.25, stratify=stratify,
                                   random_state=seed)
        weight = np.ones(40)
        weight[held] = rng.uniform(0.01, 10, len(held))
        plain = make(**kw).fit(X, target, sample_weight=np.ones(40))
        weighed = make(**kw).fit(X, target, sample_weight=weight)
        assert plain.history_["loss"] == weighed.history_["loss"], make.__name__
        assert plain.history_["val_loss"] != weighed.history_["val_loss"], make.__name__


def test_zoom_of_one_or_more_is_refused_and_float_pixels_are_rounded_for_degrading():
    """augment zoom >= 1 drew faces at scale 0 or below (mirrored through
    their centre); pixels on 0-255 given as floats were floored (254.9 ->
    254) for the degraded batches."""
    from sklearn.utils._param_validation import InvalidParameterError

    from fersk import CNNClassifier
    from fersk._batches import DegradedBatches

    with pytest.raises(InvalidParameterError, match="augment"):
        CNNClassifier(augment={"zoom": 1.5})._validate_params()
    CNNClassifier(augment={"zoom": 0.5})._validate_params()
    x = np.full((2, 8, 8, 1), 254.9, np.float32)
    batches = DegradedBatches(x, np.zeros(2), None, 2, {}, seed=0)
    assert batches.x.dtype == np.uint8 and int(batches.x.max()) == 255
