"""Export sknorm normalizers to ONNX with skl2onnx.

Importing this module registers skl2onnx converters (a shape calculator and a
converter) for :class:`~sknorm.LayerNormalizer`, :class:`~sknorm.RMSNormalizer`
and :class:`~sknorm.GroupNormalizer`, so that ``skl2onnx.to_onnx(est, X[:1])``
works for these estimators and for pipelines holding them::

    import sknorm.onnx  # noqa: F401  (registers the converters)
    from skl2onnx import to_onnx

    onx = to_onnx(pipeline, X[:1])

The graph computes what :meth:`transform` computes, with sknorm's numerics:
NaN ignored in a row's statistics and kept in the output, the corrected
two-pass mean and variance, NaN-aware medians and quantiles (numpy's linear
interpolation), constant rows to 0 (or to ``bias_`` with ``affine=True``),
the robust scales' fallback, and the kept statistics in the same columns.
Statistics are computed in float64 (a float32 input gives a float32 output,
as ``transform`` does). It needs opset :data:`MIN_OPSET` or later. See the
docs page "Export to ONNX" for what converts and what is refused.

Needs the ``[onnx]`` extra: ``pip install "sknorm[onnx]"``.
"""

import numbers

import numpy as np

from ._group_norm import GroupNormalizer
from ._layer_norm import LayerNormalizer
from ._rms_norm import RMSNormalizer

try:
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    message = (
        "sknorm.onnx needs skl2onnx and onnx (and onnxruntime to run the "
        "graphs): pip install 'sknorm[onnx]'."
    )
    raise ImportError(message) from exc

__all__ = ["register_converters"]

#: The lowest ONNX opset the converters emit: opset 11 brings ``TopK`` with
#: ``largest=0`` (ascending sort, for medians and quantiles),
#: ``GatherElements`` (per-row order statistics) and ``Equal`` on floats.
MIN_OPSET = 11

# sknorm's consistency constants (sknorm._semantics; kept here so that the
# exporter does not depend on the engine's private modules): for normal data
# MAD * 1.4826..., IQR / 1.3489... and the mean absolute deviation *
# sqrt(pi / 2) estimate the standard deviation.
MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4)
IQR_TO_STD = 1.3489795003921634  # 2 * Phi^-1(3/4)
_MEAN_ABS_TO_STD = 1.2533141373155003  # sqrt(pi / 2)

_CENTERS = ("mean", "median", None)
_SCALES = ("std", "mad", "iqr", None)


# -- what the estimator asks for ----------------------------------------------
def _options(est):
    """``(center, scale, eps)`` of a fitted estimator, checked for the graph."""
    if isinstance(est, RMSNormalizer):
        center, scale = None, "std"
    else:
        center, scale = est.center, est.scale
    name = type(est).__name__
    if center not in _CENTERS:
        raise ValueError(
            f"Cannot convert {name}(center={center!r}) to ONNX: center must be "
            "'mean', 'median' or None."
        )
    if scale not in _SCALES:
        raise ValueError(
            f"Cannot convert {name}(scale={scale!r}) to ONNX: scale must be "
            "'std', 'mad', 'iqr' or None."
        )
    eps = est.eps
    if (
        isinstance(eps, bool)
        or not isinstance(eps, numbers.Real)
        or not np.isfinite(eps)
        or eps < 0
    ):
        raise ValueError(
            f"Cannot convert {name}(eps={eps!r}) to ONNX: eps must be a "
            "non-negative finite float."
        )
    return center, scale, float(eps)


