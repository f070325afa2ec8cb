"""Independent references and rounding-error models shared by the test modules.

Everything here is written from the formulas of DESIGN.md and the estimators'
docstrings in extended precision (``np.longdouble``) with plain, unoptimized
numpy; the tests compare sknorm to it, never sknorm to itself. On x86 the long
double has a 64-bit significand and an exponent range far beyond float64's, so
rows at 1e+-300 and subnormal rows are ordinary numbers for the reference.

``tests/conftest.py`` puts this directory on ``sys.path``, so the test modules
``import _reference`` (the pytest import mode is ``importlib``).
"""

import numpy as np
from scipy.stats import norm

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
EPS_REF = float(np.finfo(np.longdouble).eps)  # precision of the reference
TINY = 2.0**-1074  # the smallest subnormal float64
TINY32 = float(np.finfo(np.float32).smallest_subnormal)

# Consistency constants derived here independently from the normal quantile.
_Q3 = norm.ppf(0.75)
MAD_TO_STD = 1.0 / _Q3
IQR_TO_STD = 2.0 * _Q3
# A robust scale that is 0 in a row that is not constant falls back to the
# mean absolute deviation about the center, times sqrt(pi / 2) (the ratio of
# the std to the mean absolute deviation for normal data).
MEAN_AD_TO_STD = np.sqrt(np.longdouble(np.pi) / 2)


def _iqr(v):
    """``q75 - q25`` of sorted ``v`` (NumPy's linear quantiles), as a sum of
    differences of order statistics: each accurate to long double."""
    terms = []
    for q in (0.25, 0.75):
        h = (v.size - 1) * q
        lo = int(np.floor(h))
        hi = min(lo + 1, v.size - 1)
        terms.append((v[lo], v[hi], np.longdouble(h - lo)))
    (a25, b25, t25), (a75, b75, t75) = terms
    return (a75 - a25) + (b75 - a75) * t75 - (b25 - a25) * t25


def reference_row(row, center, scale, eps):
    """``(z, c, s)`` of one row in long double; NaN entries ignored and kept.

    ``s`` is the scale before ``eps`` (as kept by ``keep_stats``); the output
    divides by ``sqrt(s**2 + eps)``, or by 1 where that is 0. A MAD or IQR of
    0 in a row whose (non-NaN) values are not all equal falls back to
    ``sqrt(pi / 2) * mean(|x - c|)``, whatever ``eps``; a constant row keeps
    its scale (0, or ``|x|`` for the MAD about 0).
    """
    x = np.asarray(row, dtype=np.longdouble)
    ok = ~np.isnan(x)
    v = x[ok]
    z = np.full(x.shape, np.nan, dtype=np.longdouble)
    if v.size == 0:
        return z, np.longdouble(np.nan), np.longdouble(np.nan)
    if center == "mean":
        c = v.sum() / v.size
    elif center == "median":
        c = np.median(v)
    else:
        c = np.longdouble(0)
    dev = v - c
    if scale == "std":
        s = np.sqrt((dev * dev).sum() / v.size)
    elif scale == "mad":
        s = np.median(np.abs(dev)) * np.longdouble(MAD_TO_STD)
    elif scale == "iqr":
        # The IQR is translation invariant: from the data, not from deviations
        # about a center that long double rounds too (near 1e107 its rounding
        # exceeds an IQR of 1e88), as differences of the order statistics.
        s = _iqr(np.sort(v)) / np.longdouble(IQR_TO_STD)
    else:
        z[ok] = dev
        return z, c, np.longdouble(1)
    if scale in ("mad", "iqr") and s == 0 and (v != v[0]).any():
        s = MEAN_AD_TO_STD * np.abs(dev).sum() / v.size
    den = np.sqrt(s * s + np.longdouble(eps))
    if den == 0:
        den = np.longdouble(1)
    z[ok] = dev / den
    return z, c, s


def reference_normalize(X, center="mean", scale="std", eps=1e-5, groups=None):
    """Reference per-sample normalization of ``X`` by groups.

    Returns ``(Z, C, S)`` in long double; ``groups`` is a list of column index
    lists (default: one group of all columns); other columns pass through.
    """
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    n, p = X.shape
    groups = [list(range(p))] if groups is None else groups
    Z = X.astype(np.longdouble)
    C = np.empty((n, len(groups)), dtype=np.longdouble)
    S = np.empty((n, len(groups)), dtype=np.longdouble)
    for i in range(n):
        for g, cols in enumerate(groups):
            z, c, s = reference_row(X[i, cols], center, scale, eps)
            Z[i, cols] = z
            C[i, g] = c
            S[i, g] = s
    return Z, C, S


def reference_affine(X, Z):
    """Per-feature least-squares ``gain, bias`` of ``x_j`` on ``z_j``, long double.

    Rows where either is NaN are left out; a feature whose ``z`` has a
    variance below 1e-12 gets ``gain = 1`` and ``bias = mean(x) - mean(z)``
    (the documented fallback).
    """
    X = np.asarray(X, dtype=np.longdouble)
    Z = np.asarray(Z, dtype=np.longdouble)
    p = X.shape[1]
    gain, bias = np.ones(p, np.longdouble), np.zeros(p, np.longdouble)
    for j in range(p):
        ok = ~(np.isnan(X[:, j]) | np.isnan(Z[:, j]))
        if not ok.any():
            continue
        x, z = X[ok, j], Z[ok, j]
        mx, mz = x.mean(), z.mean()
        szz = ((z - mz) ** 2).mean()
        if szz < 1e-12:
            gain[j], bias[j] = 1, mx - mz
        else:
            gain[j] = ((z - mz) * (x - mx)).mean() / szz
            bias[j] = mx - gain[j] * mz
    return gain, bias


