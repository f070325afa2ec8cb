"""LayerNormalizer and layer_norm: semantics, numerics, inputs, affine, stats."""

from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError

from sknorm import LayerNormalizer, RMSNormalizer, layer_norm

CENTERS = ["mean", "median", None]
SCALES = ["std", "mad", "iqr", None]


def test_seed_example():
    # The example that motivates the package: shifted and scaled rows collapse.
    X = np.array([[1, 2, 3, 4], [4, 5, 6, 7], [2, 4, 6, 8]], dtype=float)
    Z = LayerNormalizer(eps=0).fit_transform(X)
    expected = (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25)
    for row in Z:
        assert_allclose(row, expected, rtol=1e-15)
    assert_allclose(expected, [-1.342, -0.447, 0.447, 1.342], atol=5e-4)
    # With the default eps the first two rows are still identical.
    Z = LayerNormalizer().fit_transform(X)
    assert_array_equal(Z[0], Z[1])
    assert_allclose(Z[0], (X[0] - 2.5) / np.sqrt(1.25 + 1e-5), rtol=1e-15)


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_reference(center, scale, dtype, reference, rng):
    X = rng.normal(3, 2, size=(40, 7)) * rng.uniform(0.5, 5, size=(40, 1))
    X = X.astype(dtype)
    Z = LayerNormalizer(center=center, scale=scale).fit_transform(X)
    assert Z.dtype == dtype
    Z_ref, _, _ = reference(X, center, scale, 1e-5)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert_allclose(Z, Z_ref.astype(np.float64), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("scale", SCALES)
def test_function_equals_estimator_and_stats(center, scale, reference, rng):
    X = rng.normal(size=(25, 6))
    Z, c, s = layer_norm(X, center=center, scale=scale, return_stats=True)
    assert_array_equal(Z, LayerNormalizer(center=center, scale=scale).fit_transform(X))
    _, C_ref, S_ref = reference(X, center, scale, 1e-5)
    assert_allclose(c, C_ref[:, 0].astype(float), rtol=1e-12, atol=1e-14)
    assert_allclose(s, S_ref[:, 0].astype(float), rtol=1e-12)


def test_robust_scales_consistent_with_std_under_normality(rng):
    X = rng.normal(0, 3.0, size=(4, 40_000))
    _, _, s_std = layer_norm(X, return_stats=True)
    for scale in ("mad", "iqr"):
        _, _, s = layer_norm(X, center="median", scale=scale, return_stats=True)
        assert_allclose(s, s_std, rtol=0.03)
        assert_allclose(s, 3.0, rtol=0.03)


def test_center_none_std_is_rms(rng):
    X = rng.normal(1, 2, size=(10, 5))
    expected = X / np.sqrt((X**2).mean(axis=1, keepdims=True) + 1e-5)
    assert_allclose(LayerNormalizer(center=None).fit_transform(X), expected)
    assert_allclose(RMSNormalizer().fit_transform(X), expected)


def test_biased_variance_and_eps_under_sqrt():
    X = np.array([[0.0, 2.0]])
    # biased variance = 1; eps added under the square root
    assert_allclose(layer_norm(X, eps=3.0), [[-0.5, 0.5]])


@pytest.mark.parametrize("eps", [1e-5, 0.0])
@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("value", [0.0, 0.1, 7.3, -1e8, 1e200])
def test_constant_rows_give_exact_zeros(eps, center, value):
    X = np.full((3, 7), value)
    Z = layer_norm(X, center=center, eps=eps)
    assert_array_equal(Z, np.zeros_like(X))


@pytest.mark.parametrize(
    "offset, noise", [(1e8, 1e-3), (1e12, 1.0), (-1e15, 10.0), (1e4, 1e-9)]
)
def test_offset_rows_match_extended_precision(offset, noise, reference, rng):
    X = offset + rng.normal(0, noise, size=(20, 64))
    Z, c, s = layer_norm(X, eps=0, return_stats=True)
    Z_ref, C_ref, S_ref = reference(X, eps=0)
    # error relative to the row's own spread (the output is O(1))
    assert np.abs(Z - Z_ref.astype(float)).max() <= 1e-13
    assert_allclose(s, S_ref[:, 0].astype(float), rtol=1e-12)
    assert_allclose(c, C_ref[:, 0].astype(float), rtol=1e-15)


@pytest.mark.parametrize("magnitude", [1e200, 1e-200, 1e300, 1e-300])
def test_extreme_magnitudes_do_not_overflow(magnitude, rng):
    base = rng.normal(size=(5, 16))
    X = base * magnitude
    Z = layer_norm(X, eps=0)
    assert np.isfinite(Z).all()
    assert_allclose(Z, layer_norm(base, eps=0), rtol=1e-12, atol=1e-13)
    # RMS too
    assert_allclose(
        layer_norm(X, center=None, eps=0), layer_norm(base, center=None, eps=0)
    )


def test_large_values_with_eps_are_finite():
    X = np.array([[1e200, -1e200, 3e200], [1e307, -1e307, 0.0]])
    Z, _, s = layer_norm(X, return_stats=True)
    assert np.isfinite(Z).all() and np.isfinite(s).all()


def test_nan_ignored_in_stats_and_kept(reference, rng):
    X = rng.normal(size=(30, 8))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[3] = np.nan  # an all-NaN row
    X[4, 0] = np.nan  # NaN at the pivot position
    for center in CENTERS:
        for scale in SCALES:
            Z = LayerNormalizer(center=center, scale=scale).fit_transform(X)
            assert_array_equal(np.isnan(Z), np.isnan(X))
            Z_ref, _, _ = reference(X, center, scale, 1e-5)
            assert_allclose(Z, Z_ref.astype(float), rtol=1e-12, atol=1e-14)


def test_nan_rows_no_warning(recwarn):
    X = np.array([[np.nan, np.nan], [1.0, 2.0]])
    layer_norm(X)
    layer_norm(X, center="median", scale="iqr")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("center", CENTERS)
def test_inf_rejected(value, center):
    X = np.ones((4, 3))
    X[1, 2] = value
    X[0] = [1, 2, 3]
    est = LayerNormalizer(center=center)
    with pytest.raises(ValueError, match="infinity"):
        est.fit(X)
    with pytest.raises(ValueError, match="infinity"):
        est.fit(np.ones((2, 3))).transform(X)
    with pytest.raises(ValueError, match="inf"):
        layer_norm(X, center=center)


def test_inf_rejected_in_nan_row():
    X = np.array([[np.nan, np.inf, 1.0]])
    with pytest.raises(ValueError, match="infinity"):
        layer_norm(X)


@pytest.mark.parametrize(
    "X, match",
    [
        ([["a", "b"], ["c", "d"]], "convert|string"),
        (np.empty((0, 3)), "0 sample"),
        (np.empty((3, 0)), "0 feature"),
        ([1.0, 2.0, 3.0], "2D array"),
    ],
)
def test_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        LayerNormalizer().fit(X)
    with pytest.raises(ValueError, match=match):
        layer_norm(X)


def test_wrong_number_of_features():
    est = LayerNormalizer().fit(np.ones((3, 4)))
    with pytest.raises(ValueError, match="4 features"):
        est.transform(np.ones((3, 5)))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"center": "mode"}, ValueError, "center='mode'"),
        ({"scale": "var"}, ValueError, "scale='var'"),
        ({"eps": -1.0}, ValueError, "eps=-1.0"),
        ({"eps": "small"}, TypeError, "eps='small'"),
        ({"eps": np.nan}, ValueError, "eps=nan"),
        ({"affine": "yes"}, TypeError, "affine='yes'"),
        ({"keep_stats": 1}, TypeError, "keep_stats=1"),
        ({"copy": None}, TypeError, "copy=None"),
    ],
)
def test_invalid_parameters(params, error, match):
    X = np.ones((3, 3))
    with pytest.raises(error, match=match):
        LayerNormalizer(**params).fit(X)


