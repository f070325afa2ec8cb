"""Compiled row kernels (numba), used when numba is installed.

``pip install sknorm[fast]`` installs numba; :func:`sknorm.set_config` with
``engine="numpy"`` switches these kernels off. They cover the common dense
case (``center`` in {"mean", None}, ``scale`` in {"std", None}, groups of
contiguous columns) and compute, row by row and in one sweep over memory, the
same arithmetic as the numpy engine in :mod:`sknorm._row_stats`:

* ``delta = sum(x) / n`` rounded to the dtype; then, from ``v = x - delta``
  (exact or nearly so: ``delta`` is close to the values), ``delta2 = sum(v) / n``
  and ``ss = sum(v**2) - sum(v) * delta2`` (the corrected two-pass formula of
  Chan, Golub & LeVeque), each summed in blocks of :data:`BLOCK` values whose
  partial sums are added in float64 (the error stays about ``1e-16`` relative
  for rows of any length),
* ``out = ((x - delta) - delta2) * (1 / sqrt(ss / n + eps))`` (``hypot``
  where that could overflow), then ``* gain + bias``; float32 data with an
  affine map is normalized and mapped in float64 (in registers) and rounded
  once, on store, as the shared rule says. The center is ``delta + delta2``.

A row holding NaN is normalized here too: when its plain sums come out not
finite, they are formed again skipping the NaN, with ``n`` the number of
values present, and the NaN stays NaN in the output.

Only the additions inside a block are reassociated (vectorized); the
subtractions and products are done exactly as written. A row whose
statistics are not finite (inf, overflow, a row of NaN) or may have
underflowed is not written:
it is flagged and redone by :func:`sknorm._semantics.normalize_rows`, the
reference rule every backend shares, from the untouched input (which is why
in-place normalization needs no copy).
"""

import threading

import numba
import numpy as np
from numba import njit, prange

from . import _config
from ._row_stats import BLOCK
from ._semantics import small_sum_of_squares

_REASSOC = {"reassoc"}
_PARALLEL_LOCK = threading.Lock()


# The reductions work on a block of rows of the scratch ``T`` (one call per
# block, not per row, so that short rows cost no call overhead); their inner
# loops over a row are plain loops that LLVM vectorizes (``reassoc``). Rows
# longer than BLOCK are summed by blocks of BLOCK values.
@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sum(t, lo, hi):
    s = 0.0
    for j in range(lo, hi):
        s += t[j]
    return s


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sums_dev(t, lo, hi, d):
    """Sum and sum of squares of ``t[lo:hi] - d`` (in float64)."""
    s = s2 = 0.0
    for j in range(lo, hi):
        v = np.float64(t[j] - d)
        s += v
        s2 += v * v
    return s, s2


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _block_sums(T, nr, m, out, cnt):
    """``out[i] = sum(T[i, :m])`` for the first ``nr`` rows (m <= BLOCK).

    A row whose sum is not finite is summed again without its NaN, ``cnt[i]``
    its count. NaN comes in columns: after a row with NaN, the next row is
    summed that way directly (one pass instead of two).
    """
    nan = False
    for i in range(nr):
        t = T[i]
        if not nan:
            s = 0.0
            for j in range(m):
                s += t[j]
            out[i] = s
            cnt[i] = m
            if np.isfinite(s):
                continue
        s = c = 0.0
        for j in range(m):
            v = np.float64(t[j])
            ok = v == v
            s += v if ok else 0.0
            c += 1.0 if ok else 0.0
        out[i] = s
        cnt[i] = c
        nan = c < m


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _block_sums_dev(T, nr, m, d, s1, s2, cnt):
    """Sums and sums of squares of ``T[i, :m] - d[i]`` (m <= BLOCK).

    Rows with NaN (``cnt[i] < m``) skip it (and count the other values).
    """
    for i in range(nr):
        t = T[i]
        di = d[i]
        a = b = 0.0
        if cnt[i] < m:
            c = 0.0
            for j in range(m):
                v = np.float64(t[j] - di)
                ok = v == v
                v = v if ok else 0.0
                a += v
                b += v * v
                c += 1.0 if ok else 0.0
            cnt[i] = c
        else:
            for j in range(m):
                v = np.float64(t[j] - di)
                a += v
                b += v * v
        s1[i] = a
        s2[i] = b


@njit(cache=True, nogil=True)
def _long_sums(T, nr, m, out):
    for i in range(nr):
        s = 0.0
        for lo in range(0, m, BLOCK):
            s += _sum(T[i], lo, min(m, lo + BLOCK))
        out[i] = s


