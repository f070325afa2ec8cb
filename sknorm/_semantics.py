"""What a normalization computes, written once for every backend.

Every path (the numpy and numba engines, sparse matrices, Array API arrays
such as PyTorch or CuPy tensors) follows the rules here; the backends only
add fast ways to get the same row statistics on ordinary rows.

* **Center** ``c``: the row mean by the *corrected two-pass* scheme (the mean
  ``delta`` is subtracted, then the mean ``delta2`` of what is left, which is
  the rounding error of ``delta``; the center is ``delta + delta2`` and the
  deviations are ``(x - delta) - delta2``), or the row median, or 0.
* **Scale** ``s`` of the deviations: root mean square (``"std"``), 1.4826
  times the median absolute deviation (``"mad"``), the interquartile range
  divided by 1.349 (``"iqr"``). Where a robust scale is 0 but the row is not
  constant (more than half of its values tie), it falls back to
  ``sqrt(pi / 2)`` times the mean absolute deviation about the center, which
  also estimates the standard deviation of normal data (the fallback used
  with Iglewicz & Hoaglin's modified z-scores), whatever ``eps``. A row whose
  values are all equal keeps its scale.
* **Denominator** ``sqrt(s**2 + eps)`` (:func:`denominator`), with 0 (a
  constant row and ``eps=0``) replaced by 1: such a row maps to zeros.
* **NaN** is ignored in the statistics and kept in the output; a row of NaN
  has a NaN center and scale (a center of 0 with ``center=None``). ``inf``
  is rejected (:data:`INF_MESSAGE`).
* **Tiny, huge and subnormal rows** (:func:`normalize_rows`): each row below
  1, or whose sums could overflow, is multiplied by the power of two that
  brings its largest magnitude into ``[0.5, 1)`` (:func:`row_exponent`),
  which is exact, before the statistics are formed, so that no sum of
  squares overflows or underflows; ``eps`` is rescaled with it and
  the center and scale are scaled back. Deviations that scaling a huge row
  down pushed into the subnormal range are formed again at their own size.
* **Affine map** ``gain * z + bias``, applied in float64 and then rounded to
  the output dtype (:func:`apply_affine`): float32 output is the float64
  result rounded to float32. A value beyond the output dtype's range raises
  (:data:`OVERFLOW_MESSAGE`) instead of becoming inf.
* **Kept statistics and the inverse** (:func:`inverse`): the output holds the
  kept columns in input order, then a center and a scale column per group
  (:class:`sknorm._layout.Layout`); the inverse is ``((y - bias) / gain) *
  denominator(s) + c``.

:func:`normalize_rows` (the rescaled algorithm, NaN-aware and branch-free)
and :func:`inverse` are written against an Array API namespace ``xp``: the
Array API backend runs them on its arrays and device, and the numpy backends
run them, with :data:`numpy_xp`, on the rows their fast path cannot take.
"""

import functools
import math

import numpy as np

# Consistency constants: for normal data, MAD * 1.4826..., IQR / 1.3489... and
# mean absolute deviation * sqrt(pi / 2) estimate the standard deviation.
MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4)
IQR_TO_STD = 1.3489795003921634  # 2 * Phi^-1(3/4)
MEAN_AD_TO_STD = 1.2533141373155003  # sqrt(pi / 2)

INF_MESSAGE = (
    "Input X contains infinity. sknorm ignores NaN when computing a sample's "
    "statistics and keeps it in the output, but it cannot normalize a sample "
    "holding +/-inf: replace inf values (for example with np.nan) first."
)

OVERFLOW_MESSAGE = (
    "The affine map gain_ * z + bias_ overflows {dtype} for some values of X "
    "(the result is beyond +/-{limit:.3g}). Transform float64 data "
    "(X.astype(np.float64)) to get the result."
)


def small_sum_of_squares(dtype):
    """Below this sum of squares a fast path may have lost digits.

    Squares of deviations near the subnormal range of ``dtype`` lose digits
    (or underflow to 0): rows whose sum of squares is this small are redone
    by :func:`normalize_rows` unless they are constant.
    """
    return _small_sum_of_squares(np.dtype(dtype))


@functools.lru_cache(maxsize=16)
def _small_sum_of_squares(dtype):
    info = np.finfo(dtype)
    return float(info.tiny / info.eps)


