"""LBP codes and histograms: exactness against scikit-image, layouts, validation."""

import warnings

import joblib
import numpy as np
import pytest
from skimage.feature import local_binary_pattern
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from fersk import LBPCodeTransformer, LBPHistogram
from fersk.lbp import LBP_METHODS, local_binary_pattern_batch, n_lbp_codes

PAIRS = [(8, 1), (16, 2), (24, 3)]


def _skimage_loop(images, P, R, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns on float images
        return np.stack([local_binary_pattern(im, P, R, method) for im in images])


@pytest.mark.parametrize("method", LBP_METHODS)
@pytest.mark.parametrize("P,R", PAIRS)
def test_identical_to_skimage_on_real_faces(fer_small, method, P, R):
    images = fer_small[0][::2]  # 70 real PublicTest faces, every class
    expected = _skimage_loop(images, P, R, method)
    got = local_binary_pattern_batch(images, P, R, method)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # NaNs ('var') compare equal


@pytest.mark.parametrize("method", LBP_METHODS)
def test_identical_to_skimage_on_flat_and_float_images(method):
    # Flat regions and borders make ties, the hard case for interpolation.
    rng = np.random.RandomState(0)
    images = np.zeros((3, 17, 23))
    images[1] = 7
    images[2] = rng.randint(0, 4, (17, 23))
    for R in (1, 1.5, 2.7):
        for P in (4, 8, 12):
            expected = _skimage_loop(images, P, R, method)
            got = local_binary_pattern_batch(images, P, R, method, n_jobs=2)
            np.testing.assert_array_equal(got, expected)
    floats = rng.rand(2, 9, 11)
    np.testing.assert_array_equal(
        local_binary_pattern_batch(floats, 8, 1, method),
        _skimage_loop(floats, 8, 1, method),
    )


@pytest.mark.parametrize("method", ["default", "ror", "uniform", "nri_uniform"])
def test_code_ranges_and_dtypes(fer_small, method):
    codes = local_binary_pattern_batch(fer_small[0], 8, 1, method)
    assert codes.max() < n_lbp_codes(8, method)
    assert codes.dtype == np.uint8
    assert local_binary_pattern_batch(fer_small[0][:2], 24, 3).dtype == np.uint32


def test_nearest_interpolation_is_the_3x3_operator_and_order_invariant(fer_small):
    images = fer_small[0][:10].astype(np.int64)
    codes = local_binary_pattern_batch(images, 8, 1, interpolation="nearest")
    offsets = [(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)]
    c = images[:, 1:-1, 1:-1]
    h, w = images.shape[1:]
    expected = sum(
        (images[:, 1 + dr : h - 1 + dr, 1 + dc : w - 1 + dc] >= c).astype(int) << i
        for i, (dr, dc) in enumerate(offsets)
    )
    np.testing.assert_array_equal(codes[:, 1:-1, 1:-1], expected)
    f_images = np.sqrt(images.astype(float)) * 3 + 11  # strictly increasing
    kw = dict(interpolation="nearest", padding="edge")
    np.testing.assert_array_equal(
        local_binary_pattern_batch(images, 8, 1, **kw),
        local_binary_pattern_batch(f_images, 8, 1, **kw),
    )


def test_transformer_layouts_and_channels(fer_small):
    X = fer_small[0][:6]
    t = LBPCodeTransformer(P=8, R=1, method="uniform").fit(X)
    codes = t.transform(X)
    assert codes.shape == X.shape and t.n_features_in_ == 48 * 48
    np.testing.assert_array_equal(codes[0], local_binary_pattern(X[0], 8, 1, "uniform"))
    # flattened rows in -> flattened rows out, same values
    flat = LBPCodeTransformer(method="uniform").fit_transform(X.reshape(6, -1))
    np.testing.assert_array_equal(flat, codes.reshape(6, -1))
    # several (P, R) pairs -> one channel each
    multi = LBPCodeTransformer(P=[8, 16], R=[1, 2], method="uniform").fit_transform(X)
    assert multi.shape == (6, 48, 48, 2)
    np.testing.assert_array_equal(multi[..., 1], local_binary_pattern_batch(X, 16, 2, "uniform"))
    assert t.n_codes_ == [10]


def test_colour_rule_rgb_to_luminance():
    from skimage import data
    from skimage.color import rgb2gray

    rgb = data.astronaut()[::8, ::8]
    X = np.stack([rgb, rgb[::-1]])
    codes = LBPCodeTransformer().fit_transform(X)
    gray = np.clip(np.rint(rgb2gray(rgb.astype(float))), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(codes[0], local_binary_pattern(gray, 8, 1))
    assert codes.shape == X.shape[:3]


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((0, 48, 48)), "0 sample"),
        (np.full((2, 8, 8), np.nan), "NaN"),
        (np.zeros((2, 4, 4, 5)), "channels"),
        (np.zeros((2, 7)), "image_shape"),
        (np.zeros(5), "1-D"),
        (np.zeros((1, 2, 3, 3, 1)), "5-D"),
    ],
)
def test_bad_input_errors(X, match):
    with pytest.raises(ValueError, match=match):
        LBPCodeTransformer().fit(X)


