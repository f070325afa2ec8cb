"""sknorm.onnx: skl2onnx converters, checked by running the graphs in ONNX Runtime.

Every graph is compared with ``transform`` on hard rows (large offsets, NaN,
all-NaN, constant and one-value rows) for every option and both float dtypes,
and the corrected two-pass and the robust scales' fallback against formulas
written here.
"""

import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402

import sknorm.onnx  # noqa: E402
from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer  # noqa: E402

MAD_TO_STD = 1.482602218505602
IQR_TO_STD = 1.3489795003921634


def run_onnx(est, X, **kwargs):
    """Convert ``est`` with ``X[:1]`` and run the graph on ``X`` in ONNX Runtime."""
    onx = to_onnx(est, X[:1], **kwargs)
    sess = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return sess.run(None, {sess.get_inputs()[0].name: X})[0], onx


def hard_rows(dtype, n_features=12, seed=0, nan=True):
    """Rows that a naive graph gets wrong, in ``dtype``.

    No row has a robust scale of 0 unless it is constant (those rows are
    tested separately against the fallback formula). ``nan=False``: without
    the rows holding NaN (the graph has a branch for input without NaN).
    """
    rng = np.random.default_rng(seed)
    p = n_features
    offset = 1e6 if dtype == np.float64 else 1e3
    rows = [
        rng.normal(size=(8, p)),
        offset + rng.normal(size=(8, p)),  # large offset, unit spread
        -offset * 10 + rng.normal(size=(4, p)) * 1e-2,
        rng.normal(size=(4, p)) * 1e-3,  # spread comparable to sqrt(eps)
        np.full((1, p), 7.0),  # constant
        np.full((1, p), offset + 0.1),  # constant, inexact mean
        np.zeros((1, p)),
        np.full((1, p), np.nan),  # all NaN
    ]
    one = np.full((1, p), np.nan)
    one[0, 3] = 2.5  # a single value
    rows.append(one)
    nan_rows = offset + rng.normal(size=(6, p))
    nan_rows[rng.random(nan_rows.shape) < 0.25] = np.nan
    nan_rows[:, 0] = np.nan
    rows.append(nan_rows)
    const_nan = np.full((1, p), -3.0)
    const_nan[0, ::3] = np.nan  # constant among its values
    rows.append(const_nan)
    X = np.vstack(rows).astype(dtype)
    return X if nan else X[~np.isnan(X).any(axis=1)]


def assert_matches(got, expected):
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if expected.dtype == np.float64:
        tol = 1e-10
    else:
        tol = 2e-5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(keep_stats=True),
    LayerNormalizer(eps=0.0, keep_stats=True),
    LayerNormalizer(eps=0.5),
    LayerNormalizer(center=None, scale=None, keep_stats=True),
    RMSNormalizer(),
    RMSNormalizer(keep_stats=True, eps=0.0),
    GroupNormalizer(3, keep_stats=True),
    GroupNormalizer([[0, 5, 2], [7, 1], [11, 10, 4, 3]], keep_stats=True),
    GroupNormalizer(
        {"b": [6, 8, 9], "a": [0, 1, 2, 3]}, keep_stats=True, remainder="drop"
    ),
    GroupNormalizer({"b": [6, 8, 9], "a": [0, 1, 2, 3]}, center="median"),
]
ESTIMATORS += [
    LayerNormalizer(center=c, scale=s, keep_stats=True)
    for c in ("mean", "median", None)
    for s in ("std", "mad", "iqr", None)
]
ESTIMATORS += [
    GroupNormalizer(4, center=c, scale=s, keep_stats=True, eps=0.0)
    for c in ("mean", "median", None)
    for s in ("std", "mad", "iqr")
]