def test_invalid_function_parameters():
    with pytest.raises(ValueError, match="center='x'"):
        layer_norm(np.ones((2, 2)), center="x")


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_rejected_when_centering(fmt):
    X = sp.random(5, 4, density=0.5, format=fmt, random_state=0)
    est = LayerNormalizer()
    for call in (est.fit, est.fit_transform, lambda X: layer_norm(X)):
        with pytest.raises(ValueError, match="sparse.*center=None"):
            call(X)
    est.fit(X.toarray())
    with pytest.raises(ValueError, match="sparse.*center=None"):
        est.transform(X)


def test_dtypes():
    X = np.arange(12).reshape(3, 4)
    assert LayerNormalizer().fit_transform(X).dtype == np.float64
    assert LayerNormalizer().fit_transform(X.astype(np.float32)).dtype == np.float32
    ln = LayerNormalizer(affine=True, keep_stats=True).fit(X.astype(np.float32))
    Y = ln.transform(X.astype(np.float32))
    assert Y.dtype == np.float32
    assert ln.inverse_transform(Y).dtype == np.float32


def test_float32_accuracy(rng):
    X = (rng.normal(size=(200, 300)) * 5 + 100).astype(np.float32)
    Z32 = layer_norm(X)
    Z64 = layer_norm(X.astype(np.float64))
    assert np.abs(Z32 - Z64).max() <= 1e-6 * 4