@njit(cache=True, nogil=True)
def _long_sums_dev(T, nr, m, d, s1, s2, cnt):
    for i in range(nr):
        if cnt[i] < m:
            continue
        a = b = 0.0
        for lo in range(0, m, BLOCK):
            u, v = _sums_dev(T[i], lo, min(m, lo + BLOCK), d[i])
            a += u
            b += v
        s1[i] = a
        s2[i] = b


@njit(cache=True, nogil=True)
def _any_dev(t, m, d, d2):
    """Whether a deviation of ``t[:m]`` about ``d + d2`` is nonzero (not NaN)."""
    for j in range(m):
        v = (t[j] - d) - d2
        if v != 0 and v == v:
            return True
    return False


# A row holding NaN: its sums skip the NaN and count the other values (the
# statistics of the values present, as every path computes them). Only rows
# whose plain sums came out not finite get here.
# (Selects rather than branches, and a float count: LLVM vectorizes these
# loops, 4x faster than with an ``if``.)
@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _nan_sum(t, m):
    """Sum (float64, in blocks of BLOCK) and count of the non-NaN ``t[:m]``."""
    s = 0.0
    cnt = 0.0
    for lo in range(0, m, BLOCK):
        b = c = 0.0
        for j in range(lo, min(m, lo + BLOCK)):
            v = np.float64(t[j])
            ok = v == v
            b += v if ok else 0.0
            c += 1.0 if ok else 0.0
        s += b
        cnt += c
    return s, cnt


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _nan_sums_dev(t, m, d):
    """Sum, sum of squares and count of the non-NaN ``t[:m] - d``."""
    s1 = s2 = 0.0
    cnt = 0.0
    for lo in range(0, m, BLOCK):
        a = b = c = 0.0
        for j in range(lo, min(m, lo + BLOCK)):
            v = np.float64(t[j] - d)
            ok = v == v
            v = v if ok else 0.0
            a += v
            b += v * v
            c += 1.0 if ok else 0.0
        s1 += a
        s2 += b
        cnt += c
    return s1, s2, cnt


@njit(cache=True, nogil=True)
def _wide_sums(X, b0, nr, a, m, T, center, delta, d, s1, s2, cnt):
    """Statistics of a group of rows ``b0:b0+nr``, copied into ``T`` row-wise.

    Sums along each row (vectorized, in blocks of BLOCK); rows with NaN are
    summed again skipping it. ``d`` gets the rounded mean (0 without center).
    """
    for i in range(nr):
        xs = X[b0 + i, a : a + m]
        t = T[i]
        for j in range(m):
            t[j] = xs[j]
    for i in range(nr):
        cnt[i] = m
        d[i] = 0
    if center:
        if m <= BLOCK:
            _block_sums(T, nr, m, delta, cnt)
        else:
            _long_sums(T, nr, m, delta)
            for i in range(nr):
                if not np.isfinite(delta[i]):  # NaN (inf: flagged later)
                    delta[i], cnt[i] = _nan_sum(T[i], m)
        for i in range(nr):
            if cnt[i] > 0:
                d[i] = delta[i] / cnt[i]  # rounded to d's dtype
    # Corrected two-pass (as in sknorm._row_stats): the mean of the
    # residuals t - d is the rounding error of d.
    if m <= BLOCK:
        _block_sums_dev(T, nr, m, d, s1, s2, cnt)
    else:
        _long_sums_dev(T, nr, m, d, s1, s2, cnt)
    for i in range(nr):
        if not np.isfinite(s2[i]) or (m > BLOCK and cnt[i] < m):
            s1[i], s2[i], cnt[i] = _nan_sums_dev(T[i], m, d[i])


