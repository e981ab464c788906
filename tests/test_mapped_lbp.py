"""Mapped LBP: code distances, the MDS embedding, invariance, conformance."""

import joblib
import numpy as np
import pytest
import threadpoolctl
from sklearn.utils.estimator_checks import parametrize_with_checks

from fersk import MDSMappedLBP
from fersk.lbp import local_binary_pattern_batch
from fersk.mapped_lbp import lbp_code_distances


def test_emd_distances_follow_bit_geometry():
    D = lbp_code_distances(8)
    assert D.shape == (256, 256)
    np.testing.assert_array_equal(D, D.T)
    assert np.all(np.diag(D) == 0) and np.all(D[~np.eye(256, dtype=bool)] > 0)
    # moving one bit k places round the circle costs k (cyclic)
    assert [D[1, 1 << k] for k in range(1, 8)] == [1, 2, 3, 4, 3, 2, 1]
    # rotating both codes keeps their distance
    rot = lambda c: ((c << 1) | (c >> 7)) & 0xFF  # noqa: E731
    a, b = 0b00010110, 0b11000001
    assert D[a, b] == D[rot(a), rot(b)]
    # a pair of bits shifted by one place is close; moved half-way round, far
    assert D[0b11, 0b110] == 2 and D[0b11, 0b110000] == 6  # 0->5, 1->4
    # triangle inequality holds for this transport distance
    i, j, k = np.random.RandomState(0).randint(0, 256, (3, 2000))
    assert np.all(D[i, k] <= D[i, j] + D[j, k] + 1e-12)
    H = lbp_code_distances(8, "hamming")
    assert H[0b1011, 0b0110] == 3


def test_embedding_preserves_code_distances():
    m = MDSMappedLBP(random_state=0).fit(np.zeros((1, 8, 8), np.uint8))
    assert m.embedding_.shape == (256, 3) and m.embedding_.dtype == np.float32
    assert 0 <= m.embedding_.min() and m.embedding_.max() <= 1
    assert m.distance_correlation_ > 0.9
    assert 0 <= m.stress_ < 0.3
    # more dimensions fit better
    m5 = MDSMappedLBP(n_components=5, random_state=0).fit(np.zeros((1, 8, 8)))
    assert m5.distance_correlation_ > m.distance_correlation_


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_embedding_does_not_depend_on_blas_threads(threads):
    # SMACOF's numbers moved with the BLAS thread count, so a Dask worker
    # (OMP_NUM_THREADS=1 by default) and the client fitted other embeddings.
    X = np.zeros((1, 8, 8))
    reference = MDSMappedLBP(random_state=0).fit(X)
    with threadpoolctl.threadpool_limits(limits=threads):
        m = MDSMappedLBP(random_state=0).fit(X)
    np.testing.assert_array_equal(m.embedding_, reference.embedding_)
    assert m.stress_ == reference.stress_


def test_transform_looks_up_codes_on_real_faces(fer_small):
    X = fer_small[0][:12]
    m = MDSMappedLBP(random_state=0).fit(X)
    out = m.transform(X)
    assert out.shape == (12, 48, 48, 3) and out.dtype == np.float32
    codes = local_binary_pattern_batch(X, 8, 1, interpolation="nearest", padding="edge")
    np.testing.assert_array_equal(out, m.embedding_[codes])
    # flattened rows in -> flattened rows out
    flat = MDSMappedLBP(random_state=0).fit(X.reshape(12, -1)).transform(X.reshape(12, -1))
    np.testing.assert_array_equal(flat, out.reshape(12, -1))


def test_photometric_invariance_on_real_faces(fer_small):
    X = fer_small[0][::5]
    m = MDSMappedLBP(random_state=0).fit(X)
    for f in (
        lambda x: x.astype(np.float64) ** 2 / 255.0 + 3,  # gamma and offset
        lambda x: np.log1p(x.astype(np.float64)),
        lambda x: (x.astype(np.int32) * 3 + 1000).astype(np.uint16),
    ):
        np.testing.assert_array_equal(m.transform(f(X)), m.transform(X))
    # a non-monotone map does change it
    assert not np.array_equal(m.transform(255 - X), m.transform(X))