def test_copy_semantics(rng):
    X = rng.normal(size=(10, 4))
    X0 = X.copy()
    Z = LayerNormalizer().fit_transform(X)
    assert_array_equal(X, X0)
    out = LayerNormalizer(copy=False).fit(X).transform(X)
    assert out is X
    assert_allclose(X, Z)
    X = X0.copy()
    assert LayerNormalizer().fit(X).transform(X, copy=False) is X
    X = X0.copy()
    assert layer_norm(X, copy=False) is X
    assert_allclose(X, Z)


def test_copy_false_read_only_input_is_copied(rng):
    X = rng.normal(size=(5, 3))
    X.setflags(write=False)
    Z = layer_norm(X, copy=False)
    assert Z is not X
    assert_allclose(Z, layer_norm(X.copy()))


def test_stateless_transform_without_fit_and_affine_requires_fit():
    X = np.array([[1.0, 2.0, 4.0]])
    assert_allclose(LayerNormalizer().transform(X), layer_norm(X))
    with pytest.raises(NotFittedError):
        LayerNormalizer(affine=True).transform(X)


# -- affine ------------------------------------------------------------------
def _wls(z, x, w):
    """Weighted least-squares slope and intercept of x on z (normal equations)."""
    A = np.column_stack([z, np.ones_like(z)]) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(A, x * np.sqrt(w), rcond=None)
    return coef


def test_affine_is_least_squares_regression(rng):
    X = rng.normal(size=(100, 5)) * [1, 2, 3, 4, 5] + [0, 10, -3, 2, 1]
    w = rng.uniform(0.1, 3, size=100)
    ln = LayerNormalizer(affine=True).fit(X, sample_weight=w)
    Z = layer_norm(X)
    for j in range(5):
        slope, intercept = _wls(Z[:, j], X[:, j], w)
        assert_allclose(ln.gain_[j], slope, rtol=1e-10)
        assert_allclose(ln.bias_[j], intercept, rtol=1e-10, atol=1e-12)
    assert_allclose(ln.transform(X), ln.gain_ * Z + ln.bias_, rtol=1e-13)


def test_affine_recovers_dataset_scale_and_offset(rng):
    # Rows share a common per-feature pattern: gain/bias bring back its scale.
    pattern = np.array([1.0, 3.0, 6.0, 10.0])
    X = 50 + 7 * (pattern + rng.normal(0, 0.01, size=(200, 4)))
    Y = LayerNormalizer(affine=True).fit_transform(X)
    assert_allclose(Y.mean(axis=0), X.mean(axis=0), rtol=1e-10)


