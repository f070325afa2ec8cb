"""Differential tests: one semantics on every path a user can reach.

Every public estimator and function, with every option, runs over every path:
the dense numpy engine (``sknorm.set_config(engine="numpy")``), the numba
engine (``engine="numba"``, with ``sknorm[fast]``), ``array_api_strict`` and
PyTorch CPU tensors through the Array API (``sklearn.set_config(
array_api_dispatch=True)``; the root ``conftest.py`` sets ``SCIPY_ARRAY_API=1``
before scipy is imported), sparse CSR and CSC input where it is accepted
(``center=None``, scale ``"std"`` or None, no ``affine``), and ``sknorm.dask``
(Dask arrays in row chunks, in row-and-column chunks, with sparse chunks, and
Dask DataFrames). The inputs span float64 and float32: rows at 1e+-300 (1e+-37
in float32), next to the largest float, subnormal rows, ``1e12 + N(0, 1)``,
mixed magnitudes within a row, NaN, all-NaN, constant and all-zero rows, rows
whose MAD and IQR are 0 without being constant, one-column groups, ``eps=0``.

Each path's output (kept statistics included), the function twins'
``return_stats``, ``gain_`` / ``bias_``, the ``inverse_transform`` round trip
(also of the output as a sparse matrix), the output's column count, dtype and
``get_feature_names_out`` are compared with the dense numpy engine *and* with
the independent long-double reference of ``tests/_reference.py``. A result
that differs between two paths for the same input is a bug, whichever path is
right. Tolerances are rounding-error bounds of the dtype under test relative
to each row's spread (``_reference.reference_tolerance``), never a blanket
``rtol``. Paths whose package is missing are not generated; one skipped test
per missing path says what to install.

Run::

    python -m pytest tests/test_differential.py              # default, fast
    SKNORM_DIFF_THOROUGH=1 python -m pytest tests/test_differential.py

The thorough run adds more rows per input kind, random rows spread over the
whole float range, more ``eps`` values and every configuration on every Dask
layout; ``tests/run_thorough.sh`` runs it together with the property suite's
thorough hypothesis profile on every backend.
"""

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _paths import (
    ALL_PATHS,
    AVAILABLE,
    MISSING,
    SPARSE_PATHS,
    as_numpy,
    compute,
    on,
    to_numpy,
    to_path,
)
from _reference import (
    EPS32,
    EPS64,
    EPS_REF,
    TINY,
    TINY32,
    assert_within,
    reference_affine,
    reference_normalize,
    reference_tolerance,
    row_max,
)

from sknorm import (
    GroupNormalizer,
    LayerNormalizer,
    RMSNormalizer,
    group_norm,
    layer_norm,
    rms_norm,
)

THOROUGH = os.environ.get("SKNORM_DIFF_THOROUGH", "") not in ("", "0")
P = 6  # columns of every input


