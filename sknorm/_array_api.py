"""The Array API path: the same normalization on PyTorch, CuPy, ... arrays.

With ``sklearn.set_config(array_api_dispatch=True)`` (which needs the
environment variable ``SCIPY_ARRAY_API=1``), input that is not a NumPy array
but implements the `Array API standard <https://data-apis.org/array-api/>`_
(a PyTorch tensor, a CuPy array, an ``array_api_strict`` array, ...) is
normalized in its own namespace and on its own device: no round trip through
NumPy, so a GPU tensor stays on the GPU. NumPy input, and any input while
dispatch is off, takes the NumPy engine (:mod:`sknorm._engine`), which stays
the reference and the fast path.

The arithmetic mirrors :mod:`sknorm._row_stats` and :mod:`sknorm._engine`,
written with Array API standard functions only:

* statistics in float64 (float32 on a device without float64, such as
  Apple MPS), output in the input's floating dtype;
* NaN ignored in the statistics and kept in the output; ``inf`` raises;
* mean centering by the shifted two-pass scheme (pivot: the row's first
  non-NaN value; the output is ``(x - pivot) - delta``, never ``x - mean``),
  with a rescaled pass for rows whose sums overflow or underflow;
* the median, MAD and IQR through ``sort`` (NaN sorted last), with NumPy's
  default linear interpolation for the quartiles;
* the denominator ``sqrt(s**2 + eps)`` computed as ``hypot(s, sqrt(eps))``.

The fitted affine statistics stay in NumPy (:class:`sknorm._engine.AffineMoments`
holds a few vectors of length ``n_features``, merged exactly across batches);
``gain_`` and ``bias_`` are stored in the namespace and on the device of the
data the estimator was fitted on. ``copy=False`` has no effect here: the output
is always a new array.

The helper package ``array_api_compat`` (``pip install sknorm[array-api]``)
wraps NumPy, PyTorch and CuPy in standard namespaces; scikit-learn vendors a
copy, used when the package is not installed. Both imports live in this file
only.
"""

import numpy as np
from sklearn import get_config
from sklearn.utils.validation import check_array, validate_data

from ._engine import AffineMoments
from ._row_stats import _INF_MESSAGE, _SS_SMALL, IQR_TO_STD, MAD_TO_STD
from ._validation import check_sample_weight

try:
    import array_api_compat
except ImportError:  # pragma: no cover - recent scikit-learn ships a copy
    try:
        from sklearn.externals import array_api_compat
    except ImportError:  # scikit-learn 1.6 has none: the NumPy path only
        array_api_compat = None


def supported():
    """Whether the Array API path can run here.

    It needs ``array_api_compat`` (the ``array-api`` extra, or scikit-learn's
    vendored copy) and SciPy >= 1.14, which scikit-learn's own array API
    dispatch requires. Elsewhere every input takes the NumPy path, and the
    estimators do not claim ``array_api_support``.
    """
    import scipy

    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    return array_api_compat is not None and (major, minor) >= (1, 14)


# Rows per chunk are chosen so that one float64 chunk is about this many bytes:
# larger than the NumPy engine's chunks, since a GPU wants large kernels.
CHUNK_BYTES = 2**26


class Namespace:
    """An Array API namespace ``xp``, a device, and the dtype to compute in."""

    def __init__(self, xp, device):
        self.xp = xp
        self.device = device
        self.work = _work_dtype(xp, device)

    def float_dtypes(self):
        """The floating dtypes kept as they are, the first one the default."""
        if self.work == self.xp.float64:
            return (self.xp.float64, self.xp.float32)
        return (self.xp.float32,)

    def asarray(self, a, dtype=None):
        """``a`` (NumPy or Python) as an array of this namespace and device."""
        return self.xp.asarray(a, dtype=dtype or self.work, device=self.device)


def _work_dtype(xp, device):
    try:
        floats = xp.__array_namespace_info__().dtypes(
            device=device, kind="real floating"
        )
    except (AttributeError, TypeError):  # pragma: no cover - pre-2023.12
        return xp.float64
    return floats.get("float64", floats.get("float32"))


def get_namespace(X):
    """Return the :class:`Namespace` of ``X`` if it takes the Array API path.

    That is when array API dispatch is enabled and ``X`` is an Array API
    array other than a NumPy array; otherwise (lists, DataFrames, sparse
    matrices, NumPy arrays, dispatch off) return None: the NumPy path.
    """
    if array_api_compat is None or not get_config().get("array_api_dispatch", False):
        return None
    if array_api_compat.is_numpy_array(X) or not array_api_compat.is_array_api_obj(X):
        return None
    return Namespace(array_api_compat.array_namespace(X), array_api_compat.device(X))


