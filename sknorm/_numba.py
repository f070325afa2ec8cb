"""Compiled row kernels (numba), used when numba is installed.

``pip install sknorm[fast]`` installs numba; :func:`sknorm.set_config` with
``engine="numpy"`` switches these kernels off. They cover the common dense
case (``center`` in {"mean", None}, ``scale`` in {"std", None}, groups of
contiguous columns) and compute, row by row and in one sweep over memory (a
row is read from memory once, summed twice from cache and written once, with
no scratch copy), the same arithmetic as the numpy engine in
:mod:`sknorm._row_stats`:

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
values present, and the NaN stays NaN in the output. Groups of exactly 8
columns are done a row at a time in registers (:func:`_rows8`); other groups
of at most :data:`SMALL_GROUP` columns are summed across a block of rows
instead (a vector loop never starts along a row of so few values): see
:func:`_small_sums`.

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


# Row reductions. Each takes a 1-D slice: ``range(lo, hi)`` loops with a
# variable start are not vectorized by numba/LLVM (5x slower), loops over a
# whole slice are. Rows longer than BLOCK are summed block by block, the
# partial sums added in float64.
@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sum(x):
    s = 0.0
    for j in range(x.shape[0]):
        s += x[j]
    return s


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sums_dev(x, d):
    """Sum and sum of squares of ``x - d`` (each deviation widened to float64)."""
    s = s2 = 0.0
    for j in range(x.shape[0]):
        v = np.float64(x[j] - d)
        s += v
        s2 += v * v
    return s, s2


# A row holding NaN: its sums skip the NaN and count the other values (the
# statistics of the values present, as every path computes them). Only rows
# whose plain sums came out not finite get here.
# (Selects rather than branches, and a float count: LLVM vectorizes these
# loops, 4x faster than with an ``if``.)
@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _nan_sum(x):
    s = c = 0.0
    for j in range(x.shape[0]):
        v = np.float64(x[j])
        ok = v == v
        s += v if ok else 0.0
        c += 1.0 if ok else 0.0
    return s, c


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _nan_sums_dev(x, d):
    s = s2 = c = 0.0
    for j in range(x.shape[0]):
        v = np.float64(x[j] - d)
        ok = v == v
        v = v if ok else 0.0
        s += v
        s2 += v * v
        c += 1.0 if ok else 0.0
    return s, s2, c


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _row_sum(x, nan):
    """Sum (float64) and count of the row ``x``; a row whose sum is not
    finite is summed again without its NaN (an inf is flagged later, from
    its statistics). Rows longer than BLOCK are summed block by block.

    NaN comes in columns: with ``nan`` (the previous row had some) the row
    is summed skipping NaN directly, one pass instead of two (the sum is
    the same: only zeros are added in place of NaN).
    """
    m = x.shape[0]
    if not nan:
        if m <= BLOCK:
            s = 0.0
            for j in range(m):
                s += x[j]
        else:
            s = 0.0
            for lo in range(0, m, BLOCK):
                s += _sum(x[lo : lo + BLOCK])
        if np.isfinite(s):
            return s, np.float64(m)
    s = c = 0.0
    for lo in range(0, m, BLOCK):
        u, v = _nan_sum(x[lo : lo + BLOCK])
        s += u
        c += v
    return s, c


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _row_sums_dev(x, d, n):
    """Sum, sum of squares (float64) and count of ``x - d``; NaN skipped
    (when ``n`` says the row has some, or the sums are not finite)."""
    m = x.shape[0]
    if n == m:
        if m <= BLOCK:
            u = v = 0.0
            for j in range(m):
                w = np.float64(x[j] - d)
                u += w
                v += w * w
        else:
            u = v = 0.0
            for lo in range(0, m, BLOCK):
                p, q = _sums_dev(x[lo : lo + BLOCK], d)
                u += p
                v += q
        if np.isfinite(v):
            return u, v, n
    u = v = c = 0.0
    for lo in range(0, m, BLOCK):
        p, q, k = _nan_sums_dev(x[lo : lo + BLOCK], d)
        u += p
        v += q
        c += k
    return u, v, c


@njit(cache=True, nogil=True)
def _any_dev(x, d, d2):
    """Whether a deviation of ``x`` about ``d + d2`` is nonzero (not NaN)."""
    for j in range(x.shape[0]):
        v = (x[j] - d) - d2
        if v != 0 and v == v:
            return True
    return False


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


@njit(fastmath=_REASSOC, cache=True, nogil=True, inline="always")
def _stat(n_i, s1, s2, d, center, scale, eps, ss_small, want_sd):
    """One row's ``(delta2, 1 / den, center, scale, status)`` from the sums
    of :func:`_small_sums` (``d`` the rounded mean).

    Status: 0 ok, 1 for the slow path (a row of NaN, not finite, or so large
    that the denominator would need ``hypot``: the shared rule rescales it),
    2 to check for tiny deviations. Branch-free, so that a loop over rows
    calling it is vectorized.
    """
    nz = n_i if n_i > 0 else 1.0
    ss = s2
    delta2 = 0.0
    c = 0.0
    if center:
        delta2 = s1 / nz
        ss = ss - s1 * delta2
        c = np.float64(d) + delta2
    fail = (n_i == 0) | ~np.isfinite(c)
    r = 1.0
    sd = 0.0
    tiny = False
    if scale:
        ss = 0.0 if ss < 0 else ss  # rounding; NaN stays NaN
        var = ss / nz
        sd = np.sqrt(var) if want_sd else 0.0
        den = np.sqrt(var + eps)
        den = 1.0 if den == 0 else den
        r = 1.0 / den
        fail = fail | ~(var < 1e300)
        tiny = ss < ss_small
    return delta2, r, c, sd, 1 if fail else (2 if tiny else 0)


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _small_stats(nr, center, scale, eps, ss_small, d, s1, s2, cnt, d2a, ra, ca, sa, st):
    """:func:`_stat` of each row summed by :func:`_small_sums`, in one loop
    over the rows (vectorized)."""
    for i in range(nr):
        delta2, r, c, sd, status = _stat(
            cnt[i], s1[i], s2[i], d[i], center, scale, eps, ss_small, True
        )
        d2a[i] = delta2  # rounded to the work dtype, as is ra
        ra[i] = r
        ca[i] = c
        sa[i] = sd
        st[i] = status


@njit(fastmath=_REASSOC, cache=True, nogil=True, inline="always")
def _tree8(v0, v1, v2, v3, v4, v5, v6, v7):
    return ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _rows8(
    X, Z, b0, nr, g8, in_lo, out_lo, stat_c, stat_s, gain, bias, center, scale,
    eps, ss_small, W, C, S, bad, pend,
):  # fmt: skip
    """Normalize the groups ``g8`` (of exactly 8 columns) of rows
    ``b0:b0+nr``, a row at a time, all of them in one sweep.

    Eight values (a cache line of float64) are summed by straight-line code,
    which LLVM turns into vector loads and in-register reductions, then
    normalized and stored from registers: no transposed copy (as the other
    narrow groups need), each row of ``X`` read once, in order. Same sums as
    :func:`_small_sums`, statistics by :func:`_stat`. A row group holding a
    NaN or an inf is marked in ``pend`` and done afterwards by
    :func:`_group8` (a call in this loop would cost a third of its time).
    """
    typ = W.dtype.type
    affine = gain.shape[0] > 0
    stats = C.shape[0] > 0
    store = stats
    for k in range(g8.shape[0]):
        store = store or stat_c[g8[k]] >= 0 or (scale and stat_s[g8[k]] >= 0)
    n_pend = 0
    for i in range(nr):
        row = b0 + i
        x = X[row]
        z = Z[row]
        for k in range(g8.shape[0]):
            g = g8[k]
            a = in_lo[g]
            o = out_lo[g]
            x0, x1, x2, x3 = x[a], x[a + 1], x[a + 2], x[a + 3]
            x4, x5, x6, x7 = x[a + 4], x[a + 5], x[a + 6], x[a + 7]
            di = typ(0)
            if center:
                s = _tree8(
                    np.float64(x0), np.float64(x1), np.float64(x2),
                    np.float64(x3), np.float64(x4), np.float64(x5),
                    np.float64(x6), np.float64(x7),
                )  # fmt: skip
                di = typ(s / 8)
            v0, v1 = np.float64(x0 - di), np.float64(x1 - di)
            v2, v3 = np.float64(x2 - di), np.float64(x3 - di)
            v4, v5 = np.float64(x4 - di), np.float64(x5 - di)
            v6, v7 = np.float64(x6 - di), np.float64(x7 - di)
            t = _tree8(v0, v1, v2, v3, v4, v5, v6, v7)
            q = _tree8(
                v0 * v0, v1 * v1, v2 * v2, v3 * v3, v4 * v4, v5 * v5, v6 * v6,
                v7 * v7,
            )  # fmt: skip
            if not np.isfinite(q):  # NaN or inf: below
                pend[n_pend, 0] = row
                pend[n_pend, 1] = g
                n_pend += 1
                continue
            delta2, r, c, sd, status = _stat(
                8.0, t, q, di, center, scale, eps, ss_small, store
            )
            d2 = typ(delta2)
            rw = typ(r)
            if status == 2 and not _any_dev(x[a : a + 8], di, d2):
                status = 0
            # A 1 / den beyond the dtype's range (tiny eps): slow path, and
            # the input back (from registers: Z may be X, so a store would
            # force the values to be loaded again).
            flagged = status != 0 or not np.isfinite(rw)
            if flagged:
                bad[row, g] = True
                y0, y1, y2, y3, y4, y5, y6, y7 = x0, x1, x2, x3, x4, x5, x6, x7
            else:
                y0, y1 = ((x0 - di) - d2) * rw, ((x1 - di) - d2) * rw
                y2, y3 = ((x2 - di) - d2) * rw, ((x3 - di) - d2) * rw
                y4, y5 = ((x4 - di) - d2) * rw, ((x5 - di) - d2) * rw
                y6, y7 = ((x6 - di) - d2) * rw, ((x7 - di) - d2) * rw
                if affine:
                    y0 = y0 * gain[a] + bias[a]
                    y1 = y1 * gain[a + 1] + bias[a + 1]
                    y2 = y2 * gain[a + 2] + bias[a + 2]
                    y3 = y3 * gain[a + 3] + bias[a + 3]
                    y4 = y4 * gain[a + 4] + bias[a + 4]
                    y5 = y5 * gain[a + 5] + bias[a + 5]
                    y6 = y6 * gain[a + 6] + bias[a + 6]
                    y7 = y7 * gain[a + 7] + bias[a + 7]
            z[o], z[o + 1], z[o + 2], z[o + 3] = y0, y1, y2, y3
            z[o + 4], z[o + 5], z[o + 6], z[o + 7] = y4, y5, y6, y7
            if store and not flagged:
                _store_one(Z, C, S, stats, scale, row, g, stat_c, stat_s, c, sd)
    for p in range(n_pend):
        _group8(
            X, Z, pend[p, 0], pend[p, 1], in_lo, out_lo, stat_c, stat_s, gain,
            bias, center, scale, eps, ss_small, W, C, S, bad,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _store_one(Z, C, S, stats, scale, row, g, stat_c, stat_s, c, sd):
    """Store one row group's statistics where wanted."""
    if stats:
        C[row, g] = c
        S[row, g] = sd
    if stat_c[g] >= 0:
        Z[row, stat_c[g]] = c
    if scale and stat_s[g] >= 0:
        Z[row, stat_s[g]] = sd


