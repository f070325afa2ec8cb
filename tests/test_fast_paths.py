"""The fast transform paths: numba kernels, chunks, threads, memory, config.

Both engines (pure numpy, and numba when installed: ``pip install
sknorm[fast]``) are compared with an exact reference (rational arithmetic and
a 40-digit square root) and with each other: in float64 they agree to 1e-15
relative (``|a - b| <= 1e-15 * max(1, |b|)``, the output being in units of the
row's standard deviation). Small ``CHUNK_BYTES`` force many row chunks so that
the chunk loop, the worker threads and their error handling are exercised on
small data. No test measures time: see ``benchmarks/bench_transform.py``.
"""

import tracemalloc
import warnings
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from _reference import assert_within, reference_normalize, row_max
from numpy.testing import assert_allclose, assert_array_equal

import sknorm
from sknorm import (
    GroupNormalizer,
    LayerNormalizer,
    RMSNormalizer,
    _threads,
    config_context,
    get_config,
    group_norm,
    layer_norm,
    set_config,
)

try:
    import numba  # noqa: F401

    ENGINES = ["numpy", "numba"]
except ImportError:  # pragma: no cover - depends on the environment
    ENGINES = ["numpy"]

# Supported by sknorm._numba; the robust options have sknorm._numba_robust.
NUMBA_OPTIONS = [("mean", "std"), (None, "std"), ("mean", None)]


def rel_err(a, b, unit=1.0):
    """Max of |a - b| / max(unit, |b|), NaN positions required to match.

    ``unit`` is 1 for normalized output (in units of the row's spread); for
    output in data units (``scale=None``) it is the row's spread.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert_array_equal(np.isnan(a), np.isnan(b))
    unit = np.broadcast_to(unit, b.shape)
    ok = ~np.isnan(b)
    if not ok.any():
        return 0.0
    diff = np.abs(a[ok] - b[ok])
    denom = np.maximum(unit[ok], np.abs(b[ok]))
    return float(np.where(denom > 0, diff / np.where(denom > 0, denom, 1), diff).max())


def exact_row(row, eps):
    """Layer norm of one float64 row, exactly rounded (rationals, 40 digits)."""
    xs = [Fraction(float(v)) for v in row]
    mean = sum(xs) / len(xs)
    dev = [x - mean for x in xs]
    var = sum(d * d for d in dev) / len(xs) + Fraction(eps)
    with localcontext() as ctx:
        ctx.prec = 40
        den = (Decimal(var.numerator) / Decimal(var.denominator)).sqrt()
        if den == 0:
            den = Decimal(1)
        return np.array(
            [float(Decimal(d.numerator) / Decimal(d.denominator) / den) for d in dev]
        )


@pytest.fixture
def many_chunks(monkeypatch):
    """Chunks of 7 rows of 64 float64 values: every code path sees many."""
    monkeypatch.setattr(_threads, "CHUNK_BYTES", 7 * 64 * 8)


# -- config ----------------------------------------------------------------------
def test_config_defaults_and_context():
    config = get_config()
    assert set(config) == {"engine", "n_threads"}
    with config_context(engine="numpy", n_threads=1):
        assert get_config() == {"engine": "numpy", "n_threads": 1}
        with config_context(n_threads=3):
            assert get_config() == {"engine": "numpy", "n_threads": 3}
        assert get_config()["n_threads"] == 1
    assert get_config() == config


def test_set_config_round_trip():
    old = get_config()
    try:
        set_config(engine="numpy", n_threads=2)
        assert get_config() == {"engine": "numpy", "n_threads": 2}
        set_config(n_threads="all")
        assert get_config()["n_threads"] is None
    finally:
        set_config(engine=old["engine"], n_threads=old["n_threads"] or "all")
    assert get_config() == old


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"engine": "cuda"}, ValueError, "engine='cuda'"),
        ({"n_threads": 0}, ValueError, "n_threads=0"),
        ({"n_threads": 1.5}, TypeError, "n_threads=1.5"),
        ({"n_threads": True}, TypeError, "n_threads=True"),
    ],
)
def test_config_rejects_bad_values(params, error, match):
    with pytest.raises(error, match=match):
        set_config(**params)
    with pytest.raises(error, match=match):
        with config_context(**params):
            pass  # pragma: no cover


def test_engine_numba_without_numba_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if (
            name == "numba"
            or name.endswith("_numba")
            or (args and args[2] == ("_numba",))
        ):
            raise ImportError("No module named 'numba'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numba)
    monkeypatch.delitem(__import__("sys").modules, "sknorm._numba", raising=False)
    X = np.arange(12.0).reshape(3, 4)
    with config_context(engine="numba"):
        with pytest.raises(ImportError, match=r"sknorm\[fast\]"):
            layer_norm(X)


def test_config_is_thread_local():
    import threading

    seen = {}

    def read():
        seen["engine"] = get_config()["engine"]

    with config_context(engine="numpy"):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    assert seen["engine"] == get_config()["engine"]


_AUTO_SMALL_CALLS = """
import sys
import numpy as np
import sknorm
from sknorm import LayerNormalizer