def _groups(est, n_features):
    """``(names, column index arrays, kept columns)`` from public attributes."""
    name = type(est).__name__
    n_fit = getattr(est, "n_features_in_", None)
    if n_fit is not None:
        if n_features is not None and n_features != n_fit:
            raise ValueError(
                f"{name} was fitted on {n_fit} features but the ONNX input has "
                f"{n_features} columns."
            )
        n_features = n_fit
    if n_features is None:
        raise ValueError(
            f"Cannot convert an unfitted {name} without a known number of "
            "columns: fit it, or give the input a fixed second dimension."
        )
    if isinstance(est, GroupNormalizer):
        if not hasattr(est, "groups_"):
            raise ValueError(
                "Cannot convert an unfitted GroupNormalizer to ONNX: fit it "
                "first (the groups are resolved in fit)."
            )
        if est.remainder not in ("passthrough", "drop"):
            raise ValueError(
                f"Cannot convert GroupNormalizer(remainder={est.remainder!r}) to "
                "ONNX: remainder must be 'passthrough' or 'drop'."
            )
        names = list(est.groups_)
        cols = [np.asarray(est.groups_[k], dtype=np.int64) for k in names]
        for k, idx in zip(names, cols, strict=True):
            if idx.size == 0:
                raise ValueError(
                    f"Cannot convert GroupNormalizer(groups=...) to ONNX: group "
                    f"{k!r} has no column."
                )
        if est.remainder == "drop":
            keep = np.sort(np.concatenate(cols))
        else:
            keep = np.arange(n_features)
        return names, cols, keep, n_features
    if n_features == 0:
        raise ValueError(f"Cannot convert {name} on 0 features to ONNX.")
    cols = np.arange(n_features, dtype=np.int64)
    return ["sample"], [cols], cols, n_features


def _n_outputs(est, n_features):
    center, scale, _ = _options(est)
    names, _, keep, _ = _groups(est, n_features)
    n_stats = ((center is not None) + (scale is not None)) if est.keep_stats else 0
    return keep.size + n_stats * len(names)


def _to_numpy(a):
    """A float64 ndarray from numpy, or an Array API array (torch, CuPy)."""
    if hasattr(a, "cpu"):  # torch, on any device
        a = a.cpu()
    elif hasattr(a, "get") and not isinstance(a, np.ndarray):  # CuPy
        a = a.get()
    return np.asarray(a, dtype=np.float64)


def _affine(est, n_features):
    """``(gain, bias)`` as float64 arrays, or None without ``affine``."""
    if not est.affine:
        return None
    if not hasattr(est, "gain_"):
        raise ValueError(
            f"Cannot convert an unfitted {type(est).__name__}(affine=True) to "
            "ONNX: fit it first (gain_ and bias_ are learned in fit)."
        )
    gain, bias = _to_numpy(est.gain_), _to_numpy(est.bias_)
    if gain.shape != (n_features,) or bias.shape != (n_features,):
        raise ValueError(
            f"gain_ and bias_ of shape {gain.shape} and {bias.shape} do not "
            f"match {n_features} features."
        )
    return gain, bias


# -- input and output types ---------------------------------------------------
_FLOATS = (FloatTensorType, DoubleTensorType)
_INTS = (Int64TensorType, Int32TensorType)


def _check_inputs(operator):
    name = type(operator.raw_operator).__name__
    if not operator.inputs:
        raise RuntimeError(f"{name} needs one input.")
    for var in operator.inputs:
        if not isinstance(var.type, _FLOATS + _INTS):
            raise TypeError(
                f"Cannot convert {name} for an input of type "
                f"{type(var.type).__name__}: sknorm normalizes float (or "
                "integer) tensors. Dense arrays only: skl2onnx has no sparse "
                "input type, pass X.toarray() (implicit zeros are values)."
            )
        if len(var.type.shape) != 2:
            raise ValueError(
                f"{name} needs 2-D inputs (n_samples, n_features); got shape "
                f"{var.type.shape}."
            )


def _out_is_float32(operator):
    """float32 out only when every input is float32 (as ``check_array`` does)."""
    return all(isinstance(v.type, FloatTensorType) for v in operator.inputs)


def _n_input_columns(operator):
    total = 0
    for var in operator.inputs:
        c = var.type.shape[1]
        if not isinstance(c, numbers.Integral):
            return None
        total += int(c)
    return total


def _shape_calculator(operator):
    _check_inputs(operator)
    est = operator.raw_operator
    n_out = _n_outputs(est, _n_input_columns(operator))
    n = operator.inputs[0].type.shape[0]
    out_type = FloatTensorType if _out_is_float32(operator) else DoubleTensorType
    operator.outputs[0].type = out_type([n, n_out])


# -- a small graph builder ----------------------------------------------------
_D = TensorProto.DOUBLE


