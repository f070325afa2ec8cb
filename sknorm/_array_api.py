"""The Array API backend: the same normalization on PyTorch, CuPy, ... arrays.

With ``sklearn.set_config(array_api_dispatch=True)`` (which needs the
environment variable ``SCIPY_ARRAY_API=1``), input that is not a NumPy array
but implements the `Array API standard <https://data-apis.org/array-api/>`_
(a PyTorch tensor, a CuPy array, an ``array_api_strict`` array, ...) is
normalized in its own namespace and on its own device: no round trip through
NumPy, so a GPU tensor stays on the GPU. NumPy input, and any input while
dispatch is off, takes the numpy backend (:mod:`sknorm._engine`).

The arithmetic is :func:`sknorm._semantics.normalize_rows`, the reference
rule every backend follows, run on the namespace: the corrected two-pass
mean, the power-of-two rescaling of every row (exact; no overflow or
underflow at any magnitude), NaN ignored, the zero-spread fallback of the
robust scales, the denominator of :func:`sknorm._semantics.denominator`.
It has no data-dependent branch, so the device never waits for the host
inside a call: the checks for ``inf`` in the input and for an affine output
beyond the dtype's range are accumulated on the device and read once, at
the end of the call. Statistics are in float64 (float32 on a device
without float64, such as Apple MPS); the output has the input's dtype.

The fitted affine statistics stay in NumPy (:class:`sknorm._affine.AffineMoments`
holds a few vectors of length ``n_features``, merged exactly across batches);
``gain_`` and ``bias_`` are stored in the namespace and on the device of the
data the estimator was fitted on. ``copy=False`` has no effect here: the output
is always a new array.

The helper package ``array_api_compat`` (``pip install sknorm[array-api]``)
wraps NumPy, PyTorch and CuPy in standard namespaces; scikit-learn vendors a
copy, used when the package is not installed. Both imports live in this file
only.
"""

import functools

import numpy as np
from sklearn import get_config
from sklearn.utils.validation import check_array, validate_data

from . import _semantics
from ._affine import AffineMoments
from ._layout import Layout
from ._semantics import INF_MESSAGE
from ._validation import check_sample_weight

try:
    import array_api_compat
except ImportError:  # pragma: no cover - recent scikit-learn ships a copy
    try:
        from sklearn.externals import array_api_compat
    except ImportError:  # scikit-learn 1.6 has none: the NumPy path only
        array_api_compat = None


@functools.lru_cache(maxsize=1)
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


# Rows per device chunk: one chunk in the work dtype is about this many bytes
# (a GPU wants large kernels; the chunk bounds the device scratch).
DEVICE_CHUNK_BYTES = 2**26


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