def _namespace_and_device(a):
    """Name of the namespace of ``a`` and its device; NumPy for non-arrays."""
    if a is None or array_api_compat is None or array_api_compat.is_numpy_array(a):
        return "numpy", "cpu"
    if not array_api_compat.is_array_api_obj(a):
        return "numpy", "cpu"
    xp = array_api_compat.array_namespace(a)
    return xp.__name__, array_api_compat.device(a)


def _fitted_array(estimator):
    ref = getattr(estimator, "_array_ref_", None)
    if ref is None:
        ref = getattr(estimator, "gain_", None)
    return ref


def check_fitted_namespace(estimator, X, method):
    """Raise if ``X`` is not in the namespace and on the device of the fit.

    Only with array API dispatch enabled and a fitted estimator, like
    scikit-learn's own estimators: the fitted state (``gain_``, ``bias_``)
    lives where the training data was.
    """
    if not get_config().get("array_api_dispatch", False):
        return
    if not hasattr(estimator, "n_samples_seen_"):
        return
    fitted = _namespace_and_device(_fitted_array(estimator))
    got = _namespace_and_device(X)
    if fitted == got:
        return
    name = type(estimator).__name__
    raise ValueError(
        f"Inputs passed to {name}.{method}() must use the same namespace and the "
        f"same device as those passed to fit(). The estimator was fitted on "
        f"{fitted[0]} arrays on device {fitted[1]!r}, and got {got[0]} on device "
        f"{got[1]!r}. Fit it again on data of this namespace and device, or move "
        "X to the fitted namespace and device."
    )


def to_numpy(a):
    """A NumPy copy (or view) of the array ``a`` of any namespace and device."""
    if a is None or isinstance(a, np.ndarray):
        return a
    if array_api_compat.is_torch_array(a):
        return a.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(a):  # pragma: no cover - needs a GPU
        return a.get()
    if array_api_compat.is_array_api_obj(a):
        try:
            return np.from_dlpack(a)
        except (TypeError, RuntimeError, BufferError, ValueError):
            pass
    return np.asarray(a)


def reference_array(ns):
    """An empty array recording the namespace and device of a fit."""
    return ns.xp.zeros((0,), dtype=ns.work, device=ns.device)


def to_fitted_namespace(estimator, a):
    """NumPy ``a`` moved to the namespace and device the estimator was fitted on."""
    ref = getattr(estimator, "_array_ref_", None)
    if ref is None:
        return a
    xp = array_api_compat.array_namespace(ref)
    return xp.asarray(a, dtype=ref.dtype, device=array_api_compat.device(ref))


# -- validation ----------------------------------------------------------------
def validate(estimator, X, ns, *, reset, sample_weight=None, fitting=True):
    """``validate_data`` for Array API input; returns ``X`` (and weights).

    Keeps ``X`` in its namespace and on its device, converted to the work
    dtype's family (float64 or float32 kept, anything else to the default).
    Sample weights of any namespace are checked in NumPy, then moved to the
    device of ``X``.
    """
    X = validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse=False,
        dtype=ns.float_dtypes(),
        ensure_all_finite="allow-nan" if fitting else False,
    )
    if not fitting:
        return X
    w = check_sample_weight(to_numpy(sample_weight), X.shape[0])
    return X, ns.asarray(w)


def check_input(X, ns, ensure_all_finite=False):
    """``check_array`` for Array API input (the function twins, the inverse)."""
    return check_array(
        X,
        accept_sparse=False,
        dtype=ns.float_dtypes(),
        ensure_all_finite=ensure_all_finite,
    )


# -- row statistics ------------------------------------------------------------
def _denominator(s, eps, ns):
    """``sqrt(s**2 + eps)`` without overflow; 0 (only with eps=0) becomes 1."""
    xp = ns.xp
    root = ns.asarray(np.sqrt(eps))
    if hasattr(xp, "hypot"):
        d = xp.hypot(s, root)
    else:  # pragma: no cover - every 2023.12 namespace has hypot
        m = xp.maximum(xp.abs(s), root)
        m = xp.where(m > 0, m, xp.ones_like(m))
        d = m * xp.sqrt((s / m) ** 2 + (root / m) ** 2)
    if eps == 0:
        d = xp.where(d == 0, xp.ones_like(d), d)
    return d


def _masked_sum(a, nan, ns):
    """Row sums of ``a`` ignoring the entries flagged in ``nan``."""
    xp = ns.xp
    return xp.sum(xp.where(nan, xp.zeros_like(a), a), axis=1)


