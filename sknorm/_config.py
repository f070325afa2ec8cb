"""Global, thread-local configuration of sknorm's compute engine.

Two options choose how dense input is normalized; neither changes results
beyond rounding (the engines agree to about 1e-16 relative in float64):

``engine``
    ``"auto"`` (default): the compiled numba kernels when numba is installed
    (``pip install sknorm[fast]``) and the input has at least 32768 values
    or the kernel it needs already ran in this process, else numpy.
    ``"numpy"``: always the pure
    numpy chunked engine. ``"numba"``: always numba (an ImportError at
    transform time if it is not installed). The environment variable
    ``SKNORM_ENGINE`` sets the default at import.
``n_threads``
    Threads used by one transform on large inputs: ``None`` (default) for all
    the CPUs this process may use, or a positive int (``1``: no threads). The
    environment variable ``SKNORM_NUM_THREADS`` sets the default at import.

Like :func:`sklearn.set_config`, settings made in a thread apply to that
thread; :func:`config_context` sets them for a ``with`` block.

The settings reach joblib workers (``GridSearchCV(n_jobs=2)``,
``cross_validate``, ``Parallel``) through the estimators, the way
``set_output`` does: a sknorm estimator cloned (``sklearn.base.clone``) or
fitted in a thread that set its configuration records it, and its methods run
with it in the threads and child processes that set none (see
:func:`set_config`).
"""

import functools
import numbers
import os
import threading
from contextlib import contextmanager

ENGINES = ("auto", "numpy", "numba")


def _check_engine(engine):
    if engine not in ENGINES:
        raise ValueError(
            f"Got engine={engine!r}, expected one of 'auto', 'numpy' or 'numba'."
        )
    return engine


def _check_n_threads(n_threads):
    if n_threads is None:
        return None
    # Any integer type (numpy's included), but not bool.
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(
            f"Got n_threads={n_threads!r}, expected a positive int or None."
        )
    if n_threads < 1:
        raise ValueError(
            f"Got n_threads={n_threads!r}, expected a positive int or None."
        )
    return int(n_threads)


def _env_defaults():
    """The defaults from SKNORM_ENGINE and SKNORM_NUM_THREADS, checked."""
    engine = os.environ.get("SKNORM_ENGINE", "auto").strip().lower() or "auto"
    if engine not in ENGINES:
        raise ValueError(
            f"The environment variable SKNORM_ENGINE={engine!r} is not an "
            "engine: set it to 'auto', 'numpy' or 'numba', or unset it."
        )
    threads = os.environ.get("SKNORM_NUM_THREADS", "").strip()
    n_threads = None
    if threads:
        try:
            n_threads = int(threads)
        except ValueError:
            n_threads = 0
        if n_threads < 1:
            raise ValueError(
                f"The environment variable SKNORM_NUM_THREADS={threads!r} is not "
                "a positive integer: set it to the number of threads (1 for no "
                "threads), or unset it to use all CPUs."
            )
    return {"engine": engine, "n_threads": n_threads}


_global_config = _env_defaults()
_threadlocal = threading.local()


def _get_threadlocal_config():
    if not hasattr(_threadlocal, "config"):
        _threadlocal.config = _global_config.copy()
    return _threadlocal.config


def get_config():
    """Return a copy of sknorm's current configuration.

    Returns
    -------
    config : dict
        Keys are the parameter names of :func:`set_config`.

    See Also
    --------
    set_config : Set the configuration.
    config_context : Set the configuration within a ``with`` block.

    Examples
    --------
    >>> import sknorm
    >>> sorted(sknorm.get_config())
    ['engine', 'n_threads']
    """
    return _get_threadlocal_config().copy()


def _current(key):
    """One key of this thread's configuration (no copy: the hot path)."""
    return _get_threadlocal_config()[key]


def set_config(engine=None, n_threads=None):
    """Set sknorm's configuration (for the current thread).

    Parameters
    ----------
    engine : {"auto", "numpy", "numba"}, default=None
        How dense input is normalized. ``"auto"``: the compiled numba kernels
        when numba is installed (``pip install sknorm[fast]``) and the input
        has at least 32768 values, or, for a smaller input, once the kernel
        it needs has run in this process (a small call never waits for
        numba to load or compile); else numpy.
        ``"numpy"``: the pure numpy engine. ``"numba"``: numba, an ImportError
        at transform time if it is missing. None leaves it unchanged.
    n_threads : int, default=None
        Threads one transform may use on large inputs; None leaves it
        unchanged. To go back to "all CPUs", use
        ``set_config(n_threads="all")``.

    See Also
    --------
    get_config : Retrieve the current configuration.
    config_context : Set the configuration within a ``with`` block.

    Examples
    --------
    >>> import sknorm
    >>> sknorm.set_config(engine="numpy")
    >>> sknorm.get_config()["engine"]
    'numpy'
    >>> sknorm.set_config(engine="auto")

    The configuration travels with sknorm's estimators to joblib workers: an
    estimator cloned (:func:`sklearn.base.clone`, which ``GridSearchCV``,
    ``cross_validate`` and every meta-estimator call before dispatching work)
    or fitted in a thread that called :func:`set_config` or
    :func:`config_context` records that thread's configuration, and its
    ``fit``, ``partial_fit``, ``transform`` and ``inverse_transform`` use it
    in the other threads of this process and in its child processes (loky,
    multiprocessing) where sknorm was not configured. Where sknorm was
    configured, that configuration wins; a model loaded in an unrelated
    process uses that process's own. The function twins (``layer_norm`` and
    others) called in your own joblib tasks are not covered: wrap them in
    :func:`config_context` inside the task.
    """
    config = _get_threadlocal_config()
    if engine is not None or n_threads is not None:
        _threadlocal.explicit = True
    if engine is not None:
        config["engine"] = _check_engine(engine)
    if n_threads is not None:
        config["n_threads"] = (
            None
            if isinstance(n_threads, str) and n_threads == "all"
            else _check_n_threads(n_threads)
        )