# -- inputs -------------------------------------------------------------------
def _inputs(dtype, thorough=False):
    """``{kind: rows}`` of ``P`` columns at the edges of ``dtype``'s range."""
    rng = np.random.default_rng(20261201)
    f32 = dtype == np.float32
    big, small = (1e37, 1e-37) if f32 else (1e300, 1e-300)
    top = float(np.finfo(dtype).max)
    tiny = TINY32 if f32 else TINY
    n = 3 if thorough else 1
    nan = np.nan
    kinds = {
        "normal": rng.normal(size=(2 * n, P)) * rng.uniform(0.5, 4, (2 * n, 1))
        + rng.normal(scale=10, size=(2 * n, 1)),
        "offset_1e12": 1e12 + rng.normal(size=(n, P)),
        "huge": rng.normal(size=(n, P)) * big,
        # Next to the largest float, deviations from the center still finite.
        "near_max": np.array([[0.56, -0.56, 0.84, 0.28, -0.5, 0.0]]) * top,
        "tiny": rng.normal(size=(n, P)) * small,
        "mid_tiny": rng.normal(size=(n, P)) * (1e-20 if f32 else 1e-160),
        "subnormal": np.array([[1, 3, 5, 7, 1, 7]], dtype=np.float64) * tiny,
        "mixed": np.array([[small, -1.0, big, 3e-10, -2e10, 0.0]]),
        "constant": np.full((1, P), 2.5),
        "constant_small": np.full((1, P), -0.1),
        "zeros": np.zeros((1, P)),
        "ties_mad0": np.array([[1.0, 1, 1, 1, 1, 5]]),
        "nan": np.array([[nan, 1, 2, nan, 4, 8]]),
        "all_nan": np.full((1, P), nan),
    }
    if f32:
        kinds["offset_1e4"] = 1e4 + rng.normal(size=(n, P))
    if thorough:
        # Random rows whose entries have independent magnitudes over the range.
        lo, hi = (-37, 37) if f32 else (-300, 300)
        e = rng.integers(lo, hi, size=(8, P))
        kinds["random_mixed"] = rng.choice([-1.0, 1.0], (8, P)) * 10.0**e
        kinds["random_scaled"] = rng.normal(size=(8, P)) * 10.0 ** e[:, :1]
    with np.errstate(over="ignore"):
        return {
            k: np.asarray(v, dtype=np.float64).astype(dtype) for k, v in kinds.items()
        }


def _stack(dtype):
    kinds = _inputs(dtype, THOROUGH)
    labels = [k for k, v in kinds.items() for _ in range(len(v))]
    return np.vstack(list(kinds.values())), labels


DATA = {np.float64: _stack(np.float64), np.float32: _stack(np.float32)}


