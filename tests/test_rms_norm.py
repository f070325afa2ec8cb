"""RMSNormalizer and rms_norm: formula, sparse input, invariances."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from sknorm import RMSNormalizer, rms_norm

SPARSE = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array]


def _rms_reference(X, eps):
    X = np.asarray(X, dtype=np.longdouble)
    ms = np.nanmean(X * X, axis=1, keepdims=True)
    return (X / np.sqrt(ms + np.longdouble(eps))).astype(np.float64)


@pytest.mark.parametrize("eps", [1e-5, 0.0, 2.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_formula(eps, dtype, rng):
    X = rng.normal(2, 3, size=(30, 9)).astype(dtype)
    Z = RMSNormalizer(eps=eps).fit_transform(X)
    assert Z.dtype == dtype
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    assert_allclose(Z, _rms_reference(X, eps), rtol=rtol)
    Z, s = rms_norm(X, eps=eps, return_stats=True)
    assert_allclose(s, np.sqrt((X.astype(float) ** 2).mean(axis=1)), rtol=rtol)


def test_scale_invariant_not_shift_invariant(rng):
    X = rng.normal(1, 1, size=(10, 6))
    a = rng.uniform(0.5, 20, size=(10, 1))
    assert_allclose(rms_norm(a * X, eps=0), rms_norm(X, eps=0), rtol=1e-13)
    assert not np.allclose(rms_norm(X + 3, eps=0), rms_norm(X, eps=0))


def test_zero_rows_stay_zero():
    X = np.zeros((2, 3))
    assert_array_equal(rms_norm(X), X)
    assert_array_equal(rms_norm(X, eps=0), X)


@pytest.mark.parametrize("container", SPARSE)
@pytest.mark.parametrize("keep_stats", [False, True])
def test_sparse_stays_sparse_and_equals_dense(container, keep_stats, rng):
    dense = sp.random(20, 12, density=0.3, random_state=1).toarray() * 7
    dense[3] = 0.0
    X = container(dense)
    est = RMSNormalizer(keep_stats=keep_stats)
    Y = est.fit_transform(X)
    assert sp.issparse(Y)
    assert Y.format == X.format
    assert isinstance(Y, sp.sparray) == isinstance(X, sp.sparray)
    Y_dense = RMSNormalizer(keep_stats=keep_stats).fit_transform(dense)
    assert_allclose(Y.toarray(), Y_dense, rtol=1e-14)
    if keep_stats:
        X_back = est.inverse_transform(Y)
        assert sp.issparse(X_back)
        assert_allclose(X_back.toarray(), dense, rtol=1e-13)
    # input untouched
    assert_array_equal(X.toarray(), dense)


def test_sparse_nan_ignored_in_stats():
    dense = np.array([[3.0, 0.0, np.nan, 4.0], [0.0, 0.0, 0.0, 2.0]])
    Z = rms_norm(sp.csr_matrix(dense), eps=0).toarray()
    assert_allclose(Z, _rms_reference(dense, 0.0))
    assert np.isnan(Z[0, 2])


def test_sparse_extreme_magnitudes(rng):
    dense = sp.random(5, 10, density=0.5, random_state=2).toarray() + np.eye(5, 10)
    for magnitude in (1e200, 1e-200):
        Z = rms_norm(sp.csr_matrix(dense * magnitude), eps=0).toarray()
        assert_allclose(Z, rms_norm(dense, eps=0), rtol=1e-12)


def test_sparse_inf_rejected():
    X = sp.csr_matrix(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="infinity"):
        rms_norm(X)
    with pytest.raises(ValueError, match="inf"):
        RMSNormalizer().fit(X)


def test_sparse_affine_rejected():
    X = sp.random(10, 4, density=0.5, format="csr", random_state=0)
    with pytest.raises(ValueError, match="sparse.*affine=False"):
        RMSNormalizer(affine=True).fit(X)


def test_sparse_copy_false():
    X = sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 2.0]]))
    Z = RMSNormalizer(copy=False).fit(X).transform(X)
    assert_allclose(Z.toarray(), rms_norm(X.toarray()))


def test_keep_stats_names_and_inverse(rng):
    X = rng.normal(size=(8, 3))
    est = RMSNormalizer(keep_stats=True, affine=True).fit(X)
    assert_array_equal(est.get_feature_names_out(), ["x0", "x1", "x2", "sample_scale"])
    assert_allclose(est.inverse_transform(est.transform(X)), X, rtol=1e-12)


# -- one semantics on every path (issue 11) ---------------------------------------
@pytest.mark.parametrize("container", [np.asarray, sp.csr_matrix, sp.csc_array])
def test_subnormal_and_huge_rows(container):
    # The RMS does not depend on the scale: [1, 3, 5, 7] * 2**-1074 and
    # * 2**1000 give [1, 3, 5, 7] / sqrt(21) (the mean square is 84 / 4).
    X = np.array([[1.0, 3, 5, 7]]) * np.array([[2.0**-1074], [2.0**1000]])
    Z = RMSNormalizer(eps=0).fit_transform(container(X))
    Z = Z.toarray() if sp.issparse(Z) else Z
    expected = np.array([1, 3, 5, 7]) / np.sqrt(21)
    assert_allclose(Z, [expected, expected], rtol=1e-15)
    _, s = rms_norm(container(X), eps=0, return_stats=True)
    assert_allclose(s, np.sqrt(21) * X[:, 0], rtol=1e-15)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array])
def test_sparse_float32_kept_stats_stay_float32(container, rng):
    # Regression: keep_stats turned float32 sparse input into float64.
    X = rng.normal(size=(10, 5)).astype(np.float32)
    X[X < 0] = 0
    est = RMSNormalizer(keep_stats=True)
    Y = est.fit_transform(container(X))
    assert sp.issparse(Y) and Y.dtype == np.float32
    assert_allclose(Y.toarray(), est.fit_transform(X), rtol=1e-6)
    X64 = X.astype(np.float64)
    assert_allclose(Y.toarray()[:, -1], np.sqrt((X64**2).mean(axis=1)), rtol=1e-6)


def test_sparse_inverse_uses_the_affine_map(rng):
    # Regression: the inverse of sparse output ignored gain_ and bias_.
    X = rng.normal(3, 2, size=(20, 6))
    est = RMSNormalizer(affine=True, keep_stats=True).fit(X)
    back = est.inverse_transform(sp.csr_matrix(est.transform(X)))
    assert_allclose(back, X, rtol=1e-13)
    # Without an affine map the inverse of sparse output stays sparse.
    est = RMSNormalizer(keep_stats=True).fit(sp.csr_matrix(X))
    back = est.inverse_transform(est.transform(sp.csr_matrix(X)))
    assert sp.issparse(back)
    assert_allclose(back.toarray(), X, rtol=1e-14)


def test_sparse_group_remainder_drop_has_the_dense_columns(rng):
    # Regression: 4 columns for sparse input, 2 for dense and in
    # get_feature_names_out.
    from sknorm import GroupNormalizer

    X = rng.normal(size=(6, 4))
    est = GroupNormalizer([[0, 2]], center=None, remainder="drop", keep_stats=True)
    dense = est.fit_transform(X)
    Y = est.fit(sp.csr_matrix(X)).transform(sp.csr_matrix(X))
    assert Y.shape == dense.shape == (6, 3)
    assert len(est.get_feature_names_out()) == 3
    assert_allclose(Y.toarray(), dense, rtol=1e-15)
    ms = (X[:, [0, 2]] ** 2).mean(axis=1, keepdims=True)
    assert_allclose(dense[:, :2], X[:, [0, 2]] / np.sqrt(ms + 1e-5), rtol=1e-14)
