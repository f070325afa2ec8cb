"""The numba engine's robust options: ``center="median"``, ``scale`` "mad"/"iqr".

Through the public API with ``sknorm.config_context(engine="numba")``,
against the row formulas written here (np.median, np.percentile, in float64)
and against the numpy engine, whose result is the reference rule. The widths
cover both compiled kernels (sorting networks for groups of one width up to
64 columns, selection in rows wider than 256 columns) and the widths between
(which run numpy's sort), on rows that are hard for a selection algorithm:
sorted, reverse-sorted, constant, tied, organ-pipe.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import sknorm
from sknorm import GroupNormalizer, LayerNormalizer, group_norm, layer_norm

pytest.importorskip("numba")

# The consistency constants of the docs: MAD * 1.4826..., IQR / 1.3489...,
# and the zero-spread fallback sqrt(pi / 2) * mean absolute deviation.
MAD_TO_STD = 1.482602218505602
IQR_TO_STD = 1.3489795003921634
MEAN_AD_TO_STD = 1.2533141373155003

OPTIONS = [
    ("median", "mad"),
    ("median", "iqr"),
    (None, "mad"),
    (None, "iqr"),
    ("mean", "mad"),
    ("mean", "iqr"),
    ("median", "std"),
    ("median", None),
]
# Networks (2..64), numpy's sort (65..256), selection (257 and wider); the
# numpy engine selects (np.partition) instead of sorting from 2,048 columns
# (6,144 when the median and the IQR are both wanted).
WIDTHS = [2, 3, 7, 16, 33, 64, 100, 257, 1001, 1500, 2048, 6145]


def expected(X, center, scale, eps):
    """``(z, c, s)`` of each row by the documented formulas.

    The median is np.median's, in float64 (the mean of the two middle values
    rounded to float64, as documented); everything else is formed in long
    double from the rows shifted by their first value (exact), so that rows
    near 1e8 keep the digits of their spread.
    """
    X64 = np.asarray(X, dtype=np.float64)
    x0 = X64[:, 0].astype(np.longdouble)
    Xs = X64.astype(np.longdouble) - x0[:, None]
    if center == "median":
        c = np.median(X64, axis=1)
        cs = c.astype(np.longdouble) - x0
    elif center == "mean":
        cs = Xs.mean(axis=1)
        c = (x0 + cs).astype(np.float64)
    else:
        c = np.zeros(X64.shape[0])
        cs = -x0
    dev = Xs - cs[:, None]
    if scale == "mad":
        s = MAD_TO_STD * np.median(np.abs(dev), axis=1)
    elif scale == "iqr":
        q75, q25 = np.percentile(Xs, [75, 25], axis=1)
        s = (q75 - q25) / IQR_TO_STD
    elif scale == "std":
        s = np.sqrt((dev**2).mean(axis=1))
    else:
        return dev.astype(np.float64), c, None
    if scale != "std":
        moving = dev.max(axis=1) > dev.min(axis=1)
        s = np.where((s == 0) & moving, MEAN_AD_TO_STD * np.abs(dev).mean(axis=1), s)
    z = dev / np.sqrt(s**2 + eps)[:, None]
    return z.astype(np.float64), c, s.astype(np.float64)


def hard_rows(m, rng):
    """Rows adversarial for selection (and ordinary ones), width ``m``."""
    x = rng.normal(3.0, 2.0, size=m)
    k = np.arange(m, dtype=np.float64)
    rows = [
        x,
        np.sort(x),
        -np.sort(x),
        np.full(m, 2.5),  # constant: center c, scale 0, output 0
        np.round(x),  # ties
        np.minimum(k, m - 1 - k),  # organ pipe
        (k % 2) * 5.0,  # two values
        np.where(k < 0.6 * m, 0.0, k),  # over half equal: MAD 0, fallback
        np.abs(x) * 1e-3 + 1e8,  # offset 1e8
        rng.normal(size=m) * 1e-12,  # small values
    ]
    return np.array(rows + [rng.normal(size=m) for _ in range(6)])


def run(engine, fn, *args, **kwargs):
    with sknorm.config_context(engine=engine):
        return fn(*args, **kwargs)


def assert_close(a, b, rtol):
    """``|a - b| <= rtol * max(1, |b|)`` (output in units of the spread)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    assert np.all(np.abs(a[ok] - b[ok]) <= rtol * np.maximum(1, np.abs(b[ok])))


@pytest.mark.parametrize("m", WIDTHS)
@pytest.mark.parametrize("center, scale", OPTIONS)
def test_formulas_and_numpy_engine(m, center, scale):
    X = hard_rows(m, np.random.default_rng(m))
    Z, C, S = run("numba", layer_norm, X, center=center, scale=scale, return_stats=True)
    z, c, s = expected(X, center, scale, 1e-5)
    # Data units for scale=None: relative to each row's spread.
    unit = 1.0 if s is not None else np.ptp(X, axis=1, keepdims=True) + 1e-300
    assert_close(Z / unit, z / unit, 1e-12)
    if center == "median":
        # Order statistics are exact: the median is np.median's, bit for bit.
        assert_array_equal(C, c)
    else:
        # A mean is accurate relative to the row's values (cancellation).
        assert np.all(np.abs(C - c) <= 1e-14 * np.abs(X).max(axis=1))
    if s is not None:
        assert_allclose(S, s, rtol=1e-12)
    # The numpy engine (the reference rule) agrees: the same order
    # statistics, so the same centers and robust scales.
    Zn, Cn, Sn = run(
        "numpy", layer_norm, X, center=center, scale=scale, return_stats=True
    )
    # (Row sums in another order: a mean's rounding differs, by up to about
    # 1e-14 of the spread on rows such as 0, 5, 0, 5, ...)
    assert_close(Z, Zn, 1e-14 if center != "mean" else 1e-12)
    if center != "mean":
        assert_array_equal(C, Cn)
    if scale in ("mad", "iqr") and center != "mean":
        # (Rows of a zero robust scale take the shared fallback.)
        assert_array_equal(S[S != 0], Sn[S != 0])