def _affine_data(dtype):
    """Moderate data for the fitted affine map (it couples the rows)."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12, P)) * rng.uniform(0.5, 4, (12, 1))
    X += rng.normal(scale=10, size=(12, 1)) + np.arange(P)
    X[3, 2] = np.nan
    X[5] = 2.5  # a constant row
    return X.astype(dtype)


AFFINE_DATA = {
    np.float64: _affine_data(np.float64),
    np.float32: _affine_data(np.float32),
}


# -- configurations -------------------------------------------------------------
OPTIONS = [
    (c, s) for c in ("mean", "median", None) for s in ("std", "mad", "iqr", None)
]
EPS_VALUES = [0.0, 1e-5, 1e-2, 1.0] if THOROUGH else [0.0, 1e-5]
GROUPS = {
    "int": 3,
    "list_leftout": [[0, 2, 4], [1, 5]],
    "dict_onecol": {"a": [5, 0], "b": [3]},
    "onecol_first": [[0], [1, 2, 3, 4, 5]],
}


def _cols(groups):
    if isinstance(groups, int):
        size = P // groups
        return [list(range(g * size, (g + 1) * size)) for g in range(groups)]
    if isinstance(groups, dict):
        return [list(c) for c in groups.values()]
    return [list(c) for c in groups]


class Config:
    """One estimator configuration and what the reference needs to know of it."""

    def __init__(self, cls, dask=False, **params):
        self.cls, self.params, self.dask = cls, params, dask
        if cls is RMSNormalizer:
            self.center, self.scale = None, "std"
        else:
            self.center = params.get("center", "mean")
            self.scale = params.get("scale", "std")
        self.eps = params.get("eps", 1e-5)
        self.affine = params.get("affine", False)
        self.keep_stats = params.get("keep_stats", False)
        self.remainder = params.get("remainder", "passthrough")
        self.cols = (
            _cols(params["groups"]) if cls is GroupNormalizer else [list(range(P))]
        )

    def make(self):
        params = dict(self.params)
        if self.cls is GroupNormalizer:
            groups = params.pop("groups")
            return GroupNormalizer(groups, **params)
        return self.cls(**params)

    @property
    def sparse_ok(self):
        return self.center is None and self.scale in ("std", None) and not self.affine

    @property
    def invertible(self):
        return self.keep_stats and self.remainder == "passthrough"

    @property
    def kept(self):
        """Input columns in the output, in output order."""
        if self.remainder == "passthrough":
            return list(range(P))
        return sorted({j for c in self.cols for j in c})

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.cls.__name__}({args})"


def _configs():
    out = []
    for center, scale in OPTIONS:
        for eps in EPS_VALUES:
            dask = THOROUGH or (eps == 0.0 and center != "median")
            out.append(
                Config(
                    LayerNormalizer,
                    dask,
                    center=center,
                    scale=scale,
                    eps=eps,
                    keep_stats=True,
                )
            )
    out += [
        Config(LayerNormalizer, True),
        Config(LayerNormalizer, False, copy=False),
        Config(RMSNormalizer, True),
        Config(RMSNormalizer, False, copy=False, eps=0.0),
    ]
    out += [Config(RMSNormalizer, True, eps=eps, keep_stats=True) for eps in EPS_VALUES]
    group_options = [
        ("mean", "std"),
        ("median", "mad"),
        (None, "std"),
        (None, None),
        ("mean", "iqr"),
        (None, "mad"),
    ]
    i = 0
    for _name, groups in GROUPS.items():
        for remainder in ("passthrough", "drop"):
            for keep_stats in (True, False) if THOROUGH else (True,):
                for center, scale in (
                    group_options[i % 3 :: 3] if not THOROUGH else group_options
                ):
                    out.append(
                        Config(
                            GroupNormalizer,
                            True,
                            groups=groups,
                            center=center,
                            scale=scale,
                            eps=0.0 if i % 2 else 1e-5,
                            keep_stats=keep_stats,
                            remainder=remainder,
                        )
                    )
                i += 1
    # Issue 11: 2 columns out of 4 on dense input, all of them on sparse.
    out.append(
        Config(GroupNormalizer, True, groups=[[0, 2]], center=None, remainder="drop")
    )
    return out


def _affine_configs():
    return [
        Config(LayerNormalizer, True, affine=True, keep_stats=True),
        Config(
            LayerNormalizer,
            False,
            affine=True,
            keep_stats=True,
            center="median",
            scale="iqr",
            eps=0.0,
        ),
        Config(LayerNormalizer, False, affine=True, keep_stats=True, scale=None),
        Config(LayerNormalizer, False, affine=True, center=None, scale="mad"),
        Config(RMSNormalizer, True, affine=True, keep_stats=True),
        Config(
            GroupNormalizer,
            True,
            groups=[[0, 2, 4], [1, 5]],
            affine=True,
            keep_stats=True,
        ),
        Config(
            GroupNormalizer,
            False,
            groups={"a": [5, 0], "b": [3]},
            affine=True,
            keep_stats=True,
            remainder="drop",
            center="median",
            scale="mad",
        ),
    ]


CONFIGS = _configs()
AFFINE_CONFIGS = _affine_configs()


# -- paths ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_PATHS)
def test_path_is_available(path):
    """One skip per path that cannot run here, with what to install."""
    if MISSING[path]:
        pytest.skip(f"path {path} not tested: {MISSING[path]}")


def run_estimator(path, cfg, X):
    """Fit and transform ``X`` on ``path``; invert where the estimator can.

    Returns ``dict(Y, names, gain, bias, X_back, X_back_sparse)`` in numpy.
    """
    dtype = X.dtype.type
    Xp = to_path(path, X)
    res = {}
    with on(path):
        if path.startswith("dask_"):
            import sknorm.dask as skd

            est = skd.fit(cfg.make(), Xp)
            out = skd.transform(est, Xp)
            Y = compute(out)
            if path == "dask_frame":
                res["frame_columns"] = list(out.columns)
            if cfg.invertible:
                res["X_back"] = to_numpy(
                    path, compute(skd.inverse_transform(est, out)), dtype
                )
        else:
            est = cfg.make()
            Y = est.fit(Xp).transform(Xp)
            if cfg.invertible:
                res["X_back"] = to_numpy(
                    path, est.inverse_transform(Y), dtype, "inverse_transform"
                )
                if path in ("numpy", "numba"):
                    # The same output handed back as a sparse matrix.
                    back = est.inverse_transform(sp.csr_matrix(Y))
                    res["X_back_sparse"] = np.asarray(
                        back.toarray() if sp.issparse(back) else back
                    )
        res["Y"] = to_numpy(path, Y, dtype)
        res["names"] = [str(n) for n in est.get_feature_names_out()]
        if cfg.affine:
            res["gain"] = as_numpy(est.gain_)
            res["bias"] = as_numpy(est.bias_)
    return res


# -- expected values ---------------------------------------------------------------
_REF_CACHE = {}


def _reference(cfg, X):
    """Long-double ``(Z, C, S)`` for ``X`` under ``cfg`` and their tolerances."""
    key = (X.dtype.str, X.tobytes(), cfg.center, cfg.scale, cfg.eps, repr(cfg.cols))
    if key not in _REF_CACHE:
        Z, C, S = reference_normalize(X, cfg.center, cfg.scale, cfg.eps, cfg.cols)
        unit = EPS32 if X.dtype == np.float32 else EPS64
        with np.errstate(over="ignore"):
            Z64, C64, S64 = (a.astype(np.float64) for a in (Z, C, S))
        tol_z, tol_s = reference_tolerance(
            X, Z64, S64, cfg.cols, cfg.center, cfg.scale, cfg.eps, unit=unit
        )
        grid = TINY32 if X.dtype == np.float32 else TINY
        tol_z = np.maximum(tol_z, 2 * grid)
        tol_c = np.column_stack(
            [
                64 * (unit + EPS_REF) * len(c) * row_max(X[:, c]) + 2 * grid
                for c in cfg.cols
            ]
        )
        _REF_CACHE[key] = (Z, C, S, tol_z, tol_c, tol_s, unit)
    return _REF_CACHE[key]


def _stats_columns(cfg, C, S):
    """The kept-statistics columns, in the estimators' order."""
    out = []
    for g in range(len(cfg.cols)):
        if cfg.center is not None:
            out.append(C[:, g])
        if cfg.scale is not None:
            out.append(S[:, g])
    return out


