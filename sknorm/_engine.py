"""The one engine behind every sknorm estimator and function.

A normalization is described by a :class:`GroupSpec` (which columns form which
group, which columns pass through) plus ``center``, ``scale`` and ``eps``.
``LayerNormalizer`` is the one-group spec, ``RMSNormalizer`` the one-group spec
with ``center=None``, ``GroupNormalizer`` the general case. This module:

* cuts the data into row chunks and normalizes each group of each chunk with
  :func:`sknorm._row_stats.normalize_block` (:func:`iter_normalized`);
* assembles the output: normalized columns in their input order, the fitted
  affine map, the kept per-group statistics (:func:`transform`);
* inverts that (:func:`inverse_transform`);
* handles sparse input for the uncentered configurations (:func:`transform`);
* keeps the exact, mergeable sufficient statistics of the per-feature affine
  regression (:class:`AffineMoments`).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _config
from ._row_stats import _INF_MESSAGE, denominator, normalize_block

# Rows per chunk are chosen so that one chunk is about this many bytes: large
# enough to amortize the Python overhead and the GIL hand-offs between threads
# (measured best at 4 MiB on a 2-core machine with 1 MiB L2 per core, 32 MiB L3),
# small enough to stay in cache.
CHUNK_BYTES = 2**22


@dataclass(frozen=True)
class GroupSpec:
    """Which columns are normalized together, and what happens to the rest.

    Attributes
    ----------
    n_features : int
        Number of input columns.
    names : tuple of str
        One name per group (used for the kept statistics' column names).
    indices : tuple of ndarray of int
        The input columns of each group.
    keep : ndarray of int
        The input columns that appear in the output, in input order (the group
        columns plus, with ``remainder="passthrough"``, the others).
    """

    n_features: int
    names: tuple
    indices: tuple
    keep: np.ndarray

    @classmethod
    def single(cls, n_features, name="sample"):
        cols = np.arange(n_features)
        return cls(n_features, (name,), (cols,), cols)

    @property
    def in_group(self):
        """Boolean mask of the input columns that belong to some group."""
        mask = np.zeros(self.n_features, dtype=bool)
        for idx in self.indices:
            mask[idx] = True
        return mask

    def slices(self):
        """Each group as a slice when its columns are contiguous, else indices."""
        out = []
        for idx in self.indices:
            if idx.size and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
                out.append(slice(int(idx[0]), int(idx[0]) + idx.size))
            else:
                out.append(idx)
        return out


def stat_names(spec, center, scale):
    """Column names of the kept statistics, in output order."""
    names = []
    for name in spec.names:
        if center is not None:
            names.append(f"{name}_center")
        if scale is not None:
            names.append(f"{name}_scale")
    return names


def _chunk_rows(n_cols, itemsize=8):
    return max(1, CHUNK_BYTES // max(1, n_cols * itemsize))


class _Layout:
    """Where each group's columns are in the input and in the output.

    ``in_cols[g]``/``out_cols[g]``: a slice (contiguous columns) or an index
    array; ``stat_cols[g]``: output columns of the kept center and scale (or
    None); ``rest_in``/``rest_out``: passthrough columns; ``other``: every
    input column in no group (checked for inf).
    """

    _EMPTY = np.empty(0, dtype=np.intp)

    def __init__(self, spec, center, scale, keep_stats):
        keep = np.asarray(spec.keep)
        p = spec.n_features
        self.n_groups = len(spec.indices)
        # The common case, one group of all columns, without numpy calls (this
        # is per-call overhead on small inputs).
        whole = (
            self.n_groups == 1
            and keep.size == p
            and spec.indices[0].size == p
            and p > 0
            and spec.indices[0][0] == 0
            and spec.indices[0][-1] == p - 1
            and (p < 3 or bool((np.diff(spec.indices[0]) == 1).all()))
        )
        self.in_cols = [slice(0, p)] if whole else spec.slices()
        self.out_cols = []
        for cols in self.in_cols:
            if whole:
                self.out_cols.append(slice(0, p))
            elif isinstance(cols, slice):
                lo = int(np.searchsorted(keep, cols.start))
                self.out_cols.append(slice(lo, lo + cols.stop - cols.start))
            else:
                self.out_cols.append(np.searchsorted(keep, cols))
        n_stats = 0
        if keep_stats:
            n_stats = (center is not None) + (scale is not None)
        self.n_stats = n_stats
        self.n_out = keep.size + n_stats * self.n_groups
        self.stat_cols = []
        for g in range(self.n_groups):
            base = keep.size + g * n_stats
            c_col = base if (n_stats and center is not None) else None
            s_col = (
                base + (center is not None) if (n_stats and scale is not None) else None
            )
            self.stat_cols.append((c_col, s_col))
        self.keep_all = keep.size == p
        if whole:
            self.other = self.rest_in = self.rest_out = self._EMPTY
            return
        self.other = np.flatnonzero(~spec.in_group)
        self.rest_in = np.intersect1d(self.other, keep)
        self.rest_out = np.searchsorted(keep, self.rest_in)

    def numba_arrays(self):
        """The layout as int64 arrays for :func:`sknorm._numba.normalize`."""
        i64 = np.int64
        return (
            np.array([c.start for c in self.in_cols], dtype=i64),
            np.array([c.stop for c in self.in_cols], dtype=i64),
            np.array([c.start for c in self.out_cols], dtype=i64),
            np.array([-1 if c is None else c for c, _ in self.stat_cols], dtype=i64),
            np.array([-1 if s is None else s for _, s in self.stat_cols], dtype=i64),
            self.other.astype(i64),
            self.rest_in.astype(i64),
            self.rest_out.astype(i64),
        )


def _group_affine(gain, bias, layout, dtype):
    """Per-group ``(gain, bias)`` in the output dtype (None without affine)."""
    if gain is None:
        return [None] * layout.n_groups
    gain = np.asarray(gain, dtype=dtype)
    bias = np.asarray(bias, dtype=dtype)
    return [(gain[cols], bias[cols]) for cols in layout.in_cols]


def _normalize_group(x, z, layout, g, center, scale, eps, affine):
    """Normalize group ``g`` of the rows ``x`` into the output rows ``z``.

    ``z`` may be ``x`` (in place). Returns the group's centers and scales.
    """
    in_cols, out_cols = layout.in_cols[g], layout.out_cols[g]
    if isinstance(in_cols, slice):
        xb, zb = x[:, in_cols], z[:, out_cols]
        c, s = normalize_block(xb, zb, center, scale, eps)
    else:
        xb = x[:, in_cols]
        zb = np.empty(xb.shape, dtype=z.dtype)
        c, s = normalize_block(xb, zb, center, scale, eps)
    if affine is not None:
        zb *= affine[0]
        zb += affine[1]
    if not isinstance(in_cols, slice):
        z[:, out_cols] = zb
    c_col, s_col = layout.stat_cols[g]
    if c_col is not None:
        z[:, c_col] = c
    if s_col is not None:
        z[:, s_col] = s
    return c, s


def _normalize_rows(X, Z, C, S, rows, layout, center, scale, eps, affines):
    """Normalize ``X[rows]`` into ``Z[rows]`` (``rows``: a slice; ``Z`` may
    be ``X``)."""
    inplace = Z is X
    x = X[rows]
    z = Z[rows]
    if layout.other.size and np.isinf(x[:, layout.other]).any():
        raise ValueError(_INF_MESSAGE)
    for g in range(layout.n_groups):
        c, s = _normalize_group(x, z, layout, g, center, scale, eps, affines[g])
        C[rows, g] = c
        if S is not None:
            S[rows, g] = s
    if layout.rest_in.size and not inplace:
        z[:, layout.rest_out] = x[:, layout.rest_in]


def iter_normalized(X, spec, center, scale, eps, out=None):
    """Normalize dense ``X`` chunk by chunk.

    Yields ``(rows, Z, C, S)`` for consecutive row slices: ``Z`` is the chunk of
    the output (a view of ``out`` when given, else float64 scratch), and ``C``,
    ``S`` the per-row, per-group centers and scales (``S`` is None when
    ``scale is None``). Columns outside every group are copied unchanged.
    Without ``out`` the arithmetic is float64 whatever the input dtype; ``out``
    must have ``X``'s shape (it may be ``X`` itself: in-place normalization).

    With several threads (:func:`sknorm.set_config`), the next chunks are
    normalized by worker threads while the caller consumes the current one
    (at most ``n_threads`` chunks of scratch in flight).
    """
    n, p = X.shape
    full = GroupSpec(spec.n_features, spec.names, spec.indices, np.arange(p))
    layout = _Layout(full, center, scale, False)
    affines = [None] * layout.n_groups
    step = _chunk_rows(p)
    dtype = np.float64 if out is None else out.dtype
    kernels = _numba_kernels(X, np.empty((0, p), dtype), layout, center, scale)
    if kernels is not None and X.dtype != dtype:
        kernels = None

    def work(lo, hi):
        rows = slice(lo, hi)
        x = X[rows]
        z = np.empty((hi - lo, p), dtype) if out is None else out[rows]
        if kernels is not None:
            C, S = _transform_numba(
                kernels, x, z, layout, center, scale, eps, None, None, 1
            )
        else:
            C = np.empty((hi - lo, layout.n_groups))
            S = None if scale is None else np.empty((hi - lo, layout.n_groups))
            _normalize_rows(
                x, z, C, S, slice(0, hi - lo), layout, center, scale, eps, affines
            )
        return rows, z, C, (None if scale is None else S)

    starts = range(0, n, step)
    n_threads = min(_config.effective_n_threads(), len(starts))
    if n_threads <= 1:
        for lo in starts:
            yield work(lo, min(n, lo + step))
        return
    pool = _get_pool(n_threads)
    pending = []
    todo = iter(starts)
    try:
        for lo in todo:
            pending.append(pool.submit(work, lo, min(n, lo + step)))
            if len(pending) >= n_threads:
                break
        while pending:
            result = pending.pop(0).result()
            lo = next(todo, None)
            if lo is not None:
                pending.append(pool.submit(work, lo, min(n, lo + step)))
            yield result
    finally:
        for f in pending:
            f.cancel()


def affine_moments(X, w, spec, center, scale, eps):
    """The :class:`AffineMoments` of the grouped columns of dense batch ``X``.

    One pass over ``X``: each row chunk is normalized into float64 scratch
    and reduced to its regression moments right away, on several threads
    (:func:`sknorm.set_config`); the chunks' moments are merged in row order,
    so the result does not depend on the number of threads.
    """
    n, p = X.shape
    cols = spec.in_group
    all_cols = bool(cols.all())
    cols = np.flatnonzero(cols)
    w = np.asarray(w, dtype=np.float64)
    full = GroupSpec(spec.n_features, spec.names, spec.indices, np.arange(p))
    layout = _Layout(full, center, scale, False)
    kernels = None
    if X.dtype == np.float64:
        kernels = _numba_kernels(X, np.empty((0, p)), layout, center, scale)
    affines = [None] * layout.n_groups
    step = _chunk_rows(p)
    starts = list(range(0, n, step))
    results = [None] * len(starts)

    def normalized(x):
        z = np.empty(x.shape)
        if kernels is not None:
            _transform_numba(kernels, x, z, layout, center, scale, eps, None, None, 1)
        else:
            C = np.empty((x.shape[0], layout.n_groups))
            S = None if scale is None else np.empty((x.shape[0], layout.n_groups))
            _normalize_rows(
                x, z, C, S, slice(0, x.shape[0]), layout, center, scale, eps, affines
            )
        return z

    def work(lo, hi):
        x = X[lo:hi]
        z = normalized(x)
        if all_cols and kernels is not None and x.flags.c_contiguous:
            fast = kernels.moments(x, z, w[lo:hi])
            if fast is not None:
                batch = AffineMoments._from_arrays(*fast)
                if not batch._bad().any():
                    results[lo // step] = batch
                    return
                # The compiled sums overflowed (|z| or |x| too large to
                # square): the numpy moments rescale those features.
                results[lo // step] = AffineMoments.from_batch(x, z, w[lo:hi])
                return
        if not all_cols:
            x, z = x[:, cols], z[:, cols]
        batch = AffineMoments._from_scratch(x, z, w[lo:hi])
        if batch is None:
            # The fast sums overflowed after they overwrote z: normalize the
            # chunk again for the rescaled moments (rare, never on normal data).
            z = normalized(X[lo:hi])
            if not all_cols:
                z = z[:, cols]
            batch = AffineMoments.from_batch(x, z, w[lo:hi])
        results[lo // step] = batch

    _run_chunks(work, n, step, _config.effective_n_threads())
    total = AffineMoments(cols.size)
    for batch in results:
        total.merge(batch)
    return total


def check_passthrough_finite(X, spec):
    """Reject inf in columns that pass through (their rows have no statistic)."""
    rest = ~spec.in_group
    if rest.any():
        cols = X[:, rest]
        if sp.issparse(cols):
            cols = cols.data
        if np.isinf(cols).any():
            raise ValueError(_INF_MESSAGE)


def transform(
    X, spec, center, scale, eps, *, gain=None, bias=None, keep_stats=False, copy=True
):
    """Normalize ``X`` (validated float array or sparse matrix) by ``spec``.

    Returns ``(Y, C, S)``: ``Y`` has the kept columns (``spec.keep``, in input
    order) followed, with ``keep_stats``, by the per-group center and scale
    columns; ``C`` and ``S`` are the (n_samples, n_groups) statistics.
    ``gain``/``bias`` (length ``n_features``) apply ``gain * z + bias`` to the
    normalized columns. With ``copy=False``, no kept statistics and no dropped
    columns, dense ``X`` is normalized in place and returned.

    Dense input is normalized in row chunks of about :data:`CHUNK_BYTES`,
    straight into the output (no other full-size array is allocated), by the
    numba kernels of :mod:`sknorm._numba` when they apply and are enabled
    (:func:`sknorm.set_config`), else by numpy, on several threads for large
    input. Input validation costs no extra pass: an inf makes its row's
    statistics non-finite (see :mod:`sknorm._row_stats`).
    """
    if sp.issparse(X):
        check_passthrough_finite(X, spec)
        return _transform_sparse(X, spec, scale, eps, keep_stats=keep_stats)
    n = X.shape[0]
    layout = _Layout(spec, center, scale, keep_stats)
    if layout.keep_all and not layout.n_stats:
        Z = X if not copy else np.empty(X.shape, dtype=X.dtype)
    else:
        Z = np.empty((n, layout.n_out), dtype=X.dtype)
    n_threads = _config.effective_n_threads()
    kernels = _numba_kernels(X, Z, layout, center, scale)
    if kernels is not None:
        C, S = _transform_numba(
            kernels, X, Z, layout, center, scale, eps, gain, bias, n_threads
        )
        return Z, C, (None if scale is None else S)
    C = np.empty((n, layout.n_groups))
    S = None if scale is None else np.empty((n, layout.n_groups))
    affines = _group_affine(gain, bias, layout, Z.dtype)
    step = _chunk_rows(X.shape[1], X.itemsize)

    def work(lo, hi):
        _normalize_rows(X, Z, C, S, slice(lo, hi), layout, center, scale, eps, affines)

    _run_chunks(work, n, step, n_threads)
    return Z, C, S


# -- numba ---------------------------------------------------------------------
_SUPPORTED_BY_NUMBA = {("mean", "std"), (None, "std"), ("mean", None)}

#: With engine="auto", inputs with fewer values use numpy.
NUMBA_MIN_SIZE = 2**15


def _numba_kernels(X, Z, layout, center, scale):
    """The numba module if the config asks for it and it applies, else None."""
    engine = _config.get_config()["engine"]
    if engine == "numpy":
        return None
    if engine == "numba":
        try:
            from . import _numba
        except ImportError as exc:
            raise ImportError(
                "sknorm's engine='numba' needs numba: pip install 'sknorm[fast]', "
                "or use sknorm.set_config(engine='auto')."
            ) from exc
    else:
        if X.size < NUMBA_MIN_SIZE:
            # "auto": small inputs gain nothing from the kernels, and the
            # first call would pay their compilation.
            return None
        _numba = _import_numba()
        if _numba is None:
            return None
    applies = (
        (center, scale) in _SUPPORTED_BY_NUMBA
        and all(isinstance(c, slice) for c in layout.in_cols)
        and X.flags.c_contiguous
        and Z.flags.c_contiguous
        and X.dtype in (np.float64, np.float32)
    )
    return _numba if applies else None


_NUMBA = []


def _import_numba():
    """The numba kernels, or None when numba is not installed (cached)."""
    if not _NUMBA:
        try:
            from . import _numba
        except ImportError:
            _numba = None
        _NUMBA.append(_numba)
    return _NUMBA[0]


def _transform_numba(kernels, X, Z, layout, center, scale, eps, gain, bias, n_threads):
    if gain is None:
        g = b = np.empty(0, dtype=Z.dtype)
    else:
        g = np.asarray(gain, dtype=Z.dtype)
        b = np.asarray(bias, dtype=Z.dtype)
    C, S, bad = kernels.normalize(
        X, Z, layout.numba_arrays(), center, scale, eps, g, b, n_threads
    )
    if bad[:, -1].any():
        raise ValueError(_INF_MESSAGE)
    if bad.any():
        # Rows with NaN, inf, overflow or underflow: the numba kernel left
        # them unwritten; redo them with the numpy slow path.
        affines = _group_affine(gain, bias, layout, Z.dtype)
        for g_ in range(layout.n_groups):
            rows = np.flatnonzero(bad[:, g_])
            if not rows.size:
                continue
            x = X[rows]
            z = np.empty((rows.size, Z.shape[1]), dtype=Z.dtype)
            c, s = _normalize_group(x, z, layout, g_, center, scale, eps, affines[g_])
            cols = layout.out_cols[g_]
            Z[rows, cols] = z[:, cols]
            for col in layout.stat_cols[g_]:
                if col is not None:
                    Z[rows, col] = z[:, col]
            C[rows, g_] = c
            if s is not None:
                S[rows, g_] = s
    return C, S


# -- threads -------------------------------------------------------------------
_POOL = {}
_POOL_LOCK = threading.Lock()


def _get_pool(n_workers):
    with _POOL_LOCK:
        pool = _POOL.get("pool")
        if pool is None or _POOL["size"] < n_workers:
            if pool is not None:
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(n_workers, thread_name_prefix="sknorm")
            _POOL.update(pool=pool, size=n_workers)
        return pool


def _forget_pool():  # pragma: no cover - runs in a forked child
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _run_chunks(work, n, step, n_threads):
    """Call ``work(lo, hi)`` on consecutive row chunks, on ``n_threads``."""
    starts = range(0, n, step)
    n_threads = min(n_threads, len(starts))
    if n_threads <= 1:
        with _blas_one_thread(len(starts) > 1):
            for lo in starts:
                work(lo, min(n, lo + step))
        return
    todo = iter(starts)
    lock = threading.Lock()
    failed = []

    def worker():
        while not failed:
            with lock:
                lo = next(todo, None)
            if lo is None:
                return
            try:
                work(lo, min(n, lo + step))
            except BaseException as exc:
                failed.append(exc)
                raise

    with _blas_one_thread(True):
        pool = _get_pool(n_threads - 1)
        helpers = [pool.submit(worker) for _ in range(n_threads - 1)]
        try:
            worker()
        except BaseException:
            pass
        for f in helpers:
            if not f.cancel():
                f.exception()
    if failed:
        raise failed[0]


# BLAS calls on chunks are below the size where threads pay: keep each BLAS
# call on its calling thread (sknorm's own threads run the chunks).
_BLAS = {}
_BLAS_LOCK = threading.Lock()


@contextmanager
def _blas_one_thread(active):
    if not active:
        yield
        return
    with _BLAS_LOCK:
        if "controller" not in _BLAS:
            from threadpoolctl import ThreadpoolController

            _BLAS.update(controller=ThreadpoolController(), depth=0, limiter=None)
        if _BLAS["depth"] == 0:
            _BLAS["limiter"] = _BLAS["controller"].limit(limits=1, user_api="blas")
        _BLAS["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["depth"] -= 1
            if _BLAS["depth"] == 0:
                _BLAS["limiter"].restore_original_limits()
                _BLAS["limiter"] = None


def inverse_transform(Y, spec, center, scale, eps, *, gain=None, bias=None):
    """Undo :func:`transform` from its output with kept statistics.

    ``Y`` must hold all input columns (``remainder="passthrough"``) followed by
    the kept statistics. Returns a new array with ``spec.n_features`` columns.
    """
    p = spec.n_features
    stats = [s for s in (center, scale) if s is not None]
    n_stats = len(stats)
    if sp.issparse(Y):
        Y = Y.tocsr()
        X = Y[:, :p].copy()
        K = Y[:, p:].toarray()
    else:
        X = np.array(Y[:, :p], dtype=Y.dtype, copy=True)
        K = Y[:, p:]
    for g, idx in enumerate(spec.indices):
        c = K[:, g * n_stats + stats.index(center)] if center is not None else None
        s = K[:, g * n_stats + stats.index(scale)] if scale is not None else None
        d = None if s is None else denominator(np.asarray(s, dtype=np.float64), eps)
        if sp.issparse(X):
            _scale_sparse_columns(X, idx, d)
            continue
        block = X[:, idx].astype(np.float64)
        if gain is not None:
            block -= bias[idx]
            block /= gain[idx]
        if d is not None:
            block *= d[:, None]
        if c is not None:
            block += np.asarray(c, dtype=np.float64)[:, None]
        X[:, idx] = block
    return X


def _group_indicator(spec):
    """Sparse (n_features, n_groups) 0/1 matrix and the group of each column."""
    col_group = np.full(spec.n_features, -1)
    for g, idx in enumerate(spec.indices):
        col_group[idx] = g
    cols = np.flatnonzero(col_group >= 0)
    ind = sp.csr_matrix(
        (np.ones(cols.size), (cols, col_group[cols])),
        shape=(spec.n_features, len(spec.indices)),
    )
    return ind, col_group


def _scale_sparse_columns(X, idx, d):
    """Multiply entries of CSR ``X`` in columns ``idx`` by ``d[row]``."""
    if d is None:
        return
    mask = np.zeros(X.shape[1], dtype=bool)
    mask[idx] = True
    row = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    sel = mask[X.indices]
    X.data[sel] *= d[row[sel]]


def _transform_sparse(X, spec, scale, eps, *, keep_stats):
    """Uncentered normalization of a sparse matrix; stays sparse."""
    fmt = X.format
    X = X.tocsr(copy=True)
    X.sum_duplicates()
    n = X.shape[0]
    data = X.data
    if np.isinf(data).any():
        raise ValueError(_INF_MESSAGE)
    ind, col_group = _group_indicator(spec)
    n_groups = len(spec.indices)
    C = np.zeros((n, n_groups))
    S = None
    if scale is not None:
        nan = np.isnan(data)
        clean = np.where(nan, 0.0, data)
        row = np.repeat(np.arange(n), np.diff(X.indptr))
        grp = col_group[X.indices]
        sel = grp >= 0
        # Per-row, per-group max |x| first, so that the sum of squares of the
        # rescaled values can neither overflow nor underflow.
        flat = row[sel] * n_groups + grp[sel]
        m = np.zeros(n * n_groups)
        np.maximum.at(m, flat, np.abs(clean[sel]))
        m = np.where(m > 0, m, 1.0)
        ss = np.bincount(flat, (clean[sel] / m[flat]) ** 2, minlength=n * n_groups)
        nan_count = np.bincount(flat, nan[sel], minlength=n * n_groups)
        sizes = np.array([idx.size for idx in spec.indices], dtype=float)
        count = (np.tile(sizes, n) - nan_count).reshape(n, n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            S = m.reshape(n, n_groups) * np.sqrt(ss.reshape(n, n_groups) / count)
        d = denominator(S, eps)
        data[sel] = data[sel] / d.reshape(-1)[flat]
    if keep_stats and S is not None:
        X = sp.hstack([X, type(X)(S)], format="csr")
    return X.asformat(fmt), C, S


class AffineMoments:
    """Exact, mergeable sufficient statistics of per-feature regressions.

    For each feature ``j`` it keeps, over the samples where both are finite,
    the total sample weight ``W``, the weighted means of ``z_j`` and ``x_j``,
    the centered sum of squares of ``z_j`` and the centered cross-product of
    ``z_j`` and ``x_j``. Batches are combined with the pairwise update of Chan,
    Golub & LeVeque (1979), so that any split of the data into batches gives
    the same result as one pass, up to rounding.

    Values too large to square (``|z|`` or ``|x|`` above about ``1e154``: no
    scale, or a robust scale that is ~0 in a row, on data near ``1e300``) are
    kept scaled by per-feature powers of two, ``2**exp_z`` and ``2**exp_x``:
    the stored fields are ``mean_z = E[z] / 2**exp_z``, ``mean_x = E[x] /
    2**exp_x``, ``m2_z = M2_z / 4**exp_z`` and ``c_zx = C_zx / 2**(exp_z +
    exp_x)``. Power-of-two scaling is exact, so the moments stay the same
    sufficient statistics; the exponents are 0 (no scaling) unless a batch's
    or a merge's sums overflow, and only the overflowing features get one.
    """

    def __init__(self, n_features):
        self.weight = np.zeros(n_features)
        self.mean_z = np.zeros(n_features)
        self.mean_x = np.zeros(n_features)
        self.m2_z = np.zeros(n_features)
        self.c_zx = np.zeros(n_features)
        self.exp_z = np.zeros(n_features, dtype=np.int64)
        self.exp_x = np.zeros(n_features, dtype=np.int64)

    def __setstate__(self, state):
        # Moments pickled before the scaled storage have no exponents: all 0.
        self.__dict__.update(state)
        for name in ("exp_z", "exp_x"):
            if name not in state:
                setattr(self, name, np.zeros(np.shape(self.weight), dtype=np.int64))

    @classmethod
    def _from_arrays(cls, weight, mean_z, mean_x, m2_z, c_zx):
        """Unscaled moments (exponents 0) from their five per-feature arrays."""
        new = cls(np.shape(weight)[0])
        new.weight, new.mean_z, new.mean_x = weight, mean_z, mean_x
        new.m2_z, new.c_zx = m2_z, c_zx
        return new

    def _bad(self):
        """Features whose moments overflowed (mask)."""
        bad = ~np.isfinite(self.mean_z) | ~np.isfinite(self.mean_x)
        return bad | ~np.isfinite(self.m2_z) | ~np.isfinite(self.c_zx)

    @classmethod
    def from_batch(cls, x, z, w):
        """Moments of one batch: ``x``, ``z`` of shape (n, p), ``w`` of shape (n,)."""
        x = np.asarray(x, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        new = cls._from_batch_finite(x, z, w)
        if new is None:
            new = cls._from_batch_nan(x, z, w)
        bad = new._bad()
        if bad.any():
            new._set_columns(bad, cls._from_batch_scaled(x[:, bad], z[:, bad], w))
        return new

    @classmethod
    def _from_batch_nan(cls, x, z, w):
        """The moments of a batch that may hold NaN (unscaled, may overflow)."""
        valid = ~(np.isnan(x) | np.isnan(z))
        wv = np.where(valid, w[:, None], 0.0)
        x0 = np.where(valid, x, 0.0)
        z0 = np.where(valid, z, 0.0)
        new = cls(x.shape[1])
        new.weight = wv.sum(axis=0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            safe = np.where(new.weight > 0, new.weight, 1.0)
            new.mean_z = (wv * z0).sum(axis=0) / safe
            new.mean_x = (wv * x0).sum(axis=0) / safe
            dz = np.where(valid, z0 - new.mean_z, 0.0)
            dx = np.where(valid, x0 - new.mean_x, 0.0)
            new.m2_z = (wv * dz * dz).sum(axis=0)
            new.c_zx = (wv * dz * dx).sum(axis=0)
        return new

    @classmethod
    def _from_batch_scaled(cls, x, z, w):
        """:meth:`_from_batch_nan` on ``x``, ``z`` scaled below 1 in magnitude.

        Each feature is divided by the power of two just above its largest
        finite ``|z|`` (``|x|``), or kept as is when that is below 1, so that
        no sum of squares or cross-products can overflow.
        """
        valid = ~(np.isnan(x) | np.isnan(z))
        exps = []
        for v in (z, x):
            top = np.max(np.where(valid, np.abs(v), 0.0), axis=0, initial=0.0)
            exps.append(np.maximum(np.frexp(top)[1], 0).astype(np.int64))
        exp_z, exp_x = exps
        new = cls._from_batch_nan(np.ldexp(x, -exp_x), np.ldexp(z, -exp_z), w)
        new.exp_z, new.exp_x = exp_z, exp_x
        return new

    def _set_columns(self, mask, other):
        """Replace the moments of the features in ``mask`` by ``other``'s."""
        for name in ("weight", "mean_z", "mean_x", "m2_z", "c_zx", "exp_z", "exp_x"):
            field = getattr(self, name).copy()
            field[mask] = getattr(other, name)
            setattr(self, name, field)

    @classmethod
    def _from_scratch(cls, x, z, w):
        """:meth:`from_batch` that may overwrite ``z`` (scratch, float64).

        None when the sums overflowed after ``z`` was overwritten: the caller
        then computes ``z`` again for :meth:`from_batch` (which rescales).
        """
        if x.dtype == np.float64:
            fast = cls._from_batch_finite(x, z, w, overwrite_z=True)
            if fast is not None:
                return None if fast._bad().any() else fast
        return cls.from_batch(x, z, w)

    @classmethod
    def _from_batch_finite(cls, x, z, w, overwrite_z=False):
        """:meth:`from_batch` for a batch without NaN, or None if it has one.

        Same formulas, as BLAS products with ``w`` and in-place operations on
        two batch-sized temporaries. A NaN in ``x`` is a NaN in ``z``, and any
        NaN in ``z`` makes ``w @ z`` NaN, so that one product detects them (as
        it does an overflowing sum, which :meth:`from_batch` then rescales).
        The moments are unscaled and may overflow (the caller checks).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            sum_z = w @ z
        if not np.isfinite(sum_z).all():
            return None
        new = cls(x.shape[1])
        total = w.sum()
        new.weight = np.full(x.shape[1], total)
        with np.errstate(over="ignore", invalid="ignore"):
            if total > 0:
                new.mean_z = sum_z / total
                new.mean_x = (w @ x) / total
            dz = np.subtract(z, new.mean_z, out=z if overwrite_z else None)
            dx = x - new.mean_x
            dx *= dz
            dz *= dz
            new.m2_z = w @ dz
            new.c_zx = w @ dx
        return new

    def _scaled_to(self, exp_z, exp_x):
        """``(mean_z, mean_x, m2_z, c_zx)`` scaled to exponents ``>=`` own."""
        sz = self.exp_z - exp_z
        sx = self.exp_x - exp_x
        return (
            np.ldexp(self.mean_z, sz),
            np.ldexp(self.mean_x, sx),
            np.ldexp(self.m2_z, 2 * sz),
            np.ldexp(self.c_zx, sz + sx),
        )

    def merge(self, other):
        """Combine with another set of moments in place; returns self.

        Both are first brought to the larger of their exponents (exact, by
        powers of two); where the merged sums overflow, the exponents of those
        features grow until they do not.
        """
        wa, wb = self.weight, other.weight
        w = wa + wb
        safe = np.where(w > 0, w, 1.0)
        frac = wb / safe
        exp_z = np.maximum(self.exp_z, other.exp_z)
        exp_x = np.maximum(self.exp_x, other.exp_x)
        fixable = np.isfinite(w) & ~(self._bad() | other._bad())
        for attempt in range(8):
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                mza, mxa, m2a, ca = self._scaled_to(exp_z, exp_x)
                mzb, mxb, m2b, cb = other._scaled_to(exp_z, exp_x)
                dz = mzb - mza
                dx = mxb - mxa
                m2_z = m2a + m2b + dz * dz * wa * frac
                c_zx = ca + cb + dz * dx * wa * frac
                mean_z = mza + dz * frac
                mean_x = mxa + dx * frac
            bad_z = ~(np.isfinite(dz) & np.isfinite(m2_z) & np.isfinite(mean_z))
            bad_x = ~(np.isfinite(dx) & np.isfinite(mean_x))
            bad_c = ~np.isfinite(c_zx)
            bad_z = (bad_z | bad_c) & fixable
            bad_x = (bad_x | bad_c) & fixable
            if not (bad_z.any() or bad_x.any()) or attempt == 7:
                break
            # Scale the means below 1 (at least by 2): then no term overflows.
            top_z = np.maximum(np.abs(mza), np.abs(mzb))
            top_x = np.maximum(np.abs(mxa), np.abs(mxb))
            exp_z = exp_z + np.where(bad_z, np.maximum(np.frexp(top_z)[1], 1), 0)
            exp_x = exp_x + np.where(bad_x, np.maximum(np.frexp(top_x)[1], 1), 0)
        self.m2_z, self.c_zx = m2_z, c_zx
        self.mean_z, self.mean_x = mean_z, mean_x
        self.exp_z, self.exp_x = exp_z, exp_x
        self.weight = w
        return self

    def gain_bias(self, var_tol=1e-12):
        """Least-squares slope and intercept of ``x_j`` on ``z_j``.

        Where the weighted variance of ``z_j`` is ``<= var_tol`` (a constant or
        all-NaN feature, one sample, zero weights) the slope is undefined: the
        fallback is gain 1 and the least-squares intercept for that slope,
        ``mean(x_j) - mean(z_j)`` (bias 0 when there is no finite sample).
        The slope is formed from the scaled moments, so it overflows only when
        the true slope does.
        """
        w = self.weight
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            var_z = np.where(w > 0, self.m2_z / np.where(w > 0, w, 1.0), 0.0)
            ok = np.ldexp(var_z, 2 * self.exp_z) > var_tol
            slope = np.where(ok, self.c_zx / np.where(ok, self.m2_z, 1.0), 1.0)
            gain = np.where(ok, np.ldexp(slope, self.exp_x - self.exp_z), 1.0)
            fitted = np.ldexp(self.mean_x - slope * self.mean_z, self.exp_x)
            fallback = np.ldexp(self.mean_x, self.exp_x) - np.ldexp(
                self.mean_z, self.exp_z
            )
            bias = np.where(ok, fitted, fallback)
        bias = np.where(w > 0, bias, 0.0)
        return gain, bias
