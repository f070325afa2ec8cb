"""Shared fixtures, among them an independent reference implementation.

``reference`` is written from the formulas in DESIGN.md in extended precision
(``np.longdouble``) with plain, unoptimized numpy; the tests compare sknorm to
it, never sknorm to itself.
"""

import os

import numpy as np
import pytest
from scipy.stats import norm

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is in the test extra; only the property tests need it
    settings = None

if settings is not None:
    # Profiles for the property-based tests (tests/test_properties.py). "ci", the
    # default, is deterministic (same examples on every run and machine, no example
    # database); pick "dev" (random, more examples) or "thorough" with
    # SKNORM_HYPOTHESIS_PROFILE=dev, or pytest's --hypothesis-profile=dev.
    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        max_examples=100,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile("dev", max_examples=300, deadline=None)
    settings.register_profile("thorough", max_examples=3000, deadline=None)
    settings.load_profile(os.environ.get("SKNORM_HYPOTHESIS_PROFILE", "ci"))

# Consistency constants derived here independently from the normal quantile.
_Q3 = norm.ppf(0.75)


def _reference_row(row, center, scale, eps):
    """(z, c, s) for one row in long double; NaN entries ignored and kept."""
    x = np.asarray(row, dtype=np.longdouble)
    ok = ~np.isnan(x)
    v = x[ok]
    z = np.full(x.shape, np.nan, dtype=np.longdouble)
    if v.size == 0:
        return z, np.nan, np.nan
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
        s = np.median(np.abs(dev)) / np.longdouble(_Q3)
    elif scale == "iqr":
        q25, q75 = np.percentile(dev.astype(np.float64), [25, 75])
        s = np.longdouble(q75 - q25) / np.longdouble(2 * _Q3)
    else:
        s = None
    if s is None:
        z[ok] = dev
        return z, c, np.longdouble(1)
    den = np.sqrt(s * s + np.longdouble(eps))
    if den == 0:
        den = np.longdouble(1)
    z[ok] = dev / den
    return z, c, s


def reference_normalize(X, center="mean", scale="std", eps=1e-5, groups=None):
    """Reference per-sample normalization of ``X`` (float64 array) by groups.

    Returns ``(Z, C, S)`` in long double; ``groups`` is a list of column index
    lists (default: one group of all columns); other columns pass through.
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    groups = [list(range(p))] if groups is None else groups
    Z = X.astype(np.longdouble)
    C = np.empty((n, len(groups)), dtype=np.longdouble)
    S = np.empty((n, len(groups)), dtype=np.longdouble)
    for i in range(n):
        for g, cols in enumerate(groups):
            z, c, s = _reference_row(X[i, cols], center, scale, eps)
            Z[i, cols] = z
            C[i, g] = c
            S[i, g] = s
    return Z, C, S


@pytest.fixture
def reference():
    return reference_normalize


@pytest.fixture
def rng():
    return np.random.default_rng(0)