class _Graph:
    """Adds nodes and constants to a skl2onnx container under unique names."""

    def __init__(self, scope, container, prefix):
        self.scope = scope
        self.container = container
        self.prefix = prefix
        self.opset = container.target_opset
        self._consts = {}
        # While an If branch is built: its nodes, and its constants (as
        # Constant nodes inside the branch, so that it is self-contained).
        self._sink = None

    def name(self, seed):
        return self.scope.get_unique_variable_name(f"{self.prefix}_{seed}")

    def const(self, value, dtype=np.float64):
        value = np.asarray(value, dtype=dtype)
        key = (value.dtype.str, value.shape, value.tobytes())
        if self._sink is not None:
            nodes, consts = self._sink
            if key not in consts:
                consts[key] = self.op("Constant", value=numpy_helper.from_array(value))
            return consts[key]
        if key not in self._consts:
            name = self.name("c")
            proto = {np.float64: _D, np.int64: TensorProto.INT64}[value.dtype.type]
            self.container.add_initializer(
                name, proto, list(value.shape), value.ravel().tolist()
            )
            self._consts[key] = name
        return self._consts[key]

    def op(self, op_type, *inputs, n_out=1, out=None, **attrs):
        outs = [out] if out is not None else [self.name(op_type) for _ in range(n_out)]
        if self._sink is not None:
            node = helper.make_node(op_type, list(inputs), outs, **attrs)
            node.name = self.scope.get_unique_operator_name(f"{self.prefix}_{op_type}")
            self._sink[0].append(node)
            return outs[0] if n_out == 1 else outs
        self.container.add_node(
            op_type,
            list(inputs),
            outs,
            name=self.scope.get_unique_operator_name(f"{self.prefix}_{op_type}"),
            **attrs,
        )
        return outs[0] if n_out == 1 else outs

    def row_sum(self, x):
        """Sum over the last axis, keeping it (the axes moved to an input at 13)."""
        if self.opset >= 13:
            return self.op("ReduceSum", x, self.const([-1], np.int64), keepdims=1)
        return self.op("ReduceSum", x, axes=[-1], keepdims=1)

    def row_extreme(self, op_type, x):
        """ReduceMax/ReduceMin/ReduceSumSquare over the last axis, keeping it
        (their axes moved to an input at 18)."""
        if self.opset >= 18:
            return self.op(op_type, x, self.const([-1], np.int64), keepdims=1)
        return self.op(op_type, x, axes=[-1], keepdims=1)

    def round32(self, x, keep=None):
        """``x`` rounded to float32 (as float64) where ``keep`` is not True."""
        r = self.op("Cast", self.op("Cast", x, to=TensorProto.FLOAT), to=_D)
        return r if keep is None else self.op("Where", keep, x, r)

    def if_(self, cond, then_build, else_build):
        """``If(cond)``: each branch built by a function returning output names."""
        branches = []
        for build in (then_build, else_build):
            self._sink = ([], {})
            try:
                outs = build()
                nodes = self._sink[0]
            finally:
                self._sink = None
            made = {o for n in nodes for o in n.output}
            final = []
            for o in outs:
                if o not in made:  # an outer value: a branch must produce it
                    n = self.name("Identity")
                    nodes.append(helper.make_node("Identity", [o], [n]))
                    o = n
                final.append(o)
            branches.append(
                helper.make_graph(
                    nodes,
                    self.name("branch"),
                    [],
                    [helper.make_tensor_value_info(o, _D, None) for o in final],
                )
            )
        return self.op(
            "If",
            cond,
            n_out=len(final),
            then_branch=branches[0],
            else_branch=branches[1],
        )

    def reshape(self, x, shape):
        return self.op("Reshape", x, self.const(shape, np.int64))