# -- the backend -----------------------------------------------------------------
class ArrayAPIBackend:
    """Array API arrays of namespace ``ns`` (see the module docstring)."""

    name = "array_api"

    def __init__(self, ns):
        self.ns = ns

    def validate(self, estimator, X, *, reset, accept_sparse, fitting, copy=True):
        """``validate_data`` keeping ``X`` in its namespace and on its device,
        converted to the work dtype's family (float64 or float32 kept)."""
        return validate_data(
            estimator,
            X,
            reset=reset,
            accept_sparse=False,
            dtype=self.ns.float_dtypes(),
            ensure_all_finite="allow-nan" if fitting else False,
        )

    def check_input(self, X, *, accept_sparse, allow_nan=False, copy=True):
        """``check_array`` for the function twins and the inverse."""
        return check_array(
            X,
            accept_sparse=False,
            dtype=self.ns.float_dtypes(),
            ensure_all_finite="allow-nan" if allow_nan else False,
        )

    def sample_weight(self, sample_weight, n_samples):
        """Weights of any namespace, checked in NumPy, on the device of X."""
        w = check_sample_weight(to_numpy(sample_weight), n_samples)
        return self.ns.asarray(w)

    def reference(self):
        return reference_array(self.ns)

    def to_numpy(self, a):
        return to_numpy(a)

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
        """Normalize ``X``: returns ``(Y, C, S)`` in its namespace and device.

        (``stats`` is accepted for the engine's signature: the statistics are
        computed here in any case.)

        ``Y`` in the dtype of ``X``; ``C``/``S`` the (n_samples, n_groups)
        statistics in the work dtype (``S`` None without a scale).
        """
        ns, xp = self.ns, self.ns.xp
        layout = Layout.of(spec, center, scale, keep_stats)
        cols = _DeviceColumns(layout, ns)
        n, p = X.shape
        chunks = _chunks(n, p)
        Y = C = S = None
        if len(chunks) > 1:
            Y = xp.empty((n, layout.n_out), dtype=X.dtype, device=ns.device)
            C = xp.empty((n, layout.n_groups), dtype=ns.work, device=ns.device)
            if scale is not None:
                S = xp.empty((n, layout.n_groups), dtype=ns.work, device=ns.device)
        flags = []
        for rows in chunks:
            x = xp.astype(X[rows, :], ns.work)
            y, c, s, flag = _normalize_chunk(
                x, layout, cols, center, scale, eps, gain, bias, X.dtype, ns
            )
            flags.append(flag)
            if len(chunks) == 1:
                Y, C, S = y, c, s
            else:
                Y[rows, :] = y
                C[rows, :] = c
                if S is not None:
                    S[rows, :] = s
        _check_flags(flags, X.dtype, ns)
        return Y, C, S

    def inverse_transform(self, Y, spec, center, scale, eps, *, gain=None, bias=None):
        """Undo :meth:`transform` from its output with kept statistics."""
        ns, xp = self.ns, self.ns.xp
        layout = Layout.of(spec, center, scale, True)
        with np.errstate(over="ignore", invalid="ignore"):
            X = _semantics.inverse(
                xp.astype(Y, ns.work), layout, center, scale, eps, gain, bias, xp
            )
        return xp.astype(X, Y.dtype)

    def affine_moments(self, X, w, spec, center, scale, eps):
        """The affine regression's moments of batch ``X`` (NumPy, mergeable).

        The sums run on the device of ``X``; only a few vectors of length
        ``n_features`` come back to the host per chunk.
        """
        ns, xp = self.ns, self.ns.xp
        n, p = X.shape
        layout = Layout(spec.keeping_all(), center, scale, False)
        dev_cols = _DeviceColumns(layout, ns)
        grouped = ns.asarray(np.flatnonzero(layout.in_group), dtype=xp.int64)
        total = AffineMoments(int(layout.in_group.sum()))
        flags = []
        for rows in _chunks(n, p):
            x = xp.astype(X[rows, :], ns.work)
            z, _, _, flag = _normalize_chunk(
                x, layout, dev_cols, center, scale, eps, None, None, ns.work, ns
            )
            flags.append(flag)
            x, z = xp.take(x, grouped, axis=1), xp.take(z, grouped, axis=1)
            total.merge(_batch_moments(x, z, w[rows], ns))
        _check_flags(flags, ns.work, ns)
        return total


class _DeviceColumns:
    """A :class:`~sknorm._layout.Layout`'s column indices on the device.

    ``groups[g]``: the input columns of group ``g`` (a slice or a device
    index array); ``other``: the columns in no group; ``perm``: for each
    output column, its position in the concatenation of the groups' blocks
    and the other columns (None when that is the identity).
    """

    def __init__(self, layout, ns):
        xp = ns.xp
        self.groups = [
            c if isinstance(c, slice) else ns.asarray(c, dtype=xp.int64)
            for c in layout.in_cols
        ]
        self.other = None
        if layout.other.size:
            self.other = ns.asarray(layout.other, dtype=xp.int64)
        p = layout.spec.n_features
        order = np.concatenate(
            [np.arange(p)[c] for c in layout.in_cols] + [layout.other]
        )
        perm = np.argsort(order, kind="stable")[layout.keep]
        self.perm = None
        if not np.array_equal(perm, np.arange(p)):
            self.perm = ns.asarray(perm, dtype=xp.int64)

    def block(self, x, g, xp):
        cols = self.groups[g]
        if isinstance(cols, slice):
            return x[:, cols]
        return xp.take(x, cols, axis=1)