#: Groups of at most this many columns are summed across rows (below).
SMALL_GROUP = 16


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _small_sums(X, b0, nr, a, m, U, center, d, s1, s2, cnt):
    """Statistics of a narrow group (``m <= SMALL_GROUP``) of rows ``b0:b0+nr``.

    The group is copied transposed into ``U`` (m, rows), so that the loops
    run along the rows, a vector of rows at a time, however few the columns
    (along a row of 8 values a vector loop never starts). Each row's sums
    are then plain sequential sums in float64. NaN is skipped and counted as
    in :func:`_nan_sums_dev`; ``d`` gets the rounded mean (0 without center).
    """
    for j in range(m):
        u = U[j]
        for i in range(nr):
            u[i] = X[b0 + i, a + j]
    for i in range(nr):
        s1[i] = s2[i] = cnt[i] = 0.0
        d[i] = 0
    if center:
        for j in range(m):
            u = U[j]
            for i in range(nr):
                v = np.float64(u[i])
                ok = v == v
                s1[i] += v if ok else 0.0
                cnt[i] += 1.0 if ok else 0.0
        for i in range(nr):
            if cnt[i] > 0:
                d[i] = s1[i] / cnt[i]
            s1[i] = cnt[i] = 0.0
    for j in range(m):
        u = U[j]
        for i in range(nr):
            v = np.float64(u[i] - d[i])
            ok = v == v
            v = v if ok else 0.0
            s1[i] += v
            s2[i] += v * v
            cnt[i] += 1.0 if ok else 0.0


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _small_stats(nr, center, scale, eps, ss_small, d, s1, s2, cnt, d2a, ra, ca, sa, st):
    """Per-row ``d2``, ``1 / den``, center and scale of rows summed by
    :func:`_small_sums`, in one branch-free loop over the rows (vectorized).

    ``st[i]``: 0 ok, 1 for the slow path (a row of NaN, not finite, or so
    large that the denominator would need ``hypot``: the shared rule
    rescales it), 2 to check for tiny deviations.
    """
    for i in range(nr):
        n_i = cnt[i]
        nz = n_i if n_i > 0 else 1.0
        ss = s2[i]
        delta2 = 0.0
        c = 0.0
        if center:
            delta2 = s1[i] / nz
            ss = ss - s1[i] * delta2
            c = np.float64(d[i]) + delta2
        fail = (n_i == 0) | ~np.isfinite(c)
        r = 1.0
        sd = 0.0
        tiny = False
        if scale:
            ss = 0.0 if ss < 0 else ss  # rounding; NaN stays NaN
            var = ss / nz
            sd = np.sqrt(var)
            den = np.sqrt(var + eps)
            den = 1.0 if den == 0 else den
            r = 1.0 / den
            fail = fail | ~(var < 1e300)
            tiny = ss < ss_small
        d2a[i] = delta2  # rounded to the work dtype, as is ra
        ra[i] = r
        ca[i] = c
        sa[i] = sd
        st[i] = 1 if fail else (2 if tiny else 0)