@njit(cache=True, nogil=True)
def _group8(
    X, Z, row, g, in_lo, out_lo, stat_c, stat_s, gain, bias, center, scale, eps,
    ss_small, W, C, S, bad,
):  # fmt: skip
    """Row group ``(row, g)`` of :func:`_rows8` that holds a NaN or an inf:
    NaN skipped and counted, as :func:`_small_sums`."""
    typ = W.dtype.type
    a = in_lo[g]
    o = out_lo[g]
    x = X[row, a : a + 8]
    z = Z[row, o : o + 8]
    di = typ(0)
    if center:
        s, n = _nan_sum(x)
        if n > 0:
            di = typ(s / n)
    t, q, n_i = _nan_sums_dev(x, di)
    # (The checks of _rows8, written out: as an inlined helper shared with
    # it they cost its loop half again, 62 -> 92 ms at 500,000 x 64.)
    delta2, r, c, sd, status = _stat(n_i, t, q, di, center, scale, eps, ss_small, True)
    d2 = typ(delta2)
    rw = typ(r)
    if status == 2 and not _any_dev(x, di, d2):
        status = 0
    if status != 0 or not np.isfinite(rw):
        bad[row, g] = True
        return  # (not written: the input stays for the slow path)
    affine = gain.shape[0] > 0
    for j in range(8):
        y = ((x[j] - di) - d2) * rw
        z[j] = y * gain[a + j] + bias[a + j] if affine else y
    _store_one(Z, C, S, C.shape[0] > 0, scale, row, g, stat_c, stat_s, c, sd)


