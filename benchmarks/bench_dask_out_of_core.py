"""Normalize a dataset larger than any worker's memory with sknorm.dask.

A ``distributed.LocalCluster`` of worker processes, each with a hard memory
limit, fits ``LayerNormalizer(affine=True, keep_stats=True)`` on a lazily
generated Dask Array several times larger than one worker's limit, then
transforms it; the output is reduced (to its max |value|) rather than
stored, so the data never exists in full anywhere. The script reports the
data size, the peak resident memory of each worker (sampled), the timings,
and checks exactness on a slice that fits in memory (Dask fit and transform
versus the in-memory ones)::

    python benchmarks/bench_dask_out_of_core.py                  # ~2 GB, 2 workers
    python benchmarks/bench_dask_out_of_core.py --rows 8000000   # ~4 GB

It needs ``pip install sknorm[dask]`` (and psutil, which distributed brings).
"""

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
from dask.utils import format_bytes, parse_bytes  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from sklearn.base import clone  # noqa: E402

from sknorm import LayerNormalizer  # noqa: E402
from sknorm.dask import fit, transform  # noqa: E402


def make_data(n_rows, n_features, chunk_rows, seed=0):
    """Rows ``offset_i + scale_i * N(0, 1)``: per-sample location and spread."""
    rng = da.random.default_rng(seed)
    chunks = (chunk_rows, n_features)
    Z = rng.standard_normal((n_rows, n_features), chunks=chunks)
    loc = rng.normal(0, 100, size=(n_rows, 1), chunks=(chunk_rows, 1))
    spread = rng.uniform(0.5, 5, size=(n_rows, 1), chunks=(chunk_rows, 1))
    trend = da.linspace(0, 3, n_features, chunks=n_features)
    return loc + spread * (Z + trend)


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


class PeakMemory:
    """Sample every worker's resident memory in a thread; keep the maximum."""

    def __init__(self, client, every=0.2):
        self.client, self.every = client, every
        self.peak = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                for worker, rss in self.client.run(_rss).items():
                    self.peak[worker] = max(self.peak.get(worker, 0), rss)
            except Exception:  # noqa: BLE001 - a worker may be busy restarting
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="768MiB")
    args = parser.parse_args()

    X = make_data(args.rows, args.features, args.chunk_rows)
    limit = parse_bytes(args.memory_limit)
    print(
        f"data: {args.rows} x {args.features} float64 = {format_bytes(X.nbytes)} in "
        f"{X.numblocks[0]} chunks of {format_bytes(X.nbytes // X.numblocks[0])}; "
        f"{args.workers} workers, memory limit {format_bytes(limit)} each "
        f"(data = {X.nbytes / limit:.1f}x one worker's limit)"
    )
    est = LayerNormalizer(affine=True, keep_stats=True)
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        # Exactness on a slice that fits in memory.
        small = X[: 3 * args.chunk_rows]
        small_np = small.compute()
        ref = clone(est).fit(small_np)
        got = fit(est, small)
        gain_err = np.max(np.abs(got.gain_ - ref.gain_) / np.abs(ref.gain_))
        out_err = np.max(
            np.abs(transform(got, small).compute() - ref.transform(small_np))
        )
        print(
            f"exactness on {small.shape[0]} rows: gain_ rel. diff {gain_err:.1e}, "
            f"transform max abs diff {out_err:.1e}"
        )
        del small_np

        with PeakMemory(client) as mem:
            t0 = time.perf_counter()
            fitted = fit(est, X)
            t_fit = time.perf_counter() - t0
            Y = transform(fitted, X)
            t0 = time.perf_counter()
            max_abs = float(abs(Y).max().compute())
            t_tr = time.perf_counter() - t0
        n_workers = len(client.scheduler_info()["workers"])

    peak = max(mem.peak.values()) if mem.peak else float("nan")
    print(
        f"fit: {t_fit:.1f} s ({X.nbytes / t_fit / 2**20:.0f} MiB/s), "
        f"n_samples_seen_={fitted.n_samples_seen_}"
    )
    print(
        f"transform + reduce: {t_tr:.1f} s ({X.nbytes / t_tr / 2**20:.0f} MiB/s); "
        f"output {Y.shape} (kept statistics included), "
        f"max |value| {max_abs:.3g}"
    )
    print(
        f"peak worker memory: {format_bytes(peak)} "
        f"({peak / limit:.0%} of the {format_bytes(limit)} limit); "
        f"data/peak = {X.nbytes / peak:.1f}x; workers alive at the end: {n_workers}"
    )
    ok = gain_err < 1e-12 and out_err < 1e-9 and peak < limit and n_workers == 2
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