def test_params_validation_and_persistence(tmp_path, fer_small):
    X = fer_small[0][:4]
    with pytest.raises(ValueError, match="P"):
        MDSMappedLBP(P=12).fit(X)
    with pytest.raises(ValueError, match="distance"):
        MDSMappedLBP(distance="cosine").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        MDSMappedLBP(P=2, n_components=4).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        MDSMappedLBP().fit(np.full((2, 8, 8), np.nan))
    m = MDSMappedLBP(random_state=0).fit(X)
    joblib.dump(m, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").transform(X), m.transform(X))
    # deterministic for a given random_state
    np.testing.assert_array_equal(MDSMappedLBP(random_state=0).fit(X).embedding_, m.embedding_)


@parametrize_with_checks([MDSMappedLBP(P=4, random_state=0, image_shape=(1, -1))])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("change", [{"P": 6}, {"n_components": 2}])
def test_settings_changed_after_fit_are_refused(change):
    # The embedding has a row per code of the fitted P: P=6 after fitting P=8
    # looked up rows 0..63 of the 256 without a word.
    X = np.random.RandomState(0).randint(0, 256, (2, 10, 10)).astype(np.uint8)
    est = MDSMappedLBP(random_state=0, max_iter=20).fit(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"{next(iter(change))} changed since fit"):
        est.transform(X)
    assert est.fit(X).transform(X).shape[-1] == est.n_components


@pytest.mark.parametrize("change", [{"distance": "hamming"}, {"unmatched_cost": 1.0}])
def test_distance_changed_after_fit_is_refused(change):
    """A ``distance`` or ``unmatched_cost`` changed by ``set_params`` after
    fit is refused like ``P``: transform looked codes up in the embedding of
    the fitted distance, so the output did not change and nothing said so."""
    X = np.random.RandomState(0).randint(0, 256, (2, 10, 10)).astype(np.uint8)
    est = MDSMappedLBP(P=6, random_state=0, max_iter=20).fit(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"MDSMappedLBP: {next(iter(change))} changed since fit"):
        est.transform(X)
    refitted = est.fit(X)
    assert (refitted.distance_, refitted.unmatched_cost_) == refitted._distance_settings()
    refitted.transform(X)


def test_same_code_distances_are_no_change_and_older_models_still_transform():
    """Settings that give the fitted code distances are no change (the
    default ``unmatched_cost`` is ``P / 4``; 'hamming' ignores it), and a
    model fitted before ``distance_`` and ``unmatched_cost_`` were recorded
    (an older model folder or pickle) still transforms, unchecked.  A model
    folder stores the two attributes."""
    from fersk.pretrained import _saved_state

    X = np.random.RandomState(0).randint(0, 256, (2, 10, 10)).astype(np.uint8)
    est = MDSMappedLBP(P=8, random_state=0, max_iter=20).fit(X)
    before = est.transform(X)
    np.testing.assert_array_equal(est.set_params(unmatched_cost=2.0).transform(X), before)
    ham = MDSMappedLBP(P=6, distance="hamming", random_state=0, max_iter=20).fit(X)
    assert ham.unmatched_cost_ is None
    ham_before = ham.transform(X)
    np.testing.assert_array_equal(ham.set_params(unmatched_cost=5.0).transform(X), ham_before)
    assert _saved_state(est)["distance_"] == "emd" and _saved_state(est)["unmatched_cost_"] == 2.0
    del est.distance_, est.unmatched_cost_
    np.testing.assert_array_equal(est.transform(X), before)


def test_one_point_codes_have_a_faithful_embedding():
    """P=1 (two codes, one distance) gave a NaN distance_correlation_ with
    NumPy's divide warnings; one distance is kept exactly."""
    import warnings

    X = np.random.RandomState(0).randint(0, 256, (3, 8, 8)).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        mapped = MDSMappedLBP(P=1, R=1, n_components=1).fit(X)
    assert mapped.distance_correlation_ == 1.0
    assert mapped.transform(X).shape == (3, 8, 8, 1)
