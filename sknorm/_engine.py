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

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._row_stats import _INF_MESSAGE, denominator, normalize_block

# Rows per chunk are chosen so that one chunk of one group is about this many
# bytes: large enough to amortize Python overhead, small enough to stay in cache.
CHUNK_BYTES = 2**21


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


def iter_normalized(X, spec, center, scale, eps, out=None):
    """Normalize dense ``X`` chunk by chunk.

    Yields ``(rows, Z, C, S)`` for consecutive row slices: ``Z`` is the chunk of
    the output (a view of ``out`` when given, else float64 scratch), and ``C``,
    ``S`` the per-row, per-group centers and scales (``S`` is None when
    ``scale is None``). Columns outside every group are copied unchanged.
    Statistics and arithmetic are float64 whatever the input dtype; ``out``, if
    given, must be float64 (it may be ``X`` itself: in-place normalization).
    """
    n, p = X.shape
    groups = spec.slices()
    rest = ~spec.in_group
    n_groups = len(groups)
    step = _chunk_rows(p)
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        x = X[rows]
        z = np.empty(x.shape) if out is None else out[rows]
        m = x.shape[0]
        C = np.empty((m, n_groups))
        S = None if scale is None else np.empty((m, n_groups))
        for g, cols in enumerate(groups):
            if isinstance(cols, slice):
                c, s = normalize_block(x[:, cols], z[:, cols], center, scale, eps)
            else:
                xb = x[:, cols]
                zb = np.empty(xb.shape)
                c, s = normalize_block(xb, zb, center, scale, eps)
                z[:, cols] = zb
            C[:, g] = c
            if S is not None:
                S[:, g] = s
        if rest.any() and not np.shares_memory(z, x):
            z[:, rest] = x[:, rest]
        yield rows, z, C, S


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
    """
    if sp.issparse(X):
        return _transform_sparse(X, spec, scale, eps, keep_stats=keep_stats)
    check_passthrough_finite(X, spec)
    n = X.shape[0]
    n_groups = len(spec.indices)
    keep_all = spec.keep.size == spec.n_features
    stats = []
    if keep_stats:
        stats = [s for s in (center, scale) if s is not None]
    n_out = spec.keep.size + len(stats) * n_groups
    if keep_all and not stats:
        Z = X if not copy else np.empty_like(X, order="C")
    else:
        Z = np.empty((n, n_out), dtype=X.dtype)
    C = np.empty((n, n_groups))
    S = None if scale is None else np.empty((n, n_groups))
    direct = keep_all and Z.dtype == np.float64
    target = Z[:, : spec.n_features] if direct else None
    affine = gain is not None
    if affine:
        mask = spec.in_group
        g_in, b_in = gain[mask], bias[mask]
    for rows, z, c, s in iter_normalized(X, spec, center, scale, eps, out=target):
        if affine:
            block = z[:, mask]
            block *= g_in
            block += b_in
            z[:, mask] = block
        if not direct:
            Z[rows, : spec.keep.size] = z[:, spec.keep]
        C[rows] = c
        if S is not None:
            S[rows] = s
    if stats:
        kept = []
        for g in range(n_groups):
            if center is not None:
                kept.append(C[:, g])
            if scale is not None:
                kept.append(S[:, g])
        Z[:, spec.keep.size :] = np.column_stack(kept)
    return Z, C, S


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
    """

    def __init__(self, n_features):
        self.weight = np.zeros(n_features)
        self.mean_z = np.zeros(n_features)
        self.mean_x = np.zeros(n_features)
        self.m2_z = np.zeros(n_features)
        self.c_zx = np.zeros(n_features)

    @classmethod
    def from_batch(cls, x, z, w):
        """Moments of one batch: ``x``, ``z`` of shape (n, p), ``w`` of shape (n,)."""
        x = np.asarray(x, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        valid = ~(np.isnan(x) | np.isnan(z))
        wv = np.where(valid, w[:, None], 0.0)
        x0 = np.where(valid, x, 0.0)
        z0 = np.where(valid, z, 0.0)
        new = cls(x.shape[1])
        new.weight = wv.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            safe = np.where(new.weight > 0, new.weight, 1.0)
            new.mean_z = (wv * z0).sum(axis=0) / safe
            new.mean_x = (wv * x0).sum(axis=0) / safe
        dz = np.where(valid, z0 - new.mean_z, 0.0)
        dx = np.where(valid, x0 - new.mean_x, 0.0)
        new.m2_z = (wv * dz * dz).sum(axis=0)
        new.c_zx = (wv * dz * dx).sum(axis=0)
        return new

    def merge(self, other):
        """Combine with another set of moments in place; returns self."""
        wa, wb = self.weight, other.weight
        w = wa + wb
        safe = np.where(w > 0, w, 1.0)
        dz = other.mean_z - self.mean_z
        dx = other.mean_x - self.mean_x
        frac = wb / safe
        self.m2_z = self.m2_z + other.m2_z + dz * dz * wa * frac
        self.c_zx = self.c_zx + other.c_zx + dz * dx * wa * frac
        self.mean_z = self.mean_z + dz * frac
        self.mean_x = self.mean_x + dx * frac
        self.weight = w
        return self

    def gain_bias(self, var_tol=1e-12):
        """Least-squares slope and intercept of ``x_j`` on ``z_j``.

        Where the weighted variance of ``z_j`` is ``<= var_tol`` (a constant or
        all-NaN feature, one sample, zero weights) the slope is undefined: the
        fallback is gain 1 and the least-squares intercept for that slope,
        ``mean(x_j) - mean(z_j)`` (bias 0 when there is no finite sample).
        """
        w = self.weight
        with np.errstate(invalid="ignore", divide="ignore"):
            var_z = np.where(w > 0, self.m2_z / np.where(w > 0, w, 1.0), 0.0)
            ok = var_z > var_tol
            gain = np.where(ok, self.c_zx / np.where(ok, self.m2_z, 1.0), 1.0)
        bias = np.where(w > 0, self.mean_x - gain * self.mean_z, 0.0)
        return gain, bias