def test_affine_ignores_nan_per_feature(rng):
    X = rng.normal(size=(60, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    ln = LayerNormalizer(affine=True).fit(X)
    Z = layer_norm(X)
    for j in range(4):
        ok = ~np.isnan(X[:, j])
        slope, intercept = _wls(Z[ok, j], X[ok, j], np.ones(ok.sum()))
        assert_allclose([ln.gain_[j], ln.bias_[j]], [slope, intercept], rtol=1e-10)


def test_affine_degenerate_fallback():
    # Constant rows: every z is 0, the slope is undefined.
    X = np.array([[1.0, 1.0, 1.0], [5.0, 5.0, 5.0]])
    ln = LayerNormalizer(affine=True).fit(X)
    assert_array_equal(ln.gain_, [1.0, 1.0, 1.0])
    assert_allclose(ln.bias_, X.mean(axis=0))
    # One sample: also degenerate, finite.
    ln = LayerNormalizer(affine=True).fit([[1.0, 2.0, 4.0]])
    assert np.isfinite(ln.gain_).all() and np.isfinite(ln.bias_).all()
    assert_array_equal(ln.gain_, 1.0)
    # An all-NaN feature: gain 1, bias 0.
    X = np.array([[1.0, 2.0, np.nan], [3.0, 1.0, np.nan], [0.0, 5.0, np.nan]])
    ln = LayerNormalizer(affine=True).fit(X)
    assert ln.gain_[2] == 1.0 and ln.bias_[2] == 0.0


@pytest.mark.parametrize("Estimator", [LayerNormalizer, RMSNormalizer])
def test_partial_fit_equals_fit(Estimator, rng):
    X = rng.normal(size=(503, 6)) * rng.uniform(1, 3, size=6) + rng.normal(size=6)
    X[rng.random(X.shape) < 0.05] = np.nan
    w = rng.uniform(0, 2, size=503)
    full = Estimator(affine=True).fit(X, sample_weight=w)
    inc = Estimator(affine=True)
    cuts = np.sort(rng.choice(np.arange(1, 503), size=9, replace=False))
    for part in np.split(np.arange(503), cuts):
        inc.partial_fit(X[part], sample_weight=w[part])
    assert inc.n_samples_seen_ == full.n_samples_seen_ == 503
    assert_allclose(inc.gain_, full.gain_, rtol=1e-12)
    assert_allclose(inc.bias_, full.bias_, rtol=1e-12, atol=1e-14)


def _exact_wls(z, x, w):
    """Weighted least-squares slope and intercept of x on z, in exact rationals."""
    z, x, w = ([Fraction(float(v)) for v in a] for a in (z, x, w))
    total = sum(w)
    mz = sum(wi * zi for wi, zi in zip(w, z, strict=True)) / total
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / total
    szz = sum(wi * (zi - mz) ** 2 for wi, zi in zip(w, z, strict=True))
    szx = sum(wi * (zi - mz) * (xi - mx) for wi, zi, xi in zip(w, z, x, strict=True))
    slope = szx / szz
    return float(slope), float(mx - slope * mz), float(abs(mx) + abs(slope * mz))


@pytest.mark.parametrize("center, scale", [("mean", None), ("median", "mad")])
def test_affine_huge_values_exact_and_mergeable(center, scale, rng):
    # Normalized values near 1e300 (no scale, or a MAD of 1e-300 in some rows):
    # z*z and z*x overflow unless the moments are rescaled. Regression test for
    # gain_/bias_ that were NaN.
    X = rng.normal(size=(40, 5)) * 1e300
    X[::4] = rng.normal(size=(10, 5))  # ordinary rows mixed in
    # MAD 1e-300 * 1.4826 in these rows: z is about x / sqrt(eps).
    X[1::8, :3] = [0.0, 0.0, 1e-300]
    X[1::8, 3:] = np.abs(X[1::8, 3:])
    w = rng.uniform(0.5, 2.0, size=40)
    kwargs = {"center": center, "scale": scale, "eps": 1e-5}
    ln = LayerNormalizer(affine=True, **kwargs).fit(X, sample_weight=w)
    assert np.isfinite(ln.gain_).all() and np.isfinite(ln.bias_).all()
    Z = layer_norm(X, **kwargs)
    assert np.abs(Z).max() > 1e300
    for j in range(5):
        slope, intercept, size = _exact_wls(Z[:, j], X[:, j], w)
        assert_allclose(ln.gain_[j], slope, rtol=1e-12)
        assert_allclose(ln.bias_[j], intercept, rtol=1e-12, atol=1e-12 * size)
    Y = ln.transform(X)
    assert np.isfinite(Y).all()
    # partial_fit over chunks (single rows too, whose moments only overflow
    # when merged) equals one fit.
    for cuts in ([1, 2, 3, 5, 8, 13, 21, 34], [20], list(range(1, 40))):
        inc = LayerNormalizer(affine=True, **kwargs)
        for part in np.split(np.arange(40), cuts):
            inc.partial_fit(X[part], sample_weight=w[part])
        assert_allclose(inc.gain_, ln.gain_, rtol=1e-12)
        assert_allclose(inc.bias_, ln.bias_, rtol=1e-12, atol=1e-12 * np.abs(X).max())


def test_integer_weights_equal_repetition(rng):
    X = rng.normal(size=(30, 4)) + [0, 1, 2, 3]
    w = rng.integers(0, 4, size=30)
    a = LayerNormalizer(affine=True).fit(X, sample_weight=w)
    b = LayerNormalizer(affine=True).fit(np.repeat(X, w, axis=0))
    assert_allclose(a.gain_, b.gain_, rtol=1e-12)
    assert_allclose(a.bias_, b.bias_, rtol=1e-12)


def test_fit_resets_partial_fit(rng):
    X = rng.normal(size=(20, 3))
    ln = LayerNormalizer(affine=True).partial_fit(X + 100)
    ln.fit(X)
    ref = LayerNormalizer(affine=True).fit(X)
    assert ln.n_samples_seen_ == 20
    assert_allclose(ln.gain_, ref.gain_)


@pytest.mark.parametrize(
    "w, match",
    [([1.0, 2.0], "shape"), ([1.0, -1.0, 1.0], "negative"), ([0, 0, 0], "zero")],
)
def test_bad_sample_weight(w, match):
    with pytest.raises(ValueError, match=match):
        LayerNormalizer(affine=True).fit(np.eye(3), sample_weight=w)


# -- keep_stats and inverse ----------------------------------------------------
@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("affine", [False, True])
def test_keep_stats_inverse_exact(center, scale, affine, rng):
    X = rng.normal(5, 3, size=(50, 6)) * rng.uniform(0.1, 10, size=(50, 1))
    X[rng.random(X.shape) < 0.05] = np.nan
    ln = LayerNormalizer(center=center, scale=scale, affine=affine, keep_stats=True)
    Y = ln.fit_transform(X)
    n_stats = (center is not None) + (scale is not None)
    assert Y.shape == (50, 6 + n_stats)
    names = ln.get_feature_names_out()
    expected = [f"x{j}" for j in range(6)]
    expected += ["sample_center"] * (center is not None)
    expected += ["sample_scale"] * (scale is not None)
    assert_array_equal(names, expected)
    assert_allclose(ln.inverse_transform(Y), X, rtol=1e-12, atol=1e-12)


def test_kept_stats_are_the_row_statistics(reference, rng):
    X = rng.normal(5, 3, size=(20, 6))
    Y = LayerNormalizer(keep_stats=True).fit_transform(X)
    _, C, S = reference(X)
    assert_allclose(Y[:, -2], C[:, 0].astype(float), rtol=1e-14)
    assert_allclose(Y[:, -1], S[:, 0].astype(float), rtol=1e-13)


def test_inverse_without_keep_stats_names_keep_stats():
    # Like sklearn estimators that cannot invert, the method is unavailable,
    # and the error says which parameter makes it available.
    ln = LayerNormalizer().fit(np.eye(3))
    assert not hasattr(ln, "inverse_transform")
    with pytest.raises(AttributeError, match="no attribute 'inverse_transform'") as e:
        ln.inverse_transform(np.eye(3))
    assert "keep_stats=True" in str(e.value.__cause__)
    assert hasattr(LayerNormalizer(keep_stats=True), "inverse_transform")


def test_inverse_wrong_width():
    ln = LayerNormalizer(keep_stats=True).fit(np.eye(3))
    with pytest.raises(ValueError, match="expects 5"):
        ln.inverse_transform(np.eye(3))


def test_feature_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 5.0], "c": [0.0, 1.0]})
    ln = LayerNormalizer(keep_stats=True).fit(df)
    assert_array_equal(ln.feature_names_in_, ["a", "b", "c"])
    assert_array_equal(
        ln.get_feature_names_out(), ["a", "b", "c", "sample_center", "sample_scale"]
    )
    with pytest.raises(ValueError, match="input_features"):
        ln.get_feature_names_out(["x", "y", "z"])
    clash = pd.DataFrame({"sample_center": [1.0], "b": [2.0]})
    with pytest.raises(ValueError, match="clash"):
        LayerNormalizer(keep_stats=True).fit(clash).get_feature_names_out()


