"""The engine: picks the backend of each call and runs the dense numpy path.

:func:`backend` is called once per call with the input and returns the
backend that handles it: :data:`NUMPY` (NumPy arrays, array-likes and sparse
matrices) or :class:`sknorm._array_api.ArrayAPIBackend` (PyTorch, CuPy, ...
arrays with ``array_api_dispatch``). Both have the same methods
(``validate``, ``check_input``, ``sample_weight``, ``transform``,
``inverse_transform``, ``affine_moments``, ``reference``), so the estimators
never ask which one they hold.

The numpy backend normalizes dense input in row chunks of about
:data:`sknorm._threads.CHUNK_BYTES`, straight into the output, on several
threads: by the numba kernels of :mod:`sknorm._numba` when they apply and are
enabled (:func:`sknorm.set_config`), else by
:func:`sknorm._row_stats.normalize_block`. Rows either fast path cannot take
go to :func:`sknorm._semantics.normalize_rows`, the reference rule shared
with every backend. Sparse input goes to :mod:`sknorm._sparse`.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, validate_data

from . import _array_api, _config, _sparse
from ._affine import AffineMoments
from ._layout import GroupSpec, Layout
from ._row_stats import normalize_block
from ._semantics import (
    INF_MESSAGE,
    apply_affine,
    check_overflow,
    inverse,
    normalize_rows,
)
from ._threads import chunk_rows, run_chunks
from ._validation import FLOAT_DTYPES, check_sample_weight

__all__ = ["AffineMoments", "GroupSpec", "backend", "NUMPY"]

# Pickles and skops' lists of trusted types name these two containers of
# fitted state sknorm._engine.AffineMoments and sknorm._engine.GroupSpec
# (since the first release); they keep loading under those names.
AffineMoments.__module__ = GroupSpec.__module__ = __name__


def backend(X):
    """The backend for input ``X``: Array API for non-NumPy arrays with
    ``array_api_dispatch`` on, else :data:`NUMPY`."""
    ns = _array_api.get_namespace(X)
    if ns is not None:
        return _array_api.ArrayAPIBackend(ns)
    return NUMPY


class NumpyBackend:
    """NumPy arrays, array-likes and sparse matrices (numpy/numba engines)."""

    name = "numpy"

    def validate(self, estimator, X, *, reset, accept_sparse, fitting, copy=True):
        """``validate_data`` for fit (NaN allowed) or transform (checked later)."""
        return validate_data(
            estimator,
            X,
            reset=reset,
            accept_sparse=accept_sparse,
            dtype=FLOAT_DTYPES,
            copy=False,
            ensure_all_finite="allow-nan" if fitting else False,
            force_writeable=not (fitting or copy),
        )

    def check_input(self, X, *, accept_sparse, allow_nan=False, copy=True):
        """``check_array`` for the function twins and the inverse."""
        return check_array(
            X,
            accept_sparse=accept_sparse,
            dtype=FLOAT_DTYPES,
            copy=False,
            ensure_all_finite="allow-nan" if allow_nan else False,
            force_writeable=not copy,
        )

    def sample_weight(self, sample_weight, n_samples):
        return check_sample_weight(sample_weight, n_samples)

    def reference(self):
        """No record of the namespace: NumPy is the default."""
        return None

    def to_numpy(self, a):
        return a

    def transform(
        self,
        X,
        spec,
        center,
        scale,
        eps,
        *,
        gain=None,
        bias=None,
        keep_stats=False,
        copy=True,
        stats=True,
    ):
        """Normalize ``X`` (validated float array or sparse matrix) by ``spec``.

        Returns ``(Y, C, S)``: ``Y`` has the layout's columns; ``C`` and ``S``
        are the (n_samples, n_groups) float64 statistics (``S`` None without
        a scale; both may be None with ``stats=False``, when the caller does
        not need them). With ``copy=False``, no kept statistics and nothing
        dropped, dense ``X`` is normalized in place and returned.
        """
        layout = Layout.of(spec, center, scale, keep_stats)
        if sp.issparse(X):
            return _sparse.transform(X, layout, scale, eps)
        return _transform_dense(X, layout, center, scale, eps, gain, bias, copy, stats)

    def inverse_transform(self, Y, spec, center, scale, eps, *, gain=None, bias=None):
        """Undo :meth:`transform` from its output with kept statistics.

        Sparse ``Y`` stays sparse where the inverse keeps zeros (no center, no
        affine map); otherwise it is made dense and inverted as dense output.
        """
        layout = Layout.of(spec, center, scale, True)
        if sp.issparse(Y):
            if center is None and gain is None:
                return _sparse.inverse(Y, layout, scale, eps)
            Y = Y.toarray()
        dtype = Y.dtype
        if gain is not None:
            gain = np.asarray(gain, dtype=np.float64)
            bias = np.asarray(bias, dtype=np.float64)
        with np.errstate(over="ignore"):
            X = inverse(Y.astype(np.float64), layout, center, scale, eps, gain, bias)
        return X.astype(dtype, copy=False)

    def affine_moments(self, X, w, spec, center, scale, eps):
        """The :class:`AffineMoments` of the grouped columns of dense ``X``."""
        return _affine_moments_dense(X, w, spec, center, scale, eps)


NUMPY = NumpyBackend()


# -- dense numpy/numba path ----------------------------------------------------
def _affine_arrays(gain, bias, layout):
    """Per-group float64 ``(gain, bias)`` (None without affine)."""
    if gain is None:
        return [None] * layout.n_groups
    gain = np.asarray(gain, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    return [(gain[cols], bias[cols]) for cols in layout.in_cols]


def _normalize_group(x, z, layout, g, center, scale, eps, affine):
    """Normalize group ``g`` of the rows ``x`` into the output rows ``z``.

    ``z`` may be ``x`` (in place). Returns the group's centers and scales.
    """
    in_cols, out_cols = layout.in_cols[g], layout.out_cols[g]
    contiguous = isinstance(in_cols, slice)
    xb = x[:, in_cols]
    zb = z[:, out_cols] if contiguous else np.empty(xb.shape, dtype=z.dtype)
    c, s = normalize_block(xb, zb, center, scale, eps)
    if affine is not None:
        res = apply_affine(zb, affine[0], affine[1], z.dtype)
        if res is not zb:
            zb[...] = res
    if not contiguous:
        z[:, out_cols] = zb
    c_col, s_col = layout.stat_cols[g]
    if c_col is not None:
        z[:, c_col] = c
    if s_col is not None:
        z[:, s_col] = s
    return c, s


def _normalize_rows(X, Z, C, S, rows, layout, center, scale, eps, affines):
    """Normalize ``X[rows]`` into ``Z[rows]`` (``Z`` may be ``X``).

    With an affine map and output below float64, the rows are normalized and
    mapped in float64 and then rounded, so that the output is the float64
    result rounded to the output dtype (see :func:`~sknorm._semantics.apply_affine`).
    """
    x = X[rows]
    z = Z[rows]
    wide = affines[0] is not None and Z.dtype != np.float64
    if wide:
        x = x.astype(np.float64)
        z = np.empty(z.shape)
    if layout.other.size and np.isinf(x[:, layout.other]).any():
        raise ValueError(INF_MESSAGE)
    for g in range(layout.n_groups):
        c, s = _normalize_group(x, z, layout, g, center, scale, eps, affines[g])
        if C is not None:
            C[rows, g] = c
        if S is not None:
            S[rows, g] = s
    if layout.rest_in.size and (Z is not X or wide):
        z[:, layout.rest_out] = x[:, layout.rest_in]
    if wide:
        with np.errstate(over="ignore"):  # raised below, with a clear message
            Z[rows] = z
        check_overflow(Z[rows], Z.dtype)


def _transform_dense(X, layout, center, scale, eps, gain, bias, copy, stats=True):
    n = X.shape[0]
    if layout.keep_all and not layout.n_stats:
        Z = X if not copy else np.empty(X.shape, dtype=X.dtype)
    else:
        Z = np.empty((n, layout.n_out), dtype=X.dtype)
    kernels = _numba_kernels(X, Z, layout, center, scale, gain)
    if kernels is not None:
        C, S = _transform_numba(
            kernels, X, Z, layout, center, scale, eps, gain, bias, None, stats
        )
        return Z, C, (None if scale is None else S)
    # Per-row statistics only for callers that want them: for narrow groups
    # they would add a quarter to the output's memory.
    C = np.empty((n, layout.n_groups)) if stats else None
    S = None if scale is None or not stats else np.empty((n, layout.n_groups))
    affines = _affine_arrays(gain, bias, layout)
    step = chunk_rows(X.shape[1], X.itemsize)

    def work(lo, hi):
        _normalize_rows(X, Z, C, S, slice(lo, hi), layout, center, scale, eps, affines)

    if n <= step:  # one chunk (a small call): no dispatch
        work(0, n)
    else:
        run_chunks(work, n, step, _config.effective_n_threads())
    return Z, C, S


def _affine_moments_dense(X, w, spec, center, scale, eps):
    """One pass over ``X``: each row chunk is normalized into float64 scratch
    and reduced to its regression moments right away, on several threads;
    the chunks' moments are merged in row order, so the result does not
    depend on the number of threads."""
    n, p = X.shape
    layout = Layout(spec.keeping_all(), center, scale, False)
    cols = np.flatnonzero(layout.in_group)
    all_cols = cols.size == p
    w = np.asarray(w, dtype=np.float64)
    kernels = None
    if X.dtype == np.float64:
        kernels = _numba_kernels(X, np.empty((0, p)), layout, center, scale)
    affines = [None] * layout.n_groups
    step = chunk_rows(p)
    starts = list(range(0, n, step))
    results = [None] * len(starts)

    def normalized(x):
        z = np.empty(x.shape)
        if kernels is not None:
            _transform_numba(
                kernels, x, z, layout, center, scale, eps, None, None, 1, False
            )
        else:  # (no per-row statistics: the moments need only z)
            _normalize_rows(
                x, z, None, None, slice(0, len(x)), layout, center, scale, eps, affines
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

    run_chunks(work, n, step, _config.effective_n_threads())
    total = AffineMoments(cols.size)
    for batch in results:
        total.merge(batch)
    return total


# -- numba ---------------------------------------------------------------------
_SUPPORTED_BY_NUMBA = {("mean", "std"), (None, "std"), ("mean", None)}

#: With engine="auto", inputs with fewer values use numpy, unless the numba
#: kernel they need already ran in this process (no load or compile to wait for).
NUMBA_MIN_SIZE = 2**15


def _numba_kernels(X, Z, layout, center, scale, gain=None):
    """The numba module if the config asks for it and it applies, else None.

    Float32 output with an affine map is normalized and mapped in float64 in
    the kernel, then rounded (as :func:`_normalize_rows` does).
    """
    engine = _config._current("engine")
    if engine == "numpy":
        return None
    small = engine == "auto" and X.size < NUMBA_MIN_SIZE
    if engine == "numba":
        try:
            from . import _numba as kernels
        except ImportError as exc:
            raise ImportError(
                "sknorm's engine='numba' needs numba: pip install 'sknorm[fast]', "
                "or use sknorm.set_config(engine='auto')."
            ) from exc
        if not _NUMBA:
            _NUMBA.append(kernels)
    elif small and not _NUMBA:
        return None  # a small call does not import numba
    else:
        kernels = _import_numba()
        if kernels is None:
            return None
    base = kernels  # sknorm._numba: it keeps the record of the kernels that ran
    # The median, MAD and IQR: selection kernels (sknorm._numba_robust).
    robust = center == "median" or scale in ("mad", "iqr")
    applies = (
        ((center, scale) in _SUPPORTED_BY_NUMBA or robust)
        and all(isinstance(c, slice) for c in layout.in_cols)
        and X.flags.c_contiguous
        and Z.flags.c_contiguous
        and X.dtype in (np.float64, np.float32)
    )
    if not applies:
        return None
    if robust:
        from . import _numba_robust as kernels

        # Only on the widths where selection beats numpy's sort.
        if not kernels.applies(layout, center, scale):
            return None
    if small:
        key = base.kernel_key(kernels.__name__, X, gain is not None, center, scale)
        if not base.ready(key):
            return None
    return kernels


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


def _transform_numba(
    kernels, X, Z, layout, center, scale, eps, gain, bias, n_threads, stats=True
):
    if gain is None:
        g = b = np.empty(0)
    else:
        g = np.asarray(gain, dtype=np.float64)
        b = np.asarray(bias, dtype=np.float64)
    C, S, bad = kernels.normalize(
        X, Z, layout.numba_arrays(), center, scale, eps, g, b, n_threads, stats=stats
    )
    if bad.any():
        if bad[:, -1].any():
            raise ValueError(INF_MESSAGE)
        affines = _affine_arrays(gain, bias, layout)
        for grp in range(layout.n_groups):
            rows = np.flatnonzero(bad[:, grp])
            if rows.size:
                # NaN, inf, overflow or underflow: the kernel left these rows
                # unwritten for the shared reference rule.
                c, s = _redo_rows(X, Z, rows, layout, grp, center, scale, eps, affines)
                if C is not None:
                    C[rows, grp] = c
                if S is not None and s is not None:
                    S[rows, grp] = s
    if gain is not None and Z.dtype != np.float64 and _may_overflow(Z, g, b, scale):
        check_overflow(Z, Z.dtype)
    return C, S


def _may_overflow(Z, gain, bias, scale):
    """Whether ``gain * z + bias`` may exceed ``Z``'s dtype: with a scale,
    ``|z| <= sqrt(n)`` bounds it without a pass over the output."""
    if scale is None:
        return True
    bound = np.abs(gain).max() * np.sqrt(Z.shape[1]) + np.abs(bias).max()
    return not bound < np.finfo(Z.dtype).max / 2


def _redo_rows(X, Z, rows, layout, g, center, scale, eps, affines):
    """Normalize group ``g`` of ``X[rows]`` by the reference rule into ``Z``."""
    x = X[rows][:, layout.in_cols[g]].astype(np.float64)
    if np.isinf(x).any():
        raise ValueError(INF_MESSAGE)
    c, s, z = normalize_rows(x, center, scale, eps)
    if affines[g] is not None:
        z = apply_affine(z, affines[g][0], affines[g][1], Z.dtype)
    Z[rows[:, None], _as_index(layout.out_cols[g])] = z
    c_col, s_col = layout.stat_cols[g]
    if c_col is not None:
        Z[rows, c_col] = c
    if s_col is not None:
        Z[rows, s_col] = s
    return c, s


def _as_index(cols):
    if isinstance(cols, slice):
        return np.arange(cols.start, cols.stop)
    return cols