# -- the normalization ----------------------------------------------------------
def _order_stats(g, v, nan, cnt, m, qs):
    """NaN-ignoring quantiles of each row of ``v`` along the last axis.

    ``qs``: ``"median"`` (the mean of the two middle values, as np.median),
    ``"iqr"`` (q75 - q25, :func:`_iqr_from_ends`) or a fraction (numpy's
    "linear" method and its interpolation from the nearer end). NaN is sorted
    last as +inf; the order statistics are gathered at indices computed from
    each row's count of non-NaN values ``cnt``.
    """
    if nan is None:
        return _order_stats_nan_free(g, v, m, qs)
    filled = g.op("Where", nan, g.const(np.inf), v)
    srt, _ = g.op("TopK", filled, g.const([m], np.int64), n_out=2, axis=-1, largest=0)
    zero, one = g.const(0.0), g.const(1.0)
    last = g.op("Sub", cnt, one)
    empty = g.op("Equal", cnt, zero)

    def at(pos):
        pos = g.op("Max", g.op("Min", pos, g.op("Max", last, zero)), zero)
        idx = g.op("Cast", pos, to=TensorProto.INT64)
        return g.op("GatherElements", srt, idx, axis=-1)

    def iqr():
        # q75 - q25 from differences of order statistics, as sknorm's
        # engine forms it (accurate whatever the rows' offset).
        ends = []
        for frac in (0.25, 0.75):
            pos = g.op("Mul", last, g.const(frac))
            lo = g.op("Floor", pos)
            ends.append((at(lo), at(g.op("Add", lo, one)), g.op("Sub", pos, lo)))
        return _iqr_from_ends(g, *ends)

    out = []
    for q in qs:
        if q == "iqr":
            r = iqr()
        elif q == "median":
            half = g.const(0.5)
            lo = g.op("Floor", g.op("Mul", last, half))
            hi = g.op("Floor", g.op("Mul", cnt, half))
            r = g.op("Div", g.op("Add", at(lo), at(hi)), g.const(2.0))
        else:
            pos = g.op("Mul", last, g.const(q))
            lo = g.op("Floor", pos)
            t = g.op("Sub", pos, lo)
            a, b = at(lo), at(g.op("Add", lo, one))
            diff = g.op("Sub", b, a)
            from_a = g.op("Add", a, g.op("Mul", diff, t))
            from_b = g.op("Sub", b, g.op("Mul", diff, g.op("Sub", one, t)))
            r = g.op("Where", g.op("Less", t, g.const(0.5)), from_a, from_b)
        out.append(g.op("Where", empty, g.const(np.nan), r))
    return out


def _iqr_from_ends(g, ends25, ends75):
    """``(a75 - a25) + (b75 - a75) * t75 - (b25 - a25) * t25``: the IQR of
    linear quantiles ``a + (b - a) * t`` as differences of data values."""
    (a25, b25, t25), (a75, b75, t75) = ends25, ends75
    head = g.op("Sub", a75, a25)
    up = g.op("Mul", g.op("Sub", b75, a75), t75)
    down = g.op("Mul", g.op("Sub", b25, a25), t25)
    return g.op("Sub", g.op("Add", head, up), down)