class _NumpyNamespace:
    """NumPy under the Array API names :func:`normalize_rows` uses.

    NumPy >= 2 is itself an Array API namespace; this shim also covers the
    older releases sknorm supports.
    """

    __name__ = "numpy"
    float64 = np.float64
    int64 = np.int64

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def asarray(a, dtype=None, device=None):
        return np.asarray(a, dtype=dtype)

    @staticmethod
    def concat(arrays, axis=0):
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def ldexp(x, k):
        return np.ldexp(x, k.astype(np.int64))

    @staticmethod
    def exponent(m):
        return np.frexp(m)[1].astype(np.float64)


numpy_xp = _NumpyNamespace()


def _ldexp(x, k, xp):
    """``x * 2**k`` (``k``: integer-valued floats), in two exact steps."""
    if xp is numpy_xp:
        return xp.ldexp(x, k)
    half = xp.floor(k / 2)
    return (x * 2.0**half) * 2.0 ** (k - half)


def _exponent(m, xp):
    """``e`` with ``m * 2**-e`` in [0.5, 1); 0 where ``m`` is 0 or not finite."""
    ok = (m > 0) & xp.isfinite(m)
    one = xp.ones_like(m)
    m1 = xp.where(ok, m, one)
    if xp is numpy_xp:
        e = xp.exponent(m1)
    else:
        # log2 may be an ulp off near powers of two: check and correct.
        e = xp.floor(xp.log2(m1)) + 1
        f = _ldexp(m1, -e, xp)
        e = xp.where(f >= 1, e + 1, xp.where(f < 0.5, e - 1, e))
    return xp.where(ok, e, xp.zeros_like(m))


def denominator(scale, eps, xp=numpy_xp, bounds=None):
    """``sqrt(scale**2 + eps)`` without overflow, with 0 replaced by 1.

    A zero denominator only happens for ``eps == 0`` and a constant row; that
    row is then left at its centered value (zeros), never divided by zero.
    NaN stays NaN. ``bounds``: ``(min, max)`` of a NumPy ``scale`` where the
    caller has them.
    """
    if xp is numpy_xp:
        scale = np.asarray(scale, dtype=np.float64)
        # The common case in two reductions (NaN fails both tests).
        if scale.size:
            lo, hi = (scale.min(), scale.max()) if bounds is None else bounds
            if lo > 1e-150 and hi < 1e150:
                return np.sqrt(scale * scale + eps)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        # sqrt(s * s + eps) is as accurate as hypot and several times faster;
        # hypot only where s * s could overflow or underflow.
        d = xp.sqrt(scale * scale + eps)
        extreme = ~((scale < 1e150) & (scale > 1e-150))
        if xp is numpy_xp:
            if extreme.any():
                d[extreme] = np.hypot(scale[extreme], math.sqrt(eps))
        else:
            root = xp.full_like(scale, math.sqrt(eps))
            d = xp.where(extreme, xp.hypot(scale, root), d)
    if eps == 0:
        d = xp.where(d == 0, xp.ones_like(d), d)
    return d


def robust_fallback(s, dev, valid, count, xp=numpy_xp):
    """Scale ``s`` (MAD or IQR) with the zero-spread fallback applied.

    Where ``s`` is 0 and the row's values are not all equal, ``sqrt(pi / 2)``
    times the mean absolute deviation ``dev`` (the deviations about the
    center; ``valid`` masks out NaN, None when there is none; ``count`` the
    number of valid values per row). A constant row keeps its scale.
    """
    a = xp.abs(dev)
    hi, lo = dev, dev
    if valid is not None:
        a = xp.where(valid, a, xp.zeros_like(a))
        hi = xp.where(valid, dev, xp.full_like(dev, -float("inf")))
        lo = xp.where(valid, dev, xp.full_like(dev, float("inf")))
    moving = xp.max(hi, axis=1) > xp.min(lo, axis=1)
    mean_ad = _safe_divide(xp.sum(a, axis=1), count, xp)
    return xp.where((s == 0) & moving, MEAN_AD_TO_STD * mean_ad, s)