@pytest.mark.parametrize("nan", [True, False], ids=["nan", "no-nan"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_matches_transform(est, dtype, nan):
    X = hard_rows(dtype, nan=nan)
    est.fit(X)
    got, onx = run_onnx(est, X)
    assert_matches(got, est.transform(X))
    # A double graph for float64 input, a float one for float32.
    proto = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    assert onx.graph.output[0].type.tensor_type.elem_type == proto


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "est",
    [
        LayerNormalizer(affine=True, keep_stats=True),
        LayerNormalizer(center="median", scale="iqr", affine=True),
        RMSNormalizer(affine=True, eps=0.0),
        GroupNormalizer([[1, 2, 3], [9, 4]], affine=True, keep_stats=True),
        # One group of every column, not in input order.
        GroupNormalizer([[11, 3, 0, 1, 2, 4, 5, 6, 7, 8, 9, 10]], affine=True),
        GroupNormalizer(
            {"g": [1, 2, 3], "h": [9, 4]}, scale="mad", affine=True, remainder="drop"
        ),
    ],
    ids=repr,
)
@pytest.mark.parametrize("nan", [True, False], ids=["nan", "no-nan"])
def test_affine_matches_transform(est, dtype, nan):
    rng = np.random.default_rng(1)
    train = (rng.normal(size=(40, 12)) * rng.uniform(1, 3, 12) + 5).astype(dtype)
    est.fit(train)
    X = hard_rows(dtype, nan=nan)
    got, _ = run_onnx(est, X)
    expected = est.transform(X)
    assert_matches(got, expected)
    if getattr(est, "center", None) is None:
        return
    # Constant rows go to the bias of their columns.
    const = np.flatnonzero((X == 7.0).all(axis=1))
    cols = [1, 2, 3, 9, 4] if isinstance(est, GroupNormalizer) else range(12)
    out_cols = np.searchsorted(np.sort(list(cols)), cols)
    if getattr(est, "remainder", "passthrough") == "passthrough":
        out_cols = list(cols)
    bias = np.asarray(est.bias_, dtype=dtype)[list(cols)]
    np.testing.assert_allclose(got[const][:, out_cols][0], bias, rtol=1e-6, atol=1e-6)


def _exact_layer_norm(row, eps):
    """(x - mean) / sqrt(var + eps) of a float64 row, from exact fractions."""
    xs = [Fraction(v) for v in row]
    mean = sum(xs) / len(xs)
    var = sum((v - mean) ** 2 for v in xs) / len(xs)
    denom = math.sqrt(var + Fraction(eps))
    # var is exact; sqrt rounds once, the division once more.
    return np.array([float(v - mean) / denom for v in xs]), float(mean), math.sqrt(var)


@pytest.mark.parametrize("offset", [1e6, -1e8, 1e12])
def test_corrected_two_pass_against_exact_fractions(offset):
    rng = np.random.default_rng(2)
    X = offset + rng.normal(size=(6, 16))
    est = LayerNormalizer(keep_stats=True).fit(X)
    got, _ = run_onnx(est, X)
    for row, out in zip(X, got, strict=True):
        z, mean, std = _exact_layer_norm(row, 1e-5)
        # Relative to the spread: a naive E[x^2] - E[x]^2 graph is off by
        # about 1e-16 * offset**2 here.
        np.testing.assert_allclose(out[:16], z, rtol=0, atol=1e-9)
        assert abs(out[16] - mean) <= 2e-16 * abs(mean) + 1e-12
        np.testing.assert_allclose(out[17], std, rtol=1e-12)


def test_constant_rows_are_zero_and_nan_stays():
    X = np.array(
        [
            [3.0, 3.0, 3.0, 3.0],
            [1e6 + 0.1] * 4,
            [np.nan, 2.0, np.nan, 2.0],
            [np.nan, 1.0, 2.0, 3.0],
        ]
    )
    for est in (LayerNormalizer(eps=0.0), LayerNormalizer(center="median")):
        got, _ = run_onnx(est.fit(X), X)
        assert (got[:2] == 0).all()
        assert np.array_equal(np.isnan(got[2:]), np.isnan(X[2:]))
        assert (got[2, [1, 3]] == 0).all()
        # The NaN is ignored: the other values are normalized among themselves.
        ref = (X[3, 1:] - 2.0) / np.sqrt(2 / 3 + est.eps)
        if est.center == "mean":
            np.testing.assert_allclose(got[3, 1:], ref, rtol=1e-14)


def _robust_reference(X, center, scale, eps):
    """Robust normalization with the fallback rule, written out in numpy."""
    c = np.nanmedian(X, axis=1) if center == "median" else np.zeros(X.shape[0])
    dev = X - c[:, None]
    if scale == "mad":
        s = MAD_TO_STD * np.nanmedian(np.abs(dev), axis=1)
    else:
        q25, q75 = np.nanpercentile(dev, [25, 75], axis=1)
        s = (q75 - q25) / IQR_TO_STD
    constant = np.nanmax(X, axis=1) == np.nanmin(X, axis=1)
    fallback = np.sqrt(np.pi / 2) * np.nanmean(np.abs(dev), axis=1)
    s = np.where((s == 0) & ~constant, fallback, s)
    d = np.sqrt(s**2 + eps)
    d = np.where(d == 0, 1.0, d)
    return dev / d[:, None], c, s


def _tied_rows():
    return np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 5.0, -2.0],  # MAD and IQR 0
            [4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 9.0],  # MAD and IQR 0
            [1.0, 1.0, 1.0, 1.0, 2.0, 3.0, np.nan, np.nan],  # MAD 0 among non-NaN
            [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # constant: stays 0
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 9.0],  # no tie
        ]
    )