def test_bad_params_and_shape_mismatch():
    X = np.zeros((2, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="method"):
        LBPCodeTransformer(method="fancy").fit(X)
    with pytest.raises(ValueError, match="same non-zero length"):
        LBPCodeTransformer(P=[8, 16], R=[1, 2, 3]).fit(X)
    with pytest.raises(ValueError, match="P"):
        LBPCodeTransformer(P=40).fit(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        LBPCodeTransformer().fit(X).transform(np.zeros((2, 9, 9)))
    with pytest.raises(ValueError, match="var"):
        LBPHistogram(method="var").fit(X)
    with pytest.raises(ValueError, match="grid"):
        LBPHistogram(grid=(3,)).fit(X)
    # 2**24 codes on 36 cells: refused in fit, before transform would try to
    # allocate gigabytes; the uniform codes of the same P are fine.
    with pytest.raises(ValueError, match="features an image.*nri_uniform"):
        LBPHistogram(P=24, R=3, method="default").fit(X)
    assert LBPHistogram(P=24, R=3, method="uniform").fit(X).n_features_out_ == 36 * 26


def test_histogram_counts_and_names(fer_small):
    X = fer_small[0][:5]
    hist = LBPHistogram(P=8, R=1, method="uniform", grid=(2, 3), normalize=False).fit(X)
    F = hist.transform(X)
    assert F.shape == (5, 2 * 3 * 10) == (5, hist.n_features_out_)
    codes = local_binary_pattern_batch(X, 8, 1, "uniform")
    # cell (1, 2) = rows 24..47, cols 32..47
    cell = codes[:, 24:, 32:]
    expected = np.stack([np.bincount(c.ravel(), minlength=10) for c in cell])
    np.testing.assert_array_equal(F.reshape(5, 6, 10)[:, 5], expected)
    assert F.reshape(5, 6, 10).sum(-1).tolist() == [[24 * 16] * 6] * 5
    names = hist.get_feature_names_out()
    assert len(names) == F.shape[1] and names[-1] == "lbp_p8_r1_cell1_2_code9"
    normed = LBPHistogram(P=8, R=1, method="uniform", grid=(2, 3)).fit_transform(X)
    np.testing.assert_allclose(normed.reshape(5, 6, 10).sum(-1), 1.0)


def test_histogram_svm_pipeline_learns_on_real_faces(fer_train_small, fer_small):
    Xtr, ytr, _ = fer_train_small
    Xte, yte, _ = fer_small
    pipe = make_pipeline(LBPHistogram(), StandardScaler(), LinearSVC(C=0.01))
    pipe.fit(Xtr, ytr)
    # 7 balanced classes: chance is 1/7; 350 training faces give clearly more.
    assert pipe.score(Xte, yte) > 0.22


def test_joblib_round_trip_identical(tmp_path, fer_small):
    X = fer_small[0][:8]
    for est in (LBPCodeTransformer(P=[8, 16], R=[1, 2]), LBPHistogram()):
        est.fit(X)
        joblib.dump(est, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib")
        np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
        assert clone(est).get_params() == est.get_params()


@parametrize_with_checks(
    [
        # sklearn's checks feed 2-D data with any number of features: read
        # each row as a one-row image.
        LBPCodeTransformer(image_shape=(1, -1)),
        LBPCodeTransformer(method="uniform", image_shape=(1, -1)),
        LBPHistogram(grid=(1, 1), image_shape=(1, -1)),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "X, message",
    [
        ([np.zeros((8, 8)), np.zeros((9, 9))], r"different shapes \(\(8, 8\), \(9, 9\)\)"),
        # grey beside colour, or sizes differing in width only: numpy's own
        # broadcast error before (it cannot hold them even as objects)
        ([np.zeros((8, 8)), np.zeros((8, 8, 3))], r"different shapes \(\(8, 8\), \(8, 8, 3\)\)"),
        ([np.zeros((8, 8)), np.zeros((8, 9))], r"different shapes \(\(8, 8\), \(8, 9\)\)"),
        ([], "X is empty"),
        ((np.zeros((8, 8)) for _ in range(2)), r"X is a generator; .*\(list\(X\)\)"),
        (["a.png", "b.png"], "holds file paths"),
        (np.zeros((2, 8, 8), complex), r"Complex data not supported: X has dtype complex128"),
    ],
)
def test_unusable_inputs_say_what_is_wrong(X, message):
    for est in (LBPCodeTransformer(), LBPHistogram()):
        with pytest.raises(ValueError, match=message) as info:
            est.fit_transform(X)
        assert "np.newaxis" not in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"non-finite values \(NaN or infinity\)"),
    (np.inf, r"non-finite values \(NaN or infinity\)"),
    (-np.inf, r"non-finite values \(NaN or infinity\)"),
    (1j, r"must be real; got complex dtype complex128"),
])
def test_codes_refuse_non_finite_and_complex_images(bad, message):
    """local_binary_pattern_batch took NaN and infinite pixels without a word
    (giving wrong codes to their neighbours) and complex images with only
    numpy's ComplexWarning (dropping the imaginary part): it refuses them,
    warning-free, also as objects.  The estimators refuse them earlier, with
    their own messages."""
    finite = np.random.RandomState(0).rand(2, 6, 6)
    images = finite.astype(type(bad))
    images[0, 2, 2] += bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            local_binary_pattern_batch(images, 8, 1)
        with pytest.raises(ValueError, match="real numbers" if bad == 1j else message):
            local_binary_pattern_batch(images.astype(object), 8, 1)
    est_message = ("Complex data not supported" if bad == 1j
                   else "NaN" if np.isnan(bad) else "infinity")
    for est in (LBPCodeTransformer(), LBPHistogram(grid=(2, 2))):
        with pytest.raises(ValueError, match=est_message):
            est.fit(images)
        fitted = est.fit(finite)
        with pytest.raises(ValueError, match=est_message):
            fitted.transform(images)
    # finite numbers held as objects are read as before
    np.testing.assert_array_equal(local_binary_pattern_batch(finite.astype(object), 8, 1),
                                  local_binary_pattern_batch(finite, 8, 1))


def test_n_jobs_follows_joblibs_rule(monkeypatch):
    """-2 is all CPUs but one (joblib), not all of them."""
    import fersk._lbp_codes  # where local_binary_pattern_batch resolves n_jobs

    seen = []
    real = fersk._lbp_codes.n_workers
    monkeypatch.setattr(fersk._lbp_codes, "n_workers",
                        lambda n: seen.append(real(n)) or seen[-1])
    X = np.random.RandomState(0).randint(0, 256, (4, 16, 16)).astype(np.uint8)
    from joblib import cpu_count

    for n_jobs, expected in ((None, 1), (1, 1), (-1, cpu_count()), (-2, max(1, cpu_count() - 1))):
        LBPCodeTransformer(n_jobs=n_jobs).fit_transform(X)
        assert seen[-1] == expected


@pytest.mark.parametrize("est,change", [
    (LBPCodeTransformer(P=8, R=1), {"P": 6}),
    (LBPCodeTransformer(P=8, R=1), {"R": 2}),
    (LBPCodeTransformer(method="uniform"), {"method": "nri_uniform"}),
    (LBPHistogram(grid=(2, 2), method="uniform"), {"method": "nri_uniform"}),
    (LBPHistogram(grid=(2, 2)), {"grid": (3, 3)}),
    (LBPHistogram(grid=(2, 3)), {"grid": (3, 2)}),  # as many cells, another layout
    (LBPHistogram(P=8, R=1, grid=(2, 2)), {"P": 6}),
])
def test_settings_changed_after_fit_are_refused_not_ignored(est, change):
    # transform combines parameters with what fit derived from them: P changed by
    # set_params was ignored (the fitted pairs), a changed method spilled codes
    # into the next cell's bins; both without a word.
    X = np.random.RandomState(0).randint(0, 256, (3, 12, 12)).astype(np.uint8)
    est = clone(est).fit(X)
    before = est.transform(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"{next(iter(change))}.*changed since fit"):
        est.transform(X)
    np.testing.assert_array_equal(est.fit(X).transform(X).shape[0], before.shape[0])


@pytest.mark.parametrize("change", [
    {"grid": (3, 3)},
    {"grid": (3, 2)},  # as many cells, another layout
    {"method": "uniform"},
    {"P": 6},
])
def test_histogram_feature_names_refuse_settings_changed_after_fit(change):
    """get_feature_names_out read ``grid`` from the parameters: after
    ``set_params(grid=(3, 3))`` on a (2, 2) fit it gave 531 names for the 236
    columns transform makes (transform refuses the change).  It refuses the
    same changes, so names always match the fitted columns."""
    X = np.random.RandomState(0).randint(0, 256, (3, 12, 12)).astype(np.uint8)
    est = LBPHistogram(grid=(2, 3)).fit(X)
    assert len(est.get_feature_names_out()) == est.n_features_out_ == est.transform(X).shape[1]
    est.set_params(**change)
    with pytest.raises(ValueError, match="changed since fit; call fit again before "
                                         "get_feature_names_out"):
        est.get_feature_names_out()
    est.fit(X)
    assert len(est.get_feature_names_out()) == est.n_features_out_ == est.transform(X).shape[1]


def test_p32_codes_are_the_unsigned_codes_scikit_image_overflows():
    """At P=32 scikit-image's int32 codes turn negative where the top bit is
    set (documented): fersk's 'default' codes are those values modulo 2**32,
    and its 'ror' codes the least rotation of them (scikit-image's least
    *signed* value is another rotation)."""
    from skimage.feature import local_binary_pattern

    from fersk.lbp import local_binary_pattern_batch

    X = np.random.default_rng(0).integers(0, 256, (2, 20, 20)).astype(np.uint8)
    ours = local_binary_pattern_batch(X, 32, 3)
    theirs = np.stack([local_binary_pattern(x, 32, 3) for x in X])
    assert ours.dtype == np.uint32 and (theirs < 0).any()
    np.testing.assert_array_equal(ours, np.mod(theirs, 2**32).astype(np.uint32))
    codes = ours.astype(np.uint64)
    rotations = [((codes >> k) | (codes << (32 - k))) & 0xFFFFFFFF for k in range(32)]
    np.testing.assert_array_equal(local_binary_pattern_batch(X, 32, 3, method="ror"),
                                  np.min(rotations, axis=0))