def _safe_divide(num, count, xp):
    """``num / count`` where count > 0, NaN where there is no valid value."""
    ok = count > 0
    out = num / xp.where(ok, count, xp.ones_like(count))
    return xp.where(ok, out, xp.full_like(out, float("nan")))


def _pick(v, idx, ok, xp):
    """``v[i, idx[i]]`` for each row ``i``, 0 where not ``ok`` (exact)."""
    if xp is numpy_xp:
        out = np.take_along_axis(v, idx.astype(np.intp)[:, None], axis=1)[:, 0]
        return np.where(ok, out, 0.0)
    cols = xp.arange(v.shape[1], dtype=v.dtype, device=_device(v))
    hit = (cols[None, :] == idx[:, None]) & ok[:, None]
    return xp.sum(xp.where(hit, v, xp.zeros_like(v)), axis=1)


def _device(a):
    return getattr(a, "device", None)


def _sorted_valid(a, valid, count, xp):
    """Rows of ``a`` sorted with the NaN (``~valid``) last, as +inf."""
    if not hasattr(xp, "sort"):  # pragma: no cover - sort is in the standard
        raise ValueError(
            f"The array namespace {xp.__name__} has no sort, which the median, "
            "'mad' and 'iqr' need. Use center='mean' and scale='std' (or None), "
            "or pass a NumPy array."
        )
    return xp.sort(xp.where(valid, a, xp.full_like(a, float("inf"))), axis=1)


def row_median(a, valid, count, xp=numpy_xp):
    """Row median ignoring NaN (mean of the two middle values, as NumPy)."""
    v = _sorted_valid(a, valid, count, xp)
    ok = count > 0
    last = xp.where(ok, count - 1, xp.zeros_like(count))
    lo, hi = xp.floor(last / 2), xp.floor(count / 2)
    hi = xp.minimum(hi, last)
    a_lo, a_hi = _pick(v, lo, ok, xp), _pick(v, hi, ok, xp)
    out = xp.where(lo == hi, a_lo, (a_lo + a_hi) / 2)
    return xp.where(ok, out, xp.full_like(out, float("nan")))


def row_iqr(a, valid, count, xp=numpy_xp):
    """Row q75 - q25 ignoring NaN, of NumPy's default linear interpolation.

    Formed from differences of the order statistics (:func:`iqr_from_sorted`),
    so it is the IQR of ``a`` to a few ulps whatever the rows' offset: pass
    the data, not deviations about a rounded center (whose rounding can
    exceed a small IQR and would set off the zero-spread fallback).
    """
    v = _sorted_valid(a, valid, count, xp)
    ok = count > 0
    last = xp.where(ok, count - 1, xp.zeros_like(count))
    ends = []
    for frac in (0.25, 0.75):
        h = last * frac
        lo = xp.floor(h)
        hi = xp.minimum(lo + 1, last)
        ends.append((_pick(v, lo, ok, xp), _pick(v, hi, ok, xp), h - lo))
    out = iqr_from_sorted(*ends[0], *ends[1])
    return xp.where(ok, out, xp.full_like(out, float("nan")))


def iqr_from_sorted(a25, b25, t25, a75, b75, t75):
    """``q75 - q25`` with ``q = a + (b - a) * t`` (linear interpolation).

    As ``(a75 - a25) + (b75 - a75) * t75 - (b25 - a25) * t25``: each term is a
    difference of two data values, rounded once, so the result is accurate
    relative to the spread between the order statistics, not to their size
    (two interpolated quantiles near 1e8 would each carry an error of about
    1e-8 before their difference is taken).
    """
    return (a75 - a25) + (b75 - a75) * t75 - (b25 - a25) * t25