@pytest.mark.parametrize("eps", [0.0, 1e-5])
@pytest.mark.parametrize("scale", ["mad", "iqr"])
@pytest.mark.parametrize("center", ["median", None])
@pytest.mark.parametrize("nan", [True, False], ids=["nan", "no-nan"])
def test_robust_fallback_formula(center, scale, eps, nan):
    X = _tied_rows()
    if not nan:
        X = X[~np.isnan(X).any(axis=1)]
    est = LayerNormalizer(center=center, scale=scale, eps=eps, keep_stats=True)
    got, _ = run_onnx(est.fit(X), X)
    z, c, s = _robust_reference(X, center, scale, eps)
    np.testing.assert_allclose(got[:, :8], z, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got[:, -1], s, rtol=1e-13)
    if center is not None:
        np.testing.assert_allclose(got[:, 8], c, rtol=1e-13)


def _engine_has_robust_fallback():
    X = np.array([[0.0, 0.0, 0.0, 1.0, 5.0]])
    return LayerNormalizer(center="median", scale="mad").fit_transform(X)[0, 4] < 1e3


@pytest.mark.parametrize("scale", ["mad", "iqr"])
@pytest.mark.parametrize("center", ["mean", "median", None])
@pytest.mark.parametrize("nan", [True, False], ids=["nan", "no-nan"])
def test_robust_fallback_matches_transform(center, scale, nan):
    if not _engine_has_robust_fallback():
        pytest.skip("this sknorm engine has no robust-scale fallback yet")
    X = _tied_rows()
    if not nan:
        X = X[~np.isnan(X).any(axis=1)]
    est = GroupNormalizer([[0, 1, 2, 3, 4, 5, 6, 7]], center=center, scale=scale)
    est.set_params(keep_stats=True).fit(X)
    got, _ = run_onnx(est, X)
    assert_matches(got, est.transform(X))


@pytest.mark.parametrize("q_rows", [1, 2, 3, 4, 5, 6, 7, 8])
def test_nan_quantiles_interpolate_like_numpy(q_rows):
    # Rows with 1 to 8 non-NaN values: every interpolation case of the
    # quartiles and the median, against np.nanpercentile / np.nanmedian.
    rng = np.random.default_rng(q_rows)
    X = rng.normal(size=(5, 8)) * 10
    X[:, q_rows:] = np.nan
    X = rng.permuted(X, axis=1)
    est = LayerNormalizer(center="median", scale="iqr", eps=0.0, keep_stats=True)
    got, _ = run_onnx(est.fit(X), X)
    med = np.nanmedian(X, axis=1)
    q25, q75 = np.nanpercentile(X - med[:, None], [25, 75], axis=1)
    np.testing.assert_allclose(got[:, 8], med, rtol=1e-15)
    s = (q75 - q25) / IQR_TO_STD
    if q_rows > 1:
        np.testing.assert_allclose(got[:, 9], s, rtol=1e-14)


@pytest.fixture(scope="module")
def digits_pipeline():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(
        GroupNormalizer(4, keep_stats=True), LogisticRegression(max_iter=300, tol=1e-3)
    )
    return pipe.fit(X[:1000], y[:1000]), X


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pipeline_with_logistic_regression_on_digits(digits_pipeline, dtype):
    from sklearn.linear_model import LogisticRegression

    pipe, X = digits_pipeline
    X = X.astype(dtype)  # a float32 graph for float32 input
    onx = to_onnx(pipe, X[:1], options={LogisticRegression: {"zipmap": False}})
    sess = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels, proba = sess.run(None, {sess.get_inputs()[0].name: X})
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=0, atol=1e-4)