@njit(cache=True, nogil=True)
def _small_write(Z, b0, nr, o, m, U, V, d, d2a, ra, st, gs, bs, affine):
    """Write the rows summed by :func:`_small_sums`: normalized along the
    rows into ``V`` (vectorized), then stored transposed, column by column.

    Rows flagged in ``st`` get their input values back instead, so that the
    stores need no branch and leave in-place input untouched for the slow
    path (which overwrites them otherwise).
    """
    for j in range(m):
        u = U[j]
        v = V[j]
        if affine:
            gj = gs[j]
            bj = bs[j]
            for i in range(nr):
                w = (((u[i] - d[i]) - d2a[i]) * ra[i]) * gj + bj
                v[i] = u[i] if st[i] else w
        else:
            for i in range(nr):
                w = ((u[i] - d[i]) - d2a[i]) * ra[i]
                v[i] = u[i] if st[i] else w
    for j in range(m):
        v = V[j]
        for i in range(nr):
            Z[b0 + i, o + j] = v[i]


@njit(cache=True, nogil=True)
def _store_stats(Z, C, S, stats, scale, b0, nr, g, stat_c, stat_s, ca, sa):
    """Store the statistics of a block of rows (``ca``, ``sa``) where wanted.

    Outside the row loop: stores to columns unknown at compile time there
    cost as much as the rest of the loop. Rows flagged for the slow path get
    theirs from it later.
    """
    if stats:
        for i in range(nr):
            C[b0 + i, g] = ca[i]
            S[b0 + i, g] = sa[i]
    if stat_c[g] >= 0:
        for i in range(nr):
            Z[b0 + i, stat_c[g]] = ca[i]
    if scale and stat_s[g] >= 0:
        for i in range(nr):
            Z[b0 + i, stat_s[g]] = sa[i]