def _order_stats_nan_free(g, v, m, qs):
    """:func:`_order_stats` of rows without NaN: fixed positions, sliced."""
    srt, _ = g.op("TopK", v, g.const([m], np.int64), n_out=2, axis=-1, largest=0)

    def at(pos):
        start, axis = g.const([pos], np.int64), g.const([-1], np.int64)
        return g.op("Slice", srt, start, g.const([pos + 1], np.int64), axis)

    out = []
    for q in qs:
        if q == "median":
            r = g.op("Add", at((m - 1) // 2), at(m // 2))
            out.append(g.op("Div", r, g.const(2.0)))
            continue
        if q == "iqr":
            ends = []
            for frac in (0.25, 0.75):
                pos = frac * (m - 1)
                lo = int(np.floor(pos))
                ends.append((at(lo), at(min(lo + 1, m - 1)), g.const(pos - lo)))
            out.append(_iqr_from_ends(g, *ends))
            continue
        pos = q * (m - 1)
        lo = int(np.floor(pos))
        t = pos - lo
        a, b = at(lo), at(min(lo + 1, m - 1))
        diff = g.op("Sub", b, a)
        if t < 0.5:
            out.append(g.op("Add", a, g.op("Mul", diff, g.const(t))))
        else:
            out.append(g.op("Sub", b, g.op("Mul", diff, g.const(1.0 - t))))
    return out


def _normalize(g, x, m, center, scale, eps, f32, nan_free=False):
    """Normalize ``x`` (float64, rows along the last axis, ``m`` values each).

    ``f32``: the input is float32; as ``transform`` does, the centers of rows
    without NaN are then rounded to float32 before they are subtracted (a
    median of two float32 values is not a float32 value; rows with NaN take
    sknorm's float64 path). ``nan_free``: build the graph for an ``x`` known
    to hold no NaN (no masks; the caller checks). Returns ``(z, c, s)``: the
    normalized values and the per-row center and scale before ``eps`` (shape
    ``(..., 1)``; ``c`` is None for ``center=None``, ``s`` for
    ``scale=None``).
    """
    if center is None and scale is None:
        return x, None, None
    zero = g.const(0.0)
    if nan_free:
        nan = has_nan = None
        cnt = g.const(float(m))

        def masked(v, fill=0.0):
            return v

    else:
        nan = g.op("IsNaN", x)
        # Non-NaN values per row (one pass less than counting the valid ones).
        cnt = g.op("Sub", g.const(float(m)), g.row_sum(g.op("Cast", nan, to=_D)))
        has_nan = g.op("Less", cnt, g.const(float(m))) if f32 else None

        def masked(v, fill=0.0):
            return g.op("Where", nan, g.const(fill), v)

    def sub_center(v, center_value):
        if f32:
            center_value = g.round32(center_value, has_nan)
        return g.op("Sub", v, center_value)

    c = ss = None
    if center == "mean":
        # Corrected two-pass: delta2 (the mean of x - delta) is delta's
        # rounding error; it is subtracted too and taken out of the sum of
        # squares, so rows like 1e6 + N(0, 1) keep their digits.
        delta = g.op("Div", g.row_sum(masked(x)), cnt)
        if f32:
            delta = g.round32(delta, has_nan)
        v = g.op("Sub", x, delta)
        v0 = masked(v)
        s1 = g.row_sum(v0)
        delta2 = g.op("Div", s1, cnt)
        dev = sub_center(v, delta2)
        c = g.op("Add", delta, delta2)
        if scale == "std":
            ss = g.op(
                "Sub", g.row_extreme("ReduceSumSquare", v0), g.op("Mul", s1, delta2)
            )
            ss = g.op("Max", ss, zero)
    elif center == "median":
        (c,) = _order_stats(g, x, nan, cnt, m, ["median"])
        dev = sub_center(x, c)
    else:
        dev = x
    if scale is None:
        return dev, c, None
    if scale == "std":
        if ss is None:
            ss = g.row_extreme("ReduceSumSquare", masked(dev))
        s = g.op("Sqrt", g.op("Div", ss, cnt))
    else:
        if scale == "mad":
            (med,) = _order_stats(g, g.op("Abs", dev), nan, cnt, m, ["median"])
            s = g.op("Mul", med, g.const(MAD_TO_STD))
        else:
            # The IQR of x itself (translation invariant), as the engine.
            (iqr,) = _order_stats(g, x, nan, cnt, m, ["iqr"])
            s = g.op("Div", iqr, g.const(IQR_TO_STD))
        # A robust scale of 0 in a row that is not constant (more than half
        # its values tied): sqrt(pi/2) * mean |x - center| instead.
        mean_abs = g.op("Div", g.row_sum(masked(g.op("Abs", dev))), cnt)
        fallback = g.op("Mul", mean_abs, g.const(_MEAN_ABS_TO_STD))
        top = g.row_extreme("ReduceMax", masked(dev, -np.inf))
        bottom = g.row_extreme("ReduceMin", masked(dev, np.inf))
        varies = g.op("Greater", top, bottom)
        use = g.op("And", g.op("Equal", s, zero), varies)
        s = g.op("Where", use, fallback, s)
    d = g.op("Sqrt", g.op("Add", g.op("Mul", s, s), g.const(eps)))
    if eps == 0:
        # A constant row with eps=0: divide by 1 (its deviations are 0).
        d = g.op("Where", g.op("Equal", d, zero), g.const(1.0), d)
    z = g.op("Mul", dev, g.op("Div", g.const(1.0), d))
    return z, c, s


def _convert(scope, operator, container):
    est = operator.raw_operator
    name = type(est).__name__
    opset = container.target_opset
    if opset is not None and opset < MIN_OPSET:
        raise RuntimeError(
            f"sknorm's ONNX converter for {name} needs opset {MIN_OPSET} or "
            f"later (TopK with largest=0, GatherElements); got target_opset="
            f"{opset}. Pass target_opset={MIN_OPSET} or higher to to_onnx."
        )
    _check_inputs(operator)
    f32 = _out_is_float32(operator)
    center, scale, eps = _options(est)
    names, cols, keep, p = _groups(est, _n_input_columns(operator))
    affine = _affine(est, p)
    g = _Graph(scope, container, "sknorm")

    # One float64 (n, p) tensor from the input(s).
    parts = []
    for var in operator.inputs:
        if isinstance(var.type, DoubleTensorType):
            parts.append(var.full_name)
        else:
            parts.append(g.op("Cast", var.full_name, to=_D))
    x = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)

    out_pos = np.searchsorted(keep, np.arange(p))
    n_stats = ((center is not None) + (scale is not None)) if est.keep_stats else 0
    pieces, positions = [], []
    # One group of every column in input order: no gather needed.
    whole = len(cols) == 1 and np.array_equal(cols[0], np.arange(p))
    # Groups of equal size are normalized together as one (n, k, m) tensor.
    sizes = {}
    for gi, idx in enumerate(cols):
        sizes.setdefault(idx.size, []).append(gi)
    for m, members in sizes.items():
        k = len(members)
        idx = np.stack([cols[gi] for gi in members])  # (k, m)
        if whole:
            xb = x
        elif np.array_equal(idx.ravel(), np.arange(idx[0, 0], idx[0, 0] + idx.size)):
            # Consecutive columns (groups=int): a slice and a reshape, no copy.
            lo, hi = int(idx[0, 0]), int(idx[0, 0]) + idx.size
            if (lo, hi) != (0, p):
                one = g.const([1], np.int64)
                lo_, hi_ = g.const([lo], np.int64), g.const([hi], np.int64)
                x_ = g.op("Slice", x, lo_, hi_, one)
            else:
                x_ = x
            xb = g.reshape(x_, [0, k, m])
        else:
            xb = g.op("Gather", x, g.const(idx, np.int64), axis=1)
        # Float32 with an affine map: sknorm normalizes and maps in float64
        # and rounds the result; without, it subtracts float32 centers.
        args = (g, xb, m, center, scale, eps, f32 and affine is None)
        if center is None and scale is None:
            z, c, s = _normalize(*args)
        else:
            # Input without NaN (the usual case) takes a branch without the
            # NaN masks: a third of the passes over the data. The sum of all
            # values is NaN when one is (or when inf meets -inf: the NaN-aware
            # branch is right for that too).
            any_nan = g.op("IsNaN", g.op("ReduceSum", xb, keepdims=0))
            outs = g.if_(
                any_nan,
                lambda args=args: [o for o in _normalize(*args) if o is not None],
                lambda args=args: [
                    o for o in _normalize(*args, nan_free=True) if o is not None
                ],
            )
            outs = [outs] if isinstance(outs, str) else list(outs)
            z = outs.pop(0)
            c = outs.pop(0) if center is not None else None
            s = outs.pop(0) if scale is not None else None
        if affine is not None:
            shape = (m,) if whole else (k, m)
            z = g.op("Mul", z, g.const(affine[0][idx].reshape(shape)))
            z = g.op("Add", z, g.const(affine[1][idx].reshape(shape)))
        pieces.append(z if whole else g.reshape(z, [0, k * m]))
        positions.append(out_pos[idx.ravel()])
        stat_base = keep.size + n_stats * np.asarray(members)
        for stat, offset in ((c, 0), (s, int(c is not None))):
            if n_stats and stat is not None:
                pieces.append(stat if whole else g.reshape(stat, [0, k]))
                positions.append(stat_base + offset)
    rest = np.setdiff1d(keep, np.concatenate(cols))
    if rest.size:
        pieces.append(g.op("Gather", x, g.const(rest, np.int64), axis=1))
        positions.append(out_pos[rest])
    positions = np.concatenate(positions)
    y = pieces[0] if len(pieces) == 1 else g.op("Concat", *pieces, axis=1)
    if not np.array_equal(positions, np.arange(positions.size)):
        y = g.op("Gather", y, g.const(np.argsort(positions), np.int64), axis=1)
    out = operator.outputs[0].full_name
    if f32:
        g.op("Cast", y, out=out, to=TensorProto.FLOAT)
    else:
        g.op("Identity", y, out=out)


# -- registration --------------------------------------------------------------
_ALIASES = {
    LayerNormalizer: "SknormLayerNormalizer",
    RMSNormalizer: "SknormRMSNormalizer",
    GroupNormalizer: "SknormGroupNormalizer",
}


def register_converters():
    """Register the skl2onnx converters of the sknorm normalizers.

    Called when :mod:`sknorm.onnx` is imported; call it again after
    something else replaced the registrations. Registers a shape calculator
    and a converter for :class:`~sknorm.LayerNormalizer`,
    :class:`~sknorm.RMSNormalizer` and :class:`~sknorm.GroupNormalizer`
    under the aliases ``SknormLayerNormalizer``, ``SknormRMSNormalizer`` and
    ``SknormGroupNormalizer``.
    """
    for cls, alias in _ALIASES.items():
        update_registered_converter(
            cls, alias, _shape_calculator, _convert, overwrite=True
        )


register_converters()
