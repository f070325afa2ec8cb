"""The numpy backend's fast row statistics (BLAS, in place, chunk-local).

:func:`normalize_block` normalizes one *block* (some rows of one column
group, float64 or float32) into the output by the rules of
:mod:`sknorm._semantics`, with no full-size temporary: BLAS ``gemv``/``dot``
row sums and ``ger`` per-row subtractions work in place. The engine
(:mod:`sknorm._engine`) cuts the data into row chunks and column groups and
calls it, on several threads.

* Mean centering by the corrected two-pass scheme: ``delta = sum(x) / n``
  is subtracted, then ``delta2 = sum(v) / n`` of the residuals ``v``, which
  is also taken out of the sum of squares (``sum(v**2) - sum(v) * delta2``,
  Chan, Golub & LeVeque). The output is ``(x - delta) - delta2``: a row
  ``1e12 + N(0, 1)`` keeps full precision relative to its spread, and a
  constant row gives exactly zero.
* Row sums are BLAS sums over blocks of :data:`BLOCK` values, added in
  float64 (float32 data is normalized in float32 with float64 statistics).
* The median, MAD and IQR from a sorted copy of the block.
* Rows the fast statistics cannot take (a NaN or inf, a sum of squares that
  overflowed or may have lost digits to underflow, a tiny robust scale) are
  flagged and redone by :func:`sknorm._semantics.normalize_rows`, the
  rescaled reference rule; an ``inf`` raises there. No separate validation
  pass over the data is needed.
"""

import functools

import numpy as np
from scipy.linalg import blas as _blas

from ._semantics import (
    INF_MESSAGE,
    IQR_TO_STD,
    MAD_TO_STD,
    denominator,
    iqr_from_sorted,
    normalize_rows,
    robust_fallback,
    small_sum_of_squares,
)


def normalize_block(x, out, center, scale, eps):
    """Normalize each row of ``x`` into ``out``.

    Parameters
    ----------
    x : ndarray of shape (n_rows, n_cols), float64 or float32
        The block to normalize. An inf in it raises ValueError.
    out : ndarray of shape (n_rows, n_cols), float64 or float32
        Where the result goes; the arithmetic is done in its dtype (float32
        statistics are summed in float64). May be ``x`` itself (then ``x`` is
        copied: the block is one chunk, so this is O(chunk) scratch).
    center : {"mean", "median", None}
    scale : {"std", "mad", "iqr", None}
    eps : float
        Added to the squared scale under the square root.

    Returns
    -------
    c : ndarray of shape (n_rows,)
        Per-row center (zeros when ``center is None``), float64.
    s : ndarray of shape (n_rows,) or None
        Per-row scale before ``eps`` (``None`` when ``scale is None``), float64.
    """
    # NaN/inf rows produce invalid intermediate values before the slow path
    # redoes them; those are expected, not warnings for the user.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _normalize_block(x, out, center, scale, eps)