@pytest.mark.parametrize("m", [8, 64, 300])
@pytest.mark.parametrize("scale", ["mad", "iqr"])
def test_float32(m, scale):
    X = hard_rows(m, np.random.default_rng(1)).astype(np.float32)
    Z, C, S = run(
        "numba", layer_norm, X, center="median", scale=scale, return_stats=True
    )
    assert Z.dtype == np.float32
    z, c, s = expected(X, "median", scale, 1e-5)
    assert_close(Z, z, 1e-5)
    assert_array_equal(C, c)  # the median of float32 values, in float64
    Zn, Cn, Sn = run(
        "numpy", layer_norm, X, center="median", scale=scale, return_stats=True
    )
    assert_array_equal(C, Cn)
    assert_close(S, Sn, 1e-6)
    assert_close(Z, Zn, 1e-6)


@pytest.mark.parametrize("m", [5, 64, 513])
def test_nan_and_inf_rows(m):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(12, m))
    X[1, 0] = np.nan
    X[4, :] = np.nan
    X[7, ::2] = np.nan
    est = LayerNormalizer(center="median", scale="mad", keep_stats=True).fit(X)
    Z = run("numba", est.transform, X)
    # NaN stays NaN; the statistics ignore it (the shared rule).
    Zn = run("numpy", est.transform, X)
    assert_close(Z, Zn, 1e-14)
    ok = np.flatnonzero(~np.isnan(X[:, 0]))
    row = ok[ok != 7][0]
    assert_allclose(Z[row, m], np.median(X[row]))
    z7, c7, s7 = expected(X[7:8, 1::2], "median", "mad", 1e-5)
    assert_allclose(Z[7, 1:m:2], z7[0], rtol=1e-12)
    assert_allclose(Z[7, m : m + 2], [c7[0], s7[0]], rtol=1e-12)
    X[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        run("numba", est.transform, X)


@pytest.mark.parametrize("center, scale", [("median", "iqr"), ("mean", "mad")])
def test_groups_kept_stats_passthrough(center, scale):
    rng = np.random.default_rng(3)
    X = rng.normal(5.0, 3.0, size=(200, 18))
    X[::5, 9:17] = np.round(X[::5, 9:17])
    groups = [list(range(0, 8)), list(range(9, 17))]
    est = GroupNormalizer(groups, center=center, scale=scale, keep_stats=True)
    Z = run("numba", est.fit(X).transform, X)
    assert Z.shape == (200, 18 + 4)
    for g, cols in enumerate(groups):
        z, c, s = expected(X[:, cols], center, scale, 1e-5)
        assert_close(Z[:, cols], z, 1e-12)
        assert_allclose(Z[:, 18 + 2 * g], c, rtol=1e-14)
        assert_allclose(Z[:, 19 + 2 * g], s, rtol=1e-12)
    # Columns in no group pass through unchanged.
    assert_array_equal(Z[:, [8, 17]], X[:, [8, 17]])
    assert_close(Z, run("numpy", est.transform, X), 1e-14)
    with pytest.raises(ValueError, match="infinity"):
        bad = X.copy()
        bad[3, 8] = np.inf  # in no group
        run("numba", est.transform, bad)


@pytest.mark.parametrize("m", [16, 400])
def test_in_place(m):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, m))
    X[5, 3] = np.nan  # redone by the shared rule from the untouched input
    X[9] = 7.0
    z, c, s = expected(np.where(np.isnan(X), 0, X), "median", "iqr", 1e-5)
    ref = run("numpy", group_norm, X, 1, center="median", scale="iqr")
    Y = X.copy()
    out = run("numba", group_norm, Y, 1, center="median", scale="iqr", copy=False)
    assert np.shares_memory(out, Y)
    assert_close(out, ref, 1e-14)
    rows = np.arange(300) != 5
    assert_close(out[rows], z[rows], 1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m", [12, 600])
def test_affine(dtype, m):
    rng = np.random.default_rng(5)
    X = rng.normal(2.0, 4.0, size=(400, m))
    est = LayerNormalizer(center="median", scale="mad", affine=True).fit(X)
    X = X.astype(dtype)
    Z = run("numba", est.transform, X)
    assert Z.dtype == dtype
    z, _, _ = expected(X, "median", "mad", 1e-5)
    want = z * est.gain_ + est.bias_
    assert_close(Z, want, 1e-12 if dtype == np.float64 else 1e-6)
    # Float32: normalized and mapped in float64, rounded once (both engines).
    assert_close(Z, run("numpy", est.transform, X), 1e-14)


def test_many_rows_threads():
    # Enough rows for the parallel kernel (several tasks per thread).
    rng = np.random.default_rng(6)
    X = rng.normal(size=(20_000, 32))
    X[::3] = np.round(X[::3] * 2)
    with sknorm.config_context(n_threads=2):
        Z, C, S = run(
            "numba", layer_norm, X, center="median", scale="mad", return_stats=True
        )
    z, c, s = expected(X, "median", "mad", 1e-5)
    assert_array_equal(C, c)
    assert_allclose(S, s, rtol=1e-12)
    assert_close(Z, z, 1e-12)