@njit(cache=True, nogil=True)
def _rows(
    X, Z, lo, hi, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, W, C, S, bad, T,
):  # fmt: skip
    """Normalize rows ``lo:hi``; ``T`` is a (rows, width) scratch block.

    The arithmetic is done in ``W``'s dtype: ``X``'s, or float64 for float32
    data with an affine map (the float64 result is rounded once, on store).
    """
    typ = W.dtype.type
    sqrt_eps = np.sqrt(eps)
    affine = gain.shape[0] > 0
    n_groups = in_lo.shape[0]
    R = T.shape[0]
    delta = np.zeros(R)
    d = np.zeros(R, dtype=W.dtype)
    s1 = np.zeros(R)
    s2 = np.zeros(R)
    cnt = np.zeros(R)
    # Scratch of the narrow-group path, only when there is a narrow group
    # (allocations per chunk are not free next to a chunk of short rows).
    Rs = 0
    for g in range(n_groups):
        if in_hi[g] - in_lo[g] <= SMALL_GROUP:
            Rs = R
    U = np.empty((min(SMALL_GROUP, T.shape[1]) if Rs else 0, Rs), dtype=X.dtype)
    d2a = np.empty(Rs, dtype=W.dtype)
    ra = np.empty(Rs, dtype=W.dtype)
    ca = np.empty(Rs)
    sa = np.empty(Rs)
    st = np.empty(Rs, dtype=np.int8)
    for g in range(n_groups):
        a = in_lo[g]
        m = in_hi[g] - a
        o = out_lo[g]
        col_c = stat_c[g]
        col_s = stat_s[g] if scale else -1
        gs = gain[a : a + m] if affine else gain
        bs = bias[a : a + m] if affine else bias
        small = m <= SMALL_GROUP
        for b0 in range(lo, hi, R):
            nr = min(R, hi - b0)
            if small:
                _small_sums(X, b0, nr, a, m, U, center, d, s1, s2, cnt)
                _small_stats(
                    nr, center, scale, eps, ss_small, d, s1, s2, cnt, d2a, ra,
                    ca, sa, st,
                )  # fmt: skip
            else:
                _wide_sums(X, b0, nr, a, m, T, center, delta, d, s1, s2, cnt)
            for i in range(nr):
                if not small:
                    break
                row = b0 + i
                di = d[i]
                d2 = d2a[i]
                if st[i] == 2 and not _any_dev(X[row, a : a + m], m, di, d2):
                    st[i] = 0
                r = ra[i]
                # A 1 / den beyond the dtype's range (tiny eps): slow path.
                if st[i] != 0 or not np.isfinite(r):
                    bad[row, g] = True
                    continue
                C[row, g] = ca[i]
                if scale:
                    S[row, g] = sa[i]
                zs = Z[row, o : o + m]
                if affine:
                    for j in range(m):
                        zs[j] = (((U[j, i] - di) - d2) * r) * gs[j] + bs[j]
                else:
                    for j in range(m):
                        zs[j] = ((U[j, i] - di) - d2) * r
            for i in range(nr):
                if small:
                    break
                row = b0 + i
                di = d[i]
                ss = s2[i]
                n_i = cnt[i]
                if n_i == 0:  # a row of NaN: the shared rule gives NaN
                    bad[row, g] = True
                    continue
                d2 = typ(0)
                c = 0.0
                if center:
                    delta2 = s1[i] / n_i
                    d2 = typ(delta2)
                    ss -= s1[i] * delta2
                    c = np.float64(di) + delta2
                    if not np.isfinite(c):
                        bad[row, g] = True
                        continue
                r = typ(1)
                if scale:
                    if ss < 0:  # rounding; NaN stays NaN
                        ss = 0.0
                    sd = np.sqrt(ss / n_i)
                    if not np.isfinite(sd):
                        bad[row, g] = True
                        continue
                    if ss < ss_small:
                        if _any_dev(X[row, a : a + m], m, di, d2):
                            bad[row, g] = True
                            continue
                    var = ss / n_i
                    if var < 1e300:
                        # == hypot(sd, sqrt(eps)) to an ulp, without a libm call
                        den = np.sqrt(var + eps)
                    else:
                        den = np.hypot(sd, sqrt_eps)
                    if den == 0:
                        den = 1.0
                    r = typ(1.0 / den)
                    if not np.isfinite(r):  # tiny eps: divide (slow path)
                        bad[row, g] = True
                        continue
                    S[row, g] = sd
                C[row, g] = c
                # Inline loops: a call per row costs as much as the row.
                zs = Z[row, o : o + m]
                t = T[i]
                if affine:
                    for j in range(m):
                        zs[j] = (((t[j] - di) - d2) * r) * gs[j] + bs[j]
                else:
                    for j in range(m):
                        zs[j] = ((t[j] - di) - d2) * r
            # Kept statistics, outside the row loop above (stores to columns
            # unknown at compile time there cost a third of the kernel's time).
            # Rows flagged bad get theirs from the slow path later.
            if col_c >= 0:
                for i in range(nr):
                    Z[b0 + i, col_c] = C[b0 + i, g]
            if col_s >= 0:
                for i in range(nr):
                    Z[b0 + i, col_s] = S[b0 + i, g]
    if other.shape[0] or rest_in.shape[0]:
        for i in range(lo, hi):
            x = X[i]
            z = Z[i]
            for k in range(other.shape[0]):
                if np.isinf(x[other[k]]):
                    bad[i, n_groups] = True
            for k in range(rest_in.shape[0]):
                z[rest_out[k]] = x[rest_in[k]]


#: Values in one scratch block (rows x width).
SCRATCH = 8192


