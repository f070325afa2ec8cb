"""Compiled row kernels (numba), used when numba is installed.

``pip install sknorm[fast]`` installs numba; :func:`sknorm.set_config` with
``engine="numpy"`` switches these kernels off. They cover the common dense
case (``center`` in {"mean", None}, ``scale`` in {"std", None}, groups of
contiguous columns) and compute, row by row and in one sweep over memory, the
same arithmetic as the numpy engine in :mod:`sknorm._row_stats`:

* ``t = x - pivot`` (pivot: the row's first value; exact for nearby values),
* ``delta = sum(t) / n``, ``delta2 = sum(t - delta) / n`` (corrected
  two-pass) and ``ss = sum(((t - delta) - delta2)**2)``, each summed in blocks
  of :data:`BLOCK` values whose partial sums are added in float64 (the error
  stays about ``1e-16`` relative for rows of any length),
* ``out = ((t - delta) - delta2) * (1 / hypot(sqrt(ss / n), sqrt(eps)))``,
  then ``* gain + bias``.

Only the additions inside a block are reassociated (vectorized); the
subtractions and products are done exactly as written. A row whose statistics
are not finite (NaN, inf, overflow) or may have underflowed is not written:
it is flagged and redone by the numpy slow path, from the untouched input
(which is why in-place normalization needs no copy).
"""

import threading

import numba
import numpy as np
from numba import njit, prange

#: Values per block of a row sum (see the module docstring).
BLOCK = 1024

_REASSOC = {"reassoc"}
_PARALLEL_LOCK = threading.Lock()


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sum(t, lo, hi):
    s = 0.0
    for j in range(lo, hi):
        s += t[j]
    return s


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sum_dev(t, lo, hi, d):
    s = 0.0
    for j in range(lo, hi):
        s += np.float64(t[j] - d)
    return s


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sum_sq_dev(t, lo, hi, d, d2):
    s = 0.0
    for j in range(lo, hi):
        v = np.float64((t[j] - d) - d2)
        s += v * v
    return s


@njit(cache=True, nogil=True)
def _blocked_sum(t, m):
    if m <= BLOCK:
        return _sum(t, 0, m)
    s = 0.0
    for lo in range(0, m, BLOCK):
        s += _sum(t, lo, min(m, lo + BLOCK))
    return s


@njit(cache=True, nogil=True)
def _blocked_sum_dev(t, m, d):
    if m <= BLOCK:
        return _sum_dev(t, 0, m, d)
    s = 0.0
    for lo in range(0, m, BLOCK):
        s += _sum_dev(t, lo, min(m, lo + BLOCK), d)
    return s


@njit(cache=True, nogil=True)
def _blocked_sum_sq_dev(t, m, d, d2):
    if m <= BLOCK:
        return _sum_sq_dev(t, 0, m, d, d2)
    s = 0.0
    for lo in range(0, m, BLOCK):
        s += _sum_sq_dev(t, lo, min(m, lo + BLOCK), d, d2)
    return s


@njit(cache=True, nogil=True)
def _any_dev(t, m, d, d2):
    for j in range(m):
        if (t[j] - d) - d2 != 0:
            return True
    return False


