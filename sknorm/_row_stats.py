"""Per-sample center and scale statistics: stable, NaN-aware, chunk-local.

Everything here works on one *block*: a 2-D float64 array holding some rows of
one column group. :func:`normalize_block` writes the normalized block and returns
the per-row center and scale. The engine (:mod:`sknorm._engine`) cuts the data
into row chunks and column groups and calls it.

Numerics
--------
* Mean centering uses a *shifted two-pass* scheme: each row is first shifted by
  a pivot (its first value), the mean ``delta`` of the shifted residuals is
  computed, and the residuals are corrected by it. The center is
  ``pivot + delta`` but the output is ``(x - pivot) - delta``, so the center is
  never rounded before it is subtracted: a row ``1e12 + N(0, 1)`` keeps full
  precision relative to its spread, and a constant row gives exactly zero.
  ``E[x**2] - E[x]**2`` is never used.
* The denominator is ``hypot(s, sqrt(eps)) == sqrt(s**2 + eps)``, which cannot
  overflow for large ``s``.
* Rows whose fast-path statistics are not finite (a NaN or inf in the row, or a
  sum of squares that overflowed or underflowed) are recomputed by a NaN-aware,
  rescaled slow path; an ``inf`` in the data raises a ``ValueError`` there. No
  separate pass over the data is needed to validate it.
"""

import warnings

import numpy as np

# Consistency constants: for normal data, MAD * 1.4826... and IQR / 1.3489...
# estimate the standard deviation. Both are functions of Phi^-1(3/4).
MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4)
IQR_TO_STD = 1.3489795003921634  # 2 * Phi^-1(3/4)

_INF_MESSAGE = (
    "Input X contains infinity. sknorm ignores NaN when computing a sample's "
    "statistics and keeps it in the output, but it cannot normalize a sample "
    "holding +/-inf: replace inf values (for example with np.nan) first."
)

# Below this sum of squares the fast path may have lost precision to underflow.
_SS_SMALL = np.finfo(np.float64).tiny / np.finfo(np.float64).eps


def denominator(scale, eps):
    """Return ``sqrt(scale**2 + eps)`` without overflow, with 0 replaced by 1.

    A zero denominator only happens for ``eps == 0`` and a constant row; that
    row is then left at its centered value (zeros), never divided by zero.
    """
    d = np.hypot(scale, np.sqrt(eps))
    if eps == 0:
        d = np.where(d == 0, 1.0, d)
    return d


def normalize_block(x, out, center, scale, eps):
    """Normalize each row of ``x`` into ``out``.

    Parameters
    ----------
    x : ndarray of shape (n_rows, n_cols), float64 or float32
        The block to normalize. An inf in it raises ValueError.
    out : ndarray of shape (n_rows, n_cols), float64
        Where the result goes. May be ``x`` itself (then ``x`` is copied: the
        block is one chunk, so this is O(chunk) scratch).
    center : {"mean", "median", None}
    scale : {"std", "mad", "iqr", None}
    eps : float
        Added to the squared scale under the square root.

    Returns
    -------
    c : ndarray of shape (n_rows,)
        Per-row center (zeros when ``center is None``).
    s : ndarray of shape (n_rows,) or None
        Per-row scale before ``eps`` (``None`` when ``scale is None``).
    """
    # NaN/inf rows produce invalid intermediate values before the slow path
    # redoes them; those are expected, not warnings for the user.
    with np.errstate(invalid="ignore", over="ignore"):
        return _normalize_block(x, out, center, scale, eps)


def _normalize_block(x, out, center, scale, eps):
    n_rows, n_cols = x.shape
    if np.may_share_memory(out, x):
        # The slow path below needs the raw values of the rows it redoes.
        x = x.copy()
    if center == "mean":
        pivot = x[:, 0].astype(np.float64)
        np.subtract(x, pivot[:, None], out=out)
        delta = out.sum(axis=1)
        delta /= n_cols
        out -= delta[:, None]
        c = pivot + delta
    elif center == "median":
        c = np.median(x, axis=1).astype(np.float64)
        np.subtract(x, c[:, None], out=out)
    else:
        c = np.zeros(n_rows)
        if out is not x:
            out[...] = x

    # ``out`` now holds the deviations about the center.
    s = ss = None
    if scale == "std":
        ss = np.einsum("ij,ij->i", out, out)
        s = np.sqrt(ss / n_cols)
    elif scale == "mad":
        s = MAD_TO_STD * np.median(np.abs(out), axis=1)
    elif scale == "iqr":
        q25, q75 = np.percentile(out, [25, 75], axis=1)
        s = (q75 - q25) / IQR_TO_STD

    bad = ~np.isfinite(c)
    if s is not None:
        bad |= ~np.isfinite(s)
        if ss is not None and eps == 0:
            # Without eps a tiny row's sum of squares may have underflowed
            # (even to 0): redo those rows rescaled, unless truly constant.
            small = np.flatnonzero(ss < _SS_SMALL)
            if small.size:
                bad[small] |= (out[small] != 0).any(axis=1)
    elif center is None:
        # Nothing was computed from the data: check it for inf directly.
        if np.isinf(x).any():
            raise ValueError(_INF_MESSAGE)
    if bad.any():
        rows = np.flatnonzero(bad)
        c_bad, s_bad, dev = _slow_rows(x[rows].astype(np.float64), center, scale)
        c[rows] = c_bad
        if s is not None:
            s[rows] = s_bad
        out[rows] = dev
    if s is not None:
        out /= denominator(s, eps)[:, None]
    return c, s


def _slow_rows(x, center, scale):
    """NaN-aware, overflow-safe statistics for a few rows (a fresh copy ``x``).

    Returns the centers, the scales (or None) and the deviations about the
    centers. Raises ValueError if a row holds inf.
    """
    if np.isinf(x).any():
        raise ValueError(_INF_MESSAGE)
    nan = np.isnan(x)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if center == "mean":
            first = np.argmax(~nan, axis=1)
            pivot = x[np.arange(x.shape[0]), first]
            pivot = np.where(np.isnan(pivot), 0.0, pivot)
            r = x - pivot[:, None]
            m = _row_absmax(r)
            delta = m * np.nanmean(r / m[:, None], axis=1)
            dev = r - delta[:, None]
            c = pivot + delta
        elif center == "median":
            c = np.nanmedian(x, axis=1)
            dev = x - c[:, None]
        else:
            c = np.zeros(x.shape[0])
            dev = x
        s = None
        if scale == "std":
            m = _row_absmax(dev)
            s = m * np.sqrt(np.nanmean((dev / m[:, None]) ** 2, axis=1))
        elif scale == "mad":
            s = MAD_TO_STD * np.nanmedian(np.abs(dev), axis=1)
        elif scale == "iqr":
            q25, q75 = np.nanpercentile(dev, [25, 75], axis=1)
            s = (q75 - q25) / IQR_TO_STD
    all_nan = nan.all(axis=1)
    c[all_nan] = np.nan
    if s is not None:
        s[all_nan] = np.nan
    return c, s, dev


def _row_absmax(r):
    """Row-wise max |r| ignoring NaN, with 0 (and all-NaN) replaced by 1."""
    m = np.nanmax(np.abs(r), axis=1)
    return np.where((m > 0) & np.isfinite(m), m, 1.0)