def row_max(A):
    """Largest finite |entry| of each row (0 for rows without one)."""
    A = np.abs(np.asarray(A, dtype=np.float64))
    return np.max(np.where(np.isfinite(A), A, 0.0), axis=1, initial=0.0)


def assert_within(actual, expected, tol, what="output"):
    """``|actual - expected| <= tol`` elementwise; NaN and inf must match exactly."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    nan_differs = np.isnan(actual) != np.isnan(expected)
    if nan_differs.any():
        i = tuple(int(k) for k in np.argwhere(nan_differs)[0])
        raise AssertionError(
            f"{nan_differs.sum()} NaN entries of {what} differ, e.g. at {i}: "
            f"{actual[i]!r} vs {expected[i]!r}; row {i[0]}:\n"
            f"actual={actual[i[0]]!r}\nexpected={expected[i[0]]!r}"
        )
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(actual == expected, 0.0, np.abs(actual - expected))
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), err.shape)
    bad = ~(err <= tol) & ~np.isnan(expected)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise AssertionError(
            f"{bad.sum()} entries of {what} off, e.g. at {i}: {actual[i]!r} vs "
            f"{expected[i]!r} (tolerance {tol[i]!r}); row {i[0]}:\n"
            f"actual={actual[i[0]]!r}\nexpected={expected[i[0]]!r}"
        )


def reference_tolerance(
    X, Z_ref, S_ref, cols, center, scale, eps, unit=EPS64, ref_unit=EPS_REF
):
    """Rounding bounds for the outputs and kept scales, per the row's conditioning.

    ``unit`` is the precision of the arithmetic under test, ``ref_unit`` that
    of the reference. Within a group, deviations from a mean center are exact
    to a few ulps of the largest one, so the output is exact to
    ``~p unit max|z|`` plus ``|z|`` times the relative error ``kappa`` of the
    scale. ``kappa`` is ``~p unit`` except for a robust scale about the mean or
    about 0, where the quartiles or the median can be differences of large,
    nearly equal values: there ``kappa`` grows with the ratio of the row's
    largest deviation to its scale, and groups where it reaches 1/2 are
    beyond the precision (their scale is not determined) and get an infinite
    tolerance. A median is rounded before it is subtracted (backward stable:
    ``unit |c| / scale``; the corrected two-pass mean avoids that rounding).
    The reference's one-pass long-double mean adds ``~p ref_unit max|x| /
    scale``, which matters when the center dwarfs the spread (and where long
    double is float64, as on some platforms). Kept statistics at the bottom
    of the subnormal range of the dtype under test sit on its grid.
    """
    X = np.asarray(X, dtype=np.float64)
    grid = TINY32 if unit == EPS32 else TINY
    tol_z = np.zeros(Z_ref.shape)
    tol_s = np.zeros((len(X), len(cols)))
    for g, c in enumerate(cols):
        zmax = row_max(Z_ref[:, c])
        kappa = np.full(len(X), 64 * unit * len(c))
        if scale in ("mad", "iqr") and center != "median":
            s = S_ref[:, g].astype(np.float64)
            spread = row_max(X[:, c] - (0 if center is None else X[:, c][:, :1]))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ratio = np.where(s > 0, spread / s, 0.0)
            kappa *= 1 + np.where(np.isnan(ratio), 0.0, ratio)
        z = np.abs(np.where(np.isfinite(Z_ref[:, c]), Z_ref[:, c], 0.0))
        # inf: beyond the float64 range; 0 * inf (NaN): rows set to inf below
        with np.errstate(over="ignore", invalid="ignore"):
            tol_z[:, c] = (64 * unit * len(c) * zmax)[:, None] + z * kappa[:, None]
        tol_z[np.ix_(kappa >= 0.5, c)] = np.inf
        kappa = np.where(kappa < 0.5, kappa, np.inf)
        den = np.ones(len(X))
        if scale is not None:
            den = np.hypot(S_ref[:, g].astype(np.float64), np.sqrt(eps))
            den = np.where((den > 0) & np.isfinite(den), den, 1.0)
        c_err = 64 * ref_unit * len(c) * row_max(X[:, c])
        if center == "median":
            c_err += 8 * unit * row_max(X[:, c])
        with np.errstate(over="ignore"):
            tol_z[:, c] += (c_err / den)[:, None] * (1 + z)
        S_abs = np.abs(np.where(np.isnan(S_ref[:, g]), 0, S_ref[:, g]))
        tol_s[:, g] = kappa * S_abs.astype(np.float64)
        tol_s[:, g] += 4 * unit / EPS64 * TINY + 2 * grid
        if center == "median" and scale == "std":
            # The rounded median moves every deviation by delta, and the root
            # mean square s about it by at most delta * |mean(dev)| / s +
            # delta**2 / s <= delta + delta**2 / s.
            s_ref = S_abs.astype(np.float64)
            delta = 8 * unit * row_max(X[:, c])
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                tol_s[:, g] += delta + np.where(s_ref > 0, delta**2 / s_ref, 0.0)
        if scale == "mad":
            # The reference's center error moves every deviation alike, and a
            # median of absolute deviations by as much (times MAD_TO_STD).
            tol_s[:, g] += 2 * c_err
    return tol_z, tol_s