def expected_output(cfg, X):
    """Reference output of ``cfg`` on ``X`` and its tolerance (float64 arrays)."""
    Z, C, S, tol_z, tol_c, tol_s, unit = _reference(cfg, X)
    keep = cfg.kept
    with np.errstate(over="ignore"):
        # Rounded to the dtype under test: beyond its range the output is inf.
        Z = Z.astype(X.dtype).astype(np.float64)
    cols, tols = [Z[:, keep]], [tol_z[:, keep]]
    if cfg.affine:
        gain, bias, tol_g, tol_b = expected_affine(cfg, X)
        Za = Z.copy()
        tza = tol_z.copy()
        grouped = sorted({j for c in cfg.cols for j in c})
        Za[:, grouped] = Z[:, grouped] * gain[grouped] + bias[grouped]
        z = np.abs(np.nan_to_num(Z[:, grouped]))
        tza[:, grouped] = tol_z[:, grouped] * np.abs(gain[grouped]) + z * tol_g[grouped]
        tza[:, grouped] += tol_b[grouped] + 4 * unit * np.abs(
            np.nan_to_num(Za[:, grouped])
        )
        cols, tols = [Za[:, keep]], [tza[:, keep]]
    if cfg.keep_stats:
        with np.errstate(over="ignore"):
            cols += [a.astype(np.float64) for a in _stats_columns(cfg, C, S)]
        tols += _stats_columns(cfg, tol_c, tol_s)
    return np.column_stack(cols), np.column_stack(tols)


