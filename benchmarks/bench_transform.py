"""Benchmark sknorm's transform against the memory roofline and other tools.

Run ``python benchmarks/bench_transform.py`` (``--quick`` for a version of
under a minute on smaller arrays). Everything is measured in one process,
with the repeats of all methods interleaved (so that a noisy neighbour slows
all of them alike), and each time is the median over the repeats. The
reference is the *roofline*: an allocating copy of ``X`` (``np.multiply(X,
1.0)``: read ``X`` once, write a new array once), measured in the same run;
the *limit* is the same copy split over all threads (each writes its rows of
a new array), the fastest a multi-threaded transform can be.

Printed, as markdown tables:

* transform time and ratio to the roofline per size and dtype, for sknorm's
  numpy engine and numba engine (all threads and one thread), the threaded
  copy, naive numpy, scikit-learn's ``StandardScaler``/``Normalizer`` and
  PyTorch's ``layer_norm`` (if torch is installed);
* peak memory of one transform (tracemalloc, which sees numpy's allocations)
  divided by the size of the output;
* per-call overhead on a small input (100 x 16) against ``StandardScaler``;
* every case of issue 13 (NaN rows, groups, robust options, ``fit`` with
  ``affine=True``, float32, clean data against the threaded copy), each
  against its baseline from the same run, with its target and peak memory;
* (full run only) the other options (kept statistics, in place, RMS) against
  ``transform``.
"""

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.preprocessing import Normalizer, StandardScaler

import sknorm
from sknorm import LayerNormalizer

try:
    import torch
except ImportError:  # pragma: no cover - optional
    torch = None

try:
    import numba
except ImportError:  # pragma: no cover - optional
    numba = None


def n_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def roofline(X):
    return np.multiply(X, 1.0)


_POOL = []


