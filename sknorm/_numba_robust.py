"""Compiled kernels (numba) for the robust options.

The companion of :mod:`sknorm._numba` for ``center="median"`` and ``scale``
in {"mad", "iqr"} (with any center): :func:`normalize` has exactly the
contract of :func:`sknorm._numba.normalize` and computes the statistics of
the numpy engine (:func:`sknorm._row_stats.normalize_block`) without sorting
whole rows. :func:`applies` says where that beats numpy's SIMD sort (the
engine asks it): two kernels.

* Groups of one width up to :data:`NET_MAX` columns: a block of rows is
  copied transposed, and a sorting network (Batcher's odd-even merge sort,
  pruned to the positions needed) runs on all its rows at once, a vector of
  rows per comparator, branch-free. With the median, the MAD is then the
  k-th smallest of the two sorted runs of ``|x - c|`` (left and right of
  the median); with another center, a second network sorts ``|x - c|``.
* Other rows, one at a time: a copy in a per-thread scratch row (in cache,
  checked for NaN and inf on the way), where the order statistics are
  *selected* (quickselect: the pivot is the median of three values at
  pseudo-random places, branch-free Lomuto partition, pivot ties gathered
  in one extra sweep, a heapsort fallback after ``2 log2(n)`` rounds so
  that no input is quadratic). After the ``k``-th
  value is selected, everything left of it is smaller and everything right
  larger, so the next statistic is selected in the part between the ones
  already placed (the lower middle of an even row is the maximum of the
  left part).

Selected values are exact, so the median, MAD and IQR are bit-identical to
the numpy engine's: the median is np.median's (the two middle values
averaged in float64); the MAD is ``MAD_TO_STD`` times the median of
``|x - c|`` (deviations in the work dtype); the IQR is
:func:`sknorm._semantics.iqr_from_sorted` on the "linear" order statistics
of the data itself, over ``IQR_TO_STD``; the mean is the corrected two-pass
mean of :mod:`sknorm._numba`.

Rows the kernels do not compute (a NaN or inf, a robust scale of 0 on a
row that is not constant, tiny scales or deviations, results or ``1 / den``
not finite) are left unwritten and flagged; the engine redoes them by
:func:`sknorm._semantics.normalize_rows`, the reference rule.
"""

import functools

import numpy as np
from numba import njit, prange

from ._numba import (
    _rest,
    kernel_key,
    launch,
    moments,  # noqa: F401 - the affine fit calls kernels.moments
)
from ._row_stats import BLOCK
from ._semantics import IQR_TO_STD, MAD_TO_STD, iqr_from_sorted, small_sum_of_squares

_REASSOC = {"reassoc"}
_CENTER = {None: 0, "mean": 1, "median": 2}
_SCALE = {None: 0, "std": 1, "mad": 2, "iqr": 3}

# The shared formula itself, compiled (plain arithmetic on floats).
_iqr_from_sorted = njit(cache=True, nogil=True)(iqr_from_sorted)

#: Below this many values, a range is finished by insertion sort.
_SMALL = 4


# -- selection ----------------------------------------------------------------
@njit(cache=True, nogil=True)
def _insertion(t, lo, hi):
    for i in range(lo + 1, hi):
        v = t[i]
        j = i - 1
        while j >= lo and t[j] > v:
            t[j + 1] = t[j]
            j -= 1
        t[j + 1] = v