def _normalize_block(x, out, center, scale, eps):
    n_rows, n_cols = x.shape
    dtype = out.dtype
    if np.may_share_memory(out, x):
        # The slow path below needs the raw values of the rows it redoes.
        x = x.copy()
    # Values per row: n_cols, or on a block holding NaN the non-NaN counts,
    # with the NaN zeroed in ``out`` while the sums are formed (``nan``).
    count = n_cols
    nan = None
    if center == "mean":
        delta = row_sum(x)
        src = x
        if np.isnan(np.add.reduce(delta)):  # (+inf and -inf rows: a harmless yes)
            nan, count = _zero_nan(x, out)
            delta = row_sum(out)
            src = out
        delta /= count
        delta = delta.astype(dtype, copy=False)
        sub_rows(out, src, delta)
        if nan is not None:
            nan.fill(out, 0)
        # Corrected two-pass: the mean of the residuals is the rounding error
        # of ``delta`` (about eps * |delta|); subtract it too, and take it out
        # of the sum of squares (Chan, Golub & LeVeque's correction).
        s1 = row_sum(out)
        if scale == "std":
            ss = row_sum_sq(out)
        delta2 = s1 / count
        sub_rows(out, out, delta2.astype(dtype))
        if scale == "std":
            ss -= s1 * delta2
            np.maximum(ss, 0.0, out=ss)
        c = delta.astype(np.float64)
        c += delta2
    elif center == "median":
        # Order statistics from a sorted copy of the block (numpy's SIMD sort
        # is several times faster than np.median's per-row partition), or on
        # long rows a partial selection (_order_stats). NaN goes last and inf
        # to the ends: such rows are flagged below.
        wanted = _median_at(n_cols) + (_iqr_at(n_cols) if scale == "iqr" else [])
        srt = _order_stats(x, wanted)
        c = _median_sorted(srt)
        sub_rows(out, x, c.astype(dtype))
    else:
        c = np.zeros(n_rows)
        if out is not x:
            np.copyto(out, x)

    # ``out`` now holds the deviations about the center.
    s = None
    if scale == "std":
        if center != "mean":
            ss = row_sum_sq(out)
            if center is None and np.isnan(ss).any():
                nan, count = _zero_nan(x, out)
                ss = row_sum_sq(out)
        s = np.sqrt(ss / count)
    if nan is not None:
        # NaN back in the deviations: kept in the output, and seen by the
        # checks below (a row of NaN, or a tiny one, goes to the slow path).
        nan.fill(out, np.nan)
    if scale == "mad":
        srt = _order_stats(np.abs(out), _median_at(n_cols), in_place=True)
        s = MAD_TO_STD * _median_sorted(srt)
    elif scale == "iqr":
        # The IQR of x itself, from differences of its order statistics
        # (iqr_from_sorted): deviations about a rounded mean could carry more
        # rounding than a small IQR.
        if center != "median":  # the median's sort is of x already
            srt = _order_stats(x, _iqr_at(n_cols))
        s = _iqr_sorted(srt) / IQR_TO_STD
    if scale == "mad":
        dev_lo, dev_hi = srt[:, 0], srt[:, -1]
    elif scale == "iqr":
        # srt holds x: the deviations' ends (NaN, or inf where x - c
        # overflowed the dtype) from the deviations themselves.
        dev_lo, dev_hi = out.min(axis=1), out.max(axis=1)
    if scale in ("mad", "iqr"):
        # A zero robust scale on a row that is not constant: the shared
        # fallback (mean absolute deviation), only on those rows.
        zero = np.flatnonzero(s == 0)
        if zero.size:
            count = np.full(zero.size, float(n_cols))
            s[zero] = robust_fallback(s[zero], out[zero], None, count)

    # ``bad``: rows for the reference rule (None: no row). The common case,
    # every row finite and none tiny, is screened by a few reductions.
    bad = None
    bounds = None
    if scale == "std" and nan is None:
        bounds = _clean_std(c, s, n_cols, dtype)
    if s is None:
        if not np.isfinite(np.add.reduce(c)):  # NaN and inf reach the sum
            bad = ~np.isfinite(c)
    elif bounds is None:
        bad = ~(np.isfinite(c) & np.isfinite(s))
        # Rows of tiny values: a sum of squares that may have underflowed (even
        # to 0), or deviations near the subnormal range, lose digits here.
        # Redo them rescaled, unless they are truly constant.
        small = small_sum_of_squares(dtype)
        if scale == "std":
            tiny = ss < small
        else:
            # A tiny robust scale, or tiny deviations (their sorted ends),
            # maybe rounded to the subnormal grid (a MAD of 0 among them).
            tiny = (s > 0) & (s < small)
            end = np.maximum(np.abs(dev_lo), np.abs(dev_hi))
            tiny |= (end > 0) & (end < small)
        if tiny.any():
            tiny = np.flatnonzero(tiny & ~bad)
            bad[tiny] = (out[tiny] != 0).any(axis=1)
    if center == "median" or scale in ("mad", "iqr"):
        # Robust statistics can stay finite around a NaN or an inf (the
        # median of [1, 2, inf] is 2): check the ends of the sorted rows.
        ends = ~(np.isfinite(srt[:, 0]) & np.isfinite(srt[:, -1]))
        bad = ends if bad is None else bad | ends
        if scale == "iqr":
            bad |= ~(np.isfinite(dev_lo) & np.isfinite(dev_hi))
    elif center is scale is None:
        # Nothing was computed from the data: check it for inf directly.
        inf = np.isinf(out).any(axis=1)
        bad = inf if bad is None else bad | inf
    rows = _NO_ROWS if bad is None else np.flatnonzero(bad)
    if rows.size:
        x_bad = x[rows].astype(np.float64)
        if np.isinf(x_bad).any():
            raise ValueError(INF_MESSAGE)
        c_bad, s_bad, z_bad = normalize_rows(x_bad, center, scale, eps)
        c[rows] = c_bad
        if s is not None:
            s[rows] = s_bad
    if s is not None:
        d = denominator(s, eps, bounds=bounds)
        if rows.size:
            d[rows] = 1.0
        # Where 1 / d is beyond the dtype's range (eps == 0 and a tiny
        # robust scale, or a tiny eps), divide instead of multiplying.
        tiny_d = _tiny_denominator(dtype)
        if bounds is None or not bounds[0] >= 2 * tiny_d:  # (d >= s, to an ulp)
            huge = np.flatnonzero(d < tiny_d)
            if huge.size:
                out[huge] = out[huge] / d[huge, None]
                d[huge] = 1.0
        scale_rows(out, (1.0 / d).astype(dtype))
    if rows.size:
        out[rows] = z_bad
    return c, s