@contextmanager
def config_context(*, engine=None, n_threads=None):
    """Set sknorm's configuration within a ``with`` block.

    Parameters
    ----------
    engine : {"auto", "numpy", "numba"}, default=None
        See :func:`set_config`.
    n_threads : int or "all", default=None
        See :func:`set_config`.

    Yields
    ------
    None

    See Also
    --------
    set_config : Set the configuration.
    get_config : Retrieve the current configuration.

    Examples
    --------
    >>> import numpy as np
    >>> import sknorm
    >>> with sknorm.config_context(engine="numpy", n_threads=1):
    ...     Z = sknorm.layer_norm(np.array([[1.0, 2.0, 3.0]]), eps=0)
    >>> Z.round(4)
    array([[-1.2247,  0.    ,  1.2247]])
    """
    old, old_explicit = get_config(), _is_explicit()
    set_config(engine=engine, n_threads=n_threads)
    try:
        yield
    finally:
        _get_threadlocal_config().update(old)
        _threadlocal.explicit = old_explicit


def effective_n_threads():
    """The number of threads one transform may use now."""
    n = _current("n_threads")
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not on Linux
            n = os.cpu_count() or 1
    return max(1, n)


# -- carrying the configuration to joblib workers -------------------------------
# sklearn.utils.parallel carries only sklearn's own configuration (its
# config_context rejects other keys) and has no hook for other libraries, so
# sknorm's travels with its estimators instead, as sklearn's set_output
# configuration does: clone() and fit() record it (_record), and the methods
# wrapped by carry_config run with it where sknorm was not configured.
def _is_explicit():
    """Whether this thread set its configuration (set_config/config_context)."""
    return getattr(_threadlocal, "explicit", False)


def _carried(record):
    """The configuration in ``record``, where it applies; else None.

    It applies in a thread that set no configuration, of the recording process
    (another thread than the recording one) or of a child process (joblib's
    loky and multiprocessing workers). Elsewhere, for example a saved model
    loaded later in an unrelated process, the local configuration is used.
    """
    if not record or _is_explicit():
        return None
    if record["pid"] == os.getpid():
        if record["thread"] == threading.get_ident():
            return None
    elif record["pid"] != os.getppid():
        return None
    return record["config"]


def _record(source=None):
    """What a clone or a fit records: the configuration in effect here.

    ``source`` is the record of the estimator being cloned: a clone made in a
    thread without configuration (joblib dispatches from its own threads)
    passes the source's on where it applies, unchanged.
    """
    if not _is_explicit():
        return source if _carried(source) is not None else None
    config = get_config()
    return {"config": config, "pid": os.getpid(), "thread": threading.get_ident()}


def carry_config(method):
    """Run an estimator method with the configuration its estimator carries."""

    @functools.wraps(method)
    def run_with_carried_config(self, *args, **kwargs):
        config = _carried(getattr(self, "_sknorm_config", None))
        if config is None:
            out = method(self, *args, **kwargs)
        else:
            local = _get_threadlocal_config()
            old = local.copy()
            local.update(config)
            try:
                out = method(self, *args, **kwargs)
            finally:
                local.clear()
                local.update(old)
        if method.__name__ in ("fit", "partial_fit") and _is_explicit():
            self._sknorm_config = _record()
        return out

    return run_with_carried_config


# -- numba's parallel kernels and fork() ----------------------------------------
# GNU OpenMP (numba's usual threading layer here) does not survive fork(): a
# child forked after the parent ran a parallel kernel is killed by numba at its
# first parallel launch ("fork() called from a process already using GNU
# OpenMP"), and a multiprocessing.Pool then waits forever. Such children run
# the serial compiled kernel instead (same results: the rows are independent).
_numba_parallel = {"ran": False, "forked_after": False}


def _after_fork_in_child():
    if _numba_parallel["ran"]:
        _numba_parallel["forked_after"] = True


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def numba_parallel_allowed():
    """Whether numba's parallel kernels may run in this process."""
    return not _numba_parallel["forked_after"]


def numba_parallel_ran():
    """Record that this process runs numba's parallel kernels."""
    _numba_parallel["ran"] = True