def _row_absmax(a, nan, ns):
    """Row max of |a| ignoring NaN, with 0 and non-finite values replaced by 1."""
    xp = ns.xp
    m = xp.max(xp.where(nan, xp.zeros_like(a), xp.abs(a)), axis=1)
    return xp.where((m > 0) & xp.isfinite(m), m, xp.ones_like(m))


def _safe_divide(num, count, ns):
    """``num / count`` where count > 0, NaN where there is no valid value."""
    xp = ns.xp
    ok = count > 0
    out = num / xp.where(ok, count, xp.ones_like(count))
    return xp.where(ok, out, xp.full_like(out, float("nan")))


def _pick(v, idx, count, ns):
    """``v[i, idx[i]]`` for each row ``i`` (exact: one term plus zeros).

    Rows with ``count == 0`` (no valid value) get 0, not the +inf that stands
    for NaN in the sorted rows, so that later arithmetic makes no inf - inf.
    """
    xp = ns.xp
    cols = xp.arange(v.shape[1], device=ns.device)
    hit = (cols[None, :] == idx[:, None]) & (count > 0)[:, None]
    return xp.sum(xp.where(hit, v, xp.zeros_like(v)), axis=1)


def _sorted_valid(a, nan, ns):
    """Rows of ``a`` sorted with the NaN last, and the number of non-NaN."""
    xp = ns.xp
    if not hasattr(xp, "sort"):  # pragma: no cover - sort is in the standard
        raise ValueError(
            f"The array namespace {xp.__name__} has no sort, which the median, "
            "'mad' and 'iqr' need. Use center='mean' and scale='std' (or None), "
            "or pass a NumPy array."
        )
    v = xp.sort(xp.where(nan, xp.full_like(a, float("inf")), a), axis=1)
    count = xp.sum(xp.astype(~nan, xp.int64), axis=1)
    return v, count


def _row_quantile(a, nan, q, ns):
    """Row quantile ``q`` ignoring NaN, NumPy's default linear interpolation."""
    xp = ns.xp
    v, count = _sorted_valid(a, nan, ns)
    last = xp.maximum(count - 1, xp.zeros_like(count))
    h = xp.astype(last, ns.work) * q
    lo = xp.astype(xp.floor(h), xp.int64)
    hi = xp.minimum(lo + 1, last)
    t = h - xp.astype(lo, ns.work)
    a_lo, a_hi = _pick(v, lo, count, ns), _pick(v, hi, count, ns)
    diff = a_hi - a_lo
    out = xp.where(t >= 0.5, a_hi - diff * (1 - t), a_lo + diff * t)
    return xp.where(count > 0, out, xp.full_like(out, float("nan")))


def _row_median(a, nan, ns):
    """Row median ignoring NaN (mean of the two middle values, as NumPy)."""
    xp = ns.xp
    v, count = _sorted_valid(a, nan, ns)
    last = xp.maximum(count - 1, xp.zeros_like(count))
    lo, hi = last // 2, count // 2
    hi = xp.minimum(hi, last)
    a_lo, a_hi = _pick(v, lo, count, ns), _pick(v, hi, count, ns)
    out = xp.where(lo == hi, a_lo, (a_lo + a_hi) / 2)
    return xp.where(count > 0, out, xp.full_like(out, float("nan")))