@njit(cache=True, nogil=True)
def _sift(t, lo, i, n):
    v = t[lo + i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and t[lo + c + 1] > t[lo + c]:
            c += 1
        if not t[lo + c] > v:
            break
        t[lo + i] = t[lo + c]
        i = c
    t[lo + i] = v


@njit(cache=True, nogil=True)
def _heapsort(t, lo, hi):
    """Sort ``t[lo:hi]`` (the O(n log n) fallback of :func:`_select`)."""
    n = hi - lo
    for i in range(n // 2 - 1, -1, -1):
        _sift(t, lo, i, n)
    for end in range(n - 1, 0, -1):
        v = t[lo]
        t[lo] = t[lo + end]
        t[lo + end] = v
        _sift(t, lo, 0, end)


@njit(cache=True, nogil=True)
def _select(t, lo, hi, k):
    """Reorder ``t[lo:hi]`` so that ``t[k]`` is in its sorted place, with
    nothing larger before it and nothing smaller after it."""
    rounds = 4
    size = hi - lo
    while size > 1:
        rounds += 2
        size >>= 1
    # A linear congruential generator (31 bits) for the pivot samples,
    # seeded by the call: deterministic, and blind to the rows' patterns.
    seed = (hi * 40503 + k * 69069 + lo) & 0x7FFFFFFF
    while hi - lo > _SMALL:
        if rounds == 0:
            # Too many poor pivots (adversarial input): O(n log n).
            _heapsort(t, lo, hi)
            return
        rounds -= 1
        # The median of three values at pseudo-random places as the pivot,
        # placed at t[lo]: fixed places (the ends, the quarters) meet bad
        # pivots round after round on sorted, organ-pipe or V-shaped rows.
        size = hi - lo
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        ia = lo + ((seed * size) >> 31)
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        ib = lo + ((seed * size) >> 31)
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        ic = lo + ((seed * size) >> 31)
        a = t[ia]
        b = t[ib]
        c = t[ic]
        p = max(min(a, b), min(max(a, b), c))
        ip = ia if a == p else (ib if b == p else ic)
        t[ip] = t[lo]
        t[lo] = p
        # Branch-free Lomuto: the values below p gather at t[lo + 1:i].
        i = lo + 1
        for j in range(lo + 1, hi):
            v = t[j]
            t[j] = t[i]
            t[i] = v
            i += 1 if v < p else 0
        piv = i - 1
        t[lo] = t[piv]
        t[piv] = p
        low = piv - lo < (hi - lo) >> 3
        if k < piv:
            hi = piv
        elif k > piv:
            lo = piv + 1
            if low:
                # A pivot near the bottom: maybe ties (all values right of it
                # are >= p). Gather them next to it, or a row of ties would
                # take a round per value.
                i = lo
                for j in range(lo, hi):
                    v = t[j]
                    t[j] = t[i]
                    t[i] = v
                    i += 1 if v == p else 0
                if k < i:
                    return
                lo = i
        else:
            return
    _insertion(t, lo, hi)


@njit(cache=True, nogil=True)
def _stat(t, n, k, fixed, nf):
    """The ``k``-th smallest of ``t[:n]``, given the positions ``fixed[:nf]``
    already selected (each splits the row); returns it and the new ``nf``."""
    lo = 0
    hi = n
    for q in range(nf):
        f = fixed[q]
        if f == k:
            return t[k], nf
        if f < k:
            lo = max(lo, f + 1)
        else:
            hi = min(hi, f)
    if k == lo or k == hi - 1:
        # The smallest (largest) of the part: one scan.
        best = k
        if k == lo:
            for j in range(lo + 1, hi):
                if t[j] < t[best]:
                    best = j
        else:
            for j in range(lo, hi - 1):
                if t[j] > t[best]:
                    best = j
        v = t[best]
        t[best] = t[k]
        t[k] = v
    else:
        _select(t, lo, hi, k)
    fixed[nf] = k
    return t[k], nf + 1


@njit(cache=True, nogil=True)
def _median(t, n, fixed, nf):
    """np.median of ``t[:n]`` (float64), as ``_row_stats._median_sorted``."""
    h = n // 2
    b, nf = _stat(t, n, h, fixed, nf)
    if n % 2:
        return np.float64(b), nf
    a, nf = _stat(t, n, h - 1, fixed, nf)
    return (np.float64(a) + np.float64(b)) / 2, nf


@njit(cache=True, nogil=True)
def _iqr(t, n, fixed, nf):
    """IQR of ``t[:n]`` as ``_row_stats._iqr_sorted`` (np.percentile "linear")."""
    last = n - 1
    h75 = 0.75 * last
    lo75 = int(np.floor(h75))
    a75, nf = _stat(t, n, lo75, fixed, nf)
    b75, nf = _stat(t, n, min(lo75 + 1, last), fixed, nf)
    h25 = 0.25 * last
    lo25 = int(np.floor(h25))
    a25, nf = _stat(t, n, lo25, fixed, nf)
    b25, nf = _stat(t, n, min(lo25 + 1, last), fixed, nf)
    iqr = _iqr_from_sorted(
        np.float64(a25), np.float64(b25), h25 - lo25,
        np.float64(a75), np.float64(b75), h75 - lo75,
    )  # fmt: skip
    return iqr, nf


# -- row sums (vectorized: reassociated additions only) -------------------------
@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _load(xs, t, m):
    """Copy ``xs`` into ``t`` (its dtype); whether every value is finite."""
    acc = 0.0
    for j in range(m):
        v = xs[j]
        t[j] = v
        acc += v - v  # NaN for a NaN or an inf
    return acc == 0


# Sums over whole slices (numba vectorizes ``range(n)`` loops, not
# ``range(lo, hi)`` ones), in blocks of BLOCK values added in float64.
@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _vsum(v, d, sq):
    """Sum of ``v - d`` (each difference in the dtype), or of its squares."""
    s = 0.0
    for j in range(v.shape[0]):
        x = np.float64(v[j] - d)
        s += x * x if sq else x
    return s


@njit(cache=True, nogil=True)
def _sum_dev(t, m, d, square):
    """Sum (``square``: sum of squares) of ``t[:m] - d``, each difference in
    the dtype, in float64 over blocks of BLOCK values."""
    s = 0.0
    for lo in range(0, m, BLOCK):
        s += _vsum(t[lo : min(m, lo + BLOCK)], d, square)
    return s


@njit(cache=True, nogil=True)
def _abs_dev(xs, u, m, d, d2):
    """``u = |(xs - d) - d2|`` in ``u``'s dtype; the smallest and largest
    deviation (float64)."""
    typ = u.dtype.type
    lo = hi = (typ(xs[0]) - d) - d2
    for j in range(m):
        v = (typ(xs[j]) - d) - d2
        u[j] = abs(v)
        lo = min(lo, v)
        hi = max(hi, v)
    return np.float64(lo), np.float64(hi)


@njit(cache=True, nogil=True)
def _dev_range(xs, m, d, d2, t):
    """The smallest and largest ``(xs - d) - d2`` (in ``t``'s dtype), float64."""
    typ = t.dtype.type
    lo = hi = (typ(xs[0]) - d) - d2
    for j in range(1, m):
        v = (typ(xs[j]) - d) - d2
        lo = min(lo, v)
        hi = max(hi, v)
    return np.float64(lo), np.float64(hi)


# -- the row kernels ------------------------------------------------------------
@njit(cache=True, nogil=True)
def _denominator(scale, s, ss, lo_d, hi_d, eps, ss_small, den_min):
    """``sknorm._semantics.denominator(s, eps)`` of a row, or 0 for a row
    left to the shared rule. ``lo_d``, ``hi_d``: its smallest and largest
    deviation; ``ss``: its sum of squares (``scale="std"``)."""
    mx = max(-lo_d, hi_d)
    if scale == 1:
        fail = ss < ss_small and mx > 0
    else:
        # A zero scale on a row that is not constant (the shared fallback),
        # or tiny deviations (digits lost).
        fail = (s == 0 and hi_d > lo_d) or 0 < s < ss_small or 0 < mx < ss_small
    if fail or not (np.isfinite(s) and np.isfinite(mx)):
        return 0.0
    if 1e-150 < s < 1e150:
        den = np.sqrt(s * s + eps)
    else:
        den = np.hypot(s, np.sqrt(eps))
    if den == 0:
        den = 1.0
    if den < den_min:  # 1 / den beyond the dtype's range: the shared rule
        return 0.0
    return den


@njit(cache=True, nogil=True)
def _write(xs, z, o, m, d, d2, r, gs, bs, affine):
    """``z[o:o + m] = ((xs - d) - d2) * r`` (then ``* gs + bs``) in the work
    dtype (``d``'s: float32 ``xs`` minus float64 ``d`` is float64); the
    assignment rounds to ``z``'s."""
    zs = z[o : o + m]
    if affine:
        for j in range(m):
            zs[j] = (((xs[j] - d) - d2) * r) * gs[j] + bs[j]
    else:
        for j in range(m):
            zs[j] = ((xs[j] - d) - d2) * r


@njit(cache=True, nogil=True)
def _rows(
    X, Z, lo, hi, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, den_min, W, C, S, bad, t, u, fixed,
):  # fmt: skip
    """Normalize rows ``lo:hi`` one at a time (selection in ``t``, ``u``:
    scratch rows in ``W``'s dtype: ``X``'s, or float64 for float32 data with
    an affine map)."""
    typ = W.dtype.type
    affine = gain.shape[0] > 0
    keep = C.shape[0] > 0  # the statistics are wanted
    n_groups = in_lo.shape[0]
    for row in range(lo, hi):
        x = X[row]
        z = Z[row]
        for g in range(n_groups):
            a = in_lo[g]
            m = in_hi[g] - a
            xs = x[a : a + m]
            if m == 0 or not _load(xs, t, m):
                bad[row, g] = True  # NaN or inf: the shared rule
                continue
            nf = 0
            d = typ(0)
            d2 = typ(0)
            c = 0.0
            if center == 2:
                c, nf = _median(t, m, fixed, nf)
                d = typ(c)
            elif center == 1:
                # The corrected two-pass mean, as sknorm._numba.
                d = typ(_sum_dev(t, m, t.dtype.type(0), False) / m)
                delta2 = _sum_dev(t, m, d, False) / m
                d2 = typ(delta2)
                c = np.float64(d) + delta2
            if not np.isfinite(c):
                bad[row, g] = True
                continue
            s = 0.0
            r = typ(1)
            if scale:
                ss = 0.0
                if scale == 1:
                    ss = _sum_dev(t, m, d, True)
                    s = np.sqrt(ss / m)
                    lo_d, hi_d = _dev_range(xs, m, d, d2, t)
                elif scale == 2:
                    lo_d, hi_d = _abs_dev(xs, u, m, d, d2)
                    mad, _ = _median(u, m, fixed, 0)
                    s = MAD_TO_STD * mad
                else:
                    iqr, nf = _iqr(t, m, fixed, nf)
                    s = iqr / IQR_TO_STD
                    lo_d, hi_d = _dev_range(xs, m, d, d2, t)
                den = _denominator(scale, s, ss, lo_d, hi_d, eps, ss_small, den_min)
                if den == 0:
                    bad[row, g] = True
                    continue
                r = typ(1.0 / den)
                if keep:
                    S[row, g] = s
            if keep:
                C[row, g] = c
            gs = gain[a : a + m] if affine else gain
            bs = bias[a : a + m] if affine else bias
            _write(xs, z, out_lo[g], m, d, d2, r, gs, bs, affine)
            if stat_c[g] >= 0:
                z[stat_c[g]] = c
            if scale and stat_s[g] >= 0:
                z[stat_s[g]] = s
        if other.shape[0] or rest_in.shape[0]:
            _rest(x, z, row, other, rest_in, rest_out, bad, n_groups)


# -- narrow groups: sorting networks across rows ----------------------------------
#: Groups of at most this many columns use the network kernel below.
NET_MAX = 64
#: Values per block of rows of the network kernel (its transposed copy).
NET_BLOCK = 8192


def _batcher(n):
    """Comparators ``(a, b)``, ``a < b``, of Batcher's odd-even merge sort on
    ``n`` wires (the network for the next power of two, without comparators
    that touch a wire >= n: padding wires would hold +inf, which never moves
    to a lower wire)."""
    size = 1
    while size < n:
        size *= 2
    out = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        if i + j + k < n:
                            out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return out


@functools.lru_cache(maxsize=64)
def _network(n, positions):
    """The comparators of :func:`_batcher` that the values at ``positions``
    of the sorted row depend on, as two int64 arrays."""
    need = set(positions)
    keep = []
    for a, b in reversed(_batcher(n)):
        if a in need or b in need:
            keep.append((a, b))
            need.update((a, b))
    keep.reverse()
    ca = np.array([a for a, _ in keep], dtype=np.int64)
    cb = np.array([b for _, b in keep], dtype=np.int64)
    return ca, cb


def _positions(m, center, scale):
    """Sorted positions the network must place: the median's, the
    quartiles', and the ends (the deviations' range) with a scale."""
    pos = set()
    if center == "median":
        pos.update((m // 2, (m - 1) // 2))
    if scale == "iqr":
        last = m - 1
        for q in (0.25, 0.75):
            lo = int(np.floor(q * last))
            pos.update((lo, min(lo + 1, last)))
    if scale is not None:
        pos.update((0, m - 1))
    return tuple(sorted(pos))


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _load_t(X, b0, nr, a, m, U, fin):
    """``U[j, i] = X[b0 + i, a + j]``; ``fin[i]`` is 0 when row i is finite."""
    for i in range(nr):
        fin[i] = 0.0
    for j in range(m):
        uj = U[j]
        for i in range(nr):
            v = X[b0 + i, a + j]
            uj[i] = v
            fin[i] += v - v  # NaN for a NaN or an inf


@njit(cache=True, nogil=True)
def _sort_net(U, ca, cb, nr):
    """Apply the comparators to the columns of ``U`` (vectorized over rows)."""
    for q in range(ca.shape[0]):
        ua = U[ca[q]]
        ub = U[cb[q]]
        for i in range(nr):
            x = ua[i]
            y = ub[i]
            lt = y < x
            ua[i] = y if lt else x
            ub[i] = x if lt else y


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _sum_sq_t(U, m, nr, cd, out):
    """``out[i]``: sum of squares of ``U[:, i] - cd[i]`` in float64."""
    for i in range(nr):
        out[i] = 0.0
    for j in range(m):
        uj = U[j]
        for i in range(nr):
            v = np.float64(uj[i] - cd[i])
            out[i] += v * v


@njit(fastmath=_REASSOC, cache=True, nogil=True)
def _mean_t(U, m, nr, cd, d2a, cv, s1):
    """The corrected two-pass mean of each column of ``U`` (as :func:`_rows`):
    ``cd`` the rounded mean, ``d2a`` the residuals' mean, ``cv`` the center."""
    for i in range(nr):
        s1[i] = 0.0
    for j in range(m):
        uj = U[j]
        for i in range(nr):
            s1[i] += np.float64(uj[i])
    for i in range(nr):
        cd[i] = s1[i] / m  # rounded to the work dtype
        s1[i] = 0.0
    for j in range(m):
        uj = U[j]
        for i in range(nr):
            s1[i] += np.float64(uj[i] - cd[i])
    for i in range(nr):
        delta2 = s1[i] / m
        d2a[i] = delta2
        cv[i] = np.float64(cd[i]) + delta2


@njit(cache=True, nogil=True)
def _abs_dev_t(U, V, m, nr, cd, d2a):
    for j in range(m):
        uj = U[j]
        vj = V[j]
        for i in range(nr):
            vj[i] = abs((uj[i] - cd[i]) - d2a[i])


@njit(cache=True, nogil=True)
def _kth_two_runs(U, h, m, nr, cd, k, out):
    """``out[i]``: the ``k``-th smallest (from 1) of ``|U[:m, i] - cd[i]|``
    for columns of ``U`` sorted with ``U[:h] <= cd <= U[h:]``.

    The deviations then form two sorted runs, ``A_p = |U[h - p] - cd|`` and
    ``B_q = |U[h - 1 + q] - cd|``, and the k-th smallest of their union is
    the smallest ``max(A_p, B_q)`` over ``p + q = k`` (``A_0 = B_0 = -inf``):
    k maxima and minima per row, vectorized over rows, instead of a second
    network.
    """
    n_b = m - h
    for p in range(max(0, k - n_b), min(k, h) + 1):
        q = k - p
        ua = U[h - p]
        ub = U[h - 1 + q]
        first = p == max(0, k - n_b)
        for i in range(nr):
            if p == 0:
                v = abs(ub[i] - cd[i])
            elif q == 0:
                v = abs(ua[i] - cd[i])
            else:
                v = max(abs(ua[i] - cd[i]), abs(ub[i] - cd[i]))
            out[i] = v if first else min(out[i], v)


@njit(cache=True, nogil=True)
def _median_col(U, m, i):
    h = m // 2
    if m % 2:
        return np.float64(U[h, i])
    return (np.float64(U[h - 1, i]) + np.float64(U[h, i])) / 2


@njit(cache=True, nogil=True)
def _rows_net(
    X, Z, lo, hi, in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in, rest_out,
    gain, bias, center, scale, eps, ss_small, den_min, W, C, S, bad,
    ca1, cb1, ca2, cb2, U, V, fin, cd, d2a, cv, sq,
):  # fmt: skip
    """Normalize rows ``lo:hi`` of groups of one width ``m <= NET_MAX``, a
    block of rows at a time: each group is copied transposed into ``U``
    (m, rows) and the comparators ``ca1, cb1`` place the order statistics
    needed, for all rows of the block at once (vectorized, branch-free);
    ``ca2, cb2`` do the same for the absolute deviations in ``V`` (MAD)."""
    typ = W.dtype.type
    affine = gain.shape[0] > 0
    keep = C.shape[0] > 0  # the statistics are wanted
    n_groups = in_lo.shape[0]
    R = U.shape[1]
    m = in_hi[0] - in_lo[0]
    last = m - 1
    h25 = 0.25 * last
    lo25 = int(np.floor(h25))
    hi25 = min(lo25 + 1, last)
    h75 = 0.75 * last
    lo75 = int(np.floor(h75))
    hi75 = min(lo75 + 1, last)
    for b0 in range(lo, hi, R):
        nr = min(R, hi - b0)
        for g in range(n_groups):
            a = in_lo[g]
            _load_t(X, b0, nr, a, m, U, fin)
            if center == 1:
                _mean_t(U, m, nr, cd, d2a, cv, sq)
            _sort_net(U, ca1, cb1, nr)
            if center != 1:
                for i in range(nr):
                    c = _median_col(U, m, i) if center == 2 else 0.0
                    cv[i] = c
                    cd[i] = typ(c)
                    d2a[i] = 0
            if scale == 2 and center == 2:
                # U is sorted: the MAD from two sorted runs (V[0], V[1]).
                h = m // 2
                _kth_two_runs(U, h, m, nr, cd, h + 1, V[1])
                if m % 2 == 0:
                    _kth_two_runs(U, h, m, nr, cd, h, V[0])
            elif scale == 2:
                _abs_dev_t(U, V, m, nr, cd, d2a)
                _sort_net(V, ca2, cb2, nr)
            elif scale == 1:
                _sum_sq_t(U, m, nr, cd, sq)
            gs = gain[a : a + m] if affine else gain
            bs = bias[a : a + m] if affine else bias
            for i in range(nr):
                row = b0 + i
                c = cv[i]
                d = cd[i]
                d2 = d2a[i]
                if fin[i] != 0 or not np.isfinite(c):
                    bad[row, g] = True  # NaN or inf: the shared rule
                    continue
                s = 0.0
                r = typ(1)
                if scale:
                    # U's ends are the row's smallest and largest values.
                    lo_d = np.float64((U[0, i] - d) - d2)
                    hi_d = np.float64((U[last, i] - d) - d2)
                    ss = 0.0
                    if scale == 1:
                        ss = sq[i]
                        s = np.sqrt(ss / m)
                    elif scale == 2 and center == 2:
                        mad = np.float64(V[1, i])
                        if m % 2 == 0:
                            mad = (np.float64(V[0, i]) + mad) / 2
                        s = MAD_TO_STD * mad
                    elif scale == 2:
                        s = MAD_TO_STD * _median_col(V, m, i)
                    else:
                        iqr = _iqr_from_sorted(
                            np.float64(U[lo25, i]), np.float64(U[hi25, i]),
                            h25 - lo25, np.float64(U[lo75, i]),
                            np.float64(U[hi75, i]), h75 - lo75,
                        )  # fmt: skip
                        s = iqr / IQR_TO_STD
                    den = _denominator(scale, s, ss, lo_d, hi_d, eps, ss_small, den_min)
                    if den == 0:
                        bad[row, g] = True
                        continue
                    r = typ(1.0 / den)
                    if keep:
                        S[row, g] = s
                if keep:
                    C[row, g] = c
                z = Z[row]
                xs = X[row, a : a + m]
                zs = z[out_lo[g] : out_lo[g] + m]
                if affine:
                    for j in range(m):
                        zs[j] = (((xs[j] - d) - d2) * r) * gs[j] + bs[j]
                else:
                    for j in range(m):
                        zs[j] = ((xs[j] - d) - d2) * r
                if stat_c[g] >= 0:
                    z[stat_c[g]] = c
                if scale and stat_s[g] >= 0:
                    z[stat_s[g]] = s
        if other.shape[0] or rest_in.shape[0]:
            for row in range(b0, b0 + nr):
                _rest(X[row], Z[row], row, other, rest_in, rest_out, bad, n_groups)


@njit(cache=True, nogil=True)
def _chunk(X, Z, lo, hi, layout, opts, W, C, S, bad, nets, scratch):
    if scratch[3].shape[0]:  # the network kernel's block
        _rows_net(X, Z, lo, hi, *layout, *opts, W, C, S, bad, *nets, *scratch[3:])
    else:
        _rows(X, Z, lo, hi, *layout, *opts, W, C, S, bad, *scratch[:3])


@njit(cache=True, nogil=True)
def _scratch(W, width, net_rows, net_m, v_rows):
    """Per-task scratch: rows for selection, or blocks for the networks."""
    t = np.empty(width, dtype=W.dtype)
    u = np.empty(width, dtype=W.dtype)
    fixed = np.empty(8, dtype=np.int64)
    U = np.empty((net_m, net_rows), dtype=W.dtype)
    V = np.empty((v_rows, net_rows), dtype=W.dtype)
    fin = np.empty(net_rows)
    cd = np.empty(net_rows, dtype=W.dtype)
    d2a = np.empty(net_rows, dtype=W.dtype)
    cv = np.empty(net_rows)
    sq = np.empty(net_rows)
    return t, u, fixed, U, V, fin, cd, d2a, cv, sq


@njit(cache=True, nogil=True)
def _rows_serial(X, Z, step, layout, opts, W, C, S, bad, nets, sizes):
    n = X.shape[0]
    scratch = _scratch(W, *sizes)
    for lo in range(0, n, step):
        _chunk(X, Z, lo, min(n, lo + step), layout, opts, W, C, S, bad, nets, scratch)


@njit(parallel=True, cache=True, nogil=True)
def _rows_parallel(X, Z, step, layout, opts, W, C, S, bad, nets, sizes, n_tasks):
    # A few tasks per thread, each with its own scratch, working through
    # consecutive chunks of rows (as sknorm._numba).
    n = X.shape[0]
    n_chunks = (n + step - 1) // step
    for k in prange(n_tasks):
        scratch = _scratch(W, *sizes)
        for ch in range(k * n_chunks // n_tasks, (k + 1) * n_chunks // n_tasks):
            _chunk(
                X, Z, ch * step, min(n, (ch + 1) * step), layout, opts, W, C, S,
                bad, nets, scratch,
            )  # fmt: skip


def _net_width(widths):
    """The groups' common width if the network kernel takes them, else 0."""
    if not widths.size:
        return 0
    m = int(widths[0])
    if not 1 < m <= NET_MAX or (widths != m).any():
        return 0
    return m


#: Wider rows than this are selected faster here than numpy sorts them.
ROW_MIN = 256


def applies(layout, center, scale):
    """Whether these kernels beat the numpy engine on this layout (groups of
    contiguous columns). Measured on x86-64 with AVX-512, where numpy >= 2
    sorts rows of up to 256 float64 in SIMD registers: the networks win on
    groups of one width up to :data:`NET_MAX` (or tie, for the median
    alone); selection wins on rows wider than :data:`ROW_MIN` (numpy's sort
    turns O(n log n) there); numpy's sort wins in between."""
    widths = np.array([c.stop - c.start for c in layout.in_cols])
    if not widths.size:
        return False
    return widths.min() > ROW_MIN or _net_width(widths) > 0


def normalize(X, Z, layout, center, scale, eps, gain, bias, n_threads, stats=True):
    """Normalize C-contiguous ``X`` into C-contiguous ``Z`` (may be ``X``).

    The contract of :func:`sknorm._numba.normalize`: ``layout`` holds int64
    arrays ``in_lo, in_hi, out_lo, stat_c, stat_s, other, rest_in,
    rest_out``; ``gain``/``bias`` are float64 arrays (empty: no affine map).
    Returns ``(C, S, bad)``: ``bad[i, g]`` flags a row group left unwritten
    for the slow path, ``bad[i, -1]`` an inf in a column of no group.
    Without ``stats``, ``C`` and ``S`` are neither allocated nor filled, and
    are None.
    """
    n = X.shape[0]
    n_groups = layout[0].shape[0]
    rows = n if stats else 0
    C = np.empty((rows, n_groups))
    S = np.zeros((rows, n_groups))
    bad = np.zeros((n, n_groups + 1), dtype=np.bool_)
    widths = layout[1] - layout[0]
    width = max(1, int(widths.max())) if widths.size else 1
    # Float32 data with an affine map: normalized and mapped in float64.
    W = np.empty(0, np.float64 if gain.size else X.dtype)
    ss_small = small_sum_of_squares(W.dtype)
    # Where 1 / den is beyond the dtype's range the numpy engine divides.
    den_min = 4 / float(np.finfo(W.dtype).max)
    opts = (gain, bias, _CENTER[center], _SCALE[scale], float(eps), ss_small, den_min)
    m = _net_width(widths)
    empty = np.empty(0, dtype=np.int64)
    nets = (empty, empty, empty, empty)
    sizes = (width, 1, 0, 0)
    if m:
        ca1, cb1 = _network(m, _positions(m, center, scale))
        ca2 = cb2 = empty
        v_rows = 0
        if scale == "mad" and center == "median":
            # A full sort: the MAD from its two sorted runs (_kth_two_runs).
            ca1, cb1 = _network(m, tuple(range(m)))
            v_rows = 2
        elif scale == "mad":
            ca2, cb2 = _network(m, _positions(m, "median", None))
            v_rows = m
        nets = (ca1, cb1, ca2, cb2)
        # Blocks of 128 rows at 64 columns (measured best; the copy is in L2).
        sizes = (1, max(16, min(256, NET_BLOCK // m)), m, v_rows)
    layout = tuple(layout)
    args = (layout, opts, W, C, S, bad, nets, sizes)
    # One parallel launch at a time, shared with sknorm._numba.
    launch(
        X,
        n_threads,
        lambda step, n_tasks: _rows_parallel(X, Z, step, *args, n_tasks),
        lambda step: _rows_serial(X, Z, step, *args),
        kernel_key(__name__, X, gain.size, center, scale),
    )
    if not stats:
        C = S = None
    return C, S, bad
