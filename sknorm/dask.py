"""Fit and transform sknorm estimators on Dask collections.

Per-sample normalization is row-local, and what an estimator learns in
``fit`` (the sufficient statistics of the affine regression and the number of
samples seen) is a sum over the samples. Both therefore scale out exactly:

* :func:`fit` fits a clone of the estimator on every partition in parallel and
  merges the per-partition fits by a tree reduction, with the same exact,
  pairwise update that ``partial_fit`` uses. The result is an ordinary,
  in-memory sknorm estimator equal (up to rounding) to one ``fit`` on all the
  rows.
* :func:`transform` and :func:`inverse_transform` are lazy: they map the fitted
  estimator over the partitions (``map_partitions`` for a Dask DataFrame, with
  the output columns of ``get_feature_names_out``; ``map_blocks`` for a Dask
  Array), so a dataset larger than the memory of any worker is normalized
  partition by partition.

Everything runs on the active Dask scheduler: a ``distributed.Client`` when
one is connected, else Dask's local scheduler. Install with
``pip install sknorm[dask]``; without Dask this module imports, and its
functions raise an ImportError that says so.

Example (see the user guide's "Scaling" page for more)::

    import dask.dataframe as dd
    from sknorm import LayerNormalizer
    from sknorm.dask import fit, transform

    ddf = dd.read_parquet("measurements/")               # partitioned by rows
    ln = fit(LayerNormalizer(affine=True, keep_stats=True), ddf)
    out = transform(ln, ddf)                              # lazy dask DataFrame
    out.to_parquet("normalized/")                         # partition by partition
"""

import math
import numbers

import numpy as np
import pandas as pd
from sklearn.base import clone

from . import _partitioned

try:
    import dask
    import dask.array as da
    import dask.dataframe as dd
except ImportError as exc:  # pragma: no cover - depends on the environment
    dask = da = dd = None
    _DASK_IMPORT_ERROR = exc
else:
    _DASK_IMPORT_ERROR = None


def _require_dask():
    if _DASK_IMPORT_ERROR is not None:
        raise ImportError(
            "sknorm.dask needs Dask with its DataFrame support: "
            "pip install sknorm[dask] (or: pip install 'dask[dataframe]' "
            "distributed)."
        ) from _DASK_IMPORT_ERROR


__all__ = ["fit", "inverse_transform", "transform"]