@njit(cache=True, nogil=True)
def _scratch(X, width):
    """A (rows, width) scratch block placed half a page away from X.

    Loads that seem to hit a just-stored address modulo 4096 ("4K aliasing")
    stall; with some placements of the scratch relative to the data the
    kernel runs 1.7x slower. Half a page away is safe for every row length.
    """
    rows = max(1, min(64, SCRATCH // max(1, width)))
    per_page = 4096 // X.itemsize
    buf = np.empty(rows * width + per_page, dtype=X.dtype)
    off = (X.ctypes.data + 2048 - buf.ctypes.data) % 4096
    k = off // X.itemsize
    return buf[k : k + rows * width].reshape((rows, width))


@njit(cache=True, nogil=True)
def _rows_serial(
    X, Z, step, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, W, C, S, bad, width,
):  # fmt: skip
    n = X.shape[0]
    T = _scratch(X, width)
    for lo in range(0, n, step):
        _rows(
            X, Z, lo, min(n, lo + step), in_lo, in_hi, out_lo,
            stat_c, stat_s, other, rest_in, rest_out, gain, bias, center, scale,
            eps, ss_small, W, C, S, bad, T,
        )  # fmt: skip


@njit(parallel=True, cache=True, nogil=True)
def _rows_parallel(
    X, Z, step, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, W, C, S, bad, width, n_tasks,
):  # fmt: skip
    # A few tasks per thread, each with its own scratch (allocated once: for
    # long rows it is large), working through consecutive chunks of rows.
    n = X.shape[0]
    n_chunks = (n + step - 1) // step
    for k in prange(n_tasks):
        T = _scratch(X, width)
        for c in range(k * n_chunks // n_tasks, (k + 1) * n_chunks // n_tasks):
            _rows(
                X, Z, c * step, min(n, (c + 1) * step), in_lo, in_hi, out_lo,
                stat_c, stat_s, other, rest_in, rest_out, gain, bias, center,
                scale, eps, ss_small, W, C, S, bad, T,
            )  # fmt: skip


def normalize(X, Z, layout, center, scale, eps, gain, bias, n_threads):
    """Normalize C-contiguous ``X`` into C-contiguous ``Z`` (may be ``X``).

    ``layout`` holds int64 arrays ``in_lo, in_hi, out_lo, stat_c, stat_s,
    other, rest_in, rest_out`` (group column ranges in ``X`` and ``Z``, kept
    statistic columns or -1, columns in no group, passthrough columns).
    ``gain``/``bias`` are float64 arrays (empty: no affine map).
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
    # Below this (float64) sum of squares, a row may have lost digits to
    # underflow or to deviations in the dtype's subnormal range.
    # Float32 data with an affine map: normalized and mapped in float64.
    W = np.empty(0, np.float64 if gain.size else X.dtype)
    ss_small = small_sum_of_squares(W.dtype)
    args = (*layout, gain, bias, center == "mean", scale == "std", float(eps))
    n_threads = min(n_threads, numba.config.NUMBA_NUM_THREADS)
    # Rows per parallel task: about 256 KiB of input.
    step = max(1, 2**18 // max(1, X.shape[1] * X.itemsize))
    # In a child forked after the parallel kernel ran, only the serial one
    # is safe (see sknorm._config).
    parallel = n_threads > 1 and n > step and _config.numba_parallel_allowed()
    if parallel and _PARALLEL_LOCK.acquire(blocking=False):
        # numba's default threading layer does not allow concurrent parallel
        # launches: a second caller meanwhile runs the serial kernel.
        try:
            _config.numba_parallel_ran()
            old = numba.get_num_threads()
            numba.set_num_threads(n_threads)
            try:
                n_tasks = min(-(-n // step), 4 * n_threads)
                _rows_parallel(
                    X, Z, step, *args, ss_small, W, C, S, bad, width, n_tasks
                )
            finally:
                numba.set_num_threads(old)
        finally:
            _PARALLEL_LOCK.release()
    else:
        _rows_serial(X, Z, step, *args, ss_small, W, C, S, bad, width)
    return C, S, bad


@njit(cache=True, nogil=True)
def _moments(x, z, w):
    m, p = z.shape
    total = 0.0
    sum_z = np.zeros(p)
    sum_x = np.zeros(p)
    for i in range(m):
        wi = w[i]
        total += wi
        for j in range(p):
            sum_z[j] += wi * z[i, j]
            sum_x[j] += wi * x[i, j]
    mean_z = np.zeros(p)
    mean_x = np.zeros(p)
    if total > 0:
        mean_z = sum_z / total
        mean_x = sum_x / total
    m2_z = np.zeros(p)
    c_zx = np.zeros(p)
    for i in range(m):
        wi = w[i]
        for j in range(p):
            dz = z[i, j] - mean_z[j]
            m2_z[j] += wi * dz * dz
            c_zx[j] += wi * dz * (x[i, j] - mean_x[j])
    return total, sum_z, mean_z, mean_x, m2_z, c_zx


def moments(x, z, w):
    """Weighted regression moments of the columns of ``x`` on those of ``z``.

    Returns ``(weight, mean_z, mean_x, m2_z, c_zx)`` as in
    :class:`sknorm._affine.AffineMoments`, or None when the batch holds a NaN
    (then the NaN-aware numpy code applies).
    """
    total, sum_z, mean_z, mean_x, m2_z, c_zx = _moments(x, z, w)
    if not np.isfinite(sum_z).all():
        return None
    return np.full(z.shape[1], total), mean_z, mean_x, m2_z, c_zx
