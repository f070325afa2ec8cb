"""Array API inputs: array-api-strict and PyTorch (CPU, and CUDA when present).

The estimators and functions must return arrays of the input's namespace,
device and floating dtype, equal to the NumPy path (<= 1e-12 in float64), and
pass scikit-learn's own array API checks. Array API dispatch needs
``SCIPY_ARRAY_API=1`` set before scipy is imported, so the dispatch tests skip
without it; CI runs this file in a separate step::

    pip install -e ".[test,array-api]" torch==2.13.0
    SCIPY_ARRAY_API=1 pytest tests/test_array_api.py

The kernel tests at the bottom call the Array API backend of
:mod:`sknorm._array_api` directly with array-api-strict and run whenever that
package is installed.
"""

import importlib.util
import os
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import check_array_api_input

from sknorm import (
    GroupNormalizer,
    LayerNormalizer,
    RMSNormalizer,
    _array_api,
    group_norm,
    layer_norm,
    rms_norm,
)
from sknorm._engine import NUMPY
from sknorm._layout import GroupSpec

# The path needs SCIPY_ARRAY_API=1 before scipy is imported, scipy >= 1.14 and
# array_api_compat (installed, or vendored by scikit-learn).
DISPATCH = os.environ.get("SCIPY_ARRAY_API") == "1" and _array_api.supported()
needs_dispatch = pytest.mark.skipif(
    not DISPATCH,
    reason="array API dispatch needs SCIPY_ARRAY_API=1 before scipy is imported",
)

ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(affine=True, keep_stats=True),
    LayerNormalizer(center="median", scale="mad", keep_stats=True),
    LayerNormalizer(center="median", scale="iqr", affine=True),
    LayerNormalizer(center=None, scale=None, keep_stats=True),
    LayerNormalizer(scale=None, affine=True, keep_stats=True),
    RMSNormalizer(affine=True, keep_stats=True),
    RMSNormalizer(keep_stats=True, eps=0.0),
    GroupNormalizer(groups=[[0, 2, 4], [1, 5]], affine=True, keep_stats=True),
    GroupNormalizer(groups={"a": [5, 0]}, remainder="drop", keep_stats=True),
    GroupNormalizer(groups=2, center="median", scale="iqr", keep_stats=True),
]


def _available(name, device):
    """Whether the (namespace, device) pair exists here (no test for others)."""
    if importlib.util.find_spec(name) is None:
        return False
    if name == "torch" and device == "cuda":
        import torch

        return torch.cuda.is_available()
    return True


# (namespace, device) pairs, those available here only.
NAMESPACES = [
    pair
    for pair in [
        ("array_api_strict", "CPU_DEVICE"),
        ("array_api_strict", "device1"),
        ("torch", "cpu"),
        ("torch", "cuda"),
    ]
    if _available(*pair)
]


def _namespace(name, device):
    """Return a converter from NumPy to arrays of ``name`` on ``device``."""
    mod = pytest.importorskip(name)
    if name == "torch":
        if device == "cuda" and not mod.cuda.is_available():
            pytest.skip("torch CUDA is not available")
        dev = mod.device(device)
    else:
        dev = mod.Device(device)
    return lambda a: mod.asarray(a, device=dev)


def _device(a):
    return _array_api.array_api_compat.device(a)


def _check_same_kind(out, x_in):
    """``out`` is of the namespace, device and dtype of ``x_in``."""
    assert type(out) is type(x_in)
    assert _device(out) == _device(x_in)
    assert out.dtype == x_in.dtype


def _data(dtype, n_samples=40, n_features=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.5, 4, (n_samples, 1))
    X += rng.normal(scale=10, size=(n_samples, 1))
    X[3, 2] = np.nan  # a NaN inside a row
    X[4, 0] = np.nan  # a NaN as the row's first value (the mean's pivot)
    X[5, :] = np.nan  # an all-NaN row
    X[6, :] = 2.5  # a constant row
    X[7] = 1e8 + rng.normal(scale=1e-3, size=n_features)  # huge mean, tiny spread
    return X.astype(dtype)