def _chunks(n, p):
    step = max(1, DEVICE_CHUNK_BYTES // max(1, p * 8))
    return [slice(lo, min(n, lo + step)) for lo in range(0, n, step)]


def _normalize_chunk(x, layout, cols, center, scale, eps, gain, bias, dtype, ns):
    """Normalize one chunk ``x`` (work dtype) by the reference rule.

    Returns ``(y, C, S, flags)``: the output rows in ``dtype`` with the
    layout's columns, the statistics, and a device array of two booleans:
    an inf in ``x``, an affine output beyond ``dtype``'s range. No host
    synchronization.
    """
    xp = ns.xp
    # A NumPy-backed namespace (array-api-strict) would warn about the
    # intermediate values of NaN rows; they are expected.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        blocks, cs, ss = [], [], []
        for g in range(layout.n_groups):
            c, s, z = _semantics.normalize_rows(
                cols.block(x, g, xp), center, scale, eps, xp
            )
            if gain is not None:
                idx = cols.groups[g]
                g_, b_ = (
                    (gain[idx], bias[idx])
                    if isinstance(idx, slice)
                    else (xp.take(gain, idx), xp.take(bias, idx))
                )
                z = z * g_ + b_
            blocks.append(z)
            cs.append(c)
            ss.append(s)
        if cols.other is not None:
            blocks.append(xp.take(x, cols.other, axis=1))
        y = blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=1)
        if cols.perm is not None:
            y = xp.take(y, cols.perm, axis=1)
        C = xp.stack(cs, axis=1)
        S = None if scale is None else xp.stack(ss, axis=1)
        kept = [
            (C if which == "center" else S)[:, g]
            for g, which in layout.stat_order(center, scale)
        ]
        if layout.n_stats:
            y = xp.concat([y, xp.stack(kept, axis=1)], axis=1)
        out = xp.astype(y, dtype)
        over = xp.zeros((), dtype=xp.bool, device=ns.device)
        if gain is not None and dtype != ns.work:
            over = _semantics.overflowed(out, xp)
        flags = xp.stack([xp.any(xp.isinf(x)), over])
    return out, C, S, flags


def _check_flags(flags, dtype, ns):
    """Raise for an inf in the input or an overflowing affine output.

    The one host synchronization of a call: the flags of every chunk are
    read together.
    """
    got = to_numpy(ns.xp.stack(flags, axis=0)).any(axis=0)
    if got[0]:
        raise ValueError(INF_MESSAGE)
    if got[1]:
        _semantics.raise_overflow(dtype)


def _batch_moments(x, z, w, ns):
    """:class:`AffineMoments` of one chunk, summed on the device."""
    xp = ns.xp
    valid = ~(xp.isnan(x) | xp.isnan(z))
    zero = xp.zeros_like(x)
    wv = xp.where(valid, w[:, None], zero)
    x0, z0 = xp.where(valid, x, zero), xp.where(valid, z, zero)
    with np.errstate(over="ignore", invalid="ignore"):  # checked below
        weight = xp.sum(wv, axis=0)
        safe = xp.where(weight > 0, weight, xp.ones_like(weight))
        mean_z = xp.sum(wv * z0, axis=0) / safe
        mean_x = xp.sum(wv * x0, axis=0) / safe
        dz = xp.where(valid, z0 - mean_z, zero)
        dx = xp.where(valid, x0 - mean_x, zero)
        m2_z, c_zx = xp.sum(wv * dz * dz, axis=0), xp.sum(wv * dz * dx, axis=0)
    batch = AffineMoments._from_arrays(
        *(to_numpy(a).astype(np.float64) for a in (weight, mean_z, mean_x, m2_z, c_zx))
    )
    if batch._bad().any():
        # The sums overflowed (|z| or |x| too large to square): the NumPy
        # moments of this chunk, which rescale those features exactly.
        batch = AffineMoments.from_batch(to_numpy(x), to_numpy(z), to_numpy(w))
    return batch
