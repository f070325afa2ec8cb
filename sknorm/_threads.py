"""Row chunks on sknorm's threads, with BLAS kept to one thread meanwhile.

The dense numpy and numba paths cut the rows into chunks of about
:data:`CHUNK_BYTES` and run :func:`run_chunks` over them on
:func:`sknorm.set_config`'s number of threads. The BLAS calls inside a chunk
are far below the size where BLAS threads pay, so they stay on their calling
thread while sknorm's own threads run (``threadpoolctl``).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

# Rows per chunk are chosen so that one chunk is about this many bytes: large
# enough to amortize the Python overhead and the GIL hand-offs between threads
# (measured best at 4 MiB on a 2-core machine with 1 MiB L2 per core, 32 MiB L3),
# small enough to stay in cache.
CHUNK_BYTES = 2**22


def chunk_rows(n_cols, itemsize=8):
    """Rows per chunk for rows of ``n_cols`` values of ``itemsize`` bytes."""
    return max(1, CHUNK_BYTES // max(1, n_cols * itemsize))


_POOL = {}
_POOL_LOCK = threading.Lock()


def _get_pool(n_workers):
    with _POOL_LOCK:
        pool = _POOL.get("pool")
        if pool is None or _POOL["size"] < n_workers:
            if pool is not None:
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(n_workers, thread_name_prefix="sknorm")
            _POOL.update(pool=pool, size=n_workers)
        return pool


def _forget_pool():  # pragma: no cover - runs in a forked child
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run_chunks(work, n, step, n_threads):
    """Call ``work(lo, hi)`` on consecutive row chunks, on ``n_threads``.

    The first exception raised by any chunk is raised here once every thread
    has stopped; the pool stays usable.
    """
    starts = range(0, n, step)
    n_threads = min(n_threads, len(starts))
    if n_threads <= 1:
        with blas_one_thread(len(starts) > 1):
            for lo in starts:
                work(lo, min(n, lo + step))
        return
    todo = iter(starts)
    lock = threading.Lock()
    failed = []

    def worker():
        while not failed:
            with lock:
                lo = next(todo, None)
            if lo is None:
                return
            try:
                work(lo, min(n, lo + step))
            except BaseException as exc:
                failed.append(exc)
                raise

    with blas_one_thread(True):
        pool = _get_pool(n_threads - 1)
        helpers = [pool.submit(worker) for _ in range(n_threads - 1)]
        try:
            worker()
        except BaseException:
            pass
        for f in helpers:
            if not f.cancel():
                f.exception()
    if failed:
        raise failed[0]


_BLAS = {}
_BLAS_LOCK = threading.Lock()


@contextmanager
def blas_one_thread(active):
    """Limit BLAS to one thread inside the block (nested and thread safe)."""
    if not active:
        yield
        return
    with _BLAS_LOCK:
        if "controller" not in _BLAS:
            from threadpoolctl import ThreadpoolController

            _BLAS.update(controller=ThreadpoolController(), depth=0, limiter=None)
        if _BLAS["depth"] == 0:
            _BLAS["limiter"] = _BLAS["controller"].limit(limits=1, user_api="blas")
        _BLAS["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["depth"] -= 1
            if _BLAS["depth"] == 0:
                _BLAS["limiter"].restore_original_limits()
                _BLAS["limiter"] = None