# -- one semantics at every magnitude (issue 11) --------------------------------
def _exact_std(row):
    """Population standard deviation of a float64 row, correctly rounded."""
    from decimal import Decimal, localcontext

    xs = [Fraction(float(v)) for v in row]
    mean = sum(xs) / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / len(xs)
    with localcontext() as ctx:
        ctx.prec = 40
        return float((Decimal(var.numerator) / Decimal(var.denominator)).sqrt())


@pytest.mark.parametrize("size", [1e-300, 1e-160, 1e-310, 1e150, 1e300])
def test_kept_scale_exact_at_any_magnitude(size, rng):
    # Regression: the Array API path kept a scale of 0 near 1e-300 and one
    # 1e-4 off near 1e-160; every path follows the same rescaled rule.
    X = rng.normal(size=(4, 9)) * size
    Y = LayerNormalizer(keep_stats=True).fit_transform(X)
    for row, kept in zip(X, Y[:, -1], strict=True):
        assert_allclose(kept, _exact_std(row), rtol=1e-14)


def test_eps_0_huge_row():
    # Regression: NaN on the Array API path (the sum of squares overflows).
    X = np.array([[1e308, -1e308, 1.5e308, 5e307]])
    mean = sum(Fraction(v) for v in X[0]) / 4
    sd = _exact_std(X[0])
    expected = [float((Fraction(v) - mean) / Fraction(sd)) for v in X[0]]
    assert_allclose(layer_norm(X, eps=0)[0], expected, rtol=1e-15)
    assert_allclose(LayerNormalizer(eps=0).fit_transform(X)[0], expected, rtol=1e-15)