def threaded_copy(n_threads):
    """An allocating copy split over threads (each writes its rows of a new
    array): the fastest a multi-threaded transform can be (the limit row)."""

    def run(X):
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max(1, n_threads)))
        out = np.empty_like(X)
        bounds = np.linspace(0, len(X), n_threads + 1).astype(int)
        parts = [
            _POOL[0].submit(np.multiply, X[lo:hi], 1.0, out=out[lo:hi])
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for p in parts:
            p.result()
        return out

    return run


def naive_numpy(X):
    mu = X.mean(axis=1, keepdims=True)
    var = X.var(axis=1, keepdims=True)
    return (X - mu) / np.sqrt(var + 1e-5)


def sknorm_transform(engine, n_threads):
    est = LayerNormalizer()

    def run(X):
        with sknorm.config_context(engine=engine, n_threads=n_threads):
            return est.transform(X)

    return run


def sklearn_transform(cls, X):
    est = cls().fit(X[: min(len(X), 1000)])
    return est.transform


def torch_layer_norm(n_threads):
    def run(X):
        old = torch.get_num_threads()
        torch.set_num_threads(n_threads)
        try:
            t = torch.from_numpy(X)
            return torch.nn.functional.layer_norm(t, (X.shape[1],), eps=1e-5)
        finally:
            torch.set_num_threads(old)

    return run


def methods(X, threads, quick=False):
    out = {"roofline": roofline, f"copy, {threads} threads": threaded_copy(threads)}
    out["sknorm numpy"] = sknorm_transform("numpy", threads)
    out["sknorm numpy, 1 thread"] = sknorm_transform("numpy", 1)
    if numba is not None:
        out["sknorm numba"] = sknorm_transform("numba", threads)
        out["sknorm numba, 1 thread"] = sknorm_transform("numba", 1)
    if not quick:
        out["naive numpy"] = naive_numpy
    out["StandardScaler"] = sklearn_transform(StandardScaler, X)
    out["Normalizer"] = sklearn_transform(Normalizer, X)
    if torch is not None:
        out[f"torch layer_norm, {threads} threads"] = torch_layer_norm(threads)
    return out


def time_interleaved(funcs, args, repeats):
    """Median wall time of each function, repeats interleaved across
    functions (the median, not the min: this machine's spikes are several
    times a call, and a min would hide a method that has them often)."""
    times = {name: [] for name in funcs}
    for f in funcs.values():  # warm up (compilation, caches, pools)
        f(*args)
    for _ in range(repeats):
        for name, f in funcs.items():
            gc.collect()
            t0 = time.perf_counter()
            res = f(*args)
            times[name].append(time.perf_counter() - t0)
            del res
    return {name: float(np.median(t)) for name, t in times.items()}


def peak_memory(f, X):
    """Peak traced memory of one call, over the bytes of its output."""
    gc.collect()
    tracemalloc.start()
    try:
        res = f(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    nbytes = res.nbytes if hasattr(res, "nbytes") else res.numel() * res.element_size()
    return peak / nbytes


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    versions = [f"numpy {np.__version__}", f"sknorm {sknorm.__version__}"]
    if numba is not None:
        versions.append(f"numba {numba.__version__}")
    if torch is not None:
        versions.append(f"torch {torch.__version__}")
    return f"{cpu}, {n_cpus()} CPUs, Python {platform.python_version()}, " + ", ".join(
        versions
    )


def table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def bench_sizes(sizes, dtypes, threads, repeats, memory, quick=False):
    rng = np.random.default_rng(0)
    results = {}
    for shape in sizes:
        for dtype in dtypes:
            X = rng.normal(3.0, 2.0, size=shape).astype(dtype)
            funcs = methods(X, threads, quick)
            t = time_interleaved(funcs, (X,), repeats)
            mem = {}
            if memory:
                for name in ("roofline", "sknorm numpy", "sknorm numba"):
                    if name in funcs:
                        mem[name] = peak_memory(funcs[name], X)
            results[(shape, np.dtype(dtype).name)] = (t, mem)
            roof = t["roofline"]
            print(
                f"  {shape} {np.dtype(dtype).name}: roofline {roof * 1e3:.1f} ms, "
                + ", ".join(
                    f"{k} {v / roof:.2f}x" for k, v in t.items() if k != "roofline"
                ),
                file=sys.stderr,
                flush=True,
            )
            del X
    return results


def report_sizes(results):
    names = []
    for t, _ in results.values():
        names += [k for k in t if k not in names]
    header = ["shape", "dtype", "roofline (ms)"] + [n for n in names if n != "roofline"]
    rows = []
    for (shape, dtype), (t, _) in results.items():
        roof = t["roofline"]
        row = [f"{shape[0]:,} x {shape[1]:,}", dtype, f"{roof * 1e3:.1f}"]
        row += [
            f"{t[n] / roof:.2f}x" if n in t else "" for n in names if n != "roofline"
        ]
        rows.append(row)
    print("\nTransform time, as a ratio to the roofline (lower is better):\n")
    print(table(rows, header))
    mem_rows = [
        [f"{s[0]:,} x {s[1]:,}", d] + [f"{m.get(k, float('nan')):.3f}" for k in m]
        for (s, d), (_, m) in results.items()
        if m
    ]
    if mem_rows:
        keys = list(next(m for _, m in results.values() if m))
        print("\nPeak traced memory of one call / bytes of the output:\n")
        print(table(mem_rows, ["shape", "dtype"] + keys))


def bench_small(repeats):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 16))
    ss = StandardScaler().fit(X)
    # (name, engine to set around the timed loop, function)
    funcs = [("StandardScaler.transform", "auto", ss.transform)]
    for engine in ("numpy", "numba") if numba is not None else ("numpy",):
        name = f"LayerNormalizer.transform ({engine})"
        funcs.append((name, engine, LayerNormalizer().fit(X).transform))
    default = LayerNormalizer().fit(X).transform
    funcs.append(("LayerNormalizer.transform (default)", "auto", default))
    loops = 200
    for _, engine, f in funcs:
        with sknorm.config_context(engine=engine):
            f(X)
    # engine="auto" sends a small call to numba once the kernel it needs ran
    # in this process (the numba row's warm-up above): say which one it took.
    if numba is not None:
        with sknorm.config_context(engine="numba"):
            by_numba = default(X)
        if np.array_equal(default(X), by_numba):
            print("\n(The default engine took numba's kernel: it ran in this process.)")
    best = {name: [] for name, _, _ in funcs}
    for _ in range(repeats):
        for name, engine, f in funcs:
            with sknorm.config_context(engine=engine):
                t0 = time.perf_counter()
                for _ in range(loops):
                    f(X)
                best[name].append((time.perf_counter() - t0) / loops)
    per_call = {name: min(v) for name, v in best.items()}
    base = per_call["StandardScaler.transform"]
    rows = [[k, f"{v * 1e6:.1f}", f"{v / base:.2f}x"] for k, v in per_call.items()]
    print("\nPer-call time on a 100 x 16 float64 input:\n")
    print(table(rows, ["method", "time (us)", "vs StandardScaler"]))
    return per_call


