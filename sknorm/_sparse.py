"""The sparse backend: uncentered normalization of CSR/CSC matrices.

Only ``center=None`` keeps a sparse matrix sparse (the implicit zeros stay
zero), and only ``scale`` in {"std", None} and no affine map (a bias would
fill it): the estimators reject the other options on sparse input. The row
statistics are the root mean square of each row's group, NaN ignored and the
implicit zeros counted as values, by the rule of
:func:`sknorm._semantics.normalize_rows`: each row group is scaled by the
power of two of :func:`~sknorm._semantics.row_exponent` (no overflow or
underflow at any magnitude) and normalized at that size. The output has the
layout's columns (:class:`~sknorm._layout.Layout`) and the input's dtype.
"""

import numpy as np
import scipy.sparse as sp

from ._semantics import INF_MESSAGE, denominator, row_exponent, scaled_denominator


def _entries(X, layout):
    """Row, group and flat (row, group) index of each stored entry of CSR X."""
    n = X.shape[0]
    row = np.repeat(np.arange(n), np.diff(X.indptr))
    grp = layout.col_group[X.indices]
    sel = grp >= 0
    return row, grp, sel


def _rescaled(X, layout, eps):
    """Each stored entry rescaled by its row group's power of two, and the
    per-row, per-group RMS at that size (float64, NaN ignored).

    Returns ``(v, flat, e, s_s)``: the rescaled grouped entries, their flat
    (row, group) index, the exponents and scales of :func:`row_exponent`.
    """
    n, n_groups = X.shape[0], layout.n_groups
    data = X.data.astype(np.float64)
    nan = np.isnan(data)
    clean = np.where(nan, 0.0, data)
    row, grp, sel = _entries(X, layout)
    flat = row[sel] * n_groups + grp[sel]
    m = np.zeros(n * n_groups)
    np.maximum.at(m, flat, np.abs(clean[sel]))
    sizes = np.array([idx.size for idx in layout.spec.indices])
    e = row_exponent(m, int(sizes.max()), "std", eps)
    v = np.ldexp(clean[sel], -e[flat].astype(np.int64))
    ss = np.bincount(flat, v * v, minlength=n * n_groups)
    nan_count = np.bincount(flat, nan[sel], minlength=n * n_groups)
    count = np.tile(sizes.astype(float), n) - nan_count
    with np.errstate(invalid="ignore", divide="ignore"):
        s_s = np.sqrt(ss / count)
    return np.ldexp(data[sel], -e[flat].astype(np.int64)), flat, e, s_s


def transform(X, layout, scale, eps):
    """Normalize sparse ``X`` (``center=None``); returns ``(Y, C, S)``.

    ``Y`` is sparse, in the format and dtype of ``X``, with the layout's
    columns; ``C`` is zeros (no center), ``S`` the scales or None.
    """
    fmt, dtype = X.format, X.dtype
    X = X.tocsr(copy=True)
    X.sum_duplicates()
    n = X.shape[0]
    if np.isinf(X.data).any():
        raise ValueError(INF_MESSAGE)
    C = np.zeros((n, layout.n_groups))
    S = None
    if scale is not None:
        # The rule of sknorm._semantics.normalize_rows: statistics and output
        # formed at the rescaled size, tiny entries of scaled-down rows
        # formed again at their own size.
        v, flat, e, s_s = _rescaled(X, layout, eps)
        S_flat = np.ldexp(s_s, e.astype(np.int64))
        with np.errstate(invalid="ignore"):
            z = v / scaled_denominator(s_s, e, eps)[flat]
            lost = (e[flat] > 0) & (np.abs(v) < np.finfo(np.float64).tiny)
            if lost.any():
                d = denominator(S_flat, eps)
                _, _, sel = _entries(X, layout)
                z[lost] = X.data[sel][lost] / d[flat[lost]]
        _, _, sel = _entries(X, layout)
        X.data[sel] = z
        S = S_flat.reshape(n, layout.n_groups)
    if not layout.keep_all:
        X = X[:, layout.keep]
    if layout.n_stats and S is not None:
        X = sp.hstack([X, sp.csr_matrix(S.astype(dtype))], format="csr")
    return X.asformat(fmt).astype(dtype, copy=False), C, S


def inverse(Y, layout, scale, eps):
    """Undo an uncentered transform without affine map; stays sparse.

    ``Y``: sparse, every input column followed by the kept scale per group;
    the result has its format and dtype.
    """
    p = layout.spec.n_features
    fmt, dtype = Y.format, Y.dtype
    Y = Y.tocsr()
    X = Y[:, :p].copy()
    X.sum_duplicates()
    if scale is not None:
        S = Y[:, p:].toarray().astype(np.float64)
        d = denominator(S, eps).reshape(-1)
        row, grp, sel = _entries(X, layout)
        flat = row[sel] * layout.n_groups + grp[sel]
        X.data[sel] = X.data[sel].astype(np.float64) * d[flat]
    return X.asformat(fmt).astype(dtype, copy=False)