@njit(cache=True, nogil=True)
def _rows(
    X, Z, lo, hi, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, C, S, bad, t,
):  # fmt: skip
    """Normalize rows ``lo:hi``; ``t`` is a scratch row (one per thread)."""
    one = X.dtype.type(1)
    zero = X.dtype.type(0)
    sqrt_eps = np.sqrt(eps)
    affine = gain.shape[0] > 0
    n_groups = in_lo.shape[0]
    for i in range(lo, hi):
        x = X[i]
        z = Z[i]
        for g in range(n_groups):
            a = in_lo[g]
            m = in_hi[g] - a
            o = out_lo[g]
            p = x[a] if center else zero
            for j in range(m):
                t[j] = x[a + j] - p
            d = d2 = zero
            c = 0.0
            if center:
                # Corrected two-pass, as in sknorm._row_stats.
                delta = _blocked_sum(t, m) / m
                d = x.dtype.type(delta)
                delta2 = _blocked_sum_dev(t, m, d) / m
                d2 = x.dtype.type(delta2)
                c = np.float64(p) + np.float64(d) + delta2
                if not np.isfinite(c):
                    bad[i, g] = True
                    continue
            r = one
            if scale:
                ss = _blocked_sum_sq_dev(t, m, d, d2)
                s = np.sqrt(ss / m)
                if not np.isfinite(s) or (
                    eps == 0 and ss < ss_small and _any_dev(t, m, d, d2)
                ):
                    bad[i, g] = True
                    continue
                den = np.hypot(s, sqrt_eps)
                if den == 0:
                    den = 1.0
                r = x.dtype.type(1.0 / den)
                S[i, g] = s
            C[i, g] = c
            if affine:
                for j in range(m):
                    z[o + j] = (((t[j] - d) - d2) * r) * gain[a + j] + bias[a + j]
            else:
                for j in range(m):
                    z[o + j] = ((t[j] - d) - d2) * r
            if stat_c[g] >= 0:
                z[stat_c[g]] = c
            if scale and stat_s[g] >= 0:
                z[stat_s[g]] = S[i, g]
        for k in range(other.shape[0]):
            if np.isinf(x[other[k]]):
                bad[i, n_groups] = True
        for k in range(rest_in.shape[0]):
            z[rest_out[k]] = x[rest_in[k]]


@njit(parallel=True, cache=True, nogil=True)
def _rows_parallel(
    X, Z, step, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, C, S, bad, width,
):  # fmt: skip
    n = X.shape[0]
    n_chunks = (n + step - 1) // step
    for k in prange(n_chunks):
        t = np.empty(width, dtype=X.dtype)
        _rows(
            X, Z, k * step, min(n, (k + 1) * step), in_lo, in_hi, out_lo,
            stat_c, stat_s, other, rest_in, rest_out, gain, bias, center, scale, eps,
            ss_small, C, S, bad, t,
        )  # fmt: skip


def normalize(X, Z, layout, center, scale, eps, gain, bias, n_threads):
    """Normalize C-contiguous ``X`` into C-contiguous ``Z`` (may be ``X``).

    ``layout`` holds int64 arrays ``in_lo, in_hi, out_lo, stat_c, stat_s,
    other, rest_in, rest_out`` (group column ranges in ``X`` and ``Z``, kept
    statistic columns or -1, columns in no group, passthrough columns).
    ``gain``/``bias`` are arrays in ``Z.dtype`` (empty: no affine map).
    Returns ``(C, S, bad)``: ``bad[i, g]`` flags a row group left unwritten
    for the slow path, ``bad[i, -1]`` an inf in a column of no group.
    """
    n = X.shape[0]
    n_groups = layout[0].shape[0]
    C = np.empty((n, n_groups))
    S = np.zeros((n, n_groups))
    bad = np.zeros((n, n_groups + 1), dtype=np.bool_)
    widths = layout[1] - layout[0]
    width = max(1, int(widths.max())) if widths.size else 1
    # The sums of squares are float64 whatever the dtype.
    ss_small = float(np.finfo(np.float64).tiny / np.finfo(np.float64).eps)
    args = (*layout, gain, bias, center == "mean", scale == "std", float(eps))
    n_threads = min(n_threads, numba.config.NUMBA_NUM_THREADS)
    # Rows per parallel task: about 256 KiB of input.
    step = max(1, 2**18 // max(1, X.shape[1] * X.itemsize))
    if n_threads > 1 and n > step and _PARALLEL_LOCK.acquire(blocking=False):
        # numba's default threading layer does not allow concurrent parallel
        # launches: a second caller meanwhile runs the serial kernel.
        try:
            old = numba.get_num_threads()
            numba.set_num_threads(n_threads)
            try:
                _rows_parallel(X, Z, step, *args, ss_small, C, S, bad, width)
            finally:
                numba.set_num_threads(old)
        finally:
            _PARALLEL_LOCK.release()
    else:
        t = np.empty(width, dtype=X.dtype)
        _rows(X, Z, 0, n, *args, ss_small, C, S, bad, t)
    return C, S, bad