def _assert_close(actual, expected, dtype):
    """float64 agrees to 1e-12; float32 to float32 rounding of the output scale."""
    actual = _array_api.to_numpy(actual)
    if dtype == "float64":
        assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)
    else:
        scale = max(1.0, float(np.nanmax(np.abs(expected))))
        assert_allclose(actual, expected, rtol=1e-6, atol=1e-6 * scale)


@needs_dispatch
@pytest.mark.parametrize("namespace, device", NAMESPACES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_estimator_matches_numpy(estimator, dtype, namespace, device):
    to_xp = _namespace(namespace, device)
    X = _data(dtype)
    ref = clone(estimator).fit(X)
    Y_ref = ref.transform(X)
    X_xp = to_xp(X)
    with config_context(array_api_dispatch=True):
        est = clone(estimator).fit(X_xp)
        Y = est.transform(X_xp)
        Y_fit = clone(estimator).fit_transform(X_xp)
    for out in (Y, Y_fit):
        _check_same_kind(out, X_xp)
        _assert_close(out, Y_ref, dtype)
    assert est.n_samples_seen_ == ref.n_samples_seen_
    assert est.n_features_in_ == ref.n_features_in_
    if estimator.affine:
        for name in ("gain_", "bias_"):
            attr = getattr(est, name)
            assert _device(attr) == _device(X_xp)
            # The NumPy engine takes a float32 row's median in float32, this
            # path in float64: float32 fits agree to float32 precision.
            rtol = 1e-12 if dtype == "float64" else 1e-5
            assert_allclose(_array_api.to_numpy(attr), getattr(ref, name), rtol=rtol)
    if estimator.keep_stats and getattr(estimator, "remainder", "") != "drop":
        with config_context(array_api_dispatch=True):
            X_back = est.inverse_transform(Y)
        _check_same_kind(X_back, X_xp)
        _assert_close(X_back, ref.inverse_transform(Y_ref), dtype)


@needs_dispatch
@pytest.mark.parametrize("namespace, device", NAMESPACES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_functions_match_numpy(dtype, namespace, device):
    to_xp = _namespace(namespace, device)
    X = _data(dtype)
    X_xp = to_xp(X)
    calls = [
        lambda X: layer_norm(X, return_stats=True),
        lambda X: layer_norm(X, center="median", scale=None, return_stats=True),
        lambda X: rms_norm(X, eps=0.0, return_stats=True),
        lambda X: group_norm(X, [[0, 1, 2], [4, 5]], scale="mad", return_stats=True),
    ]
    for call in calls:
        expected = call(X)
        with config_context(array_api_dispatch=True):
            got = call(X_xp)
        _check_same_kind(got[0], X_xp)
        for a, b in zip(got, expected, strict=True):
            _assert_close(a, b, dtype)


@needs_dispatch
@pytest.mark.parametrize("namespace, device", NAMESPACES)
def test_partial_fit_and_sample_weight_match_numpy(namespace, device):
    to_xp = _namespace(namespace, device)
    X = _data("float64", n_samples=60)
    w = np.random.default_rng(1).uniform(0, 3, size=60)
    est = GroupNormalizer(groups=2, affine=True)
    ref = clone(est).fit(X, sample_weight=w)
    with config_context(array_api_dispatch=True):
        inc = clone(est)
        for rows in (slice(0, 25), slice(25, 60)):
            inc.partial_fit(to_xp(X[rows]), sample_weight=to_xp(w[rows]))
        # Weights of another namespace (NumPy here) are moved to X's device.
        other = clone(est).fit(to_xp(X), sample_weight=w)
    for fitted in (inc, other):
        assert_allclose(_array_api.to_numpy(fitted.gain_), ref.gain_, atol=1e-12)
        assert_allclose(_array_api.to_numpy(fitted.bias_), ref.bias_, atol=1e-12)
    assert inc.n_samples_seen_ == 60


@needs_dispatch
def test_numpy_input_keeps_the_numpy_engine(monkeypatch):
    """With dispatch on, NumPy input still takes the NumPy engine."""

    def fail(*args, **kwargs):
        raise AssertionError("the Array API path ran on NumPy input")

    monkeypatch.setattr(_array_api.ArrayAPIBackend, "transform", fail)
    X = _data("float64")
    with config_context(array_api_dispatch=True):
        Y = LayerNormalizer(affine=True).fit(X).transform(X)
        Z = layer_norm(X.tolist())
    assert isinstance(Y, np.ndarray) and isinstance(Z, np.ndarray)
    assert_allclose(Y, LayerNormalizer(affine=True).fit_transform(X))


@needs_dispatch
@pytest.mark.parametrize("estimator", [LayerNormalizer(), LayerNormalizer(affine=True)])
def test_other_namespace_than_fit_raises(estimator):
    xps = pytest.importorskip("array_api_strict")
    X = _data("float64")
    with config_context(array_api_dispatch=True):
        est = clone(estimator).fit(xps.asarray(X))
        with pytest.raises(ValueError, match=r"LayerNormalizer.transform\(\) must"):
            est.transform(X)
        fitted_np = clone(estimator).fit(X)
        with pytest.raises(ValueError, match="same namespace"):
            fitted_np.transform(xps.asarray(X))
    # A stateless normalizer that was never fitted takes any namespace.
    with config_context(array_api_dispatch=True):
        out = LayerNormalizer().transform(xps.asarray(X))
    assert isinstance(out, type(xps.asarray(X)))


@needs_dispatch
def test_inf_raises_and_nan_is_kept():
    xps = pytest.importorskip("array_api_strict")
    X = _data("float64")
    with config_context(array_api_dispatch=True):
        Y = _array_api.to_numpy(LayerNormalizer().transform(xps.asarray(X)))
        X[1, 1] = np.inf
        with pytest.raises(ValueError, match="infinity"):
            LayerNormalizer().transform(xps.asarray(X))
        with pytest.raises(ValueError, match="infinity"):
            LayerNormalizer(affine=True).fit(xps.asarray(X))
    assert np.isnan(Y[3, 2]) and np.isnan(Y[5]).all()
    assert_array_equal(Y[6], 0.0)


# scikit-learn's array API checks. They call ``inverse_transform`` whenever the
# estimator has one; ours exists only where it can invert (available_if).
CHECK_ESTIMATORS = [
    *ESTIMATORS,
    LayerNormalizer(affine=True),
    RMSNormalizer(),
    GroupNormalizer(groups=1, center=None),
]


@needs_dispatch
@pytest.mark.parametrize("namespace, device", NAMESPACES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("estimator", CHECK_ESTIMATORS, ids=repr)
def test_sklearn_check_array_api_input_and_values(estimator, dtype, namespace, device):
    _namespace(namespace, device)
    est = clone(estimator)
    check_array_api_input(
        type(est).__name__,
        est,
        array_namespace=namespace,
        device_name=device,
        dtype_name=dtype,
        check_values=True,
        check_sample_weight=True,
    )


@needs_dispatch
@pytest.mark.parametrize("estimator", CHECK_ESTIMATORS, ids=repr)
def test_sklearn_check_array_api_mixed_and_same_namespace(estimator):
    pytest.importorskip("array_api_strict")
    pytest.importorskip("torch")
    from sklearn.utils._array_api import NamespaceAndDevice  # test-only import

    # Both checks appeared after scikit-learn 1.6, the oldest we support.
    check_array_api_mixed_inputs = getattr(
        estimator_checks, "check_array_api_mixed_inputs", None
    )
    check_array_api_same_namespace = getattr(
        estimator_checks, "check_array_api_same_namespace", None
    )
    if check_array_api_mixed_inputs is None or check_array_api_same_namespace is None:
        pytest.skip("this scikit-learn has no mixed/same-namespace array API checks")
    est = clone(estimator)
    name = type(est).__name__
    check_array_api_mixed_inputs(
        name,
        est,
        X_ns_and_device=NamespaceAndDevice("torch", "cpu"),
        other_ns_and_device=NamespaceAndDevice("array_api_strict", "device1"),
        check_values=True,
    )
    check_array_api_same_namespace(name, est, array_namespace="array_api_strict")


def test_tag_array_api_support():
    for est in CHECK_ESTIMATORS:
        assert est.__sklearn_tags__().array_api_support == _array_api.supported()


# -- the kernel, called directly (no dispatch, no SCIPY_ARRAY_API needed) -------
@pytest.fixture
def strict():
    xps = pytest.importorskip("array_api_strict")
    if not _array_api.supported():
        pytest.skip("the Array API path needs scipy >= 1.14 and array_api_compat")
    return _array_api.ArrayAPIBackend(_array_api.Namespace(xps, xps.Device("device1")))


SPECS = {
    "single": lambda p: GroupSpec.single(p),
    "groups": lambda p: GroupSpec(
        p,
        ("a", "b"),
        (np.array([4, 0, 2]), np.array([1, 5])),
        np.arange(p),
    ),
    "drop": lambda p: GroupSpec(p, ("a",), (np.array([1, 2, 3]),), np.array([1, 2, 3])),
}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(
    "center, scale",
    [
        ("mean", "std"),
        ("median", "mad"),
        ("median", "iqr"),
        (None, "std"),
        (None, None),
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_kernel_matches_numpy_engine(strict, monkeypatch, spec, center, scale, chunked):
    if chunked:
        # Several row chunks: the preallocated output is filled slice by slice.
        monkeypatch.setattr(_array_api, "DEVICE_CHUNK_BYTES", 6 * 8 * 7)
    X = _data("float64")
    spec = SPECS[spec](X.shape[1])
    for eps in (1e-5, 0.0):
        Y_ref, C_ref, S_ref = NUMPY.transform(
            X, spec, center, scale, eps, keep_stats=True, copy=True
        )
        Y, C, S = strict.transform(
            strict.ns.asarray(X), spec, center, scale, eps, keep_stats=True
        )
        assert_allclose(_array_api.to_numpy(Y), Y_ref, rtol=1e-12, atol=1e-12)
        assert_allclose(_array_api.to_numpy(C), C_ref, rtol=1e-12, atol=1e-12)
        if scale is not None:
            assert_allclose(_array_api.to_numpy(S), S_ref, rtol=1e-12, atol=1e-12)


def test_kernel_overflow_and_underflow_rows(strict):
    X = np.array(
        [
            [1e300, -1e300, 3e299, 1e299],  # sum of squares overflows
            [1e-200, 3e-200, -2e-200, 0.0],  # sum of squares underflows
            [1e12 + 1, 1e12 - 1, 1e12 + 2, 1e12],  # huge mean
        ]
    )
    spec = GroupSpec.single(4)
    Y_ref, _, _ = NUMPY.transform(X, spec, "mean", "std", 0.0, copy=True)
    Y, _, _ = strict.transform(strict.ns.asarray(X), spec, "mean", "std", 0.0)
    assert_allclose(_array_api.to_numpy(Y), Y_ref, rtol=1e-12)
    assert np.isfinite(Y_ref).all()


# -- the seams of issue 11, through the public API, against exact references ----
SEAM_NAMESPACES = [
    pair
    for pair in [("array_api_strict", "CPU_DEVICE"), ("torch", "cpu")]
    if _available(*pair)
]


def _exact_std(row):
    """Population standard deviation of a float64 row, correctly rounded."""
    xs = [Fraction(float(v)) for v in row]
    mean = sum(xs) / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / len(xs)
    with localcontext() as ctx:
        ctx.prec = 40
        return float((Decimal(var.numerator) / Decimal(var.denominator)).sqrt())


def _dispatch(estimator, X, to_xp):
    with config_context(array_api_dispatch=True):
        return _array_api.to_numpy(clone(estimator).fit_transform(to_xp(X)))


@needs_dispatch
@pytest.mark.parametrize("namespace, device", SEAM_NAMESPACES)
@pytest.mark.parametrize("size", [1e-300, 1e-160, 1e-310, 1e300])
def test_kept_scale_exact_at_any_magnitude(namespace, device, size):
    # Regression: the kept scale was 0 near 1e-300 and 1e-4 off near 1e-160.
    to_xp = _namespace(namespace, device)
    X = np.random.default_rng(0).normal(size=(4, 9)) * size
    Y = _dispatch(LayerNormalizer(keep_stats=True), X, to_xp)
    expected = [_exact_std(row) for row in X]
    assert_allclose(Y[:, -1], expected, rtol=1e-14)
    ref = LayerNormalizer(keep_stats=True).fit_transform(X)
    assert_allclose(Y[:, :-2], ref[:, :-2], rtol=1e-13, atol=1e-14)
    # The center agrees in units of the row's spread.
    assert np.all(np.abs(Y[:, -2] - ref[:, -2]) <= 1e-14 * ref[:, -1])


@needs_dispatch
@pytest.mark.parametrize("namespace, device", SEAM_NAMESPACES)
def test_eps_0_huge_and_subnormal_rows(namespace, device):
    to_xp = _namespace(namespace, device)
    # Regression: NaN (the sum of squares overflowed).
    X = np.array([[1e308, -1e308, 1.5e308, 5e307]])
    mean = sum(Fraction(v) for v in X[0]) / 4
    sd = Fraction(_exact_std(X[0]))
    expected = [float((Fraction(v) - mean) / sd) for v in X[0]]
    assert_allclose(
        _dispatch(LayerNormalizer(eps=0), X, to_xp)[0], expected, rtol=1e-15
    )
    # Regression: [-1.5, -0.5, 0.5, 1.5] (the deviations, not divided).
    X = np.array([[1.0, 3, 5, 7]]) * 2.0**-1074
    got = _dispatch(LayerNormalizer(eps=0), X, to_xp)[0]
    assert_allclose(got, (np.array([1, 3, 5, 7]) - 4) / np.sqrt(5), rtol=1e-15)
    got = _dispatch(RMSNormalizer(eps=0), X, to_xp)[0]
    assert_allclose(got, np.array([1, 3, 5, 7]) / np.sqrt(21), rtol=1e-15)


@needs_dispatch
@pytest.mark.parametrize("namespace, device", SEAM_NAMESPACES)
@pytest.mark.parametrize("scale", ["mad", "iqr"])
def test_zero_robust_scale_fallback(namespace, device, scale):
    # MAD and IQR are 0 (ties); the scale is sqrt(pi / 2) * mean |x - median|.
    to_xp = _namespace(namespace, device)
    X = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 3, -7], [2.0] * 10])
    est = LayerNormalizer(center="median", scale=scale, eps=0, keep_stats=True)
    Y = _dispatch(est, X, to_xp)
    s = np.sqrt(np.pi / 2) * (3 + 7) / 10
    assert_allclose(Y[0], list(X[0] / s) + [0.0, s], rtol=1e-15)
    assert_array_equal(Y[1], [0.0] * 10 + [2.0, 0.0])


@needs_dispatch
@pytest.mark.parametrize("namespace, device", SEAM_NAMESPACES)
def test_float32_affine_beyond_float32_gain(namespace, device):
    # gain_ beyond the float32 range: the output is the float64 result
    # rounded, and a result beyond float32 raises.
    to_xp = _namespace(namespace, device)
    X = np.array([[3e38, 3e38, 1, 0], [1, 2, 3, 4]], dtype=np.float32)
    with config_context(array_api_dispatch=True):
        est = RMSNormalizer(affine=True).fit(to_xp(X))
        Y = _array_api.to_numpy(est.transform(to_xp(X)))
        gain, bias = (_array_api.to_numpy(a) for a in (est.gain_, est.bias_))
        with pytest.raises(ValueError, match="overflows float32"):
            est.transform(to_xp(np.array([[1, 0, 0, 0]], dtype=np.float32)))
    assert Y.dtype == np.float32 and np.isfinite(Y).all()
    z = X.astype(np.float64)
    z = z / np.sqrt((z * z).mean(axis=1, keepdims=True) + 1e-5)
    exact = gain * z + bias
    bound = 4e-16 * (np.abs(gain * z) + np.abs(bias))
    assert np.all(np.abs(Y - exact) <= bound + np.spacing(np.abs(exact).astype("f4")))