_NO_ROWS = np.empty(0, dtype=np.intp)


def _clean_std(c, s, n_cols, dtype):
    """``(min, max)`` of ``s`` if no row of a block with scale "std" (and no
    NaN) needs the reference rule, else None: every center and scale finite
    (NaN and inf reach a sum and a max) and every sum of squares clear of
    ``small_sum_of_squares`` (``s**2 * n_cols`` is it to a few ulps; the
    factor 2 covers them)."""
    lo, hi = s.min(), s.max()
    if (
        np.isfinite(np.add.reduce(c))
        and hi < np.inf
        and lo * lo * n_cols >= 2 * small_sum_of_squares(dtype)
    ):
        return lo, hi
    return None


@functools.lru_cache(maxsize=8)
def _tiny_denominator(dtype):
    return 4 / float(np.finfo(dtype).max)


def _zero_nan(x, out):
    """Copy ``x`` into ``out`` with NaN as 0; return where the NaN are
    (:class:`_Holes`) and the counts of values present per row.

    Sums over ``out`` are then the sums of the values present.
    """
    holes = _Holes(x)
    count = x.shape[1] - holes.per_row()
    if out is not x:
        np.copyto(out, x)
    holes.fill(out, 0)
    return holes, count


class _Holes:
    """The NaN of a block: since NaN comes in columns (a feature missing for
    some samples), only the columns that hold any are masked, found from the
    column sums (BLAS; a NaN reaches its column's sum, and +inf and -inf in
    one column only add a column). Past a sixteenth of the columns, one mask
    of the whole block is cheaper (a column is a strided pass, about 15 times
    the cost per value). The mask is at most a bool copy of the block
    (one chunk of scratch)."""

    def __init__(self, x):
        cols = np.flatnonzero(np.isnan(_ones(x.shape[0], x.dtype) @ x))
        if 16 * cols.size > x.shape[1]:
            cols = None
        self.cols = cols
        self.mask = np.isnan(x if cols is None else x[:, cols])

    def per_row(self):
        """NaN per row (float64)."""
        mask = self.mask
        # (A narrow accumulator makes the bool row sums 1.5x faster.)
        acc = np.uint16 if mask.shape[1] < 2**16 else np.intp
        return np.add.reduce(mask.view(np.uint8), axis=1, dtype=acc).astype(np.float64)

    def fill(self, out, value):
        """``out`` gets ``value`` where the block has NaN."""
        if self.cols is None:
            # (copyto with where= is 2x faster than putmask)
            np.copyto(out, value, where=self.mask)
            return
        for k, j in enumerate(self.cols):
            np.copyto(out[:, j], value, where=self.mask[:, k])


def _median_at(n_cols):
    """Positions of the order statistics of a row's median."""
    h = n_cols // 2
    return [h] if n_cols % 2 else [h - 1, h]


def _iqr_at(n_cols):
    """Positions of the order statistics of a row's IQR (see _iqr_sorted)."""
    last = n_cols - 1
    out = []
    for q in (0.25, 0.75):
        lo = int(np.floor(q * last))
        out += [lo, min(lo + 1, last)]
    return out