def row_exponent(m, n_cols, scale, eps, xp=numpy_xp):
    """The power of two ``e`` each row is divided by (see :func:`normalize_rows`).

    ``m``: the rows' largest magnitudes; ``n_cols``: values per row. A row
    below 1 is scaled up to ``[0.5, 1)``, but with ``eps > 0`` no further
    than keeps ``sqrt(eps) * 2**-e`` finite; a row is scaled down only when
    its plain sums could overflow (the squares for ``"std"``, else the sums
    of values), since scaling down costs its tiny values their digits.
    """
    # 2**emax overflows m's dtype (1024 for float64, 128 for float32, the
    # work dtype on a device without float64).
    emax = math.frexp(float(xp.finfo(m.dtype).max))[1]
    e = _exponent(m, xp)
    n_log2 = math.ceil(math.log2(max(n_cols, 1)))
    if scale == "std":
        top = emax // 2 - 2 - (n_log2 + 1) // 2
    else:
        top = emax - 3 - n_log2
    e = xp.where(e > top, e, xp.minimum(e, xp.zeros_like(e)))
    # A row of subnormal numbers needs no more than 2**1022 (its values are
    # multiples of 2**-1074: they land at 2**-52 or above).
    e = xp.maximum(e, xp.full_like(e, float(-(emax - 2))))
    if eps > 0:
        floor = float(np.frexp(math.sqrt(eps))[1] - (emax - 64))
        e = xp.maximum(e, xp.full_like(e, floor))
    return e


def scaled_denominator(s_s, e, eps, xp=numpy_xp):
    """``denominator(s_s * 2**e, eps) * 2**-e``, formed at the rescaled size."""
    root = _ldexp(xp.full_like(s_s, math.sqrt(eps)), -e, xp)
    d_s = xp.hypot(s_s, root)
    return xp.where(d_s == 0, xp.ones_like(d_s), d_s)


def normalize_rows(x, center, scale, eps, xp=numpy_xp):
    """Normalize the rows of ``x``, safe at any magnitude: the reference rule.

    ``x`` is a 2-D float array (float64 wherever the namespace has it) that
    may hold NaN but no inf (the caller checks). Each row of values below 1,
    and each row whose plain sums could overflow, is multiplied by the power
    of two ``2**-e`` that brings its largest magnitude into ``[0.5, 1)``
    (exact; :func:`row_exponent`), so that the squares of its deviations can
    neither overflow nor underflow. The statistics are computed at that size
    and scaled back, the output is formed at that size (``eps`` rescaled by
    ``4**-e``: :func:`scaled_denominator`), so that a row of subnormal
    numbers normalizes as well as any other; deviations that scaling down
    pushed into the subnormal range are formed again at their own size. No
    data-dependent branch: the same operations run for every row, so a
    device never waits for the host.

    Returns ``(c, s, z)``: the centers, the scales (None when ``scale`` is
    None), and the normalized rows (the deviations when ``scale`` is None).
    """
    with np.errstate(all="ignore"):
        return _normalize_rows(x, center, scale, eps, xp)


def _normalize_rows(x, center, scale, eps, xp):
    zero = xp.zeros_like(x)
    valid = ~xp.isnan(x)
    count = xp.sum(xp.astype(valid, x.dtype), axis=1)
    m = xp.max(xp.where(valid, xp.abs(x), zero), axis=1)
    e = row_exponent(m, x.shape[1], scale, eps, xp)
    # One exact product per value: 2**-e is representable (row_exponent
    # keeps -1022 <= e <= 1024).
    xs = x * _ldexp(xp.ones_like(m), -e, xp)[:, None]
    ss = None
    if center == "mean":
        delta = _safe_divide(xp.sum(xp.where(valid, xs, zero), axis=1), count, xp)
        dev = xs - delta[:, None]
        dev0 = xp.where(valid, dev, zero)
        s1 = xp.sum(dev0, axis=1)
        delta2 = _safe_divide(s1, count, xp)
        if scale == "std":
            # Corrected two-pass: sum((v - delta2)**2) = sum(v**2) - s1 * delta2.
            ss = xp.sum(dev0 * dev0, axis=1) - s1 * delta2
            ss = xp.where(ss > 0, ss, xp.zeros_like(ss))
        dev = dev - delta2[:, None]
        c_s = delta + delta2
    elif center == "median":
        c_s = row_median(xs, valid, count, xp)
        dev = xs - c_s[:, None]
    else:
        c_s = xp.zeros_like(m)
        dev = xs
    c = _ldexp(c_s, e, xp)
    if center is not None:
        # A row of NaN has no center (with center=None the center is 0).
        c = xp.where(count > 0, c, xp.full_like(c, float("nan")))
    if scale is None:
        z = _ldexp(dev, e[:, None], xp)
        s = d = None
    else:
        if scale == "std":
            if ss is None:
                dev0 = xp.where(valid, dev, zero)
                ss = xp.sum(dev0 * dev0, axis=1)
            s_s = xp.sqrt(_safe_divide(ss, count, xp))
        elif scale == "mad":
            s_s = MAD_TO_STD * row_median(xp.abs(dev), valid, count, xp)
        else:
            s_s = row_iqr(xs, valid, count, xp) / IQR_TO_STD
        if scale != "std":
            s_s = robust_fallback(s_s, dev, valid, count, xp)
        z = dev / scaled_denominator(s_s, e, eps, xp)[:, None]
        if eps == 0:
            # A zero denominator (constant row) leaves the deviations, in
            # data units (not 0 for center=None).
            unscaled = _ldexp(dev, e[:, None], xp)
            z = xp.where((s_s == 0)[:, None], unscaled, z)
        s = _ldexp(s_s, e, xp)
        d = denominator(s, eps, xp)
    # Deviations that scaling down made subnormal lost digits: form them
    # again unscaled (they are small next to the row's largest value, so
    # x - c cannot overflow).
    tiny = float(xp.finfo(x.dtype).smallest_normal)
    lost = (e > 0)[:, None] & (xp.abs(dev) < tiny)
    again = x - c[:, None]
    if d is not None:
        again = again / d[:, None]
    z = xp.where(lost, again, z)
    return c, s, z