def bench_fit_and_robust(shape, repeats):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=shape)
    w = rng.uniform(0.5, 2.0, size=shape[0])
    est = LayerNormalizer(affine=True).fit(X)
    funcs = {
        "roofline": roofline,
        "transform": LayerNormalizer().transform,
        "fit, affine=True": lambda X: LayerNormalizer(affine=True).fit(X),
        "fit, affine=True, sample_weight": lambda X: LayerNormalizer(affine=True).fit(
            X, sample_weight=w
        ),
        "transform, affine=True": est.transform,
        "transform, keep_stats=True": LayerNormalizer(keep_stats=True).transform,
        "transform, copy=False": lambda X: LayerNormalizer(copy=False).transform(X),
        "RMSNormalizer": sknorm.RMSNormalizer().transform,
        "center=median": LayerNormalizer(center="median", scale=None).transform,
        "center=median, scale=mad": LayerNormalizer(
            center="median", scale="mad"
        ).transform,
        "center=median, scale=iqr": LayerNormalizer(
            center="median", scale="iqr"
        ).transform,
        "GroupNormalizer(8 groups)": sknorm.GroupNormalizer(8).fit(X[:10]).transform,
    }

    def numpy_engine(f):
        def run(X):
            with sknorm.config_context(engine="numpy"):
                return f(X)

        return run

    funcs["transform (numpy engine)"] = numpy_engine(funcs["transform"])
    funcs["fit, affine=True (numpy engine)"] = numpy_engine(funcs["fit, affine=True"])
    t = time_interleaved(funcs, (X,), repeats)
    roof = t["roofline"]
    rows = []
    for k, v in t.items():
        tr = t["transform (numpy engine)" if "numpy engine" in k else "transform"]
        rows.append([k, f"{v * 1e3:.1f}", f"{v / roof:.2f}x", f"{v / tr:.2f}x"])
    print(
        f"\nOther operations at {shape[0]:,} x {shape[1]:,} float64 "
        f"(default engine, {sknorm.get_config()['engine']}):\n"
    )
    print(table(rows, ["operation", "time (ms)", "vs roofline", "vs transform"]))
    print("\n(numpy engine rows are compared with the numpy engine's transform)")
    print("\nPeak traced memory / output bytes:\n")
    mem_rows = []
    for k in ("transform", "transform, keep_stats=True", "center=median, scale=mad"):
        mem_rows.append([k, f"{peak_memory(funcs[k], X):.3f}"])
    Xc = X.copy()
    gc.collect()
    tracemalloc.start()
    LayerNormalizer(copy=False).transform(Xc)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mem_rows.append(
        ["transform, copy=False (peak / X bytes)", f"{peak / X.nbytes:.3f}"]
    )
    print(table(mem_rows, ["operation", "peak / output"]))