def expected_affine(cfg, X):
    """Reference ``gain_``, ``bias_`` (float64) and rounding bounds for them."""
    Z, _, _, _, _, _, unit = _reference(cfg, X)
    grouped = sorted({j for c in cfg.cols for j in c})
    gain, bias = np.ones(P), np.zeros(P)
    g, b = reference_affine(X[:, grouped], Z[:, grouped])
    gain[grouped], bias[grouped] = g.astype(np.float64), b.astype(np.float64)
    # Moderate data: the sums are backward stable, the slope exact to ~n unit
    # times the ratio of the spreads of x and z.
    n = len(X)
    xmax = np.nanmax(np.abs(X.astype(np.float64)), axis=0)
    tol_g = 256 * unit * n * (np.abs(gain) + xmax)
    tol_b = 256 * unit * n * (np.abs(bias) + xmax)
    return gain, bias, tol_g, tol_b


def inverse_tolerance(cfg, X, res):
    """Rounding bound of ``c + d * (y - b) / g`` per entry (see test_properties)."""
    Z, C, S, _, _, _, unit = _reference(cfg, X)
    grid = TINY32 if X.dtype == np.float32 else TINY
    Xf = X.astype(np.float64)
    gain = res.get("gain", np.ones(P))
    bias = res.get("bias", np.zeros(P))
    tol = np.zeros(X.shape)
    for g, c in enumerate(cfg.cols):
        ctr = np.zeros(len(X)) if cfg.center is None else C[:, g].astype(np.float64)
        d = np.ones(len(X))
        if cfg.scale is not None:
            with np.errstate(over="ignore"):
                d = np.hypot(S[:, g].astype(np.float64), np.sqrt(cfg.eps))
            d[d == 0] = 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.abs(Z[:, c].astype(np.float64))
            terms = np.abs(Xf[:, c]) + np.abs(ctr)[:, None]
            terms += d[:, None] * (z + np.abs(bias[c] / gain[c]))
            tol[:, c] = 64 * unit * len(c) * np.where(np.isnan(terms), 0, terms)
            g_inv = np.maximum(1.0, 1.0 / np.abs(gain[c]))
            tol[:, c] += 4 * grid * (d[:, None] * g_inv) + 4 * grid
    return tol


def quiet():
    """Silence what the inputs are meant to provoke: overflow in the reference's
    float casts and the warning about one-column groups."""
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.filterwarnings("ignore", message=".*single column")


# -- the tests -----------------------------------------------------------------------
_BASELINE = {}


def _baseline(cfg, X, key):
    """The dense numpy engine's results for ``cfg`` on ``X`` (cached)."""
    k = (key, repr(cfg), X.dtype.str)
    if k not in _BASELINE:
        with warnings.catch_warnings():
            quiet()
            _BASELINE[k] = run_estimator("numpy", cfg, X)
    return _BASELINE[k]


def _label(labels, res_row):
    return f"row kind {labels[res_row]!r}"