def apply_affine(z, gain, bias, out_dtype, xp=numpy_xp):
    """``gain * z + bias`` in float64 (or the work dtype), then ``out_dtype``.

    In place (and returned) when ``z`` is a NumPy array of ``gain``'s dtype.
    Raises ValueError where a finite result is beyond ``out_dtype``'s range
    (only possible below float64). ``z``: 2-D; ``gain``, ``bias``: per column.
    """
    if xp is numpy_xp and z.dtype == gain.dtype:
        z *= gain
        z += bias
        return z
    y = xp.astype(z, gain.dtype) * gain + bias
    with np.errstate(over="ignore"):  # raised below, with a clear message
        out = xp.astype(y, out_dtype)
    check_overflow(out, out_dtype, xp)
    return out


def overflowed(out, xp=numpy_xp):
    """Whether the affine output ``out`` holds an inf (from a finite value)."""
    return xp.any(xp.isinf(out))


def check_overflow(out, dtype, xp=numpy_xp):
    """Raise :data:`OVERFLOW_MESSAGE` if ``out`` holds an inf (numpy only)."""
    if xp is numpy_xp and np.dtype(dtype) != np.float64 and overflowed(out):
        raise_overflow(dtype)


def raise_overflow(dtype):
    limit = float(np.finfo(np.dtype(str(dtype).split(".")[-1])).max)
    raise ValueError(
        OVERFLOW_MESSAGE.format(dtype=str(dtype).split(".")[-1], limit=limit)
    )


def inverse(Y, layout, center, scale, eps, gain=None, bias=None, xp=numpy_xp):
    """Undo a transform from its dense output ``Y`` with kept statistics.

    ``Y`` holds every input column (nothing dropped) followed by the kept
    statistics, as :class:`~sknorm._layout.Layout` places them. Returns the
    input, every column: the grouped ones as ``((y - bias) / gain) *
    denominator(s) + c``, the others as they are. ``Y`` is in the dtype to
    compute in (float64 wherever the namespace has it).
    """
    p = layout.spec.n_features
    X = Y[:, :p]
    stats = {}
    for k, (g, which) in enumerate(layout.stat_order(center, scale)):
        stats.setdefault(which, [None] * layout.n_groups)[g] = k + p
    col_group = xp.asarray(
        np.maximum(layout.col_group, 0), dtype=xp.int64, device=_device(Y)
    )

    def per_column(which):
        cols = xp.asarray(stats[which], dtype=xp.int64, device=_device(Y))
        per_group = xp.take(Y, cols, axis=1)
        return xp.take(per_group, col_group, axis=1)

    block = X
    if gain is not None:
        block = (block - bias) / gain
    if scale is not None:
        block = block * denominator(per_column("scale"), eps, xp)
    if center is not None:
        block = block + per_column("center")
    if layout.other.size:
        in_group = xp.asarray(layout.in_group, device=_device(Y))
        block = xp.where(in_group, block, X)
    return block