def test_integer_input_gives_a_double_graph():
    X = np.arange(24, dtype=np.int64).reshape(4, 6) ** 2
    est = LayerNormalizer(keep_stats=True).fit(X)
    got, _ = run_onnx(est, X)
    assert_matches(got, est.transform(X))


def test_dataframe_columns_as_inputs():
    pd = pytest.importorskip("pandas")
    X = hard_rows(np.float64, 6)
    df = pd.DataFrame(X, columns=list("abcdef"))
    est = GroupNormalizer({"g": ["b", "d", "e"]}, keep_stats=True).fit(df)
    onx = to_onnx(est, df[:1])
    sess = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    feeds = {i.name: X[:, [df.columns.get_loc(i.name)]] for i in sess.get_inputs()}
    assert_matches(sess.run(None, feeds)[0], est.transform(df))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize(
    "est",
    [
        GroupNormalizer(3, center="median", scale="iqr", keep_stats=True),
        LayerNormalizer(scale="mad", affine=True, keep_stats=True),
        RMSNormalizer(keep_stats=True),
    ],
    ids=repr,
)
@pytest.mark.parametrize("nan", [True, False], ids=["nan", "no-nan"])
def test_opsets(est, opset, dtype, nan):
    # Each operator in the form of the target opset (ReduceSum's axes became an
    # input at 13, ReduceMax/ReduceMin/ReduceSumSquare's at 18).
    X = hard_rows(dtype, nan=nan)
    est.fit(X)
    got, onx = run_onnx(est, X, target_opset=opset)
    assert max(o.version for o in onx.opset_import if o.domain == "") <= opset
    assert_matches(got, est.transform(X))


def test_refuses_opset_below_11():
    X = hard_rows(np.float64)
    with pytest.raises(RuntimeError, match="opset 11 or later"):
        to_onnx(LayerNormalizer().fit(X), X[:1], target_opset=10)
    assert sknorm.onnx.MIN_OPSET == 11


@pytest.mark.parametrize(
    "param, value", [("center", "trimmed"), ("scale", "var"), ("eps", -1.0)]
)
def test_refuses_invalid_options_naming_them(param, value):
    X = hard_rows(np.float64)
    est = LayerNormalizer().fit(X).set_params(**{param: value})
    with pytest.raises(ValueError, match=f"{param}="):
        to_onnx(est, X[:1])


def test_refuses_unfitted_group_normalizer_and_affine():
    X = hard_rows(np.float64)
    with pytest.raises(ValueError, match="unfitted GroupNormalizer"):
        to_onnx(GroupNormalizer(3), X[:1])
    with pytest.raises(ValueError, match="affine=True"):
        to_onnx(LayerNormalizer(affine=True), X[:1])


def test_refuses_string_input():
    from skl2onnx.common.data_types import StringTensorType

    est = LayerNormalizer().fit(np.ones((2, 3)))
    with pytest.raises(TypeError, match="StringTensorType"):
        to_onnx(est, initial_types=[("X", StringTensorType([None, 3]))])


def test_refuses_wrong_width():
    from skl2onnx.common.data_types import DoubleTensorType

    est = LayerNormalizer().fit(np.ones((2, 3)))
    with pytest.raises(ValueError, match="fitted on 3 features"):
        to_onnx(est, initial_types=[("X", DoubleTensorType([None, 5]))])


def test_unfitted_stateless_normalizer_uses_the_input_width():
    X = hard_rows(np.float64)
    est = LayerNormalizer(keep_stats=True)
    got, _ = run_onnx(est, X)
    assert_matches(got, est.fit(X).transform(X))


def test_sparse_fitted_rms_normalizer_runs_on_dense_input():
    sp = pytest.importorskip("scipy.sparse")
    X = sp.random(20, 12, density=0.3, format="csr", random_state=0)
    est = RMSNormalizer(keep_stats=True).fit(X)
    got, _ = run_onnx(est, X.toarray())
    assert_matches(got, est.transform(X.toarray()))
    np.testing.assert_allclose(got, est.transform(X).toarray(), rtol=1e-12)


def test_import_does_not_need_skl2onnx_and_names_the_extra():
    code = (
        "import sys; import sknorm; assert 'skl2onnx' not in sys.modules; "
        "sys.modules['skl2onnx'] = None\n"
        "try:\n    import sknorm.onnx\nexcept ImportError as e:\n"
        '    assert "sknorm[onnx]" in str(e), e\nelse:\n    raise SystemExit(3)'
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