def check_path(path, cfg, X, labels, key):
    """Compare ``path`` with the reference and with the dense numpy engine."""
    res = run_estimator(path, cfg, X)
    base = _baseline(cfg, X, key)
    expected, tol = expected_output(cfg, X)
    what = f"{cfg!r} on {path}"
    Y = res["Y"]
    assert Y.shape == base["Y"].shape, (
        f"{what}: shape {Y.shape} vs numpy {base['Y'].shape}"
    )
    assert res["names"] == base["names"], (what, res["names"], base["names"])
    assert len(res["names"]) == Y.shape[1], (what, res["names"], Y.shape)
    if "frame_columns" in res:
        assert res["frame_columns"] == res["names"]
    failures = []
    for name, actual, exp, t in [
        ("output vs reference", Y, expected, tol),
        ("output vs numpy engine", Y, base["Y"], 2 * tol),
    ]:
        try:
            assert_within(actual, exp, t, f"{what}: {name}")
        except AssertionError as exc:
            bad = np.argwhere(~(np.abs(np.nan_to_num(actual - exp)) <= t))
            rows = sorted({labels[i] for i, _ in bad}) if bad.size else []
            failures.append(f"{exc}\nrow kinds: {rows}")
    if cfg.affine:
        gain, bias, tol_g, tol_b = expected_affine(cfg, X)
        for name, a, e, t in [
            ("gain_ vs reference", res["gain"], gain, tol_g),
            ("bias_ vs reference", res["bias"], bias, tol_b),
            ("gain_ vs numpy engine", res["gain"], base["gain"], 2 * tol_g),
            ("bias_ vs numpy engine", res["bias"], base["bias"], 2 * tol_b),
        ]:
            try:
                assert_within(a, e, t, f"{what}: {name}")
            except AssertionError as exc:
                failures.append(str(exc))
    if cfg.invertible:
        tol_inv = inverse_tolerance(cfg, X, res)
        checks = [("inverse_transform(transform(X)) vs X", res["X_back"], X, tol_inv)]
        if "X_back_sparse" in res:
            checks.append(
                (
                    "inverse_transform(csr_matrix(transform(X))) vs X",
                    res["X_back_sparse"],
                    X,
                    tol_inv,
                )
            )
        for name, a, e, t in checks:
            try:
                assert_within(a, e, t, f"{what}: {name}")
            except AssertionError as exc:
                bad = np.argwhere(
                    ~(np.abs(np.nan_to_num(a - e.astype(np.float64))) <= t)
                )
                rows = sorted({labels[i] for i, _ in bad}) if bad.size else []
                failures.append(f"{exc}\nrow kinds: {rows}")
    assert not failures, "\n\n".join(failures)


def _estimator_cases():
    cases = []
    for cfg in CONFIGS:
        for path in AVAILABLE:
            if path in SPARSE_PATHS + ["dask_sparse"] and not cfg.sparse_ok:
                continue
            if path.startswith("dask_") and not cfg.dask:
                continue
            cases.append(pytest.param(path, cfg, id=f"{path}-{cfg!r}"))
    return cases


def _affine_cases():
    cases = []
    for cfg in AFFINE_CONFIGS:
        for path in AVAILABLE:
            if path in SPARSE_PATHS + ["dask_sparse"]:
                continue
            if path.startswith("dask_") and not cfg.dask:
                continue
            cases.append(pytest.param(path, cfg, id=f"{path}-{cfg!r}"))
    return cases