def with_engine(engine, f):
    def run(*args):
        with sknorm.config_context(engine=engine):
            return f(*args)

    return run


def bench_issue_cases(shape, threads, repeats):
    """Every case of issue 13 as a ratio to its baseline from the same run."""
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=shape)
    # Tabular NaN: one column all NaN, another NaN every 7th row.
    Xn = X.copy()
    Xn[:, 5] = np.nan
    Xn[::7, 9] = np.nan
    default = sknorm.get_config()["engine"]
    ln = LayerNormalizer().fit(X[:10])
    ln_aff = LayerNormalizer(affine=True).fit(X[:1000])
    X32 = X.astype(np.float32)
    copy_threads = threaded_copy(threads)
    funcs = {
        f"copy, {threads} threads": threaded_copy(threads),
        "transform": ln.transform,
        "transform (numpy engine)": with_engine("numpy", ln.transform),
        "NaN rows": lambda X: ln.transform(Xn),
        "NaN rows (numpy engine)": with_engine("numpy", lambda X: ln.transform(Xn)),
        "GroupNormalizer(8)": sknorm.GroupNormalizer(8).fit(X[:10]).transform,
        'center="median"': LayerNormalizer(center="median").transform,
        'center="median", scale="mad"': LayerNormalizer(
            center="median", scale="mad"
        ).transform,
        'center="median", scale="iqr"': LayerNormalizer(
            center="median", scale="iqr"
        ).transform,
        "fit, affine=True": lambda X: LayerNormalizer(affine=True).fit(X),
        f"float32 copy, {threads} threads": lambda X: copy_threads(X32),
        "float32 transform": lambda X: ln.transform(X32),
        "float32 transform, affine=True": lambda X: ln_aff.transform(X32),
    }
    t = time_interleaved(funcs, (X,), repeats)
    limit = t[f"copy, {threads} threads"]
    cases = [
        ("NaN rows", "transform", "<= 1.3x"),
        ("NaN rows (numpy engine)", "transform (numpy engine)", "<= 1.3x"),
        ("GroupNormalizer(8)", "transform", "<= 1.3x"),
        ('center="median"', "transform", "<= 1.3x"),
        ('center="median", scale="mad"', "transform", "<= 1.6x"),
        ('center="median", scale="iqr"', "transform", "<= 1.6x"),
        ("fit, affine=True", "transform", "<= 1.2x"),
        ("float32 transform, affine=True", "float32 transform", ""),
        ("transform", f"copy, {threads} threads", "<= 1.1x"),
        ("transform (numpy engine)", f"copy, {threads} threads", ""),
        ("float32 transform", f"float32 copy, {threads} threads", "<= 1.5x"),
    ]
    rows = []
    for case, base, target in cases:
        rows.append(
            [
                case,
                f"{t[case] * 1e3:.1f}",
                base,
                f"{t[case] / t[base]:.2f}x",
                target,
                f"{t[case] / limit:.2f}x",
            ]
        )
    print(
        f"\nIssue-13 cases at {shape[0]:,} x {shape[1]:,} float64 (engine "
        f"{default!r}, {threads} threads; median of {repeats} interleaved "
        f"repeats):\n"
    )
    header = ["case", "time (ms)", "baseline", "vs baseline", "target"]
    print(table(rows, header + [f"vs copy, {threads} threads"]))
    keys = [
        "NaN rows",
        "NaN rows (numpy engine)",
        "GroupNormalizer(8)",
        'center="median", scale="mad"',
    ]
    mem = {k: peak_memory(funcs[k], X) for k in keys}
    print("\nPeak traced memory / output bytes (target <= 1.1):\n")
    print(table([[k, f"{v:.3f}"] for k, v in mem.items()], ["case", "peak / output"]))
    return t, mem