def _order_stats(a, positions, in_place=False):
    """``a`` with each row's values at ``positions`` and at both ends where a
    sort would put them (NaN last).

    numpy's SIMD sort beats a per-row selection on short rows; from 2,048
    columns (4,096 or 8,192 for more positions) np.partition is 1.3-2.7x
    faster (numpy 2, AVX-512).
    """
    n_cols = a.shape[1]
    kth = sorted(set(positions) | {0, n_cols - 1})
    if n_cols < 2048 * max(1, (len(kth) - 1) // 2):
        if in_place:
            a.sort(axis=1)
            return a
        return np.sort(a, axis=1)
    if in_place:
        a.partition(kth, axis=1)
        return a
    return np.partition(a, kth, axis=1)


def _median_sorted(srt):
    """Row medians (float64) of a block whose rows are sorted (or selected
    at those positions), as np.median."""
    n_cols = srt.shape[1]
    h = n_cols // 2
    if n_cols % 2:
        return srt[:, h].astype(np.float64)
    return (srt[:, h - 1].astype(np.float64) + srt[:, h]) / 2


def _iqr_sorted(srt):
    """Row IQR (float64) of a sorted block (or selected at _iqr_at), as
    np.percentile's "linear" quantiles."""
    n_cols = srt.shape[1]
    lo25, hi25, lo75, hi75 = _iqr_at(n_cols)
    a25, b25, a75, b75 = (
        srt[:, k].astype(np.float64) for k in (lo25, hi25, lo75, hi75)
    )
    last = n_cols - 1
    return iqr_from_sorted(a25, b25, 0.25 * last - lo25, a75, b75, 0.75 * last - lo75)


# -- fast row-wise primitives -------------------------------------------------
# numpy applies a per-row scalar (``out -= v[:, None]``) through a buffered
# iterator that copies the broadcast operand; for long rows whose length is a
# multiple of 16, a buffer of exactly one row skips that copy (2-3x faster).
# BLAS ``ger`` (rank-1 update ``A += alpha * ones * v``) subtracts a per-row
# value in place at memory speed; BLAS ``gemv``/``dot`` give the row sums.

#: Values per partial row sum: partial sums are added in float64, so that the
#: rounding error of a row sum stays near 1e-16 relative for any row length.
BLOCK = 1024

# Below this many values per block, the plain numpy calls are cheapest.
_SMALL = 2**14
_GER = {np.dtype(np.float64): _blas.dger, np.dtype(np.float32): _blas.sger}
_ONES = {}


def _ones(n, dtype):
    key = (n, dtype)
    v = _ONES.get(key)
    if v is None:
        v = np.ones(n, dtype=dtype)
        v.setflags(write=False)
        if n <= 2 * BLOCK:
            _ONES[key] = v
    return v


def _one_row_buffer(n_cols):
    return 256 <= n_cols <= 8192 and n_cols % 16 == 0


def sub_rows(out, x, v):
    """``out[i] = x[i] - v[i]`` for every row (``out`` may be ``x``)."""
    n_rows, n_cols = out.shape
    if out.size >= _SMALL:
        if _one_row_buffer(n_cols):
            old = np.setbufsize(n_cols)
            try:
                np.subtract(x, v[:, None], out=out)
            finally:
                np.setbufsize(old)
            return
        ger = _GER.get(out.dtype)
        if ger is not None and out.flags.c_contiguous and v.dtype == out.dtype:
            if x is not out:
                np.copyto(out, x)
            res = ger(-1.0, _ones(n_cols, out.dtype), v, a=out.T, overwrite_a=True)
            if res.ctypes.data != out.ctypes.data:  # pragma: no cover
                out[...] = res.T
            return
    np.subtract(x, v[:, None], out=out)


def scale_rows(out, r):
    """``out[i] *= r[i]`` for every row."""
    n_cols = out.shape[1]
    if out.size >= _SMALL and _one_row_buffer(n_cols):
        old = np.setbufsize(n_cols)
        try:
            np.multiply(out, r[:, None], out=out)
        finally:
            np.setbufsize(old)
        return
    np.multiply(out, r[:, None], out=out)


def _blocks(z):
    """Split the columns of ``z`` into a (rows, k, BLOCK) view and a tail."""
    n_rows, n_cols = z.shape
    k = n_cols // BLOCK
    head = z[:, : k * BLOCK].reshape(n_rows, k, BLOCK)
    return head, z[:, k * BLOCK :]


def row_sum(z):
    """Row sums of ``z`` in float64 (BLAS, in blocks of :data:`BLOCK`)."""
    n_cols = z.shape[1]
    if n_cols <= BLOCK:
        return (z @ _ones(n_cols, z.dtype)).astype(np.float64, copy=False)
    head, tail = _blocks(z)
    s = (head @ _ones(BLOCK, z.dtype)).sum(axis=1, dtype=np.float64)
    if tail.shape[1]:
        s += tail @ _ones(tail.shape[1], z.dtype)
    return s


def row_sum_sq(z):
    """Row sums of squares of ``z`` in float64 (in blocks of :data:`BLOCK`)."""
    if z.shape[1] <= BLOCK:
        return _vecdot(z, z).astype(np.float64, copy=False)
    head, tail = _blocks(z)
    s = _vecdot(head, head).sum(axis=1, dtype=np.float64)
    if tail.shape[1]:
        s += _vecdot(tail, tail)
    return s


def _einsum_vecdot(a, b):  # pragma: no cover - numpy < 2.0
    return np.einsum("...j,...j->...", a, b)


_vecdot = getattr(np, "vecdot", _einsum_vecdot)