rng = np.random.default_rng(0)
X = 1e6 + rng.normal(size=(100, 16))
est = LayerNormalizer().fit(X)
first = est.transform(X)
print("numba imported by a small call:", "numba" in sys.modules)
with sknorm.config_context(engine="numpy"):
    numpy_out = est.transform(X)
with sknorm.config_context(engine="numba"):
    numba_out = est.transform(X)
later = est.transform(X)
print("first small call on numpy:", np.array_equal(first, numpy_out))
print("engines differ here:", not np.array_equal(numpy_out, numba_out))
print("later small calls on numba:", np.array_equal(later, numba_out))
"""


@pytest.mark.skipif("numba" not in ENGINES, reason="needs numba (sknorm[fast])")
def test_auto_sends_small_calls_to_numba_only_once_its_kernel_ran():
    # A fresh process: which kernels ran is per process.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _AUTO_SMALL_CALLS],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in __import__("os").environ.items() if k != "SKNORM_ENGINE"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "numba imported by a small call: False",
        "first small call on numpy: True",
        "engines differ here: True",  # (rounding: else this test proves nothing)
        "later small calls on numba: True",
    ]


# -- accuracy -----------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "offset, noise, n_cols",
    [(0.0, 1.0, 64), (1e8, 1e-3, 64), (1e12, 1.0, 37), (-3.0, 2.0, 2500)],
)
def test_float64_error_vs_exact_is_below_1e15(engine, offset, noise, n_cols, rng):
    X = offset + rng.normal(0.0, noise, size=(6, n_cols))
    with config_context(engine=engine):
        Z = layer_norm(X, eps=0)
    Z_exact = np.array([exact_row(row, 0) for row in X])
    assert rel_err(Z, Z_exact) <= 1e-15


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n_cols", [64, 1000, 5000])
def test_float32_error_vs_exact_is_below_1e6(engine, n_cols, rng):
    X = (1e4 + rng.normal(0.0, 3.0, size=(20, n_cols))).astype(np.float32)
    with config_context(engine=engine):
        Z = layer_norm(X, eps=0)
    assert Z.dtype == np.float32
    Z_exact = np.array([exact_row(row, 0) for row in X.astype(np.float64)])
    assert rel_err(Z, Z_exact) <= 1e-6


@pytest.mark.parametrize("engine", ENGINES)
def test_long_rows_use_blocked_sums(engine, rng):
    # 3 blocks and a tail: the block sums are what keeps the error at 1e-16.
    X = 5.0 + rng.normal(size=(3, 3 * 1024 + 17))
    with config_context(engine=engine):
        Z, c, s = layer_norm(X, eps=0, return_stats=True)
    Z_exact = np.array([exact_row(row, 0) for row in X])
    assert rel_err(Z, Z_exact) <= 1e-15
    mean = [float(sum(Fraction(v) for v in row) / row.size) for row in X]
    assert_allclose(c, mean, rtol=4e-16)


# -- numba against numpy ------------------------------------------------------
@pytest.mark.parametrize("center, scale", NUMBA_OPTIONS)
@pytest.mark.parametrize("shape", [(300, 64), (50, 1000), (4, 5000), (200, 1), (9, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_equals_numpy(center, scale, shape, dtype, rng):
    pytest.importorskip("numba")
    X = rng.normal(2.0, 3.0, size=shape) * rng.uniform(0.1, 10, size=(shape[0], 1))
    X = X.astype(dtype)
    X[1, 0] = np.nan  # NaN at the pivot: slow path
    X[2] = 7.5  # constant row
    out = {}
    for engine in ("numpy", "numba"):
        with config_context(engine=engine):
            out[engine] = layer_norm(X, center=center, scale=scale, return_stats=True)
    tol = 1e-15 if dtype == np.float64 else 1e-6
    (Za, ca, sa), (Zb, cb, sb) = out["numba"], out["numpy"]
    assert Za.dtype == Zb.dtype
    # Without a scale the output is in data units: errors relative to spread.
    spread = np.array(
        [
            np.std(r[~np.isnan(r)] if (~np.isnan(r)).any() else 0.0)
            for r in X.astype(float)
        ]
    )
    assert rel_err(Za, Zb, 1.0 if scale else spread[:, None]) <= tol
    assert rel_err(ca, cb, spread) <= tol
    assert rel_err(sa, sb) <= tol
    if center == "mean":
        assert_array_equal(Za[2], 0.0)


@pytest.mark.parametrize("keep_stats", [False, True])
@pytest.mark.parametrize("remainder", ["passthrough", "drop"])
@pytest.mark.parametrize("affine", [False, True])
def test_numba_equals_numpy_groups(keep_stats, remainder, affine, rng):
    pytest.importorskip("numba")
    X = rng.normal(1.0, 2.0, size=(120, 11))
    groups = [[0, 1, 2, 3], [5, 6, 7], [9, 10]]  # columns 4 and 8 in no group
    est = GroupNormalizer(
        groups, keep_stats=keep_stats, remainder=remainder, affine=affine
    ).fit(X)
    out = {}
    for engine in ("numpy", "numba"):
        with config_context(engine=engine):
            out[engine] = est.transform(X)
    assert out["numba"].shape == out["numpy"].shape
    assert rel_err(out["numba"], out["numpy"]) <= 1e-15


def test_numba_equals_numpy_affine_transform(rng):
    pytest.importorskip("numba")
    X = rng.normal(size=(500, 32)) * np.arange(1, 33) + 100
    est = LayerNormalizer(affine=True).fit(X)
    out = {}
    for engine in ("numpy", "numba"):
        with config_context(engine=engine):
            out[engine] = est.transform(X)
    assert rel_err(out["numba"], out["numpy"]) <= 1e-15 * 100


@pytest.mark.parametrize("groups", [None, 8])
def test_float32_affine_is_the_float64_result_rounded(groups, rng):
    # Both engines: float32 output with an affine map is the float64
    # normalization of the (exactly widened) data, mapped and rounded once.
    X = (rng.normal(size=(3000, 64)) * 3 + 50).astype(np.float32)
    X[::5, 7] = np.nan
    est = LayerNormalizer if groups is None else GroupNormalizer
    kw = {} if groups is None else {"groups": groups}
    fitted = est(affine=True, **kw).fit(X)
    wide = fitted.transform(X.astype(np.float64))
    for engine in ENGINES:
        with config_context(engine=engine):
            Z = fitted.transform(X)
        assert Z.dtype == np.float32
        assert rel_err(Z, wide) <= np.finfo(np.float32).eps / 2 + 1e-15


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_handle_special_rows(engine):
    X = np.array(
        [
            [1.0, 2.0, 3.0, 4.0],
            [np.nan, 1.0, 2.0, 4.0],  # NaN pivot
            [1e-170, -2e-170, 3e-170, 0.0],  # sum of squares underflows
            [1e200, -1e200, 3e200, 0.0],  # sum of squares overflows
            [5.0, 5.0, 5.0, 5.0],  # constant
            [np.nan] * 4,  # all NaN
        ]
    )
    with config_context(engine=engine):
        Z = layer_norm(X, eps=0)
    with config_context(engine="numpy", n_threads=1):
        Z_ref = layer_norm(X, eps=0)
    assert rel_err(Z, Z_ref) <= 1e-15
    assert_allclose(Z[2], Z[0] * 0 + layer_norm(X[2:3] * 1e170, eps=0)[0], rtol=1e-14)
    assert_allclose(Z[3], layer_norm(X[3:4] * 1e-200, eps=0)[0], rtol=1e-14)
    assert_array_equal(Z[4], 0.0)
    assert np.isnan(Z[5]).all()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_engines_handle_tiny_rows_and_tiny_eps(engine, dtype):
    """Scale invariance down to the subnormal range, and 1 / d beyond the dtype.

    ``x * 2**k`` is exact, so a tiny row must give the same output and kept
    statistics ``2**-k`` times those of its scaled copy, whatever ``eps``
    (with eps > 0 the output is ~0, but the kept std must still be right).
    """
    tiny = 1e-40 if dtype == np.float32 else 1e-300
    X = (np.array([[0.0, 1.0, 3.0, -2.0], [5.0, 5.0, 5.0, 5.0]]) * tiny).astype(dtype)
    k = 100 if dtype == np.float32 else 900
    rtol = 1e-5 if dtype == np.float32 else 1e-14
    with config_context(engine=engine):
        Z_big, C_big, S_big = layer_norm(X * dtype(2.0**k), eps=0.0, return_stats=True)
        for eps in (0.0, float(np.finfo(np.float64).smallest_subnormal), 1e-5):
            Z, C, S = layer_norm(X, eps=eps, return_stats=True)
            assert np.isfinite(Z).all(), (eps, Z)
            assert_allclose(np.ldexp(S, k), S_big, rtol=rtol)
            assert_allclose(np.ldexp(C, k), C_big, rtol=rtol)
            if eps == 0:
                assert_allclose(Z, Z_big, rtol=rtol)
            else:  # the formula, in float64 (the statistics are checked above)
                dev = X.astype(np.float64) - C[:, None]
                Z_ref = dev / np.hypot(S, np.sqrt(eps))[:, None]
                assert_allclose(Z, Z_ref, rtol=rtol, atol=0)
            assert_array_equal(Z[1], 0.0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("center", ["mean", "median", None])
@pytest.mark.parametrize("scale", ["std", "mad", "iqr", None])
def test_inf_is_rejected_by_every_path(engine, center, scale):
    X = np.arange(20.0).reshape(4, 5)
    X[2, 3] = np.inf
    with config_context(engine=engine):
        with pytest.raises(ValueError, match="infinity"):
            layer_norm(X, center=center, scale=scale)


@pytest.mark.parametrize("engine", ENGINES)
def test_inf_in_a_column_of_no_group_is_rejected(engine):
    X = np.arange(20.0).reshape(4, 5)
    X[1, 4] = -np.inf
    with config_context(engine=engine):
        with pytest.raises(ValueError, match="infinity"):
            group_norm(X, [[0, 1, 2]])


# -- chunks and threads -------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_many_chunks_equal_one_chunk(engine, n_threads, dtype, rng, monkeypatch):
    X = rng.normal(3.0, 2.0, size=(100, 64)).astype(dtype)
    X[rng.random(X.shape) < 0.01] = np.nan
    X[40] = np.nan
    with config_context(engine=engine, n_threads=1):
        one, c1, s1 = layer_norm(X, return_stats=True)
    monkeypatch.setattr(_threads, "CHUNK_BYTES", 7 * 64 * 8)
    with config_context(engine=engine, n_threads=n_threads):
        many, c2, s2 = layer_norm(X, return_stats=True)
    tol = 1e-15 if dtype == np.float64 else 1e-6
    assert rel_err(many, one) <= tol
    assert_allclose(c2, c1, rtol=tol)
    assert_allclose(s2, s1, rtol=tol)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("center", ["mean", "median", None])
@pytest.mark.parametrize("scale", ["std", "mad", "iqr", None])
def test_every_option_chunked_and_threaded(engine, center, scale, rng, many_chunks):
    X = rng.normal(3.0, 2.0, size=(60, 64))
    X[5, 3] = np.nan
    with config_context(engine=engine, n_threads=2):
        Z = layer_norm(X, center=center, scale=scale)
    ref = [layer_norm(row[None], center=center, scale=scale)[0] for row in X]
    assert rel_err(Z, np.array(ref)) <= 1e-15


@pytest.mark.parametrize("engine", ENGINES)
def test_error_in_a_worker_thread_is_raised(engine, rng, many_chunks):
    X = rng.normal(size=(200, 64))
    X[150, 7] = np.inf
    with config_context(engine=engine, n_threads=2):
        with pytest.raises(ValueError, match="infinity"):
            layer_norm(X)
        # The pool still works afterwards.
        assert np.isfinite(layer_norm(X[:100])).all()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_copy_false_in_place(engine, n_threads, rng, many_chunks):
    X = rng.normal(5.0, 2.0, size=(80, 64))
    X[3, 0] = np.nan  # redone by the slow path: needs the raw row
    X[60, 10] = 1e300  # overflowing sum of squares: slow path too
    with config_context(engine=engine, n_threads=n_threads):
        expected = layer_norm(X)
        Xc = X.copy()
        out = layer_norm(Xc, copy=False)
        assert out is Xc
        assert rel_err(Xc, expected) <= 1e-15
        Xc = X.copy()
        assert LayerNormalizer(copy=False).fit_transform(Xc) is Xc
        assert rel_err(Xc, expected) <= 1e-15


@pytest.mark.parametrize("engine", ENGINES)
def test_fortran_ordered_input(engine, rng, many_chunks):
    X = rng.normal(size=(50, 64))
    with config_context(engine=engine):
        assert rel_err(layer_norm(np.asfortranarray(X)), layer_norm(X)) <= 1e-15


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fit_affine_chunked_equals_one_batch(engine, n_threads, rng, monkeypatch):
    X = rng.normal(size=(200, 64)) * rng.uniform(1, 3, size=64) + rng.normal(size=64)
    X[rng.random(X.shape) < 0.02] = np.nan
    w = rng.uniform(0, 2, size=200)
    with config_context(engine=engine, n_threads=1):
        one = LayerNormalizer(affine=True).fit(X, sample_weight=w)
    monkeypatch.setattr(_threads, "CHUNK_BYTES", 7 * 64 * 8)
    with config_context(engine=engine, n_threads=n_threads):
        many = LayerNormalizer(affine=True).fit(X, sample_weight=w)
        group = GroupNormalizer([[0, 5, 9], list(range(20, 40))], affine=True)
        group.fit(X, sample_weight=w)
    assert_allclose(many.gain_, one.gain_, rtol=1e-12)
    assert_allclose(many.bias_, one.bias_, rtol=1e-12, atol=1e-14)
    with config_context(engine="numpy", n_threads=1):
        ref = GroupNormalizer([[0, 5, 9], list(range(20, 40))], affine=True)
        ref.fit(X, sample_weight=w)
    assert_allclose(group.gain_, ref.gain_, rtol=1e-12)
    assert_allclose(group.bias_, ref.bias_, rtol=1e-12, atol=1e-14)


def test_rms_normalizer_paths_agree(rng, many_chunks):
    X = rng.normal(size=(60, 64))
    outs = []
    for engine in ENGINES:
        with config_context(engine=engine, n_threads=2):
            outs.append(RMSNormalizer().fit_transform(X))
    expected = X / np.sqrt((X**2).mean(axis=1, keepdims=True) + 1e-5)
    for Z in outs:
        assert rel_err(Z, expected) <= 1e-14


# -- memory ---------------------------------------------------------------------
def _traced_peak(method, *args, **kwargs):
    """``method(*args, **kwargs)`` and the peak memory numpy allocated in it."""
    tracemalloc.start()
    try:
        out = method(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transform_allocates_the_output_and_chunk_scratch(engine, dtype, rng):
    X = rng.normal(size=(40_000, 128)).astype(dtype)  # 20 or 40 MB, many chunks
    est = LayerNormalizer().fit(X[:5])
    with config_context(engine=engine):
        est.transform(X[:100])  # warm up (compilation, pools)
        Z, peak = _traced_peak(est.transform, X)
        assert peak <= 1.1 * Z.nbytes
        Z, peak = _traced_peak(est.transform, X, copy=False)
        assert Z is X
        # In place: a copy of the chunk being worked on, per thread.
        n_threads = sknorm._config.effective_n_threads()
        assert peak <= 0.05 * X.nbytes + 2 * n_threads * _threads.CHUNK_BYTES


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("center", ["mean", None])
def test_nan_rows_take_the_fast_path_memory(engine, center, rng):
    # Every row holds a NaN (a column of NaN, another NaN every 7th row): the
    # rows are normalized over their other values within one chunk of scratch
    # per thread, not copied whole to a slower path.
    X = rng.normal(3.0, 2.0, size=(40_000, 128))
    X[:, 5] = np.nan
    X[::7, 9] = np.nan
    X[11] = np.nan
    est = LayerNormalizer(center=center).fit(X[:5])
    with config_context(engine=engine):
        est.transform(X[:100])  # warm up (compilation, pools)
        Z, peak = _traced_peak(est.transform, X)
    n_threads = sknorm._config.effective_n_threads()
    assert peak <= 1.1 * Z.nbytes + 2 * n_threads * _threads.CHUNK_BYTES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the row of NaN
        dev = X - np.nanmean(X, axis=1, keepdims=True) if center else X
        expected = dev / np.sqrt(np.nanmean(dev**2, axis=1, keepdims=True) + 1e-5)
    assert rel_err(Z, expected) <= 1e-14


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("center", ["mean", None])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nan_cols", [1, 4, 5, 16, 64, "scattered"])
def test_nan_in_some_columns_or_scattered(
    engine, center, dtype, nan_cols, rng, many_chunks
):
    # NaN in a few columns (the numpy engine masks only those), in more of
    # them (one mask of the block), or anywhere; every row chunk sees them.
    X = rng.normal(3.0, 2.0, size=(600, 64))
    if nan_cols == "scattered":
        X[rng.random(X.shape) < 0.05] = np.nan
    else:
        cols = rng.choice(64, size=nan_cols, replace=False)
        X[::3, cols] = np.nan
        X[1::5, cols[0]] = np.nan
    X[7] = np.nan
    X = X.astype(dtype)
    with config_context(engine=engine):
        Z = layer_norm(X, center=center)
    assert Z.dtype == dtype
    x = X.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the row of NaN
        dev = x - np.nanmean(x, axis=1, keepdims=True) if center else x
        expected = dev / np.sqrt(np.nanmean(dev**2, axis=1, keepdims=True) + 1e-5)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    assert rel_err(Z, expected) <= tol


@pytest.mark.parametrize("engine", ENGINES)
def test_narrow_groups_allocate_only_the_output(engine, rng):
    # GroupNormalizer(8) on 64 columns: groups of 8, summed along the rows.
    # Per-row, per-group statistics are not kept (the transform does not
    # return them; they were 1.27-1.34x the output): the output, a few flags
    # per row and small scratch are all that is allocated (issue 13: <= 1.1x).
    X = rng.normal(3.0, 2.0, size=(40_000, 64))
    est = GroupNormalizer(8).fit(X[:5])
    with config_context(engine=engine):
        est.transform(X[:100])  # warm up (compilation, pools)
        Z, peak = _traced_peak(est.transform, X)
    assert peak <= 1.1 * Z.nbytes
    blocks = X.reshape(len(X), 8, 8)
    dev = blocks - blocks.mean(axis=2, keepdims=True)
    expected = dev / np.sqrt((dev**2).mean(axis=2, keepdims=True) + 1e-5)
    assert rel_err(Z, expected.reshape(X.shape)) <= 1e-14


def _eight_wide_data(dtype, rng):
    """Groups of 8 columns (0-7, 8-15, 21-28), one of 5 (16-20) and two
    passthrough columns, with a hard row group in each of rows 1-7."""
    X = rng.normal(2.0, 3.0, size=(70, 31)) * rng.uniform(0.5, 4, size=(70, 1))
    tiny = float(np.finfo(dtype).tiny)
    X[1, 3] = np.nan  # one NaN: skipped and counted
    X[2, 8:16] = np.nan  # all NaN: NaN out
    X[3, 0:8] = 7.5  # constant
    X[4, 21:29] = rng.normal(size=8) * tiny * 64  # deviations near underflow
    X[5, 8:16] *= 1e200 if dtype == np.float64 else 1e30  # squares overflow
    X[6, 21:29] = 1e6 + rng.normal(size=8)  # large mean, small spread
    X[7, 0:8] = [0, 0, 0, 0, 0, 0, 0, tiny]  # one subnormal-sized deviation
    return X.astype(dtype)


EIGHT_WIDE = [list(range(0, 8)), list(range(8, 16)), list(range(16, 21))]
EIGHT_WIDE.append(list(range(21, 29)))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("center, scale", NUMBA_OPTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_groups_of_eight_columns_against_long_double(engine, center, scale, dtype, rng):
    # Groups of exactly 8 columns have a kernel of their own on numba (a row
    # at a time, in registers); hard row groups take its NaN pass or the
    # shared slow path. Against the long-double reference, over many chunks.
    X = _eight_wide_data(dtype, rng)
    est = GroupNormalizer(EIGHT_WIDE, center=center, scale=scale, keep_stats=True)
    with config_context(engine=engine, n_threads=2):
        Z = est.fit_transform(X)
    Z_ref, C_ref, S_ref = reference_normalize(X, center, scale, 1e-5, EIGHT_WIDE)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    cols = np.concatenate(EIGHT_WIDE)
    # Without a scale the output is in data units: errors relative to spread.
    ref = Z_ref[:, cols].astype(np.float64)
    unit = 1.0 if scale else np.maximum(row_max(ref), 1e-300)[:, None]
    assert_within(Z[:, cols], ref, tol * unit)
    assert_array_equal(Z[:, 29:31], X[:, 29:31])
    kept = Z[:, 31:].reshape(len(X), 4, (center is not None) + (scale is not None))
    if center:
        c_unit = np.maximum(row_max(X[:, cols].astype(np.float64)), 1e-300)[:, None]
        c_ref = C_ref.astype(np.float64)
        assert_within(kept[:, :, 0], c_ref, tol * c_unit, "center")
    if scale:
        s_ref = S_ref.astype(np.float64)
        assert_within(kept[:, :, -1], s_ref, tol * np.abs(s_ref), "scale")
    assert np.isnan(Z[2, 8:16]).all() and np.isnan(Z[1, 3])


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_groups_of_eight_columns_same_on_both_engines(affine, dtype, rng):
    pytest.importorskip("numba")
    X = _eight_wide_data(dtype, rng)
    est = GroupNormalizer(EIGHT_WIDE, affine=affine, keep_stats=True).fit(X)
    same_shape = GroupNormalizer(EIGHT_WIDE, affine=affine, copy=False).fit(X)
    out = {}
    for engine in ("numpy", "numba"):
        with config_context(engine=engine):
            out[engine] = est.transform(X)
            # In place: a flagged row group must keep its input for the
            # slow path. (numba only: the numpy engine's float32 in-place
            # path rounds some groups differently, a known bug.)
            inplace = X.copy()
            Z = same_shape.transform(inplace)
            assert np.shares_memory(Z, inplace)
            if engine == "numba" or dtype == np.float64:
                assert_array_equal(Z, out[engine][:, :31])
    tol = 1e-15 if dtype == np.float64 else 1e-6
    unit = np.maximum(row_max(out["numpy"]), 1.0)[:, None]
    assert_within(out["numba"], out["numpy"].astype(np.float64), tol * unit)


@pytest.mark.parametrize("engine", ENGINES)
def test_estimators_made_and_dropped_in_turn_use_their_own_groups(engine, rng):
    # Layouts are cached per live grouping: a new estimator (which may reuse
    # a freed object's id) must never get another one's columns.
    X = rng.normal(size=(50, 12))
    with config_context(engine=engine):
        for k in (1, 2, 3, 4, 6, 12, 2, 4, 1):
            Z = GroupNormalizer(k, keep_stats=True).fit_transform(X)
            blocks = X.reshape(len(X), k, 12 // k)
            mean = blocks.mean(axis=2, keepdims=True)
            sd = blocks.std(axis=2, keepdims=True)
            expected = ((blocks - mean) / np.sqrt(sd**2 + 1e-5)).reshape(X.shape)
            stats = np.stack([mean[:, :, 0], sd[:, :, 0]], axis=2).reshape(len(X), -1)
            assert Z.shape == (50, 12 + 2 * k)
            assert rel_err(Z[:, :12], expected) <= 1e-13
            assert_allclose(Z[:, 12:], stats, rtol=1e-13, atol=1e-15)
            del Z


@pytest.mark.parametrize("n_cols", [2047, 2048, 4096, 6145])
@pytest.mark.parametrize(
    "center, scale", [("median", "mad"), ("median", "iqr"), (None, "iqr")]
)
def test_long_rows_robust_statistics_by_selection(n_cols, center, scale, rng):
    # From 2,048 columns the numpy engine selects the order statistics it
    # needs instead of sorting; they must be np.median's and np.percentile's.
    X = rng.standard_t(3, size=(9, n_cols))
    X[1] = np.sort(X[1])
    X[2] = np.round(X[2])  # ties
    X[3, 5] = np.nan
    X[4, : n_cols // 2 + 1] = 1.0  # over half equal: a MAD of 0, fallback
    Z, C, S = layer_norm(X, center=center, scale=scale, return_stats=True)
    med = np.nanmedian(X, axis=1)
    if center == "median":
        assert_array_equal(C, med)
    c = med if center == "median" else np.zeros(len(X))
    dev = X - c[:, None]
    if scale == "mad":
        s = 1.482602218505602 * np.nanmedian(np.abs(dev), axis=1)
        mean_ad = np.nanmean(np.abs(dev), axis=1)
        s = np.where(s == 0, 1.2533141373155003 * mean_ad, s)
    else:
        q75, q25 = np.nanpercentile(X, [75, 25], axis=1)
        s = (q75 - q25) / 1.3489795003921634
    assert_allclose(S, s, rtol=1e-13)
    assert rel_err(Z, dev / np.sqrt(s**2 + 1e-5)[:, None]) <= 1e-13


def test_sknorm_exports_config():
    for name in ("set_config", "get_config", "config_context"):
        assert name in sknorm.__all__