def test_subnormal_row_is_the_layer_norm_of_its_integers():
    # [1, 3, 5, 7] * 2**-1074: the layer norm does not depend on the scale.
    X = np.array([[5e-324, 1.5e-323, 2.5e-323, 3.5e-323]])
    expected = (np.array([1, 3, 5, 7]) - 4) / np.sqrt(5)
    assert_allclose(LayerNormalizer(eps=0).fit_transform(X)[0], expected, rtol=1e-15)
    Z, c, s = layer_norm(X, eps=0, return_stats=True)
    assert_allclose(Z[0], expected, rtol=1e-15)
    assert c[0] == 4 * 5e-324 and s[0] == np.sqrt(5) * 5e-324


def test_inverse_of_a_sparse_matrix_uses_center_and_affine(rng):
    # Regression: the inverse of sparse output ignored the center and the
    # affine map (max error 11).
    X = rng.normal(3, 2, size=(20, 6))
    for est in (
        LayerNormalizer(keep_stats=True),
        LayerNormalizer(affine=True, keep_stats=True),
        LayerNormalizer(center="median", scale="mad", keep_stats=True),
    ):
        Y = est.fit(X).transform(X)
        for container in (sp.csr_matrix, sp.csc_array):
            back = est.inverse_transform(container(Y))
            assert_allclose(back, X, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("center", ["mean", "median", None])
@pytest.mark.parametrize("nan", [False, True])
def test_iqr_is_that_of_the_data_next_to_a_huge_center(center, nan):
    # Found by the thorough property run: about the rounded mean -1.8e107 the
    # deviations lose an IQR of 1e88 (all of them round alike), which set off
    # the zero-spread fallback (a scale of 3.6e107). The quartiles of
    # [-9e107, -1e88, 0, 0, 0] sit at whole positions: q25 = -1e88, q75 = 0.
    row = [-1e88, -9e107, 0.0, 0.0, 0.0] + ([np.nan] if nan else [])
    est = LayerNormalizer(center=center, scale="iqr", eps=0.0, keep_stats=True)
    s = est.fit_transform(np.array([row]))[0, -1]
    assert s == float(Fraction(1e88) / Fraction(1.3489795003921634))


@pytest.mark.parametrize("scale", ["mad", "iqr"])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_zero_robust_scale_falls_back_to_mean_absolute_deviation(scale, eps):
    # More than half of each row ties, so its MAD and IQR are 0; the scale is
    # sqrt(pi / 2) * mean |x - median| instead (Iglewicz & Hoaglin), whatever
    # eps, and a constant row keeps scale 0 (all zeros out).
    X = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 3, -7], [2.0] * 10], dtype=float)
    Y = LayerNormalizer(
        center="median", scale=scale, eps=eps, keep_stats=True
    ).fit_transform(X)
    s = np.sqrt(np.pi / 2) * (3 + 7) / 10
    assert_allclose(Y[0, -1], s, rtol=1e-15)
    assert_allclose(Y[0, :10], X[0] / np.sqrt(s * s + eps), rtol=1e-15)
    assert_array_equal(Y[1], [0.0] * 10 + [2.0, 0.0])
    # center=None: the deviations are the values themselves.
    Z, _, s0 = layer_norm(
        [[0.0, 0.0, 0.0, 0.0, 0.0, 2.0]], center=None, scale=scale, return_stats=True
    )
    assert_allclose(s0, np.sqrt(np.pi / 2) * 2 / 6, rtol=1e-15)


def test_float32_affine_output_is_the_float64_result_rounded(rng):
    # Regression: gain_ beyond the float32 range made the output inf.
    X = np.array([[3e38, 3e38, 1, 0], [1, 2, 3, 4]], dtype=np.float32)
    est = RMSNormalizer(affine=True).fit(X)
    assert np.abs(est.gain_).max() > np.finfo(np.float32).max
    Y = est.transform(X)
    assert Y.dtype == np.float32 and np.isfinite(Y).all()
    z = X.astype(np.float64)
    z = z / np.sqrt((z * z).mean(axis=1, keepdims=True) + 1e-5)
    terms = np.abs(est.gain_ * z) + np.abs(est.bias_)
    exact = est.gain_ * z + est.bias_
    assert np.all(
        np.abs(Y - exact)
        <= 4e-16 * terms + np.spacing(np.abs(exact).astype(np.float32))
    )
    # The same with LayerNormalizer, and a result beyond float32 raises.
    ln = LayerNormalizer(affine=True).fit(X)
    assert np.isfinite(ln.transform(X)).all()
    with pytest.raises(ValueError, match="overflows float32"):
        est.transform(np.array([[1, 0, 0, 0]], dtype=np.float32))