#: Values in one block of rows (kept in L1 across the three passes).
ROW_BLOCK = 2048


@njit(cache=True, nogil=True)
def _rows(
    X, Z, lo, hi, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, W, C, S, bad,
):  # fmt: skip
    """Normalize rows ``lo:hi`` in blocks of rows that stay in L1 while all
    their groups are summed (two passes) and written (the third).

    The arithmetic is done in ``W``'s dtype: ``X``'s, or float64 for float32
    data with an affine map (the float64 result is rounded once, on store).
    A row group the fast sums cannot take is flagged in ``bad`` and left
    unwritten. ``C``/``S`` get the statistics unless they are empty.
    """
    typ = W.dtype.type
    sqrt_eps = np.sqrt(eps)
    affine = gain.shape[0] > 0
    stats = C.shape[0] > 0
    n_groups = in_lo.shape[0]
    R = max(1, min(64, ROW_BLOCK // max(1, X.shape[1])))
    for g in range(n_groups):
        if in_hi[g] - in_lo[g] <= SMALL_GROUP:
            # Narrow groups are vectorized along the rows: longer blocks
            # (up to 128 KiB of input, in L2).
            R = max(R, min(256, 2**17 // max(1, X.shape[1] * X.itemsize)))
    d = np.zeros(R, dtype=W.dtype)
    s1 = np.zeros(R)
    s2 = np.zeros(R)
    cnt = np.zeros(R)
    # Scratch of the narrow-group path, only when there is a narrow group.
    Rs = 0
    for g in range(n_groups):
        if in_hi[g] - in_lo[g] <= SMALL_GROUP:
            Rs = R
    # (Rows of U and V padded off a power-of-two stride: the transposed
    # loads and stores would hit the same cache sets, 2x slower.)
    U = np.empty((SMALL_GROUP if Rs else 0, Rs + 8), dtype=X.dtype)
    V = np.empty((SMALL_GROUP if Rs else 0, Rs + 8), dtype=Z.dtype)
    d2a = np.empty(Rs, dtype=W.dtype)
    ra = np.empty(Rs, dtype=W.dtype)
    st = np.empty(Rs, dtype=np.int8)
    # Groups of exactly 8 columns: done by _rows8, a row at a time.
    g8 = np.flatnonzero(in_hi - in_lo == 8)
    n8 = g8.shape[0]
    pend = np.empty((R * n8, 2), dtype=np.int64)
    # Per group: whether its last row held NaN (see _row_sum).
    nan = np.zeros(n_groups, dtype=np.bool_)
    # Per-row statistics of the block, stored by _store_stats.
    ca = np.zeros(R)
    sa = np.zeros(R)
    for b0 in range(lo, hi, R):
        nr = min(R, hi - b0)
        if n8:
            _rows8(
                X, Z, b0, nr, g8, in_lo, out_lo, stat_c, stat_s, gain, bias,
                center, scale, eps, ss_small, W, C, S, bad, pend,
            )  # fmt: skip
        for g in range(n_groups):
            a = in_lo[g]
            m = in_hi[g] - a
            if m == 8:
                continue  # done by _rows8
            o = out_lo[g]
            gs = gain[a : a + m] if affine else gain
            bs = bias[a : a + m] if affine else bias
            # Statistics to store for this group (none on a plain transform).
            store = stats or stat_c[g] >= 0 or (scale and stat_s[g] >= 0)
            if m <= SMALL_GROUP:
                _small_sums(X, b0, nr, a, m, U, center, d, s1, s2, cnt)
                _small_stats(
                    nr, center, scale, eps, ss_small, d, s1, s2, cnt, d2a, ra,
                    ca, sa, st,
                )  # fmt: skip
                for i in range(nr):
                    if st[i] == 2 and not _any_dev(X[b0 + i][a : a + m], d[i], d2a[i]):
                        st[i] = 0
                    # A 1 / den beyond the dtype's range (tiny eps): slow path.
                    if st[i] != 0 or not np.isfinite(ra[i]):
                        st[i] = 1
                        bad[b0 + i, g] = True
                _small_write(Z, b0, nr, o, m, U, V, d, d2a, ra, st, gs, bs, affine)
                _store_stats(Z, C, S, stats, scale, b0, nr, g, stat_c, stat_s, ca, sa)
                continue
            for i in range(nr):
                row = b0 + i
                x = X[row][a : a + m]
                n_i = np.float64(m)
                di = typ(0)
                # (Rows of up to BLOCK values without NaN call the plain
                # sums directly: the NaN-aware wrappers cost 10% here.)
                short = m <= BLOCK and not nan[g]
                if center:
                    if short:
                        s = _sum(x)
                        if not np.isfinite(s):
                            s, n_i = _row_sum(x, True)
                    else:
                        s, n_i = _row_sum(x, nan[g])
                    if n_i > 0:
                        di = typ(s / n_i)
                # Corrected two-pass (as in sknorm._row_stats): the mean of
                # the residuals x - di is the rounding error of di.
                if short and n_i == m:
                    t1, ss = _sums_dev(x, di)
                    if not np.isfinite(ss):
                        # (a count other than m: sums that skip NaN)
                        t1, ss, n_i = _row_sums_dev(x, di, -1.0)
                else:
                    t1, ss, n_i = _row_sums_dev(x, di, n_i)
                nan[g] = n_i < m
                if n_i == 0:  # a row of NaN: the shared rule gives NaN
                    bad[row, g] = True
                    continue
                d2 = typ(0)
                c = 0.0
                if center:
                    delta2 = t1 / n_i
                    d2 = typ(delta2)
                    ss -= t1 * delta2
                    c = np.float64(di) + delta2
                    if not np.isfinite(c):
                        bad[row, g] = True
                        continue
                r = typ(1)
                sd = 0.0
                if scale:
                    if ss < 0:  # rounding; NaN stays NaN
                        ss = 0.0
                    var = ss / n_i
                    sd = np.sqrt(var)
                    if not np.isfinite(sd):
                        bad[row, g] = True
                        continue
                    # A sum of squares that may have lost digits to
                    # underflow: the shared rule rescales the row, unless
                    # it is constant.
                    if ss < ss_small and _any_dev(x, di, d2):
                        bad[row, g] = True
                        continue
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
                # Inline loops: a call per row costs as much as a short row.
                z = Z[row][o : o + m]
                if affine:
                    for j in range(m):
                        z[j] = (((x[j] - di) - d2) * r) * gs[j] + bs[j]
                else:
                    for j in range(m):
                        z[j] = ((x[j] - di) - d2) * r
                if store:
                    ca[i] = c
                    sa[i] = sd
            if store:
                _store_stats(Z, C, S, stats, scale, b0, nr, g, stat_c, stat_s, ca, sa)
        if other.shape[0] or rest_in.shape[0]:
            for row in range(b0, b0 + nr):
                _rest(X[row], Z[row], row, other, rest_in, rest_out, bad, n_groups)


@njit(cache=True, nogil=True)
def _rest(x, z, row, other, rest_in, rest_out, bad, n_groups):
    """Passthrough columns of a row, and an inf in a column of no group."""
    for k in range(other.shape[0]):
        if np.isinf(x[other[k]]):
            bad[row, n_groups] = True
    for k in range(rest_in.shape[0]):
        z[rest_out[k]] = x[rest_in[k]]


@njit(cache=True, nogil=True)
def _rows_serial(
    X, Z, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, W, C, S, bad,
):  # fmt: skip
    _rows(
        X, Z, 0, X.shape[0], in_lo, in_hi, out_lo, stat_c, stat_s, other,
        rest_in, rest_out, gain, bias, center, scale, eps, ss_small, W, C, S,
        bad,
    )  # fmt: skip


@njit(parallel=True, cache=True, nogil=True)
def _rows_parallel(
    X, Z, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, W, C, S, bad, n_tasks,
):  # fmt: skip
    # Consecutive row ranges, a few per thread.
    n = X.shape[0]
    for k in prange(n_tasks):
        _rows(
            X, Z, k * n // n_tasks, (k + 1) * n // n_tasks, in_lo, in_hi,
            out_lo, stat_c, stat_s, other, rest_in, rest_out, gain, bias,
            center, scale, eps, ss_small, W, C, S, bad,
        )  # fmt: skip


#: The serial kernels that ran in this process (so are compiled or loaded),
#: by :func:`kernel_key`: ``engine="auto"`` sends small inputs to them only
#: then (a small call never waits for numba to load or compile).
_READY = set()


def kernel_key(module, X, affine, center, scale):
    """What a kernel's compiled signature depends on, for :data:`_READY`."""
    return (module, X.dtype.char, bool(affine), center, scale)


def ready(key):
    """Whether the serial kernel of ``key`` already ran in this process."""
    return key in _READY


def launch(X, n_threads, parallel_kernel, serial_kernel, key):
    """Run ``parallel_kernel(step, n_tasks)`` on ``n_threads`` of numba's
    threads (None: :func:`sknorm._config.effective_n_threads`) where that is
    safe and free, else ``serial_kernel(step)``; ``step`` is rows per task
    (about 256 KiB of ``X``), a few tasks per thread."""
    n = X.shape[0]
    step = max(1, 2**18 // max(1, X.shape[1] * X.itemsize))
    # In a child forked after the parallel kernel ran, only the serial one
    # is safe (see sknorm._config).
    parallel = n > step and _config.numba_parallel_allowed()
    if parallel:
        if n_threads is None:
            n_threads = _config.effective_n_threads()
        n_threads = min(n_threads, numba.config.NUMBA_NUM_THREADS)
        parallel = n_threads > 1
    if parallel and _PARALLEL_LOCK.acquire(blocking=False):
        # numba's default threading layer does not allow concurrent parallel
        # launches: a second caller meanwhile runs the serial kernel.
        try:
            _config.numba_parallel_ran()
            old = numba.get_num_threads()
            numba.set_num_threads(n_threads)
            try:
                parallel_kernel(step, min(-(-n // step), 4 * n_threads))
            finally:
                numba.set_num_threads(old)
        finally:
            _PARALLEL_LOCK.release()
    else:
        serial_kernel(step)
        _READY.add(key)


def normalize(X, Z, layout, center, scale, eps, gain, bias, n_threads, stats=True):
    """Normalize C-contiguous ``X`` into C-contiguous ``Z`` (may be ``X``).

    ``layout`` holds int64 arrays ``in_lo, in_hi, out_lo, stat_c, stat_s,
    other, rest_in, rest_out`` (group column ranges in ``X`` and ``Z``, kept
    statistic columns or -1, columns in no group, passthrough columns).
    ``gain``/``bias`` are float64 arrays (empty: no affine map).
    Returns ``(C, S, bad)``: ``bad[i, g]`` flags a row group left unwritten
    for the slow path, ``bad[i, -1]`` an inf in a column of no group.
    Without ``stats``, ``C`` and ``S`` are not filled (nor allocated: for
    narrow groups they would add a quarter to the memory traffic) and are
    None.
    """
    n = X.shape[0]
    n_groups = layout[0].shape[0]
    rows = n if stats else 0
    C = np.empty((rows, n_groups))
    S = np.zeros((rows, n_groups))
    bad = np.zeros((n, n_groups + 1), dtype=np.bool_)
    # Float32 data with an affine map: normalized and mapped in float64.
    W = np.empty(0, np.float64 if gain.size else X.dtype)
    # Below this (float64) sum of squares, a row may have lost digits to
    # underflow or to deviations in the dtype's subnormal range.
    ss_small = small_sum_of_squares(W.dtype)
    args = (*layout, gain, bias, center == "mean", scale == "std", float(eps))
    args = (*args, ss_small, W, C, S, bad)
    launch(
        X,
        n_threads,
        lambda step, n_tasks: _rows_parallel(X, Z, *args, n_tasks),
        lambda step: _rows_serial(X, Z, *args),
        kernel_key(__name__, X, gain.size, center, scale),
    )
    if not stats:
        C = S = None
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
