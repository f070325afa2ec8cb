"""The paths a user can reach, for the differential and property tests.

A *path* is a container and a configuration under which the public API runs:
``numpy`` and ``numba`` (``sknorm.config_context(engine=...)`` on ndarrays),
``array_api_strict`` and ``torch`` (CPU tensors with
``sklearn.config_context(array_api_dispatch=True)``), ``csr`` and ``csc``
(scipy sparse matrices), and ``sknorm.dask`` on Dask arrays in row chunks
(``dask_rows``), in row-and-column chunks (``dask_cols``), with sparse chunks
(``dask_sparse``) and on Dask DataFrames (``dask_frame``). Paths whose package
is missing are reported by :func:`missing` instead of being generated.
"""

import importlib.util
import os
from contextlib import contextmanager, nullcontext

import numpy as np
import scipy.sparse as sp
import sklearn

import sknorm


def array_api_ready():
    """Whether sklearn can dispatch to the Array API here (scipy >= 1.14 with
    SCIPY_ARRAY_API=1 set before its import, array_api_compat)."""
    if os.environ.get("SCIPY_ARRAY_API") != "1":
        return "SCIPY_ARRAY_API=1 was not set before scipy was imported"
    try:
        with sklearn.config_context(array_api_dispatch=True):
            pass
    except (ImportError, RuntimeError, ValueError) as exc:
        return f"scikit-learn cannot dispatch to the Array API here: {exc}"
    return None


def missing(path):
    """Why ``path`` cannot run here (None when it can)."""
    need = {
        "numba": ["numba"],
        "array_api_strict": ["array_api_strict"],
        "torch": ["torch"],
        "dask_rows": ["dask"],
        "dask_cols": ["dask"],
        "dask_frame": ["dask", "pandas"],
        "dask_sparse": ["dask"],
    }.get(path, [])
    for mod in need:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (see README: optional paths)"
    if path.startswith("dask_"):
        try:
            import dask.dataframe  # noqa: F401
        except ImportError as exc:
            return f"dask[dataframe] is not usable: {exc}"
    if path in ("array_api_strict", "torch"):
        return array_api_ready()
    return None


DENSE_PATHS = ["numpy", "numba", "array_api_strict", "torch"]
SPARSE_PATHS = ["csr", "csc"]
DASK_PATHS = ["dask_rows", "dask_cols", "dask_frame"]
ALL_PATHS = DENSE_PATHS + SPARSE_PATHS + DASK_PATHS + ["dask_sparse"]
MISSING = {p: missing(p) for p in ALL_PATHS}
AVAILABLE = [p for p in ALL_PATHS if MISSING[p] is None]


@contextmanager
def on(path):
    """The configuration under which ``path`` runs."""
    engine = "numba" if path == "numba" else "numpy"
    dispatch = path in ("array_api_strict", "torch")
    with sknorm.config_context(engine=engine):
        with (
            sklearn.config_context(array_api_dispatch=True)
            if dispatch
            else nullcontext()
        ):
            yield


def to_path(path, X):
    """``X`` (a numpy array) in the container of ``path``; always a fresh copy."""
    X = np.array(X)
    if path == "array_api_strict":
        import array_api_strict as xps

        return xps.asarray(X)
    if path == "torch":
        import torch

        return torch.asarray(X, device="cpu")
    if path in ("csr", "csc"):
        return getattr(sp, f"{path}_matrix")(X)
    if path.startswith("dask_"):
        import dask.array as da

        if path == "dask_frame":
            import dask.dataframe as dd
            import pandas as pd

            frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
            return dd.from_pandas(frame, npartitions=3)
        if path == "dask_cols":
            return da.from_array(X, chunks=(4, 2))
        dX = da.from_array(X, chunks=(4, -1))
        if path == "dask_sparse":
            return dX.map_blocks(sp.csr_matrix, dtype=X.dtype)
        return dX
    return X


def to_numpy(path, Y, dtype, method="transform"):
    """The path's output as numpy, after checking its container and dtype."""
    if path in ("array_api_strict", "torch"):
        module = type(Y).__module__.split(".")[0]
        assert module == path, f"{path} in, {type(Y)} out"
        Y = np.from_dlpack(Y) if path == "array_api_strict" else Y.numpy()
    elif path in ("csr", "csc", "dask_sparse"):
        assert sp.issparse(Y), f"{path}: expected sparse output, got {type(Y)}"
        if path != "dask_sparse":
            assert Y.format == path, f"{method} of {path} input gave {Y.format}"
        Y = Y.toarray()
    elif hasattr(Y, "to_numpy"):
        Y = Y.to_numpy()
    Y = np.asarray(Y)
    assert Y.dtype == dtype, f"{method} on {path}: {dtype.__name__} in, {Y.dtype} out"
    return Y


def compute(lazy):
    """Compute a Dask collection; its lazy shape must be the computed one."""
    out = lazy.compute(scheduler="synchronous")
    if hasattr(lazy, "columns"):
        assert list(out.columns) == list(lazy.columns)
    else:
        assert tuple(lazy.shape) == out.shape, (
            f"lazy shape {lazy.shape} but computed {out.shape}"
        )
    return out


def as_numpy(a):
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "numpy"):
        return a.numpy()
    return np.from_dlpack(a)


def fit_transform_on(path, est, X):
    """Fit ``est`` on ``X`` in the container of ``path`` and transform it.

    Returns the fitted estimator (for ``sknorm.dask``: the merged in-memory
    fit), the output in the path's container, and the output in numpy.
    """
    Xp = to_path(path, X)
    with on(path):
        if path.startswith("dask_"):
            import sknorm.dask as skd

            est = skd.fit(est, Xp)
            out = skd.transform(est, Xp)
            return est, out, to_numpy(path, compute(out), X.dtype.type)
        out = est.fit(Xp).transform(Xp)
        return est, out, to_numpy(path, out, X.dtype.type)


def inverse_on(path, est, out, dtype):
    """``inverse_transform`` of the path's output ``out``, in numpy."""
    with on(path):
        if path.startswith("dask_"):
            import sknorm.dask as skd

            return to_numpy(
                path,
                compute(skd.inverse_transform(est, out)),
                dtype,
                "inverse_transform",
            )
        return to_numpy(path, est.inverse_transform(out), dtype, "inverse_transform")