def _group_stats(x, center, scale, eps, ns):
    """Per-row statistics of one group block ``x`` (work dtype, no inf).

    Returns ``(pivot, delta, s)``: the deviations are ``(x - pivot) - delta``
    and the center ``pivot + delta``; ``s`` is the scale (None without one).
    """
    xp = ns.xp
    n, k = x.shape
    nan = xp.isnan(x)
    count = xp.astype(xp.sum(xp.astype(~nan, xp.int64), axis=1), ns.work)
    zeros = xp.zeros((n,), dtype=ns.work, device=ns.device)
    if center == "mean":
        # Pivot: the first non-NaN value of the row (0 for an all-NaN row).
        first = xp.argmax(xp.astype(~nan, xp.int8), axis=1)
        pivot = _pick(xp.where(nan, xp.zeros_like(x), x), first, count, ns)
        r = x - pivot[:, None]
        delta = _safe_divide(_masked_sum(r, nan, ns), count, ns)
        if not bool(xp.all(xp.isfinite(delta) | (count == 0))):
            m = _row_absmax(r, nan, ns)
            scaled = _safe_divide(_masked_sum(r / m[:, None], nan, ns), count, ns)
            delta = xp.where(xp.isfinite(delta), delta, m * scaled)
        dev = r - delta[:, None]
    elif center == "median":
        pivot, delta = _row_median(x, nan, ns), zeros
        dev = x - pivot[:, None]
    else:
        pivot, delta = zeros, zeros
        dev = x
    if center is not None or scale is not None:
        # An all-NaN row has no center (NaN, as in the NumPy engine, which
        # reports it also for center=None when a scale is computed).
        none = count == 0
        pivot = xp.where(none, xp.full_like(pivot, float("nan")), pivot)

    s = None
    if scale == "std":
        ss = _masked_sum(dev * dev, nan, ns)
        s = xp.sqrt(_safe_divide(ss, count, ns))
        bad = ~xp.isfinite(ss)
        if eps == 0:
            # Without eps a tiny row's sum of squares may have underflowed
            # (even to 0): redo those rows rescaled, unless truly constant.
            moving = xp.any((dev != 0) & ~nan, axis=1)
            bad = bad | ((ss < float(_SS_SMALL)) & moving)
        bad = bad & (count > 0)
        if bool(xp.any(bad)):
            m = _row_absmax(dev, nan, ns)
            d = dev / m[:, None]
            robust = m * xp.sqrt(_safe_divide(_masked_sum(d * d, nan, ns), count, ns))
            s = xp.where(bad, robust, s)
    elif scale == "mad":
        s = MAD_TO_STD * _row_median(xp.abs(dev), nan, ns)
    elif scale == "iqr":
        s = (_row_quantile(dev, nan, 0.75, ns) - _row_quantile(dev, nan, 0.25, ns)) / (
            IQR_TO_STD
        )
    return pivot, delta, s


class _Layout:
    """A :class:`~sknorm._engine.GroupSpec` as index arrays of one namespace."""

    def __init__(self, spec, ns):
        xp = ns.xp
        self.spec = spec
        self.groups = []
        for cols in spec.slices():
            if isinstance(cols, slice):
                self.groups.append(cols)
            else:
                self.groups.append(ns.asarray(cols, dtype=xp.int64))
        col_group = np.zeros(spec.n_features, dtype=np.int64)
        for g, idx in enumerate(spec.indices):
            col_group[idx] = g
        in_group = spec.in_group
        self.col_group = ns.asarray(col_group, dtype=xp.int64)
        self.in_group = ns.asarray(in_group, dtype=xp.bool)
        self.all_in_group = bool(in_group.all())
        self.keep_all = spec.keep.size == spec.n_features
        self.keep = ns.asarray(spec.keep, dtype=xp.int64)

    def block(self, x, g, ns):
        cols = self.groups[g]
        if isinstance(cols, slice):
            return x[:, cols]
        return ns.xp.take(x, cols, axis=1)

    def expand(self, per_group, ns):
        """(n, n_groups) per-group values as (n, n_features), one per column."""
        return ns.xp.take(per_group, self.col_group, axis=1)


def _normalize_chunk(x, layout, center, scale, eps, ns):
    """Normalize one chunk (work dtype). Returns ``(z, C, S)``."""
    if bool(ns.xp.any(ns.xp.isinf(x))):
        raise ValueError(_INF_MESSAGE)
    # Rows whose fast sums overflow are redone rescaled; a NumPy-backed
    # namespace (array-api-strict) would warn about the first try.
    with np.errstate(over="ignore", invalid="ignore"):
        return _normalize_groups(x, layout, center, scale, eps, ns)


def _normalize_groups(x, layout, center, scale, eps, ns):
    xp = ns.xp
    pivots, deltas, scales = [], [], []
    for g in range(len(layout.groups)):
        p, d, s = _group_stats(layout.block(x, g, ns), center, scale, eps, ns)
        pivots.append(p)
        deltas.append(d)
        scales.append(s)
    P = xp.stack(pivots, axis=1)
    D = xp.stack(deltas, axis=1)
    z = (x - layout.expand(P, ns)) - layout.expand(D, ns)
    S = None
    if scale is not None:
        S = xp.stack(scales, axis=1)
        z = z / layout.expand(_denominator(S, eps, ns), ns)
    if not layout.all_in_group:
        z = xp.where(layout.in_group, z, x)
    return z, P + D, S