DTYPES = [
    pytest.param(np.float64, id="float64"),
    pytest.param(np.float32, id="float32"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path, cfg", _estimator_cases())
def test_estimator_path_matches_reference_and_numpy(path, cfg, dtype):
    X, labels = DATA[dtype]
    with warnings.catch_warnings():
        quiet()
        check_path(path, cfg, X, labels, "data")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path, cfg", _affine_cases())
def test_affine_path_matches_reference_and_numpy(path, cfg, dtype):
    X = AFFINE_DATA[dtype]
    labels = [f"affine row {i}" for i in range(len(X))]
    with warnings.catch_warnings():
        quiet()
        check_path(path, cfg, X, labels, "affine")


# -- function twins ------------------------------------------------------------------
def _function_cases():
    cases = []
    for center, scale in OPTIONS:
        for eps in EPS_VALUES:
            cfg = Config(LayerNormalizer, center=center, scale=scale, eps=eps)
            cases.append(("layer_norm", cfg))
    for eps in EPS_VALUES:
        cases.append(("rms_norm", Config(RMSNormalizer, eps=eps)))
    for i, (_name, groups) in enumerate(GROUPS.items()):
        for center, scale in [
            ("mean", "std"),
            ("median", "iqr"),
            (None, "std"),
            (None, None),
        ]:
            eps = EPS_VALUES[i % len(EPS_VALUES)]
            cfg = Config(
                GroupNormalizer, groups=groups, center=center, scale=scale, eps=eps
            )
            cases.append(("group_norm", cfg))
    out = []
    for func, cfg in cases:
        for path in AVAILABLE:
            if path.startswith("dask_"):
                continue  # sknorm.dask has no function twins
            if path in SPARSE_PATHS and not cfg.sparse_ok:
                continue
            out.append(pytest.param(path, func, cfg, id=f"{path}-{func}-{cfg!r}"))
    return out


def call_function(path, func, cfg, X):
    """``Z, C, S`` of the function twin on ``path``, in numpy (C, S 2-D)."""
    Xp = to_path(path, X)
    with on(path):
        if func == "layer_norm":
            Z, c, s = layer_norm(
                Xp, center=cfg.center, scale=cfg.scale, eps=cfg.eps, return_stats=True
            )
        elif func == "rms_norm":
            Z, s = rms_norm(Xp, eps=cfg.eps, return_stats=True)
            c = None
        else:
            Z, c, s = group_norm(
                Xp,
                cfg.params["groups"],
                center=cfg.center,
                scale=cfg.scale,
                eps=cfg.eps,
                return_stats=True,
            )
    Z = to_numpy(path, Z, X.dtype.type)
    stats = []
    for a in (c, s):
        if a is not None:
            a = as_numpy(a) if not isinstance(a, np.ndarray) else a
            stats.append(np.asarray(a).reshape(len(X), -1))
        else:
            stats.append(None)
    return Z, stats[0], stats[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("path, func, cfg", _function_cases())
def test_function_path_matches_reference_and_numpy(path, func, cfg, dtype):
    X, labels = DATA[dtype]
    with warnings.catch_warnings():
        quiet()
        Z, C, S = call_function(path, func, cfg, X)
        Z0, C0, S0 = call_function("numpy", func, cfg, X)
    Z_ref, C_ref, S_ref, tol_z, tol_c, tol_s, _ = _reference(cfg, X)
    with np.errstate(over="ignore"):
        Z_ref, C_ref, S_ref = (a.astype(np.float64) for a in (Z_ref, C_ref, S_ref))
        Z_ref = Z_ref.astype(X.dtype).astype(np.float64)  # inf beyond the range
    what = f"{func} {cfg!r} on {path}"
    # Returned statistics: center 0 for center=None, scale 1 for scale=None.
    # (documented; all-NaN rows included).
    if cfg.center is None:
        C_ref, tol_c = np.zeros_like(C_ref), 0 * tol_c
    if cfg.scale is None:
        S_ref, tol_s = np.ones_like(S_ref), 0 * tol_s
    failures = []
    checks = [
        ("output vs reference", Z, Z_ref, tol_z),
        ("output vs numpy engine", Z, Z0, 2 * tol_z),
        ("scale vs reference", S, S_ref, tol_s),
        ("scale vs numpy engine", S, S0, 2 * tol_s),
    ]
    if func != "rms_norm":
        checks += [
            ("center vs reference", C, C_ref, tol_c),
            ("center vs numpy engine", C, C0, 2 * tol_c),
        ]
    for name, a, e, t in checks:
        try:
            # The dtype of the returned statistics is the numpy engine's.
            ref_dtype = {"output": Z0, "scale": S0, "center": C0}[name.split()[0]]
            assert a.dtype == ref_dtype.dtype, f"{what}: {name}: dtype {a.dtype}"
            assert_within(a, e, t, f"{what}: {name}")
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


# -- one-off seams --------------------------------------------------------------------
@pytest.mark.parametrize("container", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_keep_stats_keeps_dtype(container, dtype):
    X = getattr(sp, f"{container}_matrix")(
        np.array([[1.0, 0, 3, 4], [0, 2, 0, 5]], dtype)
    )
    for est in (
        RMSNormalizer(keep_stats=True),
        LayerNormalizer(center=None, scale=None, keep_stats=True),
        GroupNormalizer(2, center=None, keep_stats=True),
    ):
        Y = est.fit_transform(X)
        assert Y.dtype == dtype, f"{est!r}: {dtype.__name__} sparse in, {Y.dtype} out"
        assert est.inverse_transform(Y).dtype == dtype