def issue_summary(results, small, t, mem, shape, threads):
    """Every row of issue 13's table, each with its baseline from this run."""
    copy = f"copy, {threads} threads"
    at = f"{shape[0]:,} x {shape[1]:,}"
    rows = []

    def add(case, value, base, target, memory=""):
        ok = "yes" if value <= float(target.split()[-1].rstrip("x")) else "no"
        rows.append([case, f"{value:.2f}x", base, target, ok, memory])

    def peak(key):
        return f"{mem[key]:.2f}x" if key in mem else ""

    add(f"NaN rows, {at}", t["NaN rows"] / t["transform"], "transform",
        "<= 1.3x", peak("NaN rows"))  # fmt: skip
    add(
        "NaN rows, numpy engine",
        t["NaN rows (numpy engine)"] / t["transform (numpy engine)"],
        "its transform",
        "<= 1.3x",
        peak("NaN rows (numpy engine)"),
    )
    add("GroupNormalizer(8)", t["GroupNormalizer(8)"] / t["transform"],
        "transform", "<= 1.3x", peak("GroupNormalizer(8)"))  # fmt: skip
    add('center="median"', t['center="median"'] / t["transform"], "transform",
        "<= 1.3x")  # fmt: skip
    for sc in ("mad", "iqr"):
        key = f'center="median", scale="{sc}"'
        add(key, t[key] / t["transform"], "transform", "<= 1.6x", peak(key))
    add("fit, affine=True", t["fit, affine=True"] / t["transform"], "transform",
        "<= 1.2x")  # fmt: skip
    add(
        "per call, 100 x 16 (default engine)",
        small["LayerNormalizer.transform (default)"]
        / small["StandardScaler.transform"],
        "StandardScaler",
        "<= 1.0x",
    )
    for engine in ("numba", "numpy"):
        key = f"LayerNormalizer.transform ({engine})"
        if key in small:
            add(
                f"per call, 100 x 16 ({engine} engine)",
                small[key] / small["StandardScaler.transform"],
                "StandardScaler",
                "<= 1.0x",
            )
    for (size, dtype), (times, _) in results.items():
        if "sknorm numba" not in times:
            continue
        name = f"{size[0]:,} x {size[1]:,} {dtype}, numba"
        limit = "<= 1.1x" if dtype == "float64" else "<= 1.5x"
        add(name, times["sknorm numba"] / times[copy], copy, limit)
        if dtype == "float32":
            # The issue's older rows: float32 against the one-thread roofline.
            limit = "<= 1.0x" if size[1] < 1000 else "<= 1.2x"
            add(name, times["sknorm numba"] / times["roofline"], "roofline", limit)
    print(f"\nIssue 13 summary ({threads} threads; every ratio against a baseline")
    print("measured in this run; memory: peak traced / output bytes, <= 1.1x):\n")
    header = ["case", "ratio", "baseline", "target", "met", "memory"]
    print(table(rows, header))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    parser.add_argument(
        "--threads", type=int, default=n_cpus(), help="threads (default: all CPUs)"
    )
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-memory", action="store_true", help="skip tracemalloc")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = [(100_000, 64), (10_000, 1024), (100, 100_000)]
        issue_shape = (100_000, 64)
        repeats = args.repeats or 3
    else:
        sizes = [(1_000_000, 64), (100_000, 1024), (1_000, 100_000)]
        issue_shape = (500_000, 64)
        repeats = args.repeats or 9
    print(f"Machine: {machine()}")
    print(f"Threads: {args.threads}; repeats: {repeats} (median); sizes: {sizes}")
    results = bench_sizes(
        sizes,
        [np.float64, np.float32],
        args.threads,
        repeats,
        not args.no_memory,
        args.quick,
    )
    report_sizes(results)
    small = bench_small(repeats)
    cases, mem = bench_issue_cases(issue_shape, args.threads, repeats)
    if not args.quick:
        bench_fit_and_robust(sizes[0], max(3, repeats // 2))
    issue_summary(results, small, cases, mem, issue_shape, args.threads)


if __name__ == "__main__":
    main()