def _iter_chunks(n, p):
    step = max(1, CHUNK_BYTES // max(1, p * 8))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def transform(
    X, spec, center, scale, eps, ns, *, gain=None, bias=None, keep_stats=False
):
    """Normalize Array API ``X`` by ``spec``: the twin of ``_engine.transform``.

    Returns ``(Y, C, S)`` in the namespace and on the device of ``X``: ``Y``
    in the dtype of ``X``, ``C``/``S`` the (n_samples, n_groups) statistics
    in the work dtype (``S`` is None without a scale).
    """
    xp = ns.xp
    n, p = X.shape
    layout = _Layout(spec, ns)
    stats = [s for s in (center, scale) if s is not None] if keep_stats else []
    n_groups = len(spec.indices)
    n_out = spec.keep.size + len(stats) * n_groups
    chunks = list(_iter_chunks(n, p))
    Y = C = S = None
    if len(chunks) > 1:
        Y = xp.empty((n, n_out), dtype=X.dtype, device=ns.device)
        C = xp.empty((n, n_groups), dtype=ns.work, device=ns.device)
        if scale is not None:
            S = xp.empty((n, n_groups), dtype=ns.work, device=ns.device)
    for rows in chunks:
        x = xp.astype(X[rows, :], ns.work)
        z, c, s = _normalize_chunk(x, layout, center, scale, eps, ns)
        if gain is not None:
            z = z * gain + bias
        if not layout.keep_all:
            z = xp.take(z, layout.keep, axis=1)
        if stats:
            kept = []
            for g in range(n_groups):
                if center is not None:
                    kept.append(c[:, g])
                if scale is not None:
                    kept.append(s[:, g])
            z = xp.concat([z, xp.stack(kept, axis=1)], axis=1)
        z = xp.astype(z, X.dtype)
        if len(chunks) == 1:
            Y, C, S = z, c, s
        else:
            Y[rows, :] = z
            C[rows, :] = c
            if S is not None:
                S[rows, :] = s
    return Y, C, S


def inverse_transform(Y, spec, center, scale, eps, ns, *, gain=None, bias=None):
    """Undo :func:`transform` from its output with kept statistics."""
    xp = ns.xp
    p = spec.n_features
    stats = [s for s in (center, scale) if s is not None]
    n_stats = len(stats)
    layout = _Layout(spec, ns)
    n_groups = len(spec.indices)
    X = xp.astype(Y[:, :p], ns.work)

    def kept(stat):
        cols = [p + g * n_stats + stats.index(stat) for g in range(n_groups)]
        picked = xp.take(Y, ns.asarray(cols, dtype=xp.int64), axis=1)
        return layout.expand(xp.astype(picked, ns.work), ns)

    block = X
    if gain is not None:
        block = (block - bias) / gain
    if scale is not None:
        block = block * _denominator(kept(scale), eps, ns)
    if center is not None:
        block = block + kept(center)
    out = block if layout.all_in_group else xp.where(layout.in_group, block, X)
    return xp.astype(out, Y.dtype)


def affine_moments(X, w, spec, center, scale, eps, ns):
    """The affine regression's moments of batch ``X`` (NumPy, mergeable).

    The sums run on the device of ``X``; only a few vectors of length
    ``n_features`` come back to the host.
    """
    xp = ns.xp
    n, p = X.shape
    layout = _Layout(spec, ns)
    cols = ns.asarray(np.flatnonzero(spec.in_group), dtype=xp.int64)
    total = AffineMoments(int(spec.in_group.sum()))
    for rows in _iter_chunks(n, p):
        x = xp.astype(X[rows, :], ns.work)
        z, _, _ = _normalize_chunk(x, layout, center, scale, eps, ns)
        x, z = xp.take(x, cols, axis=1), xp.take(z, cols, axis=1)
        valid = ~(xp.isnan(x) | xp.isnan(z))
        zero = xp.zeros_like(x)
        wv = xp.where(valid, w[rows][:, None], zero)
        x0, z0 = xp.where(valid, x, zero), xp.where(valid, z, zero)
        weight = xp.sum(wv, axis=0)
        safe = xp.where(weight > 0, weight, xp.ones_like(weight))
        mean_z = xp.sum(wv * z0, axis=0) / safe
        mean_x = xp.sum(wv * x0, axis=0) / safe
        dz = xp.where(valid, z0 - mean_z, zero)
        dx = xp.where(valid, x0 - mean_x, zero)
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            m2_z, c_zx = xp.sum(wv * dz * dz, axis=0), xp.sum(wv * dz * dx, axis=0)
        batch = AffineMoments._from_arrays(
            *(
                to_numpy(a).astype(np.float64)
                for a in (weight, mean_z, mean_x, m2_z, c_zx)
            )
        )
        if batch._bad().any():
            # The sums overflowed (|z| or |x| too large to square): the NumPy
            # moments of this chunk, which rescale those features exactly.
            batch = AffineMoments.from_batch(
                to_numpy(x), to_numpy(z), to_numpy(w[rows])
            )
        total.merge(batch)
    return total