# -- fit --------------------------------------------------------------------------
def fit(estimator, X, sample_weight=None, *, split_every=8, compute=True):
    """Fit a sknorm estimator on a Dask collection, partition by partition.

    A clone of ``estimator`` is fitted on every partition of ``X`` in parallel;
    the fits are merged by a tree reduction (``split_every`` fits per merge)
    with the estimators' :meth:`merge` (the exact pairwise update of
    ``partial_fit``), into new objects: the partition fits are left unchanged,
    so lazy fits that share partition tasks do not affect each other. The
    merged estimator equals ``clone(estimator).fit(X.compute())`` up to
    rounding, without ever holding more than one partition per task in memory.

    Parameters
    ----------
    estimator : LayerNormalizer, RMSNormalizer or GroupNormalizer
        The (unfitted) estimator; it is cloned, not modified.
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
        The data, partitioned by rows (an Array is rechunked to one chunk
        across the columns). NumPy or pandas input is fitted in memory.
    sample_weight : dask.array.Array, dask.dataframe.Series or array-like, \
default=None
        Weights of the samples in the affine regression, partitioned like
        ``X``: a Dask Series with the same partitions as the DataFrame ``X``,
        or a Dask Array (rechunked to the row chunks of ``X``). An in-memory
        array is accepted with a Dask Array ``X``. When the row chunks of
        ``X`` are unknown (``nan``, as from ``DataFrame.to_dask_array()``),
        the weights must be a Dask Array with as many row blocks, paired block
        by block; else compute the chunk sizes first
        (``X.compute_chunk_sizes()``, or ``to_dask_array(lengths=True)``).
    split_every : int, default=8
        How many fits one task of the tree reduction merges.
    compute : bool, default=True
        If False, return a ``dask.delayed.Delayed`` that computes the fitted
        estimator, to compute together with other work.

    Returns
    -------
    fitted : estimator or dask.delayed.Delayed
        A fitted clone of ``estimator``: an ordinary in-memory estimator, which
        :func:`transform` maps over Dask collections.
    """
    _require_dask()
    _check_estimator(estimator)
    if (
        isinstance(split_every, bool)
        or not isinstance(split_every, numbers.Integral)
        or split_every < 2
    ):
        raise ValueError(f"Got split_every={split_every!r}, expected an int >= 2.")
    if not _is_dask(X):
        return clone(estimator).fit(X, sample_weight=sample_weight)
    blocks = _row_blocks(X)
    weights = _weight_blocks(sample_weight, X, len(blocks))
    fit_block = dask.delayed(_fit_block, pure=True)
    merge = dask.delayed(_merge_fits, pure=True)
    parts = [
        fit_block(estimator, b, w, i)
        for i, (b, w) in enumerate(zip(blocks, weights, strict=True))
    ]
    while len(parts) > 1:
        parts = [
            merge(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    # Not pure: two fits with the same partitions (and so the same final merge
    # task) must still return two objects, not one shared by both.
    result = dask.delayed(_partitioned.finish, pure=False)(parts[0])
    return result.compute() if compute else result


def _fit_block(estimator, X, sample_weight, index):
    """Fit a clone of ``estimator`` on one partition (None if it is empty)."""
    if sample_weight is not None and len(sample_weight) != X.shape[0]:
        raise ValueError(
            f"Partition {index} of X has {X.shape[0]} rows, but its block of "
            f"sample_weight has {len(sample_weight)}: partition the weights like "
            "X (for example, take them from a column of the same DataFrame)."
        )
    return _partitioned.fit_partition(estimator, X, sample_weight)


def _merge_fits(*fits):
    """Merge partition fits into a new one (the tree reduction's combine step)."""
    return _partitioned.merge_fits(fits)


# -- transform ------------------------------------------------------------------
def transform(estimator, X):
    """Normalize a Dask collection lazily with a (fitted) sknorm estimator.

    Parameters
    ----------
    estimator : LayerNormalizer, RMSNormalizer or GroupNormalizer
        Fitted (by :func:`fit`, or in memory). A stateless normalizer
        (without ``affine``) may be unfitted.
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
        The data, partitioned by rows.

    Returns
    -------
    X_tr : dask.array.Array or dask.dataframe.DataFrame
        Lazy, with the chunks (rows) or partitions and index of ``X``. A Dask
        DataFrame gets the columns of ``get_feature_names_out`` (the kept
        statistics' columns included with ``keep_stats=True``); the dtype is
        float32 for float32 input, float64 otherwise, as in memory.
    """
    est, probe = _prepare(estimator, X, fit_stateless=True)
    out = _partitioned.probe_output(est, "transform", probe)
    names = _partitioned.output_names(est, "transform", _columns(X))
    return _map_rows(X, est, "transform", out, names)


def inverse_transform(estimator, X):
    """Undo :func:`transform` lazily (needs ``keep_stats=True``).

    Parameters
    ----------
    estimator : LayerNormalizer, RMSNormalizer or GroupNormalizer
        The estimator that transformed ``X``.
    X : dask.array.Array or dask.dataframe.DataFrame
        Output of :func:`transform`, kept statistics included.

    Returns
    -------
    X_original : dask.array.Array or dask.dataframe.DataFrame
        Lazy reconstruction of the input, with the input's column names for
        a DataFrame.
    """
    est, probe = _prepare(estimator, X, fit_stateless=False)
    out = _partitioned.probe_output(est, "inverse_transform", probe)
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        names = [f"x{i}" for i in range(out[0])]
    return _map_rows(X, est, "inverse_transform", out, [str(n) for n in names])


def _columns(X):
    """The column names of a Dask DataFrame, else ``x0, x1, ...``."""
    if _is_frame(X):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(X.shape[1])]


def _prepare(estimator, X, *, fit_stateless):
    """A private, default-output copy of the estimator and a probe row.

    The probe is one row of ones with the columns and dtypes of ``X``: running
    the method on it gives the output's width and dtype, and raises at once
    (not at compute time) when ``X`` does not fit the estimator. An unfitted
    stateless normalizer is fitted on the probe, which only records the
    columns.
    """
    _require_dask()
    _check_estimator(estimator)
    if not _is_dask(X):
        raise TypeError(
            f"Expected a dask Array or DataFrame, got {type(X).__name__}; call the "
            "estimator's own methods on in-memory data."
        )
    if _is_frame(X):
        probe = _partitioned.probe_frame(dict(X.dtypes.items()))
    else:
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D dask Array, got {X.ndim} dimensions.")
        probe = np.ones((1, X.shape[1]), dtype=X.dtype)
    est = _partitioned.prepare(estimator, probe, fit_stateless=fit_stateless)
    return est, probe


def _map_rows(X, est, method, probe_out, names):
    """Map ``est.<method>`` over the row blocks of ``X``, with the right meta."""
    n_out, dtype = probe_out
    if _is_frame(X):
        meta = pd.DataFrame(
            {n: pd.Series([], dtype=dtype) for n in names}, columns=names
        )
        meta.index = X._meta.index
        return X.map_partitions(
            _apply_frame, est, method, tuple(names), dtype, meta=meta
        )
    X = X.rechunk({1: -1})
    return X.map_blocks(
        _apply_block,
        est,
        method,
        n_out,
        dtype,
        dtype=dtype,
        chunks=(X.chunks[0], (n_out,)),
        meta=np.empty((0, n_out), dtype=dtype),
    )


def _apply_block(block, est, method, n_out, dtype):
    if block.shape[0] == 0:
        return np.empty((0, n_out), dtype=dtype)
    return getattr(est, method)(block)


def _apply_frame(part, est, method, names, dtype):
    if len(part) == 0:
        out = np.empty((0, len(names)), dtype=dtype)
    else:
        out = getattr(est, method)(part)
    return pd.DataFrame(out, index=part.index, columns=list(names))


# -- inputs -------------------------------------------------------------------------
def _check_estimator(estimator):
    _partitioned.check_estimator(
        estimator,
        "dask",
        "For another transformer, see dask_ml.wrappers.ParallelPostFit.",
    )


def _is_frame(X):
    return isinstance(X, dd.DataFrame)


def _is_dask(X):
    return isinstance(X, (da.Array, dd.DataFrame))


def _row_blocks(X):
    """One delayed object per row partition of ``X``."""
    if _is_frame(X):
        return list(X.to_delayed())
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask Array, got {X.ndim} dimensions.")
    X = X.rechunk({1: -1})
    return list(X.to_delayed()[:, 0])


def _unknown_rows(a):
    return any(math.isnan(c) for c in a.chunks[0])


def _weight_blocks(sample_weight, X, n_blocks):
    """The sample weights cut like the rows of ``X`` (None per block if None)."""
    if sample_weight is None:
        return [None] * n_blocks
    weight_array = isinstance(sample_weight, da.Array) and sample_weight.ndim == 1
    if not _is_frame(X) and (
        _unknown_rows(X) or (weight_array and _unknown_rows(sample_weight))
    ):
        # Unknown row chunks: nothing can be rechunked, only paired block by
        # block with a Dask Array of as many blocks.
        if weight_array:
            blocks = list(sample_weight.to_delayed())
            if len(blocks) == n_blocks:
                return blocks
        which = "X" if _unknown_rows(X) else "sample_weight"
        raise ValueError(
            f"{which} has unknown chunk sizes (nan rows per block), so the "
            "sample weights cannot be cut to the row blocks of X. Compute them "
            f"first with {which}.compute_chunk_sizes() (or build it with "
            "ddf.to_dask_array(lengths=True)), or pass sample_weight as a dask "
            f"Array with the same {n_blocks} row blocks as X (for example "
            "ddf['w'].to_dask_array() from the same DataFrame)."
        )
    if isinstance(sample_weight, (dd.Series, dd.DataFrame)):
        blocks = list(sample_weight.to_delayed())
    elif isinstance(sample_weight, da.Array) or not _is_frame(X):
        if _is_frame(X):
            raise TypeError(
                "With a dask DataFrame X, pass sample_weight as a dask Series "
                "partitioned like X (for example a column of X)."
            )
        w = sample_weight
        if not isinstance(w, da.Array):
            w = np.asarray(w)
            if w.ndim != 1 or w.shape[0] != X.shape[0]:
                raise ValueError(
                    f"sample_weight has shape {w.shape}, expected ({X.shape[0]},): "
                    "one weight per sample of X."
                )
            w = da.from_array(w, chunks=(X.chunks[0],))
        elif w.shape[0] != X.shape[0]:
            raise ValueError(
                f"sample_weight has {w.shape[0]} entries, expected {X.shape[0]}: "
                "one weight per sample of X."
            )
        else:
            w = w.rechunk((X.chunks[0],))
        blocks = list(w.to_delayed())
    else:
        raise TypeError(
            "With a dask DataFrame X, pass sample_weight as a dask Series "
            f"partitioned like X, got {type(sample_weight).__name__}."
        )
    if len(blocks) != n_blocks:
        raise ValueError(
            f"sample_weight has {len(blocks)} partitions and X {n_blocks}: "
            "partition them alike (for example, take the weights from a column "
            "of X)."
        )
    return blocks
